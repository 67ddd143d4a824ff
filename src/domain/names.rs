//! Package names and versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{shown, ValidationError};

const NAME_FIELD: &str = "name";
const VERSION_FIELD: &str = "version";
const MAX_NAME_CHARS: usize = 64;
const MAX_VERSION_CHARS: usize = 64;

/// The reserved names, one a line in `reserved_names.txt` (names that would impersonate the
/// language or the registry, and the Windows device names).
const RESERVED_LIST: &str = include_str!("reserved_names.txt");

/// Whether no new package may take `name`.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_LIST.lines().map(str::trim).any(|line| !line.starts_with('#') && line == name)
}

/// A valid package name. Names are case-sensitive on input but only
/// lowercase is accepted, so two packages can never differ by case alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName(String);

impl PackageName {
    /// A name for a new package: the shape rules of [`PackageName::lookup`], and not reserved.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = Self::lookup(input)?;
        if is_reserved(input) {
            return Err(ValidationError::new(NAME_FIELD, format!("package name {} is reserved", shown(input)))
                .with_code(super::problems::code::NAME_RESERVED));
        }
        Ok(name)
    }

    /// A name to look a package up by. Reads parse with this rather than [`PackageName::parse`]:
    /// a name of the wrong shape can never exist and is refused as bad input (so no client string
    /// reaches SQL unchecked), while the reserved list governs new names only, so a package that
    /// predates a reservation stays readable (and is simply not found otherwise).
    pub fn lookup(input: &str) -> Result<Self, ValidationError> {
        let err = |message: String| Err(ValidationError::new(NAME_FIELD, message));
        if input.is_empty() {
            return err("package name must not be empty".into());
        }
        if input.chars().count() > MAX_NAME_CHARS {
            return err(format!(
                "package name must be at most {MAX_NAME_CHARS} characters long, got {}",
                input.chars().count()
            ));
        }
        if !input.starts_with(|c: char| c.is_ascii_lowercase()) {
            return err(format!("package name must start with a lowercase ASCII letter: {}", shown(input)));
        }
        if let Some(bad) = input.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
            return err(format!(
                "package name may only contain lowercase ASCII letters, digits and '-', \
                 found {bad:?} in {}",
                shown(input)
            ));
        }
        if input.contains("--") {
            return err(format!("package name must not contain '--': {}", shown(input)));
        }
        if input.ends_with('-') {
            return err(format!("package name must not end with '-': {}", shown(input)));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PackageName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for PackageName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PackageName {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PackageName> for String {
    fn from(name: PackageName) -> Self {
        name.0
    }
}

/// A valid SemVer 2.0 version. Equality and ordering are those of
/// `semver::Version` (build metadata included); use [`PackageVersion::canonical`]
/// whenever uniqueness matters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageVersion(semver::Version);

impl PackageVersion {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let err = |message: String| Err(ValidationError::new(VERSION_FIELD, message));
        if input.chars().count() > MAX_VERSION_CHARS {
            return err(format!(
                "version must be at most {MAX_VERSION_CHARS} characters long, got {}",
                input.chars().count()
            ));
        }
        // semver would refuse this too, but with a message about "unexpected
        // character 'v'" that does not tell a user what to do.
        if input.starts_with(['v', 'V']) {
            return err(format!("version must be plain SemVer without a leading 'v': {}", shown(input)));
        }
        match semver::Version::parse(input) {
            Ok(v) => Ok(Self(v)),
            Err(e) => err(format!("version {} is not valid SemVer 2.0: {e}", shown(input))),
        }
    }

    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }

    /// The version without build metadata. SemVer says build metadata does
    /// not distinguish versions, so `1.0.0+a` and `1.0.0+b` are one version
    /// and this is the key that must be unique per package.
    pub fn canonical(&self) -> String {
        let mut v = self.0.clone();
        v.build = semver::BuildMetadata::EMPTY;
        v.to_string()
    }
}

