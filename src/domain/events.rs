//! Catalog events: what kinds there are, and the cursor that numbers them.
//!
//! A cursor is opaque to clients: base64url (no padding) of `event:<seq>`, where `seq` is the
//! event's number in the feed (see `service::events`). The same string works in the GraphQL
//! `events` query and subscription and in `GET /api/v1/events`.
use base64::Engine;

use super::{shown, ValidationError};

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const PREFIX: &str = "event:";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    PackageCreated,
    VersionPublished,
    VersionYanked,
    VersionUnyanked,
    OwnerAdded,
    OwnerRemoved,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::PackageCreated,
        EventKind::VersionPublished,
        EventKind::VersionYanked,
        EventKind::VersionUnyanked,
        EventKind::OwnerAdded,
        EventKind::OwnerRemoved,
    ];

    /// The stored (and REST) name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PackageCreated => "PACKAGE_CREATED",
            EventKind::VersionPublished => "VERSION_PUBLISHED",
            EventKind::VersionYanked => "VERSION_YANKED",
            EventKind::VersionUnyanked => "VERSION_UNYANKED",
            EventKind::OwnerAdded => "OWNER_ADDED",
            EventKind::OwnerRemoved => "OWNER_REMOVED",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A position in the feed: events after it have a greater `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor(pub i64);

impl EventCursor {
    /// Before every event.
    pub const START: EventCursor = EventCursor(0);

    pub fn encode(self) -> String {
        ENGINE.encode(format!("{PREFIX}{}", self.0))
    }

    /// The cursor a client sent as `field`; anything else than a cursor this server issued is bad
    /// input, never a panic.
    pub fn parse(field: &str, text: &str) -> Result<EventCursor, ValidationError> {
        let bad = || ValidationError::new(field, format!("{} is not an event cursor", shown(text)));
        if text.len() > 64 {
            return Err(bad());
        }
        let bytes = ENGINE.decode(text.as_bytes()).map_err(|_| bad())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        text.strip_prefix(PREFIX)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<i64>().ok())
            .map(EventCursor)
            .ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for n in [0, 1, 42_001, i64::MAX] {
            assert_eq!(EventCursor::parse("after", &EventCursor(n).encode()).unwrap(), EventCursor(n));
        }
        let long = "A".repeat(100);
        for bad in [
            "",
            "!!",
            "42",
            long.as_str(),
            &ENGINE.encode("event:"),
            &ENGINE.encode("event:-1"),
            &ENGINE.encode("event:+1"),
            &ENGINE.encode("pos:1"),
            &ENGINE.encode("event:99999999999999999999"),
        ] {
            assert_eq!(EventCursor::parse("after", bad).unwrap_err().field, "after", "{bad}");
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
