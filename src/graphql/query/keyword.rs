use async_graphql::{Context, Object, Result};

use crate::domain::Keyword;
use crate::error::AppError;
use crate::graphql::loader::request_generation;
use crate::graphql::object::keyword::{self, KeywordConnection};
use crate::graphql::object::package::page;
use crate::graphql::{cursor, state};
use crate::service::keywords;

#[derive(Default)]
pub struct KeywordQuery;

#[Object]
impl KeywordQuery {
    /// The keywords packages list, most used first (ties by name), each with how many packages
    /// list it. For a tag cloud or a keyword picker; filter `search` and `packages` with a name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn keywords(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only keywords starting with this text (case-insensitive); empty means all.")] query: Option<
            String,
        >,
    ) -> Result<KeywordConnection> {
        let first = cursor::first(first)?;
        let offset = cursor::after(after.as_deref())?;
        let prefix = match query.as_deref() {
            Some(q) => Keyword::prefix(q, "query").map_err(AppError::from)?,
            None => None,
        };
        // The relation cache's generation, when on; the keyword cache reads it otherwise.
        let generation = request_generation(ctx).await?;
        let p = keywords::list(state(ctx), generation, prefix.as_ref(), offset, first).await?;
        Ok(page(p.keywords.into_iter().map(keyword::Keyword::from).collect(), offset, p.total))
    }
}
