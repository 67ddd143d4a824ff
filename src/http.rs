//! The one route table of the server and its middleware stack.
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Method, Request};
use axum::routing::{delete, get, post, put};
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

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// JSON bodies of the REST shim are small; only uploads get the tarball limit.
const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Room for multipart framing and the metadata part around a maximal tarball.
const UPLOAD_OVERHEAD: u64 = 256 * 1024;

pub fn router(state: AppState, schema: RegistrySchema) -> Router {
    let upload_limit = (state.config.max_tarball_bytes + UPLOAD_OVERHEAD) as usize;

    let api = Router::new()
        .route("/auth/register", post(rest::auth::register))
        .route("/auth/login", post(rest::auth::login))
        .route("/auth/refresh", post(rest::auth::refresh))
        .route("/users/me", get(rest::users::me))
        .route("/users/me/tokens", post(rest::users::create_token))
        .route("/users/me/tokens/{token_id}", delete(rest::users::revoke_token))
        .route("/users/{username}", get(rest::users::show))
        .route("/stats", get(rest::stats::registry_stats))
        .route("/search", get(rest::search::search))
        .route("/packages/{name}/owners", get(rest::owners::list).put(rest::owners::add))
        .route("/packages/{name}/owners/{username}", delete(rest::owners::remove))
        .route("/packages/{name}", get(rest::packages::package))
        .route("/packages/{name}/stats", get(rest::packages::stats))
        .route("/packages/{name}/{version}", get(rest::packages::version).delete(rest::owners::yank))
        .route("/packages/{name}/{version}/download", get(rest::packages::download))
        .route("/packages/{name}/{version}/unyank", put(rest::owners::unyank))
        .merge(
            Router::new()
                .route("/packages/publish", post(rest::publish::publish))
                .layer(DefaultBodyLimit::disable())
                .layer(RequestBodyLimitLayer::new(upload_limit)),
        );

    let graphql_routes = Router::new()
        .route("/graphql", get(graphql::http::get).post(graphql::http::post))
        // async-graphql reads the body itself, so DefaultBodyLimit would not apply: limit the stream.
        .layer(RequestBodyLimitLayer::new(upload_limit));

    Router::new()
        .route("/health", get(rest::health::health))
        .route("/ready", get(rest::health::ready))
        .route("/metrics", get(crate::metrics::render))
        .merge(graphql_routes)
        .nest("/api/v1", api)
        .fallback(rest::not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::ratelimit::middleware))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(Extension(GraphqlEndpoint { schema }))
        .layer(middleware_stack())
        .with_state(state)
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
                    tower::layer::util::Stack<SetRequestIdLayer<MakeRequestUuid>, tower::layer::util::Identity>,
                >,
            >,
        >,
    >,
>;

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
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::HEAD])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
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
