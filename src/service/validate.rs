//! Every check of a publish, collecting problems rather than stopping at the first: a dry run
//! answers the whole list, and a real publish refuses with the error the first problem has always
//! given, with the list beside it (`AppError::Refused`).
//!
//! The checks, in order: token scopes; the tarball (structure, paths, sizes); raven.toml (name,
//! version, metadata, dependencies); the README; the upload's metadata against raven.toml; the
//! publish budget; permission on the package, and the version not taken (an existing package) or
//! the name not confusable with another package (a new one); every dependency known.
//! A tarball that cannot be read to its end (not gzip, corrupt, over a limit, a refused extension
//! header) yields no manifest: every check that needs the manifest (name, version, metadata,
//! dependencies, permission on the package, version taken, confusable name) is then skipped.
//! Nothing here writes.
use std::io::Read;

use sha2::{Digest, Sha256};

use entity::packages;

use crate::auth::{Scope, Viewer};
use crate::domain::problems::code;
use crate::domain::{
    scan_tarball, Dependency, Manifest, PackageName, PackageVersion, Problems, PublishProblem, TarballLimits,
    TarballReport, ValidationError,
};
use crate::error::{AppError, AppResult};
use crate::service::packages::{self as pkgs, Role};
use crate::service::publish::{Claimed, Tarball};
use crate::state::AppState;

/// A tarball that passed every check, with its digest and bytes (at most MAX_TARBALL_BYTES).
pub(crate) struct Checked {
    pub(crate) manifest: Manifest,
    pub(crate) readme: Option<String>,
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) bytes: bytes::Bytes,
}

/// Whether the checks run for a dry run (report everything) or a publish (whose first refusals,
/// the token's scopes, end it before any tarball byte is read, as they always have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Publish,
}

/// The problems, and the error a real publish answers for the first of them.
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) problems: Problems,
    first: Option<AppError>,
}

impl Collected {
    fn add(&mut self, problem: PublishProblem, error: AppError) {
        self.problems.push(problem);
        self.first.get_or_insert(error);
    }

    fn invalid(&mut self, v: ValidationError) {
        self.add(PublishProblem::from(&v), AppError::Validation(v));
    }

    fn forbidden(&mut self, message: String) {
        self.add(PublishProblem::new(code::PERMISSION_DENIED, None, message.clone()), AppError::Forbidden(message));
    }

    /// A refusal for a real publish: the first problem's error, carrying every problem.
    pub(crate) fn into_error(self) -> Option<AppError> {
        let error = self.first?;
        Some(AppError::Refused { error: Box::new(error), problems: self.problems.into_vec() })
    }
}

pub(crate) struct Validated {
    pub(crate) collected: Collected,
    /// Present when there is no problem.
    pub(crate) checked: Option<Checked>,
    pub(crate) existing: Option<packages::Model>,
}

/// The result of a dry run.
pub struct DryRun {
    pub ok: bool,
    pub problems: Vec<PublishProblem>,
}

/// Runs every check of a publish of `tarball` and stores nothing.
#[tracing::instrument(name = "publish.dry_run", skip_all, fields(user_id = %viewer.user_id))]
pub async fn dry_run(state: &AppState, viewer: &Viewer, tarball: Tarball, claimed: Claimed) -> AppResult<DryRun> {
    let v = validate(state, viewer, tarball, &claimed, Mode::DryRun).await?;
    let problems = v.collected.problems.into_vec();
    Ok(DryRun { ok: problems.is_empty(), problems })
}

pub(crate) async fn validate(
    state: &AppState,
    viewer: &Viewer,
    tarball: Tarball,
    claimed: &Claimed,
    mode: Mode,
) -> AppResult<Validated> {
    let mut c = Collected::default();
    if !viewer.scopes.contains(Scope::PublishNew) && !viewer.scopes.contains(Scope::PublishUpdate) {
        let message = "this token lacks the publish-new and publish-update scopes".to_owned();
        if mode == Mode::Publish {
            // Refused before spending time on the tarball.
            let problem = PublishProblem::new(code::PERMISSION_DENIED, None, message.clone());
            return Err(AppError::refused(AppError::Forbidden(message), problem));
        }
        c.forbidden(message);
    }
    let scanned = tokio::task::spawn_blocking(move || scan(tarball, TarballLimits::default()))
        .await
        .map_err(AppError::internal)?;
    let report = scanned.report;
    for p in &report.problems {
        c.invalid(p.clone());
    }
    let mut name = None;
    let mut version = None;
    let mut deps: Vec<Dependency> = Vec::new();
    let mut manifest = None;
    if let Some(m) = report.manifest {
        for p in m.problems {
            c.invalid(p);
        }
        (name, version, deps, manifest) = (m.name, m.version, m.dependencies, m.manifest);
    }
    // The README is stored and served as text: a document keeps its tabs and line breaks, and no
    // other control character (a NUL cannot even be stored on PostgreSQL).
    if let Some(readme) = &report.readme {
        if let Err(e) = crate::domain::text::multiline("readme", readme) {
            c.invalid(e);
        }
    }
    if let Some(n) = &name {
        tracing::Span::current().record("package", n.as_str());
    }
    check_claimed(&mut c, claimed, name.as_ref(), version.as_ref());

    let existing = match &name {
        Some(n) => pkgs::find_by_name(&state.db, n).await?,
        None => None,
    };
    // A refused publish has never drawn on the budget; a dry run always does.
    if !claimed.rate_limit_charged && (mode == Mode::DryRun || c.problems.is_empty()) {
        state.limits.publish(viewer.user_id, existing.is_none())?;
    }
    match (&existing, &name) {
        (Some(p), _) => {
            match pkgs::authorise(&state.db, viewer, p, Scope::PublishUpdate, Role::Maintainer).await {
                Ok(_) => {}
                Err(AppError::Forbidden(m)) => c.forbidden(m),
                Err(e) => return Err(e),
            }
            if let Some(v) = &version {
                if pkgs::find_version(&state.db, p.id, &v.to_string()).await?.is_some() {
                    let message = format!("{} {v} is already published", p.name);
                    let problem = PublishProblem::new(code::VERSION_TAKEN, Some("version"), message.clone());
                    c.add(problem, AppError::Conflict(message));
                }
            }
        }
        (None, Some(n)) => {
            if let Err(AppError::Forbidden(m)) = viewer.require(Scope::PublishNew) {
                c.forbidden(m);
            }
            for other in crate::service::names::blocking(state, Some(viewer), n).await? {
                let v = ValidationError::new(
                    "name",
                    format!(
                        "package name {n} is confusable with the existing package {}: choose a name that cannot be \
                         mistaken for it",
                        other.name
                    ),
                )
                .with_code(code::NAME_CONFUSABLE);
                c.invalid(v);
            }
        }
        (None, None) => {}
    }
    for missing in unknown_dependencies(state, &deps).await? {
        let v = ValidationError::new("dependencies", format!("dependency {missing} does not exist in this registry"))
            .with_code(code::DEPENDENCY_UNKNOWN);
        c.invalid(v);
    }

    let checked = match (manifest, c.problems.is_empty()) {
        (Some(manifest), true) => Some(Checked {
            manifest,
            readme: report.readme,
            sha256: scanned.sha256,
            size: scanned.bytes.len() as u64,
            bytes: scanned.bytes,
        }),
        _ => None,
    };
    Ok(Validated { collected: c, checked, existing })
}