impl fmt::Display for PackageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for PackageVersion {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for PackageVersion {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PackageVersion> for String {
    fn from(v: PackageVersion) -> Self {
        v.to_string()
    }
}

/// The rank of a version as a candidate for a package's latest: every release outranks every
/// prerelease, then SemVer precedence decides. A stored number that does not parse (none should)
/// ranks lowest.
pub fn latest_rank(num: &str) -> (bool, semver::Version) {
    let v = semver::Version::parse(num).unwrap_or_else(|_| semver::Version::new(0, 0, 0));
    (v.pre.is_empty(), v)
}

/// The one rule for which version a package shows as its latest, wherever "latest" appears (REST
/// `latest_version`, search results, user profiles, GraphQL `latestVersion`, the package's
/// metadata, "packages whose latest version depends on this one"): the highest non-yanked
/// release; when no release is left, the highest non-yanked prerelease; when every version is
/// yanked, none. With 1.0.0 and 2.0.0-alpha.1 published, 1.0.0 is latest (as on crates.io and
/// npm). crates.io would show a yanked version when nothing else is left; here a fully yanked
/// package has no latest version and leaves search, since nothing in it should be installed.
pub fn latest_version<T>(
    versions: impl IntoIterator<Item = T>,
    num: impl Fn(&T) -> &str,
    yanked: impl Fn(&T) -> bool,
) -> Option<T> {
    versions
        .into_iter()
        .filter(|v| !yanked(v))
        .map(|v| (latest_rank(num(&v)), v))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_err(input: &str) -> ValidationError {
        PackageName::parse(input).expect_err(input)
    }

    fn version_err(input: &str) -> ValidationError {
        PackageVersion::parse(input).expect_err(input)
    }

    #[test]
    fn accepts_valid_names() {
        for ok in ["a", "http-client", "x1", "a-b-c", "abc123", &"a".repeat(64)] {
            let n = PackageName::parse(ok).unwrap();
            assert_eq!(n.as_str(), ok);
            assert_eq!(n.to_string(), ok);
            assert_eq!(n.as_ref(), ok);
            assert_eq!(n.clone().into_inner(), ok);
        }
    }

    #[test]
    fn refuses_empty_name() {
        let e = name_err("");
        assert_eq!(e.field, "name");
        assert!(e.message.contains("must not be empty"), "{e}");
    }

    #[test]
    fn refuses_too_long_name() {
        let e = name_err(&"a".repeat(65));
        assert_eq!(e.field, "name");
        assert!(e.message.contains("at most 64"), "{e}");
    }

    #[test]
    fn refuses_name_not_starting_with_letter() {
        for bad in ["1abc", "-abc", "_abc", "Abc"] {
            let e = name_err(bad);
            assert_eq!(e.field, "name");
            assert!(e.message.contains("must start with a lowercase"), "{e}");
        }
    }

    #[test]
    fn refuses_bad_characters() {
        for bad in ["aBc", "a_b", "a.b", "a b", "caf\u{e9}", "a/b"] {
            let e = name_err(bad);
            assert_eq!(e.field, "name");
            assert!(e.message.contains("may only contain"), "{e}");
        }
    }

    #[test]
    fn refuses_double_dash_and_trailing_dash() {
        let e = name_err("a--b");
        assert!(e.message.contains("'--'"), "{e}");
        let e = name_err("ab-");
        assert!(e.message.contains("must not end with '-'"), "{e}");
    }

    #[test]
    fn refuses_reserved_names() {
        for bad in [
            "raven",
            "ravens",
            "ravensone",
            "std",
            "core",
            "alloc",
            "admin",
            "api",
            "registry",
            "root",
            "www",
            "test",
            "con",
            "prn",
            "aux",
            "nul",
            "com1",
            "com9",
            "lpt1",
            "lpt9",
        ] {
            let e = name_err(bad);
            assert_eq!(e.field, "name");
            assert!(e.message.contains("is reserved"), "{e}");
        }
        // Only exact matches are reserved.
        assert!(PackageName::parse("raven-http").is_ok());
        assert!(PackageName::parse("com10").is_ok());
    }

    #[test]
    fn lookup_checks_the_shape_but_not_the_reserved_list() {
        assert_eq!(PackageName::lookup("std").unwrap().as_str(), "std");
        for bad in ["", "a\0b", "Widget", "a--b", "a-", &"a".repeat(65), "wid\u{202E}get"] {
            let e = PackageName::lookup(bad).expect_err(bad);
            assert_eq!(e.field, "name");
            assert!(!e.message.contains(['\0', '\u{202E}']), "control characters are escaped in messages: {e}");
        }
    }

    #[test]
    fn name_serde_round_trip_validates() {
        let n: PackageName = serde_json::from_str("\"http-client\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"http-client\"");
        let e = serde_json::from_str::<PackageName>("\"Bad\"").unwrap_err();
        assert!(e.to_string().contains("must start with a lowercase"), "{e}");
    }

    #[test]
    fn accepts_valid_versions() {
        for ok in ["0.0.0", "1.2.3", "1.0.0-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+sha.abc"] {
            let v = PackageVersion::parse(ok).unwrap();
            assert_eq!(v.to_string(), ok);
        }
        let v = PackageVersion::parse("2.3.4").unwrap();
        assert_eq!(v.as_semver(), &semver::Version::new(2, 3, 4));
    }

    #[test]
    fn refuses_non_semver_versions() {
        for bad in ["", "1", "1.0", "1.0.0.0", " 1.0.0", "1.0.0 ", "01.0.0", "1.0.0-01", "x"] {
            let e = version_err(bad);
            assert_eq!(e.field, "version");
            assert!(e.message.contains("not valid SemVer 2.0"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn refuses_leading_v() {
        for bad in ["v1.0.0", "V1.0.0"] {
            let e = version_err(bad);
            assert_eq!(e.field, "version");
            assert!(e.message.contains("leading 'v'"), "{e}");
        }
    }

    #[test]
    fn refuses_too_long_version() {
        let long = format!("1.0.0-{}", "a".repeat(59));
        assert_eq!(long.len(), 65);
        let e = version_err(&long);
        assert_eq!(e.field, "version");
        assert!(e.message.contains("at most 64"), "{e}");
        assert!(PackageVersion::parse(&long[..64]).is_ok());
    }

    #[test]
    fn canonical_drops_build_metadata_only() {
        let a = PackageVersion::parse("1.0.0+a").unwrap();
        let b = PackageVersion::parse("1.0.0+b").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.canonical(), "1.0.0");
        assert_eq!(a.canonical(), b.canonical());
        let pre = PackageVersion::parse("1.0.0-rc.1+x").unwrap();
        assert_eq!(pre.canonical(), "1.0.0-rc.1");
    }

    #[test]
    fn latest_is_the_highest_release_then_the_highest_prerelease() {
        let latest = |list: &[(&'static str, bool)]| latest_version(list.iter(), |v| v.0, |v| v.1).map(|v| v.0);
        assert_eq!(latest(&[("1.0.0", false), ("2.0.0-alpha.1", false), ("1.1.0-beta", false)]), Some("1.0.0"));
        assert_eq!(latest(&[("1.2.0", false), ("1.10.0", false), ("1.9.0", false)]), Some("1.10.0"));
        // The release is yanked: the highest prerelease left.
        assert_eq!(latest(&[("1.0.0", true), ("2.0.0-alpha.1", false), ("1.1.0-beta", false)]), Some("2.0.0-alpha.1"));
        assert_eq!(
            latest(&[("0.1.0-rc.1", false), ("0.1.0-rc.10", false), ("0.1.0-rc.2", false)]),
            Some("0.1.0-rc.10")
        );
        // A lower release still beats a higher prerelease.
        assert_eq!(latest(&[("0.0.1", false), ("9.0.0-rc.1", false), ("2.0.0", true)]), Some("0.0.1"));
        assert_eq!(latest(&[("1.0.0", true), ("2.0.0-alpha.1", true)]), None);
        assert_eq!(latest(&[]), None);
        assert_eq!(latest_rank("1.0.0+build.1"), (true, semver::Version::parse("1.0.0+build.1").unwrap()));
    }

    #[test]
    fn version_serde_round_trip_validates() {
        let v: PackageVersion = serde_json::from_str("\"1.2.3-beta\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.2.3-beta\"");
        assert!(serde_json::from_str::<PackageVersion>("\"v1\"").is_err());
    }
}
