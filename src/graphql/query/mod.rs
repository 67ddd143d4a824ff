//! The root Query type, merged from one object per resource.
mod account;
mod stats;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct Query(stats::StatsQuery, account::AccountQuery);
