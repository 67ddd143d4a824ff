//! What is measured: the seeded data the requests rotate over, each scenario's requests and
//! targets, the preflight that checks every answer once, and the run of the scenarios one after
//! the other (its report rows are printed with `report`).
use super::*;

/// A target of the issue, relative to /health of the same run (or absolute).
#[derive(Clone, Copy)]
pub(crate) enum Target {
    None,
    Ratio(f64),
    RatioAndP99(f64, f64),
    Rps(f64),
    P99(f64),
    /// p99 in ms and server CPU in µs per request, absolute (no slack on PostgreSQL).
    P99AndCpu(f64, f64),
}

pub(crate) struct Row {
    pub(crate) key: &'static str,
    pub(crate) label: String,
    pub(crate) connections: usize,
    pub(crate) stats: Stats,
    pub(crate) rss_kb: u64,
    /// Server CPU time (user + system) per request over the whole scenario, warm-up included.
    pub(crate) cpu_us: Option<f64>,
    pub(crate) target: Target,
}

/// The single-quoted GraphQL documents of the issue.
pub(crate) const GQL_PACKAGE: &str = "query($n: String!) { package(name: $n) { name latestVersion { version } \
                           versions(first: 10) { nodes { version } } owners { user { username } } } }";
pub(crate) const GQL_SEARCH: &str = "query($q: String!) { search(query: $q, first: 20) { nodes { name \
                          latestVersion { version } owners { user { username } } } } }";

pub(crate) fn graphql(query: &str, variables: serde_json::Value) -> Req {
    Req::json("/graphql", &serde_json::json!({ "query": query, "variables": variables }))
}

pub(crate) const BOUNDARY: &str = "raven-bench-boundary-7d3f9a";

pub(crate) fn publish_request(auth: &HeaderValue, name: &str, version: &str, tarball: &[u8]) -> Req {
    let mut body = Vec::with_capacity(tarball.len() + 512);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n\
             {{\"name\":\"{name}\",\"version\":\"{version}\"}}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; \
             name=\"tarball\"; filename=\"{name}-{version}.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(tarball);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Req {
        method: Method::POST,
        path: "/api/v1/packages/publish".into(),
        body: body.into(),
        content_type: Some(HeaderValue::from_str(&format!("multipart/form-data; boundary={BOUNDARY}")).unwrap()),
        auth: Some(auth.clone()),
    }
}

/// What one publish request sends: whose it is, which planned package lends its contents (and
/// dependencies, so the dependency check runs for real), under which name and version.
pub(crate) struct PublishPick {
    pub(crate) auth: HeaderValue,
    pub(crate) template: usize,
    pub(crate) name: String,
    pub(crate) version: String,
}

/// Publish requests chosen by `pick`. The first `prebuilt` requests are built before the clock
/// starts; any beyond are built on demand.
pub(crate) fn publish_generator(
    plan: &Arc<Vec<PlannedPackage>>,
    prebuilt: usize,
    pick: impl Fn(u64) -> PublishPick + Send + Sync + 'static,
) -> Generator {
    let make = {
        let plan = plan.clone();
        move |k: u64| -> Req {
            let PublishPick { auth, template, name, version } = pick(k);
            let mut p = plan[template % plan.len()].clone();
            p.name = name;
            publish_request(&auth, &p.name, &version, &p.tarball(&version))
        }
    };
    let ready: Arc<Vec<Req>> = Arc::new((0..prebuilt as u64).map(&make).collect());
    Arc::new(move |k| match ready.get(k as usize) {
        Some(r) => r.clone(),
        None => make(k),
    })
}

/// Fresh packages for a publish scenario: seeded packages under new names.
pub(crate) fn fresh_packages(
    tag: &'static str,
    auth: HeaderValue,
) -> impl Fn(u64) -> PublishPick + Send + Sync + 'static {
    move |k| PublishPick {
        auth: auth.clone(),
        template: k as usize,
        name: format!("loadpub-{tag}-{k}"),
        version: seed::version(0),
    }
}

/// A preflight check of a JSON answer.
pub(crate) type JsonCheck<'a> = (&'static str, Req, Box<dyn Fn(StatusCode, &serde_json::Value) -> bool + 'a>);

