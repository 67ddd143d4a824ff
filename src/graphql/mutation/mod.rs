//! The root Mutation type, merged from one object per resource.
mod account;
mod package;

use async_graphql::MergedObject;

/// Writes: accounts and tokens, publishing, yanking and owners. Sign in with `login` and send
/// its token as `Authorization: Bearer <token>`; mutations are POST only.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct Mutation(account::AccountMutation, package::PackageMutation);
