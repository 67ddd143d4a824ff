use async_graphql::{Context, Object, Result};

use crate::domain::events::EventCursor;
use crate::domain::PackageName;
use crate::error::AppError;
use crate::graphql::object::event::{page, EventConnection};
use crate::graphql::{cursor, state};
use crate::service::events::feed;

#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The catalog's change feed, oldest first: every package creation, publish, yank, unyank and
    /// owner change. Mirrors, CI bots and indexers keep the last cursor they processed and pass it
    /// as `after` to resume exactly there (no event skipped or repeated). An event is listed at
    /// once on the server that wrote it, and within a second on the others.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cursor of the last event already seen (an edge's or an event's `cursor`); \
                          omit to start from the first event.")]
        after: Option<String>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Only the events of this package.")] package: Option<String>,
    ) -> Result<EventConnection> {
        let first = cursor::first(first)?;
        let start = after.as_deref().map(|a| EventCursor::parse("after", a)).transpose().map_err(AppError::from)?;
        let package = package
            .map(|p| PackageName::lookup(&p.to_ascii_lowercase()).map_err(|e| e.in_field("package")))
            .transpose()
            .map_err(AppError::from)?;
        let p = feed::page(&state(ctx).db, start.unwrap_or(EventCursor::START), first, package.as_ref()).await?;
        Ok(page(p, start.is_some()))
    }
}
