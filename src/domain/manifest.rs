//! The `raven.toml` package manifest.
//!
//! The document is read as a generic TOML table and walked by hand rather
//! than through `#[derive(Deserialize)]`: that lets every refusal name the
//! field at fault and the rule it broke, where serde would give one generic
//! "invalid type" message under the "raven.toml" field.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use super::{shown, text, PackageName, PackageVersion, ValidationError};

const FILE_FIELD: &str = "raven.toml";
const DEPS_FIELD: &str = "dependencies";
const MAX_DESCRIPTION_CHARS: usize = 1000;
const MAX_LICENSE_CHARS: usize = 100;
const MAX_KEYWORDS: usize = 5;
pub(crate) const MAX_KEYWORD_CHARS: usize = 20;
const MAX_DEPENDENCIES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub name: PackageName,
    pub version: PackageVersion,
    pub authors: Vec<String>,
    pub description: Option<String>,
    pub license: Option<String>,
    pub repository: Option<String>,
    pub homepage: Option<String>,
    pub keywords: Vec<String>,
    /// Sorted by kind, then name, whatever the order in the file.
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub name: PackageName,
    /// The requirement as `semver::VersionReq` prints it, so equivalent
    /// spellings are stored identically.
    pub req: String,
    pub kind: DependencyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    Normal,
    Dev,
}

impl DependencyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DependencyKind::Normal => "normal",
            DependencyKind::Dev => "dev",
        }
    }

    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        match input {
            "normal" => Ok(DependencyKind::Normal),
            "dev" => Ok(DependencyKind::Dev),
            other => Err(ValidationError::new(
                "kind",
                format!("dependency kind must be \"normal\" or \"dev\", got {}", shown(other)),
            )),
        }
    }
}

impl fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DependencyKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What [`Manifest::check`] made of a `raven.toml`: every refusal, in the order `parse` meets
/// them, and the parts that did parse, so the checks that need them (version taken, dependencies
/// known) still run for a dry run.
#[derive(Debug, Clone, Default)]
pub struct ManifestReport {
    /// Present when nothing was refused.
    pub manifest: Option<Manifest>,
    pub name: Option<PackageName>,
    pub version: Option<PackageVersion>,
    /// The dependencies that parsed.
    pub dependencies: Vec<Dependency>,
    pub problems: Vec<ValidationError>,
}

impl Manifest {
    /// The manifest, or the first refusal (see [`Manifest::check`] for all of them).
    pub fn parse(text: &str) -> Result<Manifest, ValidationError> {
        let mut report = Self::check(text);
        match report.manifest {
            Some(m) => Ok(m),
            None => Err(report.problems.swap_remove(0)),
        }
    }

    /// Checks every key, collecting every refusal. A document that is not TOML, or has no
    /// `[package]` table, yields that one problem: nothing else can be read.
    pub fn check(text: &str) -> ManifestReport {
        let mut report = ManifestReport::default();
        let doc: Table = match text.parse() {
            Ok(doc) => doc,
            Err(e) => {
                report.problems.push(syntax_error(text, &e));
                return report;
            }
        };
        let package = match doc.get("package") {
            Some(Value::Table(t)) => t,
            Some(_) => {
                report.problems.push(ValidationError::new(FILE_FIELD, "[package] must be a table"));
                return report;
            }
            None => {
                report.problems.push(ValidationError::new(FILE_FIELD, "missing [package] table"));
                return report;
            }
        };
        let p = &mut report.problems;
        let name = keep(
            p,
            string_key(package, "name").and_then(|s| match s {
                Some(s) => PackageName::parse(s),
                None => Err(missing_key("name")),
            }),
        );
        let version = keep(
            p,
            string_key(package, "version").and_then(|s| match s {
                Some(s) => PackageVersion::parse(s),
                None => Err(missing_key("version")),
            }),
        );
        let description = keep(p, optional_text(package, "description", MAX_DESCRIPTION_CHARS));
        let license = keep(p, optional_text(package, "license", MAX_LICENSE_CHARS));
        let repository = keep(p, optional_url(package, "repository"));
        let homepage = keep(p, optional_url(package, "homepage"));
        let authors = keep(p, authors(package));
        let keywords = keep(p, keywords(package));
        let (dependencies, dep_problems) = dependencies(&doc);
        report.problems.extend(dep_problems);
        report.name = name.clone();
        report.version = version.clone();
        report.dependencies = dependencies.clone();
        if let (
            Some(name),
            Some(version),
            Some(description),
            Some(license),
            Some(repository),
            Some(homepage),
            Some(authors),
            Some(keywords),
            true,
        ) =
            (name, version, description, license, repository, homepage, authors, keywords, report.problems.is_empty())
        {
            report.manifest = Some(Manifest {
                name,
                version,
                authors,
                description,
                license,
                repository,
                homepage,
                keywords,
                dependencies,
            });
        }
        report
    }
}

