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
//! That statement is not run on every read either: [`Watch`] keeps the value last read and trusts
//! it for `GENERATION_MAX_AGE_MS` (250 ms by default), and forgets it the moment this instance
//! commits a write of its own ([`bump_and_commit`]). So a write is seen at once by the instance
//! that made it, and within that age by every other instance sharing the database.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use entity::catalog_generation::{self, Column, Entity};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};

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

/// Raises the value; call it inside the write's transaction, just before the commit (through
/// [`bump_and_commit`], so this instance's [`Watch`] learns of it).
#[tracing::instrument(name = "db.generation.bump", skip_all)]
pub async fn bump<C: ConnectionTrait>(txn: &C) -> AppResult<()> {
    Entity::update_many()
        .col_expr(Column::Value, Expr::col(Column::Value).add(1))
        .filter(Column::Id.eq(ROW))
        .exec(txn)
        .await?;
    Ok(())
}

/// Raises the value as the last statement of `txn`, commits, and tells this instance's watch.
pub async fn bump_and_commit(state: &AppState, txn: DatabaseTransaction) -> AppResult<()> {
    bump_and_commit_with(state, txn, &[]).await
}

/// [`bump_and_commit`] for a write that is also an event of the feed: the raised value numbers
/// `events`, written under the row lock the raise took (see `service::events` for why that keeps
/// their numbers in commit order), and this instance's live feed reads them at once.
pub async fn bump_and_commit_with(
    state: &AppState,
    txn: DatabaseTransaction,
    events: &[crate::service::events::NewEvent],
) -> AppResult<()> {
    if events.is_empty() {
        bump(&txn).await?;
    } else {
        let generation = bump_returning(&txn).await?;
        crate::service::events::record(&txn, generation, events).await?;
    }
    txn.commit().await?;
    state.generation.wrote();
    if !events.is_empty() {
        state.events.wrote();
    }
    Ok(())
}

/// [`bump`], returning the raised value (`UPDATE ... RETURNING`: SQLite 3.35+ and PostgreSQL).
#[tracing::instrument(name = "db.generation.bump", skip_all)]
async fn bump_returning<C: ConnectionTrait>(txn: &C) -> AppResult<i64> {
    let rows = Entity::update_many()
        .col_expr(Column::Value, Expr::col(Column::Value).add(1))
        .filter(Column::Id.eq(ROW))
        .exec_with_returning(txn)
        .await?;
    rows.first()
        .map(|m| m.value)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("catalog_generation has no row; migrations not applied?")))
}

/// This instance's view of the generation (see the module doc).
pub struct Watch {
    max_age: Duration,
    /// Writes this instance has committed.
    writes: AtomicU64,
    known: Mutex<Option<Known>>,
    /// One refresh at a time; the others wait for its answer.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Clone, Copy)]
struct Known {
    value: i64,
    /// `writes` when the value was read: a later write of ours makes it stale.
    writes: u64,
    at: Instant,
}

impl Watch {
    pub fn new(max_age: Duration) -> Watch {
        Watch { max_age, writes: AtomicU64::new(0), known: Mutex::new(None), refresh: Default::default() }
    }

    /// The current value: the one known, while it is younger than the maximum age and no write of
    /// this instance has committed since it was read; otherwise read again.
    pub async fn current<C: ConnectionTrait>(&self, db: &C) -> AppResult<i64> {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _one = self.refresh.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        // Counted before the read: a write committing meanwhile leaves this answer stale at once.
        let writes = self.writes.load(Ordering::SeqCst);
        let value = current(db).await?;
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = Some(Known { value, writes, at: Instant::now() });
        Ok(value)
    }

    fn fresh(&self) -> Option<i64> {
        let known = (*self.known.lock().unwrap_or_else(|e| e.into_inner()))?;
        (known.writes == self.writes.load(Ordering::SeqCst) && known.at.elapsed() < self.max_age).then_some(known.value)
    }

    /// A write of this instance has committed.
    pub fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}
