//! Logging: readable text for `cargo run`, one JSON object per line with LOG_FORMAT=json.
//!
//! Every request runs in an `http` span carrying `request_id`, `method`, `path` and `route` (the route
//! template), plus fields filled in while the request runs: `user_id` once a token is verified (never
//! the token), and `package` / `version` when the request names or publishes one. The response line
//! (`"message":"response"`) adds `status` and `latency_ms`. In JSON, each line has `timestamp`,
//! `level`, `message`, the event's fields, `span` (the innermost span) and `spans` (all of them, the
//! `http` span first).
use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request, Response};
use tracing::field::Empty;
use tracing::Span;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,tower_http=info"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(true).try_init(),
    };
}

/// The span of one HTTP request. The path only: query strings and headers (tokens) are never logged.
pub fn request_span(req: &Request<Body>, request_id_header: &HeaderName) -> Span {
    let id = req.headers().get(request_id_header).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        route = route.unwrap_or("-"),
        user_id = Empty,
        package = Empty,
        version = Empty,
    );
    if let Some(route) = route {
        // `/api/v1/packages/{name}/{version}/...`: name the package and version in the span.
        for (template, value) in route.split('/').zip(req.uri().path().split('/')) {
            match template {
                "{name}" => {
                    span.record("package", value);
                }
                "{version}" => {
                    span.record("version", value);
                }
                _ => {}
            }
        }
    }
    span
}

tokio::task_local! {
    static REQUEST_SPAN: Span;
}

/// Runs a request's handler with its `http` span reachable from nested spans, so that services can
/// add the user and package to it (see `record_user`, `record_package`).
pub async fn within_request<F: Future>(fut: F) -> F::Output {
    REQUEST_SPAN.scope(Span::current(), fut).await
}

/// Puts the authenticated user on the request's log lines.
pub fn record_user(user_id: uuid::Uuid) {
    let _ = REQUEST_SPAN.try_with(|span| {
        span.record("user_id", tracing::field::display(user_id));
    });
}

/// Puts the package and version a request acted on onto its log lines.
pub fn record_package(name: &str, version: &str) {
    let _ = REQUEST_SPAN.try_with(|span| {
        span.record("package", name);
        span.record("version", version);
    });
}

/// Logs one line per response at INFO, with the status and the latency in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogResponse;

impl<B> tower_http::trace::OnResponse<B> for LogResponse {
    fn on_response(self, res: &Response<B>, latency: Duration, _span: &Span) {
        tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "response");
    }
}
