//! Publishing a version: validate everything, put the blob, then one transaction. A refusal leaves
//! nothing behind; a row never exists without its blob.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, EntityTrait, Set};
use uuid::Uuid;

use entity::{dependencies, package_owners, packages, versions};

use crate::auth::{Scope, Viewer};
use crate::domain::{Manifest, PackageName};
use crate::error::{AppError, AppResult};
use crate::service::events::NewEvent;
use crate::service::packages::{self as pkgs, Role};
use crate::service::validate::{validate, Checked, Mode};
use crate::service::{audit, versions as vers};
use crate::state::AppState;
use crate::storage::{PutOutcome, Storage};

/// Name and version a client claims in its metadata; they must agree with raven.toml.
#[derive(Debug, Default, Clone)]
pub struct Claimed {
    pub name: Option<String>,
    pub version: Option<String>,
    /// The caller already charged the publish rate limit (see `charge_rate_limit`).
    pub rate_limit_charged: bool,
}

/// Charges the viewer's publish budget for `name` before any tarball byte is read: a new package
/// draws on the new-package bucket, a new version on the version bucket.
/// (The claimed name must equal raven.toml's, so the edge parses it as a new name would be.)
pub async fn charge_rate_limit(state: &AppState, viewer: &Viewer, name: &PackageName) -> AppResult<()> {
    if !state.limits.enabled {
        return Ok(());
    }
    let exists = pkgs::find_by_name(&state.db, name).await?.is_some();
    state.limits.publish(viewer.user_id, !exists)
}

pub struct Published {
    pub package: packages::Model,
    pub version: versions::Model,
}

/// A tarball as it arrived: spooled to a file (GraphQL uploads, which async-graphql spools) or
/// held in memory (REST). The blob write needs every byte in memory anyway, so a REST upload is not
/// spooled: the file's create, write, reopen and unlink were a good part of a publish's syscalls.
pub enum Tarball {
    File(std::fs::File),
    Bytes(bytes::Bytes),
}

/// Publishes `tarball` (already size-limited by the transport).
#[tracing::instrument(name = "publish", skip_all, fields(user_id = %viewer.user_id, package = tracing::field::Empty))]
pub async fn publish(state: &AppState, viewer: &Viewer, tarball: Tarball, claimed: Claimed) -> AppResult<Published> {
    let validated = validate(state, viewer, tarball, &claimed, Mode::Publish).await?;
    let (Some(checked), true) = (validated.checked, validated.collected.problems.is_empty()) else {
        return Err(validated
            .collected
            .into_error()
            .unwrap_or_else(|| AppError::internal(anyhow::anyhow!("a refused publish without a problem"))));
    };
    let existing = validated.existing;
    let m = &checked.manifest;
    tracing::Span::current().record("package", m.name.as_str());

    // The blob goes first, created only if absent: of two racing publishes exactly one writes it,
    // and the loser never touches the winner's blob.
    let version_text = m.version.to_string();
    let key = Storage::key(m.name.as_str(), &version_text);
    put_blob_once(state, &key, checked.bytes.clone(), existing.as_ref(), m).await?;

    match write_rows(state, viewer, existing, &checked).await {
        Ok(p) => {
            crate::metrics::published(m.name.as_str(), &version_text);
            Ok(p)
        }
        Err(e) => {
            // The transaction did not commit: remove the blob so no orphan is left behind.
            if let Err(de) = state.storage.delete(&key).await {
                tracing::error!(error = %de, key = %key, "could not delete the blob of a failed publish; fsck --repair will");
            }
            Err(e)
        }
    }
}

/// A blob already under the key is either a racing publish, or the orphan of a crash between blob
/// and commit. Orphans (older than a publish can take, with no version row) are replaced.
pub(crate) async fn put_blob_once(
    state: &AppState,
    key: &object_store::path::Path,
    bytes: bytes::Bytes,
    existing: Option<&packages::Model>,
    m: &Manifest,
) -> AppResult<()> {
    const ORPHAN_AGE_SECS: i64 = 15 * 60;
    if state.storage.put_new(key, bytes.clone()).await? == PutOutcome::Created {
        return Ok(());
    }
    if let Some(p) = existing {
        if pkgs::find_version(&state.db, p.id, &m.version.to_string()).await?.is_some() {
            return Err(version_exists(m));
        }
    }
    let age = state.storage.age_secs(key).await?;
    if age < ORPHAN_AGE_SECS {
        return Err(AppError::Conflict(format!("{} {} is being published by another request", m.name, m.version)));
    }
    tracing::warn!(key = %key, age, "replacing an orphan blob left by an interrupted publish");
    state.storage.delete(key).await?;
    match state.storage.put_new(key, bytes).await? {
        PutOutcome::Created => Ok(()),
        PutOutcome::AlreadyExists => {
            Err(AppError::Conflict(format!("{} {} is being published by another request", m.name, m.version)))
        }
    }
}

