//! Bulk publishing, for an operator loading a catalogue (the `seed` command): many versions, each
//! checked exactly as a publish checks it, written in one transaction.
//!
//! Why a second path: every publish ends by raising the catalog generation, whose row lock every
//! writer takes, so on PostgreSQL publishes commit one at a time and a load of 200,000 versions was
//! paced by 200,000 commits (about 25 minutes); on SQLite each commit also takes the file's one
//! write lock. Here a batch costs one commit and one raise. The rows are the same rows, written by
//! the same code ([`publish::insert_rows`]).
//!
//! A batch is all or nothing: any refusal refuses the batch before anything is stored, and a failed
//! transaction removes every blob the batch put. Its dependencies must already exist (a batch is
//! checked before any of it is written), and it names each package at most once.
use std::collections::HashSet;

use chrono::Utc;
use futures::StreamExt;

use crate::auth::Viewer;
use crate::domain::Username;
use crate::error::{AppError, AppResult};
use crate::service::packages::Role;
use crate::service::publish::{self, Claimed, Published, Tarball};
use crate::service::validate::{validate, Checked, Mode};
use crate::service::{accounts, owners};
use crate::state::AppState;
use crate::storage::Storage;

/// The most versions one batch may hold: the batch holds SQLite's write lock (and on PostgreSQL
/// the generation row's) for its whole transaction, which every other writer waits out.
pub const MAX_BATCH: usize = 256;

/// One version of a batch, published as `viewer`, who then gives `owners` their roles on the
/// package (as `owners::add` would: the viewer must be an owner).
pub struct BulkItem {
    pub viewer: Viewer,
    pub tarball: Tarball,
    pub owners: Vec<(Username, Role)>,
}

/// An item that passed every check, with the accounts its owners name.
struct Ready {
    viewer: Viewer,
    existing: Option<entity::packages::Model>,
    checked: Checked,
    owners: Vec<(entity::users::Model, Role)>,
}

/// Publishes every item, or none. `checks` tarballs are inflated and checked at once.
#[tracing::instrument(name = "publish.bulk", skip_all, fields(items = items.len()))]
pub async fn publish_many(state: &AppState, items: Vec<BulkItem>, checks: usize) -> AppResult<Vec<Published>> {
    if items.len() > MAX_BATCH {
        return Err(AppError::BadRequest(format!(
            "a bulk publish holds at most {MAX_BATCH} versions, not {}",
            items.len()
        )));
    }
    // Checked in order (the results keep the items' order), `checks` at a time.
    let validated: Vec<AppResult<Ready>> =
        futures::stream::iter(items.into_iter().map(|item| check(state, item))).buffered(checks.max(1)).collect().await;
    let ready: Vec<Ready> = validated.into_iter().collect::<AppResult<_>>()?;
    let mut names = HashSet::new();
    for r in &ready {
        let c = &r.checked;
        if !names.insert(c.manifest.name.as_str()) {
            return Err(AppError::BadRequest(format!(
                "{} appears more than once in one bulk publish: publish its versions in separate batches",
                c.manifest.name
            )));
        }
    }

    // Blobs go up `checks` at a time: each is a few storage round trips (local files through the
    // blocking pool, or S3 requests), which a profile of the seed showed waiting one after another.
    let puts: Vec<(object_store::path::Path, AppResult<()>)> =
        futures::stream::iter(ready.iter().map(|r| async move {
            let c = &r.checked;
            let key = Storage::key(c.manifest.name.as_str(), &c.manifest.version.to_string());
            let outcome = publish::put_blob_once(state, &key, c.bytes.clone(), r.existing.as_ref(), &c.manifest).await;
            (key, outcome)
        }))
        .buffered(checks.max(1))
        .collect()
        .await;
    let mut put = Vec::with_capacity(puts.len());
    let mut outcome = Ok(());
    for (key, result) in puts {
        match result {
            Ok(()) => put.push(key),
            Err(e) if outcome.is_ok() => outcome = Err(e),
            Err(_) => {}
        }
    }
    let written = match outcome {
        Ok(()) => write_all(state, ready).await,
        Err(e) => Err(e),
    };
    match written {
        Ok(published) => {
            for p in &published {
                crate::metrics::published(&p.package.name, &p.version.num);
            }
            Ok(published)
        }
        Err(e) => {
            // Nothing committed: no blob of this batch may stay behind.
            for key in &put {
                if let Err(de) = state.storage.delete(key).await {
                    tracing::error!(error = %de, key = %key, "could not delete the blob of a failed bulk publish; fsck --repair will");
                }
            }
            Err(e)
        }
    }
}

/// Every check of a publish, and the accounts the item's owners name.
async fn check(state: &AppState, item: BulkItem) -> AppResult<Ready> {
    let v = validate(state, &item.viewer, item.tarball, &Claimed::default(), Mode::Publish).await?;
    let checked = match (v.checked, v.collected.problems.is_empty()) {
        (Some(checked), true) => checked,
        _ => {
            return Err(v
                .collected
                .into_error()
                .unwrap_or_else(|| AppError::internal(anyhow::anyhow!("a refused publish without a problem"))))
        }
    };
    let mut owners = Vec::with_capacity(item.owners.len());
    for (username, role) in item.owners {
        state.limits.owners(item.viewer.user_id)?;
        let user = accounts::find_by_username(state, &username)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no user {username}")))?;
        owners.push((user, role));
    }
    Ok(Ready { viewer: item.viewer, existing: v.existing, checked, owners })
}

/// One transaction for the whole batch, one generation raise numbering all its events.
#[tracing::instrument(name = "db.publish.bulk", skip_all)]
async fn write_all(state: &AppState, ready: Vec<Ready>) -> AppResult<Vec<Published>> {
    let now = Utc::now();
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let mut published = Vec::with_capacity(ready.len());
    let mut events = Vec::new();
    for r in ready {
        let (p, e) = publish::insert_rows(&txn, &r.viewer, r.existing, &r.checked, now).await?;
        events.extend(e);
        for (user, role) in r.owners {
            let (_, _, e) = owners::add_in(&txn, &r.viewer, &r.checked.manifest.name, user, role).await?;
            events.extend(e);
        }
        published.push(p);
    }
    crate::service::generation::bump_and_commit_with(state, txn, &events).await?;
    Ok(published)
}
