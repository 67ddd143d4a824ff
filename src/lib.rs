//! raven-registry: the package registry of the RavensOne language.
//!
//! `build` assembles the whole application from a [`Config`]; `main`, the tests and the benchmark all
//! go through it, so they exercise the same router, middleware and services.
pub mod auth;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod fsck;
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
        if let Err(e) = state.downloads.flush(&state.db).await {
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
    metrics::install();
    // Configuration mistakes are reported before the database is touched: a bad JWT_SECRET must
    // not hide behind a slow or failing connection.
    let jwt_secret = secret::load_or_create(config.jwt_secret.as_deref(), &config.data_dir)?;
    let storage = Storage::from_config(&config)?;
    let (db, db_statements) = db::connect(&config).await?;
    db::migrate(&db).await?;
    let state = AppState {
        db,
        storage,
        public_url: config.public_url().into(),
        keys: auth::TokenKeys::new(&jwt_secret),
        hasher: auth::PasswordHasher::default(),
        downloads: Default::default(),
        limits: Arc::new(ratelimit::RateLimits::from_config(&config)),
        db_statements,
        pages: Arc::new(service::search::PageCache::new(config.page_cache_entries)),
        bodies: Arc::new(rest::cache::BodyCache::new(config.metadata_cache_entries)),
        relations: Arc::new(graphql::relations::RelationCache::new(config.metadata_cache_entries)),
        stats: Arc::new(service::stats::StatsCache::new(config.metadata_cache_entries.min(1))),
        jwt_secret: jwt_secret.into(),
        config: Arc::new(config),
    };
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
        if let Err(e) = state.downloads.flush(&state.db).await {
            tracing::error!(error = %e, lost = state.downloads.pending_total(), "could not flush download counts at shutdown");
        }
        state.db.close_by_ref().await.ok();
        Ok(())
    }
}
