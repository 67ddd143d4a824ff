//! The PubGrub dependency provider over a loaded graph.
//!
//! **Identity.** Like Cargo, a project may hold one version of a package per semver-compatible
//! range: per major from 1.0.0 on, per minor for 0.x, per patch for 0.0.x. So a package of the
//! solver is a name and such a range ([`Node::Bucket`]): `c ^1` and `c ^2` are two packages that
//! coexist, while `c ~1.0` and `c ^1.1` are one package whose requirements must meet.
//!
//! **Requirements as version sets.** The versions a requirement admits are decided by
//! `semver::VersionReq::matches` itself (so prereleases follow its rule: only when a comparator of
//! the requirement names a prerelease of the same major.minor.patch) over the candidate versions,
//! and handed to PubGrub as the runs of consecutive matching candidates. Versions between two
//! candidates that nobody published never matter, so the set is exact for every version the solver
//! can pick.
//!
//! **Requirements across ranges.** A requirement whose matches fall in more than one compatible
//! range (`>=1`, `*`) goes through a virtual package ([`Node::Any`]) whose versions are its matches
//! and whose version `v` depends on exactly `v` of `v`'s range; one whose matches are none points
//! at such a package too, which then has no version (the explanation says so).
use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use pubgrub::{Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics, Ranges};
use semver::Version;

use super::load::{Graph, LoadedVersion};

/// The set of versions an edge admits.
pub type Set = Ranges<Version>;

/// A semver-compatible range of one package: versions in one range cannot coexist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compat {
    /// `x.*.*` for x >= 1.
    Major(u64),
    /// `0.x.*` for x >= 1.
    Minor(u64),
    /// `0.0.x`.
    Patch(u64),
}

impl Compat {
    pub fn of(v: &Version) -> Compat {
        match (v.major, v.minor) {
            (0, 0) => Compat::Patch(v.patch),
            (0, m) => Compat::Minor(m),
            (x, _) => Compat::Major(x),
        }
    }
}

/// A package of the solver (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// The project being resolved.
    Root,
    /// One compatible range of one package.
    Bucket(Arc<str>, Compat),
    /// The versions of a package one requirement admits, across compatible ranges.
    Any(Arc<str>, Arc<str>),
}

impl Node {
    /// The registry package this node stands for (None for the root).
    pub fn name(&self) -> Option<&str> {
        match self {
            Node::Root => None,
            Node::Bucket(n, _) | Node::Any(n, _) => Some(n),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Root => f.write_str("root"),
            Node::Bucket(n, _) => f.write_str(n),
            Node::Any(n, req) => write!(f, "{n} ({req})"),
        }
    }
}

/// Why the solver stopped before an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    #[error("step limit")]
    Steps,
    #[error("time limit")]
    Time,
}

/// One requirement of the root.
#[derive(Debug, Clone)]
pub struct RootEdge {
    pub name: String,
    pub req: String,
}

/// The provider: the loaded graph, the root's edges, and the bounds.
pub struct Provider {
    graph: Graph,
    /// Yanked versions the root pins exactly, by name.
    pins: HashMap<String, Vec<Version>>,
    pub root: Vec<RootEdge>,
    /// Candidates per name, lowest first (computed once per name).
    candidates: RefCell<HashMap<String, Arc<Vec<LoadedVersion>>>>,
    /// Parsed requirements and the edge each (name, requirement) makes.
    edges: RefCell<HashMap<(String, String), (Node, Set)>>,
    steps: Cell<u64>,
    max_steps: u64,
    deadline: Instant,
}

pub const ROOT_VERSION: Version = Version::new(0, 0, 0);

