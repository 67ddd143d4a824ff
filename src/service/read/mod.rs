//! The read model: how packages, versions and their relations are read and presented, for the REST
//! shim and GraphQL alike. REST and GraphQL only shape what these functions return.
//!
//! - [`catalog`]: one package or version by name (with what a page of it shows), statistics and
//!   dependents, and the generation-cached serialized bodies;
//! - [`dependents`]: the packages whose latest version depends on a package, for many at once;
//! - [`batch`]: one statement for a whole page's relations (behind the GraphQL DataLoaders);
//! - [`relations`]: the same relations through the cross-request relation cache;
//! - [`owned`]: the packages a user owns or maintains, a page at a time.
//!
//! The presentation rules that both front ends need live here once: the download URL of a
//! version, its authors, keywords and each dependency's kind.
pub mod batch;
pub mod catalog;
pub mod dependents;
pub mod owned;
pub mod relations;

use std::future::Future;

use bytes::Bytes;
use serde::Serialize;

use entity::{dependencies, packages, versions};

use crate::domain::DependencyKind;
use crate::error::{AppError, AppResult};
use crate::service::cache::BodyKey;
use crate::state::AppState;

/// The absolute URL `raven pkg` and browsers download a version's tarball from.
pub fn download_url(state: &AppState, package: &str, version: &str) -> String {
    format!("{}/api/v1/packages/{package}/{version}/download", state.public_url)
}

/// The authors of a version, as published.
pub fn authors(v: &versions::Model) -> Vec<String> {
    // Stored as a JSON array written by publish; an unreadable value shows as no authors.
    serde_json::from_str(&v.authors).unwrap_or_default()
}

/// The keywords of a version, as published with it.
pub fn version_keywords(v: &versions::Model) -> Vec<String> {
    v.keywords.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect()
}

/// The keywords a package shows (those of its latest version).
pub fn package_keywords(p: &packages::Model) -> Vec<String> {
    p.keywords_text.split_whitespace().map(str::to_owned).collect()
}

/// A dependency's kind. Rows hold what publish wrote; anything but "dev" is a normal dependency.
pub fn dependency_kind(d: &dependencies::Model) -> DependencyKind {
    DependencyKind::parse(&d.kind).unwrap_or(DependencyKind::Normal)
}

/// The JSON body for `key`, from the body cache when the catalog has not changed since it was
/// computed. Errors (a 404, say) are never cached. `compute` is given the generation read here
/// (None with the cache off), so a miss need not read it again.
pub async fn cached_json<T, F, Fut>(state: &AppState, key: BodyKey, compute: F) -> AppResult<Bytes>
where
    T: Serialize,
    F: FnOnce(Option<i64>) -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let cache = &state.caches.bodies;
    let generation = if cache.enabled() { Some(state.generation.current(&state.db).await?) } else { None };
    if let Some(body) = generation.and_then(|g| cache.get(g, &key)) {
        crate::metrics::cache_lookup("metadata", true);
        return Ok(body);
    }
    let body = Bytes::from(serde_json::to_vec(&compute(generation).await?).map_err(AppError::internal)?);
    if let Some(g) = generation {
        crate::metrics::cache_lookup("metadata", false);
        cache.put(g, key, body.clone());
    }
    Ok(body)
}
