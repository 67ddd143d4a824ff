//! `keywords` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "keywords")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub package_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub keyword: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
