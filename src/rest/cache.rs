//! Serialized package and version metadata, the two reads `raven pkg install` makes most, and REST
//! search pages, kept for one catalog generation (see `service::generation`): a hit costs one small statement and no
//! serialization, and any publish, yank, owner change or download flush, through any instance,
//! makes the next read compute the body afresh.
use std::future::Future;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::NaiveDate;
use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::service::generation::{self, GenerationCache};
use crate::state::AppState;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BodyKey {
    /// The last-month download count depends on the day.
    Package {
        name: String,
        day: NaiveDate,
    },
    Version {
        name: String,
        version: String,
    },
    /// A REST search page: the search text trimmed and lowercased.
    Search {
        q: String,
        limit: u64,
        offset: u64,
    },
}

pub type BodyCache = GenerationCache<BodyKey, Bytes>;

/// The JSON body for `key`, from the cache when the catalog has not changed since it was
/// computed. Errors (a 404, say) are never cached. `compute` is given the generation read here
/// (None with the cache off), so a miss need not read it again.
pub async fn json<T, F, Fut>(state: &AppState, key: BodyKey, compute: F) -> AppResult<Response>
where
    T: Serialize,
    F: FnOnce(Option<i64>) -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let cache = &state.bodies;
    let generation = if cache.enabled() { Some(generation::current(&state.db).await?) } else { None };
    if let Some(body) = generation.and_then(|g| cache.get(g, &key)) {
        crate::metrics::cache_lookup("metadata", true);
        return Ok(respond(body));
    }
    let body = Bytes::from(serde_json::to_vec(&compute(generation).await?).map_err(AppError::internal)?);
    if let Some(g) = generation {
        crate::metrics::cache_lookup("metadata", false);
        cache.put(g, key, body.clone());
    }
    Ok(respond(body))
}

fn respond(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}
