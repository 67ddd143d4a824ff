//! Yank, unyank and owners of a package.
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi as doc;
use super::ApiJson;
use super::Path;
use crate::auth::Viewer;
use crate::domain::{PackageName, PackageVersion, Username};
use crate::error::AppResult;
use crate::service::packages::{self as pkgs, Role};
use crate::service::{owners, yank};
use crate::state::AppState;

/// The answer to yank (`yanked: true` with `yanked_at`) and unyank (`yanked: false`, no `yanked_at`).
#[derive(Serialize, ToSchema)]
pub struct YankBody {
    name: String,
    version: String,
    yanked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = DateTime<Utc>)]
    yanked_at: Option<DateTime<Utc>>,
}

/// Yanks a version: it leaves `versions` and resolution but still downloads.
#[utoipa::path(delete, path = "/api/v1/packages/{name}/{version}", tag = "packages", operation_id = "yank",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Package name", example = "hello-raven"), ("version" = String, Path, description = "SemVer version", example = "1.0.0")),
    responses(
        (status = 200, description = "The version is yanked", body = YankBody),
        doc::Unauthorized, doc::Forbidden, doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn yank(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Json<YankBody>> {
    let (name, version) = (PackageName::lookup(&name)?, PackageVersion::parse(&version)?);
    let y = yank::set_yanked(&state, &viewer, &name, &version, true, None).await?;
    Ok(Json(YankBody { name: y.package.name, version: y.version.num, yanked: true, yanked_at: y.version.yanked_at }))
}

/// Takes a yanked version back.
#[utoipa::path(put, path = "/api/v1/packages/{name}/{version}/unyank", tag = "packages", operation_id = "unyank",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Package name", example = "hello-raven"), ("version" = String, Path, description = "SemVer version", example = "1.0.0")),
    responses(
        (status = 200, description = "The version is no longer yanked", body = YankBody),
        doc::Unauthorized, doc::Forbidden, doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn unyank(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Json<YankBody>> {
    let (name, version) = (PackageName::lookup(&name)?, PackageVersion::parse(&version)?);
    let y = yank::set_yanked(&state, &viewer, &name, &version, false, None).await?;
    Ok(Json(YankBody { name: y.package.name, version: y.version.num, yanked: false, yanked_at: None }))
}

#[derive(Serialize, ToSchema)]
pub struct OwnerEntry {
    username: String,
    #[schema(format = Uuid)]
    user_id: String,
    #[schema(value_type = doc::OwnerRole)]
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct OwnersBody {
    owners: Vec<OwnerEntry>,
}

/// The owners and maintainers of a package.
#[utoipa::path(get, path = "/api/v1/packages/{name}/owners", tag = "owners", operation_id = "listOwners",
    params(("name" = String, Path, description = "Package name", example = "hello-raven")),
    responses(
        (status = 200, description = "The owners", body = OwnersBody),
        doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn list(State(state): State<AppState>, Path(name): Path<String>) -> AppResult<Json<OwnersBody>> {
    let pkg = pkgs::get_by_name(&state.db, &PackageName::lookup(&name)?).await?;
    let owners = owners::list(&state, pkg.id)
        .await?
        .into_iter()
        .map(|o| OwnerEntry { username: o.user.username, user_id: o.user.id.to_string(), role: o.role })
        .collect();
    Ok(Json(OwnersBody { owners }))
}

#[derive(Deserialize, ToSchema)]
pub struct AddOwner {
    username: String,
    /// `owner` when absent.
    #[serde(default = "default_role")]
    #[schema(value_type = doc::OwnerRole)]
    role: String,
}

fn default_role() -> String {
    "owner".into()
}

#[derive(Serialize, ToSchema)]
pub struct AddedOwner {
    username: String,
    #[schema(value_type = doc::OwnerRole)]
    role: String,
    added_at: DateTime<Utc>,
}

/// Adds an owner or maintainer (or changes their role); needs the owner role.
#[utoipa::path(put, path = "/api/v1/packages/{name}/owners", tag = "owners", operation_id = "addOwner",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Package name", example = "hello-raven")),
    request_body = AddOwner,
    responses(
        (status = 200, description = "The user is an owner", body = AddedOwner),
        doc::BadRequest, doc::Unauthorized, doc::Forbidden, doc::NotFound, doc::Conflict, doc::PayloadTooLarge,
        doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<AddOwner>,
) -> AppResult<Json<AddedOwner>> {
    // Every input is parsed before any SQL runs.
    let name = PackageName::lookup(&name)?;
    let username = Username::parse(&body.username)?;
    let role = Role::parse(&body.role)?;
    let (_, o) = owners::add(&state, &viewer, &name, &username, role).await?;
    Ok(Json(AddedOwner { username: o.user.username, role: o.role, added_at: o.added_at }))
}

#[derive(Serialize, ToSchema)]
pub struct RemovedOwner {
    username: String,
    /// Always true.
    removed: bool,
}

/// Removes an owner; the last owner cannot be removed (409).
#[utoipa::path(delete, path = "/api/v1/packages/{name}/owners/{username}", tag = "owners", operation_id = "removeOwner",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Package name", example = "hello-raven"), ("username" = String, Path, description = "The owner to remove", example = "ada")),
    responses(
        (status = 200, description = "The user is no longer an owner", body = RemovedOwner),
        doc::Unauthorized, doc::Forbidden, doc::BadRequest, doc::NotFound, doc::Conflict, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((name, username)): Path<(String, String)>,
) -> AppResult<Json<RemovedOwner>> {
    let (name, username) = (PackageName::lookup(&name)?, Username::parse(&username)?);
    owners::remove(&state, &viewer, &name, &username).await?;
    Ok(Json(RemovedOwner { username: username.into_inner(), removed: true }))
}