/// The value, or None with its refusal recorded.
fn keep<T>(problems: &mut Vec<ValidationError>, r: Result<T, ValidationError>) -> Option<T> {
    r.map_err(|e| problems.push(e)).ok()
}

/// Points at the line and column, since the file lives inside a tarball the
/// user cannot easily open next to the error.
fn syntax_error(text: &str, e: &toml::de::Error) -> ValidationError {
    let message = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("invalid TOML at line {line}, column {column}: {}", e.message().trim())
        }
        None => format!("invalid TOML: {}", e.message().trim()),
    };
    ValidationError::new(FILE_FIELD, message)
}

fn missing_key(key: &str) -> ValidationError {
    ValidationError::new(key, format!("missing required key package.{key}"))
}

fn string_key<'a>(table: &'a Table, key: &str) -> Result<Option<&'a str>, ValidationError> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ValidationError::new(key, format!("package.{key} must be a string"))),
    }
}

/// An optional string key; blank counts as absent so that templates with
/// `description = ""` publish cleanly.
fn optional_str<'a>(table: &'a Table, key: &str) -> Result<Option<&'a str>, ValidationError> {
    Ok(string_key(table, key)?.map(str::trim).filter(|s| !s.is_empty()))
}

/// Display text (see [`text::prose`]): one line, no control characters, no bidi overrides.
fn optional_text(table: &Table, key: &str, max_chars: usize) -> Result<Option<String>, ValidationError> {
    let Some(raw) = optional_str(table, key)? else {
        return Ok(None);
    };
    let s = text::prose(key, raw)?;
    let chars = s.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(
            key,
            format!("package.{key} must be at most {max_chars} characters long, got {chars}"),
        ));
    }
    Ok(Some(s))
}

