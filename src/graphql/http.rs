//! GraphQL over HTTP, following the GraphQL-over-HTTP specification: POST executes queries and
//! mutations (application/json or GraphQL multipart), GET with `query` executes queries only, GET
//! without one serves GraphiQL. Responses are application/graphql-response+json when the client
//! accepts it (with 4xx for request errors) and application/json otherwise.
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Request};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::Viewer;
use std::sync::Arc;

use crate::error::AppResult;
use crate::graphql::auth::RequestViewer;
use crate::graphql::budget::{charge, read_refused, Charge};
use crate::graphql::caching::{self, Caching};
use crate::graphql::persisted::{self, PersistedQueries};
use crate::graphql::RegistrySchema;
use crate::graphql::{graphiql, limits, multipart};
use crate::ratelimit::ClientIp;
use crate::ratelimit::GraphqlCharge;
use crate::state::AppState;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// Headers only a preflighted cross-origin request can carry (Apollo's CSRF convention).
pub const APOLLO_REQUIRE_PREFLIGHT: &str = "apollo-require-preflight";
pub const APOLLO_OPERATION_NAME: &str = "x-apollo-operation-name";
/// Request errors (syntax, validation) one response reports at most: a document repeating one
/// mistake (a duplicated argument or variable) must not answer with thousands of copies of it.
const MAX_ERRORS: usize = 20;

#[derive(Clone)]
pub struct GraphqlEndpoint {
    pub schema: RegistrySchema,
    /// Automatic persisted queries, by hash.
    pub persisted: Arc<PersistedQueries>,
}

impl GraphqlEndpoint {
    pub fn new(schema: RegistrySchema, state: &AppState) -> GraphqlEndpoint {
        GraphqlEndpoint { schema, persisted: Arc::new(PersistedQueries::new(state.config.persisted_queries_max_bytes)) }
    }
}

/// An answer given before execution; `read`: charge it as a read (a persisted-query miss).
struct Early {
    res: Box<Response>,
    read: bool,
}

/// Resolves a persisted query and checks the document limits; a document sent with its hash is
/// returned for registration.
fn prepare(request: &mut Request, state: &AppState, endpoint: &GraphqlEndpoint) -> Result<Option<String>, Early> {
    let resolved = match endpoint.persisted.resolve(request) {
        Ok(resolved) => resolved,
        Err(persisted::Refusal::NotFound) => {
            // Apollo clients look for this message or code, then send the document with its hash.
            let body = serde_json::json!({ "errors": [{ "message": "PersistedQueryNotFound", "extensions": { "code": "PERSISTED_QUERY_NOT_FOUND" } }] });
            return Err(Early { res: Box::new((StatusCode::OK, axum::Json(body)).into_response()), read: true });
        }
        Err(persisted::Refusal::Invalid(message)) => {
            return Err(Early { res: Box::new(request_error(StatusCode::BAD_REQUEST, &message)), read: false })
        }
    };
    if let Some(res) = admit(request, state) {
        return Err(Early { res: Box::new(res), read: false });
    }
    Ok(match resolved {
        persisted::Resolved::Register(hash) => Some(hash),
        persisted::Resolved::Plain | persisted::Resolved::FromStore => None,
    })
}

/// Which media type the client wants back. Absent or `*/*` means the legacy application/json.
fn wants_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(|accept| accept.split(',').any(|part| part.trim().starts_with(GRAPHQL_RESPONSE_JSON)))
        .unwrap_or(false)
}

fn request_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }] });
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn too_large(message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": "PAYLOAD_TOO_LARGE" } }] });
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

/// Authenticates without rejecting: the outcome travels into the GraphQL request data.
pub struct Auth(pub AppResult<Option<Viewer>>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Auth(crate::extract::resolve_viewer(parts, state).await))
    }
}

pub async fn post(
    State(state): State<AppState>,
    axum::Extension(endpoint): axum::Extension<GraphqlEndpoint>,
    auth: Auth,
    client: Option<axum::Extension<ClientIp>>,
    budget: Charge,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut res = post_inner(state, endpoint, auth, client, budget, &headers, body).await;
    // POST answers are never stored; `private` when made for a signed-in viewer.
    let caching = if headers.contains_key(header::AUTHORIZATION) { Caching::Private } else { Caching::NoStore };
    caching::apply(&mut res, caching, false, 0);
    res
}

