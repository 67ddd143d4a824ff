//! Full-text search over name, keywords and description.
//! PostgreSQL: a stored, weighted tsvector column with a GIN index (name A, keywords B, description C).
//! SQLite: an external-content FTS5 table over `packages`, kept in sync by triggers, ranked with bm25.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PG_UP: &[&str] = &[
    "ALTER TABLE packages ADD COLUMN IF NOT EXISTS search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', replace(name, '-', ' ')), 'A') ||
        setweight(to_tsvector('simple', coalesce(keywords_text, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(description, '')), 'C')
     ) STORED",
    "CREATE INDEX IF NOT EXISTS idx_packages_search ON packages USING GIN (search)",
    "CREATE INDEX IF NOT EXISTS idx_packages_name_pattern ON packages (name text_pattern_ops)",
];

const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE IF NOT EXISTS packages_fts USING fts5(
        name, keywords, description, content='packages', content_rowid='rowid',
        tokenize = \"unicode61 tokenchars '_'\"
     )",
    "CREATE TRIGGER IF NOT EXISTS packages_fts_ai AFTER INSERT ON packages BEGIN
        INSERT INTO packages_fts(rowid, name, keywords, description)
        VALUES (new.rowid, new.name, new.keywords_text, coalesce(new.description, ''));
     END",
    "CREATE TRIGGER IF NOT EXISTS packages_fts_ad AFTER DELETE ON packages BEGIN
        INSERT INTO packages_fts(packages_fts, rowid, name, keywords, description)
        VALUES ('delete', old.rowid, old.name, old.keywords_text, coalesce(old.description, ''));
     END",
    "CREATE TRIGGER IF NOT EXISTS packages_fts_au AFTER UPDATE OF name, keywords_text, description ON packages BEGIN
        INSERT INTO packages_fts(packages_fts, rowid, name, keywords, description)
        VALUES ('delete', old.rowid, old.name, old.keywords_text, coalesce(old.description, ''));
        INSERT INTO packages_fts(rowid, name, keywords, description)
        VALUES (new.rowid, new.name, new.keywords_text, coalesce(new.description, ''));
     END",
];

const PG_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS idx_packages_name_pattern",
    "DROP INDEX IF EXISTS idx_packages_search",
    "ALTER TABLE packages DROP COLUMN IF EXISTS search",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS packages_fts_au",
    "DROP TRIGGER IF EXISTS packages_fts_ad",
    "DROP TRIGGER IF EXISTS packages_fts_ai",
    "DROP TABLE IF EXISTS packages_fts",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, PG_UP, SQLITE_UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, PG_DOWN, SQLITE_DOWN).await
    }
}

async fn run(m: &SchemaManager<'_>, pg: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let stmts = match m.get_database_backend() {
        DatabaseBackend::Postgres => pg,
        DatabaseBackend::Sqlite => sqlite,
        other => return Err(DbErr::Migration(format!("unsupported database backend {other:?}"))),
    };
    let db = m.get_connection();
    for sql in stmts {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
