//! The transport's part of the request budget: an anonymous `/graphql` request is charged here,
//! once its operation is known (see `crate::ratelimit::DeferredCharge`).
use std::sync::Arc;

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::graphql::caching::{self, Caching};
use crate::ratelimit::{DeferredCharge, GraphqlCharge};
use crate::state::AppState;

/// The request's share of the budget, when the middleware left it to the transport (anonymous).
pub type Charge = Option<axum::Extension<Arc<DeferredCharge>>>;

/// Charges the request to `kind`'s bucket (anonymous requests only); `Some` is the 429 to answer.
pub fn charge(charge: &Charge, state: &AppState, kind: GraphqlCharge) -> Option<Response> {
    let axum::Extension(charge) = charge.as_ref()?;
    match charge.charge(&state.limits, kind) {
        Ok(()) => None,
        Err(AppError::RateLimited { retry_after }) => {
            let mut res = rate_limited(retry_after);
            caching::apply(&mut res, Caching::NoStore, false, 0);
            Some(res)
        }
        Err(e) => Some(e.into_response()),
    }
}

/// An early answer to a read (a GET, or a persisted-query miss): charged to the browse budget like
/// the read it stands for, and never cached.
pub fn read_refused(res: Response, budget: &Charge, state: &AppState) -> Response {
    let mut res = charge(budget, state, GraphqlCharge::Query).unwrap_or(res);
    caching::apply(&mut res, Caching::NoStore, false, 0);
    res
}

/// GraphQL clients get a GraphQL-shaped body with RATE_LIMITED, still with HTTP 429.
pub fn rate_limited(retry_after: u64) -> Response {
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
