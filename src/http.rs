//! The routes of the server, each REST route declared once (`rest_routes`), and its middleware stack.
use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::compression::predicate::{And, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::graphql::http::GraphqlEndpoint;
use crate::graphql::RegistrySchema;
use crate::state::AppState;
use crate::{graphql, rest};

// Tests and tools check ids with the same rule the router applies.
pub use crate::telemetry::is_usable_request_id;

pub mod cors;
pub mod drain;
pub mod metrics;
pub mod ratelimit;

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
    use rest::{auth, events, health, openapi, owners, packages, publish, resolve, search, stats, users, yank};
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
        routes!(resolve::resolve),
        routes!(publish::publish).map(|route| uploads.wrap(route)),
        routes!(packages::package),
        routes!(packages::stats),
        routes!(owners::list),
        routes!(owners::add),
        routes!(owners::remove),
        routes!(packages::version),
        routes!(yank::yank),
        // GET and HEAD (`method(get, head)`).
        routes!(packages::download),
        routes!(yank::unyank),
        routes!(events::events),
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

    // Subscriptions over WebSocket: no body to limit, and the socket's own bounds (graphql::ws).
    let subscriptions = Router::new()
        .route("/graphql/ws", get(graphql::ws::upgrade))
        .layer(Extension(graphql::ws::Subscriptions::from_config(&state.config)));

    Router::new()
        .route("/metrics", get(metrics::render))
        .merge(subscriptions)
        .route("/graphiql/{version}/{file}", get(graphiql_asset))
        .merge(graphql_routes)
        .merge(rest_routes)
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(crate::net::body_timeout_as_408))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::middleware))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(Extension(GraphqlEndpoint::new(schema, &state)))
        // Inside the request id and trace layers (preflights are logged with their id), outside
        // rate limits (a preflight costs no budget).
        .layer(axum::middleware::from_fn_with_state(cors::Cors::new(&state.config), cors::middleware))
        .layer(middleware_stack())
        .with_state(state)
}

/// A file of the GraphiQL page; any other path below `/graphiql/` is the usual 404.
async fn graphiql_asset(Path((version, file)): Path<(String, String)>) -> Response {
    match graphql::graphiql::asset_response(&version, &file) {
        Some(res) => res,
        None => rest::not_found().await.into_response(),
    }
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
        .layer(CompressionLayer::new().gzip(true).compress_when(compress))
}
