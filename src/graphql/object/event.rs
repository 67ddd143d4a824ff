//! Catalog events: the `events` feed and subscription.
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Enum, Object};
use chrono::{DateTime, Utc};

use crate::domain::events as domain;
use crate::service::events as service;

/// What happened to a package.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The package was created by the publish of its first version (a VERSION_PUBLISHED event
    /// follows).
    PackageCreated,
    /// A version was published.
    VersionPublished,
    /// A version was yanked: it still downloads but leaves version lists and resolution.
    VersionYanked,
    /// A yanked version was restored.
    VersionUnyanked,
    /// Someone became an owner or maintainer of the package, or their role changed.
    OwnerAdded,
    /// Someone stopped being an owner or maintainer of the package.
    OwnerRemoved,
}

impl From<domain::EventKind> for EventKind {
    fn from(k: domain::EventKind) -> Self {
        match k {
            domain::EventKind::PackageCreated => EventKind::PackageCreated,
            domain::EventKind::VersionPublished => EventKind::VersionPublished,
            domain::EventKind::VersionYanked => EventKind::VersionYanked,
            domain::EventKind::VersionUnyanked => EventKind::VersionUnyanked,
            domain::EventKind::OwnerAdded => EventKind::OwnerAdded,
            domain::EventKind::OwnerRemoved => EventKind::OwnerRemoved,
        }
    }
}

pub struct Event(pub service::Event);

/// One change to the catalog: a package created, a version published, yanked or unyanked, an
/// owner added or removed. Events are numbered in the order their writes committed.
#[Object]
impl Event {
    /// This event's place in the feed: pass it as `after` (to the `events` query, the `events`
    /// subscription or `GET /api/v1/events`) to get the events that follow it. Opaque; keep it as is.
    async fn cursor(&self) -> String {
        self.0.cursor.encode()
    }
    /// What happened.
    async fn kind(&self) -> EventKind {
        self.0.kind.into()
    }
    /// The package's name.
    async fn package(&self) -> &str {
        &self.0.package
    }
    /// The version concerned (VERSION_* events), else null.
    async fn version(&self) -> Option<&str> {
        self.0.version.as_deref()
    }
    /// The username of who did it; null if that account no longer exists.
    async fn actor(&self) -> Option<&str> {
        self.0.actor.as_deref()
    }
    /// When it happened (UTC).
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// A page of events, oldest first; each edge's cursor is its event's cursor.
pub type EventConnection = Connection<String, Event>;

pub fn page(p: service::feed::Page, resumed: bool) -> EventConnection {
    let mut c = Connection::new(resumed, p.has_more);
    c.edges.extend(p.events.into_iter().map(|e| Edge::new(e.cursor.encode(), Event(e))));
    c
}
