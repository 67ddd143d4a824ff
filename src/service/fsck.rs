//! `raven-registry fsck`: blobs against version rows.
//!
//! Every version row must have its blob under `Storage::key(name, num)` with the recorded size and
//! sha256; every blob must be owned by a version row. `--repair` deletes orphan blobs (blobs no
//! version owns) and nothing else: a version row, or a blob a version owns, is never touched.
//!
//! A blob is written before its version row commits, so a blob that was written moments ago may
//! belong to a publish still in flight. Orphans younger than [`ORPHAN_MIN_AGE`] are reported but
//! left alone by `run` (the same rule the publish service applies before replacing an orphan);
//! [`run_with`] lets a caller that knows no publish is running choose another age.
//!
//! On local storage, object_store writes a blob as a staging file (`<key>#<n>`) and renames it into
//! place; it never lists staging files, so one left by a process killed mid-write would stay
//! forever. fsck finds them on disk and `--repair` deletes those older than the same minimum age.
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use entity::{packages, versions};

use crate::state::AppState;
use crate::storage::{Storage, StorageError};

/// Orphans younger than this may be the blob of a publish that has not committed yet.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(15 * 60);

/// Version rows read per query.
const PAGE: u64 = 500;
/// Blobs hashed at once.
const PARALLEL: usize = 4;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Delete orphan blobs.
    pub repair: bool,
    /// Only orphans at least this old are deleted; younger ones are reported and kept.
    pub orphan_min_age: Duration,
}

impl Options {
    pub fn new(repair: bool) -> Options {
        Options { repair, orphan_min_age: ORPHAN_MIN_AGE }
    }
}

/// What is wrong with the blob of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobFault {
    /// No blob under the version's key.
    Missing,
    /// The blob's size differs from the recorded size.
    WrongSize { recorded: i64, stored: u64 },
    /// Same size, different content.
    WrongSha256 { recorded: String, stored: String },
    /// The storage could not be read (the blob may be fine).
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionProblem {
    pub package: String,
    pub version: String,
    pub key: String,
    pub fault: BlobFault,
}

/// What fsck did with an orphan blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanState {
    /// Reported only (no `--repair`).
    Found,
    /// Deleted by `--repair`.
    Removed,
    /// Younger than the minimum age: possibly a publish in flight, left alone.
    TooRecent { age_secs: i64 },
    /// `--repair` tried and failed.
    RemoveFailed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub key: String,
    pub state: OrphanState,
}

#[derive(Debug, Default)]
pub struct Report {
    pub repair: bool,
    pub versions_checked: u64,
    pub blobs_listed: u64,
    /// Versions whose blob is missing, corrupt or unreadable, in (package, version) order.
    pub versions: Vec<VersionProblem>,
    /// Blobs no version owns, in key order.
    pub orphans: Vec<Orphan>,
    /// Staging files of the local store left by an interrupted write (`<key>#<n>`), in path order.
    pub staging: Vec<Orphan>,
}

impl Report {
    /// No problem left: every version has its intact blob, and every orphan has been removed.
    pub fn is_clean(&self) -> bool {
        self.versions.is_empty() && self.orphans.iter().chain(&self.staging).all(|o| o.state == OrphanState::Removed)
    }

    pub fn missing(&self) -> impl Iterator<Item = &VersionProblem> {
        self.versions.iter().filter(|p| p.fault == BlobFault::Missing)
    }

    pub fn corrupt(&self) -> impl Iterator<Item = &VersionProblem> {
        self.versions.iter().filter(|p| matches!(p.fault, BlobFault::WrongSize { .. } | BlobFault::WrongSha256 { .. }))
    }

    pub fn unreadable(&self) -> impl Iterator<Item = &VersionProblem> {
        self.versions.iter().filter(|p| matches!(p.fault, BlobFault::Unreadable(_)))
    }

