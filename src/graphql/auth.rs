//! The viewer inside GraphQL: resolved once per HTTP request by the transport, read by resolvers
//! and by the `RequireScope` guard.
use async_graphql::{Context, Guard, Result};

use crate::auth::{Scope, Viewer};
use crate::error::{AppError, AppResult};

/// The outcome of authenticating the request (an invalid token is kept as its error, so anonymous
/// fields still work and authenticated ones report UNAUTHENTICATED).
pub struct RequestViewer(pub AppResult<Option<Viewer>>);

/// The viewer if signed in; errors only when a token was sent and refused.
pub fn maybe_viewer<'a>(ctx: &Context<'a>) -> Result<Option<&'a Viewer>> {
    match ctx.data_opt::<RequestViewer>().map(|v| &v.0) {
        None | Some(Ok(None)) => Ok(None),
        Some(Ok(Some(v))) => Ok(Some(v)),
        Some(Err(AppError::Unavailable(m))) => Err(AppError::Unavailable(m.clone()).into()),
        Some(Err(e)) => Err(AppError::Unauthenticated(e.to_string()).into()),
    }
}

/// The viewer, or UNAUTHENTICATED.
pub fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer> {
    maybe_viewer(ctx)?
        .ok_or_else(|| AppError::Unauthenticated("sign in first: send `Authorization: Bearer <token>`".into()).into())
}

/// Field guard: a signed-in viewer whose token has the scope (when one is named).
pub struct RequireScope(pub Option<Scope>);

impl Guard for RequireScope {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let v = viewer(ctx)?;
        if let Some(scope) = self.0 {
            v.require(scope)?;
        }
        Ok(())
    }
}