/// Only http(s): these links are rendered on package pages, and `javascript:`
/// or `file:` URLs there would be an attack or useless.
fn optional_url(table: &Table, key: &str) -> Result<Option<String>, ValidationError> {
    let Some(s) = optional_str(table, key)? else {
        return Ok(None);
    };
    // The URL parser would drop tabs and line breaks and percent-encode the rest: refused instead,
    // so what is stored is what the author wrote.
    text::line(key, s)?;
    text::no_bidi(key, s)?;
    let refuse = |why: String| {
        Err(ValidationError::new(key, format!("package.{key} must be an http(s) URL: {} {why}", shown(s))))
    };
    match url::Url::parse(s) {
        Err(e) => refuse(format!("is not a valid URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => refuse(format!("has scheme {}", shown(u.scheme()))),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => refuse("has no host".into()),
        // The normalised form (punycode host, escaped path) is what gets stored.
        Ok(u) => Ok(Some(u.into())),
    }
}

fn authors(package: &Table) -> Result<Vec<String>, ValidationError> {
    let err = |m: &str| Err(ValidationError::new("authors", m));
    let list = match package.get("authors") {
        None => return err("missing required key package.authors (a non-empty list of names)"),
        Some(Value::Array(list)) => list,
        Some(_) => return err("package.authors must be a list of strings"),
    };
    if list.is_empty() {
        return err("package.authors must list at least one author");
    }
    let mut authors = Vec::with_capacity(list.len());
    for item in list {
        let Some(raw) = item.as_str() else {
            return err("package.authors must be a list of strings");
        };
        let author = text::prose("authors", raw)?;
        if author.is_empty() {
            return err("package.authors must not contain empty names");
        }
        authors.push(author);
    }
    Ok(authors)
}

fn keywords(package: &Table) -> Result<Vec<String>, ValidationError> {
    let err = |m: String| Err(ValidationError::new("keywords", m));
    let list = match package.get("keywords") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return err("package.keywords must be a list of strings".into()),
    };
    if list.len() > MAX_KEYWORDS {
        return err(format!("at most {MAX_KEYWORDS} keywords are allowed, got {}", list.len()));
    }
    let mut keywords: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let Some(raw) = item.as_str() else {
            return err("package.keywords must be a list of strings".into());
        };
        let kw = raw.to_ascii_lowercase();
        let chars = kw.chars().count();
        if chars == 0 || chars > MAX_KEYWORD_CHARS {
            return err(format!("keyword {} must be 1 to {MAX_KEYWORD_CHARS} characters long", shown(raw)));
        }
        if !kw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
            return err(format!("keyword {} may only contain letters, digits, '-' and '_'", shown(raw)));
        }
        // "HTTP" and "http" are one keyword once lowercased.
        if !keywords.contains(&kw) {
            keywords.push(kw);
        }
    }
    Ok(keywords)
}

/// The dependencies that parse, and a refusal for each one that does not.
fn dependencies(doc: &Table) -> (Vec<Dependency>, Vec<ValidationError>) {
    let mut sections = Vec::new();
    let mut problems = Vec::new();
    for (key, kind) in [("dependencies", DependencyKind::Normal), ("dev-dependencies", DependencyKind::Dev)] {
        match doc.get(key) {
            None => {}
            Some(Value::Table(t)) => sections.push((kind, t)),
            Some(_) => problems.push(ValidationError::new(DEPS_FIELD, format!("[{key}] must be a table"))),
        }
    }
    // Counted before anything is parsed, so an oversized list costs nothing.
    let total: usize = sections.iter().map(|(_, t)| t.len()).sum();
    if total > MAX_DEPENDENCIES {
        problems.push(ValidationError::new(
            DEPS_FIELD,
            format!("at most {MAX_DEPENDENCIES} dependencies are allowed, got {total}"),
        ));
        return (Vec::new(), problems);
    }
    let mut deps = Vec::with_capacity(total);
    for (kind, table) in sections {
        for (name, spec) in table {
            match dependency(name, spec, kind) {
                Ok(d) => deps.push(d),
                Err(e) => problems.push(e),
            }
        }
    }
    // toml's map type is ordered only if some crate in the build enables its
    // `preserve_order` feature; sorting keeps the result independent of that.
    deps.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    (deps, problems)
}

