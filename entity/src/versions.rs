//! `versions` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub package_id: Uuid,
    /// The version as published (may carry build metadata).
    pub num: String,
    /// The version without build metadata; unique per package.
    pub canonical: String,
    /// JSON array of author strings.
    pub authors: String,
    pub description: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    /// Comma-separated keywords as published with this version.
    pub keywords: String,
    pub readme: Option<String>,
    pub sha256: String,
    pub size_bytes: i64,
    pub yanked: bool,
    pub yanked_at: Option<DateTimeUtc>,
    pub yank_reason: Option<String>,
    pub published_by: Option<Uuid>,
    pub published_at: DateTimeUtc,
    /// Denormalised total, maintained by the download flusher.
    pub downloads: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
