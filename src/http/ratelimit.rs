//! The request budget as middleware: every request but probes, metrics, downloads and GraphiQL is charged
//! to its client's bucket (see `crate::ratelimit` for the buckets themselves).
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_governor::key_extractor::KeyExtractor;

use crate::error::AppError;
use crate::graphql::graphiql;
use crate::ratelimit::{ClientIp, IpKey, UserKey, Verdict, CHARGED};
use crate::state::AppState;

/// Requests that are never limited: probes, metrics, tarball downloads, and the GraphiQL page and
/// its files (a browser loads six of them per visit; the queries it then sends are charged).
fn exempt(parts: &Parts) -> bool {
    let path = parts.uri.path();
    matches!(path, "/health" | "/ready" | "/metrics")
        || (path.starts_with("/api/v1/packages/") && path.ends_with("/download"))
        || graphiql::is_free(&parts.method, path, parts.uri.query().unwrap_or(""), &parts.headers)
}

fn set_headers(headers: &mut HeaderMap, v: &Verdict) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(v.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(v.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(v.reset));
}

/// The request budget: anonymous requests per client IP, signed-in requests per user. REST and
/// GraphQL share it; a GraphQL request counts once here, and each of its mutation fields is
/// charged again to that mutation's own bucket. The `X-RateLimit-*` headers report the tightest
/// bucket charged while handling the request (see `CHARGED`).
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = state.limits.client_ip(req.headers(), peer);
    let (mut parts, body) = req.into_parts();
    // A request without a usable address shares one bucket rather than failing.
    parts.extensions.insert(ClientIp(ip.unwrap_or(Ipv4Addr::UNSPECIFIED.into())));
    if !state.limits.enabled || exempt(&parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // Verify the token once here; the handler reuses the cached result.
    if let Ok(Some(viewer)) = crate::extract::resolve_viewer(&mut parts, &state).await {
        parts.extensions.insert(viewer);
    }
    let req = Request::from_parts(parts, body);
    let verdict = match UserKey.extract(&req) {
        Ok(user) => state.limits.authenticated.check(&user),
        Err(_) => {
            let ip = IpKey.extract(&req).unwrap_or(Ipv4Addr::UNSPECIFIED.into());
            state.limits.anonymous.check(&ip)
        }
    };
    let (mut res, verdict) = match verdict.retry_after {
        Some(retry_after) => {
            tracing::info!(retry_after, path = %req.uri().path(), "request budget exhausted");
            crate::metrics::rate_limited(if UserKey.extract(&req).is_ok() { "authenticated" } else { "anonymous" });
            let res = if req.uri().path() == "/graphql" {
                graphql_refusal(retry_after)
            } else {
                AppError::RateLimited { retry_after }.into_response()
            };
            (res, verdict)
        }
        None => {
            // The handler's own charges (per REST call, per GraphQL field) may be tighter.
            let charged = Arc::new(std::sync::Mutex::new(verdict));
            let res = CHARGED.scope(charged.clone(), next.run(req)).await;
            let tightest = *charged.lock().unwrap_or_else(|e| e.into_inner());
            (res, tightest)
        }
    };
    set_headers(res.headers_mut(), &verdict);
    // A GraphQL field refused by its own bucket leaves the response 200 (the other fields ran);
    // the wait is still announced.
    if let Some(retry_after) = verdict.retry_after {
        res.headers_mut().entry(axum::http::header::RETRY_AFTER).or_insert(HeaderValue::from(retry_after));
    }
    res
}

/// GraphQL clients get a GraphQL-shaped body with RATE_LIMITED, still with HTTP 429.
fn graphql_refusal(retry_after: u64) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": format!("rate limit exceeded, retry in {retry_after} seconds"),
            "extensions": { "code": "RATE_LIMITED", "retryAfter": retry_after }
        }]
    });
    let mut res = (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    res.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(retry_after));
    res
}
