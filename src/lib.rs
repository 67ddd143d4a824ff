//! raven-registry: the package registry of the RavensOne language.
//!
//! `build` assembles the whole application from a [`Config`]; `main`, the tests and the benchmark all
//! go through it, so they exercise the same router, middleware and services.
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod rest;
pub mod secret;
pub mod service;
pub mod state;
pub mod storage;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;
use state::AppState;
use storage::Storage;

/// A built application: its state and its router, ready to serve.
pub struct App {
    pub state: AppState,
    pub router: Router,
}

/// Connects the database (running migrations), opens the storage, loads the signing secret and
/// builds the router.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let storage = Storage::from_config(&config)?;
    let db = db::connect(&config).await?;
    db::migrate(&db).await?;
    let jwt_secret = secret::load_or_create(config.jwt_secret.as_deref(), &config.data_dir)?;
    let state = AppState {
        db,
        storage,
        public_url: config.public_url().into(),
        keys: auth::TokenKeys::new(&jwt_secret),
        hasher: auth::PasswordHasher::default(),
        jwt_secret: jwt_secret.into(),
        config: Arc::new(config),
    };
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
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await?;
        state.db.close_by_ref().await.ok();
        Ok(())
    }
}
