//! `raven-registry seed`: realistic demo data through the service layer (owned by the benchmark work).
//!
//! A handful of users publish `--packages` packages of `--versions` versions each, with real tarballs
//! (raven.toml, README.md, sources) that go through the same validation as any upload. Names,
//! descriptions, keywords and dependencies come from word lists and a seeded PRNG, so every run with
//! the same arguments plans the same data, and a larger `--packages` extends a smaller one. Packages
//! and versions that already exist are skipped, so the command can be re-run or resumed.
//! Versions go through the service layer's bulk path (`service::bulk`): every check of a publish,
//! one transaction per batch, in waves that keep every dependency published before its dependents.
//! `--jobs` tarballs are built and checked at once.
//!
//! The planning and tarball helpers are public: the load benchmark uses them to know the seeded
//! names and to build fresh packages for its publish scenarios.
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend};

use crate::auth::{Scopes, Viewer};
use crate::config::SeedArgs;
use crate::domain::confusable::fold_name;
use crate::domain::tarball::build::package_targz;
use crate::domain::{Email, PackageName, Password, Username};
use crate::error::AppError;
use crate::service::accounts::{self, Registration};
use crate::service::bulk::{self, BulkItem};
use crate::service::packages::{self as pkgs, Role};
use crate::service::publish::{self, Claimed};
use crate::service::tokens::LOGIN_TOKEN_NAME;
use crate::state::AppState;

/// The password of every seeded account (printed in the summary, for trying the frontend).
pub const SEED_PASSWORD: &str = "correct-horse-battery";

/// Seeded accounts: username and display name.
pub const USERS: &[(&str, &str)] = &[
    ("ada", "Ada Lovelace"),
    ("grace", "Grace Hopper"),
    ("linus", "Linus Torvalds"),
    ("barbara", "Barbara Liskov"),
    ("ken", "Ken Thompson"),
    ("margaret", "Margaret Hamilton"),
    ("dennis", "Dennis Ritchie"),
    ("radia", "Radia Perlman"),
];

const FIRST: &[&str] = &[
    "fast", "tiny", "async", "simple", "safe", "lazy", "smart", "micro", "mini", "super", "hyper", "ultra", "easy",
    "zero", "raw", "pure", "open", "quick", "lite", "strict", "swift", "deep", "small", "sharp", "clean", "bold",
    "neat", "prime", "rapid", "solid",
];

/// Subject words: the middle of names, and keywords.
const DOMAIN: &[&str] = &[
    "json", "http", "toml", "yaml", "xml", "csv", "sql", "log", "cache", "crypto", "hash", "regex", "time", "date",
    "uuid", "rand", "math", "image", "audio", "text", "string", "path", "file", "net", "tcp", "udp", "dns", "url",
    "mime", "base64", "zip", "gzip", "tar", "cli", "term", "color", "config", "env", "mock", "bench", "graph", "tree",
    "list", "map", "queue", "pool", "sync", "actor", "stream", "event", "signal", "proc", "parse", "lexer", "ast",
    "orm", "db", "redis", "kafka", "grpc", "proto", "auth", "jwt", "oauth", "token", "smtp", "mail", "web", "html",
    "css", "svg", "font", "unicode", "i18n", "geo", "matrix", "vec", "bits", "bytes", "buf", "io", "fs", "os", "gpu",
    "wasm", "ffi",
];

const SUFFIX: &[&str] = &[
    "client", "server", "parser", "core", "utils", "kit", "lib", "macros", "derive", "types", "codec", "tools",
    "engine", "runtime", "bindings", "serde", "builder", "cli", "sys", "helpers", "ext", "lite",
];

const ADJECTIVES: &[&str] = &[
    "fast",
    "small",
    "safe",
    "simple",
    "zero-copy",
    "streaming",
    "async",
    "ergonomic",
    "minimal",
    "portable",
    "robust",
    "lightweight",
    "extensible",
    "pure",
    "well-tested",
    "blazing",
    "friendly",
];