async fn post_inner(
    state: AppState,
    endpoint: GraphqlEndpoint,
    auth: Auth,
    client: Option<axum::Extension<ClientIp>>,
    budget: Charge,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return request_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a POST to /graphql needs a Content-Type header");
    };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && essence != "multipart/form-data" {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json or multipart/form-data",
        );
    }
    let request = if essence == "multipart/form-data" {
        // A multipart POST is a "simple" request: a browser sends it cross-site without a
        // preflight, so a hostile page could act for its visitor. One that carries neither a
        // token nor a header only a preflighted request can set is refused (Apollo's convention).
        if !headers.contains_key(header::AUTHORIZATION)
            && !headers.contains_key(APOLLO_REQUIRE_PREFLIGHT)
            && !headers.contains_key(APOLLO_OPERATION_NAME)
        {
            return request_error(
                StatusCode::BAD_REQUEST,
                "a multipart request to /graphql needs an Authorization header or the header \
                 `Apollo-Require-Preflight: true` (cross-site request protection)",
            );
        }
        let max_json = u64::from(state.config.graphql_max_body_bytes);
        match multipart::receive(body, content_type, max_json, state.config.max_tarball_bytes).await {
            Ok(request) => request,
            Err(multipart::Refused::TooLarge(message)) => return too_large(&message),
            Err(multipart::Refused::Invalid(message)) => return request_error(StatusCode::BAD_REQUEST, &message),
            Err(multipart::Refused::Internal) => {
                let body = serde_json::json!({ "errors": [{ "message": "internal server error", "extensions": { "code": "INTERNAL_SERVER_ERROR" } }] });
                return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
            }
        }
    } else {
        let bytes = match read_json_body(body, headers, state.config.graphql_max_body_bytes as usize).await {
            Ok(bytes) => bytes,
            Err(res) => return res,
        };
        match serde_json::from_slice::<BatchRequest>(&bytes) {
            Ok(BatchRequest::Single(r)) => r,
            Ok(BatchRequest::Batch(_)) => {
                return request_error(StatusCode::BAD_REQUEST, "batched GraphQL requests are not supported")
            }
            Err(e) => return request_error(StatusCode::BAD_REQUEST, &format!("invalid GraphQL request: {e}")),
        }
    };
    let mut request = request;
    let register = match prepare(&mut request, &state, &endpoint) {
        Ok(register) => register,
        Err(Early { res, read: true }) => return read_refused(*res, &budget, &state),
        Err(Early { res, read: false }) => return *res,
    };
    if let Some(hash) = register {
        endpoint.persisted.insert(hash, &request.query);
    }
    let kind = if is_mutation(&mut request) { GraphqlCharge::Other } else { GraphqlCharge::Query };
    if let Some(refusal) = charge(&budget, &state, kind) {
        return refusal;
    }
    execute(&endpoint.schema, with_request_data(request, auth, &state, client), headers).await.0
}

pub async fn get(
    State(state): State<AppState>,
    axum::Extension(endpoint): axum::Extension<GraphqlEndpoint>,
    auth: Auth,
    client: Option<axum::Extension<ClientIp>>,
    budget: Charge,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if graphiql::serves_page(&headers, &query) {
        return graphiql::page_response();
    }
    let runs = query.split('&').any(|kv| kv.starts_with("query=") || kv.starts_with("extensions="));
    if !runs {
        let res = request_error(
            StatusCode::BAD_REQUEST,
            "GET /graphql needs a `query` parameter (or a persisted query's hash in `extensions`)",
        );
        return read_refused(res, &budget, &state);
    }
    let mut request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => {
            let res = request_error(StatusCode::BAD_REQUEST, &format!("invalid GraphQL request: {e}"));
            return read_refused(res, &budget, &state);
        }
    };
    let register = match prepare(&mut request, &state, &endpoint) {
        Ok(register) => register,
        Err(Early { res, .. }) => return read_refused(*res, &budget, &state),
    };
    // After the persisted query is resolved: a document from the store is checked like any other.
    if is_mutation(&mut request) {
        let mut res = request_error(StatusCode::METHOD_NOT_ALLOWED, "mutations must be sent with POST");
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return read_refused(res, &budget, &state);
    }
    if let Some(hash) = register {
        endpoint.persisted.insert(hash, &request.query);
    }
    let max_age = state.config.graphql_cache_max_age;
    let caching = if headers.contains_key(header::AUTHORIZATION) {
        Caching::Private
    } else {
        match caching::etag(&state, &request, wants_graphql_response_json(&headers)).await {
            Some(etag) if caching::matches(&headers, &etag) => {
                // The client holds this answer already: nothing runs and nothing is charged.
                if let Some(axum::Extension(budget)) = &budget {
                    budget.waive();
                }
                return caching::not_modified(etag, max_age);
            }
            Some(etag) => Caching::Public(etag),
            None => Caching::NoStore,
        }
    };
    if let Some(refusal) = charge(&budget, &state, GraphqlCharge::Query) {
        return refusal;
    }
    let (mut res, clean) = execute(&endpoint.schema, with_request_data(request, auth, &state, client), &headers).await;
    caching::apply(&mut res, caching, clean, max_age);
    res
}

