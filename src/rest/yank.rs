//! Yank and unyank a version.
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi as doc;
use super::Path;
use crate::auth::Viewer;
use crate::domain::{PackageName, PackageVersion};
use crate::error::AppResult;
use crate::service::yank;
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