const THINGS: &[&str] = &[
    "parser",
    "client",
    "library",
    "toolkit",
    "framework",
    "runtime",
    "encoder",
    "decoder",
    "server",
    "bindings",
    "utilities",
    "engine",
    "collection",
    "interface",
    "wrapper",
];

const FEATURES: &[&str] = &[
    "no dependencies",
    "a tiny API",
    "streaming support",
    "full spec compliance",
    "pluggable backends",
    "async support",
    "SIMD acceleration",
    "pretty error messages",
    "zero allocations on the hot path",
    "no unsafe code",
];

const GENERAL_KEYWORDS: &[&str] = &[
    "parser",
    "network",
    "async",
    "cli",
    "encoding",
    "data",
    "web",
    "crypto",
    "testing",
    "database",
    "text",
    "math",
    "utility",
    "serialization",
    "performance",
    "concurrency",
    "filesystem",
    "graphics",
    "embedded",
    "no-std",
];

const LICENSES: &[&str] = &["MIT", "Apache-2.0", "MIT OR Apache-2.0", "BSD-3-Clause", "MPL-2.0", "ISC"];

/// Words that occur in seeded names, descriptions and keywords: the benchmark searches for them.
pub const SEARCH_WORDS: &[&str] = &[
    "json", "http", "parser", "client", "async", "fast", "cache", "crypto", "time", "config", "stream", "database",
    "network", "cli", "log", "toml", "server", "encoding", "simple", "regex", "web", "hash", "tree", "event", "auth",
    "image", "text", "queue", "safe", "macros",
];

const SEED: u64 = 0x5eed_2a7e_11ab_c0de;

/// xorshift64*: tiny, deterministic and good enough for demo data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Mix the seed so that nearby seeds give unrelated streams; never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }
}

/// One package of the seed plan (the same for every version).
#[derive(Debug, Clone)]
pub struct PlannedPackage {
    pub index: usize,
    pub name: String,
    /// Index into [`USERS`] of the account that publishes it.
    pub owner: usize,
    /// Index into [`USERS`] of a second account added as maintainer, for some packages.
    pub maintainer: Option<usize>,
    pub description: String,
    pub keywords: Vec<String>,
    pub license: String,
    pub homepage: Option<String>,
    /// Names of earlier packages in the plan.
    pub dependencies: Vec<String>,
    pub dev_dependencies: Vec<String>,
    /// Per entry of `dependencies`: the requirement the first version declares (always the
    /// loosest, `^1` or `^0.1`) and the one later versions declare (`^1`, `~1.0`, an exact pin
    /// `=1.0.0`, or `^1.0.1`, which collides with another package's pin: see [`plan`]).
    pub requirements: Vec<(String, String)>,
    /// Versions are 0.x (0.1.0, 0.1.1, 0.2.0, ...) rather than 1.x.
    pub zero_major: bool,
    /// Seeds the generated sources.
    pub content_seed: u64,
}

/// The version number of the `k`-th version of a 1.x seeded package (most of them, and the fresh
/// packages of the benchmark's publish scenarios): 1.0.0, 1.0.1, 1.1.0, 1.1.1, ...
pub fn version(k: u32) -> String {
    format!("1.{}.{}", k / 2, k % 2)
}

/// The version number of the `k`-th version of a 0.x seeded package: 0.1.0, 0.1.1, 0.2.0, ...
pub fn zero_version(k: u32) -> String {
    format!("0.{}.{}", 1 + k / 2, k % 2)
}

/// Which version of its package `version` is (the inverse of [`version`] and [`zero_version`];
/// 0 for anything else, whose dependencies are then those of a first version).
pub fn version_index(version: &str) -> u32 {
    match semver::Version::parse(version) {
        Ok(v) if v.major == 0 && v.minor >= 1 => (2 * (v.minor - 1) + v.patch.min(1)) as u32,
        Ok(v) if v.major >= 1 => (2 * v.minor + v.patch.min(1)) as u32,
        _ => 0,
    }
}

