//! The event feed: every publish, yank, unyank, owner change and new package, stored in order so
//! that mirrors, CI bots and search indexers catch up from where they stopped, and pushed live to
//! subscribers.
//!
//! # Numbering
//! An event's `seq` is `generation * 1000 + ordinal`: the catalog generation its transaction
//! raised (see [`crate::service::generation`]), then its place among that transaction's events.
//! The generation's UPDATE is the writer's lock on the counter row: a second writer waits for the
//! first to commit before it gets the next value, and the events are written under that lock
//! ([`record`], called by `generation::bump_and_commit_with`). So numbers grow in commit order,
//! and a reader that has seen every event up to N never finds a later commit below N (a
//! PostgreSQL sequence gives numbers in call order, and a resuming reader would skip events
//! committed out of that order). Writes without events (registrations, download counts) raise the
//! generation too: the numbers have gaps, and only their order means anything.
pub mod feed;
pub mod live;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use crate::domain::events::{EventCursor, EventKind};
use crate::error::{AppError, AppResult};

pub use live::{Live, Subscriber};

/// Events one transaction may write (a generation's numbers).
pub const PER_GENERATION: i64 = 1000;

/// An event a write is about to commit.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub package: String,
    pub version: Option<String>,
    pub actor: Option<Uuid>,
}

impl NewEvent {
    pub fn new(kind: EventKind, package: &str, version: Option<&str>, actor: Uuid) -> NewEvent {
        NewEvent { kind, package: package.to_owned(), version: version.map(str::to_owned), actor: Some(actor) }
    }
}

/// A stored event, as the feed and the subscriptions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub cursor: EventCursor,
    pub kind: EventKind,
    pub package: String,
    pub version: Option<String>,
    /// The username of who did it (none once that account is gone).
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

/// Writes `events` under the generation `generation` that their transaction has just raised (and
/// whose row it therefore holds locked until it commits).
#[tracing::instrument(name = "db.events.record", skip_all, fields(generation, events = events.len()))]
pub async fn record<C: ConnectionTrait>(txn: &C, generation: i64, events: &[NewEvent]) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    if events.len() as i64 >= PER_GENERATION {
        return Err(AppError::internal(anyhow::anyhow!("{} events in one write", events.len())));
    }
    let at = Utc::now();
    let rows = events.iter().enumerate().map(|(i, e)| entity::events::ActiveModel {
        seq: Set(generation * PER_GENERATION + i as i64 + 1),
        kind: Set(e.kind.as_str().to_owned()),
        package: Set(e.package.clone()),
        version: Set(e.version.clone()),
        actor_id: Set(e.actor),
        at: Set(at),
    });
    entity::events::Entity::insert_many(rows).exec(txn).await?;
    Ok(())
}

/// The events of a publish: the package's creation first when it is new.
pub fn published(is_new: bool, package: &str, version: &str, actor: Uuid) -> Vec<NewEvent> {
    let created = is_new.then(|| NewEvent::new(EventKind::PackageCreated, package, None, actor));
    created.into_iter().chain([NewEvent::new(EventKind::VersionPublished, package, Some(version), actor)]).collect()
}
