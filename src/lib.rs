//! raven-registry: the package registry of the RavensOne language.
//!
//! `build` assembles the whole application from a [`Config`]; `main`, the tests and the benchmark all
//! go through it, so they exercise the same router, middleware and services.
//!
//! # Layers
//! Modules form layers, and a module imports (`use crate::...` or a `crate::` path) only modules of
//! its own layer or below; the test `layers` at the bottom of this file reads every source file
//! and fails on an import that points up. From the bottom:
//!
//! 0. `domain`, `config`, `memory`, `secret`: pure types and rules, no I/O;
//! 1. `metrics`, `telemetry`: recorders and log fields, callable from anywhere;
//! 2. `error`, `db`, `storage`: the error type and the connections to the outside world;
//! 3. `auth`, `client_ip`, `ratelimit`: identity, client addresses and request budgets;
//! 4. `service`, `state`: every query and write, the read model and the caches; `AppState` is
//!    the context services run in, made of parts from this layer and below;
//! 5. `extract`, `rest`, `graphql`: the two front ends (and what they share), thin shells that
//!    parse input into domain types, call services and shape the answer;
//! 6. `http`, `net`: the route table, middleware and the accept loop;
//! 7. `seed`: commands built on everything above; this file assembles the application.
pub mod auth;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod extract;
pub mod frontend_key;
pub mod graphql;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod ratelimit;
pub mod rest;
pub mod secret;
pub mod seed;
pub mod service;
pub mod state;
pub mod storage;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
use state::AppState;
use storage::Storage;

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Download counts lost to a crash are bounded by this interval.
pub const DOWNLOAD_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

async fn flush_downloads_periodically(state: AppState) {
    let mut tick = tokio::time::interval(DOWNLOAD_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = service::fetch::flush_counts(&state).await {
            tracing::warn!(error = %e, pending = state.downloads.pending_total(), "download counts not flushed yet; will retry");
        }
    }
}

/// A built application: its state and its router, ready to serve.
pub struct App {
    pub state: AppState,
    pub router: Router,
}

/// Connects the database (running migrations), opens the storage, loads the signing secret and
/// builds the router.
pub async fn build(config: Config) -> anyhow::Result<App> {
    build_app(config, true).await
}

/// The same application for a tool that never writes the database while a server may be running
/// (`fsck`, which reads rows and may delete orphan blobs): it does not take the SQLite serving
/// lock, and its caches ask the database like those of a second instance would.
pub async fn build_for_inspection(config: Config) -> anyhow::Result<App> {
    build_app(config, false).await
}

async fn build_app(config: Config, writer: bool) -> anyhow::Result<App> {
    metrics::install();
    // Configuration mistakes are reported before the database is touched: a bad JWT_SECRET must
    // not hide behind a slow or failing connection.
    let jwt_secret = secret::load_or_create(config.jwt_secret.as_deref(), &config.data_dir)?;
    if let Some(keys) = &config.frontend_keys {
        keys.validate()?;
    }
    let storage = Storage::from_config(&config)?;
    let (db, db_statements) = db::connect(&config).await?;
    // Before anything writes: a second process on the same SQLite file is refused here.
    let sqlite_lock = if writer { db::lock_sqlite(&db)? } else { None };
    db::migrate(&db).await?;
    let search = Arc::new(service::search_index::SearchIndex::new()?);
    search.load(&db).await?;
    memory::release_free_memory();
    let generation =
        Arc::new(service::generation::Watch::new(std::time::Duration::from_millis(config.generation_max_age_ms)));
    if sqlite_lock.is_some() {
        // The only writer of the file is this process, and it learns its own writes as they commit.
        generation.set_notified(true);
    } else if writer && db.get_database_backend() == sea_orm::DbBackend::Postgres {
        service::catalog_listener::spawn(db.get_postgres_connection_pool().clone(), &generation);
    }
    let events = Arc::new(service::events::Live::new(std::time::Duration::from_millis(config.events_poll_ms)));
    generation.wake_on_advance(events.waker());
    let state = AppState::from(state::Shared {
        db,
        storage,
        public_url: config.public_url().into(),
        keys: auth::TokenKeys::new(&jwt_secret),
        hasher: auth::PasswordHasher::default(),
        downloads: Default::default(),
        limits: Arc::new(ratelimit::RateLimits::from_config(&config)),
        db_statements,
        search,
        generation: generation.clone(),
        sqlite_lock: sqlite_lock.map(Arc::new),
        blobs: Arc::new(service::blob_cache::BlobCache::new(config.blob_cache_bytes)),
        events: events.clone(),
        caches: Arc::new(service::cache::Caches::new(config.page_cache_entries, config.metadata_cache_entries)),
        jwt_secret: jwt_secret.into(),
        config: Arc::new(config),
    });
    client_ip::ClientIpSource::from_config(&state.config).log_choice(&state.config);
    let schema = graphql::build_schema(state.clone());
    let router = http::router(state.clone(), schema);
    Ok(App { state, router })
}

