//! The root Subscription type, served over WebSocket at `/graphql/ws` (see `graphql::ws`).
use async_graphql::{Context, Result, Subscription as SubscriptionObject};
use futures::Stream;

use crate::domain::events::EventCursor;
use crate::domain::PackageName;
use crate::error::AppError;
use crate::graphql::object::event::Event;
use crate::graphql::state;
use crate::service::events::Subscriber;

#[derive(Default)]
pub struct Subscription;

/// Live updates, over WebSocket at `/graphql/ws` (protocol graphql-transport-ws).
#[SubscriptionObject(name = "Subscription")]
impl Subscription {
    /// Catalog events as they are committed, in order, each once. With `after`, first every event
    /// that followed it (so a client that reconnects with the last cursor it received misses
    /// nothing), then live ones; a replay of more than 10,000 events is refused: catch up with the
    /// `events` query first. Without `after`, only events from now on.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only the events of this package.")] package: Option<String>,
        #[graphql(desc = "The cursor of the last event already seen; omit for live events only.")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<Event>>> {
        let after = after.as_deref().map(|a| EventCursor::parse("after", a)).transpose().map_err(AppError::from)?;
        let package = package
            .map(|p| PackageName::lookup(&p.to_ascii_lowercase()).map_err(|e| e.in_field("package")))
            .transpose()
            .map_err(AppError::from)?;
        let state = state(ctx);
        let replay_max = state.config.subscription_replay_max;
        let subscriber = Subscriber::start(state, after, package.map(|p| p.as_str().to_owned()), replay_max).await?;
        // An error (the database unreachable) ends the stream after reporting it; the client
        // resubscribes with the last cursor it received.
        Ok(futures::stream::unfold(Some(subscriber), |s| async move {
            let mut s = s?;
            match s.next().await {
                Ok(e) => Some((Ok(Event(e)), Some(s))),
                Err(e) => Some((Err(e.into()), None)),
            }
        }))
    }
}
