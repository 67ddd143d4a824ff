//! Reading packages: metadata, versions, stats and the tarball download.
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::rest::publish::download_url;
use crate::service::catalog;
use crate::state::AppState;
use crate::storage::Storage;

#[derive(Serialize)]
pub struct OwnerRef {
    username: String,
    user_id: String,
}

#[derive(Serialize)]
pub struct PackageBody {
    name: String,
    description: String,
    latest_version: Option<String>,
    versions: Vec<String>,
    owner: Option<OwnerRef>,
    license: String,
    repository: Option<String>,
    homepage: Option<String>,
    keywords: Vec<String>,
    downloads_total: i64,
    downloads_last_month: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub async fn package(State(state): State<AppState>, Path(name): Path<String>) -> AppResult<Json<PackageBody>> {
    let d = catalog::package_detail(&state, &name).await?;
    let latest = d.latest().map(|v| v.num.clone());
    let owner = d.owners.iter().find(|o| o.role == "owner").or(d.owners.first());
    Ok(Json(PackageBody {
        latest_version: latest,
        versions: d.versions.iter().filter(|v| !v.yanked).map(|v| v.num.clone()).collect(),
        owner: owner.map(|o| OwnerRef { username: o.user.username.clone(), user_id: o.user.id.to_string() }),
        keywords: d.keywords.clone(),
        downloads_last_month: d.downloads_last_month,
        name: d.package.name,
        description: d.package.description.unwrap_or_default(),
        license: d.package.license.unwrap_or_default(),
        repository: d.package.repository,
        homepage: d.package.homepage,
        downloads_total: d.package.downloads,
        created_at: d.package.created_at,
        updated_at: d.package.updated_at,
    }))
}

#[derive(Serialize)]
pub struct VersionBody {
    name: String,
    version: String,
    description: String,
    authors: Vec<String>,
    license: String,
    repository: Option<String>,
    homepage: Option<String>,
    keywords: Vec<String>,
    dependencies: serde_json::Map<String, serde_json::Value>,
    dev_dependencies: serde_json::Map<String, serde_json::Value>,
    published_at: DateTime<Utc>,
    download_url: String,
    checksum: String,
    size_bytes: i64,
    yanked: bool,
    yanked_at: Option<DateTime<Utc>>,
}

pub async fn version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Json<VersionBody>> {
    let d = catalog::version_detail(&state, &name, &version).await?;
    let (mut deps, mut dev) = (serde_json::Map::new(), serde_json::Map::new());
    for dep in d.dependencies {
        let target = if dep.kind == "dev" { &mut dev } else { &mut deps };
        target.insert(dep.name, serde_json::Value::String(dep.req));
    }
    let v = d.version;
    Ok(Json(VersionBody {
        download_url: download_url(&state, &d.package.name, &v.num),
        name: d.package.name,
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
    }))
}

#[derive(Serialize)]
pub struct DownloadsBody {
    total: i64,
    last_week: i64,
    last_month: i64,
    last_year: i64,
}

#[derive(Serialize)]
pub struct PackageStatsBody {
    name: String,
    downloads: DownloadsBody,
    versions_count: u64,
    dependents_count: u64,
    updated_at: DateTime<Utc>,
}

pub async fn stats(State(state): State<AppState>, Path(name): Path<String>) -> AppResult<Json<PackageStatsBody>> {
    let s = catalog::package_stats(&state, &name).await?;
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
pub async fn download(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> AppResult<Response> {
    let d = catalog::version_detail(&state, &name, &version).await?;
    let (pkg, v) = (d.package.name, d.version);
    let etag = format!("\"{}\"", v.sha256);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    if not_modified {
        return builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()).map_err(AppError::internal);
    }
    let key = Storage::key(&pkg, &v.num);
    let (size, stream) = state.storage.get(&key).await.map_err(|e| {
        tracing::error!(key = %key, error = %e, "blob missing or unreadable for a recorded version");
        AppError::internal(anyhow::anyhow!("blob {key}: {e}"))
    })?;
    if size != v.size_bytes as u64 {
        tracing::error!(key = %key, stored = size, recorded = v.size_bytes, "blob corrupted: size differs from the recorded size");
        return Err(AppError::internal(anyhow::anyhow!("blob {key} has the wrong size")));
    }
    builder = builder.header(header::CONTENT_TYPE, "application/gzip").header(header::CONTENT_LENGTH, size).header(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{pkg}-{}.tar.gz\"", v.num))
            .map_err(AppError::internal)?,
    );
    if method == Method::HEAD {
        return builder.body(Body::empty()).map_err(AppError::internal);
    }
    let expected = v.sha256.clone();
    let counter = state.downloads.clone();
    let num = v.num.clone();
    let mut hasher = Some(Sha256::new());
    let verified = stream.map(Some).chain(futures::stream::once(async { None })).filter_map(move |item| {
        let out = match item {
            Some(Ok(chunk)) => {
                if let Some(h) = hasher.as_mut() {
                    h.update(&chunk);
                }
                Some(Ok(chunk))
            }
            Some(Err(e)) => Some(Err(e)),
            None => {
                let digest = hex::encode(hasher.take().map(|h| h.finalize()).unwrap_or_default());
                if digest == expected {
                    counter.record(&pkg, &num);
                    None
                } else {
                    tracing::error!(package = %pkg, version = %num, "blob corrupted: sha256 differs from the recorded checksum");
                    Some(Err(std::io::Error::other("checksum mismatch")))
                }
            }
        };
        async move { out }
    });
    builder.body(Body::from_stream(verified)).map_err(AppError::internal)
}
