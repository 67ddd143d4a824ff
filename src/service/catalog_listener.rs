//! PostgreSQL: learn of other instances' catalog writes by LISTEN/NOTIFY instead of asking the
//! database on reads. Every generation bump notifies `generation::CHANNEL` with the new value
//! (delivered at commit); this task feeds those values to the instance's [`Watch`] and marks it
//! notified while the listening connection is known to be alive, so cached reads run no SQL.
//!
//! When the connection drops (or stops answering the liveness check) the watch falls back to its
//! bounded poll (`GENERATION_MAX_AGE_MS`) until a new connection listens again and has read the
//! current value, so no write is missed across the gap.
use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};

use crate::service::generation::{Watch, CHANNEL};

/// With no notification for this long, the listening connection is asked for the value (which
/// also proves it alive): a connection that died silently is noticed within this bound plus the
/// query's own timeout.
const LIVENESS: Duration = Duration::from_secs(1);
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_secs(1);

/// Starts the listener for `watch` on `pool`; it ends when the watch is dropped.
pub fn spawn(pool: PgPool, watch: &Arc<Watch>) {
    let watch = Arc::downgrade(watch);
    tokio::spawn(async move {
        loop {
            match listen(&pool, &watch).await {
                Ok(()) => return, // the watch (the app) is gone
                Err(e) => {
                    if let Some(w) = watch.upgrade() {
                        w.set_notified(false);
                    }
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "catalog listener lost; reads poll the generation until it reconnects");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    });
}

/// One listening connection's life: Ok when the watch is gone, Err when the connection failed.
async fn listen(pool: &PgPool, watch: &Weak<Watch>) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // LISTEN first, then read: a write committing in between is both read and notified.
    let value = read(&mut listener).await?;
    {
        let Some(w) = watch.upgrade() else { return Ok(()) };
        w.learned(value);
        w.set_notified(true);
    }
    tracing::info!("catalog listener connected: cached reads trust notifications");
    loop {
        match tokio::time::timeout(LIVENESS, listener.try_recv()).await {
            Ok(Ok(Some(n))) => {
                let Some(w) = watch.upgrade() else { return Ok(()) };
                match n.payload().parse::<i64>() {
                    Ok(v) => w.learned(v),
                    Err(_) => tracing::warn!(payload = n.payload(), "unexpected catalog notification payload"),
                }
            }
            // `try_recv` reports a lost connection as None.
            Ok(Ok(None)) => return Err(lost()),
            Ok(Err(e)) => return Err(e),
            Err(_quiet) => {
                let value = read(&mut listener).await?;
                let Some(w) = watch.upgrade() else { return Ok(()) };
                w.learned(value);
            }
        }
    }
}

/// The current value, read on the listening connection itself.
async fn read(listener: &mut PgListener) -> Result<i64, sea_orm::sqlx::Error> {
    let q = sea_orm::sqlx::query_scalar::<_, i64>("SELECT value FROM catalog_generation WHERE id = 1");
    match tokio::time::timeout(QUERY_TIMEOUT, q.fetch_one(&mut *listener)).await {
        Ok(r) => r,
        Err(_) => Err(sea_orm::sqlx::Error::PoolTimedOut),
    }
}

fn lost() -> sea_orm::sqlx::Error {
    sea_orm::sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "listening connection lost"))
}
