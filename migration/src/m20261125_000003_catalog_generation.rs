//! A counter that every catalog write raises in its own transaction. Readers compare it with the
//! value their cached answers were computed at, so a cache in any instance stays as current as the
//! database (see `src/service/generation.rs`).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogGeneration {
    Table,
    Id,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CatalogGeneration::Table)
                .if_not_exists()
                .col(ColumnDef::new(CatalogGeneration::Id).integer().not_null().primary_key())
                .col(ColumnDef::new(CatalogGeneration::Value).big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        // The one row; a second start finds it and inserts nothing.
        let insert = Query::insert()
            .into_table(CatalogGeneration::Table)
            .columns([CatalogGeneration::Id, CatalogGeneration::Value])
            .values_panic([1.into(), 0i64.into()])
            .on_conflict(OnConflict::column(CatalogGeneration::Id).do_nothing().to_owned())
            .to_owned();
        m.exec_stmt(insert).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CatalogGeneration::Table).if_exists().to_owned()).await
    }
}
