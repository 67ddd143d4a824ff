//! Batch lookups behind the GraphQL DataLoaders: each takes every key of one request at once and
//! answers with one query, so a page of N packages costs the same few statements as a page of one.
use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter};
use uuid::Uuid;

use entity::{dependencies, packages, users, versions};

use crate::error::AppResult;
use crate::service::inlist::{bind, padded};
use crate::service::versions::semver_key;

pub async fn packages_by_id(db: &DatabaseConnection, ids: &[Uuid]) -> AppResult<HashMap<Uuid, packages::Model>> {
    let rows = packages::Entity::find().filter(packages::Column::Id.is_in(padded(ids.iter().copied()))).all(db).await?;
    Ok(rows.into_iter().map(|p| (p.id, p)).collect())
}

pub async fn packages_by_name(
    db: &DatabaseConnection,
    names: &[String],
) -> AppResult<HashMap<String, packages::Model>> {
    let rows =
        packages::Entity::find().filter(packages::Column::Name.is_in(padded(names.iter().cloned()))).all(db).await?;
    Ok(rows.into_iter().map(|p| (p.name.clone(), p)).collect())
}

/// What anyone may see of a user. Loaders and the cross-request relation cache hold this rather
/// than `users::Model`, so no password hash or email sits in a cache.
#[derive(Clone, Debug, sea_orm::FromQueryResult)]
pub struct PublicUser {
    pub id: Uuid,
    pub username: String,
    pub created_at: chrono::DateTime<Utc>,
}

impl From<users::Model> for PublicUser {
    fn from(u: users::Model) -> Self {
        PublicUser { id: u.id, username: u.username, created_at: u.created_at }
    }
}

pub async fn users_by_id(db: &DatabaseConnection, ids: &[Uuid]) -> AppResult<HashMap<Uuid, PublicUser>> {
    use sea_orm::QuerySelect;
    let rows = users::Entity::find()
        .select_only()
        .columns([users::Column::Id, users::Column::Username, users::Column::CreatedAt])
        .filter(users::Column::Id.is_in(padded(ids.iter().copied())))
        .into_model::<PublicUser>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.id, u)).collect())
}

/// Versions by their ids (for `node` / `nodes`), without READMEs like `versions_of`.
pub async fn versions_by_id(db: &DatabaseConnection, ids: &[Uuid]) -> AppResult<HashMap<Uuid, versions::Model>> {
    let rows = crate::service::versions::without_readme()
        .filter(versions::Column::Id.is_in(padded(ids.iter().copied())))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|v| (v.id, v)).collect())
}

/// All versions of each package, newest SemVer first, without their READMEs (`readme` is None:
/// a package with hundreds of versions would otherwise carry hundreds of READMEs; see `readmes`).
pub async fn versions_of(
    db: &DatabaseConnection,
    package_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<versions::Model>>> {
    let rows = crate::service::versions::without_readme()
        .filter(versions::Column::PackageId.is_in(padded(package_ids.iter().copied())))
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<versions::Model>> = package_ids.iter().map(|id| (*id, Vec::new())).collect();
    for v in rows {
        out.entry(v.package_id).or_default().push(v);
    }
    for list in out.values_mut() {
        list.sort_by_key(|v| std::cmp::Reverse(semver_key(v)));
    }
    Ok(out)
}

#[derive(sea_orm::FromQueryResult)]
struct ReadmeRow {
    id: Uuid,
    readme: Option<String>,
}

/// The README of each version (None when it has none), in one statement.
pub async fn readmes(db: &DatabaseConnection, version_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Option<String>>> {
    use sea_orm::QuerySelect;
    let rows = versions::Entity::find()
        .select_only()
        .columns([versions::Column::Id, versions::Column::Readme])
        .filter(versions::Column::Id.is_in(padded(version_ids.iter().copied())))
        .into_model::<ReadmeRow>()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.readme)).collect())
}

#[derive(Clone)]
pub struct OwnerRow {
    pub user: PublicUser,
    pub role: String,
    pub added_at: chrono::DateTime<Utc>,
}

#[derive(sea_orm::FromQueryResult)]
struct OwnerJoin {
    package_id: Uuid,
    role: String,
    added_at: chrono::DateTime<Utc>,
    #[sea_orm(nested)]
    user: PublicUser,
}

