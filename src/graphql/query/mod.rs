//! The root Query type, merged from one object per resource.
mod account;
mod events;
mod keyword;
mod names;
mod node;
mod package;
mod resolve;
mod stats;

use async_graphql::MergedObject;

/// Reads: packages, versions, search, users, stats. Anonymous reads are allowed (and cacheable
/// over GET); `me` needs a token.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct Query(
    package::PackageQuery,
    keyword::KeywordQuery,
    stats::StatsQuery,
    account::AccountQuery,
    node::NodeQuery,
    names::NamesQuery,
    events::EventsQuery,
    resolve::ResolveQuery,
);
