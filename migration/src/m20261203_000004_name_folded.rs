//! `packages.name_folded`: each name as `domain::confusable::fold_name` folds it (lowercase,
//! without `-` `_` `.`, look-alikes replaced), indexed, so the names a new name could be taken
//! for are found with one indexed lookup. Existing rows are filled by the same replacements in
//! SQL (the `replace` function is the same on SQLite and PostgreSQL: left to right, no overlap).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Packages {
    Table,
    NameFolded,
}

/// `fold_name` in SQL; keep in step with `HOMOGLYPHS` in `src/domain/confusable.rs`.
const FOLD_SQL: &str = "replace(replace(replace(replace(replace(\
    replace(replace(replace(lower(name), '-', ''), '_', ''), '.', ''), \
    'rn', 'm'), 'vv', 'w'), '0', 'o'), '1', 'l'), 'i', 'l')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Packages::Table)
                .add_column(ColumnDef::new(Packages::NameFolded).string().not_null().default(""))
                .to_owned(),
        )
        .await?;
        m.get_connection().execute_unprepared(&format!("UPDATE packages SET name_folded = {FOLD_SQL}")).await?;
        m.create_index(
            Index::create()
                .name("idx_packages_name_folded")
                .table(Packages::Table)
                .col(Packages::NameFolded)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_packages_name_folded").table(Packages::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Packages::Table).drop_column(Packages::NameFolded).to_owned()).await
    }
}