/// One request per scenario with a full check of the answer, before anything is timed.
pub(crate) async fn preflight(addr: SocketAddr, plan: &[PlannedPackage], versions: u32) -> Vec<String> {
    let mut problems = Vec::new();
    let p = &plan[plan.len() / 2];
    let v = p.version(versions - 1);
    let word = p.keywords[0].as_str();
    let checks: Vec<JsonCheck> = vec![
        (
            "package metadata",
            Req::get(format!("/api/v1/packages/{}", p.name)),
            Box::new(|s, j| {
                s == StatusCode::OK
                    && j["name"] == p.name.as_str()
                    && j["versions"].as_array().map(Vec::len) == Some(versions as usize)
                    && j["latest_version"] == v.as_str()
            }),
        ),
        (
            "version metadata",
            Req::get(format!("/api/v1/packages/{}/{v}", p.name)),
            Box::new(|s, j| s == StatusCode::OK && j["version"] == v.as_str()),
        ),
        (
            "search",
            Req::get(format!("/api/v1/search?q={word}")),
            Box::new(|s, j| s == StatusCode::OK && j["results"].as_array().is_some_and(|r| !r.is_empty())),
        ),
        (
            "GraphQL package",
            graphql(GQL_PACKAGE, serde_json::json!({ "n": p.name })),
            Box::new(|s, j| {
                let pkg = &j["data"]["package"];
                s == StatusCode::OK
                    && pkg["name"] == p.name.as_str()
                    && pkg["latestVersion"]["version"] == v.as_str()
                    && pkg["versions"]["nodes"].as_array().map(Vec::len) == Some((versions as usize).min(10))
                    && pkg["owners"].as_array().is_some_and(|o| !o.is_empty())
            }),
        ),
        (
            "GraphQL search",
            graphql(GQL_SEARCH, serde_json::json!({ "q": word })),
            Box::new(|s, j| {
                s == StatusCode::OK && j["data"]["search"]["nodes"].as_array().is_some_and(|n| !n.is_empty())
            }),
        ),
        (
            "stats",
            Req::get("/api/v1/stats".into()),
            Box::new(|s, j| {
                s == StatusCode::OK
                    && j["total_packages"].as_u64() == Some(plan.len() as u64)
                    && j["total_versions"].as_u64() == Some(plan.len() as u64 * versions as u64)
            }),
        ),
    ];
    for (what, req, ok) in checks {
        match request_once(addr, &req).await {
            Ok((s, j)) if ok(s, &j) => {}
            Ok((s, j)) => problems.push(format!("{what}: {s} {j}")),
            Err(e) => problems.push(format!("{what}: {e}")),
        }
    }
    let mut c = Conn::new(addr);
    match c.send(&Req::get(format!("/api/v1/packages/{}/{v}/download", p.name))).await {
        Ok((s, body)) => {
            let same = body.as_ref() == p.tarball(&v).as_slice();
            if s != StatusCode::OK || !same {
                problems.push(format!("download: {s}, {} bytes, identical to the seeded tarball: {same}", body.len()));
            }
        }
        Err(e) => problems.push(format!("download: {e}")),
    }
    problems
}

/// The seeded data, as the request generators rotate over it.
pub(crate) struct Data {
    pub(crate) plan: Arc<Vec<PlannedPackage>>,
    pub(crate) names: Arc<Vec<String>>,
    /// The seeded versions of each package (1.x or 0.x), by index in the plan.
    pub(crate) version_names: Arc<Vec<Vec<String>>>,
    /// The resolve scenario's projects.
    pub(crate) projects: Arc<Vec<resolve::Project>>,
    /// Words that occur in the seeded data (all of them with the default 1,000 packages).
    pub(crate) words: Arc<Vec<&'static str>>,
    /// Distinct search queries (the scale mode's; empty otherwise).
    pub(crate) queries: Arc<Vec<String>>,
}

impl Data {
    pub(crate) fn new(packages: u32, versions: u32) -> Data {
        let plan = Arc::new(seed::plan(packages as usize));
        let names = Arc::new(plan.iter().map(|p| p.name.clone()).collect());
        let version_names = Arc::new(plan.iter().map(|p| (0..versions).map(|k| p.version(k)).collect()).collect());
        let projects = Arc::new(resolve::projects(&plan));
        let mut present: Vec<&'static str> = seed::SEARCH_WORDS
            .iter()
            .copied()
            .filter(|w| {
                plan.iter()
                    .any(|p| p.name.contains(w) || p.keywords.iter().any(|k| k == w) || p.description.contains(w))
            })
            .collect();
        if present.is_empty() {
            present = seed::SEARCH_WORDS.to_vec();
        }
        Data { plan, names, version_names, projects, words: Arc::new(present), queries: Arc::default() }
    }