    pub fn orphans_removed(&self) -> usize {
        self.orphans.iter().filter(|o| o.state == OrphanState::Removed).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.versions {
            let what = match &p.fault {
                BlobFault::Missing => "missing blob".to_owned(),
                BlobFault::WrongSize { recorded, stored } => {
                    format!("corrupt blob: size {stored} bytes, recorded {recorded}")
                }
                BlobFault::WrongSha256 { recorded, stored } => {
                    format!("corrupt blob: sha256 {stored}, recorded {recorded}")
                }
                BlobFault::Unreadable(why) => format!("unreadable blob: {why}"),
            };
            writeln!(f, "version {} {}: {what} ({})", p.package, p.version, p.key)?;
        }
        for o in &self.orphans {
            let what = match &o.state {
                OrphanState::Found => "no version owns it (fsck --repair deletes it)".to_owned(),
                OrphanState::Removed => "no version owns it: deleted".to_owned(),
                OrphanState::TooRecent { age_secs } => format!(
                    "no version owns it, but it was written {age_secs}s ago and may belong to a publish in \
                     progress: kept (orphans older than {}s are deleted)",
                    ORPHAN_MIN_AGE.as_secs()
                ),
                OrphanState::RemoveFailed(why) => format!("no version owns it; could not delete it: {why}"),
            };
            writeln!(f, "orphan blob {}: {what}", o.key)?;
        }
        for o in &self.staging {
            let what = match &o.state {
                OrphanState::Found => "left by an interrupted write (fsck --repair deletes it)".to_owned(),
                OrphanState::Removed => "left by an interrupted write: deleted".to_owned(),
                OrphanState::TooRecent { age_secs } => {
                    format!("written {age_secs}s ago, may be a write in progress: kept")
                }
                OrphanState::RemoveFailed(why) => format!("left by an interrupted write; could not delete it: {why}"),
            };
            writeln!(f, "staging file {}: {what}", o.key)?;
        }
        let orphans_left = self.orphans.len() - self.orphans_removed();
        writeln!(
            f,
            "fsck: {} versions checked, {} blobs listed; {} missing, {} corrupt, {} unreadable; {} orphan blobs \
             ({} removed, {} left); {} staging files ({} removed){}",
            self.versions_checked,
            self.blobs_listed,
            self.missing().count(),
            self.corrupt().count(),
            self.unreadable().count(),
            self.orphans.len(),
            self.orphans_removed(),
            orphans_left,
            self.staging.len(),
            self.staging.iter().filter(|o| o.state == OrphanState::Removed).count(),
            if self.is_clean() { ": clean" } else { ": PROBLEMS FOUND" },
        )
    }
}

/// Checks every version against storage and every blob against the versions, with the default
/// minimum orphan age. `repair` deletes orphan blobs only.
pub async fn run(state: &AppState, repair: bool) -> anyhow::Result<Report> {
    run_with(state, Options::new(repair)).await
}

/// A version row with the name of its package.
struct Row {
    package: String,
    num: String,
    sha256: String,
    size: i64,
}

pub async fn run_with(state: &AppState, opts: Options) -> anyhow::Result<Report> {
    // Blobs are listed before the rows are read: a publish that commits in between has its blob
    // listed and its row read, so it can never look like an orphan because of the order.
    let listed = state.storage.list_keys().await.map_err(|e| anyhow::anyhow!("cannot list the blobs: {e}"))?;
    let rows = all_versions(state).await?;
    let mut report = Report { repair: opts.repair, blobs_listed: listed.len() as u64, ..Default::default() };
    report.versions_checked = rows.len() as u64;

    let owned: HashSet<String> = rows.iter().map(|r| Storage::key(&r.package, &r.num).to_string()).collect();
    let storage = &state.storage;
    let mut problems: Vec<VersionProblem> = futures::stream::iter(rows.iter())
        .map(|row| async move { check_blob(storage, row).await })
        .buffer_unordered(PARALLEL)
        .filter_map(|p| async move { p })
        .collect()
        .await;
    problems.sort_by(|a, b| (&a.package, &a.version).cmp(&(&b.package, &b.version)));
    report.versions = problems;

    let mut orphan_keys: Vec<String> = listed.into_iter().filter(|k| !owned.contains(k)).collect();
    orphan_keys.sort();
    for key in orphan_keys {
        let state_of =
            if opts.repair { repair_orphan(state, &key, opts.orphan_min_age).await } else { OrphanState::Found };
        report.orphans.push(Orphan { key, state: state_of });
    }
    if state.config.storage_type == crate::config::StorageType::Local {
        let root = state.config.storage_path();
        report.staging = tokio::task::spawn_blocking(move || staging_files(&root, opts))
            .await
            .map_err(|e| anyhow::anyhow!("staging file scan failed: {e}"))?;
    }
    Ok(report)
}

/// Files named `<something>#<digits>` under the local store's root: object_store's staging files.
fn staging_files(root: &std::path::Path, opts: Options) -> Vec<Orphan> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let staging =
                name.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !staging {
                continue;
            }
            let key = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            let age_secs = meta.modified().ok().and_then(|m| m.elapsed().ok()).map_or(0, |d| d.as_secs() as i64);
            let state = if !opts.repair {
                OrphanState::Found
            } else if age_secs < opts.orphan_min_age.as_secs() as i64 {
                OrphanState::TooRecent { age_secs }
            } else {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::warn!(file = %key, age_secs, "fsck deleted a staging file left by an interrupted write");
                        OrphanState::Removed
                    }
                    Err(e) => OrphanState::RemoveFailed(e.to_string()),
                }
            };
            found.push(Orphan { key, state });
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    found
}

