//! HTTP caching of GraphQL answers. An anonymous GET answer is public for GRAPHQL_CACHE_MAX_AGE
//! seconds and carries an ETag; everything else (a request with `Authorization`, a POST, an
//! answer with errors) is `no-store`, `private` too when it was made for a signed-in viewer.
//!
//! The ETag is known before the query runs: it is a digest of the catalog generation (raised by
//! every write that changes what a query can show, downloads included), the UTC date (daily
//! charts and 30/90-day counts move at midnight), this build, and the request itself (document,
//! operation, variables, response media type). So a matching `If-None-Match` is answered 304
//! without executing anything, and without charging a budget. The generation is read before the
//! query runs: a write committing meanwhile gives a body newer than its tag, never older, and the
//! next request sees a new tag.
//!
//! The tag is weak (`W/`): the compression layer may send the same answer gzip'd or not.
use async_graphql::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// How an answer may be cached.
#[derive(Debug, Clone)]
pub enum Caching {
    /// Shared caches may keep it under this tag (an anonymous GET).
    Public(HeaderValue),
    /// Nobody keeps it (a POST, or an anonymous GET whose tag could not be made).
    NoStore,
    /// Made for one viewer (the request carried `Authorization`): kept by no one.
    Private,
}

/// The tag of an anonymous GET, or `None` when the generation cannot be read (the answer is then
/// served uncached rather than refused).
pub async fn etag(state: &AppState, request: &Request, modern: bool) -> Option<HeaderValue> {
    let generation = match state.generation.current(&state.db).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "catalog generation unavailable; GraphQL answer served without an ETag");
            return None;
        }
    };
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(b"\0");
    h.update(generation.to_le_bytes());
    h.update(chrono::Utc::now().date_naive().to_string().as_bytes());
    h.update([u8::from(modern)]);
    for part in [Some(request.query.as_str()), request.operation_name.as_deref()] {
        // Length-prefixed, so that no two different requests hash alike.
        let part = part.unwrap_or("\u{0}none");
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let variables = serde_json::to_vec(&request.variables).unwrap_or_default();
    h.update((variables.len() as u64).to_le_bytes());
    h.update(&variables);
    // Any other extension, in a stable order.
    let extensions: std::collections::BTreeMap<_, _> = request.extensions.iter().collect();
    h.update(serde_json::to_vec(&extensions).unwrap_or_default());
    let digest = h.finalize();
    HeaderValue::from_str(&format!("W/\"{}\"", hex::encode(&digest[..16]))).ok()
}

/// True when `If-None-Match` names `etag` (weak comparison) or is `*`.
pub fn matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = opaque(etag.to_str().unwrap_or(""));
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || opaque(candidate) == ours
        },
    )
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// 304 for a request whose tag matched: the caching headers of a 200, no body.
pub fn not_modified(etag: HeaderValue, max_age: u32) -> Response {
    let mut res = StatusCode::NOT_MODIFIED.into_response();
    public(res.headers_mut(), etag, max_age);
    res
}

fn public(headers: &mut HeaderMap, etag: HeaderValue, max_age: u32) {
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&format!("public, max-age={max_age}")).unwrap());
    // The media type depends on Accept; a signed-in request to the same URL must not be served
    // this anonymous answer.
    headers.append(header::VARY, HeaderValue::from_static("accept, authorization"));
}

/// Sets the caching headers of an answer: the public ones only on a 200 without errors.
pub fn apply(res: &mut Response, caching: Caching, clean: bool, max_age: u32) {
    let headers = res.headers_mut();
    match caching {
        Caching::Public(etag) if clean => public(headers, etag, max_age),
        Caching::Private => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        }
        Caching::Public(_) | Caching::NoStore => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let tag = HeaderValue::from_static("W/\"abc\"");
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(v));
            matches(&h, &tag)
        };
        assert!(with("W/\"abc\""));
        assert!(with("\"abc\""));
        assert!(with("\"x\", W/\"abc\""));
        assert!(with("*"));
        assert!(!with("W/\"abd\""));
        assert!(!with("abc"));
        assert!(!matches(&HeaderMap::new(), &tag));
    }
}
