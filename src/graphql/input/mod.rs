//! GraphQL input types.
pub mod account;
