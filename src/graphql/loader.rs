//! DataLoaders, one per relation, created fresh for every request (so a write is visible to the
//! next read) and batching every key a request asks for into one service call.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use chrono::NaiveDate;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use entity::{dependencies, packages, versions};

use crate::error::AppError;
use crate::service::read::batch::{self, OwnerRow};
use crate::service::read::dependents::{self, DependentRow};
use crate::service::read::relations::{self, RequestGeneration};

pub type Loaders = DataLoader<Batch, HashMapCache>;

pub struct Batch {
    db: DatabaseConnection,
    /// The catalog generation this request's cached lookups use (see `relations`).
    generation: RequestGeneration,
}

pub fn new(db: DatabaseConnection) -> Loaders {
    // Cached for the request only: a write is visible to the next request. List resolvers prime the
    // relations a page asks for (see `prime_packages`), so batching never depends on timing.
    DataLoader::with_cache(
        Batch { db, generation: RequestGeneration::default() },
        tokio::spawn,
        HashMapCache::default(),
    )
    .delay(std::time::Duration::from_millis(2))
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PackageById(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PackageByName(pub String);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserById(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VersionById(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VersionsOf(pub Uuid);
/// A package's latest version (None when every version is yanked).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LatestVersionOf(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReadmeOf(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OwnersOf(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DependenciesOf(pub Uuid);
/// The dependents of a package, by its name (what dependencies name).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DependentsOf(pub String);
/// A package's per-day downloads from `since` on (a chart's first day, or `lastWeek`'s ...).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DailyDownloadsOf {
    pub package: Uuid,
    pub since: NaiveDate,
}
/// A version's per-day downloads from `since` on.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VersionDailyDownloadsOf {
    pub version: Uuid,
    pub since: NaiveDate,
}

type Res<K, V> = Result<HashMap<K, V>, Arc<AppError>>;

macro_rules! loader {
    ($key:ident, $inner:ty, $value:ty, |$db:ident, $keys:ident| $body:expr) => {
        impl Loader<$key> for Batch {
            type Value = $value;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[$key]) -> Res<$key, $value> {
                let $db = &self.db;
                let $keys: Vec<$inner> = keys.iter().map(|k| k.0.clone()).collect();
                let found = $body.await.map_err(Arc::new)?;
                Ok(found.into_iter().map(|(k, v)| ($key(k), v)).collect())
            }
        }
    };
}

loader!(PackageById, Uuid, packages::Model, |db, keys| batch::packages_by_id(db, &keys));
loader!(PackageByName, String, packages::Model, |db, keys| batch::packages_by_name(db, &keys));
loader!(UserById, Uuid, batch::PublicUser, |db, keys| batch::users_by_id(db, &keys));
loader!(VersionById, Uuid, versions::Model, |db, keys| batch::versions_by_id(db, &keys));
loader!(VersionsOf, Uuid, Vec<versions::Model>, |db, keys| batch::versions_of(db, &keys));
loader!(LatestVersionOf, Uuid, Option<versions::Model>, |db, keys| async move {
    let mut latest = crate::service::versions::latest_for_packages(db, &keys).await?;
    Ok::<_, AppError>(keys.iter().map(|id| (*id, latest.remove(id))).collect::<HashMap<_, _>>())
});
loader!(ReadmeOf, Uuid, Option<String>, |db, keys| batch::readmes(db, &keys));
loader!(OwnersOf, Uuid, Vec<OwnerRow>, |db, keys| batch::owners_of(db, &keys));
loader!(DependenciesOf, Uuid, Vec<dependencies::Model>, |db, keys| batch::dependencies_of(db, &keys));
loader!(DependentsOf, String, Vec<DependentRow>, |db, keys| dependents::dependents_of(db, &keys));

type Days = Vec<(NaiveDate, i64)>;

/// Keys of one batch may start on different days (`lastWeek` and a 365-day chart of one page):
/// one statement reads from the earliest, and each key gets its own days of it.
fn per_key<K: Clone + Eq + std::hash::Hash>(
    keys: &[K],
    id_since: impl Fn(&K) -> (Uuid, NaiveDate),
    rows: &HashMap<Uuid, Days>,
) -> HashMap<K, Days> {
    keys.iter()
        .map(|k| {
            let (id, since) = id_since(k);
            let days = rows.get(&id).map(|d| d.iter().filter(|(day, _)| *day >= since).copied().collect());
            (k.clone(), days.unwrap_or_default())
        })
        .collect()
}

fn earliest<K>(keys: &[K], since: impl Fn(&K) -> NaiveDate) -> NaiveDate {
    keys.iter().map(since).min().unwrap_or_else(|| chrono::Utc::now().date_naive())
}

impl Loader<DailyDownloadsOf> for Batch {
    type Value = Days;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[DailyDownloadsOf]) -> Res<DailyDownloadsOf, Days> {
        let ids: Vec<Uuid> = unique(keys.iter().map(|k| k.package));
        let rows = batch::daily_downloads(&self.db, &ids, earliest(keys, |k| k.since)).await.map_err(Arc::new)?;
        Ok(per_key(keys, |k| (k.package, k.since), &rows))
    }
}

impl Loader<VersionDailyDownloadsOf> for Batch {
    type Value = Days;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[VersionDailyDownloadsOf]) -> Res<VersionDailyDownloadsOf, Days> {
        let ids: Vec<Uuid> = unique(keys.iter().map(|k| k.version));
        let rows =
            batch::version_daily_downloads(&self.db, &ids, earliest(keys, |k| k.since)).await.map_err(Arc::new)?;
        Ok(per_key(keys, |k| (k.version, k.since), &rows))
    }
}

