//! GET /users/:username, GET /users/me, POST /users/me/tokens, DELETE /users/me/tokens/:token_id
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi as doc;
use super::ApiJson;
use super::Path;
use crate::auth::Viewer;
use crate::domain::{shown, Username, ValidationError};
use crate::error::{AppError, AppResult};
use crate::service::{accounts, profiles, tokens};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct PackageSummary {
    name: String,
    /// The latest version ("" when every version is yanked).
    version: String,
    downloads: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    username: String,
    #[schema(format = Uuid)]
    user_id: String,
    joined_at: DateTime<Utc>,
    packages: Vec<PackageSummary>,
    total_downloads: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TokenSummary {
    #[schema(format = Uuid)]
    token_id: String,
    name: String,
    created_at: DateTime<Utc>,
    /// null when the token was never used.
    #[schema(required = true)]
    last_used: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
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

/// A user's public profile and packages.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", operation_id = "getUser",
    params(("username" = String, Path, description = "Username (case-insensitive)", example = "ada")),
    responses(
        (status = 200, description = "The profile", body = UserBody),
        doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn show(State(state): State<AppState>, Path(username): Path<String>) -> AppResult<Json<UserBody>> {
    let user = accounts::find_by_username(&state, &Username::parse(&username)?)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user {username}")))?;
    Ok(Json(user_body(&state, &user).await?))
}

/// The bearer's own profile, with email and live API tokens.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", operation_id = "getMe", security(("bearer" = [])), responses(
    (status = 200, description = "The profile", body = MeBody),
    doc::Unauthorized, doc::RateLimited, doc::ServerSide,
))]
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

#[derive(Deserialize, ToSchema)]
pub struct CreateTokenBody {
    /// 1 to 64 printable characters; "login" is reserved.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    #[schema(minimum = 1, maximum = 365)]
    expires_in_days: i64,
    /// Rights of the token; all of them when absent.
    #[schema(value_type = Option<Vec<doc::TokenScope>>)]
    scopes: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    token: String,
    #[schema(format = Uuid)]
    token_id: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Creates an API token (only with a login token).
#[utoipa::path(post, path = "/api/v1/users/me/tokens", tag = "users", operation_id = "createToken", security(("bearer" = [])),
    request_body = CreateTokenBody,
    responses(
        (status = 201, description = "The new token; its text is shown only here", body = CreatedToken),
        doc::BadRequest, doc::Unauthorized, doc::Forbidden, doc::Conflict, doc::PayloadTooLarge, doc::RateLimited,
        doc::ServerSide,
    )
)]
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

#[derive(Serialize, ToSchema)]
pub struct RevokedToken {
    #[schema(format = Uuid)]
    token_id: String,
    /// Always true.
    revoked: bool,
}

/// Revokes one of the bearer's tokens; revocation is immediate.
#[utoipa::path(delete, path = "/api/v1/users/me/tokens/{token_id}", tag = "users", operation_id = "revokeToken", security(("bearer" = [])),
    params(("token_id" = String, Path, format = Uuid, description = "ID of the token")),
    responses(
        (status = 200, description = "The token is revoked", body = RevokedToken),
        doc::Unauthorized, doc::Forbidden, doc::BadRequest, doc::NotFound, doc::RateLimited, doc::ServerSide,
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token_id): Path<String>,
) -> AppResult<Json<RevokedToken>> {
    // A malformed id names no token that could exist: bad input, like any malformed identifier.
    let id = Uuid::parse_str(&token_id)
        .map_err(|_| ValidationError::new("token_id", format!("token_id must be a UUID, got {}", shown(&token_id))))?;
    let row = tokens::revoke(&state, &viewer, id).await?;
    Ok(Json(RevokedToken { token_id: row.id.to_string(), revoked: true }))
}