/// Per-request data: the viewer, fresh DataLoaders, and the client address (for login limits).
fn with_request_data(
    request: Request,
    auth: Auth,
    state: &AppState,
    client: Option<axum::Extension<ClientIp>>,
) -> Request {
    let mut request = request.data(RequestViewer(auth.0)).data(crate::graphql::loader::new(state.db.clone()));
    if let Some(axum::Extension(ip)) = client {
        request = request.data(ip);
    }
    request
}

/// The document limits ([`limits`]), checked before anything expands the document: the text's
/// size and nesting, then (once parsed; the parse is kept for execution) its expanded field count.
/// `Some` is the refusal to answer with.
fn admit(request: &mut Request, state: &AppState) -> Option<Response> {
    let limits = limits::DocumentLimits::from_config(&state.config);
    let checked = limits::check_source(&request.query, &limits).and_then(|()| match request.parsed_query() {
        Ok(doc) => limits::check_document(doc, &limits),
        // A syntax error is reported by execution, like any other request error.
        Err(_) => Ok(()),
    });
    checked.err().map(|refusal| {
        crate::metrics::graphql_refused(refusal.reason());
        tracing::info!(code = refusal.code, message = %refusal.message, "GraphQL document refused");
        let body =
            serde_json::json!({ "errors": [{ "message": refusal.message, "extensions": { "code": refusal.code } }] });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    })
}

/// The body of a JSON request, refused with 413 past `limit` bytes: a declared length is judged
/// before reading, a streamed one as it arrives, so no more than `limit` bytes are ever held.
async fn read_json_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<bytes::Bytes, Response> {
    use http_body_util::BodyExt;
    let too_large =
        || too_large(&format!("a JSON request to /graphql may be at most {limit} bytes (GRAPHQL_MAX_BODY_BYTES)"));
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(request_error(StatusCode::BAD_REQUEST, &format!("could not read the request body: {e}"))),
    }
}

/// True when the operation the request selects is a mutation. Unparseable documents are left to
/// execution, which reports the syntax error properly.
fn is_mutation(request: &mut Request) -> bool {
    let name = request.operation_name.clone();
    // Parsed once: execution reuses the document the request keeps.
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    let ops: Vec<_> = doc.operations.iter().collect();
    let chosen = match &name {
        Some(name) => ops.into_iter().find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str())),
        None => ops.into_iter().next(),
    };
    chosen.is_some_and(|(_, op)| op.node.ty == OperationType::Mutation)
}

/// Runs the request; `true` with an answer that carries no error (one a cache may keep).
async fn execute(schema: &RegistrySchema, mut request: Request, headers: &HeaderMap) -> (Response, bool) {
    if multipart::forged_upload_marker(&mut request) {
        let res =
            request_error(StatusCode::BAD_REQUEST, "an Upload must be a file part of a GraphQL multipart request");
        return (res, false);
    }
    let mut response = schema.execute(request).await;
    // Only request errors (no path) are cut: field errors are one per field that ran, so
    // GRAPHQL_MAX_FIELDS bounds them, and each tells its field's own outcome.
    let request_errors = response.errors.iter().filter(|e| e.path.is_empty()).count();
    if request_errors > MAX_ERRORS {
        let omitted = request_errors - MAX_ERRORS + 1;
        let mut kept = 0;
        response.errors.retain(|e| {
            if !e.path.is_empty() {
                return true;
            }
            kept += 1;
            kept < MAX_ERRORS
        });
        let mut more = async_graphql::ServerError::new(format!("{omitted} more errors omitted"), None);
        more.extensions.get_or_insert_with(Default::default).set("code", "BAD_REQUEST");
        response.errors.push(more);
    }
    let modern = wants_graphql_response_json(headers);
    // A request error (syntax, validation) is one where execution never started: no data, and no
    // error carries a path.
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = match serde_json::to_value(&response) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a GraphQL response");
            return (request_error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error"), false);
        }
    };
    let status = if modern && request_failed {
        if let Some(obj) = body.as_object_mut() {
            obj.remove("data");
        }
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let clean = response.errors.is_empty();
    let content_type = if modern { GRAPHQL_RESPONSE_JSON } else { "application/json" };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (res, clean)
}
