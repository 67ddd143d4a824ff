//! Liveness and readiness.
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::service;
use crate::state::AppState;

/// Liveness: the process answers. Never touches the database, so an outage does not get us restarted.
#[utoipa::path(get, path = "/health", tag = "health", responses(
    (status = 200, description = "The process answers", body = String, content_type = "text/plain", example = "OK"),
))]
pub async fn health() -> &'static str {
    "OK"
}

/// State of one dependency.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Ok,
    Unavailable,
}

/// The readiness report.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when both dependencies answer.
    status: Check,
    database: Check,
    storage: Check,
}

/// Readiness: the database and the storage both answer within two seconds.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, description = "The database and the storage answer", body = Readiness),
    (status = 503, description = "The database or the storage does not answer", body = Readiness),
))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let limit = Duration::from_secs(2);
    let (db, storage) = tokio::join!(
        tokio::time::timeout(limit, service::stats::ping(&state.db)),
        tokio::time::timeout(limit, state.storage.check()),
    );
    let db_ok = matches!(db, Ok(Ok(())));
    let storage_ok = matches!(storage, Ok(Ok(())));
    if !db_ok {
        tracing::warn!(result = ?db.map(|r| r.map_err(|e| e.to_string())), "readiness: database not answering");
    }
    if !storage_ok {
        tracing::warn!(result = ?storage.map(|r| r.map_err(|e| e.to_string())), "readiness: storage not answering");
    }
    let word = |ok: bool| if ok { Check::Ok } else { Check::Unavailable };
    let status = if db_ok && storage_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: word(db_ok && storage_ok), database: word(db_ok), storage: word(storage_ok) }))
}
