//! The catalog generation: a counter in the database that every write to what the cached reads
//! show (publish, yank, unyank, owner changes, registrations, download counts) raises inside its
//! own transaction, as its last statement, so the row lock is held only until the commit.
//!
//! A reader asks for the current value first, then reads (or reuses) the data. Any read that
//! starts after a write committed sees the raised value and so misses every entry cached before
//! it, in this instance or any other sharing the database. An entry computed from data older than
//! its key can only arise when the write commits between the two statements of a reader, and the
//! next reader already sees the newer value. One small statement replaces the search it saves.
//!
//! That statement is not run on every read either. [`Watch`] keeps the value last known and:
//! - learns each write of this instance as it commits ([`bump_and_commit`] returns the new value),
//!   so a write is seen at once by the instance that made it;
//! - while something tells it of every other write, trusts the value without asking: on SQLite,
//!   this process holds the database file's serving lock (`db::lock_sqlite`), so there is no other
//!   writer; on PostgreSQL, the listener of [`super::catalog_listener`] is connected and every
//!   bump sends a NOTIFY with its new value;
//! - otherwise (the listener is down, or not started) trusts it for `GENERATION_MAX_AGE_MS`
//!   (250 ms by default) and then asks again: the bounded fallback poll.
//!
//! `GENERATION_MAX_AGE_MS=0` asks on every read, whatever tells it of writes.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use entity::catalog_generation::{self, Entity};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, Statement};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

const ROW: i32 = 1;

/// The current value.
#[tracing::instrument(name = "db.generation", skip_all)]
pub async fn current<C: ConnectionTrait>(db: &C) -> AppResult<i64> {
    Entity::find_by_id(ROW)
        .one(db)
        .await?
        .map(|m: catalog_generation::Model| m.value)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("catalog_generation has no row; migrations not applied?")))
}

/// The channel every bump notifies on PostgreSQL, with the new value as its payload.
pub const CHANNEL: &str = "raven_catalog_generation";

/// Raises the value and returns the new one; call it inside the write's transaction, just before
/// the commit (through [`bump_and_commit`], so this instance's [`Watch`] learns of it). On
/// PostgreSQL the same statement queues a NOTIFY, delivered to every listener when (and only if)
/// the transaction commits.
#[tracing::instrument(name = "db.generation.bump", skip_all)]
pub async fn bump<C: ConnectionTrait>(txn: &C) -> AppResult<i64> {
    let backend = txn.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        format!(
            "WITH b AS (UPDATE catalog_generation SET value = value + 1 WHERE id = {ROW} RETURNING value) \
             SELECT value, pg_notify('{CHANNEL}', value::text) FROM b"
        )
    } else {
        format!("UPDATE catalog_generation SET value = value + 1 WHERE id = {ROW} RETURNING value")
    };
    let row = txn
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("catalog_generation has no row; migrations not applied?")))?;
    Ok(row.try_get::<i64>("", "value")?)
}

/// Raises the value as the last statement of `txn`, commits, and tells this instance's watch.
pub async fn bump_and_commit(state: &AppState, txn: DatabaseTransaction) -> AppResult<i64> {
    bump_and_commit_with(state, txn, &[]).await
}

/// [`bump_and_commit`] for a write that is also an event of the feed: the raised value numbers
/// `events`, written under the row lock the raise took (see `service::events` for why that keeps
/// their numbers in commit order), and this instance's live feed reads them at once.
pub async fn bump_and_commit_with(
    state: &AppState,
    txn: DatabaseTransaction,
    events: &[crate::service::events::NewEvent],
) -> AppResult<i64> {
    let value = bump(&txn).await?;
    if !events.is_empty() {
        crate::service::events::record(&txn, value, events).await?;
    }
    txn.commit().await?;
    state.generation.learned(value);
    if !events.is_empty() {
        state.events.wrote();
    }
    Ok(value)
}

/// This instance's view of the generation (see the module doc).
pub struct Watch {
    max_age: Duration,
    /// Whether every write by anyone reaches [`Watch::learned`] (see the module doc).
    notified: AtomicBool,
    known: Mutex<Option<Known>>,
    /// One refresh at a time; the others wait for its answer.
    refresh: tokio::sync::Mutex<()>,
    /// Woken whenever the value grows (the live event feed reads new events at once).
    on_advance: std::sync::OnceLock<std::sync::Arc<tokio::sync::Notify>>,
}

#[derive(Clone, Copy)]
struct Known {
    value: i64,
    at: Instant,
}

impl Watch {
    pub fn new(max_age: Duration) -> Watch {
        Watch {
            max_age,
            notified: AtomicBool::new(false),
            known: Mutex::new(None),
            refresh: Default::default(),
            on_advance: Default::default(),
        }
    }

    /// Wakes `notify` each time the value grows, whoever's write it was (set once, at start).
    pub fn wake_on_advance(&self, notify: std::sync::Arc<tokio::sync::Notify>) {
        let _ = self.on_advance.set(notify);
    }

    /// The current value: the one known while it can be trusted (see the module doc), otherwise
    /// read again.
    pub async fn current<C: ConnectionTrait>(&self, db: &C) -> AppResult<i64> {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _one = self.refresh.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let value = current(db).await?;
        self.learned(value);
        Ok(value)
    }

    fn fresh(&self) -> Option<i64> {
        if self.max_age.is_zero() {
            return None;
        }
        let known = (*self.known.lock().unwrap_or_else(|e| e.into_inner()))?;
        (self.notified.load(Ordering::SeqCst) || known.at.elapsed() < self.max_age).then_some(known.value)
    }

    /// A value that was current when it was read or committed. Values only grow, so an older
    /// answer arriving late (a read that raced a write) never replaces a newer one.
    pub fn learned(&self, value: i64) {
        let advanced = {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *known {
                Some(k) if k.value > value => false,
                Some(k) if k.value == value => {
                    k.at = Instant::now();
                    false
                }
                slot => {
                    let first = slot.is_none();
                    *slot = Some(Known { value, at: Instant::now() });
                    !first
                }
            }
        };
        if advanced {
            if let Some(n) = self.on_advance.get() {
                n.notify_one();
            }
        }
    }

    /// Something now tells this watch of every write (true), or no longer does (false: the value
    /// is trusted for the maximum age again, counted from when it was learned).
    pub fn set_notified(&self, on: bool) {
        self.notified.store(on, Ordering::SeqCst);
    }

    /// Whether every write reaches this watch without asking (tests wait for the listener).
    pub fn is_notified(&self) -> bool {
        self.notified.load(Ordering::SeqCst)
    }
}
