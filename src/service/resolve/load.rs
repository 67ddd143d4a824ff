//! What the solver works on: every version of every package a resolution can reach, with its
//! normal dependencies, read breadth-first in waves. One statement reads a whole wave (every name
//! first met in the previous one), so a graph of depth d costs at most d statements however many
//! packages it holds, and each package's rows are kept for the catalog generation they were read
//! at (`Caches::resolve`), so repeated resolutions over the same packages run no SQL at all.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sea_orm::{ConnectionTrait, FromQueryResult, Statement};

use crate::error::{AppError, AppResult};
use crate::service::inlist::bind;
use crate::state::AppState;

/// One published version, as resolution needs it.
#[derive(Debug, Clone)]
pub struct LoadedVersion {
    pub version: semver::Version,
    /// As published (build metadata included).
    pub num: String,
    pub yanked: bool,
    pub sha256: String,
    /// Normal dependencies, (name, requirement), by name: dev-dependencies of dependencies are
    /// never followed.
    pub dependencies: Vec<(String, String)>,
}

/// Every version of one package, lowest first.
#[derive(Debug, Clone, Default)]
pub struct LoadedPackage {
    pub versions: Vec<LoadedVersion>,
}

impl LoadedPackage {
    /// The versions resolution may choose: not yanked, or yanked and pinned exactly by the root.
    pub fn candidates<'a>(&'a self, pins: &'a [semver::Version]) -> impl Iterator<Item = &'a LoadedVersion> + 'a {
        self.versions.iter().filter(move |v| !v.yanked || pins.iter().any(|p| p == &v.version))
    }
}

/// The packages a resolution reaches, by name. Names that are not in the registry are absent.
pub type Graph = HashMap<String, Arc<LoadedPackage>>;

/// A bound of a resolution was exceeded: the work is refused rather than done.
pub fn too_complex(what: String) -> AppError {
    AppError::TooComplex(what)
}

/// Reads every package reachable from `roots` through the normal dependencies of the versions
/// resolution may choose (`pins`: the yanked versions the root pins exactly, by name). Refuses
/// with `TooComplex` past `max_packages` names or `deadline`.
pub async fn reachable(
    state: &AppState,
    roots: &[String],
    pins: &HashMap<String, Vec<semver::Version>>,
    max_packages: usize,
    deadline: Instant,
) -> AppResult<Graph> {
    let cache = &state.caches.resolve;
    let generation = if cache.enabled() { Some(state.generation.current(&state.db).await?) } else { None };
    let mut graph: Graph = HashMap::new();
    let mut seen: HashSet<String> = roots.iter().cloned().collect();
    let mut wave: BTreeSet<String> = seen.iter().cloned().collect();
    let no_pins = Vec::new();
    while !wave.is_empty() {
        if seen.len() > max_packages {
            return Err(too_complex(format!(
                "the dependency graph reaches more than {max_packages} packages (RESOLVE_MAX_PACKAGES)"
            )));
        }
        if Instant::now() > deadline {
            return Err(too_complex(timeout_message(state)));
        }
        let mut missing = Vec::new();
        for name in &wave {
            match generation.and_then(|g| cache.get(g, name)) {
                Some(p) => {
                    graph.insert(name.clone(), p);
                }
                None => missing.push(name.clone()),
            }
        }
        crate::metrics::cache_lookup("resolve", missing.is_empty());
        if !missing.is_empty() {
            for (name, package) in versions_of(&state.db, &missing).await? {
                let package = Arc::new(package);
                if let Some(g) = generation {
                    cache.put(g, name.clone(), package.clone());
                }
                graph.insert(name, package);
            }
        }
        // The next wave: names first met among the dependencies of this wave's candidates.
        let mut next = BTreeSet::new();
        for name in &wave {
            let Some(package) = graph.get(name) else { continue };
            for v in package.candidates(pins.get(name).unwrap_or(&no_pins)) {
                for (dep, _) in &v.dependencies {
                    if !seen.contains(dep) {
                        next.insert(dep.clone());
                    }
                }
            }
        }
        seen.extend(next.iter().cloned());
        wave = next;
    }
    Ok(graph)
}

pub fn timeout_message(state: &AppState) -> String {
    format!("resolution took longer than {} ms (RESOLVE_TIMEOUT_MS)", state.config.resolve_timeout_ms)
}

#[derive(FromQueryResult)]
struct Row {
    package: String,
    num: String,
    yanked: bool,
    sha256: String,
    dep_name: Option<String>,
    dep_req: Option<String>,
}

/// Every version of each named package with its normal dependencies, in one statement. Names
/// without a package are absent from the answer.
#[tracing::instrument(name = "db.resolve.versions", skip_all, fields(n = names.len()))]
pub async fn versions_of(db: &impl ConnectionTrait, names: &[String]) -> AppResult<HashMap<String, LoadedPackage>> {
    let mut out: HashMap<String, LoadedPackage> = HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let (list, values) = bind(names.iter().cloned());
    let sql = format!(
        "SELECT p.name AS package, v.num, v.yanked, v.sha256, d.name AS dep_name, d.req AS dep_req \
         FROM packages p JOIN versions v ON v.package_id = p.id \
         LEFT JOIN dependencies d ON d.version_id = v.id AND d.kind = 'normal' \
         WHERE p.name IN ({list})"
    );
    let stmt = Statement::from_sql_and_values(backend, crate::db::numbered(backend, &sql), values);
    // Rows come one per (version, dependency); gather them per version.
    let mut by_version: HashMap<(String, String), LoadedVersion> = HashMap::new();
    for r in Row::find_by_statement(stmt).all(db).await? {
        let Ok(version) = semver::Version::parse(&r.num) else {
            tracing::warn!(package = %r.package, num = %r.num, "a stored version does not parse; left out of resolution");
            continue;
        };
        let entry = by_version.entry((r.package, r.num.clone())).or_insert_with(|| LoadedVersion {
            version,
            num: r.num,
            yanked: r.yanked,
            sha256: r.sha256,
            dependencies: Vec::new(),
        });
        if let (Some(name), Some(req)) = (r.dep_name, r.dep_req) {
            entry.dependencies.push((name, req));
        }
    }
    for ((package, _), mut v) in by_version {
        v.dependencies.sort();
        out.entry(package).or_default().versions.push(v);
    }
    for p in out.values_mut() {
        p.versions.sort_by(|a, b| a.version.cmp(&b.version));
    }
    Ok(out)
}
