//! The Viewer: the verified identity behind a request. REST handlers take `Viewer` (401 without a
//! valid token) or `MaybeViewer`; GraphQL resolvers read the same value from the request data.
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use uuid::Uuid;

use super::{Scope, Scopes};
use crate::error::{AppError, AppResult};
use crate::service;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: Uuid,
    pub token_id: Uuid,
    pub token_name: String,
    pub scopes: Scopes,
}

impl Viewer {
    /// Token management and refresh need a login (session) token: an API token, whatever its
    /// scopes, must not mint a more powerful token or revoke the user's other tokens.
    pub fn require_login_token(&self) -> AppResult<()> {
        if self.token_name == crate::service::tokens::LOGIN_TOKEN_NAME {
            Ok(())
        } else {
            Err(AppError::Forbidden("this needs a login token (from login or register), not an API token".into()))
        }
    }

    /// Refuses with 403 when the token lacks `scope`.
    pub fn require(&self, scope: Scope) -> AppResult<()> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("this token lacks the {scope} scope")))
        }
    }
}

/// The viewer, if the request carries a token. A token that is present but invalid is an error
/// (401), not anonymity: silently downgrading would hide a client's misconfiguration.
#[derive(Debug, Clone)]
pub struct MaybeViewer(pub Option<Viewer>);

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
pub async fn resolve(parts: &mut Parts, state: &AppState) -> AppResult<Option<Viewer>> {
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
        resolve(parts, state)
            .await?
            .ok_or_else(|| AppError::Unauthenticated("this endpoint needs `Authorization: Bearer <token>`".into()))
    }
}

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeViewer(resolve(parts, state).await?))
    }
}
