//! Download counting: each full download bumps an in-memory counter keyed by package name, version
//! and UTC day; a flusher adds the counts to the database every few seconds and at shutdown. Keying
//! by name (not row id) lets downloads be counted while the database is unreachable.
use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Statement};

use entity::{packages, versions};

use crate::error::AppResult;
use crate::service::packages as pkgs;

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

    /// Adds the pending counts to the database in one transaction. On failure the counts are put
    /// back, to be retried by the next flush.
    #[tracing::instrument(name = "db.flush_downloads", skip_all)]
    pub async fn flush(&self, db: &DatabaseConnection) -> AppResult<usize> {
        let batch: HashMap<Key, i64> = std::mem::take(&mut *self.pending.lock().expect("download counter lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        match write(db, &batch).await {
            Ok(n) => Ok(n),
            Err(e) => {
                let mut pending = self.pending.lock().expect("download counter lock");
                for (k, n) in batch {
                    *pending.entry(k).or_default() += n;
                }
                Err(e)
            }
        }
    }
}

async fn write(db: &DatabaseConnection, batch: &HashMap<Key, i64>) -> AppResult<usize> {
    let txn = crate::db::begin_write(db).await?;
    let backend = txn.get_database_backend();
    let upsert = match backend {
        sea_orm::DbBackend::Postgres => {
            "INSERT INTO version_downloads (version_id, day, count) VALUES ($1, $2, $3) \
             ON CONFLICT (version_id, day) DO UPDATE SET count = version_downloads.count + excluded.count"
        }
        _ => {
            "INSERT INTO version_downloads (version_id, day, count) VALUES (?, ?, ?) \
             ON CONFLICT (version_id, day) DO UPDATE SET count = version_downloads.count + excluded.count"
        }
    };
    let mut written = 0;
    for ((name, version, day), n) in batch {
        let Some(package) = pkgs::find_by_name(&txn, name).await? else { continue };
        let Some(v) = pkgs::find_version(&txn, package.id, version).await? else { continue };
        txn.execute_raw(Statement::from_sql_and_values(backend, upsert, [v.id.into(), (*day).into(), (*n).into()]))
            .await?;
        versions::Entity::update_many()
            .col_expr(versions::Column::Downloads, Expr::col(versions::Column::Downloads).add(*n))
            .filter(versions::Column::Id.eq(v.id))
            .exec(&txn)
            .await?;
        packages::Entity::update_many()
            .col_expr(packages::Column::Downloads, Expr::col(packages::Column::Downloads).add(*n))
            .filter(packages::Column::Id.eq(package.id))
            .exec(&txn)
            .await?;
        written += 1;
    }
    txn.commit().await?;
    Ok(written)
}
