//! Package owners: owners may do everything, maintainers may publish and yank. Only owners manage
//! owners, and a package always keeps at least one owner: every change locks the package row first
//! (`packages::lock_by_name`), so two owners removing each other, or both stepping down, at once
//! run one after the other and the second sees the first's change.
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use entity::{package_owners, packages, users};

use crate::auth::{Scope, Viewer};
use crate::domain::events::EventKind;
use crate::domain::{PackageName, Username};
use crate::error::{AppError, AppResult};
use crate::service::events::NewEvent;
use crate::service::packages::{self as pkgs, Role};
use crate::service::{accounts, audit};
use crate::state::AppState;

pub struct Owner {
    pub user: users::Model,
    pub role: String,
    pub added_at: chrono::DateTime<Utc>,
}

/// Owners of a package, oldest first (so the first is the original owner).
pub async fn list(state: &AppState, package_id: Uuid) -> AppResult<Vec<Owner>> {
    let rows = package_owners::Entity::find()
        .filter(package_owners::Column::PackageId.eq(package_id))
        .order_by_asc(package_owners::Column::AddedAt)
        .all(&state.db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let users: std::collections::HashMap<Uuid, users::Model> = users::Entity::find()
        .filter(users::Column::Id.is_in(crate::service::inlist::padded(ids)))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|r| users.get(&r.user_id).cloned().map(|user| Owner { user, role: r.role, added_at: r.added_at }))
        .collect())
}

/// Adds `username` with `role`, or changes their role if they already have one.
#[tracing::instrument(name = "owners.add", skip(state, viewer), fields(user_id = %viewer.user_id))]
pub async fn add(
    state: &AppState,
    viewer: &Viewer,
    package: &PackageName,
    username: &Username,
    role: Role,
) -> AppResult<(packages::Model, Owner)> {
    state.limits.owners(viewer.user_id)?;
    let user = accounts::find_by_username(state, username)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user {username}")))?;
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let (pkg, owner, event) = add_in(&txn, viewer, package, user, role).await?;
    crate::service::generation::bump_and_commit_with(state, txn, event.as_slice()).await?;
    Ok((pkg, owner))
}

/// [`add`]'s rows inside the caller's transaction (which raises the generation and commits),
/// with the feed's event when the role changed.
pub(crate) async fn add_in(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    package: &PackageName,
    user: users::Model,
    role: Role,
) -> AppResult<(packages::Model, Owner, Option<NewEvent>)> {
    let pkg = pkgs::lock_by_name(txn, package).await?;
    pkgs::authorise(txn, viewer, &pkg, Scope::ChangeOwners, Role::Owner).await?;
    let now = Utc::now();
    let existing = package_owners::Entity::find_by_id((pkg.id, user.id)).one(txn).await?;
    let changed = existing.as_ref().is_none_or(|row| row.role != role.as_str());
    let row = match existing {
        Some(row) if row.role == role.as_str() => row,
        Some(row) => {
            if row.role == Role::Owner.as_str() && role != Role::Owner {
                ensure_another_owner(txn, pkg.id, &pkg.name).await?;
            }
            let mut a: package_owners::ActiveModel = row.into();
            a.role = Set(role.as_str().to_owned());
            a.update(txn).await?
        }
        None => {
            package_owners::ActiveModel {
                package_id: Set(pkg.id),
                user_id: Set(user.id),
                role: Set(role.as_str().to_owned()),
                added_at: Set(now),
            }
            .insert(txn)
            .await?
        }
    };
    audit::record(
        txn,
        audit::AuditEntry {
            actor: Some(viewer.user_id),
            action: "owner_add",
            package: Some(&pkg.name),
            version: None,
            details: serde_json::json!({ "username": user.username, "role": role.as_str() }),
        },
    )
    .await?;
    // The package metadata names its first owner. A role that stays as it was is no event.
    let event = changed.then(|| NewEvent::new(EventKind::OwnerAdded, &pkg.name, None, viewer.user_id));
    Ok((pkg, Owner { user, role: row.role, added_at: row.added_at }, event))
}

#[tracing::instrument(name = "owners.remove", skip(state, viewer), fields(user_id = %viewer.user_id))]
pub async fn remove(
    state: &AppState,
    viewer: &Viewer,
    package: &PackageName,
    username: &Username,
) -> AppResult<packages::Model> {
    state.limits.owners(viewer.user_id)?;
    let user = accounts::find_by_username(state, username)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user {username}")))?;
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let pkg = pkgs::lock_by_name(&txn, package).await?;
    pkgs::authorise(&txn, viewer, &pkg, Scope::ChangeOwners, Role::Owner).await?;
    let row = package_owners::Entity::find_by_id((pkg.id, user.id))
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("{username} is not an owner of {package}")))?;
    if row.role == Role::Owner.as_str() {
        ensure_another_owner(&txn, pkg.id, &pkg.name).await?;
    }
    package_owners::Entity::delete_by_id((pkg.id, user.id)).exec(&txn).await?;
    audit::record(
        &txn,
        audit::AuditEntry {
            actor: Some(viewer.user_id),
            action: "owner_remove",
            package: Some(&pkg.name),
            version: None,
            details: serde_json::json!({ "username": user.username }),
        },
    )
    .await?;
    let event = NewEvent::new(EventKind::OwnerRemoved, &pkg.name, None, viewer.user_id);
    crate::service::generation::bump_and_commit_with(state, txn, &[event]).await?;
    Ok(pkg)
}

/// Call only with the package row locked (see the module comment).
async fn ensure_another_owner(txn: &sea_orm::DatabaseTransaction, package_id: Uuid, name: &str) -> AppResult<()> {
    let owners = package_owners::Entity::find()
        .filter(package_owners::Column::PackageId.eq(package_id))
        .filter(package_owners::Column::Role.eq(Role::Owner.as_str()))
        .count(txn)
        .await?;
    if owners <= 1 {
        return Err(AppError::Conflict(format!("{name} must keep at least one owner")));
    }
    Ok(())
}
