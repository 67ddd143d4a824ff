//! The catalog generation: a counter in the database that every write to what the cached reads
//! show (publish, yank, unyank, owner changes, registrations, download counts) raises inside its
//! own transaction, as its last statement, so the row lock is held only until the commit.
//!
//! A reader asks for the current value first, then reads (or reuses) the data. Any read that
//! starts after a write committed sees the raised value and so misses every entry cached before
//! it, in this instance or any other sharing the database. An entry computed from data older than
//! its key can only arise when the write commits between the two statements of a reader, and the
//! next reader already sees the newer value. One small statement replaces the search it saves.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

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

/// A bounded map whose entries are all of one generation: a newer generation empties it, and an
/// answer computed at an older one is not kept.
pub struct GenerationCache<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    generation: i64,
    entries: HashMap<K, V>,
}

impl<K: Hash + Eq, V: Clone> GenerationCache<K, V> {
    /// `capacity` 0 turns the cache off.
    pub fn new(capacity: usize) -> Self {
        GenerationCache { capacity, inner: Mutex::new(Inner { generation: i64::MIN, entries: HashMap::new() }) }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, generation: i64, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return None;
        }
        inner.entries.get(key).cloned()
    }

    pub fn put(&self, generation: i64, key: K, value: V) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation {
            inner.generation = generation;
            inner.entries.clear();
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            // Full: drop one arbitrary entry. Hot keys come straight back, and the read path
            // keeps no LRU bookkeeping.
            let mut first = true;
            inner.entries.retain(|_, _| !std::mem::take(&mut first));
        }
        inner.entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::GenerationCache;

    #[test]
    fn entries_live_for_one_generation_and_the_size_is_bounded() {
        let cache = GenerationCache::new(2);
        cache.put(5, "a", 1);
        assert_eq!(cache.get(5, &"a"), Some(1));
        assert_eq!(cache.get(6, &"a"), None, "a newer generation never sees older entries");
        // An answer computed at an older generation than the cache holds is not kept.
        cache.put(6, "b", 2);
        cache.put(5, "c", 3);
        assert_eq!(cache.get(6, &"c"), None);
        assert_eq!(cache.get(5, &"a"), None, "moving to generation 6 emptied the cache");
        cache.put(6, "c", 3);
        cache.put(6, "d", 4);
        let kept = ["b", "c", "d"].iter().filter(|k| cache.get(6, k).is_some()).count();
        assert_eq!(kept, 2, "at most `capacity` entries");
        assert_eq!(cache.get(6, &"d"), Some(4), "the newest entry is kept");
        let off = GenerationCache::new(0);
        off.put(1, "a", 1);
        assert_eq!(off.get(1, &"a"), None);
    }
}
