use async_graphql::{Context, Object, Result};

use crate::graphql::auth::maybe_viewer;
use crate::graphql::object::package::Package;
use crate::graphql::object::validation::NameCheck;
use crate::graphql::state;
use crate::service;

#[derive(Default)]
pub struct NamesQuery;

#[Object]
impl NamesQuery {
    /// Checks a name for a new package before you publish it: validity, whether it is taken, and
    /// the existing packages it could be confused with (typosquatting rules, see the README).
    async fn name_check(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The name you would publish under, as typed (any case and separators).")] name: String,
    ) -> Result<NameCheck> {
        let check = service::names::check(state(ctx), maybe_viewer(ctx)?, &name).await?;
        Ok(NameCheck {
            available: check.available,
            valid: check.valid,
            reasons: check.reasons,
            similar: check.similar.into_iter().map(Package).collect(),
        })
    }
}
