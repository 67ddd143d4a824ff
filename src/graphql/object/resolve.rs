//! The answer of `resolve`.
use async_graphql::SimpleObject;

use crate::service::resolve as service;

/// The result of resolving a project's dependencies: either the chosen packages (and no
/// conflicts), or, when no choice satisfies every requirement, no packages and the conflicts.
#[derive(SimpleObject)]
pub struct Resolution {
    /// Every package to install, one version per package name and semver-compatible range
    /// (major from 1.0.0, minor for 0.x, patch for 0.0.x, like Cargo: `c ^1` and `c ^2` give two
    /// entries for `c`), sorted by name then version. Empty when there are conflicts.
    pub packages: Vec<ResolvedPackage>,
    /// Why no resolution exists: the packages whose requirements collide (or that do not exist,
    /// or have no version a requirement admits). Empty when `packages` is the answer.
    pub conflicts: Vec<ResolutionConflict>,
}

/// One package version chosen by a resolution.
#[derive(SimpleObject)]
pub struct ResolvedPackage {
    /// The package name.
    pub name: String,
    /// The chosen version, as published.
    pub version: String,
    /// SHA-256 of the tarball, lowercase hex, to verify the download with.
    pub sha256: String,
    /// Absolute URL of the tarball.
    pub download_url: String,
    /// The package's own (normal) dependencies and the version chosen for each.
    pub dependencies: Vec<ResolvedDependency>,
}

/// A dependency edge of a chosen package, with the version chosen for it.
#[derive(SimpleObject)]
pub struct ResolvedDependency {
    /// The package depended on.
    pub name: String,
    /// The requirement the depending package declares.
    pub req: String,
    /// The version chosen for this edge (an entry of `Resolution.packages`).
    pub version: String,
}

/// A package whose requirements cannot all be met.
#[derive(SimpleObject)]
pub struct ResolutionConflict {
    /// The package the requirements are about.
    pub package: String,
    /// The requirements that collide, each with who made it.
    pub requirements: Vec<ConflictingRequirement>,
    /// A human-readable explanation. The first conflict's message ends with the solver's
    /// step-by-step derivation.
    pub message: String,
}

/// One requirement taking part in a conflict.
#[derive(SimpleObject)]
pub struct ConflictingRequirement {
    /// The version requirement.
    pub req: String,
    /// Who requires it: `root` (the project's own dependencies) or `name@version`.
    pub required_by: String,
}

impl From<service::Resolution> for Resolution {
    fn from(r: service::Resolution) -> Self {
        Resolution {
            packages: r
                .packages
                .into_iter()
                .map(|p| ResolvedPackage {
                    name: p.name,
                    version: p.version,
                    sha256: p.sha256,
                    download_url: p.download_url,
                    dependencies: p
                        .dependencies
                        .into_iter()
                        .map(|d| ResolvedDependency { name: d.name, req: d.req, version: d.version })
                        .collect(),
                })
                .collect(),
            conflicts: r
                .conflicts
                .into_iter()
                .map(|c| ResolutionConflict {
                    package: c.package,
                    requirements: c
                        .requirements
                        .into_iter()
                        .map(|q| ConflictingRequirement { req: q.req, required_by: q.required_by })
                        .collect(),
                    message: c.message,
                })
                .collect(),
        }
    }
}