/// Every version row with its package name, read in pages.
async fn all_versions(state: &AppState) -> anyhow::Result<Vec<Row>> {
    let mut names: HashMap<Uuid, String> = packages::Entity::find()
        .select_only()
        .column(packages::Column::Id)
        .column(packages::Column::Name)
        .into_tuple::<(Uuid, String)>()
        .all(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the packages: {e}"))?
        .into_iter()
        .collect();
    let mut rows = Vec::new();
    let mut after: Option<Uuid> = None;
    loop {
        let mut q = versions::Entity::find()
            .select_only()
            .column(versions::Column::Id)
            .column(versions::Column::PackageId)
            .column(versions::Column::Num)
            .column(versions::Column::Sha256)
            .column(versions::Column::SizeBytes)
            .order_by_asc(versions::Column::Id)
            .limit(PAGE);
        if let Some(id) = after {
            q = q.filter(versions::Column::Id.gt(id));
        }
        let page: Vec<(Uuid, Uuid, String, String, i64)> =
            q.into_tuple().all(&state.db).await.map_err(|e| anyhow::anyhow!("cannot read the versions: {e}"))?;
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        let full = page.len() as u64 == PAGE;
        for (id, package_id, num, sha256, size) in page {
            if !names.contains_key(&package_id) {
                // Published after the packages were read (fsck may run next to a live server).
                let p = packages::Entity::find_by_id(package_id)
                    .one(&state.db)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("version {id} belongs to no package ({package_id})"))?;
                names.insert(p.id, p.name);
            }
            rows.push(Row { package: names[&package_id].clone(), num, sha256, size });
        }
        if !full {
            break;
        }
    }
    Ok(rows)
}

/// Streams the blob of `row` through sha256; `None` when it is intact.
async fn check_blob(storage: &Storage, row: &Row) -> Option<VersionProblem> {
    let key = Storage::key(&row.package, &row.num);
    let problem = |fault| {
        Some(VersionProblem { package: row.package.clone(), version: row.num.clone(), key: key.to_string(), fault })
    };
    let (size, mut stream) = match storage.get(&key).await {
        Ok(found) => found,
        Err(StorageError::NotFound(_)) => return problem(BlobFault::Missing),
        Err(e) => return problem(BlobFault::Unreadable(e.to_string())),
    };
    if size != row.size as u64 {
        return problem(BlobFault::WrongSize { recorded: row.size, stored: size });
    }
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    loop {
        match stream.try_next().await {
            Ok(Some(chunk)) => {
                read += chunk.len() as u64;
                hasher.update(&chunk);
            }
            Ok(None) => break,
            Err(e) => return problem(BlobFault::Unreadable(e.to_string())),
        }
    }
    if read != row.size as u64 {
        return problem(BlobFault::WrongSize { recorded: row.size, stored: read });
    }
    let stored = hex::encode(hasher.finalize());
    if stored != row.sha256 {
        return problem(BlobFault::WrongSha256 { recorded: row.sha256.clone(), stored });
    }
    None
}

/// Deletes an orphan blob when it is old enough, after checking once more that no version row
/// claims it (a publish may have committed since the rows were read).
async fn repair_orphan(state: &AppState, key: &str, min_age: Duration) -> OrphanState {
    let path = match object_store::path::Path::parse(key) {
        Ok(p) => p,
        Err(e) => return OrphanState::RemoveFailed(e.to_string()),
    };
    let age_secs = match state.storage.age_secs(&path).await {
        Ok(age) => age,
        Err(StorageError::NotFound(_)) => return OrphanState::Removed,
        Err(e) => return OrphanState::RemoveFailed(e.to_string()),
    };
    if age_secs < min_age.as_secs() as i64 {
        return OrphanState::TooRecent { age_secs };
    }
    match owned_by_a_version(state, key).await {
        Ok(false) => {}
        Ok(true) => return OrphanState::RemoveFailed("a version now owns it (published meanwhile); kept".into()),
        Err(e) => return OrphanState::RemoveFailed(e.to_string()),
    }
    match state.storage.delete(&path).await {
        Ok(()) => {
            tracing::warn!(key, age_secs, "fsck deleted an orphan blob");
            OrphanState::Removed
        }
        Err(e) => OrphanState::RemoveFailed(e.to_string()),
    }
}

/// Whether a version row's key is `key`. Keys are `packages/<name>/<name>-<num>.tar.gz`.
async fn owned_by_a_version(state: &AppState, key: &str) -> anyhow::Result<bool> {
    let Some(name) = key.strip_prefix("packages/").and_then(|rest| rest.split('/').next()) else {
        return Ok(false);
    };
    let Some(package) = packages::Entity::find().filter(packages::Column::Name.eq(name)).one(&state.db).await? else {
        return Ok(false);
    };
    let nums: Vec<String> = versions::Entity::find()
        .select_only()
        .column(versions::Column::Num)
        .filter(versions::Column::PackageId.eq(package.id))
        .into_tuple()
        .all(&state.db)
        .await?;
    Ok(nums.iter().any(|num| Storage::key(&package.name, num).as_ref() == key))
}
