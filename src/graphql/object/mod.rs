//! GraphQL output types, shaped from service results (entity models are never GraphQL types).
pub mod account;
pub mod downloads;
pub mod package;
pub mod resolve;
pub mod stats;
