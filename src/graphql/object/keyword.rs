//! Keywords with how many packages list them.
use async_graphql::connection::Connection;
use async_graphql::SimpleObject;

use crate::graphql::object::package::ConnectionFields;
use crate::service::keywords::KeywordCount;

pub type KeywordConnection = Connection<String, Keyword, ConnectionFields>;

/// A keyword packages are tagged with (lowercase; filter `search` and `packages` with it).
#[derive(SimpleObject)]
pub struct Keyword {
    /// The keyword, as stored: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// How many packages list it now: those whose latest version has it, counting only packages
    /// that `packages` shows (with a non-yanked version). Equals `packages(keyword:)`'s
    /// `totalCount`.
    pub package_count: i32,
}

impl From<KeywordCount> for Keyword {
    fn from(k: KeywordCount) -> Self {
        Keyword { name: k.name, package_count: i32::try_from(k.package_count).unwrap_or(i32::MAX) }
    }
}
