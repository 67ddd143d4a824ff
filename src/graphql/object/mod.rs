//! GraphQL output types, shaped from service results (entity models are never GraphQL types).
pub mod account;
pub mod downloads;
pub mod event;
pub mod package;
pub mod stats;