/// The name and version the client sent with the upload must be raven.toml's.
fn check_claimed(c: &mut Collected, claimed: &Claimed, name: Option<&PackageName>, version: Option<&PackageVersion>) {
    if let Some(claimed_name) = &claimed.name {
        match PackageName::parse(claimed_name) {
            Err(e) => c.invalid(e),
            Ok(n) => {
                if let Some(actual) = name.filter(|actual| **actual != n) {
                    c.invalid(
                        ValidationError::new(
                            "name",
                            format!("metadata names {claimed_name} but raven.toml names {actual}"),
                        )
                        .with_code(code::MANIFEST_MISMATCH),
                    );
                }
            }
        }
    }
    if let Some(claimed_version) = &claimed.version {
        match PackageVersion::parse(claimed_version) {
            Err(e) => c.invalid(e),
            Ok(v) => {
                if let Some(actual) = version.filter(|actual| **actual != v) {
                    c.invalid(
                        ValidationError::new(
                            "version",
                            format!("metadata says {claimed_version} but raven.toml says {actual}"),
                        )
                        .with_code(code::MANIFEST_MISMATCH),
                    );
                }
            }
        }
    }
}

/// The dependencies naming no package of the registry, in order, each once.
#[tracing::instrument(name = "db.dependencies_exist", skip_all)]
async fn unknown_dependencies(state: &AppState, deps: &[Dependency]) -> AppResult<Vec<String>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    if deps.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = deps.iter().map(|d| d.name.as_str().to_owned()).collect();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let found: std::collections::HashSet<String> = packages::Entity::find()
        .select_only()
        .column(packages::Column::Name)
        .filter(packages::Column::Name.is_in(crate::service::inlist::padded(names.iter().cloned())))
        .into_tuple::<String>()
        .all(&state.db)
        .await?
        .into_iter()
        .collect();
    Ok(names.into_iter().filter(|n| !found.contains(n)).collect())
}

/// What the scan of an upload yields: its report, and the digest and bytes of the blob.
struct Scanned {
    report: TarballReport,
    sha256: String,
    bytes: bytes::Bytes,
}

fn scan(tarball: Tarball, limits: TarballLimits) -> Scanned {
    match tarball {
        Tarball::File(file) => scan_file(file, limits),
        Tarball::Bytes(bytes) => {
            Scanned { report: scan_tarball(&bytes[..], &limits), sha256: hex::encode(Sha256::digest(&bytes)), bytes }
        }
    }
}

/// Reads the file once: hashes the compressed bytes while the validator inflates them.
fn scan_file(file: std::fs::File, limits: TarballLimits) -> Scanned {
    struct Hashing<R> {
        inner: R,
        hasher: Sha256,
        kept: Vec<u8>,
    }
    impl<R: Read> Read for Hashing<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            self.kept.extend_from_slice(&buf[..n]);
            Ok(n)
        }
    }
    let mut r = Hashing { inner: std::io::BufReader::new(file), hasher: Sha256::new(), kept: Vec::new() };
    let mut report = scan_tarball(&mut r, &limits);
    // Trailing bytes after the archive still belong to the blob that is stored and served. (A
    // refused archive is not stored, so its rest need not be read.)
    if report.problems.is_empty() {
        if let Err(e) = std::io::copy(&mut r, &mut std::io::sink()) {
            report.problems.push(ValidationError::new("tarball", format!("cannot read the upload: {e}")));
        }
    }
    Scanned { report, sha256: hex::encode(r.hasher.finalize()), bytes: r.kept.into() }
}
