//! The OpenAPI 3.1 document of the REST shim, served at `GET /api/v1/openapi.json`.
//!
//! It is generated with utoipa from the handlers' `#[utoipa::path]` annotations and the response
//! structs they serialize, collected by the same list that routes them (`rest_routes` in
//! `crate::http`, with utoipa-axum's `routes!`): a route is declared once, and is documented by being
//! routed. [`ApiDoc`] holds what is not per route (info, tags, shared schemas); the committed
//! `openapi.json` is this document (a test fails when it drifts; regenerate it with
//! `cargo run -- openapi > openapi.json`). `tests/openapi.rs` checks it against the running server;
//! `.ci/schemathesis` fuzzes the server against it.
use std::collections::BTreeMap;

use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use bytes::Bytes;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "raven-registry REST API (the raven pkg shim)",
        version = "1",
        description = "The `/api/v1` REST shim spoken by `raven pkg`, plus `/health` and `/ready`. \
            Errors on every endpoint use the `Error` body. Timestamps are RFC 3339 strings, IDs are \
            strings. The web frontend speaks GraphQL at `/graphql` instead (not described here).",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(ErrorBody, ErrorCode, ErrorDetails, OwnerRole, TokenScope)),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Accounts and login tokens"),
        (name = "users", description = "Profiles and API tokens"),
        (name = "packages", description = "Package metadata, publishing, yanking and downloads"),
        (name = "owners", description = "Package owners"),
        (name = "search", description = "Search and registry statistics"),
        (name = "events", description = "The catalog's change feed"),
    )
)]
pub struct ApiDoc;

/// Completes the document collected from the routes: the bearer security scheme, and operation ids
/// made unique. (Modifiers in `#[openapi(...)]` would run before any route is added.)
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    BearerScheme.modify(&mut doc);
    UniqueOperationIds.modify(&mut doc);
    doc
}

/// The finished document as served, serialized once when the router is built.
#[derive(Clone)]
pub struct Served(Bytes);

impl Served {
    pub fn new(doc: utoipa::openapi::OpenApi) -> Self {
        Served(doc.to_json().expect("the OpenAPI document serializes").into())
    }
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    operation_id = "openapi",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", body = Object, content_type = "application/json"),
        RateLimited,
    )
)]
pub async fn openapi_json(Extension(Served(doc)): Extension<Served>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc)
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "A login token (from /auth/register, /auth/login or /auth/refresh) or an API token \
             (POST /users/me/tokens)."
                .into(),
        );
        components.add_security_scheme(BEARER, SecurityScheme::Http(http));
    }
}

/// `method(get, head)` gives both operations one id; OpenAPI wants them unique.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            if let Some(op) = item.head.as_mut() {
                if let Some(id) = op.operation_id.as_mut() {
                    id.push_str("Head");
                }
            }
        }
    }
}

/// The body of every REST error (see `AppError::into_response`).
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// Human-readable explanation; generic for internal errors.
    pub message: String,
    pub details: ErrorDetails,
    /// Seconds to wait before retrying; only on 429.
    #[schema(required = false, minimum = 0)]
    pub retry_after: u64,
}

/// The machine-readable `error` of an error body.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    AuthenticationRequired,
    InvalidCredentials,
    PermissionDenied,
    NotFound,
    Conflict,
    MethodNotAllowed,
    PayloadTooLarge,
    TooComplex,
    RateLimitExceeded,
    InternalError,
    ServiceUnavailable,
}

/// Extra detail; validation errors name the offending `field`.
#[derive(ToSchema)]
pub struct ErrorDetails {
    /// The request field that failed validation.
    #[schema(required = false)]
    pub field: String,
    /// A refused publish: every problem its checks found (the first one gave this error).
    #[schema(required = false)]
    pub problems: Vec<crate::rest::publish::ProblemBody>,
}

/// A role on a package: `owner` (all rights) or `maintainer` (publish, yank).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OwnerRole {
    Owner,
    Maintainer,
}

/// A right an API token can carry.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum TokenScope {
    PublishNew,
    PublishUpdate,
    Yank,
    ChangeOwners,
}

/// Raw bytes (a tarball).
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

fn error_response(description: &str, retry_after: bool) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build();
    let mut res = ResponseBuilder::new().description(description).content("application/json", content);
    if retry_after {
        res = res.header(
            "Retry-After",
            HeaderBuilder::new().schema(u64::schema()).description(Some("Seconds to wait before retrying")).build(),
        );
    }
    res.build().into()
}

use utoipa::PartialSchema as _;

macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident => [$(($status:literal, $description:literal, $retry:literal)),+];)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([$(($status.to_string(), error_response($description, $retry))),+])
            }
        }
    )+};
}

error_responses! {
    /// 400 with the error body.
    BadRequest => [("400", "Invalid request: malformed body or parameter, or a value that fails validation (`details.field`)", false)];
    /// 401 with the error body.
    Unauthorized => [("401", "Not authenticated: bearer token missing, malformed, expired or revoked (login: `invalid_credentials`)", false)];
    /// 403 with the error body.
    Forbidden => [("403", "The token's user or scopes do not allow this", false)];
    /// 404 with the error body.
    NotFound => [("404", "No such resource", false)];
    /// 409 with the error body.
    Conflict => [("409", "Conflicts with the current state (already exists, last owner, ...)", false)];
    /// 413 with the error body.
    PayloadTooLarge => [("413", "The request body is too large", false)];
    /// 422 with the error body: well-formed input past a bound of the server's work.
    Unprocessable => [("422", "The work the request asks for exceeds a bound of the server (`too_complex`; the message names the bound)", false)];
    /// 429 with the error body (rate limits, when enabled).
    RateLimited => [("429", "Rate limit exceeded; see Retry-After", true)];
    /// 500 and 503 with the error body: an internal error, or a dependency (database, storage) away.
    ServerSide => [
        ("500", "Internal error (details are only logged)", false),
        ("503", "The database or the storage is unavailable; retry after Retry-After", true)
    ];
}
