//! API tokens: creation, listing, revocation, and authentication of a presented token.
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use uuid::Uuid;

use entity::{api_tokens, users};

use crate::auth::{Scopes, Viewer};
use crate::domain::ValidationError;
use crate::error::{AppError, AppResult};
pub use crate::auth::LOGIN_TOKEN_NAME;
use crate::service::audit;
use crate::state::AppState;

/// Beyond this many live API tokens a user must revoke some first. Login tokens are not counted:
/// they have their own cap (MAX_LOGIN_TOKENS), at which the oldest is revoked instead.
pub const MAX_LIVE_TOKENS: u64 = 500;
/// last_used_at is refreshed at most this often, so reads do not turn into writes.
const LAST_USED_GRANULARITY_SECS: i64 = 300;

/// A freshly issued token: its text (shown once) and its row.
pub struct IssuedToken {
    pub token: String,
    pub row: api_tokens::Model,
}

/// A validated request for an API token.
pub struct NewToken {
    pub name: String,
    pub expires_in_days: u32,
    pub scopes: Scopes,
}

impl NewToken {
    pub fn parse(name: &str, expires_in_days: i64, scopes: Option<Vec<String>>) -> Result<NewToken, ValidationError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ValidationError::new("name", "token name must be 1 to 64 printable characters"));
        }
        // The name marks session tokens, which alone may manage tokens.
        if name.eq_ignore_ascii_case(LOGIN_TOKEN_NAME) {
            return Err(ValidationError::new("name", "the token name \"login\" is reserved"));
        }
        if !(1..=365).contains(&expires_in_days) {
            return Err(ValidationError::new("expires_in_days", "expiry must be between 1 and 365 days"));
        }
        let scopes = match scopes {
            None => Scopes::all(),
            Some(list) => Scopes::new(list.iter().map(|s| crate::auth::Scope::parse(s)).collect::<Result<_, _>>()?)?,
        };
        Ok(NewToken { name: name.to_owned(), expires_in_days: expires_in_days as u32, scopes })
    }
}

/// Inserts a token row (inside the caller's transaction) and signs its JWT.
pub async fn issue(
    db: &impl ConnectionTrait,
    state: &AppState,
    user_id: Uuid,
    name: &str,
    scopes: &Scopes,
    lifetime: Duration,
) -> AppResult<IssuedToken> {
    let now = Utc::now();
    let row = api_tokens::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        name: Set(name.to_owned()),
        scopes: Set(scopes.to_stored()),
        created_at: Set(now),
        expires_at: Set(now + lifetime),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    let token = state.keys.issue(user_id, row.id, row.created_at, row.expires_at)?;
    Ok(IssuedToken { token, row })
}

pub fn login_lifetime(state: &AppState) -> Duration {
    Duration::days(i64::from(state.config.login_token_days))
}

/// Locks the user's row until the transaction ends. Token writes that count the user's tokens and
/// then insert one (the API-token cap, the login-token cap) take it first, so on PostgreSQL two of
/// them run one after the other and the second counts the first's token: under READ COMMITTED, 20
/// concurrent creations at 495 live tokens made 504. `FOR NO KEY UPDATE` does not block inserts
/// that merely reference the user. SQLite needs no row lock (one writer at a time, see
/// `db::begin_write`; sea-query leaves the clause out there).
pub async fn lock_user(txn: &sea_orm::DatabaseTransaction, user_id: Uuid) -> AppResult<users::Model> {
    users::Entity::find_by_id(user_id)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the account no longer exists".into()))
}

/// Issues a login token (login, refresh) within the login-token cap: when the user
/// already holds `max_login_tokens` live login tokens, the oldest are revoked to make room, so a
/// sign-in is never refused for it. Call with the user's row locked (`lock_user`). Returns the new
/// token and the ids of the tokens it evicted.
pub async fn issue_login(
    txn: &sea_orm::DatabaseTransaction,
    state: &AppState,
    user_id: Uuid,
) -> AppResult<(IssuedToken, Vec<Uuid>)> {
    let now = Utc::now();
    // The newest `max - 1` stay; the new token makes `max`. (Ids only, newest first; SQLite allows
    // no OFFSET without a LIMIT, so the skip happens here.)
    let keep = state.config.max_login_tokens.max(1) as usize - 1;
    let evicted: Vec<Uuid> = live_tokens_query(user_id, now)
        .filter(api_tokens::Column::Name.eq(LOGIN_TOKEN_NAME))
        .select_only()
        .column(api_tokens::Column::Id)
        .order_by_desc(api_tokens::Column::CreatedAt)
        .order_by_desc(api_tokens::Column::Id)
        .into_tuple::<Uuid>()
        .all(txn)
        .await?
        .into_iter()
        .skip(keep)
        .collect();
    if !evicted.is_empty() {
        api_tokens::Entity::update_many()
            .col_expr(api_tokens::Column::RevokedAt, Expr::value(now))
            .filter(api_tokens::Column::Id.is_in(crate::service::inlist::padded(evicted.iter().copied())))
            .exec(txn)
            .await?;
    }
    let issued = issue(txn, state, user_id, LOGIN_TOKEN_NAME, &Scopes::all(), login_lifetime(state)).await?;
    Ok((issued, evicted))
}

