//! Registry-wide totals.
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, FromQueryResult, Statement};

use crate::error::AppResult;
use crate::state::AppState;

#[derive(Debug, Clone, FromQueryResult)]
pub struct Totals {
    total_packages: i64,
    total_versions: i64,
    total_downloads: i64,
    total_users: i64,
}

#[derive(Debug, Clone)]
pub struct RegistryStats {
    pub total_packages: i64,
    pub total_versions: i64,
    pub total_downloads: i64,
    pub total_users: i64,
    pub updated_at: DateTime<Utc>,
}

/// The totals, from the cache while the catalog generation is unchanged: on PostgreSQL the four
/// counts are table scans, one small lookup on a hit.
pub async fn registry_stats(state: &AppState) -> AppResult<RegistryStats> {
    let cache = &state.caches.stats;
    let generation = if cache.enabled() { Some(state.generation.current(&state.db).await?) } else { None };
    let t = match generation.and_then(|g| cache.get(g, &())) {
        Some(t) => t,
        None => {
            let t = totals(&state.db).await?;
            if let Some(g) = generation {
                cache.put(g, (), t.clone());
            }
            t
        }
    };
    Ok(RegistryStats {
        total_packages: t.total_packages,
        total_versions: t.total_versions,
        total_downloads: t.total_downloads,
        total_users: t.total_users,
        updated_at: Utc::now(),
    })
}

/// One statement for all four totals. The casts keep both backends answering BIGINT (PostgreSQL's
/// SUM over BIGINT is NUMERIC).
#[tracing::instrument(name = "db.stats", skip(db))]
async fn totals(db: &DatabaseConnection) -> AppResult<Totals> {
    let sql = "SELECT \
        CAST((SELECT COUNT(*) FROM packages) AS BIGINT) AS total_packages, \
        CAST((SELECT COUNT(*) FROM versions) AS BIGINT) AS total_versions, \
        CAST((SELECT COALESCE(SUM(downloads), 0) FROM packages) AS BIGINT) AS total_downloads, \
        CAST((SELECT COUNT(*) FROM users) AS BIGINT) AS total_users";
    let stmt = Statement::from_string(db.get_database_backend(), sql);
    Totals::find_by_statement(stmt)
        .one(db)
        .await?
        .ok_or_else(|| crate::error::AppError::internal(anyhow::anyhow!("stats query returned no row")))
}

/// Readiness: the database answers a trivial query.
#[tracing::instrument(name = "db.ping", skip(db))]
pub async fn ping(db: &DatabaseConnection) -> AppResult<()> {
    db.ping().await?;
    Ok(())
}
