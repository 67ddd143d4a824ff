//! The answers of `validatePackage` (a dry-run publish) and `nameCheck`.
use async_graphql::SimpleObject;

use crate::domain;
use crate::graphql::object::package::Package;

/// Every problem a publish of an upload would meet now; nothing was stored.
#[derive(SimpleObject)]
pub struct PackageValidation {
    /// True when a publish of this tarball by you would pass every check now.
    pub ok: bool,
    /// Every problem found (empty when `ok`), in the order the checks ran. A real publish that
    /// fails carries the same list in its error's `extensions.problems`.
    pub problems: Vec<Problem>,
}

/// One thing wrong with an upload.
#[derive(SimpleObject)]
#[graphql(name = "PublishProblem")]
pub struct Problem {
    /// Stable machine code to branch on, e.g. `NAME_INVALID`, `VERSION_TAKEN`,
    /// `DEPENDENCY_UNKNOWN`, `MANIFEST_MISMATCH`, `TARBALL_PATH_TRAVERSAL`, `TOO_LARGE` (the README
    /// lists every code).
    pub code: String,
    /// The raven.toml field or input at fault (`name`, `version`, `dependencies`, ...), if one is.
    pub field: Option<String>,
    /// The path of the tarball entry at fault, if one is.
    pub path: Option<String>,
    /// An explanation for people; do not parse it.
    pub message: String,
}

impl From<domain::PublishProblem> for Problem {
    fn from(p: domain::PublishProblem) -> Self {
        Problem { code: p.code.to_owned(), field: p.field, path: p.path, message: p.message }
    }
}

/// Whether a package name may be taken, and which packages it could be mistaken for.
#[derive(SimpleObject)]
pub struct NameCheck {
    /// True when you could publish a new package under this name now: it is valid, not taken,
    /// and not confusable with a package you do not own. Anonymous callers own none.
    pub available: bool,
    /// True when the name follows the name rules and is not reserved.
    pub valid: bool,
    /// Why the name is not valid or not available (empty when it is available).
    pub reasons: Vec<String>,
    /// Existing packages this name could be mistaken for: equal once `-`, `_`, `.`, case and
    /// look-alike characters are folded, or one edit away from a popular package. Includes
    /// packages you own (which do not block you).
    pub similar: Vec<Package>,
}
