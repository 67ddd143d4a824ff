//! The GraphQL API: per-resource query / mutation / object modules joined with MergedObject, a
//! schema builder with the request limits, and the GraphQL-over-HTTP transport.
pub mod auth;
pub mod budget;
pub mod caching;
pub mod cursor;
pub mod depth;
pub mod enums;
pub mod errors;
pub mod graphiql;
pub mod http;
pub mod input;
pub mod limits;
pub mod loader;
pub mod metrics;
pub mod multipart;
pub mod mutation;
pub mod node;
pub mod object;
pub mod persisted;
pub mod query;
pub mod subscription;
pub mod ws;

use async_graphql::{Schema, SchemaBuilder};

use crate::state::AppState;
use object::package::{PackageConnection, SearchConnection, VersionConnection};

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

pub type RegistrySchema = Schema<Query, Mutation, Subscription>;

/// Depth and complexity limits: a list field costs `first x child`, so a deep nest of pages cannot
/// fan out into millions of rows. MAX_DEPTH holds the data fields; introspection fields are held
/// only by the looser INTROSPECTION_DEPTH, which the standard introspection queries need.
pub const MAX_DEPTH: usize = 10;
pub const INTROSPECTION_DEPTH: usize = 20;
pub const MAX_COMPLEXITY: usize = 5_000;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
        .limit_depth(INTROSPECTION_DEPTH)
        .extension(depth::DataDepthLimit(MAX_DEPTH))
        .limit_complexity(MAX_COMPLEXITY)
        .extension(errors::ErrorMapping)
        .extension(metrics::GraphqlMetrics)
        // async-graphql's connection types and the ID scalar carry no description of their own.
        .override_output_type_description::<async_graphql::ID>(
            "An opaque identifier: the global id of a Package, Version or User (see `Node`), or an \
             API token's UUID. Compare and pass it back; do not parse it.",
        )
        .override_output_type_description::<PackageConnection>(
            "A page of packages: `nodes` (or `edges` with a cursor each), `pageInfo` to ask for the \
             next page with `after: pageInfo.endCursor`, and `totalCount` of the whole list.",
        )
        .override_output_type_description::<VersionConnection>(
            "A page of versions, newest SemVer first, with `pageInfo` and `totalCount`.",
        )
        .override_output_type_description::<object::dependent::DependentConnection>(
            "A page of a package's dependents, most downloaded first, with `pageInfo` and \
             `totalCount` (all dependents).",
        )
        .override_output_type_description::<object::keyword::KeywordConnection>(
            "A page of keywords, most used first, with `pageInfo` and `totalCount`.",
        )
        .override_output_type_description::<object::event::EventConnection>(
            "A page of the event feed, oldest first: each edge's `cursor` is its event's, to pass \
             as `after` to resume.",
        )
        .override_output_type_description::<SearchConnection>(
            "A page of search results with `pageInfo`, the exact `totalCount` of matches, and \
             `suggestions` / `didYouMean` when nothing matched a misspelled query.",
        )
}

pub fn build_schema(state: AppState) -> RegistrySchema {
    let introspection = state.config.graphql_introspection;
    let mut b = builder().data(state);
    if !introspection {
        b = b.disable_introspection().disable_suggestions();
    }
    b.finish()
}

/// The SDL the code defines; `schema.graphql` must equal it (checked by a test).
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The application state, from a resolver's context.
pub(crate) fn state<'a>(ctx: &async_graphql::Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}
