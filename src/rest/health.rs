//! Liveness and readiness.
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::service;
use crate::state::AppState;

/// Liveness: the process answers. Never touches the database, so an outage does not get us restarted.
pub async fn health() -> &'static str {
    "OK"
}

/// Readiness: the database and the storage both answer within two seconds.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if db_ok && storage_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": word(db_ok && storage_ok),
            "database": word(db_ok),
            "storage": word(storage_ok),
        })),
    )
}
