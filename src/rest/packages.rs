//! Reading packages: metadata, versions, stats and the tarball download.
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::domain::{PackageName, PackageVersion};
use crate::error::{AppError, AppResult};
use crate::rest::cache::{self, BodyKey};
use crate::rest::openapi as doc;
use crate::rest::publish::download_url;
use crate::rest::Path;
use crate::service::catalog;
use crate::state::AppState;
use crate::storage::{Storage, StorageError};

#[derive(Serialize, ToSchema)]
pub struct OwnerRef {
    username: String,
    #[schema(format = Uuid)]
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct PackageBody {
    name: String,
    /// "" when none.
    description: String,
    /// The highest non-yanked release, else the highest non-yanked prerelease; null when every
    /// version is yanked.
    #[schema(required = true)]
    latest_version: Option<String>,
    /// Non-yanked versions, ascending.
    versions: Vec<String>,
    #[schema(required = true)]
    owner: Option<OwnerRef>,
    /// "" when none.
    license: String,
    #[schema(required = true)]
    repository: Option<String>,
    #[schema(required = true)]
    homepage: Option<String>,
    keywords: Vec<String>,
    downloads_total: i64,
    downloads_last_month: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A package: metadata of its latest version, its versions and download counts.
#[utoipa::path(get, path = "/api/v1/packages/{name}", tag = "packages", operation_id = "getPackage",
    params(("name" = String, Path, description = "Package name", example = "hello-raven")),
    responses(
        (status = 200, description = "The package", body = PackageBody),
        doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn package(State(state): State<AppState>, Path(name): Path<String>) -> AppResult<Response> {
    let name = PackageName::lookup(&name)?;
    let key = BodyKey::Package { name: name.as_str().to_owned(), day: Utc::now().date_naive() };
    cache::json(&state, key, |_| package_body(&state, &name)).await
}

async fn package_body(state: &AppState, name: &PackageName) -> AppResult<PackageBody> {
    let d = catalog::package_detail(state, name).await?;
    let latest = d.latest().map(|v| v.num.clone());
    Ok(PackageBody {
        latest_version: latest,
        versions: d.versions.iter().filter(|v| !v.yanked).map(|v| v.num.clone()).collect(),
        owner: d.owner.map(|(username, id)| OwnerRef { username, user_id: id.to_string() }),
        keywords: d.keywords,
        downloads_last_month: d.downloads_last_month,
        name: d.package.name,
        description: d.package.description.unwrap_or_default(),
        license: d.package.license.unwrap_or_default(),
        repository: d.package.repository,
        homepage: d.package.homepage,
        downloads_total: d.package.downloads,
        created_at: d.package.created_at,
        updated_at: d.package.updated_at,
    })
}

#[derive(Serialize, ToSchema)]
pub struct VersionBody {
    name: String,
    version: String,
    /// "" when none.
    description: String,
    authors: Vec<String>,
    /// "" when none.
    license: String,
    #[schema(required = true)]
    repository: Option<String>,
    #[schema(required = true)]
    homepage: Option<String>,
    keywords: Vec<String>,
    /// Dependency name to version requirement.
    #[schema(value_type = BTreeMap<String, String>)]
    dependencies: serde_json::Map<String, serde_json::Value>,
    /// Dev-dependency name to version requirement.
    #[schema(value_type = BTreeMap<String, String>)]
    dev_dependencies: serde_json::Map<String, serde_json::Value>,
    published_at: DateTime<Utc>,
    /// Absolute URL of the tarball.
    #[schema(format = "uri")]
    download_url: String,
    /// `sha256:<hex>` of the tarball.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    checksum: String,
    /// Compressed size of the tarball.
    size_bytes: i64,
    yanked: bool,
    #[schema(required = true)]
    yanked_at: Option<DateTime<Utc>>,
}

/// One version of a package (yanked versions too).
#[utoipa::path(get, path = "/api/v1/packages/{name}/{version}", tag = "packages", operation_id = "getVersion",
    params(("name" = String, Path, description = "Package name", example = "hello-raven"), ("version" = String, Path, description = "SemVer version", example = "1.0.0")),
    responses(
        (status = 200, description = "The version", body = VersionBody),
        doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Response> {
    let (name, parsed) = (PackageName::lookup(&name)?, PackageVersion::parse(&version)?);
    let key = BodyKey::Version { name: name.as_str().to_owned(), version };
    cache::json(&state, key, |_| version_body(&state, &name, &parsed)).await
}

async fn version_body(state: &AppState, name: &PackageName, version: &PackageVersion) -> AppResult<VersionBody> {
    let v = catalog::version_meta(state, name, version).await?;
    let (mut deps, mut dev) = (serde_json::Map::new(), serde_json::Map::new());
    for dep in catalog::dependencies_of(state, v.id).await? {
        let target = if dep.kind == "dev" { &mut dev } else { &mut deps };
        target.insert(dep.name, serde_json::Value::String(dep.req));
    }
    Ok(VersionBody {
        download_url: download_url(state, &v.package_name, &v.num),
        name: v.package_name,
        authors: serde_json::from_str(&v.authors).unwrap_or_default(),
        description: v.description.unwrap_or_default(),
        license: v.license.unwrap_or_default(),
        repository: v.repository,
        homepage: v.homepage,
        keywords: v.keywords.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect(),
        dependencies: deps,
        dev_dependencies: dev,
        published_at: v.published_at,
        checksum: format!("sha256:{}", v.sha256),
        size_bytes: v.size_bytes,
        yanked: v.yanked,
        yanked_at: v.yanked_at,
        version: v.num,
    })
}

#[derive(Serialize, ToSchema)]
pub struct DownloadsBody {
    total: i64,
    last_week: i64,
    last_month: i64,
    last_year: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PackageStatsBody {
    name: String,
    downloads: DownloadsBody,
    versions_count: u64,
    dependents_count: u64,
    updated_at: DateTime<Utc>,
}

/// Download and dependency statistics of a package.
#[utoipa::path(get, path = "/api/v1/packages/{name}/stats", tag = "packages", operation_id = "packageStats",
    params(("name" = String, Path, description = "Package name", example = "hello-raven")),
    responses(
        (status = 200, description = "The statistics", body = PackageStatsBody),
        doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn stats(State(state): State<AppState>, Path(name): Path<String>) -> AppResult<Json<PackageStatsBody>> {
    let s = catalog::package_stats(&state, &PackageName::lookup(&name)?).await?;
    Ok(Json(PackageStatsBody {
        downloads: DownloadsBody {
            total: s.package.downloads,
            last_week: s.last_week,
            last_month: s.last_month,
            last_year: s.last_year,
        },
        name: s.package.name,
        versions_count: s.versions_count,
        dependents_count: s.dependents_count,
        updated_at: s.package.updated_at,
    }))
}

/// Streams the tarball. The bytes are hashed as they go out: a blob that no longer matches its
/// recorded sha256 is cut off (the client sees a failed transfer, never a complete corrupt file)
/// and logged. Only complete GET responses are counted.
///
/// When the database is unreachable the tarball still streams, straight from storage by name and
/// version (see [`download_from_storage_alone`]).
#[utoipa::path(method(get, head), path = "/api/v1/packages/{name}/{version}/download", tag = "packages",
    operation_id = "download",
    summary = "Downloads the tarball of a version (yanked versions too)",
    description = "Streams `application/gzip` with an ETag (the quoted sha256) and immutable caching; \
        HEAD answers the headers alone; If-None-Match gives 304. Not rate limited. When the database is \
        unreachable the tarball still streams from storage, without ETag.",
    params(
        ("name" = String, Path, description = "Package name", example = "hello-raven"),
        ("version" = String, Path, description = "SemVer version", example = "1.0.0"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "ETag(s) the client holds"),
    ),
    responses(
        (status = 200, description = "The tarball (HEAD: headers only). Not rate limited.",
            content_type = "application/gzip", body = inline(doc::Binary),
            headers(
                ("ETag" = String, description = "The quoted sha256 of the tarball (absent when served without the database)"),
                ("Content-Disposition" = String, description = "attachment; filename=\"NAME-VERSION.tar.gz\""),
                ("Cache-Control" = String, description = "public, max-age=31536000, immutable"),
            )),
        (status = 302, description = "With DOWNLOAD_REDIRECT: fetch the tarball from Location (CDN or presigned URL)",
            headers(("Location" = String), ("ETag" = String), ("Cache-Control" = String, description = "no-store"))),
        (status = 304, description = "The client's copy (If-None-Match) is current",
            headers(("ETag" = String), ("Cache-Control" = String))),
        doc::BadRequest, doc::NotFound, doc::ServerSide,
    )
)]
pub async fn download(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Response> {
    let (name, version) = (PackageName::lookup(&name)?, PackageVersion::parse(&version)?);
    let v = match catalog::version_meta(&state, &name, &version).await {
        Ok(v) => v,
        Err(AppError::Unavailable(why)) => {
            return download_from_storage_alone(&state, &method, &name, &version, why).await;
        }
        Err(e) => return Err(e),
    };
    let pkg = v.package_name.clone();
    let etag = format!("\"{}\"", v.sha256);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    // A version's bytes never change: caches may keep them for good.
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let builder = Response::builder().header(header::ETAG, &etag);
    if not_modified {
        let builder = builder.header(header::CACHE_CONTROL, IMMUTABLE);
        return builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()).map_err(AppError::internal);
    }
    let key = Storage::key(&pkg, &v.num);
    if let Some(url) = state.storage.redirect_url(&key).await.map_err(storage_unavailable)? {
        // The client fetches the bytes elsewhere, so the download is counted when it is handed over.
        if method == Method::GET {
            state.downloads.record(&pkg, &v.num);
        }
        return builder
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url.as_str())
            // The 302 itself must not be cached: a presigned URL expires, and every fetch is counted.
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::empty())
            .map_err(AppError::internal);
    }
    let builder = builder.header(header::CACHE_CONTROL, IMMUTABLE);
    let (size, stream) = state.storage.get(&key).await.map_err(|e| match e {
        // A recorded version without its blob is our fault, not the client's: refuse and log it.
        StorageError::NotFound(_) => {
            tracing::error!(key = %key, package = %pkg, version = %v.num, "blob missing for a recorded version; run fsck");
            AppError::internal(anyhow::anyhow!("blob {key} is missing"))
        }
        StorageError::Unavailable(why) => {
            tracing::error!(key = %key, error = %why, "storage unreachable for a download");
            AppError::Unavailable(format!("storage: {why}"))
        }
    })?;
    if size != v.size_bytes as u64 {
        tracing::error!(key = %key, stored = size, recorded = v.size_bytes, "blob corrupted: size differs from the recorded size");
        return Err(AppError::internal(anyhow::anyhow!("blob {key} has the wrong size")));
    }
    let builder = tarball_headers(builder, &pkg, &v.num, size)?;
    if method == Method::HEAD {
        return builder.body(Body::empty()).map_err(AppError::internal);
    }
    let counter = state.downloads.clone();
    let verified = checked_stream(stream, size, Some(v.sha256.clone()), move || counter.record(&pkg, &v.num));
    builder.body(Body::from_stream(verified)).map_err(AppError::internal)
}

fn storage_unavailable(e: StorageError) -> AppError {
    tracing::error!(error = %e, "storage could not sign a download URL");
    AppError::Unavailable(format!("storage: {e}"))
}

/// Content type, length and attachment name of a tarball response.
fn tarball_headers(
    builder: axum::http::response::Builder,
    name: &str,
    version: &str,
    size: u64,
) -> AppResult<axum::http::response::Builder> {
    Ok(builder.header(header::CONTENT_TYPE, "application/gzip").header(header::CONTENT_LENGTH, size).header(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}-{version}.tar.gz\""))
            .map_err(AppError::internal)?,
    ))
}

