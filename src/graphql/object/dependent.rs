//! `Package.dependents`: the packages whose latest version depends on a package.
use async_graphql::connection::Connection;
use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use crate::domain;
use crate::error::AppError;
use crate::graphql::loader::{Loaders, PackageById, VersionById};
use crate::graphql::object::package::{ConnectionFields, DependencyKind, Package, Version};
use crate::service::read::dependents::DependentRow;

pub type DependentConnection = Connection<String, Dependent, ConnectionFields>;

pub struct Dependent(pub DependentRow);

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

fn missing(what: &str, id: Uuid) -> async_graphql::Error {
    AppError::internal(anyhow::anyhow!("dependent's {what} {id} not found")).into()
}

/// A package that depends on another through its latest version (the version its page shows).
#[Object]
impl Dependent {
    /// The depending package.
    async fn package(&self, ctx: &Context<'_>) -> Result<Package> {
        let p = loaders(ctx).load_one(PackageById(self.0.package_id)).await?;
        p.map(Package).ok_or_else(|| missing("package", self.0.package_id))
    }
    /// Its latest version, the one that depends.
    async fn version(&self, ctx: &Context<'_>) -> Result<Version> {
        let v = loaders(ctx).load_one(VersionById(self.0.version_id)).await?;
        v.map(Version).ok_or_else(|| missing("version", self.0.version_id))
    }
    /// The SemVer requirement that version places on the depended-on package.
    async fn req(&self) -> &str {
        &self.0.req
    }
    /// NORMAL, or DEV for a dev-dependency (NORMAL when the version lists it as both).
    async fn kind(&self) -> DependencyKind {
        match self.0.kind {
            domain::DependencyKind::Normal => DependencyKind::Normal,
            domain::DependencyKind::Dev => DependencyKind::Dev,
        }
    }
}

/// Loads the packages and versions of a page of dependents in one batch each (before the node
/// resolvers ask for them one by one), so a page of 50 costs the statements of a page of 2.
pub async fn prime(ctx: &Context<'_>, page: &[Dependent]) -> Result<()> {
    let l = loaders(ctx);
    futures::try_join!(
        l.load_many(page.iter().map(|d| PackageById(d.0.package_id))),
        l.load_many(page.iter().map(|d| VersionById(d.0.version_id))),
    )?;
    Ok(())
}