/// The requirements on a dependency (see [`PlannedPackage::requirements`]): the first version's,
/// then the later versions'. The styles give the resolve benchmark tilde and caret-0.x
/// requirements, exact pins, and pins that collide (one package's `=1.0.0` against another's
/// `^1.0.1`), so that the solver must go back to an earlier version of one of them; a first
/// version only ever asks for `^1` or `^0.1`, so every graph has a solution.
fn requirements_on(rng: &mut Rng, dependency_zero_major: bool) -> (String, String) {
    let (loose, tilde, exact, newer) =
        if dependency_zero_major { ("^0.1", "~0.1", "=0.1.0", "^0.1.1") } else { ("^1", "~1.0", "=1.0.0", "^1.0.1") };
    let later = match rng.below(100) {
        0..=39 => loose,
        40..=64 => tilde,
        65..=79 => exact,
        _ => newer,
    };
    (loose.to_owned(), later.to_owned())
}

/// The deterministic plan of the first `count` packages; `plan(n)` is a prefix of `plan(n + k)`.
pub fn plan(count: usize) -> Vec<PlannedPackage> {
    let mut names_rng = Rng::new(SEED);
    let mut taken: HashSet<String> = HashSet::new();
    let mut out: Vec<PlannedPackage> = Vec::with_capacity(count);
    let mut zero_major_names: HashSet<String> = HashSet::new();
    for index in 0..count {
        let name = next_name(&mut names_rng, &mut taken, index);
        let mut rng = Rng::new(SEED ^ (index as u64).wrapping_mul(0x1000_0000_01B3));
        let owner = rng.below(USERS.len());
        let maintainer =
            if rng.chance(25) { Some((owner + 1 + rng.below(USERS.len() - 1)) % USERS.len()) } else { None };
        let subject = name.split('-').find(|w| DOMAIN.contains(w)).unwrap_or("data").to_owned();
        let description = describe(&mut rng, &subject);
        let keywords = keywords_for(&mut rng, &subject);
        let license = rng.pick(LICENSES).to_owned();
        let homepage = rng.chance(30).then(|| format!("https://{name}.example.org/"));
        // Earlier packages, skewed towards the first ones: a few popular packages with many dependents.
        let mut dependencies: Vec<String> = Vec::new();
        if index > 0 {
            let wanted = [0, 1, 1, 2, 2, 3][rng.below(6)].min(index);
            for _ in 0..wanted * 2 {
                if dependencies.len() == wanted {
                    break;
                }
                let r = rng.unit();
                let j = ((index as f64) * r * r) as usize;
                let dep = &out[j.min(index - 1)].name;
                if !dependencies.contains(dep) {
                    dependencies.push(dep.clone());
                }
            }
        }
        let mut dev_dependencies = Vec::new();
        if index > 0 && rng.chance(20) {
            let dep = &out[rng.below(index.min(20))].name;
            if !dependencies.contains(dep) {
                dev_dependencies.push(dep.clone());
            }
        }
        // Drawn from a stream of their own, so the fields above are those of earlier plans.
        let mut styles = Rng::new(SEED ^ 0x0e0e_5eed ^ (index as u64).wrapping_mul(0x9E37_79B9));
        let zero_major = index > 0 && styles.chance(15);
        let requirements =
            dependencies.iter().map(|d| requirements_on(&mut styles, zero_major_names.contains(d))).collect();
        if zero_major {
            zero_major_names.insert(name.clone());
        }
        out.push(PlannedPackage {
            index,
            name,
            owner,
            maintainer,
            description,
            keywords,
            license,
            homepage,
            dependencies,
            dev_dependencies,
            requirements,
            zero_major,
            content_seed: rng.next_u64(),
        });
    }
    out
}

