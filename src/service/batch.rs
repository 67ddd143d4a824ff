//! Batch lookups behind the GraphQL DataLoaders: each takes every key of one request at once and
//! answers with one query, so a page of N packages costs the same few statements as a page of one.
use std::collections::HashMap;

use chrono::{Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use entity::{dependencies, package_owners, packages, users, version_downloads, versions};

use crate::error::AppResult;
use crate::service::versions::semver_key;

pub async fn packages_by_id(db: &DatabaseConnection, ids: &[Uuid]) -> AppResult<HashMap<Uuid, packages::Model>> {
    let rows = packages::Entity::find().filter(packages::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    Ok(rows.into_iter().map(|p| (p.id, p)).collect())
}

pub async fn packages_by_name(
    db: &DatabaseConnection,
    names: &[String],
) -> AppResult<HashMap<String, packages::Model>> {
    let rows = packages::Entity::find().filter(packages::Column::Name.is_in(names.iter().cloned())).all(db).await?;
    Ok(rows.into_iter().map(|p| (p.name.clone(), p)).collect())
}

pub async fn users_by_id(db: &DatabaseConnection, ids: &[Uuid]) -> AppResult<HashMap<Uuid, users::Model>> {
    let rows = users::Entity::find().filter(users::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    Ok(rows.into_iter().map(|u| (u.id, u)).collect())
}

/// All versions of each package, newest SemVer first.
pub async fn versions_of(
    db: &DatabaseConnection,
    package_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<versions::Model>>> {
    let rows =
        versions::Entity::find().filter(versions::Column::PackageId.is_in(package_ids.iter().copied())).all(db).await?;
    let mut out: HashMap<Uuid, Vec<versions::Model>> = package_ids.iter().map(|id| (*id, Vec::new())).collect();
    for v in rows {
        out.entry(v.package_id).or_default().push(v);
    }
    for list in out.values_mut() {
        list.sort_by_key(|v| std::cmp::Reverse(semver_key(v)));
    }
    Ok(out)
}

#[derive(Clone)]
pub struct OwnerRow {
    pub user: users::Model,
    pub role: String,
    pub added_at: chrono::DateTime<Utc>,
}

/// Owners of each package, oldest first. Two statements for any number of packages.
pub async fn owners_of(db: &DatabaseConnection, package_ids: &[Uuid]) -> AppResult<HashMap<Uuid, Vec<OwnerRow>>> {
    let rows = package_owners::Entity::find()
        .filter(package_owners::Column::PackageId.is_in(package_ids.iter().copied()))
        .all(db)
        .await?;
    let user_ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let users = users_by_id(db, &user_ids).await?;
    let mut out: HashMap<Uuid, Vec<OwnerRow>> = package_ids.iter().map(|id| (*id, Vec::new())).collect();
    for r in rows {
        if let Some(u) = users.get(&r.user_id) {
            out.entry(r.package_id).or_default().push(OwnerRow { user: u.clone(), role: r.role, added_at: r.added_at });
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|o| o.added_at);
    }
    Ok(out)
}

pub async fn dependencies_of(
    db: &DatabaseConnection,
    version_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<dependencies::Model>>> {
    let rows = dependencies::Entity::find()
        .filter(dependencies::Column::VersionId.is_in(version_ids.iter().copied()))
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

/// How far back per-day download figures are kept in reach of GraphQL (daily, lastWeek, lastMonth).
pub const DAILY_WINDOW_DAYS: i64 = 90;

/// Per-day downloads of each package over the window, summed over its versions.
pub async fn daily_downloads(
    db: &DatabaseConnection,
    package_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<(NaiveDate, i64)>>> {
    let since = Utc::now().date_naive() - Duration::days(DAILY_WINDOW_DAYS);
    let vs: Vec<(Uuid, Uuid)> = versions::Entity::find()
        .select_only()
        .column(versions::Column::Id)
        .column(versions::Column::PackageId)
        .filter(versions::Column::PackageId.is_in(package_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let owner_of: HashMap<Uuid, Uuid> = vs.iter().copied().collect();
    let rows = version_downloads::Entity::find()
        .filter(version_downloads::Column::VersionId.is_in(owner_of.keys().copied()))
        .filter(version_downloads::Column::Day.gte(since))
        .all(db)
        .await?;
    let mut sums: HashMap<Uuid, HashMap<NaiveDate, i64>> = package_ids.iter().map(|id| (*id, HashMap::new())).collect();
    for r in rows {
        if let Some(p) = owner_of.get(&r.version_id) {
            *sums.entry(*p).or_default().entry(r.day).or_default() += r.count;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(p, days)| {
            let mut list: Vec<(NaiveDate, i64)> = days.into_iter().collect();
            list.sort();
            (p, list)
        })
        .collect())
}
