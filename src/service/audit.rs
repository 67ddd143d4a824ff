//! The audit trail: who did what. Written inside the same transaction as the change it records.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use uuid::Uuid;

use crate::error::AppResult;

pub struct AuditEntry<'a> {
    pub actor: Option<Uuid>,
    pub action: &'a str,
    pub package: Option<&'a str>,
    pub version: Option<&'a str>,
    pub details: serde_json::Value,
}

pub async fn record(db: &impl ConnectionTrait, e: AuditEntry<'_>) -> AppResult<()> {
    entity::audit_log::ActiveModel {
        id: Set(Uuid::new_v4()),
        actor_id: Set(e.actor),
        action: Set(e.action.to_owned()),
        package_name: Set(e.package.map(str::to_owned)),
        version: Set(e.version.map(str::to_owned)),
        details: Set(e.details.to_string()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Shorthand for account-level entries (no package).
pub fn account(actor: Uuid, action: &str, details: serde_json::Value) -> AuditEntry<'_> {
    AuditEntry { actor: Some(actor), action, package: None, version: None, details }
}