    pub(crate) fn name(&self, k: u64) -> &str {
        &self.names[k as usize % self.names.len()]
    }

    /// The `k`-th distinct query, URL-encoded (`+` for spaces).
    pub(crate) fn query(&self, k: u64) -> String {
        self.queries[k as usize % self.queries.len()].replace(' ', "+")
    }

    pub(crate) fn word(&self, k: u64) -> &'static str {
        self.words[k as usize % self.words.len()]
    }

    /// The `k`-th (package, version) pair, all versions of a package in a row.
    pub(crate) fn package_version(&self, k: u64) -> (&str, &str) {
        let (n, k) = (&self.names, k as usize);
        let per = self.version_names.first().map_or(1, |v| v.len().max(1));
        let i = (k / per) % n.len();
        (&n[i], &self.version_names[i][k % per])
    }
}

/// One scenario of the normal run (or one stream of the soak).
pub(crate) struct Scenario {
    pub(crate) key: &'static str,
    pub(crate) label: String,
    pub(crate) load: Load,
    pub(crate) target: Target,
}

impl Scenario {
    pub(crate) fn new(key: &'static str, label: &str, load: Load, target: Target) -> Scenario {
        Scenario { key, label: label.to_owned(), load, target }
    }
}

/// The read scenarios, shared by the normal run and the soak, each on `conns` connections.
pub(crate) fn read_scenarios(data: &Arc<Data>, conns: usize) -> Vec<Scenario> {
    let load = |check: Check, f: fn(&Data, u64) -> Req| {
        let d = data.clone();
        Load::new(conns, check, Arc::new(move |k| f(&d, k)))
    };
    vec![
        Scenario::new(
            "package",
            "REST package metadata",
            load(Check::OK, |d, k| Req::get(format!("/api/v1/packages/{}", d.name(k)))),
            Target::Ratio(0.25),
        ),
        Scenario::new(
            "version",
            "REST version metadata",
            load(Check::OK, |d, k| {
                let (name, v) = d.package_version(k);
                Req::get(format!("/api/v1/packages/{name}/{v}"))
            }),
            Target::Ratio(0.3),
        ),
        Scenario::new(
            "search",
            "REST search (rotating words)",
            load(Check::OK, |d, k| Req::get(format!("/api/v1/search?q={}", d.word(k)))),
            Target::RatioAndP99(0.05, 10.0),
        ),
        Scenario::new(
            "gql-package",
            "GraphQL package (latestVersion, versions(10), owners)",
            load(Check::GRAPHQL, |d, k| graphql(GQL_PACKAGE, serde_json::json!({ "n": d.name(k) }))),
            Target::Ratio(0.15),
        ),
        Scenario::new(
            "gql-search",
            "GraphQL search page of 20 (latestVersion, owners)",
            load(Check::GRAPHQL, |d, k| graphql(GQL_SEARCH, serde_json::json!({ "q": d.word(k) }))),
            Target::Ratio(0.03),
        ),
        Scenario::new(
            "download",
            "Tarball download",
            load(Check::OK, |d, k| {
                let (name, v) = d.package_version(k);
                Req::get(format!("/api/v1/packages/{name}/{v}/download"))
            }),
            Target::Ratio(0.2),
        ),
        Scenario::new(
            "stats",
            "GET /api/v1/stats",
            load(Check::OK, |_, _| Req::get("/api/v1/stats".into())),
            Target::Ratio(0.3),
        ),
    ]
}

