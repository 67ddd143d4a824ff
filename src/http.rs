//! The routes of the server, each REST route declared once (`rest_routes`), and its middleware stack.
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::compression::predicate::{And, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::graphql::http::GraphqlEndpoint;
use crate::graphql::RegistrySchema;
use crate::state::AppState;
use crate::{graphql, rest};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// JSON bodies of the REST shim are small; only uploads get the tarball limit.
const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Room for multipart framing and the metadata part around a maximal tarball.
const UPLOAD_OVERHEAD: u64 = 256 * 1024;

/// The limits of the upload route: its body limit and the budget of its [`drain`].
#[derive(Clone, Copy)]
struct Uploads {
    limit: usize,
    drain: drain::Budget,
}

impl Uploads {
    fn for_state(state: &AppState) -> Self {
        let limit = (state.config.max_tarball_bytes + UPLOAD_OVERHEAD) as usize;
        // Up to MAX_TARBALL_BYTES past the limit, or 10 s, is read and discarded after an early answer.
        let drain =
            drain::Budget { max_body_bytes: limit as u64 + state.config.max_tarball_bytes, max_time: drain::MAX_TIME };
        Uploads { limit, drain }
    }

    /// Only uploads get the tarball limit (the JSON limit is lifted for them), a v1 413, and the drain.
    fn wrap(self, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
        route
            .layer::<_, Infallible>(DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(self.limit))
            .layer(axum::middleware::map_response(too_large_as_v1))
            .layer(axum::middleware::from_fn_with_state(self.drain, drain::middleware))
    }
}

/// Every route of the REST side of the server (`/health`, `/ready` and the `/api/v1` shim), each
/// declared once, here: the handler's `#[utoipa::path]` attribute gives its method(s), path and
/// documentation, and `routes!` both routes it and adds its operation to the OpenAPI document (the
/// router and the document are two halves of what this returns; see [`router`] and [`openapi`]). A
/// route-specific layer wraps its entry (the upload limit and drain of publish). Only `routes!`
/// entries go in this list, one handler each (a `routes!` of handlers on different paths would
/// route every path to all of them), so that nothing is served undocumented. `/graphql` and
/// `/metrics` are routed in [`router`] and are not part of the REST contract nor of the document.
fn rest_routes(uploads: Uploads) -> OpenApiRouter<AppState> {
    use rest::{auth, health, openapi, owners, packages, publish, search, stats, users};
    use utoipa::OpenApi as _;
    let routes = [
        routes!(health::health),
        routes!(health::ready),
        routes!(openapi::openapi_json),
        routes!(auth::register),
        routes!(auth::login),
        routes!(auth::refresh),
        routes!(users::me),
        routes!(users::create_token),
        routes!(users::revoke_token),
        routes!(users::show),
        routes!(stats::registry_stats),
        routes!(search::search),
        routes!(publish::publish).map(|route| uploads.wrap(route)),
        routes!(packages::package),
        routes!(packages::stats),
        routes!(owners::list),
        routes!(owners::add),
        routes!(owners::remove),
        routes!(packages::version),
        routes!(owners::yank),
        // GET and HEAD (`method(get, head)`).
        routes!(packages::download),
        routes!(owners::unyank),
    ];
    // Routes on one path with different methods merge into one method router.
    routes.into_iter().fold(OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()), OpenApiRouter::routes)
}

/// The OpenAPI document of the REST routes, from the same declaration as the router.
pub fn openapi() -> utoipa::openapi::OpenApi {
    // The upload limits do not show in the document.
    let uploads = Uploads { limit: 0, drain: drain::Budget { max_body_bytes: 0, max_time: drain::MAX_TIME } };
    rest::openapi::finish(rest_routes(uploads).split_for_parts().1)
}

/// The OpenAPI document of the REST routes as the committed `openapi.json` holds it: pretty JSON with a
/// final newline. `raven-registry openapi` prints it; `tests/openapi.rs` fails when the file drifts.
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

pub fn router(state: AppState, schema: RegistrySchema) -> Router {
    let uploads = Uploads::for_state(&state);
    let (rest_routes, document) = rest_routes(uploads).split_for_parts();
    // `GET /api/v1/openapi.json` serves the document of the very routes it is part of.
    let rest_routes = rest_routes.layer(Extension(rest::openapi::Served::new(rest::openapi::finish(document))));

    let graphql_routes = Router::new()
        .route("/graphql", get(graphql::http::get).post(graphql::http::post))
        // async-graphql reads the body itself, so DefaultBodyLimit would not apply: limit the stream.
        .layer(RequestBodyLimitLayer::new(uploads.limit))
        .layer(axum::middleware::map_response(too_large_as_graphql))
        .layer(axum::middleware::from_fn_with_state(uploads.drain, drain::middleware));

    Router::new()
        .route("/metrics", get(crate::metrics::render))
        .merge(graphql_routes)
        .merge(rest_routes)
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(crate::net::body_timeout_as_408))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::ratelimit::middleware))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(Extension(GraphqlEndpoint { schema }))
        .layer(middleware_stack())
        .with_state(state)
}

