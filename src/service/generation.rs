//! The catalog generation: a counter in the database that every write to what the cached reads
//! show (publish, yank, unyank, owner changes, registrations, download counts) raises inside its
//! own transaction, as its last statement, so the row lock is held only until the commit.
//!
//! A reader asks for the current value first, then reads (or reuses) the data. Any read that
//! starts after a write committed sees the raised value and so misses every entry cached before
//! it, in this instance or any other sharing the database. An entry computed from data older than
//! its key can only arise when the write commits between the two statements of a reader, and the
//! next reader already sees the newer value. One small statement replaces the search it saves.
use entity::catalog_generation::{self, Column, Entity};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::{AppError, AppResult};

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

/// Raises the value; call it inside the write's transaction, just before the commit.
#[tracing::instrument(name = "db.generation.bump", skip_all)]
pub async fn bump<C: ConnectionTrait>(txn: &C) -> AppResult<()> {
    Entity::update_many()
        .col_expr(Column::Value, Expr::col(Column::Value).add(1))
        .filter(Column::Id.eq(ROW))
        .exec(txn)
        .await?;
    Ok(())
}
