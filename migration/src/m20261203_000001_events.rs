//! The event feed: one row per catalog change (package created, version published, yanked or
//! unyanked, owner added or removed), numbered by the catalog generation of the transaction that
//! wrote it (see `src/service/events/`). `seq` is `generation * 1000 + ordinal`: it grows in commit
//! order, so a reader resuming after a number never skips an event committed later.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    Kind,
    Package,
    Version,
    ActorId,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Events::Table)
                .if_not_exists()
                .col(ColumnDef::new(Events::Seq).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Events::Kind).string_len(32).not_null())
                .col(ColumnDef::new(Events::Package).string_len(64).not_null())
                .col(ColumnDef::new(Events::Version).string_len(64).null())
                // No foreign key: the feed outlives nothing, but it must never block a write.
                .col(ColumnDef::new(Events::ActorId).uuid().null())
                .col(ColumnDef::new(Events::At).timestamp_with_time_zone().not_null())
                .to_owned(),
        )
        .await?;
        // The feed of one package (`package` filter), in order.
        m.create_index(
            Index::create()
                .name("events_package_seq")
                .table(Events::Table)
                .col(Events::Package)
                .col(Events::Seq)
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Events::Table).if_exists().to_owned()).await
    }
}
