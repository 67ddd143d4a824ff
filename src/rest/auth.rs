//! POST /auth/register, /auth/login, /auth/refresh
use axum::extract::State;
use axum::Extension;

use crate::ratelimit::ClientIp;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi as doc;
use super::ApiJson;
use crate::auth::Viewer;
use crate::domain::{Email, Password, Username};
use crate::error::AppResult;
use crate::service::accounts::{self, Registration};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    /// 1-32 of [a-z0-9-_] starting with a letter (stored lowercase).
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
    username: String,
    #[schema(format = Email)]
    email: String,
    /// 8 to 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    #[schema(format = Uuid)]
    user_id: String,
    username: String,
    email: String,
    created_at: DateTime<Utc>,
    token: String,
    expires_at: DateTime<Utc>,
}

/// Creates an account and returns a login token.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterBody, responses(
    (status = 201, description = "The account and a login token", body = RegisterResponse),
    doc::BadRequest, doc::Conflict, doc::PayloadTooLarge, doc::RateLimited, doc::ServerSide,
))]
pub async fn register(
    State(state): State<AppState>,
    client: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> AppResult<(StatusCode, Json<RegisterResponse>)> {
    // Password first: an over-long one is refused before anything else is looked at.
    let password = Password::parse(&body.password)?;
    let reg = Registration { username: Username::parse(&body.username)?, email: Email::parse(&body.email)?, password };
    let s = accounts::register(&state, client.map(|c| c.0 .0), reg).await?;
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

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserRef {
    #[schema(format = Uuid)]
    user_id: String,
    username: String,
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    token: String,
    expires_at: DateTime<Utc>,
    user: UserRef,
}

/// Exchanges email and password for a login token. Unknown email and wrong password get the same
/// answer (401 `invalid_credentials`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody, responses(
    (status = 200, description = "A login token", body = LoginResponse),
    doc::BadRequest, doc::Unauthorized, doc::PayloadTooLarge, doc::RateLimited, doc::ServerSide,
))]
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

#[derive(Serialize, ToSchema)]
pub struct RefreshResponse {
    token: String,
    expires_at: DateTime<Utc>,
}

/// Issues a fresh login token for the bearer.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, description = "A new login token", body = RefreshResponse),
    doc::Unauthorized, doc::Forbidden, doc::RateLimited, doc::ServerSide,
))]
pub async fn refresh(State(state): State<AppState>, viewer: Viewer) -> AppResult<Json<RefreshResponse>> {
    let s = accounts::refresh(&state, &viewer).await?;
    Ok(Json(RefreshResponse { token: s.token.token, expires_at: s.token.row.expires_at }))
}
