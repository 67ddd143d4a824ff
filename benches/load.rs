//! Load benchmark: `cargo bench --bench load [-- --quick] [--packages N] [--versions M] [--seconds S]
//! [--connections C] [--client-threads T] [--only a,b]`, or a soak: `cargo bench --bench load -- --soak
//! [MINUTES] [--sample-every S]`.
//!
//! Starts the real release binary as a separate process (temporary DATA_DIR, a free port, rate limits
//! off; SQLite by default, a fresh PostgreSQL database when BENCH_DATABASE_URL is set), seeds it with
//! `raven-registry seed`, then drives each scenario with concurrent keep-alive HTTP/1.1 connections
//! rotating over the seeded data. Every figure is also given as a ratio to the `/health` figure of
//! the same run, so results compare across noisy machines. It reports, never asserts, speeds; it does
//! exit non-zero when a request fails, the server cannot start, or the server does not stop cleanly.
//!
//! The soak (`soak.rs`) runs a mixed load against one server for minutes and watches its RSS, open
//! file descriptors and threads.
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use raven_registry::seed::{self, PlannedPackage};

#[path = "load/soak.rs"]
mod soak;

const BIN: &str = env!("CARGO_BIN_EXE_raven-registry");

#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    packages: u32,
    versions: u32,
    seconds: f64,
    connections: usize,
    client_threads: usize,
    only: Option<Vec<String>>,
    /// Soak for this many minutes instead of the scenarios.
    soak: Option<f64>,
    /// Seconds between two soak samples.
    sample_every: f64,
    /// During the soak, GET /metrics every so many seconds, as a Prometheus server would.
    scrape_every: Option<f64>,
    /// During the soak, no publish stream: the catalog stays the size it was seeded at.
    no_publish: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench load -- [--quick] [--packages N] [--versions M] [--seconds S] \
         [--connections C] [--client-threads T] [--only scenario,scenario]\n\
         \x20      cargo bench --bench load -- --soak [MINUTES (default 10)] [--sample-every S (default 30)] \
         [--scrape-metrics S] [--no-publish] [--quick] [--packages N] [--versions M] [--client-threads T]\n\
         scenarios: package version search gql-package gql-search download stats publish-1 publish-4 login\n\
         env: BENCH_DATABASE_URL=postgres://... runs on a fresh PostgreSQL database"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
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

// ---------------------------------------------------------------------------------------------
// The server process

struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn base_env(data_dir: &Path, port: u16, database_url: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("PORT".to_owned(), port.to_string()),
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PUBLIC_URL".to_owned(), format!("http://127.0.0.1:{port}")),
        ("RATE_LIMITS_ENABLED".to_owned(), "false".to_owned()),
        ("STORAGE_TYPE".to_owned(), "local".to_owned()),
    ];
    if let Some(u) = database_url {
        env.push(("DATABASE_URL".to_owned(), u.to_owned()));
    }
    env
}