fn unique(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The first days that the per-day fields selected under `downloads` (a `DownloadStats`) read
/// from: `lastWeek`, `lastMonth` and each `daily(days:)`.
fn daily_starts(downloads: &async_graphql::Lookahead<'_>) -> Vec<NaiveDate> {
    use crate::graphql::object::downloads::{selected_chart_starts, since};
    let mut starts = selected_chart_starts(downloads, "daily");
    if downloads.field("lastWeek").exists() {
        starts.push(since(7));
    }
    if downloads.field("lastMonth").exists() {
        starts.push(since(30));
    }
    starts
}

/// Loads, in one batch each, the relations that a page of packages selects (looked ahead from the
/// query), so a page of 50 costs the same statements as a page of 5 however the fields are scheduled.
pub async fn prime_packages(ctx: &async_graphql::Context<'_>, ids: &[Uuid]) -> async_graphql::Result<()> {
    prime_packages_knowing(ctx, ids, &HashMap::new()).await
}

/// [`prime_packages`] for packages whose latest version numbers are known (a search page's).
pub async fn prime_packages_knowing(
    ctx: &async_graphql::Context<'_>,
    ids: &[Uuid],
    latest: &HashMap<Uuid, Arc<str>>,
) -> async_graphql::Result<()> {
    let look = ctx.look_ahead();
    let wants = |field: &str| {
        look.field("nodes").field(field).exists() || look.field("edges").field("node").field(field).exists()
    };
    let mut daily = daily_starts(&look.field("nodes").field("downloads"));
    daily.extend(daily_starts(&look.field("edges").field("node").field("downloads")));
    prime(ctx, ids, (wants("versions"), wants("latestVersion"), latest), wants("owners"), daily).await
}

/// The same for one package (the `package` query), whose fields are selected directly.
pub async fn prime_package(ctx: &async_graphql::Context<'_>, id: Uuid) -> async_graphql::Result<()> {
    let look = ctx.look_ahead();
    let wants = |field: &str| look.field(field).exists();
    let daily = daily_starts(&look.field("downloads"));
    prime(ctx, &[id], (wants("versions"), wants("latestVersion"), &HashMap::new()), wants("owners"), daily).await
}

/// Runs the wanted batch queries concurrently and feeds their answers to the loaders' cache. The
/// resolvers then find every key cached: no loader task, no batching delay, no thread hand-off
/// per relation (those hand-offs, not the SQL, were most of a GraphQL request's CPU time).
/// `latestVersion` alone reads only the latest rows; with `versions`, it is taken from all of them.
async fn prime(
    ctx: &async_graphql::Context<'_>,
    ids: &[Uuid],
    (versions, latest, known): (bool, bool, &HashMap<Uuid, Arc<str>>),
    owners: bool,
    mut daily: Vec<NaiveDate>,
) -> async_graphql::Result<()> {
    daily.sort_unstable();
    daily.dedup();
    let loaders = ctx.data_unchecked::<Loaders>();
    let db = &loaders.loader().db;
    let state = crate::graphql::state(ctx);
    let generation = request_generation(ctx).await?;
    async fn when<T>(
        wanted: bool,
        load: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<Option<T>, AppError> {
        if wanted {
            load.await.map(Some)
        } else {
            Ok(None)
        }
    }
    let (v, l, o, d) = futures::try_join!(
        when(versions, relations::versions_of(state, generation, ids)),
        when(latest && !versions, relations::latest_of(state, generation, ids, known)),
        when(owners, relations::owners_of(state, generation, ids)),
        when(!daily.is_empty(), batch::daily_downloads(db, ids, daily.first().copied().unwrap_or_default())),
    )?;
    if let Some(v) = v {
        if latest {
            let newest = |all: &Vec<versions::Model>| {
                crate::domain::latest_version(all, |v| v.num.as_str(), |v| v.yanked).cloned()
            };
            loaders.feed_many(v.iter().map(|(k, all)| (LatestVersionOf(*k), newest(all)))).await;
        }
        loaders.feed_many(v.into_iter().map(|(k, val)| (VersionsOf(k), val))).await;
    }
    if let Some(l) = l {
        loaders.feed_many(l.into_iter().map(|(k, val)| (LatestVersionOf(k), val))).await;
    }
    if let Some(o) = o {
        loaders.feed_many(o.into_iter().map(|(k, val)| (OwnersOf(k), val))).await;
    }
    if let Some(d) = d {
        // One read from the earliest day feeds every key the resolvers will ask for.
        let keys: Vec<DailyDownloadsOf> = ids
            .iter()
            .flat_map(|id| daily.iter().map(|since| DailyDownloadsOf { package: *id, since: *since }))
            .collect();
        loaders.feed_many(per_key(&keys, |k| (k.package, k.since), &d)).await;
    }
    Ok(())
}

/// The request's catalog generation when the relation cache is on (read once per request).
pub async fn request_generation(ctx: &async_graphql::Context<'_>) -> Result<Option<i64>, AppError> {
    let state = crate::graphql::state(ctx);
    if !state.caches.relations.enabled() {
        return Ok(None);
    }
    ctx.data_unchecked::<Loaders>().loader().generation.get(state).await.map(Some)
}