impl App {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App { state, router } = self;
        let flusher = tokio::spawn(flush_downloads_periodically(state.clone()));
        let purger = tokio::spawn(ratelimit::purge_periodically(state.limits.clone()));
        let upkeep = tokio::spawn(crate::metrics::upkeep_periodically());

        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        };
        let limits = net::ServerLimits::from_config(&state.config);
        let server = net::serve(listener, router, limits, signal);
        // In-flight requests get a grace period; a client that never finishes does not hold the
        // process hostage (orchestrators send SIGKILL soon after SIGTERM anyway).
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = server => {}
            _ = deadline => tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight requests outlived the grace period; stopping anyway"),
        }
        flusher.abort();
        purger.abort();
        upkeep.abort();
        // In-flight downloads have finished: their counts are written before the process exits.
        if let Err(e) = state.downloads.flush(&state.db, &state.generation).await {
            tracing::error!(error = %e, lost = state.downloads.pending_total(), "could not flush download counts at shutdown");
        }
        state.db.close_by_ref().await.ok();
        Ok(())
    }
}

#[cfg(test)]
mod layers {
    //! Checks the layer rule of the crate documentation against the source.
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The layer of each top-level module.
    const LAYERS: &[(&str, u8)] = &[
        ("domain", 0),
        ("config", 0),
        ("frontend_key", 0),
        ("memory", 0),
        ("secret", 0),
        ("metrics", 1),
        ("telemetry", 1),
        ("error", 2),
        ("db", 2),
        ("storage", 2),
        ("auth", 3),
        ("client_ip", 3),
        ("ratelimit", 3),
        ("service", 4),
        ("state", 4),
        ("extract", 5),
        ("rest", 5),
        ("graphql", 5),
        ("http", 6),
        ("net", 6),
        ("seed", 7),
    ];

    /// The top-level modules named after `crate::` in `code`, comments left out: `crate::a::b`,
    /// and each first segment of a group `crate::{a::x, b}`.
    fn imported_modules(code: &str) -> Vec<String> {
        let code: String = code
            .lines()
            .map(|l| match l.find("//") {
                Some(i) => &l[..i],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
        let mut out = Vec::new();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            let preceded_by_ident =
                rest[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
            rest = &rest[i + "crate::".len()..];
            if preceded_by_ident {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level items of the group: split at commas outside nested braces.
                let (mut depth, mut start) = (0usize, 0usize);
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            out.push(ident(group[start..j].trim()));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(ident(group[start..j].trim()));
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                out.push(ident(rest));
            }
        }
        out.retain(|m| !m.is_empty());
        out
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn imports_point_down_the_layers() {
        let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut violations = Vec::new();
        let mut checked = 0;
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let top = rel.iter().next().unwrap().to_str().unwrap().trim_end_matches(".rs");
            if matches!(top, "lib" | "main") {
                continue; // the top: may import anything
            }
            let Some(&own) = layers.get(top) else {
                violations.push(format!("{}: module `{top}` has no layer in LAYERS", rel.display()));
                continue;
            };
            for module in imported_modules(&std::fs::read_to_string(&file).unwrap()) {
                checked += 1;
                match layers.get(module.as_str()) {
                    Some(&theirs) if theirs <= own => {}
                    Some(&theirs) => violations
                        .push(format!("{}: `{top}` (layer {own}) imports `{module}` (layer {theirs})", rel.display())),
                    // Items of the crate root (`crate::Config`, `crate::SHUTDOWN_GRACE`) belong to the top.
                    None if module.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => violations
                        .push(format!("{}: `{top}` imports `crate::{module}` from the crate root", rel.display())),
                    None => violations.push(format!("{}: `crate::{module}` is not a known module", rel.display())),
                }
            }
        }
        assert!(checked > 100, "the scan found only {checked} imports: is it reading the source?");
        assert!(violations.is_empty(), "imports that point up the layers:\n{}", violations.join("\n"));
    }

    #[test]
    fn the_scan_sees_paths_groups_and_not_comments() {
        let code = "use crate::{auth::Viewer, error::{AppError, AppResult}};\nlet x = crate::http::router();\n// crate::seed\nmacro $crate::x";
        assert_eq!(imported_modules(code), ["auth", "error", "http"]);
    }
}