/// Runs a command of the binary, stopping the process if it fails to start.
fn command(env: &[(String, String)]) -> Command {
    let mut c = Command::new(BIN);
    // Whatever the calling shell sets, the benchmark decides these.
    for var in ["DATABASE_URL", "STORAGE_PATH", "JWT_SECRET", "S3_BUCKET", "S3_ENDPOINT"] {
        c.env_remove(var);
    }
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn cpu_per_request(before: Option<u64>, after: Option<u64>, requests: u64) -> Option<f64> {
    let ticks = after?.checked_sub(before?)?;
    (requests > 0).then(|| ticks as f64 / clock_ticks_per_second() * 1e6 / requests as f64)
}

/// A number of /proc/PID/status: kB for the `Vm*:` fields, a count for `Threads:`.
fn read_status(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Server {
    fn start(env: &[(String, String)], port: u16, log: PathBuf) -> Result<Server, String> {
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = command(env)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {BIN}: {e}"))?;
        let pid = child.id();
        let mut server = Server { child, pid, addr: SocketAddr::from(([127, 0, 0, 1], port)), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited during start-up ({status}); log:\n{}", server.log_tail()));
            }
            if let Ok(mut s) = std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)) {
                use std::io::Read;
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.1 200") {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("the server did not answer /health in 60 s; log:\n{}", server.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) -> Result<(), String> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) if s.success() => return Ok(()),
                Ok(Some(s)) => {
                    return Err(format!("the server exited with {s} after SIGTERM; log:\n{}", self.log_tail()))
                }
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the server did not stop within 30 s of SIGTERM (killed)".into());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// A PostgreSQL database created for this run and dropped at the end.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Result<PgDatabase, String> {
        use sea_orm::{ConnectionTrait, Database};
        let name = format!("raven_bench_{}_{}", std::process::id(), chrono::Utc::now().timestamp());
        let admin = Database::connect(admin_url).await.map_err(|e| format!("BENCH_DATABASE_URL: {e}"))?;
        admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.map_err(|e| e.to_string())?;
        admin.close().await.ok();
        let mut url = url::Url::parse(admin_url).map_err(|e| format!("BENCH_DATABASE_URL: {e}"))?;
        url.set_path(&format!("/{name}"));
        Ok(PgDatabase { admin_url: admin_url.to_owned(), name, url: url.to_string() })
    }

    async fn drop_database(&self) {
        use sea_orm::{ConnectionTrait, Database};
        match Database::connect(&self.admin_url).await {
            Ok(admin) => {
                if let Err(e) =
                    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await
                {
                    eprintln!("warning: could not drop database {}: {e}", self.name);
                }
                admin.close().await.ok();
            }
            Err(e) => eprintln!("warning: could not drop database {}: {e}", self.name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 keep-alive connections (hyper directly: the cheapest client, since it shares the machine)

struct Conn {
    addr: SocketAddr,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, sender: None }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).ok();
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn send(&mut self, req: &Req) -> Result<(StatusCode, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected");
        if let Err(e) = sender.ready().await {
            self.sender = None;
            return Err(format!("connection: {e}"));
        }
        let mut b =
            Request::builder().method(req.method.clone()).uri(req.path.as_str()).header(header::HOST, "127.0.0.1");
        if let Some(ct) = &req.content_type {
            b = b.header(header::CONTENT_TYPE, ct.clone());
        }
        if let Some(auth) = &req.auth {
            b = b.header(header::AUTHORIZATION, auth.clone());
        }
        let request = b.body(Full::new(req.body.clone())).map_err(|e| e.to_string())?;
        let res = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(format!("request: {e}"));
            }
        };
        let status = res.status();
        match res.into_body().collect().await {
            Ok(body) => Ok((status, body.to_bytes())),
            Err(e) => {
                self.sender = None;
                Err(format!("body: {e}"))
            }
        }
    }
}

#[derive(Clone)]
struct Req {
    method: Method,
    path: String,
    body: Bytes,
    content_type: Option<HeaderValue>,
    auth: Option<HeaderValue>,
}

impl Req {
    fn get(path: String) -> Req {
        Req { method: Method::GET, path, body: Bytes::new(), content_type: None, auth: None }
    }

    fn json(path: &str, body: &serde_json::Value) -> Req {
        Req {
            method: Method::POST,
            path: path.to_owned(),
            body: Bytes::from(serde_json::to_vec(body).expect("json")),
            content_type: Some(HeaderValue::from_static("application/json")),
            auth: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Generator = Arc<dyn Fn(u64) -> Req + Send + Sync>;

#[derive(Clone, Copy)]
struct Check {
    status: StatusCode,
    graphql: bool,
}

impl Check {
    const OK: Check = Check { status: StatusCode::OK, graphql: false };
    const CREATED: Check = Check { status: StatusCode::CREATED, graphql: false };
    const GRAPHQL: Check = Check { status: StatusCode::OK, graphql: true };

    fn verify(&self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        let graphql_error = self.graphql && memchr_find(body, b"\"errors\"");
        if status != self.status || graphql_error {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("{status}: {text}"));
        }
        Ok(())
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// How many error details a run keeps.
const ERROR_DETAILS: usize = 5;

#[derive(Default)]
struct Stats {
    ok: u64,
    errors: u64,
    /// Every completed request, warm-up included (server CPU time is divided by it).
    all: u64,
    secs: f64,
    /// Latencies of successful requests, in microseconds.
    lat: Vec<u32>,
    bytes: u64,
    /// The first few errors.
    first_errors: Vec<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.all += other.all;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.lat.extend(other.lat);
        let room = ERROR_DETAILS.saturating_sub(self.first_errors.len());
        self.first_errors.extend(other.first_errors.into_iter().take(room));
    }

    fn rps(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }

    fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.lat.is_empty() {
            return None;
        }
        self.lat.sort_unstable();
        let idx = ((self.lat.len() as f64 * p).ceil() as usize).clamp(1, self.lat.len()) - 1;
        Some(self.lat[idx] as f64 / 1000.0)
    }
}

/// A stream of requests: what to send and expect, on how many connections, how fast.
#[derive(Clone)]
struct Load {
    gen: Generator,
    check: Check,
    connections: usize,
    /// The least time between the starts of two requests on one connection; `None`: back to back.
    pace: Option<Duration>,
}

impl Load {
    fn new(connections: usize, check: Check, gen: Generator) -> Load {
        Load { gen, check, connections, pace: None }
    }
}

/// Shared by the drivers of a run: a stop flag, and running totals (the soak samples them).
#[derive(Default)]
struct Live {
    stop: AtomicBool,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// Drives `load` for `warmup + measure` (or until `live.stop`), recording only requests that start
/// and finish inside the measured window.
async fn drive(addr: SocketAddr, load: Load, warmup: Duration, measure: Duration, live: Arc<Live>) -> Stats {
    let counter = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let start = begin + warmup;
    let end = start + measure;
    let mut tasks = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        let (load, counter, live) = (load.clone(), counter.clone(), live.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut s = Stats { lat: Vec::with_capacity(4096), ..Default::default() };
            loop {
                let t0 = Instant::now();
                if t0 >= end || live.stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = (load.gen)(counter.fetch_add(1, Ordering::Relaxed));
                let result = conn.send(&req).await;
                let t1 = Instant::now();
                let measured = t0 >= start && t1 <= end;
                let outcome = result.and_then(|(status, body)| load.check.verify(status, &body).map(|()| body.len()));
                s.all += 1;
                live.requests.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Ok(n) if measured => {
                        s.ok += 1;
                        s.bytes += n as u64;
                        s.lat.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Failures count whenever they happen, warm-up included.
                        s.errors += 1;
                        live.errors.fetch_add(1, Ordering::Relaxed);
                        if s.first_errors.len() < ERROR_DETAILS {
                            s.first_errors.push(e);
                        }
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                if let Some(pace) = load.pace {
                    tokio::time::sleep_until((t0 + pace).into()).await;
                }
            }
            s
        }));
    }
    let mut total = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            total.merge(s);
        }
    }
    total.secs = measure.as_secs_f64();
    total
}

