//! The soak: `cargo bench --bench load -- --soak [MINUTES] [--sample-every S] [--scrape-metrics S]`.
//!
//! One seeded server, a mixed load for MINUTES: back-to-back REST and GraphQL reads, searches and
//! downloads, beside a trickle of publishes (~2/s, alternately a new version of a seeded package by
//! its owner and a version of a fresh package) and of logins (~1/s, rotating over the accounts);
//! with `--scrape-metrics S`, also a GET /metrics every S seconds, as a Prometheus server would.
//! Every --sample-every seconds it prints a sample of the server process: requests and errors so far, req/s in
//! the interval, VmRSS, open file descriptors and threads. At the end, totals per stream and a
//! verdict on whether RSS stayed flat and file descriptors did not grow after the warm-up. It
//! reports, never asserts, speeds and memory; it exits non-zero on any failed request, a wrong
//! preflight answer, or a server that dies or does not stop cleanly.
use super::*;

/// The read streams: scenario key and connections (all back to back).
const READS: &[(&str, usize)] =
    &[("package", 3), ("version", 3), ("search", 2), ("gql-package", 3), ("gql-search", 2), ("download", 3)];
/// One connection publishing, one request started at most every so often.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// One connection logging in, one request started at most every so often.
const LOGIN_EVERY: Duration = Duration::from_secs(1);
/// RSS and fds are compared from the first sample at or after this much load.
const WARM_UP: Duration = Duration::from_secs(60);
/// RSS growth from the warm-up to the end within max(this, RSS_FLAT_PERCENT) counts as flat.
const RSS_FLAT_KB: u64 = 4 * 1024;
const RSS_FLAT_PERCENT: f64 = 5.0;
/// More open file descriptors at the end than after the warm-up by more than this counts as growth
/// (a pool connection opened or closed at the instant of a sample is not a leak).
const FD_SLACK: u64 = 2;
/// Error details printed at the end.
const ERRORS_SHOWN: usize = 10;

#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    requests: u64,
    errors: u64,
    rss_kb: Option<u64>,
    /// The anonymous part of RSS (heap, stacks); the rest is mapped files and shared memory.
    anon_kb: Option<u64>,
    fds: Option<u64>,
    threads: Option<u64>,
}

impl Sample {
    fn take(pid: u32, at: Duration, live: &Live) -> Sample {
        Sample {
            at,
            requests: live.requests.load(Ordering::Relaxed),
            errors: live.errors.load(Ordering::Relaxed),
            rss_kb: read_status(pid, "VmRSS:"),
            anon_kb: read_status(pid, "RssAnon:"),
            fds: std::fs::read_dir(format!("/proc/{pid}/fd")).ok().map(|d| d.count() as u64),
            threads: read_status(pid, "Threads:"),
        }
    }

    fn line(&self, prev: Option<&Sample>) -> String {
        let rate = prev
            .map(|p| (self.requests - p.requests) as f64 / (self.at - p.at).as_secs_f64().max(1e-9))
            .map(fmt_rps)
            .unwrap_or_else(|| "-".into());
        format!(
            "{:>8} {:>10} {:>7} {:>8} {:>8} {:>5} {:>7}",
            elapsed(self.at),
            self.requests,
            self.errors,
            rate,
            opt(self.rss_kb.map(mb)),
            opt(self.fds),
            opt(self.threads)
        )
    }
}

const HEADER: &str = " elapsed   requests  errors    req/s   RSS MB   fds threads";

