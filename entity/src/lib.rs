//! SeaORM entities of raven-registry, one module per table. These are storage types only: the GraphQL
//! and REST layers shape their own output types from them.
pub mod api_tokens;
pub mod audit_log;
pub mod catalog_generation;
pub mod dependencies;
pub mod events;
pub mod keywords;
pub mod package_owners;
pub mod packages;
pub mod prelude;
pub mod users;
pub mod version_downloads;
pub mod versions;
