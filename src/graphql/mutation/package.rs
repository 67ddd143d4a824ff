use async_graphql::{Context, Object, Result, Upload};

use crate::auth::Scope;
use crate::domain::{PackageName, PackageVersion, Username};
use crate::error::AppError;
use crate::graphql::auth::{viewer, RequireScope};
use crate::graphql::object::account::User;
use crate::graphql::object::package::{Package, PackageOwner, Version};
use crate::graphql::object::validation::PackageValidation;
use crate::graphql::state;
use crate::service::packages::Role;
use crate::service::publish::{self, Claimed, Tarball};
use crate::service::{owners, validate, yank};

#[derive(Default)]
pub struct PackageMutation;

#[Object]
impl PackageMutation {
    /// Publishes a tarball (GraphQL multipart request). Name, version and metadata come from the
    /// raven.toml inside it.
    #[graphql(guard = "RequireScope(None)")]
    async fn publish(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The package tarball (`.tar.gz` with `raven.toml` at its root), as a multipart file.")]
        tarball: Upload,
    ) -> Result<Version> {
        let upload = tarball.value(ctx).map_err(|e| AppError::BadRequest(format!("cannot read the upload: {e}")))?;
        let published =
            publish::publish(state(ctx), viewer(ctx)?, Tarball::File(upload.content), Claimed::default()).await?;
        Ok(Version(published.version))
    }

    /// Dry-run publish: runs every check of `publish` on the tarball (structure, raven.toml, name,
    /// version, metadata, dependencies, your permission, version not taken, sizes) and stores
    /// nothing. Lists every problem, not just the first. Charged to your publish budget.
    #[graphql(guard = "RequireScope(None)")]
    async fn validate_package(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The gzip'd tar you would publish (GraphQL multipart request).")] tarball: Upload,
    ) -> Result<PackageValidation> {
        let upload = tarball.value(ctx).map_err(|e| AppError::BadRequest(format!("cannot read the upload: {e}")))?;
        let report =
            validate::dry_run(state(ctx), viewer(ctx)?, Tarball::File(upload.content), Claimed::default()).await?;
        Ok(PackageValidation { ok: report.ok, problems: report.problems.into_iter().map(Into::into).collect() })
    }

    /// Yanks a version: it stays downloadable for existing lockfiles but leaves `latestVersion`
    /// and new resolutions. Owners and maintainers; needs the YANK scope.
    #[graphql(guard = "RequireScope(Some(Scope::Yank))")]
    async fn yank(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Package name.")] name: String,
        #[graphql(desc = "The version to yank.")] version: String,
        #[graphql(desc = "Why, shown to users (at most 1,000 characters).")] reason: Option<String>,
    ) -> Result<Version> {
        let (name, version) = name_and_version(&name, &version)?;
        Ok(Version(yank::set_yanked(state(ctx), viewer(ctx)?, &name, &version, true, reason).await?.version))
    }

    /// Undoes a yank. Owners and maintainers; needs the YANK scope.
    #[graphql(guard = "RequireScope(Some(Scope::Yank))")]
    async fn unyank(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Package name.")] name: String,
        #[graphql(desc = "The version to unyank.")] version: String,
    ) -> Result<Version> {
        let (name, version) = name_and_version(&name, &version)?;
        Ok(Version(yank::set_yanked(state(ctx), viewer(ctx)?, &name, &version, false, None).await?.version))
    }

    /// Adds an owner or maintainer (or changes their role). Owners only.
    #[graphql(guard = "RequireScope(Some(Scope::ChangeOwners))")]
    async fn add_owner(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Package name.")] package: String,
        #[graphql(desc = "The user to add.")] username: String,
        #[graphql(default_with = "OwnerRole::Owner", desc = "The role to give them.")] role: OwnerRole,
    ) -> Result<PackageOwner> {
        let (package, username) = owner_args(&package, &username)?;
        let role = match role {
            OwnerRole::Owner => Role::Owner,
            OwnerRole::Maintainer => Role::Maintainer,
        };
        let (_, o) = owners::add(state(ctx), viewer(ctx)?, &package, &username, role).await?;
        Ok(PackageOwner { user: User(o.user.into()), role: o.role, added_at: o.added_at })
    }

    /// Removes an owner or maintainer; the last owner cannot be removed.
    #[graphql(guard = "RequireScope(Some(Scope::ChangeOwners))")]
    async fn remove_owner(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Package name.")] package: String,
        #[graphql(desc = "The user to remove.")] username: String,
    ) -> Result<Package> {
        let (package, username) = owner_args(&package, &username)?;
        Ok(Package(owners::remove(state(ctx), viewer(ctx)?, &package, &username).await?))
    }
}

/// The arguments of the yank mutations, parsed before any SQL runs.
fn name_and_version(name: &str, version: &str) -> Result<(PackageName, PackageVersion), AppError> {
    Ok((PackageName::lookup(name)?, PackageVersion::parse(version)?))
}

/// The arguments of the owner mutations, parsed before any SQL runs (the package name is reported
/// under its argument's name, `package`).
fn owner_args(package: &str, username: &str) -> Result<(PackageName, Username), AppError> {
    let package = PackageName::lookup(package).map_err(|e| e.in_field("package"))?;
    Ok((package, Username::parse(username)?))
}

/// A role on a package.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRole {
    /// All rights: publish, yank, and manage owners.
    Owner,
    /// Publish and yank, but not manage owners.
    Maintainer,
}
