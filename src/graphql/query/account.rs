use async_graphql::{Context, Object, Result};

use crate::domain::Username;
use crate::error::AppError;
use crate::graphql::object::account::{User, ViewerObject};
use crate::graphql::{auth, state};
use crate::service::accounts;

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user, or null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<ViewerObject>> {
        let Some(v) = auth::maybe_viewer(ctx)? else { return Ok(None) };
        Ok(accounts::find_by_id(state(ctx), v.user_id).await?.map(ViewerObject))
    }

    /// A user by name (case-insensitive), or null. A malformed username is BAD_USER_INPUT.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The username.")] username: String,
    ) -> Result<Option<User>> {
        Ok(accounts::find_by_username(state(ctx), &Username::parse(&username).map_err(AppError::from)?)
            .await?
            .map(|u| User(u.into())))
    }
}
