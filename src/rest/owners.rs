//! Yank, unyank and owners of a package.
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::auth::Viewer;
use crate::error::AppResult;
use crate::service::packages::{self as pkgs, Role};
use crate::service::{owners, yank};
use crate::state::AppState;

#[derive(Serialize)]
pub struct YankBody {
    name: String,
    version: String,
    yanked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    yanked_at: Option<DateTime<Utc>>,
}

pub async fn yank(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Json<YankBody>> {
    let y = yank::set_yanked(&state, &viewer, &name, &version, true, None).await?;
    Ok(Json(YankBody { name: y.package.name, version: y.version.num, yanked: true, yanked_at: y.version.yanked_at }))
}

pub async fn unyank(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Json<YankBody>> {
    let y = yank::set_yanked(&state, &viewer, &name, &version, false, None).await?;
    Ok(Json(YankBody { name: y.package.name, version: y.version.num, yanked: false, yanked_at: None }))
}

#[derive(Serialize)]
pub struct OwnerEntry {
    username: String,
    user_id: String,
    role: String,
}

#[derive(Serialize)]
pub struct OwnersBody {
    owners: Vec<OwnerEntry>,
}

pub async fn list(State(state): State<AppState>, Path(name): Path<String>) -> AppResult<Json<OwnersBody>> {
    let pkg = pkgs::get_by_name(&state.db, &name).await?;
    let owners = owners::list(&state, pkg.id)
        .await?
        .into_iter()
        .map(|o| OwnerEntry { username: o.user.username, user_id: o.user.id.to_string(), role: o.role })
        .collect();
    Ok(Json(OwnersBody { owners }))
}

#[derive(Deserialize)]
pub struct AddOwner {
    username: String,
    #[serde(default = "default_role")]
    role: String,
}

fn default_role() -> String {
    "owner".into()
}

#[derive(Serialize)]
pub struct AddedOwner {
    username: String,
    role: String,
    added_at: DateTime<Utc>,
}

pub async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddOwner>,
) -> AppResult<Json<AddedOwner>> {
    let role = Role::parse(&body.role)?;
    let (_, o) = owners::add(&state, &viewer, &name, &body.username, role).await?;
    Ok(Json(AddedOwner { username: o.user.username, role: o.role, added_at: o.added_at }))
}

#[derive(Serialize)]
pub struct RemovedOwner {
    username: String,
    removed: bool,
}

pub async fn remove(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, username)): Path<(String, String)>,
) -> AppResult<Json<RemovedOwner>> {
    owners::remove(&state, &viewer, &name, &username).await?;
    Ok(Json(RemovedOwner { username: username.to_ascii_lowercase(), removed: true }))
}
