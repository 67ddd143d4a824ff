//! POST /packages/publish — the `raven pkg publish` upload: multipart with a `metadata` (or
//! `manifest`) JSON text part and a `tarball` file part. The tarball is streamed to a temporary file
//! with the size limit enforced while reading, so an oversized upload is cut off early. Once it is
//! accepted, the service validates it and keeps its bytes (at most MAX_TARBALL_BYTES) in memory for
//! the single create-only put to storage.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi as doc;
use super::{ApiMultipart, Query};
use crate::auth::Viewer;
use crate::domain::{PackageName, ValidationError};
use crate::error::{AppError, AppResult};
use crate::service::publish::{self, Claimed, Tarball};
use crate::service::validate;
use crate::state::AppState;

#[derive(Deserialize, Default)]
struct Metadata {
    name: Option<String>,
    version: Option<String>,
    #[serde(flatten)]
    _rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct PublishResponse {
    #[schema(format = Uuid)]
    package_id: String,
    name: String,
    version: String,
    published_at: DateTime<Utc>,
    /// Absolute URL of the tarball.
    #[schema(format = "uri")]
    download_url: String,
    /// `sha256:<hex>` of the tarball.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    checksum: String,
}

/// `?dry_run=true`: check, store nothing.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublishParams {
    /// Run every check of a publish and store nothing: answers 200 `{ok, problems}`.
    #[serde(default)]
    dry_run: bool,
}

/// The answer of a dry run.
#[derive(Serialize, ToSchema)]
pub struct DryRunResponse {
    /// True when a publish of this upload by this caller would pass every check now.
    ok: bool,
    /// Every problem found (empty when `ok`), in the order the checks ran.
    problems: Vec<ProblemBody>,
}

/// One problem of an upload; the same shape appears in `details.problems` of a refused publish.
#[derive(Serialize, ToSchema)]
pub struct ProblemBody {
    /// Stable machine code, e.g. `NAME_INVALID`, `VERSION_TAKEN`, `DEPENDENCY_UNKNOWN` (README lists them).
    code: String,
    /// The manifest field or input at fault, if one is.
    field: Option<String>,
    /// The tarball entry at fault, if one is.
    path: Option<String>,
    /// For people.
    message: String,
}

/// The multipart form of a publish (documentation only; the handler reads the parts as a stream).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PublishForm {
    /// JSON text, e.g. `{"name": "...", "version": "..."}`; `name` and `version` must agree with
    /// the `raven.toml` inside the tarball, which is the source of truth. Optional.
    #[schema(required = false)]
    metadata: String,
    /// Accepted instead of `metadata` (not both: every part appears at most once).
    #[schema(required = false)]
    manifest: String,
    /// The gzip'd tar, with `raven.toml` at its root.
    #[schema(value_type = doc::Binary)]
    tarball: Vec<u8>,
}

/// `raven pkg` sends two parts; a few more leave room for newer clients.
const MAX_PARTS: usize = 16;

/// Every part name appears once, and `metadata` and `manifest` (two names for one part) not both:
/// a later part would otherwise silently replace an earlier one, after the publish budget was
/// already chosen from it.
fn refuse_repeated_part(seen: &[String], name: &str) -> Result<(), ValidationError> {
    let field = if name.is_empty() { "multipart" } else { name };
    if seen.iter().any(|s| s == name) {
        let shown = if name.is_empty() { "unnamed".to_owned() } else { format!("`{name}`") };
        return Err(ValidationError::new(field, format!("the multipart body has more than one {shown} part")));
    }
    let other = match name {
        "metadata" => "manifest",
        "manifest" => "metadata",
        _ => return Ok(()),
    };
    if seen.iter().any(|s| s == other) {
        return Err(ValidationError::new(
            field,
            format!("the multipart body has both a `{other}` and a `{name}` part: send one (they are the same part)"),
        ));
    }
    Ok(())
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("the upload exceeds the size limit".into())
    } else {
        AppError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Publishes a version from a tarball; with `?dry_run=true`, runs every check and stores nothing.
#[utoipa::path(post, path = "/api/v1/packages/publish", tag = "packages", security(("bearer" = [])),
    params(PublishParams),
    request_body(content = inline(PublishForm), content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The version is published", body = PublishResponse),
        (status = 200, description = "Dry run: every problem found, nothing stored", body = DryRunResponse),
        doc::BadRequest, doc::Unauthorized, doc::Forbidden, doc::Conflict, doc::PayloadTooLarge,
        doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<PublishParams>,
    ApiMultipart(mut multipart): ApiMultipart,
) -> AppResult<Response> {
    let max = state.config.max_tarball_bytes;
    let mut metadata: Option<Metadata> = None;
    let mut tarball: Option<bytes::Bytes> = None;
    let mut charged = false;
    let mut parts = 0usize;
    let mut names: Vec<String> = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ValidationError::new(
                "multipart",
                format!("the multipart body has more than {MAX_PARTS} parts"),
            )
            .into());
        }
        let name = field.name().unwrap_or_default();
        refuse_repeated_part(&names, name)?;
        names.push(name.to_owned());
        match field.name() {
            Some("metadata") | Some("manifest") => {
                let text = field.text().await.map_err(multipart_error)?;
                metadata = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| ValidationError::new("metadata", format!("metadata is not valid JSON: {e}")))?,
                );
            }
            Some("tarball") => {
                // Charge the publish budget before reading the tarball, when the metadata came first.
                if let Some(name) = metadata.as_ref().and_then(|m| m.name.as_deref()) {
                    // A dry run reports a bad name as a problem; the service then charges the budget.
                    let parsed = match PackageName::parse(name) {
                        Ok(n) => Some(n),
                        Err(_) if params.dry_run => None,
                        Err(e) => {
                            let problem = crate::domain::PublishProblem::from(&e);
                            return Err(AppError::refused(e.into(), problem));
                        }
                    };
                    if let (false, Some(parsed)) = (charged, parsed) {
                        publish::charge_rate_limit(&state, &viewer, &parsed).await?;
                        charged = true;
                    }
                }
                let mut body = bytes::BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if (body.len() + chunk.len()) as u64 > max {
                        return Err(AppError::PayloadTooLarge(format!("the tarball exceeds the limit of {max} bytes")));
                    }
                    body.extend_from_slice(&chunk);
                }
                tarball = Some(body.freeze());
            }
            // Unknown parts are skipped (forward compatibility with newer clients).
            _ => {}
        }
    }
    let tarball =
        tarball.ok_or_else(|| ValidationError::new("tarball", "the multipart body has no `tarball` file part"))?;
    let meta = metadata.unwrap_or_default();
    let claimed = Claimed { name: meta.name, version: meta.version, rate_limit_charged: charged };
    if params.dry_run {
        let report = validate::dry_run(&state, &viewer, Tarball::Bytes(tarball), claimed).await?;
        let problems = report
            .problems
            .into_iter()
            .map(|p| ProblemBody { code: p.code.to_owned(), field: p.field, path: p.path, message: p.message })
            .collect();
        return Ok(Json(DryRunResponse { ok: report.ok, problems }).into_response());
    }
    let published = publish::publish(&state, &viewer, Tarball::Bytes(tarball), claimed).await?;
    let v = published.version;
    Ok((
        StatusCode::CREATED,
        Json(PublishResponse {
            package_id: published.package.id.to_string(),
            download_url: crate::service::read::download_url(&state, &published.package.name, &v.num),
            name: published.package.name,
            checksum: format!("sha256:{}", v.sha256),
            version: v.num,
            published_at: v.published_at,
        }),
    )
        .into_response())
}