impl Provider {
    pub fn new(
        graph: Graph,
        pins: HashMap<String, Vec<Version>>,
        root: Vec<RootEdge>,
        max_steps: u64,
        deadline: Instant,
    ) -> Provider {
        Provider {
            graph,
            pins,
            root,
            candidates: RefCell::default(),
            edges: RefCell::default(),
            steps: Cell::new(0),
            max_steps,
            deadline,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// The versions of `name` resolution may choose, lowest first.
    pub fn candidates(&self, name: &str) -> Arc<Vec<LoadedVersion>> {
        if let Some(c) = self.candidates.borrow().get(name) {
            return c.clone();
        }
        let none = Vec::new();
        let list: Vec<LoadedVersion> = match self.graph.get(name) {
            Some(p) => p.candidates(self.pins.get(name).unwrap_or(&none)).cloned().collect(),
            None => Vec::new(),
        };
        let list = Arc::new(list);
        self.candidates.borrow_mut().insert(name.to_owned(), list.clone());
        list
    }

    /// Every published version of `name` (yanked included), lowest first.
    pub fn published(&self, name: &str) -> Vec<&LoadedVersion> {
        self.graph.get(name).map(|p| p.versions.iter().collect()).unwrap_or_default()
    }

    /// The candidate `version` of `name`.
    pub fn candidate(&self, name: &str, version: &Version) -> Option<LoadedVersion> {
        self.candidates(name).iter().find(|v| &v.version == version).cloned()
    }

    /// The node and version set a requirement on `name` makes (see the module documentation).
    pub fn edge(&self, name: &str, req: &str) -> (Node, Set) {
        let key = (name.to_owned(), req.to_owned());
        if let Some(e) = self.edges.borrow().get(&key) {
            return e.clone();
        }
        let edge = self.compute_edge(name, req);
        self.edges.borrow_mut().insert(key, edge.clone());
        edge
    }

    fn compute_edge(&self, name: &str, req: &str) -> (Node, Set) {
        let any = || (Node::Any(name.into(), req.into()), Set::full());
        let Ok(parsed) = semver::VersionReq::parse(req) else { return any() };
        let candidates = self.candidates(name);
        let matching: Vec<bool> = candidates.iter().map(|v| parsed.matches(&v.version)).collect();
        let mut ranges = candidates.iter().zip(&matching).filter(|(_, m)| **m).map(|(v, _)| Compat::of(&v.version));
        let Some(compat) = ranges.next() else { return any() };
        if ranges.any(|c| c != compat) {
            return any();
        }
        (
            Node::Bucket(name.into(), compat),
            runs(candidates.iter().zip(matching).filter(|(v, _)| Compat::of(&v.version) == compat)),
        )
    }

    /// The versions of `node` resolution may choose, lowest first.
    fn versions_of(&self, node: &Node) -> Vec<Version> {
        match node {
            Node::Root => vec![ROOT_VERSION],
            Node::Bucket(name, compat) => self
                .candidates(name)
                .iter()
                .filter(|v| Compat::of(&v.version) == *compat)
                .map(|v| v.version.clone())
                .collect(),
            Node::Any(name, req) => match semver::VersionReq::parse(req) {
                Ok(r) => {
                    self.candidates(name).iter().filter(|v| r.matches(&v.version)).map(|v| v.version.clone()).collect()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn step(&self) -> Result<(), Stop> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n > self.max_steps {
            return Err(Stop::Steps);
        }
        if Instant::now() > self.deadline {
            return Err(Stop::Time);
        }
        Ok(())
    }
}

/// The version set holding exactly the matching candidates: one segment per run of consecutive
/// matches.
fn runs<'a>(candidates: impl Iterator<Item = (&'a LoadedVersion, bool)>) -> Set {
    let mut set = Set::empty();
    let mut run: Option<(Version, Version)> = None;
    let close = |run: &mut Option<(Version, Version)>, set: &mut Set| {
        if let Some((lo, hi)) = run.take() {
            *set = set.union(&Ranges::from_range_bounds(lo..=hi));
        }
    };
    for (v, matches) in candidates {
        if matches {
            run = Some(match run.take() {
                Some((lo, _)) => (lo, v.version.clone()),
                None => (v.version.clone(), v.version.clone()),
            });
        } else {
            close(&mut run, &mut set);
        }
    }
    close(&mut run, &mut set);
    set
}

impl DependencyProvider for Provider {
    type P = Node;
    type V = Version;
    type VS = Set;
    type M = String;
    type Priority = (u32, Reverse<usize>);
    type Err = Stop;

    /// Packages that conflicted most first, then those with the fewest versions left (they fail
    /// soonest, so conflicts are found early).
    fn prioritize(&self, package: &Node, range: &Set, stats: &PackageResolutionStatistics) -> Self::Priority {
        let left = self.versions_of(package).iter().filter(|v| range.contains(v)).count();
        (stats.conflict_count(), Reverse(left))
    }

    /// The highest version in range.
    fn choose_version(&self, package: &Node, range: &Set) -> Result<Option<Version>, Stop> {
        self.step()?;
        Ok(self.versions_of(package).into_iter().rev().find(|v| range.contains(v)))
    }

    fn get_dependencies(&self, package: &Node, version: &Version) -> Result<Dependencies<Node, Set, String>, Stop> {
        self.step()?;
        // Two requirements of one package on one node (the root's `c ^1` and `c ~1.2`) must both hold.
        let mut deps: Vec<(Node, Set)> = Vec::new();
        let mut add = |node: Node, set: Set| match deps.iter_mut().find(|(n, _)| *n == node) {
            Some((_, existing)) => *existing = existing.intersection(&set),
            None => deps.push((node, set)),
        };
        match package {
            Node::Root => {
                for e in &self.root {
                    let (node, set) = self.edge(&e.name, &e.req);
                    add(node, set);
                }
            }
            Node::Any(name, _) => {
                add(Node::Bucket(name.clone(), Compat::of(version)), Ranges::singleton(version.clone()))
            }
            Node::Bucket(name, _) => {
                let Some(v) = self.candidate(name, version) else {
                    return Ok(Dependencies::Unavailable(format!("{name} {version} is not available")));
                };
                for (dep, req) in &v.dependencies {
                    let (node, set) = self.edge(dep, req);
                    if &node == package {
                        // A package that depends on itself is satisfied by itself, or never.
                        if set.contains(version) {
                            continue;
                        }
                        return Ok(Dependencies::Unavailable(format!("{name} {version} requires {dep} {req}")));
                    }
                    add(node, set);
                }
            }
        }
        Ok(Dependencies::Available(deps.into_iter().collect::<DependencyConstraints<Node, Set>>()))
    }

    fn should_cancel(&self) -> Result<(), Stop> {
        if Instant::now() > self.deadline {
            return Err(Stop::Time);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::resolve::load::LoadedPackage;

    fn v(s: &str) -> LoadedVersion {
        LoadedVersion {
            version: Version::parse(s).unwrap(),
            num: s.into(),
            yanked: false,
            sha256: String::new(),
            dependencies: Vec::new(),
        }
    }

    fn provider(versions: &[&str]) -> Provider {
        let mut graph = Graph::new();
        graph.insert("c".into(), Arc::new(LoadedPackage { versions: versions.iter().map(|s| v(s)).collect() }));
        Provider::new(graph, HashMap::new(), Vec::new(), 100, Instant::now() + std::time::Duration::from_secs(60))
    }

    #[test]
    fn compatible_ranges_follow_cargo() {
        assert_eq!(Compat::of(&Version::parse("1.2.3").unwrap()), Compat::Major(1));
        assert_eq!(Compat::of(&Version::parse("0.3.1").unwrap()), Compat::Minor(3));
        assert_eq!(Compat::of(&Version::parse("0.0.4").unwrap()), Compat::Patch(4));
    }

    #[test]
    fn edges_hold_exactly_the_matching_candidates() {
        let p = provider(&["1.0.0", "1.0.1", "1.1.0-beta.1", "1.1.0", "2.0.0", "0.3.0"]);
        let (node, set) = p.edge("c", "^1.0.0");
        assert_eq!(node, Node::Bucket("c".into(), Compat::Major(1)));
        for (s, expected) in
            [("1.0.0", true), ("1.0.1", true), ("1.1.0-beta.1", false), ("1.1.0", true), ("2.0.0", false)]
        {
            assert_eq!(set.contains(&Version::parse(s).unwrap()), expected, "{s}");
        }
        let (_, pre) = p.edge("c", "^1.1.0-beta.1");
        assert!(pre.contains(&Version::parse("1.1.0-beta.1").unwrap()), "a requirement naming a prerelease admits it");
        let (node, _) = p.edge("c", ">=0.3");
        assert_eq!(node, Node::Any("c".into(), ">=0.3".into()), "matches in three ranges");
        assert_eq!(p.edge("c", "^0.3").0, Node::Bucket("c".into(), Compat::Minor(3)));
        let (node, _) = p.edge("c", "^9");
        assert!(matches!(node, Node::Any(..)), "no match: a package without versions");
        assert!(p.versions_of(&node).is_empty());
    }

    #[test]
    fn the_bounds_stop_the_solver() {
        let mut p = provider(&["1.0.0"]);
        p.root = vec![RootEdge { name: "c".into(), req: "^1".into() }];
        p.max_steps = 1;
        assert!(matches!(
            pubgrub::resolve(&p, Node::Root, ROOT_VERSION),
            Err(pubgrub::PubGrubError::ErrorChoosingVersion { source: Stop::Steps, .. })
                | Err(pubgrub::PubGrubError::ErrorRetrievingDependencies { source: Stop::Steps, .. })
        ));
        let mut p = provider(&["1.0.0"]);
        p.deadline = Instant::now() - std::time::Duration::from_millis(1);
        assert!(pubgrub::resolve(&p, Node::Root, ROOT_VERSION).is_err(), "a deadline in the past stops it");
    }
}
