//! GraphQL input types.
pub mod account;
pub mod resolve;
