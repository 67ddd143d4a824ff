use async_graphql::{Context, Object, Result, ID};

use crate::domain::ValidationError;
use crate::error::AppError;
use crate::graphql::node::{self, Node, MAX_NODES};

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object a global id names (any `id` of a Package, Version or User), or null when it no
    /// longer exists. An id that is not one of this registry's is BAD_USER_INPUT.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id, as read from an object's `id`.")] id: ID,
    ) -> Result<Option<Node>> {
        Ok(node::load(ctx, std::slice::from_ref(&id)).await?.pop().flatten())
    }

    /// The objects the ids name, in the order asked, with null for each that no longer exists:
    /// refetches a whole client cache in one request. At most 100 ids.
    #[graphql(complexity = "ids.len() * child_complexity")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ids, 0 to 100 of them.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            let message = format!("ids takes at most {MAX_NODES} ids, got {}", ids.len());
            return Err(AppError::from(ValidationError::new("ids", message)).into());
        }
        node::load(ctx, &ids).await
    }
}
