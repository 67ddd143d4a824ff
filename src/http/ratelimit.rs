//! The request budget as middleware: every request but probes, metrics, downloads, GraphiQL and
//! 304s is charged to its client's bucket (see `crate::ratelimit` for the buckets themselves).
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_governor::key_extractor::KeyExtractor;

use crate::error::AppError;
use crate::frontend_key::{self, Frontend};
use crate::graphql::graphiql;
use crate::ratelimit::{ClientIp, DeferredCharge, GraphqlCharge, UserKey, Verdict, CHARGED};
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

/// The request budget: anonymous requests per client IP, signed-in requests per user. The REST
/// shim and signed-in GraphQL requests are charged here; an anonymous `/graphql` request is left
/// to the transport ([`DeferredCharge`]: a query goes to the browse budget, a mutation to the
/// anonymous one, a 304 costs nothing), and charged here only if the transport did not. Each
/// mutation field is charged again to that mutation's own bucket. A request through a frontend
/// key (see `crate::frontend_key`) is budgeted as its end user, and charged to the key's own
/// bucket too. The `X-RateLimit-*` headers report the tightest bucket charged while handling the
/// request (see `CHARGED`); an answer nothing was charged for carries none.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let (mut parts, body) = req.into_parts();
    let mut ip = state.limits.client_ip(&parts.headers, peer);
    let frontend = match frontend_key::identify(state.config.frontend_keys.as_ref(), &mut parts.headers) {
        Frontend::Known { key, end_user } => {
            ip = end_user.or(ip);
            Some(key)
        }
        Frontend::Unknown => {
            // The key's text stays out of the log; the forwarded address is not trusted.
            tracing::info!("X-Frontend-Key matches no FRONTEND_KEYS entry: budgeted by the connection's address");
            None
        }
        Frontend::None => None,
    };
    // A request without a usable address shares one bucket rather than failing.
    let ip = ip.unwrap_or(Ipv4Addr::UNSPECIFIED.into());
    parts.extensions.insert(ClientIp(ip));
    if !state.limits.enabled || exempt(&parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // Verify the token once here; the handler reuses the cached result.
    if let Ok(Some(viewer)) = crate::extract::resolve_viewer(&mut parts, &state).await {
        parts.extensions.insert(viewer);
    }
    let graphql = parts.uri.path() == "/graphql";
    if graphql && parts.extensions.get::<crate::auth::Viewer>().is_none() {
        return deferred(state, Request::from_parts(parts, body), next, ip, frontend).await;
    }
    let req = Request::from_parts(parts, body);
    let mut verdict = match UserKey.extract(&req) {
        Ok(user) => state.limits.authenticated.check(&user),
        Err(_) => state.limits.anonymous.check(&ip),
    };
    if let Some(key) = frontend {
        verdict = verdict.tighter(state.limits.frontend_key.check(&key));
    }
    let (mut res, verdict) = match verdict.retry_after {
        Some(retry_after) => {
            tracing::info!(retry_after, path = %req.uri().path(), "request budget exhausted");
            crate::metrics::rate_limited(if UserKey.extract(&req).is_ok() { "authenticated" } else { "anonymous" });
            let res = if graphql {
                crate::graphql::budget::rate_limited(retry_after)
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
    finish(&mut res, &verdict);
    res
}

/// An anonymous `/graphql` request: the transport charges it (see [`DeferredCharge`]).
async fn deferred(state: AppState, mut req: Request, next: Next, ip: IpAddr, frontend: Option<usize>) -> Response {
    let charge = Arc::new(DeferredCharge::new(ip, frontend));
    req.extensions_mut().insert(charge.clone());
    let charged = Arc::new(std::sync::Mutex::new(NOTHING_CHARGED));
    let mut res = CHARGED.scope(charged.clone(), next.run(req)).await;
    if !charge.settled() {
        // Refused before its operation was known (a malformed request): the anonymous budget,
        // after the fact, so that such answers are not free either.
        let _ = CHARGED.scope(charged.clone(), async { charge.charge(&state.limits, GraphqlCharge::Other) }).await;
    }
    let verdict = *charged.lock().unwrap_or_else(|e| e.into_inner());
    if verdict != NOTHING_CHARGED {
        finish(&mut res, &verdict);
    }
    res
}

/// The starting point of a request not charged yet: any charge is tighter.
const NOTHING_CHARGED: Verdict = Verdict { limit: u32::MAX, remaining: u32::MAX, reset: 0, retry_after: None };

fn finish(res: &mut Response, verdict: &Verdict) {
    set_headers(res.headers_mut(), verdict);
    // A GraphQL field refused by its own bucket leaves the response 200 (the other fields ran);
    // the wait is still announced.
    if let Some(retry_after) = verdict.retry_after {
        res.headers_mut().entry(axum::http::header::RETRY_AFTER).or_insert(HeaderValue::from(retry_after));
    }
}
