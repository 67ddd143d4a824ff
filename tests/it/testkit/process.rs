//! The `raven-registry` binary as a child process: the one harness of the integration tests that
//! run the real server (`reliability`) and of the load benchmark (`benches/load`).
//!
//! How it is shared: `tests/it/testkit/mod.rs` declares it as a module, and `benches/load.rs`
//! includes the same file with `#[path = "../tests/it/testkit/process.rs"] mod process;` (likewise
//! `pg.rs`). Chosen over a separate `testkit` crate because it compiles fastest: no extra crate to
//! build in the test and again in the release (bench) profile, no manifest of its own to keep in
//! step with the root's dependencies, and no new top-level directory in the layout. The price is
//! that this file may only use what both includers can (std, and the package's dependencies), and
//! that some items are unused in one of them, hence the `allow(dead_code)`.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port that was free a moment ago, for a server binary run as a child process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The settings of a server on `data_dir` listening on 127.0.0.1:`port`, rate limits off, local
/// storage, and PostgreSQL when `database_url` is given (embedded SQLite otherwise).
pub fn base_env(data_dir: &Path, port: u16, database_url: Option<&str>) -> Vec<(String, String)> {
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

/// What a child process starts from, before `env` is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherit {
    /// Nothing of the caller's environment (the tests: hermetic).
    Nothing,
    /// The caller's environment (RUST_LOG, ...) without the settings that pick a database or storage
    /// (the benchmark: an operator may set RUST_LOG for the run).
    AllButStorage,
}

/// `bin` with the environment `inherit` + `env`; add the subcommand and its arguments.
pub fn command(bin: &str, env: &[(String, String)], inherit: Inherit) -> Command {
    let mut c = Command::new(bin);
    match inherit {
        Inherit::Nothing => {
            c.env_clear();
        }
        Inherit::AllButStorage => {
            for var in ["DATABASE_URL", "STORAGE_PATH", "JWT_SECRET", "S3_BUCKET", "S3_ENDPOINT"] {
                c.env_remove(var);
            }
        }
    }
    c.envs(env.iter().map(|(k, v)| (k, v)));
    c
}

/// A running `raven-registry serve`, its stdout and stderr in `log`. Dropping it kills the process.
pub struct ServerProcess {
    pub child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `serve` with `cmd` (from [`command`]) on 127.0.0.1:`port` and waits (blocking, up to
    /// 60 s) until it answers `GET /health` with 200.
    pub fn start(mut cmd: Command, port: u16, log: PathBuf) -> Result<ServerProcess, String> {
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cmd.get_program().to_string_lossy()))?;
        let pid = child.id();
        let mut server = ServerProcess { child, pid, addr: SocketAddr::from(([127, 0, 0, 1], port)), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited during start-up ({status}); log:\n{}", server.log_tail()));
            }
            if let Ok(mut s) = std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)) {
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

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 40 lines of the log.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...).
    pub fn signal(&self, sig: &str) -> Result<(), String> {
        let status = Command::new("kill").arg(format!("-{sig}")).arg(self.pid.to_string()).status();
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("kill -{sig} {}: {s}", self.pid)),
            Err(e) => Err(format!("kill -{sig} {}: {e}", self.pid)),
        }
    }

    /// SIGTERM, then waits up to 30 s for a clean exit (status 0); kills it after that.
    pub fn stop(mut self) -> Result<(), String> {
        let _ = self.signal("TERM");
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

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc readers (Linux)

/// A number of /proc/PID/status: kB for the `Vm*:` / `Rss*:` fields, a count for `Threads:`.
pub fn read_status(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn clock_ticks_per_second() -> f64 {
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

/// Server CPU microseconds per request between two `cpu_ticks` readings.
pub fn cpu_per_request(before: Option<u64>, after: Option<u64>, requests: u64) -> Option<f64> {
    let ticks = after?.checked_sub(before?)?;
    (requests > 0).then(|| ticks as f64 / clock_ticks_per_second() * 1e6 / requests as f64)
}
