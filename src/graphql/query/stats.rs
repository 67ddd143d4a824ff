use async_graphql::{Context, Object, Result};

use crate::graphql::object::stats::RegistryStats;
use crate::service;

#[derive(Default)]
pub struct StatsQuery;

#[Object]
impl StatsQuery {
    /// Registry-wide totals.
    async fn stats(&self, ctx: &Context<'_>) -> Result<RegistryStats> {
        let s = service::stats::registry_stats(super::super::state(ctx)).await?;
        Ok(s.into())
    }
}
