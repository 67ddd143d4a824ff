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
//!
//! The code is split by job under `benches/load/`: `cli` (options), `server` (seed, start, RSS
//! sampling), `client` (the load generator), `scenarios` (what is measured, and the run), `report`
//! (formatting and verdicts), `soak`. The child process and the database per run come from the
//! integration tests' testkit (`tests/it/testkit/process.rs`, `pg.rs`), included by `#[path]`.
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use raven_registry::seed::{self, PlannedPackage};

#[path = "load/cli.rs"]
mod cli;
#[path = "load/client.rs"]
mod client;
#[path = "load/nginx.rs"]
mod nginx;
#[path = "load/report.rs"]
mod report;
#[path = "load/resolve.rs"]
mod resolve;
#[path = "load/scenarios.rs"]
mod scenarios;
#[path = "load/server.rs"]
mod server;
#[path = "load/soak.rs"]
mod soak;

// Shared with the integration tests (see the top of process.rs for why by `#[path]`).
#[path = "../tests/it/testkit/pg.rs"]
mod pg;
#[path = "../tests/it/testkit/process.rs"]
mod process;

use cli::*;
use client::*;
use pg::PgDatabase;
use process::{base_env, cpu_per_request, cpu_ticks, free_port, read_status, Inherit, ServerProcess as Server};
use report::*;
use scenarios::*;
use server::*;

const BIN: &str = env!("CARGO_BIN_EXE_raven-registry");

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
        Some(url) => match PgDatabase::create_on(url, "raven_bench").await {
            Ok(db) => Some(db),
            Err(e) => {
                eprintln!("error: cannot create the benchmark database: {e}");
                return 1;
            }
        },
        None => None,
    };
    if opts.data_dir.is_some() && pg.is_some() {
        eprintln!("error: --data-dir keeps SQLite data; it does not apply with BENCH_DATABASE_URL");
        return 2;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let data_dir = opts.data_dir.clone().unwrap_or_else(|| dir.path().to_owned());
    let code = run_with(&opts, &data_dir, pg.as_ref().map(|p| p.url.as_str())).await;
    // Dropping the database (WITH (FORCE)) happens when `pg` goes out of scope.
    drop(pg);
    code
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
