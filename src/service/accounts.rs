//! Accounts: register, login, refresh, and reading users.
use std::net::IpAddr;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use entity::users;

use crate::auth::{Scopes, Viewer};
use crate::domain::{Email, Password, Username};
use crate::error::{AppError, AppResult};
use crate::service::audit;
use crate::service::tokens::{self, IssuedToken, LOGIN_TOKEN_NAME};
use crate::state::AppState;

pub struct Registration {
    pub username: Username,
    pub email: Email,
    pub password: Password,
}

pub struct SignedIn {
    pub user: users::Model,
    pub token: IssuedToken,
}

#[tracing::instrument(name = "accounts.register", skip_all, fields(username = %reg.username.as_str()))]
pub async fn register(state: &AppState, client: Option<IpAddr>, reg: Registration) -> AppResult<SignedIn> {
    // Every registration attempt is charged to the client's address (REST calls and each GraphQL
    // `register` field alike), before any lookup or hash.
    state.limits.register(client)?;
    // Cheap checks first, so a taken name does not cost an Argon2 hash; the unique indexes still
    // decide races.
    if find_by_username(state, &reg.username).await?.is_some() {
        return Err(AppError::Conflict(format!("username {} is already taken", reg.username.as_str())));
    }
    if users::Entity::find().filter(users::Column::Email.eq(reg.email.as_str())).one(&state.db).await?.is_some() {
        return Err(AppError::Conflict("an account with this email already exists".into()));
    }
    let hash = state.hasher.hash(&reg.password).await?;
    let now = Utc::now();
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let user = users::ActiveModel {
        id: Set(Uuid::new_v4()),
        username: Set(reg.username.as_str().to_owned()),
        email: Set(reg.email.as_str().to_owned()),
        password_hash: Set(hash),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match AppError::from(e) {
        AppError::Conflict(_) => AppError::Conflict("username or email is already taken".into()),
        other => other,
    })?;
    let token =
        tokens::issue(&txn, state, user.id, LOGIN_TOKEN_NAME, &Scopes::all(), tokens::login_lifetime(state)).await?;
    audit::record(&txn, audit::account(user.id, "register", serde_json::json!({ "username": user.username }))).await?;
    // The registry stats count users.
    crate::service::generation::bump_and_commit(state, txn).await?;
    Ok(SignedIn { user, token })
}

/// Unknown email, malformed email and wrong password all answer the same, after the same work.
#[tracing::instrument(name = "accounts.login", skip_all)]
pub async fn login(state: &AppState, email: &str, password: &str) -> AppResult<SignedIn> {
    // Over-long passwords are refused before hashing (cost control), like at registration. Only the
    // length: a password set before the character rules of registration must still sign in. The
    // email is parsed (no control characters) before it reaches SQL.
    let password = Password::presented(password).map_err(|_| AppError::InvalidCredentials)?;
    let user = match Email::parse(email) {
        Ok(email) => users::Entity::find().filter(users::Column::Email.eq(email.as_str())).one(&state.db).await?,
        Err(_) => None,
    };
    let ok = state.hasher.verify(&password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => return Err(AppError::InvalidCredentials),
    };
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    // An account deleted since the password check answers like a wrong password.
    tokens::lock_user(&txn, user.id).await.map_err(|e| match e {
        AppError::Unauthenticated(_) => AppError::InvalidCredentials,
        other => other,
    })?;
    let (token, evicted) = tokens::issue_login(&txn, state, user.id).await?;
    audit::record(
        &txn,
        audit::account(user.id, "login", serde_json::json!({ "token_id": token.row.id, "evicted_token_ids": evicted })),
    )
    .await?;
    txn.commit().await?;
    Ok(SignedIn { user, token })
}

/// Rotates a login token: issues a fresh one and revokes the one presented. API tokens cannot be
/// refreshed (they would come back with every scope). Each call (each GraphQL `refreshToken` field)
/// is charged to the user's token budget, and the login-token cap holds.
#[tracing::instrument(name = "accounts.refresh", skip_all, fields(user_id = %viewer.user_id))]
pub async fn refresh(state: &AppState, viewer: &Viewer) -> AppResult<SignedIn> {
    viewer.require_login_token()?;
    state.limits.tokens(viewer.user_id)?;
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let user = tokens::lock_user(&txn, viewer.user_id).await?;
    // The presented token is revoked first, so its slot is free for the new one. A token rotates
    // once: the viewer was authenticated when the request arrived, and an earlier `refreshToken`
    // field of the same request (or a concurrent refresh, which the user lock queues behind this
    // one) may have revoked it since. Without this, 2,000 aliased fields minted 2,000 tokens.
    let rotated = entity::api_tokens::Entity::update_many()
        .col_expr(entity::api_tokens::Column::RevokedAt, sea_orm::sea_query::Expr::value(Utc::now()))
        .filter(entity::api_tokens::Column::Id.eq(viewer.token_id))
        .filter(entity::api_tokens::Column::UserId.eq(viewer.user_id))
        .filter(entity::api_tokens::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if rotated.rows_affected == 0 {
        return Err(AppError::Unauthenticated("this login token was already refreshed or revoked".into()));
    }
    let (token, evicted) = tokens::issue_login(&txn, state, user.id).await?;
    audit::record(
        &txn,
        audit::account(
            user.id,
            "token_refresh",
            serde_json::json!({
                "old_token_id": viewer.token_id,
                "token_id": token.row.id,
                "evicted_token_ids": evicted,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(SignedIn { user, token })
}

pub async fn find_by_id(state: &AppState, id: Uuid) -> AppResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(&state.db).await?)
}

/// Usernames are stored lowercase (`Username::parse` lowercases), so lookups are case-insensitive.
pub async fn find_by_username(state: &AppState, username: &Username) -> AppResult<Option<users::Model>> {
    Ok(users::Entity::find().filter(users::Column::Username.eq(username.as_str())).one(&state.db).await?)
}