/// `n` distinct queries as users type them, drawn from the seeded packages' own words so each
/// has matches: 1 to 3 words of one package's name, keywords and description, or a 3-8 letter
/// prefix of one of its words. Deterministic, and shuffled so that consecutive requests differ.
pub(crate) fn distinct_queries(plan: &[PlannedPackage], n: usize) -> Vec<String> {
    let mut rng = seed::Rng::new(0x5ca1e);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut attempts = 0;
    while out.len() < n && attempts < n * 50 {
        attempts += 1;
        let p = &plan[rng.below(plan.len())];
        let text = format!("{} {} {}", p.name, p.keywords.join(" "), p.description);
        let words: Vec<String> = raven_registry::service::search_index::words(&text).collect();
        if words.is_empty() {
            continue;
        }
        let q = match rng.below(100) {
            0..=29 => words[rng.below(words.len())].clone(),
            30..=59 => format!("{} {}", words[rng.below(words.len())], words[rng.below(words.len())]),
            60..=74 => format!(
                "{} {} {}",
                words[rng.below(words.len())],
                words[rng.below(words.len())],
                words[rng.below(words.len())]
            ),
            _ => {
                let w = &words[rng.below(words.len())];
                if w.len() < 3 {
                    continue;
                }
                w[..(3 + rng.below(6)).min(w.len())].to_owned()
            }
        };
        if seen.insert(q.clone()) {
            out.push(q);
        }
    }
    // Shuffle (Fisher-Yates) so the one-word and prefix queries are spread through the run.
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i + 1));
    }
    out
}

/// GraphQL search page of the scale mode: what a results page shows.
pub(crate) const GQL_SEARCH_PAGE: &str = "query($q: String!) { search(query: $q, first: 20) { totalCount nodes { \
                          name description downloads { total } latestVersion { version } } } }";

/// The scale mode's scenarios (issue 16's goals: p99 and server CPU per request).
pub(crate) fn scale_scenarios(data: &Arc<Data>, conns: usize) -> Vec<Scenario> {
    let load = |check: Check, f: fn(&Data, u64) -> Req| {
        let d = data.clone();
        Load::new(conns, check, Arc::new(move |k| f(&d, k)))
    };
    let distinct = data.queries.len();
    vec![
        Scenario::new(
            "search-scale",
            &format!("REST search, {distinct} distinct queries, limit 20"),
            load(Check::OK, |d, k| Req::get(format!("/api/v1/search?q={}&limit=20", d.query(k)))),
            Target::P99AndCpu(20.0, 400.0),
        ),
        Scenario::new(
            "gql-search-scale",
            &format!("GraphQL search page of 20, {distinct} distinct queries (latestVersion, downloads)"),
            load(Check::GRAPHQL, |d, k| {
                graphql(GQL_SEARCH_PAGE, serde_json::json!({ "q": d.queries[k as usize % d.queries.len()] }))
            }),
            Target::P99AndCpu(40.0, 800.0),
        ),
    ]
}

pub(crate) fn health_load(conns: usize) -> Load {
    Load::new(conns, Check::OK, Arc::new(|_| Req::get("/health".into())))
}

pub(crate) fn login_request(email: &str, password: &str) -> Req {
    Req::json("/api/v1/auth/login", &serde_json::json!({ "email": email, "password": password }))
}

/// Runs scenarios one after the other, each with a row of the report.
pub(crate) struct Runner<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    pub(crate) rss: &'a RssSampler,
    pub(crate) warmup: Duration,
    pub(crate) secs: Duration,
    pub(crate) rows: Vec<Row>,
}

impl Runner<'_> {
    /// Opens the next row's RSS slot, prints its "running ..." line; the row's index and the
    /// server's CPU time so far.
    pub(crate) fn begin(&self, what: &str) -> (usize, Option<u64>) {
        let i = self.rows.len();
        self.rss.set_scenario(i);
        print!("running {what} ... ");
        let _ = std::io::stdout().flush();
        (i, cpu_ticks(self.pid))
    }

    pub(crate) fn push(&mut self, sc: Scenario, i: usize, stats: Stats, cpu_us: Option<f64>) {
        let rss_kb = self.rss.peak_kb(i);
        let Scenario { key, label, load, target } = sc;
        self.rows.push(Row { key, label, connections: load.connections, stats, rss_kb, cpu_us, target });
    }

    pub(crate) async fn run(&mut self, sc: Scenario, what: &str, with_errors: bool) {
        let (i, cpu0) = self.begin(what);
        let stats = drive(self.addr, sc.load.clone(), self.warmup, self.secs, Arc::default()).await;
        let cpu_us = cpu_per_request(cpu0, cpu_ticks(self.pid), stats.all);
        if with_errors {
            println!("{} req/s, {} errors", fmt_rps(stats.rps()), stats.errors);
        } else {
            println!("{} req/s", fmt_rps(stats.rps()));
        }
        self.push(sc, i, stats, cpu_us);
    }
}

