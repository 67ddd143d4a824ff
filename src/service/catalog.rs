//! Reading packages and versions for the REST shim (GraphQL reads the same through loaders).
use chrono::{Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Statement};
use uuid::Uuid;

use entity::{dependencies, packages, versions};

use crate::error::{AppError, AppResult};
use crate::service::owners::{self, Owner};
use crate::service::packages as pkgs;
use crate::service::versions::semver_key;
use crate::state::AppState;

pub struct PackageDetail {
    pub package: packages::Model,
    /// Every version, ascending SemVer (yanked included; callers filter).
    pub versions: Vec<versions::Model>,
    pub owners: Vec<Owner>,
    pub keywords: Vec<String>,
    pub downloads_last_month: i64,
}

impl PackageDetail {
    pub fn latest(&self) -> Option<&versions::Model> {
        self.versions.iter().rev().find(|v| !v.yanked)
    }
}

pub fn keywords_of(p: &packages::Model) -> Vec<String> {
    p.keywords_text.split_whitespace().map(str::to_owned).collect()
}

#[tracing::instrument(name = "catalog.package", skip(state))]
pub async fn package_detail(state: &AppState, name: &str) -> AppResult<PackageDetail> {
    let package = pkgs::get_by_name(&state.db, name).await?;
    let mut vs = versions::Entity::find().filter(versions::Column::PackageId.eq(package.id)).all(&state.db).await?;
    vs.sort_by_key(semver_key);
    let owners = owners::list(state, package.id).await?;
    let since = Utc::now().date_naive() - Duration::days(30);
    let downloads_last_month = downloads_since(&state.db, &[package.id], since).await?;
    Ok(PackageDetail { keywords: keywords_of(&package), package, versions: vs, owners, downloads_last_month })
}

pub struct VersionDetail {
    pub package: packages::Model,
    pub version: versions::Model,
    pub dependencies: Vec<dependencies::Model>,
}

#[tracing::instrument(name = "catalog.version", skip(state))]
pub async fn version_detail(state: &AppState, name: &str, version: &str) -> AppResult<VersionDetail> {
    let package = pkgs::get_by_name(&state.db, name).await?;
    let v = pkgs::find_version(&state.db, package.id, version)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("{name} {version} not found")))?;
    let mut deps = dependencies::Entity::find().filter(dependencies::Column::VersionId.eq(v.id)).all(&state.db).await?;
    deps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(VersionDetail { package, version: v, dependencies: deps })
}

#[derive(FromQueryResult)]
struct Sum {
    total: i64,
}

/// Downloads of the packages' versions on or after `since` (UTC days).
pub async fn downloads_since(db: &impl ConnectionTrait, package_ids: &[Uuid], since: NaiveDate) -> AppResult<i64> {
    if package_ids.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let placeholders: Vec<String> = (0..package_ids.len())
        .map(|i| if backend == sea_orm::DbBackend::Postgres { format!("${}", i + 2) } else { "?".into() })
        .collect();
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(d.count), 0) AS BIGINT) AS total FROM version_downloads d \
         JOIN versions v ON v.id = d.version_id WHERE d.day >= {} AND v.package_id IN ({})",
        if backend == sea_orm::DbBackend::Postgres { "$1" } else { "?" },
        placeholders.join(", ")
    );
    let mut values: Vec<sea_orm::Value> = vec![since.into()];
    values.extend(package_ids.iter().map(|id| sea_orm::Value::from(*id)));
    let row = Sum::find_by_statement(Statement::from_sql_and_values(backend, sql, values)).one(db).await?;
    Ok(row.map(|r| r.total).unwrap_or(0))
}

pub struct PackageStats {
    pub package: packages::Model,
    pub last_week: i64,
    pub last_month: i64,
    pub last_year: i64,
    pub versions_count: u64,
    pub dependents_count: u64,
}

#[tracing::instrument(name = "catalog.package_stats", skip(state))]
pub async fn package_stats(state: &AppState, name: &str) -> AppResult<PackageStats> {
    use sea_orm::PaginatorTrait;
    let package = pkgs::get_by_name(&state.db, name).await?;
    let today = Utc::now().date_naive();
    let ids = [package.id];
    let last_week = downloads_since(&state.db, &ids, today - Duration::days(7)).await?;
    let last_month = downloads_since(&state.db, &ids, today - Duration::days(30)).await?;
    let last_year = downloads_since(&state.db, &ids, today - Duration::days(365)).await?;
    let versions_count =
        versions::Entity::find().filter(versions::Column::PackageId.eq(package.id)).count(&state.db).await?;
    let dependents_count = dependents(state, &package.name).await?.len() as u64;
    Ok(PackageStats { package, last_week, last_month, last_year, versions_count, dependents_count })
}

/// Packages whose latest version depends on `name`.
pub async fn dependents(state: &AppState, name: &str) -> AppResult<Vec<packages::Model>> {
    let deps = dependencies::Entity::find().filter(dependencies::Column::Name.eq(name)).all(&state.db).await?;
    if deps.is_empty() {
        return Ok(Vec::new());
    }
    let version_ids: Vec<Uuid> = deps.iter().map(|d| d.version_id).collect();
    let dependent_versions =
        versions::Entity::find().filter(versions::Column::Id.is_in(version_ids)).all(&state.db).await?;
    let package_ids: Vec<Uuid> = dependent_versions.iter().map(|v| v.package_id).collect();
    let latest = crate::service::versions::latest_for_packages(&state.db, &package_ids).await?;
    let dependent_ids: std::collections::HashSet<Uuid> = dependent_versions
        .iter()
        .filter(|v| latest.get(&v.package_id).map(|l| l.id) == Some(v.id))
        .map(|v| v.package_id)
        .collect();
    Ok(packages::Entity::find().filter(packages::Column::Id.is_in(dependent_ids)).all(&state.db).await?)
}