/// One transaction: the rows of [`insert_rows`], then the generation raise and the commit.
#[tracing::instrument(name = "db.publish", skip_all)]
async fn write_rows(
    state: &AppState,
    viewer: &Viewer,
    existing: Option<packages::Model>,
    c: &Checked,
) -> AppResult<Published> {
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let (published, events) = insert_rows(&txn, viewer, existing, c, Utc::now()).await?;
    // Last, so concurrent publishes on PostgreSQL queue on the counter's row only for the commit.
    crate::service::generation::bump_and_commit_with(state, txn, &events).await?;
    Ok(published)
}

/// The package (if new) with its first owner, the version, its dependencies, the package metadata
/// when this is now the latest version, and the audit row; and the feed's events for them.
pub(crate) async fn insert_rows(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    existing: Option<packages::Model>,
    c: &Checked,
    now: chrono::DateTime<Utc>,
) -> AppResult<(Published, Vec<NewEvent>)> {
    let m = &c.manifest;
    // A new package is created with this version's metadata; only its keywords remain to write.
    let is_new = existing.is_none();
    let package = match existing {
        // Locked, then authorised again: the checks before the upload ran outside this transaction.
        // A concurrent owner change has either committed (and is seen here) or waits for this
        // commit, and a concurrent publish of another version or a yank waits too, so the latest
        // version chosen below is the latest one.
        Some(p) => {
            let p = pkgs::lock_by_id(txn, p.id).await?;
            pkgs::authorise(txn, viewer, &p, Scope::PublishUpdate, Role::Maintainer).await?;
            p
        }
        None => {
            let p = packages::ActiveModel {
                id: Set(Uuid::new_v4()),
                name: Set(m.name.as_str().to_owned()),
                name_folded: Set(crate::domain::confusable::fold_name(m.name.as_str())),
                description: Set(m.description.clone()),
                license: Set(m.license.clone()),
                repository: Set(m.repository.clone()),
                homepage: Set(m.homepage.clone()),
                keywords_text: Set(m.keywords.join(" ")),
                downloads: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(txn)
            .await
            .map_err(|e| match AppError::from(e) {
                AppError::Conflict(_) => {
                    AppError::Conflict(format!("{} was just created by another publish; retry", m.name))
                }
                other => other,
            })?;
            package_owners::ActiveModel {
                package_id: Set(p.id),
                user_id: Set(viewer.user_id),
                role: Set(Role::Owner.as_str().to_owned()),
                added_at: Set(now),
            }
            .insert(txn)
            .await?;
            p
        }
    };
    let version = versions::ActiveModel {
        id: Set(Uuid::new_v4()),
        package_id: Set(package.id),
        num: Set(m.version.to_string()),
        canonical: Set(m.version.canonical()),
        authors: Set(serde_json::to_string(&m.authors).map_err(AppError::internal)?),
        description: Set(m.description.clone()),
        license: Set(m.license.clone()),
        repository: Set(m.repository.clone()),
        homepage: Set(m.homepage.clone()),
        keywords: Set(m.keywords.join(",")),
        readme: Set(c.readme.clone()),
        sha256: Set(c.sha256.clone()),
        size_bytes: Set(c.size as i64),
        yanked: Set(false),
        yanked_at: Set(None),
        yank_reason: Set(None),
        published_by: Set(Some(viewer.user_id)),
        published_at: Set(now),
        downloads: Set(0),
    }
    .insert(txn)
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => version_exists(m),
        other => other,
    })?;
    if !m.dependencies.is_empty() {
        dependencies::Entity::insert_many(m.dependencies.iter().map(|d| dependencies::ActiveModel {
            id: Set(Uuid::new_v4()),
            version_id: Set(version.id),
            name: Set(d.name.as_str().to_owned()),
            req: Set(d.req.clone()),
            kind: Set(d.kind.as_str().to_owned()),
        }))
        .exec(txn)
        .await?;
    }
    // Statements in this transaction hold SQLite's single write lock, so a new package skips
    // the latest-version query and the metadata rewrite it would only repeat.
    let package = if is_new {
        vers::insert_keywords(txn, package.id, &m.keywords).await?;
        package
    } else {
        vers::show_latest_metadata(txn, package, now).await?
    };
    audit::record(
        txn,
        audit::AuditEntry {
            actor: Some(viewer.user_id),
            action: "publish",
            package: Some(m.name.as_str()),
            version: Some(&version.num),
            details: serde_json::json!({ "sha256": c.sha256, "size_bytes": c.size }),
        },
    )
    .await?;
    let events = crate::service::events::published(is_new, m.name.as_str(), &version.num, viewer.user_id);
    Ok((Published { package, version }, events))
}

fn version_exists(m: &Manifest) -> AppError {
    AppError::Conflict(format!("{} {} is already published", m.name, m.version))
}
