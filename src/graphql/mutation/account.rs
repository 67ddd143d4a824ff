use async_graphql::{Context, Object, Result, ID};
use uuid::Uuid;

use crate::domain::{shown, Email, Password, Username, ValidationError};
use crate::error::AppError;
use crate::graphql::auth::{viewer, RequireScope};
use crate::graphql::input::account::{CreateApiTokenInput, RegisterInput};
use crate::graphql::object::account::{ApiToken, AuthPayload, NewApiToken};
use crate::graphql::state;
use crate::ratelimit::ClientIp;
use crate::service::{accounts, tokens};

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account.")] input: RegisterInput,
    ) -> Result<AuthPayload> {
        let password = Password::parse(&input.password).map_err(AppError::from)?;
        let reg = accounts::Registration {
            username: Username::parse(&input.username).map_err(AppError::from)?,
            email: Email::parse(&input.email).map_err(AppError::from)?,
            password,
        };
        // Each `register` field is charged to the client's registration budget (in the service),
        // so aliasing many into one document buys nothing.
        let client = ctx.data_opt::<ClientIp>().map(|c| c.0);
        Ok(accounts::register(state(ctx), client, reg).await?.into())
    }

    /// Signs in with email and password.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email address.")] email: String,
        #[graphql(desc = "The account's password.")] password: String,
    ) -> Result<AuthPayload> {
        // Each login field counts, so aliasing several logins into one document buys nothing.
        state(ctx).limits.login(ctx.data_opt::<ClientIp>().map(|c| c.0), &email)?;
        Ok(accounts::login(state(ctx), &email, &password).await?.into())
    }

    /// A fresh login token; a login token used to call this is revoked.
    #[graphql(guard = "RequireScope(None)")]
    async fn refresh_token(&self, ctx: &Context<'_>) -> Result<AuthPayload> {
        Ok(accounts::refresh(state(ctx), viewer(ctx)?).await?.into())
    }

    /// Creates a scoped API token; its text is returned only here.
    #[graphql(guard = "RequireScope(None)")]
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Name, lifetime and scopes of the token.")] input: CreateApiTokenInput,
    ) -> Result<NewApiToken> {
        let scopes =
            input.scopes.map(|s| s.into_iter().map(|sc| crate::auth::Scope::from(sc).as_str().to_owned()).collect());
        let req = tokens::NewToken::parse(&input.name, input.expires_in_days, scopes).map_err(AppError::from)?;
        Ok(tokens::create(state(ctx), viewer(ctx)?, req).await?.into())
    }

    /// Revokes one of your tokens, effective immediately.
    #[graphql(guard = "RequireScope(None)")]
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token's `id` (from `me { tokens { id } }`).")] id: ID,
    ) -> Result<ApiToken> {
        let id = Uuid::parse_str(&id)
            .map_err(|_| ValidationError::new("id", format!("id must be a token id (a UUID), got {}", shown(&id))))
            .map_err(AppError::from)?;
        Ok(ApiToken(tokens::revoke(state(ctx), viewer(ctx)?, id).await?))
    }
}
