//! GraphQL output types, shaped from service results (entity models are never GraphQL types).
pub mod account;
pub mod dependent;
pub mod downloads;
pub mod event;
pub mod keyword;
pub mod package;
pub mod resolve;
pub mod stats;
pub mod validation;
