//! POST /auth/register, /auth/login, /auth/refresh
use axum::extract::State;
use axum::Extension;

use crate::ratelimit::ClientIp;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::auth::Viewer;
use crate::domain::{Email, Password, Username};
use crate::error::AppResult;
use crate::service::accounts::{self, Registration};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterBody {
    username: String,
    email: String,
    password: String,
}

#[derive(Serialize)]
pub struct RegisterResponse {
    user_id: String,
    username: String,
    email: String,
    created_at: DateTime<Utc>,
    token: String,
    expires_at: DateTime<Utc>,
}

pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> AppResult<(StatusCode, Json<RegisterResponse>)> {
    // Password first: an over-long one is refused before anything else is looked at.
    let password = Password::parse(&body.password)?;
    let reg = Registration { username: Username::parse(&body.username)?, email: Email::parse(&body.email)?, password };
    let s = accounts::register(&state, reg).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user_id: s.user.id.to_string(),
            username: s.user.username,
            email: s.user.email,
            created_at: s.user.created_at,
            token: s.token.token,
            expires_at: s.token.row.expires_at,
        }),
    ))
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize)]
pub struct UserRef {
    user_id: String,
    username: String,
    email: String,
}

#[derive(Serialize)]
pub struct LoginResponse {
    token: String,
    expires_at: DateTime<Utc>,
    user: UserRef,
}

pub async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<LoginBody>,
) -> AppResult<Json<LoginResponse>> {
    state.limits.login(client.map(|c| c.0 .0), &body.email)?;
    let s = accounts::login(&state, &body.email, &body.password).await?;
    Ok(Json(LoginResponse {
        token: s.token.token,
        expires_at: s.token.row.expires_at,
        user: UserRef { user_id: s.user.id.to_string(), username: s.user.username, email: s.user.email },
    }))
}

#[derive(Serialize)]
pub struct RefreshResponse {
    token: String,
    expires_at: DateTime<Utc>,
}

pub async fn refresh(State(state): State<AppState>, viewer: Viewer) -> AppResult<Json<RefreshResponse>> {
    let s = accounts::refresh(&state, &viewer).await?;
    Ok(Json(RefreshResponse { token: s.token.token, expires_at: s.token.row.expires_at }))
}
