//! Database connection and migrations, for both backends.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::Config;

/// Connects with pool settings that suit each backend. SQLite gets WAL (readers never block the
/// writer), synchronous=NORMAL (durable at checkpoints, safe with WAL) and a busy timeout, so
/// concurrent writers queue instead of failing.
/// Also returns a counter of every statement the connection runs (the N+1 test and metrics read it).
pub async fn connect(cfg: &Config) -> anyhow::Result<(DatabaseConnection, Arc<AtomicU64>)> {
    let url = cfg.database_url();
    let sqlite = url.starts_with("sqlite:");
    if sqlite && cfg.database_url.is_none() {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| anyhow::anyhow!("DATA_DIR {}: {e}", cfg.data_dir.display()))?;
    }
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(cfg.db_max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(cfg.db_acquire_timeout_secs))
        .connect_timeout(Duration::from_secs(cfg.db_acquire_timeout_secs))
        // Lost PostgreSQL connections are noticed before use, so an outage heals without a restart.
        .test_before_acquire(!sqlite)
        .sqlx_logging(false);
    if sqlite {
        // An in-memory database lives only as long as one of its connections.
        opts.idle_timeout(None::<Duration>).max_lifetime(None::<Duration>);
        let cache = format!("-{}", cfg.sqlite_cache_kib);
        let statements = cfg.sqlite_statement_cache as usize;
        opts.map_sqlx_sqlite_opts(move |o| {
            o.pragma("cache_size", cache.clone())
                .statement_cache_capacity(statements)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        });
    }
    if sqlite {
        // WAL is a property of the file. Switching a fresh file to it takes an exclusive lock, and
        // pool connections opening at once and each switching it failed at start with "database
        // is locked" (seen on first starts). One connection switches it first; later ones find
        // the file in WAL already.
        let mut first = opts.clone();
        first.max_connections(1).min_connections(1);
        let db = Database::connect(first).await.map_err(|e| anyhow::anyhow!("cannot connect to DATABASE_URL: {e}"))?;
        db.close().await.ok();
    }
    let mut db = Database::connect(opts).await.map_err(|e| anyhow::anyhow!("cannot connect to DATABASE_URL: {e}"))?;
    let statements = Arc::new(AtomicU64::new(0));
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    Ok((db, statements))
}

/// The serving lock on a SQLite database file, held for the process's life (dropping it unlocks).
pub struct SqliteLock(#[allow(dead_code)] std::fs::File);

/// Takes this process's exclusive lock on the SQLite database file (`<file>.lock` beside it), so
/// that this process is the file's only writer: its caches then trust the catalog generation
/// without asking (see `service::generation`), and two servers never split one file's writes.
/// A second process on the same file is refused here, with the holder's pid when known. None for
/// PostgreSQL and in-memory SQLite.
pub fn lock_sqlite(db: &DatabaseConnection) -> anyhow::Result<Option<SqliteLock>> {
    use std::io::Write;
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return Ok(None);
    }
    let file = db.get_sqlite_connection_pool().connect_options().get_filename().to_path_buf();
    if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
        return Ok(None);
    }
    let mut path = file.clone().into_os_string();
    path.push(".lock");
    let path = PathBuf::from(path);
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let by = if holder.is_empty() { String::new() } else { format!(" (process {holder})") };
            anyhow::bail!(
                "the SQLite database {} is already in use by another raven-registry process{by}: one \
                 process serves a SQLite file. Stop that process first, or use PostgreSQL (DATABASE_URL) \
                 to run several instances",
                file.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => anyhow::bail!("cannot lock {}: {e}", path.display()),
    }
    lock.set_len(0).ok();
    write!(lock, "{}", std::process::id()).ok();
    Ok(Some(SqliteLock(lock)))
}

/// Applies pending migrations; already-applied ones are skipped, so this is safe on every start.
#[tracing::instrument(name = "db.migrate", skip(db))]
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    // Instances starting together on a fresh database race to record the same migration; the
    // loser's retry finds it applied.
    let mut attempt = 0;
    loop {
        match Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 4 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "migration attempt failed; retrying");
                tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("migration failed: {e}")),
        }
    }
}

/// How long a SQLite writer waits for the write lock, in this process's queue and then in SQLite's
/// busy handler, before its request is answered 503.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One write-queue per SQLite file in this process (see `begin_write`).
static WRITE_QUEUES: std::sync::LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    std::sync::LazyLock::new(Default::default);

/// This process's turn to write to a SQLite file: held until the transaction ends. Declare it
/// before the transaction (`let (_turn, txn) = ...`) so the transaction is dropped first.
pub struct WriteTurn(#[allow(dead_code)] Option<tokio::sync::OwnedMutexGuard<()>>);

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
/// up front, where the busy timeout applies, instead of at the first write of a deferred
/// transaction, where a competing writer makes SQLite fail at once with "database is locked".
///
/// SQLite also has one writer at a time, and a writer that finds the lock taken sleeps in SQLite's
/// busy handler (1, 2, 5, 10 ... 100 ms) instead of being woken when the lock frees: four
/// concurrent publishes left the lock idle most of the time (p99 196 ms). So this process's
/// writers first queue on an async mutex per database file and are woken in turn; another process
/// on the same file still meets the busy timeout. PostgreSQL locks rows and needs no queue.
pub async fn begin_write(db: &DatabaseConnection) -> Result<(WriteTurn, sea_orm::DatabaseTransaction), sea_orm::DbErr> {
    use sea_orm::{DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let turn = if db.get_database_backend() == DbBackend::Sqlite {
        let file = db.get_sqlite_connection_pool().connect_options().get_filename().to_path_buf();
        let queue = WRITE_QUEUES.lock().expect("write queues").entry(file).or_default().clone();
        match tokio::time::timeout(SQLITE_BUSY_TIMEOUT, queue.lock_owned()).await {
            Ok(guard) => Some(guard),
            Err(_) => return Err(sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)),
        }
    } else {
        None
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok((WriteTurn(turn), txn))
}

/// Numbers `?` placeholders as `$n` for PostgreSQL.
pub fn numbered(backend: sea_orm::DbBackend, text: &str) -> String {
    if backend != sea_orm::DbBackend::Postgres {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}
