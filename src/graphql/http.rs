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
use crate::error::AppResult;
use crate::graphql::auth::RequestViewer;
use crate::graphql::RegistrySchema;
use crate::graphql::{graphiql, limits, multipart};
use crate::ratelimit::ClientIp;
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
    headers: HeaderMap,
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
        let bytes = match read_json_body(body, &headers, state.config.graphql_max_body_bytes as usize).await {
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
    if let Some(res) = admit(&mut request, &state) {
        return res;
    }
    execute(&endpoint.schema, with_request_data(request, auth, &state, client), &headers).await
}

pub async fn get(
    State(state): State<AppState>,
    axum::Extension(endpoint): axum::Extension<GraphqlEndpoint>,
    auth: Auth,
    client: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if graphiql::serves_page(&headers, &query) {
        return graphiql::page_response();
    }
    let has_query = query.split('&').any(|kv| kv.starts_with("query="));
    if !has_query {
        return request_error(StatusCode::BAD_REQUEST, "GET /graphql needs a `query` parameter");
    }
    let mut request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => return request_error(StatusCode::BAD_REQUEST, &format!("invalid GraphQL request: {e}")),
    };
    if let Some(res) = admit(&mut request, &state) {
        return res;
    }
    if is_mutation(&mut request) {
        let mut res = request_error(StatusCode::METHOD_NOT_ALLOWED, "mutations must be sent with POST");
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    execute(&endpoint.schema, with_request_data(request, auth, &state, client), &headers).await
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

/// async-graphql marks the files of a multipart request in the variables as
/// `"#__graphql_file__:<index>"` and trusts such a marker wherever an `Upload` is parsed: a forged
/// one (an inline literal, a JSON variable, an index past the files that arrived) panics inside the
/// library (an unchecked number parse, an unchecked index). Only markers naming a received file pass.
fn forged_upload_marker(request: &mut Request) -> bool {
    use async_graphql::parser::types::{Directive, Selection, SelectionSet};
    use async_graphql::parser::Positioned;
    use async_graphql::Value as ConstValue;

    const MARKER: &str = "#__graphql_file__:";
    let files = request.uploads.len();
    let forged = |s: &str| s.strip_prefix(MARKER).is_some_and(|i| i.parse::<usize>().map_or(true, |i| i >= files));

    fn in_const(v: &ConstValue, forged: &dyn Fn(&str) -> bool) -> bool {
        match v {
            ConstValue::String(s) => forged(s),
            ConstValue::List(items) => items.iter().any(|v| in_const(v, forged)),
            ConstValue::Object(map) => map.values().any(|v| in_const(v, forged)),
            _ => false,
        }
    }
    // A literal of the document, its variable references taken as null (the parser's `Value` type is
    // not exported under a name of its own, hence a macro rather than a function).
    macro_rules! in_value {
        ($v:expr, $forged:expr) => {
            in_const(
                &$v.clone()
                    .into_const_with(|_| Ok::<_, std::convert::Infallible>(ConstValue::Null))
                    .unwrap_or_default(),
                $forged,
            )
        };
    }
    fn in_directives(ds: &[Positioned<Directive>], forged: &dyn Fn(&str) -> bool) -> bool {
        ds.iter().any(|d| d.node.arguments.iter().any(|(_, v)| in_value!(v.node, forged)))
    }
    fn in_set(set: &SelectionSet, forged: &dyn Fn(&str) -> bool) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => {
                f.node.arguments.iter().any(|(_, v)| in_value!(v.node, forged))
                    || in_directives(&f.node.directives, forged)
                    || in_set(&f.node.selection_set.node, forged)
            }
            Selection::FragmentSpread(s) => in_directives(&s.node.directives, forged),
            Selection::InlineFragment(f) => {
                in_directives(&f.node.directives, forged) || in_set(&f.node.selection_set.node, forged)
            }
        })
    }

    if request.variables.values().any(|v| in_const(v, &forged)) {
        return true;
    }
    // A document that does not parse is left to execution, which reports the syntax error. One
    // that does is kept in the request, and execution does not parse it again.
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    doc.operations.iter().any(|(_, op)| {
        let op = &op.node;
        op.variable_definitions.iter().any(|d| {
            d.node.default_value.as_ref().is_some_and(|v| in_const(&v.node, &forged))
                || in_directives(&d.node.directives, &forged)
        }) || in_directives(&op.directives, &forged)
            || in_set(&op.selection_set.node, &forged)
    }) || doc
        .fragments
        .values()
        .any(|f| in_directives(&f.node.directives, &forged) || in_set(&f.node.selection_set.node, &forged))
}

async fn execute(schema: &RegistrySchema, mut request: Request, headers: &HeaderMap) -> Response {
    if forged_upload_marker(&mut request) {
        return request_error(StatusCode::BAD_REQUEST, "an Upload must be a file part of a GraphQL multipart request");
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
            return request_error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
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
    let content_type = if modern { GRAPHQL_RESPONSE_JSON } else { "application/json" };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