fn next_name(rng: &mut Rng, taken: &mut HashSet<String>, index: usize) -> String {
    for _ in 0..32 {
        let candidate = match rng.below(100) {
            0..=39 => format!("{}-{}", rng.pick(DOMAIN), rng.pick(SUFFIX)),
            40..=69 => format!("{}-{}", rng.pick(FIRST), rng.pick(DOMAIN)),
            70..=84 => format!("{}-{}-{}", rng.pick(FIRST), rng.pick(DOMAIN), rng.pick(SUFFIX)),
            _ => format!("{}-{}-{}", rng.pick(DOMAIN), rng.pick(SUFFIX), 2 + rng.below(8)),
        };
        let parts: Vec<&str> = candidate.split('-').collect();
        let repeats = parts.windows(2).any(|w| w[0] == w[1]);
        // Names are told apart by their folds: a publish refuses a name confusable with another.
        if !repeats && PackageName::parse(&candidate).is_ok() && taken.insert(fold_name(&candidate)) {
            return candidate;
        }
    }
    // The word space is large, but never loop forever: a numbered name is always free.
    let name = format!("{}-{}-{index}", rng.pick(DOMAIN), rng.pick(SUFFIX));
    taken.insert(fold_name(&name));
    name
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn describe(rng: &mut Rng, subject: &str) -> String {
    let adj = rng.pick(ADJECTIVES);
    let mut adj2 = rng.pick(ADJECTIVES);
    while adj2 == adj {
        adj2 = rng.pick(ADJECTIVES);
    }
    let thing = rng.pick(THINGS);
    let feature = rng.pick(FEATURES);
    match rng.below(4) {
        0 => format!("A {adj} {subject} {thing} for RavensOne."),
        1 => format!("{} and {adj2} {subject} {thing} with {feature}.", capitalise(adj)),
        2 => format!("{} {thing}: {adj}, {adj2}, with {feature}.", capitalise(subject)),
        _ => format!("The {adj} way to work with {subject} in RavensOne, with {feature}."),
    }
}

fn keywords_for(rng: &mut Rng, subject: &str) -> Vec<String> {
    let count = 1 + rng.below(5);
    let mut out = vec![subject.to_owned()];
    while out.len() < count {
        let kw = if rng.chance(50) { rng.pick(GENERAL_KEYWORDS) } else { rng.pick(DOMAIN) };
        if !out.iter().any(|k| k == kw) {
            out.push(kw.to_owned());
        }
    }
    out
}

impl PlannedPackage {
    /// The raven.toml of `version`.
    pub fn manifest(&self, version: &str) -> String {
        let (user, display) = USERS[self.owner];
        let mut m = String::new();
        m.push_str("[package]\n");
        m.push_str(&format!("name = \"{}\"\nversion = \"{version}\"\n", self.name));
        m.push_str(&format!("authors = [\"{display} <{user}@example.com>\"]\n"));
        m.push_str(&format!("description = \"{}\"\n", self.description));
        m.push_str(&format!("license = \"{}\"\n", self.license));
        m.push_str(&format!("repository = \"https://github.com/{user}/{}\"\n", self.name));
        if let Some(h) = &self.homepage {
            m.push_str(&format!("homepage = \"{h}\"\n"));
        }
        let kws: Vec<String> = self.keywords.iter().map(|k| format!("\"{k}\"")).collect();
        m.push_str(&format!("keywords = [{}]\n", kws.join(", ")));
        m.push_str("readme = \"README.md\"\n");
        if !self.dependencies.is_empty() {
            let first = version_index(version) == 0;
            m.push_str("\n[dependencies]\n");
            for (d, (loose, later)) in self.dependencies.iter().zip(&self.requirements) {
                m.push_str(&format!("{d} = \"{}\"\n", if first { loose } else { later }));
            }
        }
        if !self.dev_dependencies.is_empty() {
            m.push_str("\n[dev-dependencies]\n");
            for d in &self.dev_dependencies {
                // Any version will do: a dev-dependency of a dependency is never resolved.
                m.push_str(&format!("{d} = \"*\"\n"));
            }
        }
        m
    }

    /// The `k`-th version of this package.
    pub fn version(&self, k: u32) -> String {
        if self.zero_major {
            zero_version(k)
        } else {
            version(k)
        }
    }

    pub fn readme(&self, version: &str) -> String {
        let name = &self.name;
        let ident = name.replace('-', "_");
        format!(
            "# {name}\n\n{desc}\n\n## Installation\n\nAdd it to your `raven.toml`:\n\n```toml\n[dependencies]\n\
             {name} = \"^{version}\"\n```\n\n## Usage\n\n```raven\nuse {ident}\n\nfn main() {{\n    let value = \
             {ident}::parse(\"hello\")?\n    print(value)\n}}\n```\n\n## Features\n\n- {f1}\n- {f2}\n\n## License\n\n\
             {license}\n",
            desc = self.description,
            f1 = capitalise(FEATURES[self.index % FEATURES.len()]),
            f2 = capitalise(FEATURES[(self.index + 3) % FEATURES.len()]),
            license = self.license,
        )
    }

    /// A source file of a few kilobytes; different per package and version.
    pub fn source(&self, version: &str) -> String {
        let mut rng = Rng::new(self.content_seed ^ version.len() as u64 ^ fnv(version));
        let mut s = format!("// {} {version}\n// {}\n\n", self.name, self.description);
        for f in 0..8 + rng.below(24) {
            let verb = rng.pick(&["parse", "encode", "decode", "read", "write", "build", "check", "render", "split"]);
            let noun = rng.pick(DOMAIN);
            s.push_str(&format!(
                "/// {} the {noun} input.\npub fn {verb}_{noun}_{f}(input: String) -> Result {{\n",
                capitalise(verb)
            ));
            for l in 0..2 + rng.below(6) {
                s.push_str(&format!("    let step{l} = input.{}({})\n", rng.pick(THINGS), rng.below(1000)));
            }
            s.push_str("    Ok(input)\n}\n\n");
        }
        s
    }

    /// The complete gzip'd tarball of `version`.
    pub fn tarball(&self, version: &str) -> Vec<u8> {
        let files = [
            ("raven.toml", self.manifest(version)),
            ("README.md", self.readme(version)),
            ("src/lib.rvn", self.source(version)),
            (
                "tests/basic.rvn",
                format!("use {}\n\ntest \"works\" {{\n    assert(true)\n}}\n", self.name.replace('-', "_")),
            ),
        ];
        package_targz(&files)
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Signs in (registering on first use) each seeded account, returning a viewer per account.
async fn seed_users(state: &AppState) -> anyhow::Result<(Vec<Viewer>, usize)> {
    let mut viewers = Vec::with_capacity(USERS.len());
    let mut created = 0;
    for (username, _) in USERS {
        let email = format!("{username}@seed.example.com");
        let reg = Registration {
            username: Username::parse(username)?,
            email: Email::parse(&email)?,
            password: Password::parse(SEED_PASSWORD)?,
        };
        let signed_in = match accounts::register(state, None, reg).await {
            Ok(s) => {
                created += 1;
                s
            }
            Err(AppError::Conflict(_)) => accounts::login(state, &email, SEED_PASSWORD).await.map_err(|e| {
                anyhow::anyhow!("user {username} exists but cannot sign in with the seed password: {e}")
            })?,
            Err(e) => return Err(anyhow::anyhow!("registering {username}: {e}")),
        };
        viewers.push(Viewer {
            user_id: signed_in.user.id,
            token_id: signed_in.token.row.id,
            token_name: LOGIN_TOKEN_NAME.into(),
            scopes: Scopes::all(),
        });
    }
    Ok((viewers, created))
}

/// Publishes `bytes` as a tarball through the service layer.
async fn publish_bytes(state: &AppState, viewer: &Viewer, bytes: &[u8]) -> Result<(), AppError> {
    let tarball = publish::Tarball::Bytes(bytes::Bytes::copy_from_slice(bytes));
    publish::publish(state, viewer, tarball, Claimed::default()).await.map(|_| ())
}

/// What seeding one package did.
#[derive(Default)]
struct Tally {
    packages: usize,
    skipped: usize,
    versions: usize,
    bytes: usize,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.packages += o.packages;
        self.skipped += o.skipped;
        self.versions += o.versions;
        self.bytes += o.bytes;
    }
}

/// The plan cut into runs of at most `max` packages, none depending on a package of its own run.
fn waves(plan: &[PlannedPackage], max: usize) -> Vec<&[PlannedPackage]> {
    let index: HashMap<&str, usize> = plan.iter().map(|p| (p.name.as_str(), p.index)).collect();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, p) in plan.iter().enumerate() {
        let depends_on_this_wave = p
            .dependencies
            .iter()
            .chain(&p.dev_dependencies)
            .any(|d| index.get(d.as_str()).is_some_and(|&j| j >= start));
        if i > start && (depends_on_this_wave || i - start == max) {
            out.push(&plan[start..i]);
            start = i;
        }
    }
    if start < plan.len() {
        out.push(&plan[start..]);
    }
    out
}

/// Publishes the missing versions of one planned package (and adds its maintainer when new).
async fn seed_package(
    state: &AppState,
    viewers: &[Viewer],
    p: &PlannedPackage,
    versions: u32,
) -> anyhow::Result<Tally> {
    let viewer = &viewers[p.owner];
    let existing = pkgs::find_by_name(&state.db, &PackageName::lookup(&p.name)?).await?;
    let mut tally = Tally::default();
    for k in 0..versions {
        let v = p.version(k);
        if let Some(pkg) = &existing {
            if pkgs::find_version(&state.db, pkg.id, &v).await?.is_some() {
                continue;
            }
        }
        // Building and gzipping the tarball is CPU work: off the runtime's threads.
        let bytes = {
            let (p, v) = (p.clone(), v.clone());
            tokio::task::spawn_blocking(move || p.tarball(&v)).await?
        };
        let mut outcome = publish_bytes(state, viewer, &bytes).await;
        // A busy database (pool or lock timeouts, answered 503 to clients) is waited out a few
        // times rather than ending a seed of many minutes.
        for wait in [1, 2, 4, 8] {
            if !matches!(outcome.as_ref().map_err(AppError::inner), Err(AppError::Unavailable(_))) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            outcome = publish_bytes(state, viewer, &bytes).await;
        }
        match outcome {
            Ok(()) => {
                tally.versions += 1;
                tally.bytes += bytes.len();
            }
            // Published meanwhile (another seed run): as good as done.
            Err(e) if matches!(e.inner(), AppError::Conflict(_)) => {}
            Err(e) => return Err(anyhow::anyhow!("publishing {} {v}: {e}", p.name)),
        }
    }
    if existing.is_none() {
        tally.packages = 1;
        if let Some(m) = p.maintainer {
            let role = Role::Maintainer;
            let (name, user) = (PackageName::lookup(&p.name)?, Username::parse(USERS[m].0)?);
            crate::service::owners::add(state, viewer, &name, &user, role)
                .await
                .map_err(|e| anyhow::anyhow!("adding a maintainer to {}: {e}", p.name))?;
        }
    } else if tally.versions == 0 {
        tally.skipped = 1;
    }
    Ok(tally)
}

/// Publishes what `wave` lacks through the bulk path: one batch (one transaction) per version
/// round, so a package's versions go in order and each batch names a package once. A new
/// package's maintainer is added in the batch of its first version.
async fn seed_wave(
    state: &AppState,
    viewers: &[Viewer],
    wave: &[PlannedPackage],
    versions: u32,
    jobs: usize,
) -> anyhow::Result<Tally> {
    let names: Vec<String> = wave.iter().map(|p| p.name.clone()).collect();
    let existing = pkgs::published_versions(&state.db, &names).await?;
    let has = |p: &PlannedPackage, k: u32| {
        let canonical = crate::domain::PackageVersion::parse(&p.version(k)).map(|v| v.canonical());
        existing.get(&p.name).zip(canonical.ok()).is_some_and(|(set, c)| set.contains(&c))
    };
    let mut tally = Tally::default();
    for p in wave {
        if !existing.contains_key(&p.name) {
            tally.packages += 1;
        } else if (0..versions).all(|k| has(p, k)) {
            tally.skipped += 1;
        }
    }
    for k in 0..versions {
        let todo: Vec<&PlannedPackage> = wave.iter().filter(|p| !has(p, k)).collect();
        if todo.is_empty() {
            continue;
        }
        // Building and gzipping tarballs is CPU work: off the runtime's threads, `jobs` at once.
        let tarballs: Vec<bytes::Bytes> = futures::stream::iter(todo.iter().map(|p| {
            let (p, v) = ((*p).clone(), p.version(k));
            tokio::task::spawn_blocking(move || bytes::Bytes::from(p.tarball(&v)))
        }))
        .buffered(jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        let items = || -> anyhow::Result<Vec<BulkItem>> {
            todo.iter()
                .zip(&tarballs)
                .map(|(p, bytes)| {
                    let maintainer = p.maintainer.filter(|_| !existing.contains_key(&p.name));
                    let owners = match maintainer {
                        Some(m) => vec![(Username::parse(USERS[m].0)?, Role::Maintainer)],
                        None => Vec::new(),
                    };
                    Ok(BulkItem {
                        viewer: viewers[p.owner].clone(),
                        tarball: publish::Tarball::Bytes(bytes.clone()),
                        owners,
                    })
                })
                .collect()
        };
        let mut outcome = bulk::publish_many(state, items()?, jobs).await;
        // A busy database (pool or lock timeouts, answered 503 to clients) is waited out a few
        // times rather than ending a seed of many minutes.
        for wait in [1, 2, 4, 8] {
            if !matches!(outcome.as_ref().map_err(AppError::inner), Err(AppError::Unavailable(_))) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            outcome = bulk::publish_many(state, items()?, jobs).await;
        }
        match outcome {
            Ok(published) => {
                tally.versions += published.len();
                tally.bytes += tarballs.iter().map(|b| b.len()).sum::<usize>();
            }
            // Another seed run published some of them meanwhile: the package-at-a-time path
            // skips what exists and takes a conflict as done.
            Err(e) if matches!(e.inner(), AppError::Conflict(_)) => {
                for p in todo {
                    let t = seed_package(state, viewers, p, versions).await?;
                    tally.versions += t.versions;
                    tally.bytes += t.bytes;
                }
            }
            Err(e) => {
                let (first, last) = (&todo[0].name, &todo[todo.len() - 1].name);
                return Err(anyhow::anyhow!("publishing version {k} of {first} .. {last}: {e}"));
            }
        }
    }
    Ok(tally)
}

/// Batches in flight at once (see `run`).
const LANES: usize = 2;
/// Packages seeded before PostgreSQL's statistics are first refreshed (then at each doubling).
const ANALYZE_FIRST: usize = 1_000;

/// Refreshes PostgreSQL's planner statistics. A bulk load outgrows them many times over, and
/// autovacuum may be off or lag behind: at 100,000 packages seeded on a database never analyzed,
/// the dependency check of each publish (`name IN (...)`) ran a 25-35 ms plan instead of an index
/// lookup, and the seed slowed from ~360 to ~200 versions/s; one ANALYZE (1.7 s) brought it back.
/// SQLite plans from its indexes alone and needs nothing here.
async fn analyze(state: &AppState) -> anyhow::Result<()> {
    if state.db.get_database_backend() == DbBackend::Postgres {
        state.db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

pub async fn run(state: &AppState, args: &SeedArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // Seeding is an operator's bulk load: the per-user publish limits (burst 5 new packages, then one
    // per 10 minutes) are for the public API, not for this process's own limiter.
    let mut parts = state.parts();
    let mut config = (*parts.config).clone();
    config.rate_limits_enabled = false;
    parts.limits = std::sync::Arc::new(crate::ratelimit::RateLimits::from_config(&config));
    parts.config = std::sync::Arc::new(config);
    let state = &AppState::from(parts);
    let (viewers, users_created) = seed_users(state).await?;
    println!("seed: {} users ready ({users_created} new)", viewers.len());

    let plan = plan(args.packages as usize);
    let total = plan.len();
    let jobs = args.jobs.max(1) as usize;
    let report_every = (total / 10).max(1);
    let (mut done, mut tally, mut last_report) = (0usize, Tally::default(), Instant::now());
    // Packages are published in waves, a batch per wave and version: a package whose dependencies
    // are not all in earlier waves starts the next wave, so every dependency exists before its
    // dependents (a batch is checked before any of it is written).
    // Each wave goes in as LANES batches at once, so one batch is checked (reads, inflating) while
    // another writes: one at a time, PostgreSQL sat half idle, each batch's statements waiting
    // on round trips (a batch's write is serial), and on SQLite the write lock went unused while
    // the next batch was checked. Lanes hold disjoint packages of one wave, so they never conflict.
    let batch = (jobs * 32).min(bulk::MAX_BATCH);
    let mut analyzed_at = ANALYZE_FIRST;
    for wave in waves(&plan, batch * LANES) {
        let lanes = wave.chunks(wave.len().div_ceil(LANES).max(1));
        let results =
            futures::future::join_all(lanes.map(|lane| seed_wave(state, &viewers, lane, args.versions, jobs))).await;
        for r in results {
            tally.add(r?);
        }
        done += wave.len();
        if done >= analyzed_at {
            analyze(state).await?;
            analyzed_at = done * 2;
        }
        if done % report_every < wave.len() || done == total || last_report.elapsed().as_secs() >= 5 {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "seed: {done}/{total} packages, {} versions published, {:.1} s ({:.0} versions/s)",
                tally.versions,
                secs,
                tally.versions as f64 / secs.max(1e-9)
            );
        }
    }
    analyze(state).await?;
    let Tally { packages: new_packages, skipped: skipped_packages, versions: new_versions, bytes: bytes_total } = tally;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seed: done in {secs:.1} s: {total} packages planned, {new_packages} created, {skipped_packages} already \
         complete; {new_versions} versions published ({:.1} MB of tarballs); {} users (password {SEED_PASSWORD:?})",
        bytes_total as f64 / 1e6,
        viewers.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{inspect_tarball, Manifest, TarballLimits};

    #[test]
    fn plan_is_deterministic_and_prefix_stable() {
        let a = plan(300);
        let b = plan(50);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.dependencies, y.dependencies);
            assert_eq!(x.tarball("1.0.0"), y.tarball("1.0.0"));
        }
        let names: HashSet<&str> = a.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names.len(), a.len(), "names are unique");
    }

    #[test]
    fn dependencies_point_at_earlier_packages() {
        let p = plan(500);
        for (i, pkg) in p.iter().enumerate() {
            for d in pkg.dependencies.iter().chain(&pkg.dev_dependencies) {
                assert!(p[..i].iter().any(|e| &e.name == d), "{} depends on later {d}", pkg.name);
            }
        }
        assert!(p.iter().filter(|x| !x.dependencies.is_empty()).count() > 250);
    }

    #[test]
    fn requirements_mix_styles_and_first_versions_stay_loose() {
        let p = plan(1000);
        let later: Vec<&str> = p.iter().flat_map(|x| x.requirements.iter().map(|(_, l)| l.as_str())).collect();
        for style in ["~1.0", "^0.1", "=1.0.0", "^1.0.1", "^1"] {
            assert!(later.contains(&style), "no {style} requirement in the plan");
        }
        assert!(p.iter().filter(|x| x.zero_major).count() > 50);
        for pkg in &p {
            assert_eq!(pkg.requirements.len(), pkg.dependencies.len());
            let first = Manifest::parse(&pkg.manifest(&pkg.version(0))).unwrap();
            for d in first.dependencies.iter().filter(|d| d.kind == crate::domain::DependencyKind::Normal) {
                assert!(d.req == "^1" || d.req == "^0.1", "{} {}: {}", pkg.name, d.name, d.req);
            }
        }
        assert_eq!(version_index("0.2.0"), 2);
        assert_eq!(version_index("1.0.1"), 1);
        assert_eq!(version_index(&zero_version(5)), 5);
        assert_eq!(version_index(&version(4)), 4);
    }

    #[test]
    fn every_planned_tarball_is_valid() {
        for pkg in plan(200) {
            for k in 0..3 {
                let v = pkg.version(k);
                let bytes = pkg.tarball(&v);
                let contents = inspect_tarball(&mut bytes.as_slice(), &TarballLimits::default())
                    .unwrap_or_else(|e| panic!("{} {v}: {e}", pkg.name));
                let m: Manifest = contents.manifest;
                assert_eq!(m.name.as_str(), pkg.name);
                assert_eq!(m.version.to_string(), v);
                assert!((1..=5).contains(&m.keywords.len()));
                assert!(contents.readme.is_some());
            }
        }
    }
}
