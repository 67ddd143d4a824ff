//! GET /users/:username, GET /users/me, POST /users/me/tokens, DELETE /users/me/tokens/:token_id
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ApiJson;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::service::{accounts, profiles, tokens};
use crate::state::AppState;

#[derive(Serialize)]
pub struct PackageSummary {
    name: String,
    version: String,
    downloads: i64,
}

#[derive(Serialize)]
pub struct UserBody {
    username: String,
    user_id: String,
    joined_at: DateTime<Utc>,
    packages: Vec<PackageSummary>,
    total_downloads: i64,
}

#[derive(Serialize)]
pub struct TokenSummary {
    token_id: String,
    name: String,
    created_at: DateTime<Utc>,
    last_used: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct MeBody {
    #[serde(flatten)]
    user: UserBody,
    email: String,
    tokens: Vec<TokenSummary>,
}

async fn user_body(state: &AppState, user: &entity::users::Model) -> AppResult<UserBody> {
    let packages = profiles::owned_packages(state, user.id).await?;
    let total_downloads = packages.iter().map(|p| p.downloads).sum();
    Ok(UserBody {
        username: user.username.clone(),
        user_id: user.id.to_string(),
        joined_at: user.created_at,
        packages: packages
            .into_iter()
            .map(|p| PackageSummary { name: p.name, version: p.version.unwrap_or_default(), downloads: p.downloads })
            .collect(),
        total_downloads,
    })
}

pub async fn show(State(state): State<AppState>, Path(username): Path<String>) -> AppResult<Json<UserBody>> {
    let user = accounts::find_by_username(&state, &username)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user {username}")))?;
    Ok(Json(user_body(&state, &user).await?))
}

pub async fn me(State(state): State<AppState>, viewer: Viewer) -> AppResult<Json<MeBody>> {
    let user = accounts::find_by_id(&state, viewer.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the account no longer exists".into()))?;
    let tokens = tokens::list_live(&state, user.id)
        .await?
        .into_iter()
        .map(|t| TokenSummary {
            token_id: t.id.to_string(),
            name: t.name,
            created_at: t.created_at,
            last_used: t.last_used_at,
            expires_at: t.expires_at,
        })
        .collect();
    Ok(Json(MeBody { email: user.email.clone(), user: user_body(&state, &user).await?, tokens }))
}

#[derive(Deserialize)]
pub struct CreateTokenBody {
    name: String,
    expires_in_days: i64,
    scopes: Option<Vec<String>>,
}

#[derive(Serialize)]
pub struct CreatedToken {
    token: String,
    token_id: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

pub async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiJson(body): ApiJson<CreateTokenBody>,
) -> AppResult<(StatusCode, Json<CreatedToken>)> {
    let req = tokens::NewToken::parse(&body.name, body.expires_in_days, body.scopes)?;
    let issued = tokens::create(&state, &viewer, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: issued.token,
            token_id: issued.row.id.to_string(),
            name: issued.row.name,
            created_at: issued.row.created_at,
            expires_at: issued.row.expires_at,
        }),
    ))
}

#[derive(Serialize)]
pub struct RevokedToken {
    token_id: String,
    revoked: bool,
}

pub async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token_id): Path<String>,
) -> AppResult<Json<RevokedToken>> {
    let id = Uuid::parse_str(&token_id).map_err(|_| AppError::NotFound(format!("no token {token_id}")))?;
    let row = tokens::revoke(&state, &viewer, id).await?;
    Ok(Json(RevokedToken { token_id: row.id.to_string(), revoked: true }))
}
