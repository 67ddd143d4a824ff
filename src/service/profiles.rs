//! What a user's public profile shows: the packages they own or maintain.
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use entity::{package_owners, packages};

use crate::error::AppResult;
use crate::service::versions;
use crate::state::AppState;

pub struct OwnedPackage {
    pub name: String,
    /// Highest non-yanked version, if any.
    pub version: Option<String>,
    pub downloads: i64,
}

pub async fn owned_packages(state: &AppState, user_id: Uuid) -> AppResult<Vec<OwnedPackage>> {
    let ids: Vec<Uuid> = package_owners::Entity::find()
        .filter(package_owners::Column::UserId.eq(user_id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|o| o.package_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let pkgs = packages::Entity::find()
        .filter(packages::Column::Id.is_in(ids.clone()))
        .order_by_asc(packages::Column::Name)
        .all(&state.db)
        .await?;
    let latest = versions::latest_for_packages(&state.db, &ids).await?;
    Ok(pkgs
        .into_iter()
        .map(|p| OwnedPackage {
            version: latest.get(&p.id).map(|v| v.num.clone()),
            name: p.name,
            downloads: p.downloads,
        })
        .collect())
}
