//! Authentication: password hashing, token issue and verification, and the Viewer that every
//! authorised operation asks "who is this and may they do X".
pub mod password;
pub mod token;
pub mod viewer;

use std::fmt;

pub use password::PasswordHasher;
pub use token::TokenKeys;
pub use viewer::Viewer;

/// The name of the token that login and registration issue (the session token).
pub const LOGIN_TOKEN_NAME: &str = "login";

use crate::domain::ValidationError;

/// What a token may do. Login tokens carry all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    PublishNew,
    PublishUpdate,
    Yank,
    ChangeOwners,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::PublishNew, Scope::PublishUpdate, Scope::Yank, Scope::ChangeOwners];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PublishNew => "publish-new",
            Scope::PublishUpdate => "publish-update",
            Scope::Yank => "yank",
            Scope::ChangeOwners => "change-owners",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, ValidationError> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s).ok_or_else(|| {
            ValidationError::new(
                "scopes",
                format!("unknown scope {s:?}: expected one of publish-new, publish-update, yank, change-owners"),
            )
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sorted, de-duplicated set of scopes, stored space-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes(Scope::ALL.to_vec())
    }

    pub fn new(mut scopes: Vec<Scope>) -> Result<Scopes, ValidationError> {
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(ValidationError::new("scopes", "a token needs at least one scope"));
        }
        Ok(Scopes(scopes))
    }

    /// Reads the stored form; unknown words (from a newer version) are ignored rather than fatal.
    pub fn from_stored(s: &str) -> Scopes {
        Scopes(s.split_whitespace().filter_map(|w| Scope::parse(w).ok()).collect())
    }

    pub fn to_stored(&self) -> String {
        self.0.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }

    pub fn contains(&self, s: Scope) -> bool {
        self.0.contains(&s)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}