/// The database is unreachable: serve the blob stored under `Storage::key(name, version)`.
///
/// A blob exists only for a version that was published (or is being published), so its presence
/// is the answer. Without the row there is no recorded sha256 to check against, so the response
/// carries no ETag and must not be cached; it is counted once it has been sent completely, and the
/// count waits in memory until the database is back. When no blob is there, the database was
/// needed to know why, and the answer stays 503.
async fn download_from_storage_alone(
    state: &AppState,
    method: &Method,
    name: &PackageName,
    version: &PackageVersion,
    db_error: String,
) -> AppResult<Response> {
    // Both were parsed, so the key is one a publish could have written (publish keys by the
    // version as SemVer prints it, too).
    let (name, version) = (name.as_str(), version.to_string());
    let key = Storage::key(name, &version);
    let (size, stream) = match state.storage.get(&key).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(key = %key, error = %e, "database unreachable and no blob to serve from storage");
            return Err(AppError::Unavailable(db_error));
        }
    };
    tracing::warn!(key = %key, reason = %db_error, "database unreachable: serving the tarball from storage alone");
    let builder = tarball_headers(Response::builder().header(header::CACHE_CONTROL, "no-cache"), name, &version, size)?;
    if method == Method::HEAD {
        return builder.body(Body::empty()).map_err(AppError::internal);
    }
    let counter = state.downloads.clone();
    let name = name.to_owned();
    let counted = checked_stream(stream, size, None, move || counter.record(&name, &version));
    builder.body(Body::from_stream(counted)).map_err(AppError::internal)
}

/// Passes the blob through, hashing as it goes. The verdict is reached on the chunk that completes
/// `size` bytes, before that chunk is sent: hyper stops polling a body once Content-Length bytes
/// are out, so a check at end-of-stream would never run. A mismatch replaces the last chunk with an
/// error (the client sees a failed transfer, never a complete corrupt file); a complete, verified
/// transfer calls `on_complete` (the download is counted).
fn checked_stream(
    stream: crate::storage::BlobStream,
    size: u64,
    expected_sha256: Option<String>,
    on_complete: impl FnOnce() + Send + 'static,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut on_complete = Some(on_complete);
    stream.map(move |item| {
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
}
