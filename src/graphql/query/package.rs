use async_graphql::{Context, Object, Result};

use crate::domain::{Keyword, PackageName, PackageVersion};
use crate::error::AppError;
use crate::graphql::enums::PackageSort;
use crate::graphql::loader::{prime_package, prime_packages, prime_packages_knowing, request_generation};
use crate::graphql::object::package::{page, search_page, Package, PackageConnection, SearchConnection, Version};
use crate::graphql::{cursor, state};
use crate::service::read::{catalog, relations};
use crate::service::search;

#[derive(Default)]
pub struct PackageQuery;

#[Object]
impl PackageQuery {
    /// A package by name (case-insensitive), or null. A malformed name is BAD_USER_INPUT.
    async fn package(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Package name.")] name: String,
    ) -> Result<Option<Package>> {
        let name = PackageName::lookup(&name.to_ascii_lowercase()).map_err(AppError::from)?;
        let generation = request_generation(ctx).await?;
        let Some(package) = relations::package_by_name(state(ctx), generation, &name).await? else {
            return Ok(None);
        };
        prime_package(ctx, package.id).await?;
        Ok(Some(Package(package)))
    }

    /// One version of a package (build metadata ignored), or null. A malformed name or version is
    /// BAD_USER_INPUT.
    async fn version(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Package name.")] name: String,
        #[graphql(desc = "The version, e.g. `1.2.0`.")] version: String,
    ) -> Result<Option<Version>> {
        let name = PackageName::lookup(&name.to_ascii_lowercase()).map_err(AppError::from)?;
        let version = PackageVersion::parse(&version).map_err(AppError::from)?;
        Ok(catalog::version(state(ctx), &name, &version).await?.map(|row| Version(row.version)))
    }

    /// Full-text search over names, keywords and descriptions. By relevance: the exact name first,
    /// then names starting with the query, then text relevance, ties broken by downloads. A query
    /// that finds nothing because of a misspelled word gets `suggestions` and `didYouMean`.
    ///
    /// With `keyword`, only packages listing that keyword (`totalCount` counts them). The query
    /// may then be empty: every package with the keyword, in `sort` order, where RELEVANCE (with
    /// nothing to rank by) falls back to DOWNLOADS. An empty query without a keyword finds nothing.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The words to look for (each a prefix of a word of the package).")] query: String,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(default_with = "PackageSort::Relevance", desc = "Order of the results.")] sort: PackageSort,
        #[graphql(desc = "Only packages listing this keyword (case-insensitive; an unknown one finds nothing).")]
        keyword: Option<String>,
    ) -> Result<SearchConnection> {
        let first = cursor::first(first)?;
        let offset = cursor::after(after.as_deref())?;
        let keyword = keyword.map(|k| Keyword::parse(&k, "keyword")).transpose().map_err(AppError::from)?;
        let generation = request_generation(ctx).await?;
        let p = search::search(state(ctx), generation, &query, keyword.as_ref(), sort.into(), offset, first).await?;
        // The index knows each hit's latest version number: those rows are read by number.
        let latest = p.hits.iter().filter_map(|h| h.latest.clone().map(|l| (h.package.id, l))).collect();
        prime_packages_knowing(ctx, &p.hits.iter().map(|h| h.package.id).collect::<Vec<_>>(), &latest).await?;
        Ok(search_page(p, offset))
    }

    /// Every package with a non-yanked version, for browsing; with `keyword`, those listing it.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn packages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(
            default_with = "PackageSort::Downloads",
            desc = "Order of the list (RELEVANCE means DOWNLOADS here)."
        )]
        sort: PackageSort,
        #[graphql(desc = "Only packages listing this keyword (case-insensitive; an unknown one lists nothing).")]
        keyword: Option<String>,
    ) -> Result<PackageConnection> {
        let first = cursor::first(first)?;
        let offset = cursor::after(after.as_deref())?;
        let keyword = keyword.map(|k| Keyword::parse(&k, "keyword")).transpose().map_err(AppError::from)?;
        let generation = request_generation(ctx).await?;
        let p = search::browse(state(ctx), generation, keyword.as_ref(), sort.into(), offset, first).await?;
        prime_packages(ctx, &p.hits.iter().map(|h| h.package.id).collect::<Vec<_>>()).await?;
        Ok(page(p.hits.into_iter().map(|h| Package(h.package)).collect(), offset, p.total))
    }
}
