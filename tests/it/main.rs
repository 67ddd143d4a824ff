//! The integration tests: ONE test binary (`cargo test --test it`) with a module per area, so the
//! whole app is linked once instead of once per file. Every test runs the real app through
//! `raven_registry::build` (or the real `raven-registry` binary as a child process) with a fresh
//! database of its own; see `testkit` for the harness.
//!
//! Run one area with a filter: `cargo test --test it publish::`; one test by its full name:
//! `cargo test --test it reliability::fsck_`.
//!
//! Each area module imports the harness as `use crate::testkit as common;` (the name the files
//! used when each was its own binary with a `mod common;`).

mod testkit;

mod accounts;
mod budgets;
mod bulk;
mod caches;
mod charts;
mod cors;
mod dependents;
mod dry_run;
mod events;
mod foundation;
mod freshness;
mod frontend_pages;
mod fuzz_regressions;
mod gql_caching;
mod graphiql;
mod graphql;
mod input;
mod keywords;
mod logs;
mod names_check;
mod nodes;
mod openapi;
mod operations;
mod profiles;
mod publish;
mod ratelimit;
mod reading;
mod readme;
mod reliability;
mod resolve;
mod search;
mod subscriptions;
