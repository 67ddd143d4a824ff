use async_graphql::InputObject;

use crate::graphql::enums::TokenScope;

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 1 to 32 of `a-z 0-9 - _`, starting with a letter; unique.
    pub username: String,
    /// A valid email address; unique.
    pub email: String,
    /// 8 to 1,024 bytes.
    pub password: String,
}

/// A new API token.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// A name to recognise it by in your token list.
    pub name: String,
    /// Days until it expires: 1 to 365.
    #[graphql(default = 90)]
    pub expires_in_days: i64,
    /// What it may do; defaults to every scope.
    pub scopes: Option<Vec<TokenScope>>,
}
