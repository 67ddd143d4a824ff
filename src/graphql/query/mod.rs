//! The root Query type, merged from one object per resource.
mod account;
mod package;
mod resolve;
mod stats;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct Query(package::PackageQuery, stats::StatsQuery, account::AccountQuery, resolve::ResolveQuery);
