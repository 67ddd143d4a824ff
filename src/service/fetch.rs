//! Serving a version's tarball: where its bytes come from (storage, a redirect, or nothing when the
//! client's copy is current), verified on the way out and counted once complete.
//!
//! The bytes are hashed as they go out: a blob that no longer matches its recorded sha256 is cut
//! off (the client sees a failed transfer, never a complete corrupt file) and logged. When the
//! database is unreachable the tarball still streams, straight from storage by name and version.
use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::domain::{PackageName, PackageVersion};
use crate::error::{AppError, AppResult};
use crate::service::cache::{DownloadTarget, TargetCache};
use crate::service::read::catalog;
use crate::state::AppState;
use crate::storage::{BlobStream, Storage, StorageError};

/// A tarball ready to be answered with.
pub struct Tarball {
    pub package: String,
    pub version: String,
    /// The recorded sha256; None when served from storage alone (the database is away), so
    /// nothing vouches for the bytes and they must not be cached.
    pub sha256: Option<String>,
    pub delivery: Delivery,
}

pub enum Delivery {
    /// The client already holds these bytes (its `held` check matched the sha256).
    NotModified,
    /// The client fetches the bytes at this URL (CDN or presigned); counted when handed over.
    Redirect(String),
    /// The bytes, `size` long; no stream when only the headers were asked for.
    Bytes { size: u64, stream: Option<VerifiedStream> },
}

pub type VerifiedStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The bytes (counted once sent completely).
    Body,
    /// Only what the headers say (HEAD): nothing is streamed or counted.
    Headers,
}

/// The tarball of `name` `version`. `held` is asked whether the client already holds the bytes of
/// a given sha256 (a conditional request).
#[tracing::instrument(name = "fetch.tarball", skip(state, held))]
pub async fn tarball(
    state: &AppState,
    name: &PackageName,
    version: &PackageVersion,
    want: Want,
    held: impl FnOnce(&str) -> bool,
) -> AppResult<Tarball> {
    let target = match target(state, name, version).await {
        Ok(target) => target,
        Err(AppError::Unavailable(why)) => return from_storage_alone(state, want, name, version, why).await,
        Err(e) => return Err(e),
    };
    let (package, num) = (target.package.as_str(), target.version.as_str());
    let tarball = |delivery| Tarball {
        package: package.to_owned(),
        version: num.to_owned(),
        sha256: Some(target.sha256.clone()),
        delivery,
    };
    if held(&target.sha256) {
        return Ok(tarball(Delivery::NotModified));
    }
    let key = Storage::key(package, num);
    if let Some(url) = state.storage.redirect_url(&key).await.map_err(|e| {
        tracing::error!(error = %e, "storage could not sign a download URL");
        AppError::Unavailable(format!("storage: {e}"))
    })? {
        if want == Want::Body {
            state.downloads.record(package, num);
        }
        return Ok(tarball(Delivery::Redirect(url.to_string())));
    }
    // Held in memory: no storage access and no hashing. HEAD of an uncached blob still asks
    // storage below (its size and presence), without reading it.
    let cacheable = state.blobs.admits(target.size);
    if cacheable {
        if let Some(bytes) = state.blobs.get(&target.sha256) {
            return Ok(tarball(whole(state, want, bytes, package, num)));
        }
    }
    if cacheable && want == Want::Body {
        let bytes = verified_blob(state, &key, target.size, &target.sha256).await?;
        state.blobs.insert(&target.sha256, bytes.clone());
        return Ok(tarball(whole(state, want, bytes, package, num)));
    }
    let (size, stream) = state.storage.get(&key).await.map_err(|e| blob_error(&key, e))?;
    if size != target.size {
        tracing::error!(key = %key, stored = size, recorded = target.size, "blob corrupted: size differs from the recorded size");
        return Err(AppError::internal(anyhow::anyhow!("blob {key} has the wrong size")));
    }
    let stream = (want == Want::Body).then(|| {
        let counter = state.downloads.clone();
        let (p, n) = (package.to_owned(), num.to_owned());
        checked_stream(stream, size, Some(target.sha256.clone()), move || counter.record(&p, &n))
    });
    Ok(tarball(Delivery::Bytes { size, stream }))
}

/// What a download of `name` `version` needs of its row: from the target cache, else one
/// statement (a download is the most frequent request there is, and these facts never change).
async fn target(state: &AppState, name: &PackageName, version: &PackageVersion) -> AppResult<Arc<DownloadTarget>> {
    let cache = &state.caches.targets;
    let key = (name.as_str().to_owned(), version.canonical());
    if let Some(target) = cache.get(TargetCache::IMMUTABLE, &key) {
        return Ok(target);
    }
    let row = catalog::version_or_404(state, name, version).await?;
    let v = row.version;
    let target = Arc::new(DownloadTarget {
        package: row.package_name,
        version: v.num,
        sha256: v.sha256,
        size: v.size_bytes as u64,
    });
    cache.put(TargetCache::IMMUTABLE, key, target.clone());
    Ok(target)
}

/// A storage failure on a recorded version's blob. A missing blob is our fault, not the client's:
/// refused and logged.
fn blob_error(key: &object_store::path::Path, e: StorageError) -> AppError {
    match e {
        StorageError::NotFound(_) => {
            tracing::error!(key = %key, "blob missing for a recorded version; run fsck");
            AppError::internal(anyhow::anyhow!("blob {key} is missing"))
        }
        StorageError::Unavailable(why) => {
            tracing::error!(key = %key, error = %why, "storage unreachable for a download");
            AppError::Unavailable(format!("storage: {why}"))
        }
    }
}

