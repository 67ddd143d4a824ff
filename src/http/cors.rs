//! CORS, as configured by `CORS_ALLOWED_ORIGINS`, `CORS_ALLOWED_HEADERS` and `CORS_MAX_AGE_SECS`.
//!
//! Our own middleware rather than tower-http's `CorsLayer`: with a list of origins, an origin not
//! on it must get no CORS header at all (tower-http still sends `Access-Control-Allow-Credentials`
//! and the preflight's method and header lists to it), and every response must say it varies by
//! `Origin`, since only some origins are echoed.
use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{Config, CorsHeaders, CorsOrigins};
use crate::graphql::http::{APOLLO_OPERATION_NAME, APOLLO_REQUIRE_PREFLIGHT};

const METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PUT, DELETE, HEAD");
/// What a browser script may read of a response besides the safelisted headers.
const EXPOSED: HeaderValue =
    HeaderValue::from_static("x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset");
/// The request headers the API itself reads: allowed whatever `CORS_ALLOWED_HEADERS` lists, so a
/// list cannot lock a frontend out of the API.
const API_HEADERS: [&str; 5] =
    ["authorization", "content-type", "accept", APOLLO_REQUIRE_PREFLIGHT, APOLLO_OPERATION_NAME];

#[derive(Clone)]
pub struct Cors(Arc<Policy>);

struct Policy {
    /// None: any origin, without credentials.
    origins: Option<HashSet<String>>,
    /// None: the headers a preflight asks for.
    headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

impl Cors {
    pub fn new(config: &Config) -> Cors {
        let origins = match &config.cors_allowed_origins {
            CorsOrigins::Any => None,
            CorsOrigins::List(list) => Some(list.iter().cloned().collect()),
        };
        let headers = match &config.cors_allowed_headers {
            CorsHeaders::Mirror => None,
            CorsHeaders::List(list) => {
                let mut names: Vec<&str> = API_HEADERS.to_vec();
                names.extend(list.iter().map(String::as_str).filter(|n| !API_HEADERS.contains(n)));
                // Header names parsed at start are valid header-value text.
                Some(HeaderValue::from_str(&names.join(", ")).expect("header names form a header value"))
            }
        };
        Cors(Arc::new(Policy { origins, headers, max_age: HeaderValue::from(config.cors_max_age_secs) }))
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.0.origins {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => origin.filter(|o| o.to_str().is_ok_and(|o| list.contains(o))).cloned(),
        }
    }

    /// CORS headers every answer to an allowed origin carries.
    fn common(&self, allow_origin: HeaderValue, headers: &mut HeaderMap) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.0.origins.is_some() {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }

    fn vary(&self, headers: &mut HeaderMap, preflight: bool) {
        if self.0.origins.is_some() {
            headers.append(VARY, HeaderValue::from_static("origin"));
        }
        if preflight && self.0.headers.is_none() {
            headers.append(VARY, HeaderValue::from_static("access-control-request-headers"));
        }
    }
}

/// Answers preflights itself (before rate limits and routing) and adds the CORS headers to every
/// other response to an allowed origin.
pub async fn middleware(State(cors): State<Cors>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS
        && origin.is_some()
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let allow_origin = cors.allow_origin(origin.as_ref());
    if preflight {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::OK;
        let headers = res.headers_mut();
        cors.vary(headers, true);
        if let Some(allow_origin) = allow_origin {
            cors.common(allow_origin, headers);
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, METHODS);
            let requested = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).cloned();
            if let Some(allowed) = cors.0.headers.clone().or(requested) {
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
            }
            headers.insert(ACCESS_CONTROL_MAX_AGE, cors.0.max_age.clone());
        }
        return res;
    }
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    cors.vary(headers, false);
    // A request without Origin is not cross-origin; with the list, nothing is echoed to it.
    if let Some(allow_origin) = allow_origin.filter(|_| origin.is_some() || cors.0.origins.is_none()) {
        cors.common(allow_origin, headers);
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
    }
    res
}
