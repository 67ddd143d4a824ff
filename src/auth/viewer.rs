//! The Viewer: the verified identity behind a request. REST handlers take `Viewer` as an
//! extractor (401 without a valid token; see `crate::extract`); GraphQL resolvers read the same
//! value from the request data.
use uuid::Uuid;

use super::{Scope, Scopes};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: Uuid,
    pub token_id: Uuid,
    pub token_name: String,
    pub scopes: Scopes,
}

impl Viewer {
    /// Token management and refresh need a login (session) token: an API token, whatever its
    /// scopes, must not mint a more powerful token or revoke the user's other tokens.
    pub fn require_login_token(&self) -> AppResult<()> {
        if self.token_name == super::LOGIN_TOKEN_NAME {
            Ok(())
        } else {
            Err(AppError::Forbidden("this needs a login token (from login or register), not an API token".into()))
        }
    }

    /// Refuses with 403 when the token lacks `scope`.
    pub fn require(&self, scope: Scope) -> AppResult<()> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!("this token lacks the {scope} scope")))
        }
    }
}
