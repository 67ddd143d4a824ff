//! Download counting: each full download bumps an in-memory counter keyed by package name, version
//! and UTC day; a flusher adds the counts to the database every few seconds and at shutdown. Keying
//! by name (not row id) lets downloads be counted while the database is unreachable.
use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, Statement};
use uuid::Uuid;

use entity::{packages, versions};

use crate::db::numbered;
use crate::domain::PackageVersion;
use crate::error::AppResult;
use crate::service::generation::Watch;

type Key = (String, String, NaiveDate);

#[derive(Default)]
pub struct DownloadCounter {
    pending: Mutex<HashMap<Key, i64>>,
}

impl DownloadCounter {
    pub fn record(&self, name: &str, version: &str) {
        let key = (name.to_owned(), version.to_owned(), Utc::now().date_naive());
        *self.pending.lock().expect("download counter lock").entry(key).or_default() += 1;
        crate::metrics::downloaded();
    }

    pub fn pending_total(&self) -> i64 {
        self.pending.lock().expect("download counter lock").values().sum()
    }

    /// Adds the pending counts to the database, in transactions of at most [`CHUNK`] keys so the
    /// SQLite write lock is never held for long (one transaction for a busy interval's thousands of
    /// versions held it for seconds, and publishes and logins timed out behind it). Counts of a
    /// chunk that fails are put back, to be retried by the next flush; committed chunks are not.
    #[tracing::instrument(name = "db.flush_downloads", skip_all)]
    pub async fn flush(&self, db: &DatabaseConnection, watch: &Watch) -> AppResult<usize> {
        let mut batch: Vec<(Key, i64)> =
            std::mem::take(&mut *self.pending.lock().expect("download counter lock")).into_iter().collect();
        // Rows are locked package by package, in name order (see `write`).
        batch.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut written = 0;
        let mut chunks = batch.chunks(CHUNK);
        while let Some(chunk) = chunks.next() {
            match write(db, watch, chunk).await {
                Ok(n) => written += n,
                Err(e) => {
                    let mut pending = self.pending.lock().expect("download counter lock");
                    for (k, n) in chunk.iter().chain(chunks.flatten()) {
                        *pending.entry(k.clone()).or_default() += n;
                    }
                    return Err(e);
                }
            }
        }
        Ok(written)
    }
}

/// Keys written per transaction.
const CHUNK: usize = 100;

#[derive(FromQueryResult)]
struct Target {
    version_id: Uuid,
    package_id: Uuid,
    name: String,
    canonical: String,
}

/// The version and package ids of the chunk's keys, read before the write transaction (in one
/// statement), so the transaction holds the write lock only for the writes.
async fn targets(db: &DatabaseConnection, chunk: &[(Key, i64)]) -> AppResult<HashMap<(String, String), (Uuid, Uuid)>> {
    let mut names: Vec<&str> = chunk.iter().map(|((name, _, _), _)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let backend = db.get_database_backend();
    let (list, values) = crate::service::inlist::bind(names);
    let sql = format!(
        "SELECT v.id AS version_id, v.package_id, p.name, v.canonical FROM versions v \
         JOIN packages p ON p.id = v.package_id WHERE p.name IN ({list})"
    );
    let stmt = Statement::from_sql_and_values(backend, numbered(backend, &sql), values);
    Ok(Target::find_by_statement(stmt)
        .all(db)
        .await?
        .into_iter()
        .map(|t| ((t.name, t.canonical), (t.version_id, t.package_id)))
        .collect())
}

async fn write(db: &DatabaseConnection, watch: &Watch, chunk: &[(Key, i64)]) -> AppResult<usize> {
    let ids = targets(db, chunk).await?;
    let (_turn, txn) = crate::db::begin_write(db).await?;
    let backend = txn.get_database_backend();
    let upsert = numbered(
        backend,
        "INSERT INTO version_downloads (version_id, day, count) VALUES (?, ?, ?) \
         ON CONFLICT (version_id, day) DO UPDATE SET count = version_downloads.count + excluded.count",
    );
    let mut written = 0;
    for ((name, version, day), n) in chunk {
        // Downloads are only recorded for versions that exist; one deleted since is skipped.
        let Ok(canonical) = PackageVersion::parse(version).map(|v| v.canonical()) else { continue };
        let Some(&(version_id, package_id)) = ids.get(&(name.clone(), canonical)) else { continue };
        // The package row first, then its version's: the order of every other writer that takes
        // both (yank and publish lock the package row first). In the other order a yank and a
        // flush could each hold a row the other waited for, and PostgreSQL aborted one of them as
        // a deadlock. Keys arrive sorted by name, so concurrent flushes (one per instance) take
        // package rows in the same order too.
        packages::Entity::update_many()
            .col_expr(packages::Column::Downloads, Expr::col(packages::Column::Downloads).add(*n))
            .filter(packages::Column::Id.eq(package_id))
            .exec(&txn)
            .await?;
        versions::Entity::update_many()
            .col_expr(versions::Column::Downloads, Expr::col(versions::Column::Downloads).add(*n))
            .filter(versions::Column::Id.eq(version_id))
            .exec(&txn)
            .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            upsert.clone(),
            [version_id.into(), (*day).into(), (*n).into()],
        ))
        .await?;
        written += 1;
    }
    // Counts show in search and browse pages.
    let generation = crate::service::generation::bump(&txn).await?;
    txn.commit().await?;
    watch.learned(generation);
    Ok(written)
}
