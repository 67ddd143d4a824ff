//! The context every service call runs in: one server instance's connections, keys, limits and
//! caches. It sits at the service layer and is made only of parts from that layer and below
//! (none of which imports it); `lib.rs::build` assembles it.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::{PasswordHasher, TokenKeys};
use crate::config::Config;
use crate::ratelimit::RateLimits;
use crate::service::cache::Caches;
use crate::service::downloads::DownloadCounter;
use crate::storage::Storage;

/// A handle on one instance's [`Shared`] parts. Cloning it is one reference count: axum clones the
/// state for every extractor and middleware that asks for it, several times per request, and a
/// clone of the parts themselves (16 reference counts, and the JWT validation's sets of strings
/// copied) was 12% of the CPU of a `/health` request in a profile.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(parts: Shared) -> Self {
        AppState(Arc::new(parts))
    }
}

impl AppState {
    /// A copy of the parts, to build a variant of this state from (the seeder's own limits).
    pub fn parts(&self) -> Shared {
        (*self.0).clone()
    }
}

/// The parts of an [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub config: Arc<Config>,
    /// Base of absolute URLs, without a trailing slash.
    pub public_url: Arc<str>,
    pub jwt_secret: Arc<[u8]>,
    pub keys: TokenKeys,
    pub hasher: PasswordHasher,
    pub downloads: Arc<DownloadCounter>,
    pub limits: Arc<RateLimits>,
    /// The in-process search index (kept current through the catalog generation).
    pub search: Arc<crate::service::search_index::SearchIndex>,
    /// What this instance knows of the catalog generation (read through it, not from `db`).
    pub generation: Arc<crate::service::generation::Watch>,
    /// This instance's live event feed (subscriptions).
    pub events: Arc<crate::service::events::Live>,
    /// Caches valid for one catalog generation (search pages, REST bodies, GraphQL relations, totals).
    pub caches: Arc<Caches>,
    /// Verified hot tarballs (`BLOB_CACHE_BYTES`).
    pub blobs: Arc<crate::service::blob_cache::BlobCache>,
    /// This process's serving lock on the SQLite file (None on PostgreSQL): held while any clone lives.
    pub sqlite_lock: Option<Arc<crate::db::SqliteLock>>,
    /// Statements run on `db` since start.
    pub db_statements: Arc<std::sync::atomic::AtomicU64>,
}
