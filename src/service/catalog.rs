//! Reading packages and versions for the REST shim (GraphQL reads the same through loaders).
use chrono::{Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Statement};
use uuid::Uuid;

use entity::{dependencies, packages, versions};

use crate::domain::{PackageName, PackageVersion};
use crate::error::{AppError, AppResult};
use crate::service::packages as pkgs;
use crate::service::search::numbered;
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

pub fn keywords_of(p: &packages::Model) -> Vec<String> {
    p.keywords_text.split_whitespace().map(str::to_owned).collect()
}

#[derive(FromQueryResult)]
struct PackageRow {
    #[sea_orm(nested)]
    package: packages::Model,
    owner_id: Option<Uuid>,
    owner_name: Option<String>,
    last_month: i64,
}

const PACKAGE_SQL: &str = "SELECT p.id, p.name, p.description, p.license, p.repository, p.homepage, p.keywords_text, \
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
        keywords: keywords_of(&package),
        owner: row.owner_id.zip(row.owner_name).map(|(id, name)| (name, id)),
        package,
        versions: vs,
        downloads_last_month: row.last_month,
    })
}

/// The columns of a version that its REST metadata and its download need (not the README), with
/// the package's name.
#[derive(FromQueryResult)]
pub struct VersionMeta {
    pub id: Uuid,
    pub package_name: String,
    pub num: String,
    pub authors: String,
    pub description: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub keywords: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub yanked: bool,
    pub yanked_at: Option<chrono::DateTime<Utc>>,
    pub published_at: chrono::DateTime<Utc>,
}

/// One version by package name and number (build metadata ignored, as for uniqueness), in one
/// statement.
#[tracing::instrument(name = "catalog.version_meta", skip(state))]
pub async fn version_meta(state: &AppState, name: &PackageName, version: &PackageVersion) -> AppResult<VersionMeta> {
    let not_found = || AppError::NotFound(format!("{name} {version} not found"));
    let canonical = version.canonical();
    let backend = state.db.get_database_backend();
    let sql = "SELECT v.id, p.name AS package_name, v.num, v.authors, v.description, v.license, v.repository, \
               v.homepage, v.keywords, v.sha256, v.size_bytes, v.yanked, v.yanked_at, v.published_at \
               FROM versions v JOIN packages p ON p.id = v.package_id WHERE p.name = ? AND v.canonical = ?";
    VersionMeta::find_by_statement(Statement::from_sql_and_values(
        backend,
        numbered(backend, sql),
        [name.as_str().into(), canonical.into()],
    ))
    .one(&state.db)
    .await?
    .ok_or_else(not_found)
}

/// The dependencies of a version, by name.
pub async fn dependencies_of(state: &AppState, version_id: Uuid) -> AppResult<Vec<dependencies::Model>> {
    let mut deps =
        dependencies::Entity::find().filter(dependencies::Column::VersionId.eq(version_id)).all(&state.db).await?;
    deps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(deps)
}

/// A whole version row (README included) by package name and number, for GraphQL, in one statement.
pub async fn version_model(
    state: &AppState,
    name: &PackageName,
    version: &PackageVersion,
) -> AppResult<Option<versions::Model>> {
    let backend = state.db.get_database_backend();
    let sql = "SELECT v.* FROM versions v JOIN packages p ON p.id = v.package_id WHERE p.name = ? AND v.canonical = ?";
    Ok(versions::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            numbered(backend, sql),
            [name.as_str().into(), version.canonical().into()],
        ))
        .one(&state.db)
        .await?)
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
    let sql = crate::service::search::numbered(backend, &sql);
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
    let package = pkgs::get_by_name(&state.db, name.as_str()).await?;
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
    let dependent_versions = versions::Entity::find()
        .filter(versions::Column::Id.is_in(crate::service::inlist::padded(version_ids)))
        .all(&state.db)
        .await?;
    let package_ids: Vec<Uuid> = dependent_versions.iter().map(|v| v.package_id).collect();
    let latest = crate::service::versions::latest_for_packages(&state.db, &package_ids).await?;
    let dependent_ids: std::collections::HashSet<Uuid> = dependent_versions
        .iter()
        .filter(|v| latest.get(&v.package_id).map(|l| l.id) == Some(v.id))
        .map(|v| v.package_id)
        .collect();
    Ok(packages::Entity::find()
        .filter(packages::Column::Id.is_in(crate::service::inlist::padded(dependent_ids)))
        .all(&state.db)
        .await?)
}
