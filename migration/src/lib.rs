//! Schema migrations for raven-registry. The same migrations run on SQLite and PostgreSQL; the few
//! backend-specific pieces (full-text search) branch on `manager.get_database_backend()`.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261125_000002_search_index;
mod m20261125_000003_catalog_generation;
mod m20261203_000001_events;
mod m20261203_000004_name_folded;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000002_search_index::Migration),
            Box::new(m20261125_000003_catalog_generation::Migration),
            Box::new(m20261203_000001_events::Migration),
            Box::new(m20261203_000004_name_folded::Migration),
        ]
    }
}
