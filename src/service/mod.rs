//! The service layer: the only code that runs queries or writes. It takes domain types and returns
//! entity models or plain structs; it knows nothing of HTTP or GraphQL.
pub mod accounts;
pub mod audit;
pub mod cache;
pub mod downloads;
pub mod fetch;
pub mod fsck;
pub mod generation;
pub mod inlist;
pub mod owners;
pub mod packages;
pub mod profiles;
pub mod publish;
pub mod read;
pub mod readme;
pub mod resolve;
pub mod search;
pub mod search_index;
pub mod stats;
pub mod tokens;
pub mod versions;
pub mod yank;