/// Owners of each package, oldest first, with their users: one statement for any number of packages.
pub async fn owners_of(db: &DatabaseConnection, package_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<OwnerRow>>> {
    let mut out: HashMap<Uuid, Vec<OwnerRow>> = package_ids.iter().map(|id| (*id, Vec::new())).collect();
    if package_ids.is_empty() {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let (list, values) = bind(package_ids.iter().copied());
    let sql = format!(
        "SELECT o.package_id, o.role, o.added_at, u.id, u.username, u.created_at \
         FROM package_owners o JOIN users u ON u.id = o.user_id WHERE o.package_id IN ({list}) ORDER BY o.added_at"
    );
    let stmt = sea_orm::Statement::from_sql_and_values(backend, crate::db::numbered(backend, &sql), values);
    for r in OwnerJoin::find_by_statement(stmt).all(db).await? {
        out.entry(r.package_id).or_default().push(OwnerRow { user: r.user, role: r.role, added_at: r.added_at });
    }
    Ok(out)
}

pub async fn dependencies_of(
    db: &DatabaseConnection,
    version_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<dependencies::Model>>> {
    let rows = dependencies::Entity::find()
        .filter(dependencies::Column::VersionId.is_in(padded(version_ids.iter().copied())))
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<dependencies::Model>> = version_ids.iter().map(|id| (*id, Vec::new())).collect();
    for d in rows {
        out.entry(d.version_id).or_default().push(d);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| (a.kind.as_str(), a.name.as_str()).cmp(&(b.kind.as_str(), b.name.as_str())));
    }
    Ok(out)
}

/// The longest per-day window GraphQL serves (download charts of packages and versions): a year.
pub const MAX_DAILY_DAYS: i64 = 365;

#[derive(sea_orm::FromQueryResult)]
struct DayRow {
    id: Uuid,
    day: NaiveDate,
    n: i64,
}

/// Per-day downloads of each package from `since` (inclusive), summed over its versions, in one
/// statement; days without downloads are absent. Callers bound `since` (at most a year back).
pub async fn daily_downloads(
    db: &DatabaseConnection,
    package_ids: &[Uuid],
    since: NaiveDate,
) -> AppResult<HashMap<Uuid, Vec<(NaiveDate, i64)>>> {
    per_day(
        db,
        package_ids,
        since,
        "SELECT v.package_id AS id, d.day AS day, CAST(SUM(d.count) AS BIGINT) AS n FROM version_downloads d \
         JOIN versions v ON v.id = d.version_id WHERE d.day >= ? AND v.package_id IN ({list}) GROUP BY v.package_id, d.day",
    )
    .await
}

/// Per-day downloads of each version from `since` (inclusive), in one statement (the table holds
/// one row per version and day).
pub async fn version_daily_downloads(
    db: &DatabaseConnection,
    version_ids: &[Uuid],
    since: NaiveDate,
) -> AppResult<HashMap<Uuid, Vec<(NaiveDate, i64)>>> {
    per_day(
        db,
        version_ids,
        since,
        "SELECT d.version_id AS id, d.day AS day, CAST(d.count AS BIGINT) AS n FROM version_downloads d \
         WHERE d.day >= ? AND d.version_id IN ({list})",
    )
    .await
}

/// Runs a per-day query (`{list}` stands for the padded id list), oldest day first per id.
async fn per_day(
    db: &DatabaseConnection,
    ids: &[Uuid],
    since: NaiveDate,
    sql: &str,
) -> AppResult<HashMap<Uuid, Vec<(NaiveDate, i64)>>> {
    use sea_orm::Statement;
    let mut out: HashMap<Uuid, Vec<(NaiveDate, i64)>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let (list, bound) = bind(ids.iter().copied());
    let sql = sql.replace("{list}", &list);
    let mut values: Vec<sea_orm::Value> = vec![since.into()];
    values.extend(bound);
    let stmt = Statement::from_sql_and_values(backend, crate::db::numbered(backend, &sql), values);
    for r in DayRow::find_by_statement(stmt).all(db).await? {
        out.entry(r.id).or_default().push((r.day, r.n));
    }
    for list in out.values_mut() {
        list.sort();
    }
    Ok(out)
}