/// Answers with verified bytes held in memory: one chunk, counted when it is handed to the
/// connection (as a streamed download is on its last chunk).
fn whole(state: &AppState, want: Want, bytes: bytes::Bytes, package: &str, version: &str) -> Delivery {
    let size = bytes.len() as u64;
    let stream = (want == Want::Body).then(|| {
        let counter = state.downloads.clone();
        let (p, n) = (package.to_owned(), version.to_owned());
        futures::stream::once(async move {
            counter.record(&p, &n);
            Ok(bytes)
        })
        .boxed()
    });
    Delivery::Bytes { size, stream }
}

/// Reads a whole blob and checks it against the version row before any byte goes out: a blob that
/// differs in size or sha256 is refused (500, logged) and never cached.
#[tracing::instrument(name = "storage.get_verified", skip_all, fields(key = %key))]
async fn verified_blob(
    state: &AppState,
    key: &object_store::path::Path,
    size: u64,
    sha256: &str,
) -> AppResult<bytes::Bytes> {
    let bytes = state.storage.get_bytes(key).await.map_err(|e| blob_error(key, e))?;
    if bytes.len() as u64 != size {
        tracing::error!(key = %key, stored = bytes.len(), recorded = size, "blob corrupted: size differs from the recorded size");
        return Err(AppError::internal(anyhow::anyhow!("blob {key} has the wrong size")));
    }
    // Large blobs are hashed on the blocking pool, off the request threads.
    let digest = if bytes.len() > 256 * 1024 {
        let b = bytes.clone();
        tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&b)))
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("hashing task: {e}")))?
    } else {
        hex::encode(Sha256::digest(&bytes))
    };
    if digest != sha256 {
        tracing::error!(key = %key, expected = %sha256, actual = %digest, "blob corrupted: sha256 differs from the recorded checksum");
        return Err(AppError::internal(anyhow::anyhow!("blob {key} fails its checksum")));
    }
    Ok(bytes)
}

/// The database is unreachable: serve the blob stored under `Storage::key(name, version)`.
///
/// A blob exists only for a version that was published (or is being published), so its presence
/// is the answer. Without the row there is no recorded sha256 to check against; the download is
/// counted once it has been sent completely, and the count waits in memory until the database is
/// back. When no blob is there, the database was needed to know why, and the answer stays 503.
async fn from_storage_alone(
    state: &AppState,
    want: Want,
    name: &PackageName,
    version: &PackageVersion,
    db_error: String,
) -> AppResult<Tarball> {
    // Both were parsed, so the key is one a publish could have written (publish keys by the
    // version as SemVer prints it, too).
    let (name, version) = (name.as_str().to_owned(), version.to_string());
    let key = Storage::key(&name, &version);
    let (size, stream) = match state.storage.get(&key).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(key = %key, error = %e, "database unreachable and no blob to serve from storage");
            return Err(AppError::Unavailable(db_error));
        }
    };
    tracing::warn!(key = %key, reason = %db_error, "database unreachable: serving the tarball from storage alone");
    let stream = (want == Want::Body).then(|| {
        let counter = state.downloads.clone();
        let (p, n) = (name.clone(), version.clone());
        checked_stream(stream, size, None, move || counter.record(&p, &n))
    });
    Ok(Tarball { package: name, version, sha256: None, delivery: Delivery::Bytes { size, stream } })
}

/// Passes the blob through, hashing as it goes. The verdict is reached on the chunk that completes
/// `size` bytes, before that chunk is sent: hyper stops polling a body once Content-Length bytes
/// are out, so a check at end-of-stream would never run. A mismatch replaces the last chunk with an
/// error (the client sees a failed transfer, never a complete corrupt file); a complete, verified
/// transfer calls `on_complete` (the download is counted).
fn checked_stream(
    stream: BlobStream,
    size: u64,
    expected_sha256: Option<String>,
    on_complete: impl FnOnce() + Send + 'static,
) -> VerifiedStream {
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut on_complete = Some(on_complete);
    stream
        .map(move |item| {
            let chunk = item?;
            sent += chunk.len() as u64;
            if expected_sha256.is_some() {
                hasher.update(&chunk);
            }
            if sent >= size {
                if let Some(expected) = &expected_sha256 {
                    let digest = hex::encode(std::mem::take(&mut hasher).finalize());
                    if sent != size || &digest != expected {
                        tracing::error!(expected = %expected, actual = %digest, "blob corrupted: sha256 differs from the recorded checksum");
                        return Err(std::io::Error::other("checksum mismatch"));
                    }
                }
                if let Some(done) = on_complete.take() {
                    done();
                }
            }
            Ok(chunk)
        })
        .boxed()
}

/// Writes the download counts waiting in memory and has the search index read the new totals
/// (they break ties in its ranking). Returns how many (version, day) counts were written.
pub async fn flush_counts(state: &AppState) -> AppResult<usize> {
    let written = state.downloads.flush(&state.db, &state.generation).await?;
    if written > 0 {
        state.search.refresh_downloads(&state.db).await?;
    }
    Ok(written)
}