/// Verifies a presented token: signature and claims, then its row (exists, same user, not revoked,
/// not expired). Every instance reads the row, so a revocation anywhere is seen everywhere at once.
#[tracing::instrument(name = "auth.authenticate", skip_all)]
pub async fn authenticate(state: &AppState, token: &str) -> AppResult<Viewer> {
    let claims = state.keys.verify(token)?;
    let refused = || AppError::Unauthenticated("invalid or expired token".into());
    let row = api_tokens::Entity::find_by_id(claims.jti).one(&state.db).await?.ok_or_else(refused)?;
    let now = Utc::now();
    if row.user_id != claims.sub || row.revoked_at.is_some() || row.expires_at <= now {
        return Err(refused());
    }
    if row.last_used_at.is_none_or(|t| (now - t).num_seconds() > LAST_USED_GRANULARITY_SECS) {
        let mut active: api_tokens::ActiveModel = row.clone().into();
        active.last_used_at = Set(Some(now));
        // Bookkeeping only: a failure here must not refuse an otherwise valid request.
        if let Err(e) = active.update(&state.db).await {
            tracing::warn!(error = %e, "could not record token use");
        }
    }
    Ok(Viewer {
        user_id: row.user_id,
        token_id: row.id,
        token_name: row.name,
        scopes: Scopes::from_stored(&row.scopes),
    })
}

#[tracing::instrument(name = "tokens.create", skip_all, fields(user_id = %viewer.user_id))]
pub async fn create(state: &AppState, viewer: &Viewer, req: NewToken) -> AppResult<IssuedToken> {
    viewer.require_login_token()?;
    state.limits.tokens(viewer.user_id)?;
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    lock_user(&txn, viewer.user_id).await?;
    let live = live_tokens_query(viewer.user_id, Utc::now())
        .filter(api_tokens::Column::Name.ne(LOGIN_TOKEN_NAME))
        .count(&txn)
        .await?;
    if live >= MAX_LIVE_TOKENS {
        return Err(AppError::Conflict(format!(
            "you already have {MAX_LIVE_TOKENS} live API tokens: revoke some before creating more"
        )));
    }
    let issued =
        issue(&txn, state, viewer.user_id, &req.name, &req.scopes, Duration::days(req.expires_in_days.into())).await?;
    audit::record(
        &txn,
        audit::account(
            viewer.user_id,
            "token_create",
            serde_json::json!({ "token_id": issued.row.id, "name": req.name }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(issued)
}

fn live_tokens_query(user_id: Uuid, now: DateTime<Utc>) -> sea_orm::Select<api_tokens::Entity> {
    api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(user_id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .filter(api_tokens::Column::ExpiresAt.gt(now))
}

/// The user's live tokens, newest first.
pub async fn list_live(state: &AppState, user_id: Uuid) -> AppResult<Vec<api_tokens::Model>> {
    Ok(live_tokens_query(user_id, Utc::now()).order_by_desc(api_tokens::Column::CreatedAt).all(&state.db).await?)
}

/// Revokes one of the viewer's own tokens. Someone else's token id answers 404, like a missing one.
#[tracing::instrument(name = "tokens.revoke", skip_all, fields(user_id = %viewer.user_id, token_id = %token_id))]
pub async fn revoke(state: &AppState, viewer: &Viewer, token_id: Uuid) -> AppResult<api_tokens::Model> {
    // Any token may revoke itself; revoking others needs a session.
    if token_id != viewer.token_id {
        viewer.require_login_token()?;
    }
    let (_turn, txn) = crate::db::begin_write(&state.db).await?;
    let row = api_tokens::Entity::find_by_id(token_id)
        .one(&txn)
        .await?
        .filter(|t| t.user_id == viewer.user_id)
        .ok_or_else(|| AppError::NotFound(format!("no token {token_id}")))?;
    let row = if row.revoked_at.is_none() {
        let mut active: api_tokens::ActiveModel = row.into();
        active.revoked_at = Set(Some(Utc::now()));
        let row = active.update(&txn).await?;
        audit::record(
            &txn,
            audit::account(viewer.user_id, "token_revoke", serde_json::json!({ "token_id": token_id })),
        )
        .await?;
        row
    } else {
        row
    };
    txn.commit().await?;
    Ok(row)
}
