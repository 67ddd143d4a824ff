//! The server under load: seeded through the binary, started and stopped with the testkit's
//! `ServerProcess` (the harness the integration tests use too), and its resident set sampled.
use super::*;

/// Peak VmRSS per scenario, sampled every 50 ms.
pub(crate) struct RssSampler {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) current: Arc<AtomicUsize>,
    pub(crate) peaks: Arc<Mutex<Vec<u64>>>,
    pub(crate) handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32) -> RssSampler {
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

    pub(crate) fn set_scenario(&self, i: usize) {
        self.current.store(i, Ordering::Relaxed);
    }

    pub(crate) fn peak_kb(&self, i: usize) -> u64 {
        self.peaks.lock().unwrap()[i.min(63)]
    }

    pub(crate) fn overall_kb(&self) -> u64 {
        self.peaks.lock().unwrap().iter().copied().max().unwrap_or(0)
    }

    pub(crate) fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// An account made for the run: it publishes fresh packages and logs in.
pub(crate) struct Account {
    pub(crate) email: &'static str,
    pub(crate) password: &'static str,
    pub(crate) auth: HeaderValue,
}

/// A seeded, running server with a bench account: what both modes start from.
pub(crate) struct Setup {
    pub(crate) server: Server,
    pub(crate) rss: RssSampler,
    pub(crate) idle_rss_kb: u64,
    pub(crate) seed_secs: f64,
    /// Wrong preflight answers.
    pub(crate) problems: Vec<String>,
    pub(crate) data: Arc<Data>,
    pub(crate) account: Account,
}

pub(crate) async fn setup(opts: &Opts, env: &[(String, String)], port: u16, data_dir: &Path) -> Result<Setup, i32> {
    // 1. Seed through the binary, as an operator would (unless a kept directory was seeded with the
    // same numbers: the marker is written only after a seed succeeds).
    let marker = data_dir.join("bench-seeded");
    let seeded = format!("{} x {}", opts.packages, opts.versions);
    let reuse = opts.data_dir.is_some() && std::fs::read_to_string(&marker).is_ok_and(|m| m == seeded);
    let seed_started = Instant::now();
    let status = if reuse {
        println!("reusing {} (seeded {seeded})", data_dir.display());
        Command::new("true").status()
    } else {
        command(env)
            .args(["seed", "--packages", &opts.packages.to_string(), "--versions", &opts.versions.to_string()])
            .stdin(Stdio::null())
            .status()
    };
    let seed_secs = seed_started.elapsed().as_secs_f64();
    if !reuse && opts.data_dir.is_some() && status.as_ref().is_ok_and(|s| s.success()) {
        let _ = std::fs::write(&marker, &seeded);
    }
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
    let server = match Server::start(command(env), port, data_dir.join("server.log")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(1);
        }
    };
    let addr = server.addr;
    let rss = RssSampler::start(server.pid);
    let idle_rss_kb = read_status(server.pid, "VmRSS:").unwrap_or(0);

    let mut data = Data::new(opts.packages, opts.versions);
    if opts.scale.is_some() {
        data.queries = Arc::new(distinct_queries(&data.plan, SCALE_QUERIES));
    }
    let data = Arc::new(data);
    let mut problems = preflight(addr, &data.plan, opts.versions).await;
    if opts.only.as_ref().is_none_or(|o| o.iter().any(|k| k == "resolve")) {
        problems.extend(resolve::preflight(addr, &data).await);
    }
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
        // A kept data directory has the account from an earlier run.
        Ok((StatusCode::CONFLICT, _)) if reuse => match request_once(addr, &login_request(email, password)).await {
            Ok((StatusCode::OK, j)) => j["token"].as_str().unwrap_or_default().to_owned(),
            other => {
                eprintln!("error: signing in the bench account of the kept directory: {other:?}");
                let _ = server.stop();
                return Err(1);
            }
        },
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

/// A command of the binary (`seed`, `serve`) with the run's settings over the caller's environment
/// (RUST_LOG and the cache settings pass through; the database and storage are the run's).
pub(crate) fn command(env: &[(String, String)]) -> Command {
    process::command(BIN, env, Inherit::AllButStorage)
}
