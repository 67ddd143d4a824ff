//! One package or version by name, what its page shows, its statistics and its dependents.
use chrono::{Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Statement};
use uuid::Uuid;

use entity::{packages, versions};

use crate::db::numbered;
use crate::domain::{PackageName, PackageVersion};
use crate::error::{AppError, AppResult};
use crate::service::packages as pkgs;
use crate::state::AppState;

/// What the REST package metadata shows, read in two statements: the package row with its first
/// owner and last month's downloads, then the version numbers (no READMEs, no user rows).
pub struct PackageDetail {
    pub package: packages::Model,
    /// Every version number with its yanked flag, ascending SemVer.
    pub versions: Vec<VersionFlag>,
    /// The earliest-added owner with the owner role (else the earliest maintainer): (username, id).
    pub owner: Option<(String, Uuid)>,
    pub keywords: Vec<String>,
    pub downloads_last_month: i64,
}

#[derive(FromQueryResult)]
pub struct VersionFlag {
    pub num: String,
    pub yanked: bool,
}

impl PackageDetail {
    /// The latest version (see [`crate::domain::latest_version`]).
    pub fn latest(&self) -> Option<&VersionFlag> {
        crate::domain::latest_version(self.versions.iter(), |v| v.num.as_str(), |v| v.yanked)
    }
}

#[derive(FromQueryResult)]
struct PackageRow {
    #[sea_orm(nested)]
    package: packages::Model,
    owner_id: Option<Uuid>,
    owner_name: Option<String>,
    last_month: i64,
}

const PACKAGE_SQL: &str =
    "SELECT p.id, p.name, p.name_folded, p.description, p.license, p.repository, p.homepage, p.keywords_text, \
     p.downloads, p.created_at, p.updated_at, u.id AS owner_id, u.username AS owner_name, \
     (SELECT CAST(COALESCE(SUM(d.count), 0) AS BIGINT) FROM version_downloads d JOIN versions v ON v.id = d.version_id \
      WHERE v.package_id = p.id AND d.day >= ?) AS last_month \
     FROM packages p LEFT JOIN users u ON u.id = (SELECT o.user_id FROM package_owners o WHERE o.package_id = p.id \
      ORDER BY CASE WHEN o.role = 'owner' THEN 0 ELSE 1 END, o.added_at LIMIT 1) \
     WHERE p.name = ?";

#[tracing::instrument(name = "catalog.package", skip(state))]
pub async fn package_detail(state: &AppState, name: &PackageName) -> AppResult<PackageDetail> {
    let backend = state.db.get_database_backend();
    let since = Utc::now().date_naive() - Duration::days(30);
    let row = PackageRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        numbered(backend, PACKAGE_SQL),
        [since.into(), name.as_str().into()],
    ))
    .one(&state.db)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("package {name} not found")))?;
    let mut vs = VersionFlag::find_by_statement(Statement::from_sql_and_values(
        backend,
        numbered(backend, "SELECT num, yanked FROM versions WHERE package_id = ?"),
        [row.package.id.into()],
    ))
    .all(&state.db)
    .await?;
    vs.sort_by_cached_key(|v| semver::Version::parse(&v.num).unwrap_or_else(|_| semver::Version::new(0, 0, 0)));
    let package = row.package;
    Ok(PackageDetail {
        keywords: super::package_keywords(&package),
        owner: row.owner_id.zip(row.owner_name).map(|(id, name)| (name, id)),
        package,
        versions: vs,
        downloads_last_month: row.last_month,
    })
}

/// One version with its package's name, README left out (see [`batch::readmes`](super::batch::readmes)).
#[derive(FromQueryResult)]
pub struct VersionRow {
    pub package_name: String,
    #[sea_orm(nested)]
    pub version: versions::Model,
}

/// One version by package name and number (build metadata ignored, as for uniqueness), in one
/// statement: the read behind REST version metadata, downloads and GraphQL's `version` query.
#[tracing::instrument(name = "catalog.version", skip(state))]
pub async fn version(state: &AppState, name: &PackageName, version: &PackageVersion) -> AppResult<Option<VersionRow>> {
    let backend = state.db.get_database_backend();
    let sql = "SELECT p.name AS package_name, v.id, v.package_id, v.num, v.canonical, v.authors, v.description, \
               v.license, v.repository, v.homepage, v.keywords, CAST(NULL AS TEXT) AS readme, v.sha256, v.size_bytes, \
               v.yanked, v.yanked_at, v.yank_reason, v.published_by, v.published_at, v.downloads \
               FROM versions v JOIN packages p ON p.id = v.package_id WHERE p.name = ? AND v.canonical = ?";
    Ok(VersionRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        numbered(backend, sql),
        [name.as_str().into(), version.canonical().into()],
    ))
    .one(&state.db)
    .await?)
}

/// The same, or 404 naming the version.
pub async fn version_or_404(state: &AppState, name: &PackageName, v: &PackageVersion) -> AppResult<VersionRow> {
    version(state, name, v).await?.ok_or_else(|| AppError::NotFound(format!("{name} {v} not found")))
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
    let (list, ids) = crate::service::inlist::bind(package_ids.iter().copied());
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(d.count), 0) AS BIGINT) AS total FROM version_downloads d \
         JOIN versions v ON v.id = d.version_id WHERE d.day >= ? AND v.package_id IN ({list})"
    );
    let mut values: Vec<sea_orm::Value> = vec![since.into()];
    values.extend(ids);
    let sql = numbered(backend, &sql);
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
pub async fn package_stats(state: &AppState, name: &PackageName) -> AppResult<PackageStats> {
    use sea_orm::PaginatorTrait;
    let package = pkgs::get_by_name(&state.db, name).await?;
    let today = Utc::now().date_naive();
    let ids = [package.id];
    let last_week = downloads_since(&state.db, &ids, today - Duration::days(7)).await?;
    let last_month = downloads_since(&state.db, &ids, today - Duration::days(30)).await?;
    let last_year = downloads_since(&state.db, &ids, today - Duration::days(365)).await?;
    let versions_count =
        versions::Entity::find().filter(versions::Column::PackageId.eq(package.id)).count(&state.db).await?;
    let names = [package.name.clone()];
    let dependents_count =
        super::dependents::dependents_of(&state.db, &names).await?.remove(&package.name).unwrap_or_default().len()
            as u64;
    Ok(PackageStats { package, last_week, last_month, last_year, versions_count, dependents_count })
}