/// tower-http's body limit refuses an oversized Content-Length with a plain-text 413.
fn plain_too_large(res: &Response) -> bool {
    res.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"))
}

/// ... which the REST shim answers with its JSON error body, like every other error.
async fn too_large_as_v1(res: Response) -> Response {
    if !plain_too_large(&res) {
        return res;
    }
    crate::error::AppError::PayloadTooLarge("the request body is too large".into()).into_response()
}

/// ... and /graphql with a GraphQL response.
async fn too_large_as_graphql(res: Response) -> Response {
    if !plain_too_large(&res) {
        return res;
    }
    let body = serde_json::json!({
        "errors": [{ "message": "the request body is too large", "extensions": { "code": "PAYLOAD_TOO_LARGE" } }]
    });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

type Stack = tower::ServiceBuilder<
    tower::layer::util::Stack<
        CompressionLayer<And<DefaultPredicate, NotForContentType>>,
        tower::layer::util::Stack<
            CorsLayer,
            tower::layer::util::Stack<
                PropagateRequestIdLayer,
                tower::layer::util::Stack<
                    TraceLayer<
                        SharedClassifier<ServerErrorsAsFailures>,
                        fn(&Request<Body>) -> tracing::Span,
                        tower_http::trace::DefaultOnRequest,
                        crate::telemetry::LogResponse,
                    >,
                    tower::layer::util::Stack<
                        SetRequestIdLayer<MakeRequestUuid>,
                        tower::layer::util::Stack<
                            tower::util::MapRequestLayer<fn(Request<Body>) -> Request<Body>>,
                            tower::layer::util::Identity,
                        >,
                    >,
                >,
            >,
        >,
    >,
>;

/// Whether a client's `x-request-id` may be kept: 1 to 128 of `[A-Za-z0-9._-]`. Anything else (tabs,
/// spaces, `%0a`, quotes, a megabyte of text) would be written verbatim into every log line of the
/// request and echoed back, so it is replaced.
pub fn is_usable_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Removes an incoming `x-request-id` that is not usable (or repeated), so that `SetRequestIdLayer`
/// generates a fresh one.
fn drop_unusable_request_id(mut req: Request<Body>) -> Request<Body> {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    let usable = match (ids.next(), ids.next()) {
        (None, _) => return req,
        (Some(id), None) => is_usable_request_id(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !usable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

fn request_span(req: &Request<Body>) -> tracing::Span {
    crate::telemetry::request_span(req, &REQUEST_ID)
}

fn middleware_stack() -> Stack {
    // Tarballs are already gzip: compressing them again wastes CPU and breaks Content-Length.
    let compress = DefaultPredicate::new().and(NotForContentType::const_new("application/gzip"));
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request<Body>) -> tracing::Span)
        .on_response(crate::telemetry::LogResponse);
    tower::ServiceBuilder::new()
        .layer(tower::util::MapRequestLayer::new(drop_unusable_request_id as fn(Request<Body>) -> Request<Body>))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::HEAD])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::ACCEPT,
                    // Set by GraphQL clients to pass the multipart CSRF check (graphql/http.rs).
                    HeaderName::from_static(graphql::http::APOLLO_REQUIRE_PREFLIGHT),
                    HeaderName::from_static(graphql::http::APOLLO_OPERATION_NAME),
                ])
                .expose_headers([
                    REQUEST_ID,
                    header::RETRY_AFTER,
                    HeaderName::from_static("x-ratelimit-limit"),
                    HeaderName::from_static("x-ratelimit-remaining"),
                    HeaderName::from_static("x-ratelimit-reset"),
                ])
                .max_age(Duration::from_secs(3600)),
        )
        .layer(CompressionLayer::new().gzip(true).compress_when(compress))
}

/// Reading the rest of an upload that was answered early.
///
/// A route may answer before it has read the whole request body: a 413 from the Content-Length
/// alone or from the stream passing the limit, a 401 before the first byte of a tarball. hyper then
/// stops reading and closes the connection after the response, while a client that sends its whole
/// body before reading (`raven pkg publish`, curl) is still writing: it sees the connection reset
/// ("channel closed") instead of the answer. So the upload routes keep hold of the body, and once
/// the response is ready, read and discard what the client still sends, within a budget of bytes
/// (the route's limit plus MAX_TARBALL_BYTES) and of time (10 s), before the response goes out. A
/// 413 then closes the connection; a client past either budget has its connection closed without
/// more reading. A client that asked `Expect: 100-continue` and was never told to continue has
/// sent no body, and nothing is read.
pub mod drain {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::body::{Body, HttpBody};
    use axum::extract::{Request, State};
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::middleware::Next;
    use axum::response::Response;
    use bytes::Bytes;
    use http_body::Frame;