fn elapsed(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

/// The soak's publishes: even requests a new version (2.x.0) of the next seeded package, by its
/// owner; odd ones the next version of fresh packages of three versions each, by the bench account.
fn publishes(plan: Arc<Vec<PlannedPackage>>, owners: Vec<HeaderValue>, fresh: HeaderValue) -> Generator {
    let plan2 = plan.clone();
    publish_generator(&plan2, 0, move |k| {
        let j = k / 2;
        if k % 2 == 0 {
            let template = j as usize % plan.len();
            let p = &plan[template];
            PublishPick {
                auth: owners[p.owner].clone(),
                template,
                name: p.name.clone(),
                version: format!("2.{}.0", j as usize / plan.len()),
            }
        } else {
            PublishPick {
                auth: fresh.clone(),
                template: (j / 3) as usize,
                name: format!("soakpub-{}", j / 3),
                version: seed::version((j % 3) as u32),
            }
        }
    })
}

/// The commit, and whether the server's sources differ from it (the binary is built from the tree).
fn commit_and_tree() -> String {
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--", "src", "entity", "migration", "Cargo.toml", "Cargo.lock"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    format!("{}{}", commit(), if dirty { " plus uncommitted changes to the server's sources" } else { "" })
}

/// How many warnings and errors the server logged, and the first few (colours removed).
fn server_warnings(log: &Path) -> (usize, Vec<String>) {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(log) else { return (0, Vec::new()) };
    let (mut count, mut first) = (0, Vec::new());
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let mut plain = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // An ANSI escape: ESC [ parameters, ending with a letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        let level = plain.split_whitespace().nth(1).unwrap_or_default();
        let json_level = plain.contains("\"level\":\"WARN\"") || plain.contains("\"level\":\"ERROR\"");
        if (matches!(level, "WARN" | "ERROR") || json_level) && !plain.contains("JWT_SECRET") {
            count += 1;
            if first.len() < ERROR_DETAILS {
                first.push(plain.chars().take(400).collect());
            }
        }
    }
    (count, first)
}

fn seed_email(user: &str) -> String {
    format!("{user}@seed.example.com")
}

