//! The one route table of the server and its middleware stack.
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, head, post, put, MethodRouter};
use axum::{Extension, Router};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::compression::predicate::{And, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::graphql::http::GraphqlEndpoint;
use crate::graphql::RegistrySchema;
use crate::state::AppState;
use crate::{graphql, rest};

// Tests and tools check ids with the same rule the router applies.
pub use crate::telemetry::is_usable_request_id;

pub mod drain;
pub mod metrics;
pub mod ratelimit;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// JSON bodies of the REST shim are small; only uploads get the tarball limit.
const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Room for multipart framing and the metadata part around a maximal tarball.
const UPLOAD_OVERHEAD: u64 = 256 * 1024;

/// Every route of the REST side of the server (`/health`, `/ready` and the `/api/v1` shim), as
/// (method, path). The router is built from this table (see [`endpoint`]), and the OpenAPI document
/// served at `/api/v1/openapi.json` must describe exactly these operations: `tests/openapi.rs`
/// checks both directions. `/graphql` and `/metrics` are not part of the REST contract.
pub const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/users/me"),
    ("POST", "/api/v1/users/me/tokens"),
    ("DELETE", "/api/v1/users/me/tokens/{token_id}"),
    ("GET", "/api/v1/users/{username}"),
    ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/search"),
    ("POST", "/api/v1/packages/publish"),
    ("GET", "/api/v1/packages/{name}"),
    ("GET", "/api/v1/packages/{name}/stats"),
    ("GET", "/api/v1/packages/{name}/owners"),
    ("PUT", "/api/v1/packages/{name}/owners"),
    ("DELETE", "/api/v1/packages/{name}/owners/{username}"),
    ("GET", "/api/v1/packages/{name}/{version}"),
    ("DELETE", "/api/v1/packages/{name}/{version}"),
    ("GET", "/api/v1/packages/{name}/{version}/download"),
    ("HEAD", "/api/v1/packages/{name}/{version}/download"),
    ("PUT", "/api/v1/packages/{name}/{version}/unyank"),
];

/// The handler of one entry of [`API_ROUTES`].
fn endpoint(method: &str, path: &str, upload_limit: usize, drain: drain::Budget) -> MethodRouter<AppState> {
    use rest::{auth, health, owners, packages, publish, search, stats, users};
    match (method, path) {
        ("GET", "/health") => get(health::health),
        ("GET", "/ready") => get(health::ready),
        ("GET", "/api/v1/openapi.json") => get(rest::openapi::openapi_json),
        ("POST", "/api/v1/auth/register") => post(auth::register),
        ("POST", "/api/v1/auth/login") => post(auth::login),
        ("POST", "/api/v1/auth/refresh") => post(auth::refresh),
        ("GET", "/api/v1/users/me") => get(users::me),
        ("POST", "/api/v1/users/me/tokens") => post(users::create_token),
        ("DELETE", "/api/v1/users/me/tokens/{token_id}") => delete(users::revoke_token),
        ("GET", "/api/v1/users/{username}") => get(users::show),
        ("GET", "/api/v1/stats") => get(stats::registry_stats),
        ("GET", "/api/v1/search") => get(search::search),
        // Only uploads get the tarball limit.
        ("POST", "/api/v1/packages/publish") => post(publish::publish)
            .layer::<_, Infallible>(DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(upload_limit))
            .layer(axum::middleware::map_response(too_large_as_v1))
            .layer(axum::middleware::from_fn_with_state(drain, drain::middleware)),
        ("GET", "/api/v1/packages/{name}") => get(packages::package),
        ("GET", "/api/v1/packages/{name}/stats") => get(packages::stats),
        ("GET", "/api/v1/packages/{name}/owners") => get(owners::list),
        ("PUT", "/api/v1/packages/{name}/owners") => put(owners::add),
        ("DELETE", "/api/v1/packages/{name}/owners/{username}") => delete(owners::remove),
        ("GET", "/api/v1/packages/{name}/{version}") => get(packages::version),
        ("DELETE", "/api/v1/packages/{name}/{version}") => delete(owners::yank),
        ("GET", "/api/v1/packages/{name}/{version}/download") => get(packages::download),
        ("HEAD", "/api/v1/packages/{name}/{version}/download") => head(packages::download),
        ("PUT", "/api/v1/packages/{name}/{version}/unyank") => put(owners::unyank),
        _ => panic!("{method} {path} is listed in API_ROUTES but has no handler in http::endpoint"),
    }
}

pub fn router(state: AppState, schema: RegistrySchema) -> Router {
    let upload_limit = (state.config.max_tarball_bytes + UPLOAD_OVERHEAD) as usize;
    // Up to MAX_TARBALL_BYTES past the limit, or 10 s, is read and discarded after an early answer.
    let drain = drain::Budget {
        max_body_bytes: upload_limit as u64 + state.config.max_tarball_bytes,
        max_time: drain::MAX_TIME,
    };

    // Routes on one path with different methods merge into one method router.
    let rest_routes = API_ROUTES
        .iter()
        .fold(Router::new(), |r, &(method, path)| r.route(path, endpoint(method, path, upload_limit, drain)));

    let graphql_routes = Router::new()
        .route("/graphql", get(graphql::http::get).post(graphql::http::post))
        // async-graphql reads the body itself, so DefaultBodyLimit would not apply: limit the stream.
        .layer(RequestBodyLimitLayer::new(upload_limit))
        .layer(axum::middleware::map_response(too_large_as_graphql))
        .layer(axum::middleware::from_fn_with_state(drain, drain::middleware));

    Router::new()
        .route("/metrics", get(metrics::render))
        .merge(graphql_routes)
        .merge(rest_routes)
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(crate::net::body_timeout_as_408))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::middleware))
        .layer(axum::middleware::from_fn(metrics::track))
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

/// Removes an incoming `x-request-id` that is not usable (or repeated), so that `SetRequestIdLayer`
/// generates a fresh one.
fn drop_unusable_request_id(mut req: Request<Body>) -> Request<Body> {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    let usable = match (ids.next(), ids.next()) {
        (None, _) => return req,
        (Some(id), None) => crate::telemetry::is_usable_request_id(id.as_bytes()),
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