fn dependency(name: &str, spec: &Value, kind: DependencyKind) -> Result<Dependency, ValidationError> {
    let err = |m: String| Err(ValidationError::new(DEPS_FIELD, m));
    let dep_name = match PackageName::parse(name) {
        Ok(n) => n,
        Err(e) => return err(format!("dependency {}: {}", shown(name), e.message)),
    };
    let req = match spec {
        Value::String(s) => s.as_str(),
        Value::Table(t) => {
            // Published packages must resolve from the registry alone: a path
            // or git source would not exist on the consumer's machine.
            if t.contains_key("path") {
                return err(format!(
                    "dependency {}: path dependencies are not allowed in published packages",
                    shown(name)
                ));
            }
            if t.contains_key("git") {
                return err(format!(
                    "dependency {}: git dependencies are not allowed in published packages",
                    shown(name)
                ));
            }
            match t.get("version") {
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return err(format!("dependency {}: version must be a string", shown(name))),
                None => return err(format!("dependency {} has no version requirement", shown(name))),
            }
        }
        _ => return err(format!("dependency {} must be a version requirement string or a table", shown(name))),
    };
    match semver::VersionReq::parse(req) {
        Ok(r) => Ok(Dependency { name: dep_name, req: r.to_string(), kind }),
        Err(e) => err(format!("dependency {} has an invalid version requirement {}: {e}", shown(name), shown(req))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
[package]
name = "http-client"
version = "1.2.0+build.7"
authors = ["Ada <ada@example.com>", "  Bob  "]
description = "  An HTTP client.  "
license = "MIT"
repository = "https://github.com/example/http-client"
homepage = ""
keywords = ["Net", "http", "net"]
readme = "README.md"
some-future-key = 1

[dependencies]
log = { version = "0.4", optional = true }
json = "^1.0"

[dev-dependencies]
json = "=1.0.3"

[future-table]
x = 1
"#;

    /// Builds a manifest from the valid one with one line of [package] replaced.
    fn with_line(prefix: &str, replacement: &str) -> String {
        VALID.lines().map(|l| if l.starts_with(prefix) { replacement } else { l }).collect::<Vec<_>>().join("\n")
    }

    fn with_deps(deps: &str) -> String {
        format!("[package]\nname = \"a\"\nversion = \"1.0.0\"\nauthors = [\"a\"]\n\n[dependencies]\n{deps}\n")
    }

    fn refused(text: &str, field: &str, needle: &str) {
        let e = Manifest::parse(text).expect_err(needle);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "expected {needle:?} in {e}");
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = Manifest::parse(VALID).unwrap();
        assert_eq!(m.name.as_str(), "http-client");
        assert_eq!(m.version.to_string(), "1.2.0+build.7");
        assert_eq!(m.authors, ["Ada <ada@example.com>", "Bob"]);
        assert_eq!(m.description.as_deref(), Some("An HTTP client."));
        assert_eq!(m.license.as_deref(), Some("MIT"));
        assert_eq!(m.repository.as_deref(), Some("https://github.com/example/http-client"));
        assert_eq!(m.homepage, None, "empty optional strings become None");
        assert_eq!(m.keywords, ["net", "http"]);
        let deps: Vec<_> = m.dependencies.iter().map(|d| (d.name.as_str(), d.req.as_str(), d.kind.as_str())).collect();
        assert_eq!(deps, [("json", "^1.0", "normal"), ("log", "^0.4", "normal"), ("json", "=1.0.3", "dev"),]);
    }

    #[test]
    fn minimal_manifest() {
        let m = Manifest::parse("[package]\nname='a'\nversion='0.1.0'\nauthors=['x']\n").unwrap();
        assert_eq!(m.description, None);
        assert!(m.keywords.is_empty());
        assert!(m.dependencies.is_empty());
    }

    #[test]
    fn syntax_errors_name_the_file_and_position() {
        refused("[package\nname = 1", "raven.toml", "invalid TOML at line 1");
        refused("[package]\nname = \"a\"\nname = \"b\"\n", "raven.toml", "line 3");
    }

    #[test]
    fn package_table_is_required() {
        refused("[dependencies]\n", "raven.toml", "missing [package] table");
        refused("package = 1\n", "raven.toml", "[package] must be a table");
    }

    #[test]
    fn name_and_version_rules() {
        refused(&with_line("name", ""), "name", "missing required key package.name");
        refused(&with_line("name", "name = 5"), "name", "must be a string");
        refused(&with_line("name", "name = \"Http\""), "name", "must start with a lowercase");
        refused(&with_line("name", "name = \"std\""), "name", "reserved");
        refused(&with_line("version", ""), "version", "missing required key package.version");
        refused(&with_line("version", "version = \"v1.0.0\""), "version", "leading 'v'");
        refused(&with_line("version", "version = \"1.0\""), "version", "not valid SemVer");
    }

    #[test]
    fn authors_rules() {
        refused(&with_line("authors", ""), "authors", "missing required key package.authors");
        refused(&with_line("authors", "authors = []"), "authors", "at least one author");
        refused(&with_line("authors", "authors = [\" \"]"), "authors", "empty names");
        refused(&with_line("authors", "authors = [1]"), "authors", "list of strings");
        refused(&with_line("authors", "authors = \"Ada\""), "authors", "list of strings");
    }

    #[test]
    fn description_and_license_length() {
        let ok = format!("description = \"{}\"", "\u{e9}".repeat(1000));
        assert!(Manifest::parse(&with_line("description", &ok)).is_ok());
        let long = format!("description = \"{}\"", "d".repeat(1001));
        refused(&with_line("description", &long), "description", "at most 1000 characters");
        let long = format!("license = \"{}\"", "l".repeat(101));
        refused(&with_line("license", &long), "license", "at most 100 characters");
        refused(&with_line("license", "license = 1"), "license", "must be a string");
    }

    #[test]
    fn text_fields_refuse_control_characters_and_bidi_overrides() {
        for (key, line) in [
            ("description", "description = \"A \\u0000 widget\""),
            ("description", "description = \"A \\u001B[31m widget\""),
            ("description", "description = \"A \\u202E widget\""),
            ("license", "license = \"MIT\\u2066\""),
            ("license", "license = \"MIT\\u0007\""),
            ("repository", "repository = \"https://example.com/a\\u0000b\""),
            ("repository", "repository = \"https://example.com/a\\nb\""),
            ("repository", "repository = \"https://example.com/\\u202Eb\""),
        ] {
            let prefix = line.split(' ').next().unwrap();
            refused(&with_line(prefix, line), key, key);
        }
        refused(&with_line("homepage", "homepage = \"https://exa\\tmple.com\""), "homepage", "control characters");
        refused(&with_line("authors", "authors = [\"Ada\\u0000\"]"), "authors", "control characters");
        refused(&with_line("authors", "authors = [\"Ada \\u202D<ada@example.com>\"]"), "authors", "bidirectional");
        refused(&with_line("keywords", "keywords = [\"ui\\u0000\"]"), "keywords", "may only contain");
        refused(&with_line("keywords", "keywords = [\"ui\\u202E\"]"), "keywords", "may only contain");
        refused(&with_deps("\"wid\\u0000get\" = \"1\""), "dependencies", "may only contain");
        refused(&with_deps("log = \"^1.0\\u0000\""), "dependencies", "invalid version requirement");
        refused(&with_deps("log = \"^1.0\\u202E\""), "dependencies", "invalid version requirement");
        refused(&with_line("name", "name = \"http\\u0000client\""), "name", "may only contain");
        refused(&with_line("version", "version = \"1.2.0\\u0000\""), "version", "not valid SemVer");
    }

    #[test]
    fn display_text_is_folded_onto_one_line() {
        let text = with_line("description", "description = \"\"\"\n  An HTTP client,\n  wrapped.\n\"\"\"");
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.description.as_deref(), Some("An HTTP client, wrapped."));
        let m = Manifest::parse(&with_line("authors", "authors = [\"Ada\\n<ada@example.com>\"]")).unwrap();
        assert_eq!(m.authors, ["Ada <ada@example.com>"]);
        refused(&with_line("authors", "authors = [\"\\n\\t\"]"), "authors", "empty names");
    }

    #[test]
    fn urls_must_be_http() {
        for (line, needle) in [
            ("repository = \"ftp://example.com/x\"", "has scheme \"ftp\""),
            ("repository = \"javascript:alert(1)\"", "has scheme \"javascript\""),
            ("repository = \"file:///etc/passwd\"", "has scheme \"file\""),
            ("repository = \"not a url\"", "is not a valid URL"),
            ("repository = \"github.com/x\"", "is not a valid URL"),
        ] {
            refused(&with_line("repository", line), "repository", needle);
        }
        refused(&with_line("homepage", "homepage = \"mailto:a@example.com\""), "homepage", "must be an http(s) URL");
        let m = Manifest::parse(&with_line("homepage", "homepage = \"HTTP://Example.com\"")).unwrap();
        assert_eq!(m.homepage.as_deref(), Some("http://example.com/"));
    }

    #[test]
    fn keyword_rules() {
        refused(
            &with_line("keywords", "keywords = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]"),
            "keywords",
            "at most 5 keywords",
        );
        refused(&with_line("keywords", "keywords = [\"\"]"), "keywords", "1 to 20 characters");
        let long = format!("keywords = [\"{}\"]", "k".repeat(21));
        refused(&with_line("keywords", &long), "keywords", "1 to 20 characters");
        refused(&with_line("keywords", "keywords = [\"a b\"]"), "keywords", "may only contain");
        refused(&with_line("keywords", "keywords = [\"a.b\"]"), "keywords", "may only contain");
        refused(&with_line("keywords", "keywords = [3]"), "keywords", "list of strings");
        let m = Manifest::parse(&with_line("keywords", "keywords = [\"Web_Dev\", \"x-1\"]")).unwrap();
        assert_eq!(m.keywords, ["web_dev", "x-1"]);
    }

    #[test]
    fn path_and_git_dependencies_are_refused() {
        refused(
            &with_deps("local = { path = \"../x\", version = \"1\" }"),
            "dependencies",
            "path dependencies are not allowed in published packages",
        );
        refused(
            &with_deps("remote = { git = \"https://example.com/r.git\" }"),
            "dependencies",
            "git dependencies are not allowed in published packages",
        );
        let dev = "[package]\nname='a'\nversion='1.0.0'\nauthors=['a']\n[dev-dependencies]\nx = { path = 'x' }\n";
        refused(dev, "dependencies", "path dependencies are not allowed");
    }

    #[test]
    fn dependency_requirement_rules() {
        refused(&with_deps("log = \"not a req\""), "dependencies", "invalid version requirement");
        refused(&with_deps("log = \"\""), "dependencies", "invalid version requirement");
        refused(&with_deps("log = { optional = true }"), "dependencies", "no version requirement");
        refused(&with_deps("log = { version = 1 }"), "dependencies", "version must be a string");
        refused(&with_deps("log = 1"), "dependencies", "must be a version requirement string or a table");
        refused(&with_deps("Log = \"1\""), "dependencies", "must start with a lowercase");
        refused(&with_deps("std = \"1\""), "dependencies", "reserved");
        let m = Manifest::parse(&with_deps("a-b = \">=1.0, <2\"")).unwrap();
        assert_eq!(m.dependencies[0].req, ">=1.0, <2");
        assert_eq!(m.dependencies[0].kind, DependencyKind::Normal);
    }

    #[test]
    fn at_most_200_dependencies() {
        let many = |n: usize| (0..n).map(|i| format!("d{i} = \"1\"\n")).collect::<String>();
        assert_eq!(Manifest::parse(&with_deps(&many(200))).unwrap().dependencies.len(), 200);
        refused(&with_deps(&many(201)), "dependencies", "at most 200 dependencies");
        refused(
            "dependencies = 1\n[package]\nname='a'\nversion='1.0.0'\nauthors=['a']\n",
            "dependencies",
            "[dependencies] must be a table",
        );
    }

    #[test]
    fn dependency_kind_round_trip() {
        for kind in [DependencyKind::Normal, DependencyKind::Dev] {
            assert_eq!(DependencyKind::parse(kind.as_str()).unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        let e = DependencyKind::parse("build").unwrap_err();
        assert_eq!(e.field, "kind");
        assert!(e.message.contains("must be \"normal\" or \"dev\""), "{e}");
    }

    #[test]
    fn deeply_nested_toml_does_not_overflow_the_stack() {
        let deep = format!("x = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = Manifest::parse(&deep).unwrap_err();
        assert_eq!(e.field, "raven.toml");
    }
}
