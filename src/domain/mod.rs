//! The registry's domain rules as pure, synchronous code.
//!
//! Everything user-supplied crosses into the rest of the server through the
//! newtypes defined here ("parse, don't validate"): once a value has been
//! turned into a `PackageName`, `Username`, `Manifest`, ... the rest of the
//! code can rely on its invariants without re-checking them. Nothing in this
//! module touches the network, the database or the clock.

pub mod account;
pub mod confusable;
pub mod events;
pub mod keyword;
pub mod manifest;
pub mod names;
pub mod problems;
pub mod resolve;
pub mod tarball;
pub mod text;

/// A refusal of user input. `field` names the input at fault (e.g. "name", "version", "tarball", "raven.toml", "password").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
    /// The stable problem code (see `problems`) when the refusal site knows a more precise one
    /// than its field implies.
    pub code: Option<&'static str>,
    /// The tarball entry the refusal concerns, when it concerns one.
    pub path: Option<String>,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), code: None, path: None }
    }

    /// The same refusal with a precise problem code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The same refusal, about the tarball entry `path`.
    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The same refusal reported under another field name: a GraphQL argument called `package`
    /// holds a package name that the parser reports as `name`.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

/// Renders user input for an error message: quoted, control characters
/// escaped, and cut short, so a hostile multi-megabyte value cannot bloat
/// logs or responses.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

pub use account::*;
pub use keyword::*;
pub use manifest::*;
pub use names::*;
pub use problems::{Problems, PublishProblem};
pub use tarball::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_displays_field_and_message() {
        let e = ValidationError::new("name", "must not be empty");
        assert_eq!(e.field, "name");
        assert_eq!(e.to_string(), "name: must not be empty");
    }

    #[test]
    fn shown_quotes_escapes_and_truncates() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(1000);
        let s = shown(&long);
        assert!(s.len() < 100, "{s}");
        assert!(s.ends_with("..."));
    }
}
