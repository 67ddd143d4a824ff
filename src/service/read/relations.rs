//! Package relations (versions, owners) and packages by name, kept across requests for one catalog
//! generation (see `service::generation`). `prime` and the `package` query take what they can from
//! here and fetch only the rest, so a repeated `package` query costs one small statement. The
//! generation is read once per request and shared by every lookup in it.
use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use entity::{packages, versions};

use super::batch::{self, OwnerRow};
use crate::domain::PackageName;
use crate::error::AppResult;
use crate::service::cache::{RelKey, RelValue};
use crate::state::AppState;

/// The catalog generation of one request, read at its first cached lookup.
#[derive(Default)]
pub struct RequestGeneration(tokio::sync::OnceCell<i64>);

impl RequestGeneration {
    pub async fn get(&self, state: &AppState) -> AppResult<i64> {
        self.0.get_or_try_init(|| state.generation.current(&state.db)).await.copied()
    }
}

/// All versions of each package (newest first, without READMEs), through the cache.
pub async fn versions_of(
    state: &AppState,
    generation: Option<i64>,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<versions::Model>>> {
    let unwrap = |v: &RelValue| if let RelValue::Versions(v) = v { Some(v.clone()) } else { None };
    many(state, generation, ids, RelKey::Versions, unwrap, RelValue::Versions, |missing| async move {
        batch::versions_of(&state.db, &missing).await
    })
    .await
}

/// The latest version of each package (None when every version is yanked), through the cache.
/// `known` holds latest version numbers the caller already has (the search index's, for a results
/// page): those rows are read by number, in one statement, rather than chosen among every number.
pub async fn latest_of(
    state: &AppState,
    generation: Option<i64>,
    ids: &[Uuid],
    known: &HashMap<Uuid, Arc<str>>,
) -> AppResult<HashMap<Uuid, Option<versions::Model>>> {
    use crate::service::versions::{latest_for_packages, named_latest_for_packages};
    let unwrap = |v: &RelValue| if let RelValue::Versions(v) = v { Some(v.clone()) } else { None };
    // Cached as a list of at most one, so that "no latest version" is cached too.
    let found = many(state, generation, ids, RelKey::Latest, unwrap, RelValue::Versions, |missing| async move {
        let (named, unknown): (Vec<Uuid>, Vec<Uuid>) = missing.iter().partition(|id| known.contains_key(id));
        let named: Vec<(Uuid, Arc<str>)> = named.into_iter().map(|id| (id, known[&id].clone())).collect();
        let mut latest = named_latest_for_packages(&state.db, &named).await?;
        if !unknown.is_empty() {
            latest.extend(latest_for_packages(&state.db, &unknown).await?);
        }
        Ok(missing.iter().map(|id| (*id, latest.remove(id).into_iter().collect())).collect())
    })
    .await?;
    Ok(found.into_iter().map(|(id, list)| (id, list.into_iter().next())).collect())
}

/// The owners of each package with their users, oldest first, through the cache.
pub async fn owners_of(
    state: &AppState,
    generation: Option<i64>,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<OwnerRow>>> {
    let unwrap = |v: &RelValue| if let RelValue::Owners(o) = v { Some(o.clone()) } else { None };
    many(state, generation, ids, RelKey::Owners, unwrap, RelValue::Owners, |missing| async move {
        batch::owners_of(&state.db, &missing).await
    })
    .await
}

/// The relation of each id, from the cache where it holds them, else from `fetch` (called with the
/// missing ids only, and not at all when none is missing).
async fn many<T, F, Fut>(
    state: &AppState,
    generation: Option<i64>,
    ids: &[Uuid],
    key: fn(Uuid) -> RelKey,
    unwrap: fn(&RelValue) -> Option<Arc<Vec<T>>>,
    wrap: fn(Arc<Vec<T>>) -> RelValue,
    fetch: F,
) -> AppResult<HashMap<Uuid, Vec<T>>>
where
    T: Clone,
    F: FnOnce(Vec<Uuid>) -> Fut,
    Fut: std::future::Future<Output = AppResult<HashMap<Uuid, Vec<T>>>>,
{
    let cache = &state.caches.relations;
    let mut out = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match generation.and_then(|g| cache.get(g, &key(*id))).as_ref().and_then(unwrap) {
            Some(v) => {
                out.insert(*id, v.as_ref().clone());
            }
            None => missing.push(*id),
        }
    }
    if missing.is_empty() {
        crate::metrics::cache_lookup("relations", true);
        return Ok(out);
    }
    crate::metrics::cache_lookup("relations", false);
    for (id, v) in fetch(missing).await? {
        if let Some(g) = generation {
            cache.put(g, key(id), wrap(Arc::new(v.clone())));
        }
        out.insert(id, v);
    }
    Ok(out)
}

/// A package by name; a missing package is not cached.
pub async fn package_by_name(
    state: &AppState,
    generation: Option<i64>,
    name: &PackageName,
) -> AppResult<Option<packages::Model>> {
    let key = RelKey::PackageByName(name.as_str().to_owned());
    if let Some(RelValue::Package(p)) = generation.and_then(|g| state.caches.relations.get(g, &key)) {
        return Ok(Some(*p));
    }
    let found = crate::service::packages::find_by_name(&state.db, name).await?;
    if let (Some(g), Some(p)) = (generation, &found) {
        state.caches.relations.put(g, key, RelValue::Package(Box::new(p.clone())));
    }
    Ok(found)
}
