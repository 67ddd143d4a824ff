//! POST /api/v1/resolve: the dependency graph solved on the server, so `raven pkg install` makes
//! one request instead of one per package. Same input and answer as GraphQL `resolve`, in
//! snake_case.
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi as doc;
use super::ApiJson;
use crate::domain::resolve::root_dependencies;
use crate::domain::DependencyKind;
use crate::error::AppResult;
use crate::service::resolve::{self, ResolveRequest};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct ResolveBody {
    /// The project's own dependencies (at most 100).
    #[schema(max_items = 100)]
    dependencies: Vec<DependencyInput>,
    /// Whether root dependencies of kind `dev` are resolved too (default false). Dependencies'
    /// own dev-dependencies never are.
    #[serde(default)]
    include_dev: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct DependencyInput {
    /// The package depended on.
    name: String,
    /// The version requirement, as in `raven.toml` (`^1.2`, `~0.3`, `=1.0.1`, `>=1, <3`).
    req: String,
    #[serde(default)]
    kind: Kind,
}

/// `normal` (default) or `dev`.
#[derive(Deserialize, ToSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Normal,
    Dev,
}

/// Either `packages` (and no `conflicts`), or no `packages` and the `conflicts`.
#[derive(Serialize, ToSchema)]
pub struct ResolutionBody {
    /// One version per package name and semver-compatible range (major from 1.0.0, minor for
    /// 0.x, patch for 0.0.x), sorted by name then version.
    packages: Vec<ResolvedPackage>,
    conflicts: Vec<ResolutionConflict>,
}

#[derive(Serialize, ToSchema)]
pub struct ResolvedPackage {
    name: String,
    version: String,
    /// SHA-256 of the tarball, lowercase hex.
    sha256: String,
    download_url: String,
    dependencies: Vec<ResolvedDependency>,
}

#[derive(Serialize, ToSchema)]
pub struct ResolvedDependency {
    name: String,
    req: String,
    /// The version chosen for this edge.
    version: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResolutionConflict {
    package: String,
    requirements: Vec<ConflictingRequirement>,
    /// Human-readable; the first conflict's ends with the solver's derivation.
    message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConflictingRequirement {
    req: String,
    /// `root` or `name@version`.
    required_by: String,
}

/// Resolves a project's dependencies: the highest compatible non-yanked version of each package;
/// a yanked one only when a root requirement pins it exactly (`=1.0.1`); a prerelease only when a
/// requirement names one. No solution is still a 200, with the `conflicts`.
#[utoipa::path(post, path = "/api/v1/resolve", tag = "packages", operation_id = "resolve", request_body = ResolveBody, responses(
    (status = 200, description = "The chosen packages, or the conflicts", body = ResolutionBody),
    doc::BadRequest, doc::PayloadTooLarge, doc::Unprocessable, doc::RateLimited, doc::ServerSide,
))]
pub async fn resolve(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> AppResult<Json<ResolutionBody>> {
    let dependencies = root_dependencies(body.dependencies.into_iter().map(|d| {
        let kind = match d.kind {
            Kind::Normal => DependencyKind::Normal,
            Kind::Dev => DependencyKind::Dev,
        };
        (d.name, d.req, kind)
    }))?;
    let r = resolve::resolve(&state, ResolveRequest { dependencies, include_dev: body.include_dev }).await?;
    Ok(Json(ResolutionBody {
        packages: r
            .packages
            .into_iter()
            .map(|p| ResolvedPackage {
                name: p.name,
                version: p.version,
                sha256: p.sha256,
                download_url: p.download_url,
                dependencies: p
                    .dependencies
                    .into_iter()
                    .map(|d| ResolvedDependency { name: d.name, req: d.req, version: d.version })
                    .collect(),
            })
            .collect(),
        conflicts: r
            .conflicts
            .into_iter()
            .map(|c| ResolutionConflict {
                package: c.package,
                requirements: c
                    .requirements
                    .into_iter()
                    .map(|q| ConflictingRequirement { req: q.req, required_by: q.required_by })
                    .collect(),
                message: c.message,
            })
            .collect(),
    }))
}
