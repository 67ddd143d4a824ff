//! GraphQL enums that mirror domain and service enums: the services know nothing of GraphQL, so
//! the schema's own types live here with conversions both ways.
use async_graphql::Enum;

use crate::auth;
use crate::service::search;

/// The order of a list of packages.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageSort {
    /// Best match first (search only; browsing falls back to DOWNLOADS).
    Relevance,
    /// Most downloaded first (all time).
    Downloads,
    /// Downloads over the last 90 days.
    RecentDownloads,
    /// Most recently created packages first.
    Newest,
    /// Most recently published (or yanked) first.
    RecentlyUpdated,
    /// By name, A to Z.
    Name,
}

impl From<PackageSort> for search::PackageSort {
    fn from(s: PackageSort) -> Self {
        match s {
            PackageSort::Relevance => search::PackageSort::Relevance,
            PackageSort::Downloads => search::PackageSort::Downloads,
            PackageSort::RecentDownloads => search::PackageSort::RecentDownloads,
            PackageSort::Newest => search::PackageSort::Newest,
            PackageSort::RecentlyUpdated => search::PackageSort::RecentlyUpdated,
            PackageSort::Name => search::PackageSort::Name,
        }
    }
}

/// What a token may do. Login tokens carry all of them.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Scope")]
pub enum TokenScope {
    /// Publish the first version of a new package.
    PublishNew,
    /// Publish new versions of packages you own or maintain.
    PublishUpdate,
    /// Yank and unyank versions.
    Yank,
    /// Add and remove owners and maintainers.
    ChangeOwners,
}

impl From<auth::Scope> for TokenScope {
    fn from(s: auth::Scope) -> Self {
        match s {
            auth::Scope::PublishNew => TokenScope::PublishNew,
            auth::Scope::PublishUpdate => TokenScope::PublishUpdate,
            auth::Scope::Yank => TokenScope::Yank,
            auth::Scope::ChangeOwners => TokenScope::ChangeOwners,
        }
    }
}

impl From<TokenScope> for auth::Scope {
    fn from(s: TokenScope) -> Self {
        match s {
            TokenScope::PublishNew => auth::Scope::PublishNew,
            TokenScope::PublishUpdate => auth::Scope::PublishUpdate,
            TokenScope::Yank => auth::Scope::Yank,
            TokenScope::ChangeOwners => auth::Scope::ChangeOwners,
        }
    }
}
