//! The root Mutation type, merged from one object per resource.
mod account;
mod package;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct Mutation(account::AccountMutation, package::PackageMutation);
