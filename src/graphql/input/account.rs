use async_graphql::InputObject;

use crate::graphql::enums::TokenScope;

#[derive(InputObject)]
pub struct RegisterInput {
    pub username: String,
    pub email: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct CreateApiTokenInput {
    pub name: String,
    /// 1 to 365.
    #[graphql(default = 90)]
    pub expires_in_days: i64,
    /// Defaults to every scope.
    pub scopes: Option<Vec<TokenScope>>,
}
