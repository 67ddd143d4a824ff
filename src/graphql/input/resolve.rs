//! The input of `resolve`.
use async_graphql::InputObject;

use crate::graphql::object::package::DependencyKind;

/// One dependency of the project being resolved, as its `raven.toml` declares it.
#[derive(InputObject)]
pub struct DependencyInput {
    /// The package depended on.
    pub name: String,
    /// The version requirement, in the syntax of `raven.toml` (`^1.2`, `~0.3`, `=1.0.1`,
    /// `>=1, <3`, `*`; a bare `1.2` means `^1.2`).
    pub req: String,
    /// NORMAL, or DEV for a dev-dependency (resolved only with `includeDev: true`).
    #[graphql(default_with = "DependencyKind::Normal")]
    pub kind: DependencyKind,
}
