//! GET /api/v1/events?after=&limit=&package=: the event feed, with the cursors of the GraphQL
//! `events` query and subscription.
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::openapi as doc;
use super::Query;
use crate::domain::events::EventCursor;
use crate::domain::{shown, PackageName, ValidationError};
use crate::error::AppResult;
use crate::service::events::{feed, Event};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// The cursor of the last event already seen (`next_cursor` of the previous page, or any
    /// event's `cursor`); omit to start from the first event.
    after: Option<String>,
    /// Page size, 1 to 100 (default 100); other values are refused.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Only the events of this package.
    package: Option<String>,
}

/// One catalog event.
#[derive(Serialize, ToSchema)]
pub struct EventBody {
    /// This event's place in the feed (opaque): pass it as `after` to get the events that follow.
    cursor: String,
    /// `PACKAGE_CREATED`, `VERSION_PUBLISHED`, `VERSION_YANKED`, `VERSION_UNYANKED`, `OWNER_ADDED`
    /// or `OWNER_REMOVED`.
    kind: String,
    package: String,
    /// The version concerned (`VERSION_*` events), else null.
    version: Option<String>,
    /// Username of who did it; null once that account is gone.
    actor: Option<String>,
    at: DateTime<Utc>,
}

/// A page of the feed, oldest first.
#[derive(Serialize, ToSchema)]
pub struct EventsBody {
    events: Vec<EventBody>,
    /// Where to resume: the last event's cursor, or `after` (or the start of the feed) when the
    /// page is empty.
    next_cursor: String,
    /// More events follow this page: ask again at once with `after=next_cursor`.
    has_more: bool,
}

fn limit(v: Option<String>) -> AppResult<u64> {
    let Some(s) = v else { return Ok(feed::MAX_PAGE) };
    match s.parse::<u64>() {
        Ok(n) if (1..=feed::MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(ValidationError::new(
            "limit",
            format!("limit must be between 1 and {}, got {}", feed::MAX_PAGE, shown(&s)),
        )
        .into()),
    }
}

fn body(e: Event) -> EventBody {
    EventBody {
        cursor: e.cursor.encode(),
        kind: e.kind.as_str().to_owned(),
        package: e.package,
        version: e.version,
        actor: e.actor,
        at: e.at,
    }
}

/// The catalog's change feed (publishes, yanks, unyanks, owner changes, new packages), oldest
/// first; resume with the last cursor seen. An event is listed at once on the instance that wrote
/// it and within a second on the others.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(Params), responses(
    (status = 200, description = "A page of events", body = EventsBody),
    doc::BadRequest, doc::RateLimited, doc::ServerSide,
))]
pub async fn events(State(state): State<AppState>, Query(p): Query<Params>) -> AppResult<Json<EventsBody>> {
    let limit = limit(p.limit)?;
    let after = match p.after.as_deref() {
        Some(a) => EventCursor::parse("after", a)?,
        None => EventCursor::START,
    };
    let package = p
        .package
        .map(|name| PackageName::lookup(&name.to_ascii_lowercase()).map_err(|e| e.in_field("package")))
        .transpose()?;
    let page = feed::page(&state.db, after, limit, package.as_ref()).await?;
    let next_cursor = page.events.last().map_or(after, |e| e.cursor).encode();
    Ok(Json(EventsBody { events: page.events.into_iter().map(body).collect(), next_cursor, has_more: page.has_more }))
}