pub(crate) async fn run(opts: &Opts, backend: &str, minutes: f64, setup: Setup) -> i32 {
    let Setup { mut server, mut rss, idle_rss_kb, seed_secs, problems, data, account } = setup;
    let (addr, pid, log) = (server.addr, server.pid, server.log.clone());
    let commit = commit_and_tree();
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let every = Duration::from_secs_f64(opts.sample_every);

    // The seeded accounts own the seeded packages that get new versions.
    let mut owners = Vec::new();
    for (user, _) in seed::USERS {
        match request_once(addr, &login_request(&seed_email(user), seed::SEED_PASSWORD)).await {
            Ok((StatusCode::OK, j)) if j["token"].is_string() => owners.push(
                HeaderValue::from_str(&format!("Bearer {}", j["token"].as_str().unwrap_or_default()))
                    .expect("token is a header value"),
            ),
            other => {
                eprintln!("error: logging in as the seeded account {user}: {other:?}");
                let _ = server.stop();
                return 1;
            }
        }
    }
    let mut logins: Vec<Req> =
        seed::USERS.iter().map(|(u, _)| login_request(&seed_email(u), seed::SEED_PASSWORD)).collect();
    logins.push(login_request(account.email, account.password));
    let logins = Arc::new(logins);

    let mut streams: Vec<Scenario> = read_scenarios(&data, 0)
        .into_iter()
        .filter_map(|mut s| {
            let &(_, c) = READS.iter().find(|(k, _)| *k == s.key)?;
            s.load.connections = c;
            Some(s)
        })
        .collect();
    // Without publishes the data stops growing, which tells memory that grows with the catalog
    // (cached version lists, larger pages) from memory that grows with requests.
    if !opts.no_publish {
        let publish = publishes(data.plan.clone(), owners, account.auth.clone());
        streams.push(Scenario::new(
            "publish",
            "Publish (new versions of seeded and fresh packages)",
            Load { pace: Some(PUBLISH_EVERY), ..Load::new(1, Check::CREATED, publish) },
            Target::None,
        ));
    }
    streams.push(Scenario::new(
        "login",
        "Login (rotating accounts)",
        Load {
            pace: Some(LOGIN_EVERY),
            ..Load::new(1, Check::OK, Arc::new(move |k| logins[k as usize % logins.len()].clone()))
        },
        Target::None,
    ));
    if let Some(secs) = opts.scrape_every {
        streams.push(Scenario::new(
            "metrics",
            "GET /metrics (a Prometheus scrape)",
            Load {
                pace: Some(Duration::from_secs_f64(secs)),
                ..Load::new(1, Check::OK, Arc::new(|_| Req::get("/metrics".into())))
            },
            Target::None,
        ));
    }
    let conns: usize = streams.iter().map(|s| s.load.connections).sum();
    println!(
        "load: {}; {conns} connections",
        streams
            .iter()
            .map(|s| match s.load.pace {
                Some(p) => format!("{} x{} (one every {:.1} s)", s.key, s.load.connections, p.as_secs_f64()),
                None => format!("{} x{}", s.key, s.load.connections),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The load, until `live.stop`.
    let live = Arc::new(Live::default());
    let forever = duration + Duration::from_secs(24 * 3600);
    let handles: Vec<_> = streams
        .iter()
        .map(|s| tokio::spawn(drive(addr, s.load.clone(), Duration::ZERO, forever, live.clone())))
        .collect();
    let begin = Instant::now();
    let end = begin + duration;
    let mut samples = vec![Sample::take(pid, Duration::ZERO, &live)];
    println!("\n{HEADER}\n{}", samples[0].line(None));
    let mut died = false;
    let mut next = begin + every;
    'run: loop {
        let at = next.min(end);
        // Notice a dead server within a second.
        while Instant::now() < at {
            tokio::time::sleep_until(at.min(Instant::now() + Duration::from_secs(1)).into()).await;
            if !server.alive() {
                died = true;
                break 'run;
            }
        }
        let s = Sample::take(pid, begin.elapsed(), &live);
        println!("{}", s.line(samples.last()));
        samples.push(s);
        if at >= end {
            break;
        }
        next += every;
    }
    live.stop.store(true, Ordering::Relaxed);
    let load_secs = begin.elapsed().as_secs_f64();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap_or_default());
    }
    let after = if !died && server.alive() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = Sample::take(pid, begin.elapsed(), &live);
        println!("{}   (2 s after the load stopped)", s.line(None));
        Some(s)
    } else {
        None
    };
    died |= !server.alive();

    let hwm_kb = read_status(pid, "VmHWM:");
    rss.finish();
    let stop =
        if died { Err(format!("the server died during the soak; log:\n{}", server.log_tail())) } else { server.stop() };

    // Report.
    let mut out = String::new();
    out.push_str(&format!(
        "\n### Soak: {backend}, {} x {} packages, {} min, {conns} connections\n\n",
        opts.packages, opts.versions, minutes
    ));
    out.push_str(&format!(
        "Machine: {}. Date: {}. Commit: {}. Seed: {:.1} s. Server log filter and settings: {}. Load average at the end: {}.\n\n",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        commit,
        seed_secs,
        log_filter(),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    ));
    out.push_str("| stream | conns | requests | errors | req/s | p50 ms | p99 ms |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let (mut total, mut total_errors) = (0, 0);
    let mut error_lines = Vec::new();
    for (s, r) in streams.iter().zip(results.iter_mut()) {
        total += r.all;
        total_errors += r.errors;
        for e in &r.first_errors {
            error_lines.push(format!("- {} ({}): {e}", s.label, s.key));
        }
        let (p50, p99) = (fmt_ms(r.percentile_ms(0.50)), fmt_ms(r.percentile_ms(0.99)));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {p50} | {p99} |\n",
            s.label,
            s.load.connections,
            r.all,
            r.errors,
            fmt_rps(r.all as f64 / load_secs),
        ));
    }
    out.push_str(&format!(
        "| total | {conns} | {total} | {total_errors} | {} | | |\n\n",
        fmt_rps(total as f64 / load_secs)
    ));

    // Memory and descriptors, from the first sample after the warm-up to the end of the load.
    let during = &samples[1..];
    let base_i = during.iter().position(|s| s.at >= WARM_UP).unwrap_or(0);
    let verdict = match (during.get(base_i), during.last()) {
        (Some(base), Some(last)) if !died => {
            let warm = if base.at >= WARM_UP {
                "after warm-up"
            } else {
                out.push_str("(The run is shorter than the warm-up: compared from the first sample under load.)\n");
                "at the first sample"
            };
            let (b, e) = (base.rss_kb.unwrap_or(0), last.rss_kb.unwrap_or(0));
            let sampled_max = during.iter().filter_map(|s| s.rss_kb).max().unwrap_or(0).max(rss.overall_kb());
            out.push_str(&format!(
                "Server RSS: {} MB idle after start, {} MB before the load, {} MB {warm} ({}), {} MB at the end ({}), \
                 max {} MB (sampled every 50 ms; VmHWM {} MB){}.\n",
                mb(idle_rss_kb),
                opt(samples[0].rss_kb.map(mb)),
                mb(b),
                elapsed(base.at),
                mb(e),
                elapsed(last.at),
                mb(sampled_max),
                opt(hwm_kb.map(mb)),
                after
                    .and_then(|a| a.rss_kb)
                    .map(|kb| format!(", {} MB 2 s after the load stopped", mb(kb)))
                    .unwrap_or_default()
            ));
            out.push_str(&format!(
                "Of which anonymous (RssAnon: heap, stacks): {} MB {warm}, {} MB at the end.\n",
                opt(base.anon_kb.map(mb)),
                opt(last.anon_kb.map(mb))
            ));
            let fds: Vec<u64> = during.iter().filter_map(|s| s.fds).collect();
            let threads: Vec<u64> = during.iter().filter_map(|s| s.threads).collect();
            let range =
                |v: &[u64]| format!("min {}, max {}, end {}", opt(v.iter().min()), opt(v.iter().max()), opt(v.last()));
            out.push_str(&format!(
                "Open file descriptors under load: {} ({} before the load, {} {warm}{}). Threads: {}.\n",
                range(&fds),
                opt(samples[0].fds),
                opt(base.fds),
                after.and_then(|a| a.fds).map(|n| format!(", {n} 2 s after the load stopped")).unwrap_or_default(),
                range(&threads)
            ));

            let growth = e as f64 - b as f64;
            let pct = if b > 0 { growth / b as f64 * 100.0 } else { 0.0 };
            let flat = growth <= (RSS_FLAT_KB as f64).max(b as f64 * RSS_FLAT_PERCENT / 100.0);
            let mut rss_verdict = format!(
                "RSS {} ({:+.1} MB, {:+.1} % from {} to {})",
                if flat { "stayed flat" } else { "GREW" },
                growth / 1024.0,
                pct,
                elapsed(base.at),
                elapsed(last.at)
            );
            // Does it level off? Growth in the first and second half of the compared span.
            let span = &during[base_i..];
            if span.len() >= 3 {
                let mid = &span[span.len() / 2];
                let m = mid.rss_kb.unwrap_or(0) as f64;
                let (first, second) = ((m - b as f64) / 1024.0, (e as f64 - m) / 1024.0);
                let shape = if second <= 1.0f64.max(first / 4.0) { "levelling off" } else { "still growing" };
                rss_verdict.push_str(&format!(
                    "; {first:+.1} MB to {}, {second:+.1} MB after{}",
                    elapsed(mid.at),
                    if flat && second <= 1.0 { String::new() } else { format!(": {shape}") }
                ));
            }
            let served = last.requests.saturating_sub(base.requests);
            if served > 0 {
                rss_verdict.push_str(&format!(", {:.0} bytes per request served", growth * 1024.0 / served as f64));
            }
            let fd_grew = match (base.fds, last.fds) {
                (Some(b), Some(e)) => e > b + FD_SLACK,
                _ => true,
            };
            let fd_verdict = if fd_grew {
                format!("open fds GREW ({} {warm}, {} at the end)", opt(base.fds), opt(last.fds))
            } else {
                format!("open fds did not grow ({} {warm}, {} at the end)", opt(base.fds), opt(last.fds))
            };
            format!("{rss_verdict}; {fd_verdict}.")
        }
        _ => "no verdict: the server died during the soak.".into(),
    };
    out.push_str(&format!("\nVerdict: {verdict}\n"));
    println!("{out}");
    if !error_lines.is_empty() {
        println!("First errors:");
        for l in error_lines.iter().take(ERRORS_SHOWN) {
            println!("{l}");
        }
    }
    let (warnings, first_warnings) = server_warnings(&log);
    if warnings > 0 {
        println!("The server logged {warnings} warnings or errors; the first:");
        for w in &first_warnings {
            println!("- {w}");
        }
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
