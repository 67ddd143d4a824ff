//! The command line: `cargo bench --bench load -- [options]` into `Opts`.

#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) quick: bool,
    pub(crate) packages: u32,
    pub(crate) versions: u32,
    pub(crate) seconds: f64,
    pub(crate) connections: usize,
    pub(crate) client_threads: usize,
    pub(crate) only: Option<Vec<String>>,
    /// Soak for this many minutes instead of the scenarios.
    pub(crate) soak: Option<f64>,
    /// Seconds between two soak samples.
    pub(crate) sample_every: f64,
    /// During the soak, GET /metrics every so many seconds, as a Prometheus server would.
    pub(crate) scrape_every: Option<f64>,
    /// During the soak, no publish stream: the catalog stays the size it was seeded at.
    pub(crate) no_publish: bool,
    /// Search at scale: this many packages, and the search scenarios over a cache-busting set of
    /// distinct queries instead of the usual run.
    pub(crate) scale: Option<u32>,
    /// Keep the SQLite data here and reuse it when it was seeded with the same numbers (the seed
    /// of 100,000 packages takes ~10 minutes); a temporary directory otherwise.
    pub(crate) data_dir: Option<std::path::PathBuf>,
}

/// Distinct queries of the scale mode: more than any response cache holds.
pub(crate) const SCALE_QUERIES: usize = 30_000;
/// The scenarios of the scale mode.
pub(crate) const SCALE_SCENARIOS: [&str; 3] = ["search-scale", "gql-search-scale", "nginx"];

pub(crate) fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench load -- [--quick] [--packages N] [--versions M] [--seconds S] \
         [--connections C] [--client-threads T] [--only scenario,scenario]\n\
         \x20      cargo bench --bench load -- --soak [MINUTES (default 10)] [--sample-every S (default 30)] \
         [--scrape-metrics S] [--no-publish] [--quick] [--packages N] [--versions M] [--client-threads T]\n\
         \x20      cargo bench --bench load -- --scale N (search over N packages x 2 versions, 30,000 distinct \
         queries) [--versions M] [--seconds S] [--connections C] [--data-dir DIR (SQLite, kept and reused)]\n\
         scenarios: package version search gql-package gql-search download stats publish-1 publish-4 login\n\
         \x20 nginx (the ceiling: a 2-byte static file, and with download the same tarballs; needs nginx installed)\n\
         env: BENCH_DATABASE_URL=postgres://... runs on a fresh PostgreSQL database"
    );
    std::process::exit(2)
}

pub(crate) fn parse_opts() -> Opts {
    let mut args = std::env::args().skip(1).peekable();
    let mut o = Opts {
        quick: false,
        packages: 0,
        versions: 0,
        seconds: 0.0,
        connections: 32,
        client_threads: 1,
        only: None,
        soak: None,
        sample_every: 30.0,
        scrape_every: None,
        no_publish: false,
        scale: None,
        data_dir: None,
    };
    let (mut packages, mut versions, mut seconds, mut connections) = (None, None, None, None);
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("{flag} needs a number");
            usage()
        })
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--packages" => packages = Some(num(&a, args.next())),
            "--versions" => versions = Some(num(&a, args.next())),
            "--seconds" => seconds = Some(num(&a, args.next())),
            "--connections" => connections = Some(num(&a, args.next())),
            "--client-threads" => o.client_threads = num(&a, args.next()),
            "--only" => {
                o.only = Some(args.next().unwrap_or_else(|| usage()).split(',').map(|s| s.trim().to_owned()).collect())
            }
            "--soak" => {
                let minutes = match args.peek() {
                    Some(v) if !v.starts_with("--") => num(&a, args.next()),
                    _ => 10.0,
                };
                o.soak = Some(minutes);
            }
            "--sample-every" => o.sample_every = num(&a, args.next()),
            "--scrape-metrics" => o.scrape_every = Some(num(&a, args.next())),
            "--no-publish" => o.no_publish = true,
            "--scale" => o.scale = Some(num(&a, args.next())),
            "--data-dir" => o.data_dir = Some(args.next().unwrap_or_else(|| usage()).into()),
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
    }
    if let Some(minutes) = o.soak {
        if o.only.is_some() || seconds.is_some() || connections.is_some() {
            eprintln!("--soak runs its own mix: --only, --seconds and --connections do not apply");
            usage()
        }
        if !(minutes.is_finite() && minutes > 0.0 && o.sample_every.is_finite() && o.sample_every >= 1.0) {
            eprintln!("--soak needs a positive number of minutes and --sample-every at least 1 s");
            usage()
        }
    }
    if o.scrape_every.is_some_and(|s| o.soak.is_none() || !(s.is_finite() && s > 0.0)) {
        eprintln!("--scrape-metrics needs --soak and a positive number of seconds");
        usage()
    }
    if let Some(n) = o.scale {
        if o.soak.is_some() || o.only.is_some() || packages.is_some() {
            eprintln!("--scale runs its own scenarios over N packages: --soak, --only and --packages do not apply");
            usage()
        }
        packages = Some(n);
        versions = versions.or(Some(2));
        o.only = Some(SCALE_SCENARIOS.iter().map(|s| s.to_string()).collect());
    }
    o.packages = packages.unwrap_or(if o.quick { 50 } else { 1000 });
    o.versions = versions.unwrap_or(if o.quick { 2 } else { 3 });
    o.seconds = seconds.unwrap_or(if o.quick { 2.0 } else { 10.0 });
    o.connections = connections.unwrap_or(o.connections).max(1);
    o.client_threads = o.client_threads.max(1);
    if o.packages < 2 || o.versions < 1 {
        eprintln!("need at least 2 packages and 1 version");
        usage()
    }
    o
}
