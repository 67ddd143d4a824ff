//! Package lookups and the authorisation questions every write asks.
use sea_orm::sea_query::LockType;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use entity::{package_owners, packages, versions};

use crate::auth::{Scope, Viewer};
use crate::domain::{PackageName, PackageVersion};
use crate::error::{AppError, AppResult};

/// What a user may do with a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Maintainer,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Maintainer => "maintainer",
        }
    }

    pub fn parse(s: &str) -> Result<Role, crate::domain::ValidationError> {
        match s {
            "owner" => Ok(Role::Owner),
            "maintainer" => Ok(Role::Maintainer),
            other => Err(crate::domain::ValidationError::new(
                "role",
                format!("unknown role {other:?}: expected owner or maintainer"),
            )),
        }
    }
}

/// A package by name (parsed at the edge: `PackageName::lookup` for reads).
pub async fn find_by_name(db: &impl ConnectionTrait, name: &PackageName) -> AppResult<Option<packages::Model>> {
    Ok(packages::Entity::find().filter(packages::Column::Name.eq(name.as_str())).one(db).await?)
}

pub async fn get_by_name(db: &impl ConnectionTrait, name: &PackageName) -> AppResult<packages::Model> {
    find_by_name(db, name).await?.ok_or_else(|| AppError::NotFound(format!("package {name} not found")))
}

/// The package, its row locked until the transaction ends. Every write that checks something of
/// a package and then writes on the strength of it (the last-owner rule, the latest version whose
/// metadata the package shows) takes this first, so on PostgreSQL, where each statement of a READ
/// COMMITTED transaction sees what committed before it started, two such writes run one after the
/// other and the second checks what the first wrote. `FOR NO KEY UPDATE` is the lock an UPDATE of
/// the row would take: it queues these writers without blocking inserts that merely reference the
/// package. SQLite has no row locks (sea-query leaves the clause out there) and needs none: a write
/// transaction holds the database's only write lock from its `BEGIN IMMEDIATE` (`db::begin_write`).
pub async fn lock_by_name(txn: &sea_orm::DatabaseTransaction, name: &PackageName) -> AppResult<packages::Model> {
    packages::Entity::find()
        .filter(packages::Column::Name.eq(name.as_str()))
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("package {name} not found")))
}

/// Locks the package row by id, like [`lock_by_name`], and returns it as it is now.
pub async fn lock_by_id(txn: &sea_orm::DatabaseTransaction, id: Uuid) -> AppResult<packages::Model> {
    packages::Entity::find_by_id(id)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::NotFound("the package no longer exists".into()))
}

/// A version by its number; build metadata is ignored, as it is for uniqueness.
pub async fn find_version(
    db: &impl ConnectionTrait,
    package_id: Uuid,
    version: &str,
) -> AppResult<Option<versions::Model>> {
    let canonical = match PackageVersion::parse(version) {
        Ok(v) => v.canonical(),
        Err(_) => return Ok(None),
    };
    Ok(versions::Entity::find()
        .filter(versions::Column::PackageId.eq(package_id))
        .filter(versions::Column::Canonical.eq(canonical))
        .one(db)
        .await?)
}

/// The canonical version numbers each of `names` has published (a name without a package is
/// absent), for a whole batch of names in two statements (the seed asks once per wave).
pub async fn published_versions(
    db: &impl ConnectionTrait,
    names: &[String],
) -> AppResult<std::collections::HashMap<String, std::collections::HashSet<String>>> {
    let mut out: std::collections::HashMap<String, std::collections::HashSet<String>> = Default::default();
    if names.is_empty() {
        return Ok(out);
    }
    let ids: Vec<(Uuid, String)> = packages::Entity::find()
        .select_only()
        .column(packages::Column::Id)
        .column(packages::Column::Name)
        .filter(packages::Column::Name.is_in(crate::service::inlist::padded(names.iter().cloned())))
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(out);
    }
    let by_id: std::collections::HashMap<Uuid, String> = ids.into_iter().collect();
    let rows: Vec<(Uuid, String)> = versions::Entity::find()
        .select_only()
        .column(versions::Column::PackageId)
        .column(versions::Column::Canonical)
        .filter(versions::Column::PackageId.is_in(crate::service::inlist::padded(by_id.keys().copied())))
        .into_tuple()
        .all(db)
        .await?;
    for name in by_id.values() {
        out.entry(name.clone()).or_default();
    }
    for (id, canonical) in rows {
        if let Some(name) = by_id.get(&id) {
            out.entry(name.clone()).or_default().insert(canonical);
        }
    }
    Ok(out)
}

pub async fn role_of(db: &impl ConnectionTrait, package_id: Uuid, user_id: Uuid) -> AppResult<Option<Role>> {
    let row = package_owners::Entity::find_by_id((package_id, user_id)).one(db).await?;
    Ok(row.and_then(|r| Role::parse(&r.role).ok()))
}

/// The viewer must hold `scope` on their token and at least `min` on the package.
pub async fn authorise(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    package: &packages::Model,
    scope: Scope,
    min: Role,
) -> AppResult<Role> {
    viewer.require(scope)?;
    match role_of(db, package.id, viewer.user_id).await? {
        Some(r) if r >= min => Ok(r),
        Some(_) => Err(AppError::Forbidden(format!("only owners of {} may do this", package.name))),
        None => Err(AppError::Forbidden(format!("you are not an owner or maintainer of {}", package.name))),
    }
}
