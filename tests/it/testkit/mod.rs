//! Test harness: every test gets the real app (real router, real services) on port 0 with a fresh
//! database of its own — a temporary SQLite file by default, or a freshly created PostgreSQL
//! database when TEST_DATABASE_URL is set — and its own local tarball directory.
//!
//! `process` (the server binary as a child process, /proc readers) and `pg` (a database per test
//! or run) are shared with the load benchmark, which includes the same files by `#[path]`.
#![allow(dead_code)]

pub mod api;
pub mod browser;
pub mod capture;
pub mod documents;
pub mod pg;
pub mod process;
pub mod proxy;
pub mod tarballs;

use std::net::SocketAddr;

pub use pg::PgDatabase;
pub use process::free_port;
use raven_registry::config::{Config, StorageType};
use raven_registry::state::AppState;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub pg: Option<PgDatabase>,
    pub dir: tempfile::TempDir,
}

/// Settings as if nothing were configured, whatever the environment of the test process holds.
pub fn base_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::defaults();
    cfg.data_dir = dir.to_path_buf();
    cfg.database_url = None;
    cfg.storage_type = StorageType::Local;
    cfg.storage_path = None;
    cfg.jwt_secret = None;
    cfg.port = 0;
    cfg.host = "127.0.0.1".parse().unwrap();
    cfg.public_url = None;
    cfg.rate_limits_enabled = false;
    cfg.graphql_introspection = true;
    cfg
}

pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// For a PostgreSQL-only test: true when TEST_DATABASE_URL is set; otherwise prints
/// `SKIPPED <test>: needs PostgreSQL (set TEST_DATABASE_URL)` and returns false, and the test returns.
/// (Not `#[ignore]`: CI runs the same `cargo test` on PostgreSQL, where these tests must run.)
pub fn needs_postgres(test: &str) -> bool {
    if on_postgres() {
        return true;
    }
    skipped(test, "PostgreSQL (set TEST_DATABASE_URL)");
    false
}

/// Reports a test that cannot run here. Written to the process's stderr directly, not through
/// `eprintln!`, which the test harness captures and shows only for failing tests: a skip must be
/// visible in a plain `cargo test` run.
pub fn skipped(test: &str, needs: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: needs {needs}");
}

pub async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

/// Spawns the app; `tweak` adjusts the configuration before it is built.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = base_config(dir.path());
    let pg = if on_postgres() { Some(PgDatabase::create().await) } else { None };
    if let Some(pg) = &pg {
        cfg.database_url = Some(pg.url.clone());
    }
    tweak(&mut cfg);
    start(cfg, pg, dir).await
}

/// Starts an app on an existing configuration (e.g. a second instance on the same data).
pub async fn start(cfg: Config, pg: Option<PgDatabase>, dir: tempfile::TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = cfg;
    cfg.public_url = Some(format!("http://{addr}").parse().unwrap());
    let app = raven_registry::build(cfg.clone()).await.expect("app builds");
    let state = app.state.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder().build().unwrap(),
        state,
        config: cfg,
        shutdown: Some(tx),
        handle: Some(handle),
        pg,
        dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs a GraphQL document and returns the JSON response.
    pub async fn gql(&self, query: &str, variables: serde_json::Value, token: Option<&str>) -> serde_json::Value {
        let mut req =
            self.client.post(self.url("/graphql")).json(&serde_json::json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        res.json().await.unwrap()
    }

    /// Stops the server gracefully and returns its configuration and data, so a test can restart it.
    pub async fn stop(mut self) -> (Config, Option<PgDatabase>, tempfile::TempDir) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server exits cleanly");
        }
        let pg = self.pg.take();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (self.config.clone(), pg, dir)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
