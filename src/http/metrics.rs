//! The HTTP side of the metrics: `GET /metrics` and the middleware that counts and times every
//! request. The recorders themselves are the leaf module `crate::metrics`.
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};

use crate::state::AppState;

/// `GET /metrics`: the Prometheus text exposition format.
pub async fn render(State(state): State<AppState>) -> Response {
    let handle = crate::metrics::install();
    observe_database(&state).await;
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Statement count and pool state, read at scrape time.
async fn observe_database(state: &AppState) {
    use std::sync::atomic::Ordering;
    counter!("raven_db_statements_total").absolute(state.db_statements.load(Ordering::Relaxed));
    gauge!("raven_db_pool_max_connections").set(f64::from(state.config.db_max_connections));
    const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
    let (size, idle, waited) = match state.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = state.db.get_postgres_connection_pool();
            let (size, idle) = (pool.size(), pool.num_idle());
            let start = Instant::now();
            let _ = tokio::time::timeout(PROBE_TIMEOUT, pool.acquire()).await;
            (size, idle, start.elapsed())
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = state.db.get_sqlite_connection_pool();
            let (size, idle) = (pool.size(), pool.num_idle());
            let start = Instant::now();
            let _ = tokio::time::timeout(PROBE_TIMEOUT, pool.acquire()).await;
            (size, idle, start.elapsed())
        }
        _ => return,
    };
    let idle = idle as f64;
    gauge!("raven_db_pool_connections", "state" => "idle").set(idle);
    gauge!("raven_db_pool_connections", "state" => "in_use").set((f64::from(size) - idle).max(0.0));
    gauge!("raven_db_pool_acquire_seconds").set(waited.min(PROBE_TIMEOUT).as_secs_f64());
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request by route template, method and status. It runs
/// inside the trace span, and lets the request's code add fields to that span (see `telemetry`).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = crate::telemetry::within_request(next.run(req)).await;
    let status = res.status().as_u16().to_string();
    counter!("raven_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("raven_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

