//! Dependency resolution on the server: a project's root dependencies in, one version per package
//! and compatible range out (or the requirements that collide), solved with PubGrub.
//!
//! - [`load`]: the reachable packages, read in breadth-first waves (one statement per wave) and
//!   cached per catalog generation;
//! - [`solver`]: the PubGrub dependency provider and its model of identity (Cargo's: one version
//!   per package and semver-compatible range) and of requirements;
//! - [`explain`]: the conflicts of a failed resolution.
//!
//! Rules: the highest compatible non-yanked release wins; a yanked version only when a root
//! requirement pins it exactly (`=1.0.1`); a prerelease only when a requirement names one;
//! dev-dependencies only of the root, only with `include_dev`; dependencies' dev-dependencies
//! never. The work is bounded before and while it is done: at most
//! [`MAX_ROOT_DEPENDENCIES`](crate::domain::resolve::MAX_ROOT_DEPENDENCIES) root dependencies,
//! `RESOLVE_MAX_PACKAGES` packages reached, `RESOLVE_MAX_STEPS` solver steps and
//! `RESOLVE_TIMEOUT_MS` in all; past a bound the request is refused (`TooComplex`).
pub mod explain;
pub mod load;
pub mod solver;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use pubgrub::PubGrubError;

use crate::domain::resolve::RootDependency;
use crate::domain::DependencyKind;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use solver::{Node, Provider, RootEdge, Stop, ROOT_VERSION};

/// What to resolve.
pub struct ResolveRequest {
    pub dependencies: Vec<RootDependency>,
    /// Whether root dependencies of kind dev are resolved too.
    pub include_dev: bool,
}

/// The answer: the chosen packages, or (when none can be chosen) the conflicts.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub packages: Vec<ResolvedPackage>,
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone)]
pub struct ResolvedPackage {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub download_url: String,
    pub dependencies: Vec<ResolvedDependency>,
}

/// One dependency edge of a chosen package and the version chosen for it.
#[derive(Debug, Clone)]
pub struct ResolvedDependency {
    pub name: String,
    pub req: String,
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct Conflict {
    pub package: String,
    pub requirements: Vec<ConflictingRequirement>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ConflictingRequirement {
    pub req: String,
    /// "root", or "name@version".
    pub required_by: String,
}

/// Resolves `request` against the registry as it is now.
#[tracing::instrument(name = "resolve", skip_all, fields(roots = request.dependencies.len()))]
pub async fn resolve(state: &AppState, request: ResolveRequest) -> AppResult<Resolution> {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(state.config.resolve_timeout_ms);
    let roots: Vec<RootDependency> =
        request.dependencies.into_iter().filter(|d| request.include_dev || d.kind == DependencyKind::Normal).collect();
    // Yanked versions the root pins exactly: the only way a yanked version is chosen.
    let mut pins: HashMap<String, Vec<semver::Version>> = HashMap::new();
    for d in &roots {
        if let Some(v) = d.req.exact_pin() {
            pins.entry(d.name.as_str().to_owned()).or_default().push(v);
        }
    }
    let mut names: Vec<String> = roots.iter().map(|d| d.name.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    let max_packages = state.config.resolve_max_packages as usize;
    let graph = load::reachable(state, &names, &pins, max_packages, deadline).await?;

    // An unknown root package is answered before solving: nothing else can be said until it is fixed.
    let unknown: Vec<Conflict> = roots
        .iter()
        .filter(|d| !graph.contains_key(d.name.as_str()))
        .map(|d| Conflict {
            package: d.name.as_str().to_owned(),
            requirements: vec![ConflictingRequirement { req: d.req.as_str().to_owned(), required_by: "root".into() }],
            message: format!("{}: no package of this name exists in the registry", d.name),
        })
        .collect();
    if !unknown.is_empty() {
        return Ok(Resolution { packages: Vec::new(), conflicts: unknown });
    }

    let root: Vec<RootEdge> =
        roots.iter().map(|d| RootEdge { name: d.name.as_str().to_owned(), req: d.req.as_str().to_owned() }).collect();
    let max_steps = state.config.resolve_max_steps;
    let timeout = state.config.resolve_timeout_ms;
    let outcome = tokio::task::spawn_blocking(move || {
        let provider = Provider::new(graph, pins, root, max_steps, deadline);
        let result = pubgrub::resolve(&provider, Node::Root, ROOT_VERSION);
        let steps = provider.steps();
        (solved(&provider, result), steps)
    })
    .await
    .map_err(AppError::internal)?;
    let (outcome, steps) = outcome;
    tracing::debug!(steps, elapsed_ms = started.elapsed().as_millis() as u64, "resolved");
    match outcome {
        Ok(mut r) => {
            for p in &mut r.packages {
                p.download_url = crate::service::read::download_url(state, &p.name, &p.version);
            }
            Ok(r)
        }
        Err(Stop::Steps) => Err(AppError::TooComplex(format!(
            "resolution needed more than {max_steps} solver steps (RESOLVE_MAX_STEPS)"
        ))),
        Err(Stop::Time) => {
            Err(AppError::TooComplex(format!("resolution took longer than {timeout} ms (RESOLVE_TIMEOUT_MS)")))
        }
    }
}

type Solution = Result<pubgrub::SelectedDependencies<Node, semver::Version>, PubGrubError<Provider>>;

/// The solver's answer as a [`Resolution`] (download URLs left to the caller), or the bound that
/// stopped it.
fn solved(provider: &Provider, result: Solution) -> Result<Resolution, Stop> {
    let chosen = match result {
        Ok(chosen) => chosen,
        Err(PubGrubError::NoSolution(tree)) => {
            return Ok(Resolution { packages: Vec::new(), conflicts: explain::conflicts(provider, &tree) });
        }
        Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
    };
    let mut packages: BTreeMap<(String, semver::Version), ResolvedPackage> = BTreeMap::new();
    for (node, version) in chosen.iter() {
        let Node::Bucket(name, _) = node else { continue };
        let Some(v) = provider.candidate(name, version) else { continue };
        let dependencies = v
            .dependencies
            .iter()
            .filter_map(|(dep, req)| {
                let (target, _) = provider.edge(dep, req);
                let picked = chosen.get(&target)?;
                let num = provider.candidate(dep, picked).map(|c| c.num).unwrap_or_else(|| picked.to_string());
                Some(ResolvedDependency { name: dep.clone(), req: req.clone(), version: num })
            })
            .collect();
        packages.insert(
            (name.to_string(), version.clone()),
            ResolvedPackage {
                name: name.to_string(),
                download_url: String::new(),
                version: v.num,
                sha256: v.sha256,
                dependencies,
            },
        );
    }
    Ok(Resolution { packages: packages.into_values().collect(), conflicts: Vec::new() })
}
