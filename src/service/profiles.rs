//! What a user's public profile shows: the packages they own or maintain.
use sea_orm::{EntityTrait, Statement};
use uuid::Uuid;

use entity::packages;

use crate::error::AppResult;
use crate::db::numbered;
use crate::service::versions;
use crate::state::AppState;

pub struct OwnedPackage {
    pub name: String,
    /// Highest non-yanked version, if any.
    pub version: Option<String>,
    pub downloads: i64,
}

/// The user's packages by name with their latest versions: two statements however many there are.
pub async fn owned_packages(state: &AppState, user_id: Uuid) -> AppResult<Vec<OwnedPackage>> {
    let backend = state.db.get_database_backend();
    let sql =
        "SELECT p.* FROM packages p JOIN package_owners o ON o.package_id = p.id WHERE o.user_id = ? ORDER BY p.name";
    let pkgs = packages::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, numbered(backend, sql), [user_id.into()]))
        .all(&state.db)
        .await?;
    if pkgs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = pkgs.iter().map(|p| p.id).collect();
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
