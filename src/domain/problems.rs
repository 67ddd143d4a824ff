//! Publish problems: every check of a publish appends to a [`Problems`] collector instead of
//! stopping at the first refusal, so a dry run can list them all. A real publish turns the first
//! one back into the error it has always answered, with the whole list beside it.
//!
//! Codes are a contract (clients branch on them): add new ones, never rename one.
use serde::Serialize;

use super::ValidationError;

pub mod code {
    /// The tarball is not a readable gzip'd tar of the accepted shape (corrupt, not gzip, trailing
    /// data, refused extension headers, duplicate `raven.toml`, ...).
    pub const TARBALL_INVALID: &str = "TARBALL_INVALID";
    /// An entry path is absolute, has a `..` component, a backslash or a drive prefix.
    pub const TARBALL_PATH_TRAVERSAL: &str = "TARBALL_PATH_TRAVERSAL";
    /// An entry path is not UTF-8, has control characters, is too long, or collides with another.
    pub const TARBALL_PATH_INVALID: &str = "TARBALL_PATH_INVALID";
    /// An entry is a link, a device, a FIFO, or setuid/setgid.
    pub const TARBALL_ENTRY_REFUSED: &str = "TARBALL_ENTRY_REFUSED";
    /// A size limit: compressed upload, unpacked size, entry count, or raven.toml size.
    pub const TOO_LARGE: &str = "TOO_LARGE";
    /// No `raven.toml` at the archive root.
    pub const MANIFEST_MISSING: &str = "MANIFEST_MISSING";
    /// `raven.toml` is not valid TOML or lacks its `[package]` table.
    pub const MANIFEST_INVALID: &str = "MANIFEST_INVALID";
    /// The upload's metadata names another package or version than `raven.toml`.
    pub const MANIFEST_MISMATCH: &str = "MANIFEST_MISMATCH";
    /// The package name breaks the name rules.
    pub const NAME_INVALID: &str = "NAME_INVALID";
    /// The package name is on the reserved list.
    pub const NAME_RESERVED: &str = "NAME_RESERVED";
    /// A new package's name is confusable with an existing package's.
    pub const NAME_CONFUSABLE: &str = "NAME_CONFUSABLE";
    /// The version is not strict SemVer 2.0.
    pub const VERSION_INVALID: &str = "VERSION_INVALID";
    /// This version of the package is already published.
    pub const VERSION_TAKEN: &str = "VERSION_TAKEN";
    /// Description, license, links, authors or keywords break their rules.
    pub const METADATA_INVALID: &str = "METADATA_INVALID";
    /// A dependency is malformed, or has a `path` or `git` source.
    pub const DEPENDENCY_INVALID: &str = "DEPENDENCY_INVALID";
    /// A dependency names a package this registry does not have.
    pub const DEPENDENCY_UNKNOWN: &str = "DEPENDENCY_UNKNOWN";
    /// The README holds control characters it cannot be stored with.
    pub const README_INVALID: &str = "README_INVALID";
    /// The caller may not publish this package (not an owner or maintainer, or a token scope lacks).
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    /// Any other refused input.
    pub const INVALID: &str = "INVALID";
}

/// Problems listed for one upload at most; the checks go on (their work is bounded by the
/// tarball limits), later problems are only counted.
pub const MAX_PROBLEMS: usize = 100;

/// One thing wrong with an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishProblem {
    /// Stable machine code (see [`code`]).
    pub code: &'static str,
    /// The manifest field or input at fault, if one is.
    pub field: Option<String>,
    /// The tarball entry at fault, if one is.
    pub path: Option<String>,
    /// For people.
    pub message: String,
}

impl PublishProblem {
    pub fn new(code: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self { code, field: field.map(str::to_owned), path: None, message: message.into() }
    }
}

impl From<&ValidationError> for PublishProblem {
    fn from(v: &ValidationError) -> Self {
        Self {
            code: v.code.unwrap_or_else(|| code_for_field(&v.field)),
            field: (v.path.is_none() || v.field != "tarball").then(|| v.field.clone()),
            path: v.path.clone(),
            message: v.to_string(),
        }
    }
}

/// The code of a refusal whose site gave none: the field it names says what was wrong.
fn code_for_field(field: &str) -> &'static str {
    match field {
        "tarball" => code::TARBALL_INVALID,
        "raven.toml" => code::MANIFEST_INVALID,
        "name" => code::NAME_INVALID,
        "version" => code::VERSION_INVALID,
        "dependencies" => code::DEPENDENCY_INVALID,
        "readme" => code::README_INVALID,
        "description" | "license" | "repository" | "homepage" | "authors" | "keywords" => code::METADATA_INVALID,
        _ => code::INVALID,
    }
}

/// The collector every check appends to.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<PublishProblem>,
    /// Problems found beyond [`MAX_PROBLEMS`].
    dropped: usize,
}

impl Problems {
    pub fn push(&mut self, problem: PublishProblem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(problem);
        } else {
            self.dropped += 1;
        }
    }

    pub fn refused(&mut self, v: &ValidationError) {
        self.push(v.into());
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn first(&self) -> Option<&PublishProblem> {
        self.list.first()
    }

    pub fn has(&self, code: &str) -> bool {
        self.list.iter().any(|p| p.code == code)
    }

    /// The list, with a last entry saying how many more were found when some were dropped.
    pub fn into_vec(mut self) -> Vec<PublishProblem> {
        if self.dropped > 0 {
            let more = format!("{} more problems were found and not listed", self.dropped);
            self.list.push(PublishProblem::new(code::INVALID, None, more));
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_site_then_the_field() {
        let p = PublishProblem::from(&ValidationError::new("keywords", "too many"));
        assert_eq!(p.code, code::METADATA_INVALID);
        assert_eq!(p.field.as_deref(), Some("keywords"));
        let v = ValidationError::new("tarball", "escapes").with_code(code::TARBALL_PATH_TRAVERSAL).at_path("../x");
        let p = PublishProblem::from(&v);
        assert_eq!((p.code, p.field, p.path.as_deref()), (code::TARBALL_PATH_TRAVERSAL, None, Some("../x")));
    }

    #[test]
    fn the_list_is_bounded_and_says_so() {
        let mut problems = Problems::default();
        for i in 0..MAX_PROBLEMS + 5 {
            problems.push(PublishProblem::new(code::INVALID, None, format!("{i}")));
        }
        let list = problems.into_vec();
        assert_eq!(list.len(), MAX_PROBLEMS + 1);
        assert!(list.last().unwrap().message.contains("5 more"), "{:?}", list.last());
    }
}
