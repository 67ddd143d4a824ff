//! The input of a dependency resolution: the root dependencies a project asks for, parsed before
//! any SQL runs. Requirements use the same `semver::VersionReq` syntax (and the same normalised
//! spelling) as the dependencies published packages declare.
use std::fmt;

use super::{shown, DependencyKind, PackageName, ValidationError};

/// Root dependencies one resolution may ask for.
pub const MAX_ROOT_DEPENDENCIES: usize = 100;

/// The longest requirement text accepted (published requirements are far shorter).
pub const MAX_REQ_CHARS: usize = 256;

const FIELD: &str = "dependencies";

/// A version requirement (`^1.2`, `~0.3`, `=1.0.1`, `>=1, <3`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    req: semver::VersionReq,
    text: String,
}

impl Requirement {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        if input.chars().count() > MAX_REQ_CHARS {
            return Err(ValidationError::new(
                "req",
                format!("a version requirement must be at most {MAX_REQ_CHARS} characters long"),
            ));
        }
        match semver::VersionReq::parse(input) {
            Ok(req) => Ok(Requirement { text: req.to_string(), req }),
            Err(e) => Err(ValidationError::new("req", format!("invalid version requirement {}: {e}", shown(input)))),
        }
    }

    pub fn as_semver(&self) -> &semver::VersionReq {
        &self.req
    }

    /// The requirement as `semver` prints it (`1.2` becomes `^1.2`), as publish stores them.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The one version this requirement pins exactly (`=1.0.1`, `=2.0.0-rc.1`), if it is such a
    /// pin: the only kind of requirement that may select a yanked version.
    pub fn exact_pin(&self) -> Option<semver::Version> {
        match self.req.comparators.as_slice() {
            [c] if c.op == semver::Op::Exact => Some(semver::Version {
                major: c.major,
                minor: c.minor?,
                patch: c.patch?,
                pre: c.pre.clone(),
                build: semver::BuildMetadata::EMPTY,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One root dependency of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDependency {
    pub name: PackageName,
    pub req: Requirement,
    pub kind: DependencyKind,
}

/// Parses the root dependencies (name, requirement, kind) as the client sent them: at most
/// [`MAX_ROOT_DEPENDENCIES`], each name and requirement well formed. Errors name the entry.
pub fn root_dependencies(
    input: impl IntoIterator<Item = (String, String, DependencyKind)>,
) -> Result<Vec<RootDependency>, ValidationError> {
    let mut out = Vec::new();
    for (i, (name, req, kind)) in input.into_iter().enumerate() {
        if i == MAX_ROOT_DEPENDENCIES {
            return Err(ValidationError::new(
                FIELD,
                format!("at most {MAX_ROOT_DEPENDENCIES} root dependencies may be resolved at once"),
            ));
        }
        let entry = |e: ValidationError| {
            ValidationError::new(FIELD, format!("dependency {i} ({}): {}", shown(&name), e.message))
        };
        let parsed_name = PackageName::lookup(&name).map_err(entry)?;
        let req = Requirement::parse(&req).map_err(entry)?;
        out.push(RootDependency { name: parsed_name, req, kind });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_normalise_and_know_exact_pins() {
        let r = Requirement::parse("1.2").unwrap();
        assert_eq!(r.as_str(), "^1.2");
        assert_eq!(Requirement::parse("=1.0.1").unwrap().exact_pin(), Some(semver::Version::new(1, 0, 1)));
        assert_eq!(Requirement::parse("=1.0").unwrap().exact_pin(), None, "=1.0 matches every 1.0.x");
        assert_eq!(Requirement::parse("~1.0.1").unwrap().exact_pin(), None);
        assert_eq!(Requirement::parse(">=1.0.1, <=1.0.1").unwrap().exact_pin(), None);
        let pre = Requirement::parse("=2.0.0-rc.1").unwrap().exact_pin().unwrap();
        assert_eq!(pre.to_string(), "2.0.0-rc.1");
        assert!(Requirement::parse("not a req").is_err());
        assert!(Requirement::parse(&"1".repeat(300)).is_err());
    }

    #[test]
    fn root_dependencies_are_bounded_and_errors_name_the_entry() {
        let ok = root_dependencies([("a".to_owned(), "^1".to_owned(), DependencyKind::Normal)]).unwrap();
        assert_eq!(ok[0].name.as_str(), "a");
        let e = root_dependencies([
            ("a".to_owned(), "^1".to_owned(), DependencyKind::Normal),
            ("B".to_owned(), "^1".to_owned(), DependencyKind::Normal),
        ])
        .unwrap_err();
        assert_eq!(e.field, "dependencies");
        assert!(e.message.contains("dependency 1"), "{e}");
        let many = (0..=MAX_ROOT_DEPENDENCIES).map(|i| (format!("p{i}"), "*".to_owned(), DependencyKind::Normal));
        let e = root_dependencies(many).unwrap_err();
        assert!(e.message.contains("at most 100"), "{e}");
    }
}
