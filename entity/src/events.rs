//! `events` table: the catalog's change feed, one row per event, in `seq` order.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// `generation * 1000 + ordinal`: the catalog generation of the write, then the event's place
    /// within it. Grows in commit order (with gaps).
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// PACKAGE_CREATED, VERSION_PUBLISHED, VERSION_YANKED, VERSION_UNYANKED, OWNER_ADDED, OWNER_REMOVED.
    pub kind: String,
    pub package: String,
    pub version: Option<String>,
    pub actor_id: Option<Uuid>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