    /// How long the rest of a body may take to arrive.
    pub const MAX_TIME: Duration = Duration::from_secs(10);

    #[derive(Clone, Copy, Debug)]
    pub struct Budget {
        /// Body bytes read in all, by the route and the drain together.
        pub max_body_bytes: u64,
        pub max_time: Duration,
    }

    struct Inner {
        body: Mutex<Option<Body>>,
        polled: AtomicBool,
        read: AtomicU64,
    }

    /// The request body as the route sees it: the real body stays in `Inner`, so it outlives the
    /// route dropping its handle, and every data byte is counted.
    struct Shared(Arc<Inner>);

    impl HttpBody for Shared {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            let inner = &self.0;
            inner.polled.store(true, Ordering::Relaxed);
            let mut guard = inner.body.lock().unwrap_or_else(|e| e.into_inner());
            let Some(body) = guard.as_mut() else {
                return Poll::Ready(None);
            };
            let polled = Pin::new(body).poll_frame(cx);
            if let Poll::Ready(Some(Ok(frame))) = &polled {
                if let Some(data) = frame.data_ref() {
                    inner.read.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            polled
        }

        fn is_end_stream(&self) -> bool {
            self.0.body.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(|b| b.is_end_stream())
        }

        fn size_hint(&self) -> http_body::SizeHint {
            self.0.body.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|b| b.size_hint()).unwrap_or_default()
        }
    }

    /// What became of the unread rest of a body.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Outcome {
        /// Read to its end: the connection can carry on.
        Finished,
        /// Past the byte or time budget, or broken: the connection must close.
        GaveUp,
    }

    pub async fn middleware(State(budget): State<Budget>, req: Request, next: Next) -> Response {
        let (parts, body) = req.into_parts();
        let expects_continue =
            parts.headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let declared =
            parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let inner =
            Arc::new(Inner { body: Mutex::new(Some(body)), polled: AtomicBool::new(false), read: AtomicU64::new(0) });
        let mut res = next.run(Request::from_parts(parts, Body::new(Shared(Arc::clone(&inner))))).await;

        let body = inner.body.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(body) = body else {
            return res;
        };
        if expects_continue && !inner.polled.load(Ordering::Relaxed) {
            // hyper sends "100 Continue" on the first read only: the client has sent nothing.
            return res;
        }
        let outcome = if body.is_end_stream() {
            Outcome::Finished
        } else if declared.is_some_and(|len| len > budget.max_body_bytes) {
            // It says it will send more than will ever be read: do not start.
            Outcome::GaveUp
        } else {
            let already = inner.read.load(Ordering::Relaxed);
            let outcome = drain(body, budget.max_body_bytes.saturating_sub(already), budget.max_time).await;
            if outcome == Outcome::GaveUp {
                tracing::info!(status = %res.status(), "closing the connection: the client sent more than the drain budget");
            }
            outcome
        };
        if outcome == Outcome::GaveUp || res.status() == StatusCode::PAYLOAD_TOO_LARGE {
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }

    /// Reads `body` to its end and discards it, giving up past `max_bytes` or `max_time`.
    pub async fn drain(mut body: Body, max_bytes: u64, max_time: Duration) -> Outcome {
        use http_body_util::BodyExt;
        let mut read = 0u64;
        let reading = async {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    return Outcome::GaveUp;
                };
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    if read > max_bytes {
                        return Outcome::GaveUp;
                    }
                }
            }
            Outcome::Finished
        };
        tokio::time::timeout(max_time, reading).await.unwrap_or(Outcome::GaveUp)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn a_body_is_read_to_its_end_within_the_byte_budget() {
            assert_eq!(drain(Body::empty(), 0, MAX_TIME).await, Outcome::Finished);
            assert_eq!(drain(Body::from(vec![0u8; 1024]), 1024, MAX_TIME).await, Outcome::Finished);
            assert_eq!(drain(Body::from(vec![0u8; 1025]), 1024, MAX_TIME).await, Outcome::GaveUp);
            let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 300]))));
            assert_eq!(drain(Body::from_stream(chunks), 1024, MAX_TIME).await, Outcome::GaveUp);
            let broken = futures::stream::iter([Err::<Bytes, _>(std::io::Error::other("reset"))]);
            assert_eq!(drain(Body::from_stream(broken), 1024, MAX_TIME).await, Outcome::GaveUp);
        }

        /// A client that stops sending is not waited for past the time budget (a stream that never
        /// yields can only end by the timeout).
        #[tokio::test]
        async fn a_stalled_body_is_given_up() {
            let stalled = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
            assert_eq!(drain(stalled, 1024, Duration::from_millis(20)).await, Outcome::GaveUp);
        }
    }
}
