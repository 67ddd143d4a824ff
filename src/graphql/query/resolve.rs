use async_graphql::{Context, Object, Result};

use crate::domain::resolve::root_dependencies;
use crate::domain::DependencyKind as Kind;
use crate::error::AppError;
use crate::graphql::input::resolve::DependencyInput;
use crate::graphql::object::package::DependencyKind;
use crate::graphql::object::resolve::Resolution;
use crate::graphql::state;
use crate::service::resolve::{self, ResolveRequest};

#[derive(Default)]
pub struct ResolveQuery;

#[Object]
impl ResolveQuery {
    /// Resolves a project's dependency graph on the server: the highest compatible non-yanked
    /// version of each package wins; a yanked version only when a root requirement pins it
    /// exactly (`=1.0.1`); a prerelease only when a requirement names one. At most 100
    /// dependencies; a graph past the server's package, step or time bounds is refused with
    /// `TOO_COMPLEX`.
    async fn resolve(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's own dependencies (at most 100).")] dependencies: Vec<DependencyInput>,
        #[graphql(
            default = false,
            desc = "Whether root dependencies of kind DEV are resolved too. Dependencies' own \
                    dev-dependencies never are."
        )]
        include_dev: bool,
    ) -> Result<Resolution> {
        let dependencies = root_dependencies(dependencies.into_iter().map(|d| {
            let kind = match d.kind {
                DependencyKind::Normal => Kind::Normal,
                DependencyKind::Dev => Kind::Dev,
            };
            (d.name, d.req, kind)
        }))
        .map_err(AppError::from)?;
        let r = resolve::resolve(state(ctx), ResolveRequest { dependencies, include_dev }).await?;
        Ok(r.into())
    }
}
