//! Reading the stored feed: pages after a cursor, oldest first. Two statements per page whatever
//! its size (the events, then their actors' usernames).
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use entity::events::{Column, Entity};

use super::Event;
use crate::domain::events::{EventCursor, EventKind};
use crate::domain::PackageName;
use crate::error::{AppError, AppResult};
use crate::service::inlist;

/// Largest page of the `events` query and of `GET /api/v1/events`.
pub const MAX_PAGE: u64 = 100;

/// A page of the feed.
pub struct Page {
    pub events: Vec<Event>,
    /// More events follow the last one.
    pub has_more: bool,
}

/// Up to `limit` events after `after` (and at most `upto`, when given), of `package` only when
/// given, oldest first.
#[tracing::instrument(name = "db.events.read", skip_all, fields(after = after.0, limit))]
pub async fn read<C: ConnectionTrait>(
    db: &C,
    after: EventCursor,
    upto: Option<EventCursor>,
    limit: u64,
    package: Option<&str>,
) -> AppResult<Vec<Event>> {
    let mut q = Entity::find().filter(Column::Seq.gt(after.0));
    if let Some(upto) = upto {
        q = q.filter(Column::Seq.lte(upto.0));
    }
    if let Some(package) = package {
        q = q.filter(Column::Package.eq(package));
    }
    let rows = q.order_by_asc(Column::Seq).limit(limit).all(db).await?;
    let mut ids: Vec<Uuid> = rows.iter().filter_map(|r| r.actor_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<Uuid, String> = if ids.is_empty() {
        HashMap::new()
    } else {
        entity::users::Entity::find()
            .filter(entity::users::Column::Id.is_in(inlist::padded(ids)))
            .all(db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect()
    };
    rows.into_iter()
        .map(|r| {
            let kind = EventKind::parse(&r.kind).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("event {} has an unknown kind {:?}", r.seq, r.kind))
            })?;
            Ok(Event {
                cursor: EventCursor(r.seq),
                kind,
                actor: r.actor_id.and_then(|id| names.get(&id).cloned()),
                package: r.package,
                version: r.version,
                at: r.at,
            })
        })
        .collect()
}

/// A page of at most `limit` (1..=[`MAX_PAGE`], checked by the caller) events after `after`.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    after: EventCursor,
    limit: u64,
    package: Option<&PackageName>,
) -> AppResult<Page> {
    let mut events = read(db, after, None, limit + 1, package.map(PackageName::as_str)).await?;
    let has_more = events.len() as u64 > limit;
    events.truncate(limit as usize);
    Ok(Page { events, has_more })
}

/// The cursor of the newest event (the start of the feed when there is none).
#[tracing::instrument(name = "db.events.head", skip_all)]
pub async fn head<C: ConnectionTrait>(db: &C) -> AppResult<EventCursor> {
    let newest = Entity::find().order_by_desc(Column::Seq).limit(1).one(db).await?;
    Ok(newest.map_or(EventCursor::START, |e| EventCursor(e.seq)))
}

/// Whether more than `n` events (of `package`, when given) follow `after`: an index walk of at
/// most `n + 1` entries.
#[tracing::instrument(name = "db.events.count_after", skip_all, fields(after = after.0, n))]
pub async fn more_than<C: ConnectionTrait>(
    db: &C,
    after: EventCursor,
    package: Option<&str>,
    n: u64,
) -> AppResult<bool> {
    let mut q = Entity::find().select_only().column(Column::Seq).filter(Column::Seq.gt(after.0));
    if let Some(package) = package {
        q = q.filter(Column::Package.eq(package));
    }
    let row: Option<i64> = q.order_by_asc(Column::Seq).offset(n).limit(1).into_tuple().one(db).await?;
    Ok(row.is_some())
}
