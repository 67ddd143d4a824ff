//! GET /api/v1/stats
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppResult;
use crate::service;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBody {
    pub total_packages: i64,
    pub total_versions: i64,
    pub total_downloads: i64,
    pub total_users: i64,
    pub updated_at: DateTime<Utc>,
}

/// Registry-wide totals.
#[utoipa::path(get, path = "/api/v1/stats", tag = "search", operation_id = "registryStats", responses(
    (status = 200, description = "The totals", body = StatsBody),
    super::openapi::RateLimited, super::openapi::ServerSide,
))]
pub async fn registry_stats(State(state): State<AppState>) -> AppResult<Json<StatsBody>> {
    let s = service::stats::registry_stats(&state).await?;
    Ok(Json(StatsBody {
        total_packages: s.total_packages,
        total_versions: s.total_versions,
        total_downloads: s.total_downloads,
        total_users: s.total_users,
        updated_at: s.updated_at,
    }))
}
