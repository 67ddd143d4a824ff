//! Shared state of one server instance.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::{PasswordHasher, TokenKeys};
use crate::config::Config;
use crate::service::downloads::DownloadCounter;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub config: Arc<Config>,
    /// Base of absolute URLs, without a trailing slash.
    pub public_url: Arc<str>,
    pub jwt_secret: Arc<[u8]>,
    pub keys: TokenKeys,
    pub hasher: PasswordHasher,
    pub downloads: Arc<DownloadCounter>,
    pub limits: Arc<crate::ratelimit::RateLimits>,
    /// Search and browse pages of the current catalog generation.
    pub pages: Arc<crate::service::search::PageCache>,
    /// Serialized REST package and version metadata of the current catalog generation.
    pub bodies: Arc<crate::rest::cache::BodyCache>,
    /// GraphQL package relations and packages by name of the current catalog generation.
    pub relations: Arc<crate::graphql::relations::RelationCache>,
    /// Registry totals of the current catalog generation.
    pub stats: Arc<crate::service::stats::StatsCache>,
    /// Statements run on `db` since start.
    pub db_statements: Arc<std::sync::atomic::AtomicU64>,
}
