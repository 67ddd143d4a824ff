//! Reading packages: metadata, versions, stats and the tarball download.
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{DependencyKind, PackageName, PackageVersion};
use crate::error::{AppError, AppResult};
use crate::rest::openapi as doc;
use crate::rest::{json_body, Path};
use crate::service::cache::BodyKey;
use crate::service::fetch::{self, Delivery, Want};
use crate::service::read::{self, batch, catalog};
use crate::state::AppState;

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
    json_body(read::cached_json(&state, key, |_| package_body(&state, &name)).await?)
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
    json_body(read::cached_json(&state, key, |_| version_body(&state, &name, &parsed)).await?)
}

async fn version_body(state: &AppState, name: &PackageName, version: &PackageVersion) -> AppResult<VersionBody> {
    let row = catalog::version_or_404(state, name, version).await?;
    let v = row.version;
    let (mut deps, mut dev) = (serde_json::Map::new(), serde_json::Map::new());
    let mut by_version = batch::dependencies_of(&state.db, &[v.id]).await?;
    for dep in by_version.remove(&v.id).unwrap_or_default() {
        let target = if read::dependency_kind(&dep) == DependencyKind::Dev { &mut dev } else { &mut deps };
        target.insert(dep.name, serde_json::Value::String(dep.req));
    }
    Ok(VersionBody {
        download_url: read::download_url(state, &row.package_name, &v.num),
        authors: read::authors(&v),
        keywords: read::version_keywords(&v),
        name: row.package_name,
        description: v.description.unwrap_or_default(),
        license: v.license.unwrap_or_default(),
        repository: v.repository,
        homepage: v.homepage,
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
    let want = if method == Method::HEAD { Want::Headers } else { Want::Body };
    let held = |sha256: &str| {
        let etag = format!("\"{sha256}\"");
        headers
            .get(header::IF_NONE_MATCH)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    };
    let t = fetch::tarball(&state, &name, &version, want, held).await?;
    // A version's bytes never change: caches may keep them for good. Bytes served without the
    // database (no recorded sha256 vouches for them) must not be cached.
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    let mut builder = Response::builder();
    if let Some(sha256) = &t.sha256 {
        builder = builder.header(header::ETAG, format!("\"{sha256}\""));
    }
    let cache_control = if t.sha256.is_some() { IMMUTABLE } else { "no-cache" };
    match t.delivery {
        Delivery::NotModified => builder
            .header(header::CACHE_CONTROL, cache_control)
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty()),
        Delivery::Redirect(url) => builder
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            // The 302 itself must not be cached: a presigned URL expires, and every fetch is counted.
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::empty()),
        Delivery::Bytes { size, stream } => {
            let builder = builder
                .header(header::CACHE_CONTROL, cache_control)
                .header(header::CONTENT_TYPE, "application/gzip")
                .header(header::CONTENT_LENGTH, size)
                .header(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&format!("attachment; filename=\"{}-{}.tar.gz\"", t.package, t.version))
                        .map_err(AppError::internal)?,
                );
            match stream {
                Some(stream) => builder.body(Body::from_stream(stream)),
                None => builder.body(Body::empty()),
            }
        }
    }
    .map_err(AppError::internal)
}
