//! Global object identification (the Relay `Node` interface): Package, Version and User carry
//! opaque ids that `node` / `nodes` turn back into objects, so a frontend's cache can key every
//! object by one id and refetch any of them with one query.
use async_graphql::{Context, Interface, Result, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use uuid::Uuid;

use crate::domain::ValidationError;
use crate::error::AppError;
use crate::graphql::loader::{Loaders, PackageById, UserById, VersionById};
use crate::graphql::object::account::User;
use crate::graphql::object::package::{Package, Version};

/// The most ids one `nodes` call takes (a page's worth, like `first`).
pub const MAX_NODES: usize = 100;

/// The kinds of object a global id can name. The kind is part of the id, so an id of one kind
/// never resolves to an object of another even if their database keys were equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Package,
    Version,
    User,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Package => "Package",
            Kind::Version => "Version",
            Kind::User => "User",
        }
    }
}

/// The opaque id of an object: URL-safe base64 of `<Kind>:<uuid>`. Opaque to clients (the form
/// may change), stable for an object's life, and safe in a URL path or query without escaping.
pub fn encode(kind: Kind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.tag(), id.as_hyphenated())))
}

/// The kind and key a global id names, or None when it is not one of ours.
pub fn decode(id: &str) -> Option<(Kind, Uuid)> {
    // A global id is 60 bytes at most; refuse anything longer before decoding it.
    if id.len() > 64 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (tag, key) = text.split_once(':')?;
    let kind = match tag {
        "Package" => Kind::Package,
        "Version" => Kind::Version,
        "User" => Kind::User,
        _ => return None,
    };
    Some((kind, Uuid::parse_str(key).ok()?))
}

/// An object with a global id: fetch it again with `node(id:)`.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "The object's global id: opaque, stable, accepted by `node` and `nodes`."
))]
pub enum Node {
    Package(Package),
    Version(Version),
    User(User),
}

fn parse(id: &ID) -> Result<(Kind, Uuid), AppError> {
    decode(id.as_str()).ok_or_else(|| {
        ValidationError::new("id", "id is not a global id of this registry (take it from an object's `id` field)")
            .into()
    })
}

/// Resolves global ids in one batch per kind: `nodes` of 100 mixed ids costs three statements.
pub async fn load(ctx: &Context<'_>, ids: &[ID]) -> Result<Vec<Option<Node>>> {
    let keys: Vec<(Kind, Uuid)> = ids.iter().map(parse).collect::<Result<_, _>>()?;
    let loaders = ctx.data_unchecked::<Loaders>();
    let of = |k: Kind| keys.iter().filter(move |(kind, _)| *kind == k).map(|(_, id)| *id);
    let (packages, versions, users) = futures::try_join!(
        loaders.load_many(of(Kind::Package).map(PackageById)),
        loaders.load_many(of(Kind::Version).map(VersionById)),
        loaders.load_many(of(Kind::User).map(UserById)),
    )?;
    Ok(keys
        .into_iter()
        .map(|(kind, id)| match kind {
            Kind::Package => packages.get(&PackageById(id)).cloned().map(|p| Node::Package(Package(p))),
            Kind::Version => versions.get(&VersionById(id)).cloned().map(|v| Node::Version(Version(v))),
            Kind::User => users.get(&UserById(id)).cloned().map(|u| Node::User(User(u))),
        })
        .collect())
}