pub(crate) async fn scenarios(
    opts: &Opts,
    backend: &str,
    postgres: bool,
    warmup: Duration,
    secs: Duration,
    setup: Setup,
) -> i32 {
    let Setup { mut server, mut rss, idle_rss_kb, seed_secs, problems, data, account } = setup;
    let conns = opts.connections;
    let wanted = |key: &str| opts.only.as_ref().is_none_or(|o| o.iter().any(|k| k == key));

    let mut list = vec![Scenario::new("health", "GET /health", health_load(conns), Target::None)];
    list.extend(read_scenarios(&data, conns).into_iter().filter(|s| wanted(s.key)));
    if wanted("resolve") {
        list.push(resolve::scenario(&data, conns));
    }
    if opts.scale.is_some() {
        list.extend(scale_scenarios(&data, conns));
    }
    let prebuilt = ((600.0 * (opts.seconds + warmup.as_secs_f64())) as usize).min(20_000);
    for (key, label, c, tag, target) in [
        ("publish-1", "Publish, sequential", 1, "s", Target::None),
        ("publish-4", "Publish, 4 concurrent", 4, "c", Target::Rps(500.0)),
    ] {
        if wanted(key) {
            let gen = publish_generator(&data.plan, prebuilt, fresh_packages(tag, account.auth.clone()));
            list.push(Scenario::new(key, label, Load::new(c, Check::CREATED, gen), target));
        }
    }

    let mut runner = Runner { addr: server.addr, pid: server.pid, rss: &rss, warmup, secs, rows: Vec::new() };
    // The ceiling first, while the machine is as fresh as for /health (issue 19).
    let mut ceilings: Vec<Row> = Vec::new();
    if wanted("nginx") {
        let copies = wanted("download");
        if let Some(nginx) = nginx::Nginx::start(server.addr, &data, opts.versions, copies).await {
            let mut ceiling = vec![("nginx-health", "nginx: a 2-byte static file".to_owned(), health_load(conns))];
            if copies {
                let d = data.clone();
                let load = Load::new(
                    conns,
                    Check::OK,
                    Arc::new(move |k| {
                        let (name, v) = d.package_version(k);
                        Req::get(format!("/api/v1/packages/{name}/{v}/download"))
                    }),
                );
                ceiling.push(("nginx-download", "nginx: the same tarballs, static".to_owned(), load));
            }
            for (key, label, load) in ceiling {
                print!("running {label} ({conns} connections) ... ");
                let _ = std::io::stdout().flush();
                let cpu0 = nginx.cpu_ticks();
                let stats = drive(nginx.addr, load.clone(), warmup, secs, Arc::default()).await;
                let cpu_us = cpu_per_request(cpu0, nginx.cpu_ticks(), stats.all);
                println!("{} req/s, {} errors", fmt_rps(stats.rps()), stats.errors);
                let connections = load.connections;
                ceilings.push(Row { key, label, connections, stats, rss_kb: 0, cpu_us, target: Target::None });
            }
        }
    }
    let mut server_died = false;
    for sc in list {
        let what = format!("{} ({} connections)", sc.label, sc.load.connections);
        runner.run(sc, &what, true).await;
        if !server.alive() {
            server_died = true;
            break;
        }
    }

    if !server_died && wanted("login") {
        let (i, cpu0) = runner.begin(&format!("login flood ({conns} connections) with /health beside it"));
        let login_req = login_request(account.email, account.password);
        let login = Scenario::new(
            "login",
            "Login flood",
            Load::new(conns, Check::OK, Arc::new(move |_| login_req.clone())),
            Target::None,
        );
        let prober = drive_on_own_thread(runner.addr, health_load(1), warmup, secs);
        let stats = drive(runner.addr, login.load.clone(), warmup, secs, Arc::default()).await;
        let health = prober.join().unwrap_or_default();
        // Nearly all of the server's work here is the logins; /health is a rounding error.
        let cpu_us = cpu_per_request(cpu0, cpu_ticks(runner.pid), stats.all);
        println!(
            "{} logins/s, /health p99 {} ms",
            fmt_rps(stats.rps()),
            fmt_ms({
                let mut h = Stats { lat: health.lat.clone(), ..Default::default() };
                h.percentile_ms(0.99)
            })
        );
        runner.push(login, i, stats, cpu_us);
        let beside =
            Scenario::new("login-health", "GET /health during the login flood", health_load(1), Target::P99(10.0));
        runner.push(beside, i, health, None);
        server_died = !server.alive();
    }

    if !server_died {
        let again = Scenario::new("health-end", "GET /health again, at the end", health_load(conns), Target::None);
        runner.run(again, "GET /health again (drift check)", false).await;
    }
    let mut rows = runner.rows;
    let nginx_rps = |key: &str| ceilings.iter().find(|r| r.key == key).map(|r| r.stats.rps());
    let (nginx_health, nginx_download) = (nginx_rps("nginx-health"), nginx_rps("nginx-download"));
    rows.extend(ceilings);

    let hwm_kb = read_status(server.pid, "VmHWM:").unwrap_or(0);
    rss.finish();
    let sampled_kb = rss.overall_kb();

    // 3. Stop the server: SIGTERM, and a clean exit.
    let stop = if server_died {
        Err(format!("the server died during the run; log:\n{}", server.log_tail()))
    } else {
        server.stop()
    };

    // 4. Report.
    let health_rps = rows.first().map(|r| r.stats.rps()).unwrap_or(0.0);
    let slack = if postgres { 2.0 } else { 1.0 };
    let mut out = String::new();
    out.push_str(&format!(
        "\n### {backend}, {} x {} packages, {conns} connections, {:.0} s per scenario\n\n",
        opts.packages, opts.versions, opts.seconds
    ));
    out.push_str(&format!(
        "Machine: {}. Date: {}. Commit: {}. Seed: {:.1} s. Server log filter and settings: {}.\n\n",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        commit(),
        seed_secs,
        log_filter()
    ));
    out.push_str(
        "| scenario | conns | req/s | x /health | x nginx | p50 ms | p99 ms | errors | server CPU µs/req | peak RSS MB | target | result |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    let mut total_errors = 0;
    let mut error_lines = Vec::new();
    for row in rows.iter_mut() {
        let (target, verdict) = judge(row, health_rps, slack);
        let rps = row.stats.rps();
        let ratio = if health_rps > 0.0 { format!("{:.3}", rps / health_rps) } else { "-".into() };
        // Downloads against nginx serving the same files; everything else against its 2-byte file.
        let ceiling = if row.key.starts_with("nginx") {
            None
        } else if row.key.starts_with("download") {
            nginx_download
        } else {
            nginx_health
        };
        let x_nginx = ceiling.filter(|c| *c > 0.0).map(|c| format!("{:.3}", rps / c)).unwrap_or_else(|| "-".into());
        let p50 = fmt_ms(row.stats.percentile_ms(0.50));
        let p99 = fmt_ms(row.stats.percentile_ms(0.99));
        total_errors += row.stats.errors;
        if let Some(e) = row.stats.first_errors.first() {
            error_lines.push(format!("- {} ({}): first error: {e}", row.label, row.key));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            row.label,
            row.connections,
            fmt_rps(rps),
            ratio,
            x_nginx,
            p50,
            p99,
            row.stats.errors,
            row.cpu_us.map(|c| format!("{c:.0}")).unwrap_or_else(|| "-".into()),
            row.rss_kb as f64 / 1024.0,
            target,
            verdict
        ));
    }
    // The scale mode's bound is issue 16's (150 MB at 100,000 packages).
    let rss_target_mb = if opts.scale.is_some() { 150 } else { 100 };
    let rss_ok = hwm_kb.max(sampled_kb) <= rss_target_mb * 1024;
    out.push_str(&format!(
        "\nServer memory: idle after start {:.0} MB; peak RSS (VmHWM) {:.0} MB; highest sampled VmRSS {:.0} MB; \
         target <= {rss_target_mb} MB: {}.\n",
        idle_rss_kb as f64 / 1024.0,
        hwm_kb as f64 / 1024.0,
        sampled_kb as f64 / 1024.0,
        if rss_ok { "met" } else { "MISSED" }
    ));
    println!("{out}");
    for l in &error_lines {
        println!("{l}");
    }
    for p in &problems {
        println!("- preflight: wrong answer from {p}");
    }

    let mut code = 0;
    if let Err(e) = stop {
        eprintln!("error: {e}");
        code = 1;
    } else {
        println!("server stopped cleanly on SIGTERM (exit status 0)");
    }
    if total_errors > 0 || !problems.is_empty() {
        eprintln!("error: {total_errors} failed requests and {} wrong preflight answers", problems.len());
        code = 1;
    }
    code
}
