//! Yank and unyank: the only change a published version ever sees. The blob and row stay; a yanked
//! version still downloads but leaves `versions`, `latest_version` and search.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, Set};

use entity::{packages, versions};

use crate::auth::{Scope, Viewer};
use crate::domain::events::EventKind;
use crate::domain::{text, PackageName, PackageVersion, ValidationError};
use crate::error::{AppError, AppResult};
use crate::service::events::NewEvent;
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
    name: &PackageName,
    version: &PackageVersion,
    yanked: bool,
    reason: Option<String>,
) -> AppResult<Yanked> {
    // Everything the client sent is parsed before the budget is charged or any SQL runs (the name
    // and version by the edge).
    let reason = match reason {
        Some(r) => Some(text::prose("reason", &r)?).filter(|r| !r.is_empty()),
        None => None,
    };
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(
            ValidationError::new("reason", format!("a yank reason is at most {MAX_REASON_CHARS} characters")).into()
        );
    }
    state.limits.yank(viewer.user_id)?;
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    // Locked: the package shows the metadata of its latest version, which a concurrent yank or
    // publish of another version would otherwise compute from a state this one is changing.
    let package = pkgs::lock_by_name(&txn, name).await?;
    let row = pkgs::find_version(&txn, package.id, &version.to_string())
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
    a.yank_reason = Set(if yanked { reason } else { None });
    let row = a.update(&txn).await?;
    // The latest version may have changed: the package shows the metadata of its new latest.
    let package = vers::show_latest_metadata(&txn, package, Utc::now()).await?;
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
    let kind = if yanked { EventKind::VersionYanked } else { EventKind::VersionUnyanked };
    let event = NewEvent::new(kind, &package.name, Some(&row.num), viewer.user_id);
    crate::service::generation::bump_and_commit_with(state, txn, &[event]).await?;
    crate::metrics::yanked(&package.name, &row.num, yanked);
    Ok(Yanked { package, version: row })
}
