//! Tarball blobs over object_store: local filesystem (default), S3-compatible, or in-memory (tests).
//! Every backend publishes a blob atomically: the local store writes a staging file and renames it,
//! S3 and memory only expose an object once its upload completes. So no half-written blob is ever
//! visible under its key.
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::config::{Config, StorageType};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StorageError::NotFound(path),
            other => StorageError::Unavailable(other.to_string()),
        }
    }
}

pub type BlobStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The same store when it is the local filesystem, for [`Storage::get_bytes`]'s direct read.
    local: Option<Arc<object_store::local::LocalFileSystem>>,
    kind: StorageType,
    redirect: Option<Redirect>,
}

/// Where DOWNLOAD_REDIRECT sends clients.
#[derive(Clone)]
enum Redirect {
    /// A public base URL serving the storage keys.
    Cdn(url::Url),
    /// Presigned GET URLs of the bucket, valid for the given time.
    Presigned(Arc<dyn object_store::signer::Signer>, std::time::Duration),
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({:?})", self.kind)
    }
}

impl Storage {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Storage> {
        let mut signer: Option<Arc<dyn object_store::signer::Signer>> = None;
        let mut local = None;
        let store: Arc<dyn ObjectStore> = match cfg.storage_type {
            StorageType::Memory => Arc::new(object_store::memory::InMemory::new()),
            StorageType::Local => {
                let dir = cfg.storage_path();
                std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("STORAGE_PATH {}: {e}", dir.display()))?;
                let fs =
                    Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true));
                local = Some(fs.clone());
                fs
            }
            StorageType::S3 => {
                let bucket = cfg
                    .s3_bucket
                    .as_deref()
                    .ok_or_else(|| anyhow::anyhow!("S3_BUCKET is required when STORAGE_TYPE=s3"))?;
                // Credentials come from the standard AWS_* variables.
                let mut b =
                    object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).with_region(&cfg.s3_region);
                if let Some(endpoint) = &cfg.s3_endpoint {
                    b = b
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let s3 = Arc::new(b.build()?);
                signer = Some(s3.clone());
                s3
            }
        };
        let redirect = match (cfg.download_redirect, &cfg.download_cdn_url, signer) {
            (false, _, _) => None,
            (true, Some(base), _) => Some(Redirect::Cdn(base.clone())),
            (true, None, Some(signer)) => {
                Some(Redirect::Presigned(signer, std::time::Duration::from_secs(cfg.download_url_ttl_secs)))
            }
            (true, None, None) => anyhow::bail!(
                "DOWNLOAD_REDIRECT=true needs DOWNLOAD_CDN_URL or STORAGE_TYPE=s3 (presigned URLs): local storage has no URL to redirect to"
            ),
        };
        Ok(Storage { store, local, kind: cfg.storage_type, redirect })
    }

    /// Blobs are keyed by name and version, so downloads work from storage alone when the database is away.
    pub fn key(name: &str, version: &str) -> Path {
        Path::from(format!("packages/{name}/{name}-{version}.tar.gz"))
    }

    #[tracing::instrument(name = "storage.put_file", skip(self, file), fields(key = %key))]
    pub async fn put_file(&self, key: &Path, mut file: tokio::fs::File) -> Result<(), StorageError> {
        storage_op("put_file", async {
            let upload = self.store.put_multipart(key).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match file.read(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(StorageError::Unavailable(e.to_string()));
                    }
                };
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await?;
                writer.write(&buf[..n]);
            }
            writer.finish().await?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(name = "storage.put", skip(self, bytes), fields(key = %key, len = bytes.len()))]
    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<(), StorageError> {
        storage_op("put", async {
            self.store.put(key, PutPayload::from_bytes(bytes)).await?;
            Ok(())
        })
        .await
    }

    /// Opens a blob for streaming: its size and a stream of chunks.
    #[tracing::instrument(name = "storage.get", skip(self), fields(key = %key))]
    pub async fn get(&self, key: &Path) -> Result<(u64, BlobStream), StorageError> {
        storage_op("get", async {
            let res = self.store.get(key).await?;
            let size = res.meta.size;
            let stream = res.into_stream().map_err(std::io::Error::other).boxed();
            Ok((size, stream))
        })
        .await
    }

    /// A whole blob in memory. On the local filesystem the file is read in one trip to the
    /// blocking pool (object_store's `get` + `bytes` takes two: open and stat, then read), which
    /// is most of the cost of a download that misses the blob cache.
    pub async fn get_bytes(&self, key: &Path) -> Result<Bytes, StorageError> {
        storage_op("get", async {
            let Some(local) = &self.local else { return Ok(self.store.get(key).await?.bytes().await?) };
            let path = local.path_to_filesystem(key)?;
            match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
                Ok(Ok(bytes)) => Ok(Bytes::from(bytes)),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound(key.to_string())),
                Ok(Err(e)) => Err(StorageError::Unavailable(format!("reading {key}: {e}"))),
                Err(e) => Err(StorageError::Unavailable(format!("reading {key}: {e}"))),
            }
        })
        .await
    }

    #[tracing::instrument(name = "storage.head", skip(self), fields(key = %key))]
    pub async fn size(&self, key: &Path) -> Result<u64, StorageError> {
        storage_op("head", async { Ok(self.store.head(key).await?.size) }).await
    }

    #[tracing::instrument(name = "storage.delete", skip(self), fields(key = %key))]
    pub async fn delete(&self, key: &Path) -> Result<(), StorageError> {
        storage_op("delete", async {
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// The URL a download of `key` is redirected to, when DOWNLOAD_REDIRECT is on.
    #[tracing::instrument(name = "storage.redirect_url", skip(self), fields(key = %key))]
    pub async fn redirect_url(&self, key: &Path) -> Result<Option<url::Url>, StorageError> {
        match &self.redirect {
            None => Ok(None),
            Some(Redirect::Cdn(base)) => {
                let mut url = base.clone();
                // Keep a base path (https://cdn.example/registry/) and append the key to it.
                let path = format!("{}/{}", url.path().trim_end_matches('/'), key);
                url.set_path(&path);
                Ok(Some(url))
            }
            Some(Redirect::Presigned(signer, ttl)) => {
                storage_op("sign", async { Ok(Some(signer.signed_url(http::Method::GET, key, *ttl).await?)) }).await
            }
        }
    }

    /// Every blob key, for fsck and tests.
    pub async fn list_keys(&self) -> Result<Vec<String>, StorageError> {
        storage_op("list", async {
            let metas: Vec<_> = self.store.list(Some(&Path::from("packages"))).try_collect().await?;
            Ok(metas.into_iter().map(|m| m.location.to_string()).collect())
        })
        .await
    }

    /// Readiness probe: the store answers (a missing probe object still proves it is reachable).
    pub async fn check(&self) -> Result<(), StorageError> {
        storage_op("check", async {
            match self.store.head(&Path::from(".ready-probe")).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// Result of a create-only put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

impl Storage {
    /// Writes the blob only if nothing is stored under the key yet (atomically, on every backend).
    #[tracing::instrument(name = "storage.put_new", skip(self, bytes), fields(key = %key, len = bytes.len()))]
    pub async fn put_new(&self, key: &Path, bytes: Bytes) -> Result<PutOutcome, StorageError> {
        storage_op("put_new", async {
            let opts = object_store::PutOptions { mode: object_store::PutMode::Create, ..Default::default() };
            match self.store.put_opts(key, PutPayload::from_bytes(bytes), opts).await {
                Ok(_) => Ok(PutOutcome::Created),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExists),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Seconds since the blob was last written.
    pub async fn age_secs(&self, key: &Path) -> Result<i64, StorageError> {
        storage_op("head", async {
            let meta = self.store.head(key).await?;
            Ok((chrono::Utc::now() - meta.last_modified).num_seconds())
        })
        .await
    }
}

/// Times one storage operation and counts its failures. A missing blob is an outcome, not an error.
async fn storage_op<T>(
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    let start = std::time::Instant::now();
    let res = fut.await;
    let outcome = match &res {
        Ok(_) => "ok",
        Err(StorageError::NotFound(_)) => "not_found",
        Err(_) => "error",
    };
    metrics::histogram!("raven_storage_operation_duration_seconds", "op" => op, "outcome" => outcome)
        .record(start.elapsed().as_secs_f64());
    if outcome == "error" {
        metrics::counter!("raven_storage_errors_total", "op" => op).increment(1);
    }
    res
}
