//! Request extractors shared by the REST and GraphQL front ends: the viewer behind a request's
//! bearer token, verified once per request. A token that is present but invalid is an error (401),
//! not anonymity: silently downgrading would hide a client's misconfiguration.
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::service;
use crate::state::AppState;

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> AppResult<Option<&str>> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| AppError::Unauthenticated("malformed Authorization header".into()))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| AppError::Unauthenticated("Authorization must be `Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthenticated("Authorization must be `Bearer <token>`".into()));
    }
    Ok(Some(token.trim()))
}

/// Resolves the request's viewer once; the result is kept in the request extensions so middleware
/// (rate limits) and the handler share one verification.
pub async fn resolve_viewer(parts: &mut Parts, state: &AppState) -> AppResult<Option<Viewer>> {
    if let Some(cached) = parts.extensions.get::<ResolvedViewer>() {
        return cached.clone().0;
    }
    let result = match bearer(parts) {
        Ok(None) => Ok(None),
        Ok(Some(token)) => service::tokens::authenticate(state, token).await.map(Some),
        Err(e) => Err(e),
    };
    if let Ok(Some(v)) = &result {
        crate::telemetry::record_user(v.user_id);
    }
    let cached = match &result {
        Ok(v) => Ok(v.clone()),
        Err(e) => Err(clone_auth_error(e)),
    };
    parts.extensions.insert(ResolvedViewer(cached));
    result
}

/// Authentication failures are 401 or 503 (database away); only those are cached.
fn clone_auth_error(e: &AppError) -> AppError {
    match e {
        AppError::Unauthenticated(m) => AppError::Unauthenticated(m.clone()),
        AppError::Unavailable(m) => AppError::Unavailable(m.clone()),
        other => AppError::Unavailable(other.to_string()),
    }
}

#[derive(Debug)]
struct ResolvedViewer(AppResult<Option<Viewer>>);

impl Clone for ResolvedViewer {
    fn clone(&self) -> Self {
        ResolvedViewer(match &self.0 {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(clone_auth_error(e)),
        })
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        resolve_viewer(parts, state)
            .await?
            .ok_or_else(|| AppError::Unauthenticated("this endpoint needs `Authorization: Bearer <token>`".into()))
    }
}
