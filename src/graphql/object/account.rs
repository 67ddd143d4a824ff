use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::auth::Scopes;
use crate::graphql::enums::{PackageSort, TokenScope};
use crate::graphql::loader::prime_packages;
use crate::graphql::object::package::{page, Package, PackageConnection};
use crate::graphql::{cursor, node, state};
use crate::service::read::owned;
use crate::service::tokens::IssuedToken;

/// The packages a user owns or maintains, a page at a time; each node's relations are loaded
/// for the whole page at once.
async fn packages_of(
    ctx: &Context<'_>,
    user_id: uuid::Uuid,
    first: Option<i32>,
    after: Option<String>,
    sort: PackageSort,
) -> Result<PackageConnection> {
    let first = cursor::first(first)?;
    let offset = cursor::after(after.as_deref())?;
    let p = owned::packages_of_user(state(ctx), user_id, sort.into(), offset, first).await?;
    prime_packages(ctx, &p.packages.iter().map(|p| p.id).collect::<Vec<_>>()).await?;
    Ok(page(p.packages.into_iter().map(Package).collect(), offset, p.total))
}

pub struct User(pub crate::service::read::batch::PublicUser);

/// A registry user, as anyone may see them (a profile page).
#[Object]
impl User {
    /// The user's global id (see `Node`); `Viewer.id` is the same id.
    pub(crate) async fn id(&self) -> ID {
        node::encode(node::Kind::User, self.0.id)
    }
    /// The user's name: unique, lowercase.
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Packages this user owns or maintains, fully yanked ones included (their `latestVersion`
    /// is null).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn packages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(
            default_with = "PackageSort::Downloads",
            desc = "Order of the list (RELEVANCE means DOWNLOADS here)."
        )]
        sort: PackageSort,
    ) -> Result<PackageConnection> {
        packages_of(ctx, self.0.id, first, after, sort).await
    }
}

pub struct ViewerObject(pub entity::users::Model);

/// The signed-in user, with what only they may see (email, tokens).
#[Object(name = "Viewer")]
impl ViewerObject {
    /// The signed-in user's global id: the same as their `User.id`.
    async fn id(&self) -> ID {
        node::encode(node::Kind::User, self.0.id)
    }
    /// Your username.
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// Your email address (never shown to anyone else).
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// When your account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Live (unrevoked, unexpired) tokens, newest first.
    async fn tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        let rows = crate::service::tokens::list_live(crate::graphql::state(ctx), self.0.id).await?;
        Ok(rows.into_iter().map(ApiToken).collect())
    }
    /// Packages this user owns or maintains, fully yanked ones included (their `latestVersion`
    /// is null).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn packages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(
            default_with = "PackageSort::Downloads",
            desc = "Order of the list (RELEVANCE means DOWNLOADS here)."
        )]
        sort: PackageSort,
    ) -> Result<PackageConnection> {
        packages_of(ctx, self.0.id, first, after, sort).await
    }
}

pub struct ApiToken(pub entity::api_tokens::Model);

/// An API token's metadata (never its text, which is shown once, when it is created).
#[Object]
impl ApiToken {
    /// The token's id (a UUID): what `revokeApiToken` takes.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The name you gave it (e.g. `ci on laptop`).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it may do.
    async fn scopes(&self) -> Vec<TokenScope> {
        Scopes::from_stored(&self.0.scopes).iter().map(TokenScope::from).collect()
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it stops working.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// When it was last used to authenticate (updated at most once a minute); null if never.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    /// When it was revoked; null while it is live.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// A token just issued: its text is shown this once.
#[derive(SimpleObject)]
pub struct NewApiToken {
    /// The token's text, for `Authorization: Bearer <token>`. Store it now: it is never shown again.
    pub token: String,
    /// The token's metadata.
    pub api_token: ApiToken,
}

impl From<IssuedToken> for NewApiToken {
    fn from(t: IssuedToken) -> Self {
        NewApiToken { token: t.token, api_token: ApiToken(t.row) }
    }
}

/// The result of register, login and refreshToken.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A login token (all scopes), for `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token expires (30 days by default); `refreshToken` gets a fresh one.
    pub expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: ViewerObject,
}

impl From<crate::service::accounts::SignedIn> for AuthPayload {
    fn from(s: crate::service::accounts::SignedIn) -> Self {
        AuthPayload { token: s.token.token, expires_at: s.token.row.expires_at, user: ViewerObject(s.user) }
    }
}