/// The same as `drive`, on a thread and runtime of its own, so its latencies are not disturbed by
/// the client work of a concurrent scenario.
fn drive_on_own_thread(
    addr: SocketAddr,
    load: Load,
    warmup: Duration,
    measure: Duration,
) -> std::thread::JoinHandle<Stats> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(drive(addr, load, warmup, measure, Arc::default()))
    })
}

/// Peak VmRSS per scenario, sampled every 50 ms.
struct RssSampler {
    stop: Arc<AtomicBool>,
    current: Arc<AtomicUsize>,
    peaks: Arc<Mutex<Vec<u64>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let current = Arc::new(AtomicUsize::new(0));
        let peaks = Arc::new(Mutex::new(vec![0u64; 64]));
        let (s, c, p) = (stop.clone(), current.clone(), peaks.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = read_status(pid, "VmRSS:") {
                    let mut peaks = p.lock().unwrap();
                    let i = c.load(Ordering::Relaxed).min(63);
                    peaks[i] = peaks[i].max(kb);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler { stop, current, peaks, handle: Some(handle) }
    }

    fn set_scenario(&self, i: usize) {
        self.current.store(i, Ordering::Relaxed);
    }

    fn peak_kb(&self, i: usize) -> u64 {
        self.peaks.lock().unwrap()[i.min(63)]
    }

    fn overall_kb(&self) -> u64 {
        self.peaks.lock().unwrap().iter().copied().max().unwrap_or(0)
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A target of the issue, relative to /health of the same run (or absolute).
#[derive(Clone, Copy)]
enum Target {
    None,
    Ratio(f64),
    RatioAndP99(f64, f64),
    Rps(f64),
    P99(f64),
}

struct Row {
    key: &'static str,
    label: String,
    connections: usize,
    stats: Stats,
    rss_kb: u64,
    /// Server CPU time (user + system) per request over the whole scenario, warm-up included.
    cpu_us: Option<f64>,
    target: Target,
}

/// The single-quoted GraphQL documents of the issue.
const GQL_PACKAGE: &str = "query($n: String!) { package(name: $n) { name latestVersion { version } \
                           versions(first: 10) { nodes { version } } owners { user { username } } } }";
const GQL_SEARCH: &str = "query($q: String!) { search(query: $q, first: 20) { nodes { name \
                          latestVersion { version } owners { user { username } } } } }";

fn graphql(query: &str, variables: serde_json::Value) -> Req {
    Req::json("/graphql", &serde_json::json!({ "query": query, "variables": variables }))
}

const BOUNDARY: &str = "raven-bench-boundary-7d3f9a";

fn publish_request(auth: &HeaderValue, name: &str, version: &str, tarball: &[u8]) -> Req {
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
struct PublishPick {
    auth: HeaderValue,
    template: usize,
    name: String,
    version: String,
}

/// Publish requests chosen by `pick`. The first `prebuilt` requests are built before the clock
/// starts; any beyond are built on demand.
fn publish_generator(
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
fn fresh_packages(tag: &'static str, auth: HeaderValue) -> impl Fn(u64) -> PublishPick + Send + Sync + 'static {
    move |k| PublishPick {
        auth: auth.clone(),
        template: k as usize,
        name: format!("loadpub-{tag}-{k}"),
        version: seed::version(0),
    }
}

async fn request_once(addr: SocketAddr, req: &Req) -> Result<(StatusCode, serde_json::Value), String> {
    let mut c = Conn::new(addr);
    let (status, body) = c.send(req).await?;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// A preflight check of a JSON answer.
type JsonCheck<'a> = (&'static str, Req, Box<dyn Fn(StatusCode, &serde_json::Value) -> bool + 'a>);

/// One request per scenario with a full check of the answer, before anything is timed.
async fn preflight(addr: SocketAddr, plan: &[PlannedPackage], versions: u32) -> Vec<String> {
    let mut problems = Vec::new();
    let p = &plan[plan.len() / 2];
    let v = seed::version(versions - 1);
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

// ---------------------------------------------------------------------------------------------
// Report

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms < 10.0 => format!("{ms:.2}"),
        Some(ms) => format!("{ms:.1}"),
    }
}

fn fmt_rps(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| format!(", {:.0} GiB RAM", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores, {model}{mem}")
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// "met" / "MISSED" against the targets (halved, or doubled for latency, on PostgreSQL).
fn judge(row: &mut Row, health: f64, slack: f64) -> (String, String) {
    let rps = row.stats.rps();
    let ratio = if health > 0.0 { rps / health } else { 0.0 };
    let p99 = row.stats.percentile_ms(0.99).unwrap_or(f64::INFINITY);
    let verdict = |ok: bool| if ok { "met".to_owned() } else { "MISSED".to_owned() };
    match row.target {
        Target::None => (String::new(), String::new()),
        Target::Ratio(t) => (format!(">= {:.2}x", t / slack), verdict(ratio >= t / slack)),
        Target::RatioAndP99(t, ms) => (
            format!(">= {:.2}x, p99 <= {:.0} ms", t / slack, ms * slack),
            verdict(ratio >= t / slack && p99 <= ms * slack),
        ),
        Target::Rps(t) => (format!(">= {:.0}/s", t / slack), verdict(rps >= t / slack)),
        Target::P99(ms) => (format!("p99 < {:.0} ms", ms * slack), verdict(p99 < ms * slack)),
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let opts = parse_opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads)
        .enable_all()
        .build()
        .expect("client runtime");
    let code = rt.block_on(run(opts));
    std::process::exit(code);
}

async fn run(opts: Opts) -> i32 {
    let pg_admin = std::env::var("BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty());
    let pg = match &pg_admin {
        Some(url) => match PgDatabase::create(url).await {
            Ok(db) => Some(db),
            Err(e) => {
                eprintln!("error: cannot create the benchmark database: {e}");
                return 1;
            }
        },
        None => None,
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let code = run_with(&opts, dir.path(), pg.as_ref().map(|p| p.url.as_str())).await;
    if let Some(pg) = &pg {
        pg.drop_database().await;
    }
    code
}

/// The seeded data, as the request generators rotate over it.
struct Data {
    plan: Arc<Vec<PlannedPackage>>,
    names: Arc<Vec<String>>,
    version_names: Arc<Vec<String>>,
    /// Words that occur in the seeded data (all of them with the default 1,000 packages).
    words: Arc<Vec<&'static str>>,
}

impl Data {
    fn new(packages: u32, versions: u32) -> Data {
        let plan = Arc::new(seed::plan(packages as usize));
        let names = Arc::new(plan.iter().map(|p| p.name.clone()).collect());
        let version_names = Arc::new((0..versions).map(seed::version).collect());
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
        Data { plan, names, version_names, words: Arc::new(present) }
    }

    fn name(&self, k: u64) -> &str {
        &self.names[k as usize % self.names.len()]
    }

    fn word(&self, k: u64) -> &'static str {
        self.words[k as usize % self.words.len()]
    }

    /// The `k`-th (package, version) pair, all versions of a package in a row.
    fn package_version(&self, k: u64) -> (&str, &str) {
        let (n, v, k) = (&self.names, &self.version_names, k as usize);
        (&n[(k / v.len()) % n.len()], &v[k % v.len()])
    }
}

/// One scenario of the normal run (or one stream of the soak).
struct Scenario {
    key: &'static str,
    label: String,
    load: Load,
    target: Target,
}

impl Scenario {
    fn new(key: &'static str, label: &str, load: Load, target: Target) -> Scenario {
        Scenario { key, label: label.to_owned(), load, target }
    }
}

/// The read scenarios, shared by the normal run and the soak, each on `conns` connections.
fn read_scenarios(data: &Arc<Data>, conns: usize) -> Vec<Scenario> {
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

fn health_load(conns: usize) -> Load {
    Load::new(conns, Check::OK, Arc::new(|_| Req::get("/health".into())))
}

/// An account made for the run: it publishes fresh packages and logs in.
struct Account {
    email: &'static str,
    password: &'static str,
    auth: HeaderValue,
}

/// A seeded, running server with a bench account: what both modes start from.
struct Setup {
    server: Server,
    rss: RssSampler,
    idle_rss_kb: u64,
    seed_secs: f64,
    /// Wrong preflight answers.
    problems: Vec<String>,
    data: Arc<Data>,
    account: Account,
}

async fn setup(opts: &Opts, env: &[(String, String)], port: u16, data_dir: &Path) -> Result<Setup, i32> {
    // 1. Seed through the binary, as an operator would.
    let seed_started = Instant::now();
    let status = command(env)
        .args(["seed", "--packages", &opts.packages.to_string(), "--versions", &opts.versions.to_string()])
        .stdin(Stdio::null())
        .status();
    let seed_secs = seed_started.elapsed().as_secs_f64();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("error: seed failed ({s})");
            return Err(1);
        }
        Err(e) => {
            eprintln!("error: cannot run {BIN} seed: {e}");
            return Err(1);
        }
    }

    // 2. The server.
    let server = match Server::start(env, port, data_dir.join("server.log")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(1);
        }
    };
    let addr = server.addr;
    let rss = RssSampler::start(server.pid);
    let idle_rss_kb = read_status(server.pid, "VmRSS:").unwrap_or(0);

    let data = Arc::new(Data::new(opts.packages, opts.versions));
    let problems = preflight(addr, &data.plan, opts.versions).await;
    for p in &problems {
        eprintln!("preflight: WRONG ANSWER from {p}");
    }

    // A bench account for publishing and the login flood.
    let (password, email) = ("bench-password-123", "loadbench@bench.example.com");
    let register = Req::json(
        "/api/v1/auth/register",
        &serde_json::json!({ "username": "loadbench", "email": email, "password": password }),
    );
    let token = match request_once(addr, &register).await {
        Ok((StatusCode::CREATED, j)) => j["token"].as_str().unwrap_or_default().to_owned(),
        other => {
            match other {
                Ok((s, j)) => eprintln!("error: registering the bench account: {s} {j}"),
                Err(e) => eprintln!("error: registering the bench account: {e}"),
            }
            let _ = server.stop();
            return Err(1);
        }
    };
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).expect("token is a header value");
    Ok(Setup { server, rss, idle_rss_kb, seed_secs, problems, data, account: Account { email, password, auth } })
}

fn login_request(email: &str, password: &str) -> Req {
    Req::json("/api/v1/auth/login", &serde_json::json!({ "email": email, "password": password }))
}

fn log_filter() -> String {
    let mut text =
        std::env::var("RUST_LOG").map(|l| format!("RUST_LOG={l}")).unwrap_or_else(|_| "the default (info)".into());
    // Server settings passed through from the environment that change what is measured.
    for var in ["PAGE_CACHE_ENTRIES", "METADATA_CACHE_ENTRIES", "SQLITE_CACHE_KIB", "DB_MAX_CONNECTIONS"] {
        if let Ok(v) = std::env::var(var) {
            text.push_str(&format!("; {var}={v}"));
        }
    }
    text
}

async fn run_with(opts: &Opts, data_dir: &Path, database_url: Option<&str>) -> i32 {
    let backend = if database_url.is_some() { "PostgreSQL" } else { "SQLite" };
    let port = free_port();
    let env = base_env(data_dir, port, database_url);
    let secs = Duration::from_secs_f64(opts.seconds);
    let warmup = Duration::from_secs_f64((opts.seconds / 5.0).min(1.0));
    if let Some(minutes) = opts.soak {
        println!(
            "raven-registry soak: {backend}, {} packages x {} versions, {minutes} min, a sample every {} s, {} \
             client thread(s)",
            opts.packages, opts.versions, opts.sample_every, opts.client_threads
        );
    } else {
        println!(
            "raven-registry load benchmark: {backend}, {} packages x {} versions, {} connections, {:.0} s per \
             scenario (+{:.1} s warm-up), {} client thread(s)",
            opts.packages,
            opts.versions,
            opts.connections,
            opts.seconds,
            warmup.as_secs_f64(),
            opts.client_threads
        );
    }
    println!("binary: {BIN}");
    let setup = match setup(opts, &env, port, data_dir).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match opts.soak {
        Some(minutes) => soak::run(opts, backend, minutes, setup).await,
        None => scenarios(opts, backend, database_url.is_some(), warmup, secs, setup).await,
    }
}

/// Runs scenarios one after the other, each with a row of the report.
struct Runner<'a> {
    addr: SocketAddr,
    pid: u32,
    rss: &'a RssSampler,
    warmup: Duration,
    secs: Duration,
    rows: Vec<Row>,
}

impl Runner<'_> {
    /// Opens the next row's RSS slot, prints its "running ..." line; the row's index and the
    /// server's CPU time so far.
    fn begin(&self, what: &str) -> (usize, Option<u64>) {
        let i = self.rows.len();
        self.rss.set_scenario(i);
        print!("running {what} ... ");
        let _ = std::io::stdout().flush();
        (i, cpu_ticks(self.pid))
    }

    fn push(&mut self, sc: Scenario, i: usize, stats: Stats, cpu_us: Option<f64>) {
        let rss_kb = self.rss.peak_kb(i);
        let Scenario { key, label, load, target } = sc;
        self.rows.push(Row { key, label, connections: load.connections, stats, rss_kb, cpu_us, target });
    }

    async fn run(&mut self, sc: Scenario, what: &str, with_errors: bool) {
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

async fn scenarios(opts: &Opts, backend: &str, postgres: bool, warmup: Duration, secs: Duration, setup: Setup) -> i32 {
    let Setup { mut server, mut rss, idle_rss_kb, seed_secs, problems, data, account } = setup;
    let conns = opts.connections;
    let wanted = |key: &str| opts.only.as_ref().is_none_or(|o| o.iter().any(|k| k == key));

    let mut list = vec![Scenario::new("health", "GET /health", health_load(conns), Target::None)];
    list.extend(read_scenarios(&data, conns).into_iter().filter(|s| wanted(s.key)));
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
        "| scenario | conns | req/s | x /health | p50 ms | p99 ms | errors | server CPU µs/req | peak RSS MB | target | result |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    let mut total_errors = 0;
    let mut error_lines = Vec::new();
    for row in rows.iter_mut() {
        let (target, verdict) = judge(row, health_rps, slack);
        let rps = row.stats.rps();
        let ratio = if health_rps > 0.0 { format!("{:.3}", rps / health_rps) } else { "-".into() };
        let p50 = fmt_ms(row.stats.percentile_ms(0.50));
        let p99 = fmt_ms(row.stats.percentile_ms(0.99));
        total_errors += row.stats.errors;
        if let Some(e) = row.stats.first_errors.first() {
            error_lines.push(format!("- {} ({}): first error: {e}", row.label, row.key));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            row.label,
            row.connections,
            fmt_rps(rps),
            ratio,
            p50,
            p99,
            row.stats.errors,
            row.cpu_us.map(|c| format!("{c:.0}")).unwrap_or_else(|| "-".into()),
            row.rss_kb as f64 / 1024.0,
            target,
            verdict
        ));
    }
    let rss_ok = hwm_kb.max(sampled_kb) < 100 * 1024;
    out.push_str(&format!(
        "\nServer memory: idle after start {:.0} MB; peak RSS (VmHWM) {:.0} MB; highest sampled VmRSS {:.0} MB; \
         target < 100 MB: {}.\n",
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
