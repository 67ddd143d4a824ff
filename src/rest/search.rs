//! GET /search?q=&limit=&offset=
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::openapi as doc;
use super::{json_body, Query};
use crate::domain::{shown, text, ValidationError};
use crate::error::AppResult;
use crate::service::cache::BodyKey;
use crate::service::read;
use crate::service::search::{self, PackageSort};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// Search text (name, keywords, description); empty lists everything.
    #[serde(default)]
    q: String,
    /// Page size: default 20; values above 100 are capped to 100, 0 counts as 1.
    #[param(value_type = Option<u64>, minimum = 0)]
    limit: Option<String>,
    /// Results to skip; default 0.
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResult {
    name: String,
    /// The latest version ("" when every version is yanked).
    version: String,
    description: String,
    keywords: Vec<String>,
    downloads: i64,
    score: f64,
}

#[derive(Serialize, ToSchema)]
pub struct SearchBody {
    results: Vec<SearchResult>,
    total: u64,
    limit: u64,
    offset: u64,
    /// Only when nothing matched because a word looks misspelled: packages matching the query with
    /// that word corrected, most downloaded first. Not results, and not counted in `total`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suggestions: Vec<SearchResult>,
    /// With `suggestions`: the query with each misspelled word corrected.
    #[serde(skip_serializing_if = "Option::is_none")]
    did_you_mean: Option<String>,
}

fn number(v: Option<String>, name: &str, default: u64) -> AppResult<u64> {
    match v {
        None => Ok(default),
        Some(s) => s.parse::<u64>().map_err(|_| {
            ValidationError::new(name, format!("{name} must be a non-negative integer, got {}", shown(&s))).into()
        }),
    }
}

/// Full-text search over packages, best match first.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(Params), responses(
    (status = 200, description = "A page of results", body = SearchBody),
    doc::BadRequest, doc::RateLimited, doc::ServerSide,
))]
pub async fn search(State(state): State<AppState>, Query(p): Query<Params>) -> AppResult<Response> {
    text::line("q", &p.q)?;
    // Capped rather than refused: `raven pkg` may ask for more than a page.
    let limit = number(p.limit, "limit", 20)?.clamp(1, 100);
    let offset = number(p.offset, "offset", 0)?.min(1 << 40);
    if search::terms(&p.q).is_empty() || p.q.len() > search::MAX_CACHED_QUERY {
        return Ok(Json(body(&state, None, &p.q, limit, offset).await?).into_response());
    }
    let key = BodyKey::Search { q: p.q.trim().to_lowercase(), limit, offset };
    json_body(read::cached_json(&state, key, |generation| body(&state, generation, &p.q, limit, offset)).await?)
}

/// The page with each hit's latest version (`generation`: already read by the caller, if any).
async fn body(state: &AppState, generation: Option<i64>, q: &str, limit: u64, offset: u64) -> AppResult<SearchBody> {
    let page = search::search(state, generation, q, None, PackageSort::Relevance, offset, limit).await?;
    // REST searches by relevance only, which the search index answers, and it knows each hit's
    // latest version (a package without one is not in it): no query here.
    let result = |h: search::Hit| SearchResult {
        version: h.latest.as_deref().unwrap_or_default().to_owned(),
        keywords: read::package_keywords(&h.package),
        description: h.package.description.unwrap_or_default(),
        downloads: h.package.downloads,
        name: h.package.name,
        score: h.score,
    };
    let suggestions = page.suggestions.into_iter().map(result).collect();
    let results = page.hits.into_iter().map(result).collect();
    Ok(SearchBody { results, total: page.total, limit, offset, suggestions, did_you_mean: page.did_you_mean })
}
