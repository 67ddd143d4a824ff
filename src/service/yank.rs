//! Yank and unyank: the only change a published version ever sees. The blob and row stay; a yanked
//! version still downloads but leaves `versions`, `latest_version` and search.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, Set};

use entity::{packages, versions};

use crate::auth::{Scope, Viewer};
use crate::error::{AppError, AppResult};
use crate::service::packages::{self as pkgs, Role};
use crate::service::{audit, versions as vers};
use crate::state::AppState;

pub struct Yanked {
    pub package: packages::Model,
    pub version: versions::Model,
}

const MAX_REASON_CHARS: usize = 500;

#[tracing::instrument(name = "yank", skip(state, viewer, reason), fields(user_id = %viewer.user_id))]
pub async fn set_yanked(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    version: &str,
    yanked: bool,
    reason: Option<String>,
) -> AppResult<Yanked> {
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(crate::domain::ValidationError::new(
            "reason",
            format!("a yank reason is at most {MAX_REASON_CHARS} characters"),
        )
        .into());
    }
    state.limits.yank(viewer.user_id)?;
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    // Locked: the package shows the metadata of its latest version, which a concurrent yank or
    // publish of another version would otherwise compute from a state this one is changing.
    let package = pkgs::lock_by_name(&txn, name).await?;
    let row = pkgs::find_version(&txn, package.id, version)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("{name} {version} not found")))?;
    pkgs::authorise(&txn, viewer, &package, Scope::Yank, Role::Maintainer).await?;
    if row.yanked == yanked {
        // Idempotent: yanking a yanked version changes nothing and is not audited again.
        txn.commit().await?;
        return Ok(Yanked { package, version: row });
    }
    let mut a: versions::ActiveModel = row.into();
    a.yanked = Set(yanked);
    a.yanked_at = Set(yanked.then(Utc::now));
    a.yank_reason = Set(if yanked { reason.filter(|r| !r.trim().is_empty()) } else { None });
    let row = a.update(&txn).await?;
    // The latest version may have changed: the package shows the metadata of its new latest.
    let latest = vers::latest_for_packages(&txn, &[package.id]).await?;
    let mut p: packages::ActiveModel = package.clone().into();
    if let Some(v) = latest.get(&package.id) {
        p.description = Set(v.description.clone());
        p.license = Set(v.license.clone());
        p.repository = Set(v.repository.clone());
        p.homepage = Set(v.homepage.clone());
    }
    p.updated_at = Set(Utc::now());
    let package = p.update(&txn).await?;
    audit::record(
        &txn,
        audit::AuditEntry {
            actor: Some(viewer.user_id),
            action: if yanked { "yank" } else { "unyank" },
            package: Some(&package.name),
            version: Some(&row.num),
            details: serde_json::json!({ "reason": row.yank_reason }),
        },
    )
    .await?;
    crate::service::generation::bump(&txn).await?;
    txn.commit().await?;
    crate::metrics::yanked(&package.name, &row.num, yanked);
    Ok(Yanked { package, version: row })
}
