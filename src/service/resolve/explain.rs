//! Turns PubGrub's proof that no solution exists (its derivation tree) into conflicts a person can
//! act on: per package, the requirements that collide and who made each.
//!
//! The tree's leaves are facts: "X in these versions depends on Y in that set", "Y has no version
//! in that set", "X at v is unavailable". They are gathered per depended-on package; a package
//! that two or more requirements point at, or that has no version a requirement admits, is a
//! conflict. The first conflict's message ends with PubGrub's own step-by-step explanation.
use std::collections::{BTreeMap, BTreeSet, HashSet};

use pubgrub::{DefaultStringReporter, DerivationTree, External, Reporter};

use super::solver::{Node, Provider, Set};
use super::{Conflict, ConflictingRequirement};

/// At most this many conflicts, and requirements per conflict, are listed.
const MAX_LISTED: usize = 20;

#[derive(Default)]
struct Facts {
    /// (required_by, req) per depended-on package name, in the order met.
    requirements: BTreeMap<String, Vec<(String, String)>>,
    /// Requirements that no version satisfies: per name, the requirement texts.
    no_versions: BTreeMap<String, BTreeSet<String>>,
    /// Versions that could not be used, per name, with why.
    unavailable: BTreeMap<String, Vec<String>>,
}

impl Facts {
    fn require(&mut self, name: &str, by: String, req: String) {
        let list = self.requirements.entry(name.to_owned()).or_default();
        if !list.iter().any(|(b, r)| *b == by && *r == req) {
            list.push((by, req));
        }
    }
}

pub fn conflicts(provider: &Provider, tree: &DerivationTree<Node, Set, String>) -> Vec<Conflict> {
    let mut facts = Facts::default();
    let mut seen = HashSet::new();
    gather(provider, tree, &mut facts, &mut seen);
    let mut out = Vec::new();
    let names: BTreeSet<&String> =
        facts.requirements.keys().chain(facts.no_versions.keys()).chain(facts.unavailable.keys()).collect();
    for name in names {
        let reqs = facts.requirements.get(name).cloned().unwrap_or_default();
        let none = facts.no_versions.get(name);
        let unavailable = facts.unavailable.get(name);
        let distinct_requirers = reqs.iter().map(|(by, _)| by).collect::<BTreeSet<_>>().len();
        if distinct_requirers < 2 && none.is_none() && unavailable.is_none() {
            continue;
        }
        out.push(conflict(provider, name, reqs, none, unavailable));
    }
    if out.is_empty() {
        // Nothing collides on one package (the tree only has dependency facts): name each
        // depended-on package with its requirements, so the client still sees what was asked.
        for (name, reqs) in &facts.requirements {
            out.push(conflict(provider, name, reqs.clone(), None, None));
        }
    }
    out.truncate(MAX_LISTED);
    let mut report = tree.clone();
    report.collapse_no_versions();
    let explanation = DefaultStringReporter::report(&report);
    match out.first_mut() {
        Some(first) => first.message = format!("{}\n\n{explanation}", first.message),
        None => out.push(Conflict { package: "root".into(), requirements: Vec::new(), message: explanation }),
    }
    out
}

fn conflict(
    provider: &Provider,
    name: &str,
    mut reqs: Vec<(String, String)>,
    none: Option<&BTreeSet<String>>,
    unavailable: Option<&Vec<String>>,
) -> Conflict {
    let total = reqs.len();
    reqs.truncate(MAX_LISTED);
    let listed: Vec<String> = reqs.iter().map(|(by, req)| format!("{req} (required by {by})")).collect();
    let mut message = match none {
        Some(none) => {
            let published: Vec<String> = provider
                .published(name)
                .iter()
                .map(|v| if v.yanked { format!("{} (yanked)", v.num) } else { v.num.clone() })
                .collect();
            let published = if published.is_empty() { "none".to_owned() } else { published.join(", ") };
            format!(
                "{name}: no version matches {}; published versions: {published}",
                none.iter().cloned().collect::<Vec<_>>().join(" or ")
            )
        }
        None if listed.len() >= 2 => {
            format!("{name}: no version satisfies all of {}", listed.join(", "))
        }
        None => format!("{name}: {}", listed.join(", ")),
    };
    if let Some(why) = unavailable {
        message.push_str(&format!("; unusable: {}", why.join("; ")));
    }
    if total > reqs.len() {
        message.push_str(&format!(" ({} more requirements not listed)", total - reqs.len()));
    }
    Conflict {
        package: name.to_owned(),
        requirements: reqs.into_iter().map(|(by, req)| ConflictingRequirement { req, required_by: by }).collect(),
        message,
    }
}

fn gather(provider: &Provider, tree: &DerivationTree<Node, Set, String>, facts: &mut Facts, seen: &mut HashSet<usize>) {
    match tree {
        DerivationTree::Derived(d) => {
            if let Some(id) = d.shared_id {
                if !seen.insert(id) {
                    return;
                }
            }
            gather(provider, &d.cause1, facts, seen);
            gather(provider, &d.cause2, facts, seen);
        }
        DerivationTree::External(External::FromDependencyOf(from, from_set, to, _)) => {
            let Some(name) = to.name() else { return };
            match from {
                // The edge from a requirement's virtual package to its range is not a requirement.
                Node::Any(..) => {}
                Node::Root => {
                    for e in provider.root.iter().filter(|e| e.name == name && &provider.edge(&e.name, &e.req).0 == to)
                    {
                        facts.require(name, "root".into(), e.req.clone());
                    }
                }
                Node::Bucket(from_name, _) => {
                    for v in provider.candidates(from_name).iter().filter(|v| from_set.contains(&v.version)) {
                        for (dep, req) in &v.dependencies {
                            if dep == name && &provider.edge(dep, req).0 == to {
                                facts.require(name, format!("{from_name}@{}", v.num), req.clone());
                            }
                        }
                    }
                }
            }
        }
        DerivationTree::External(External::NoVersions(node, _)) => {
            if let Node::Any(name, req) = node {
                facts.no_versions.entry(name.to_string()).or_default().insert(req.to_string());
            } else if let Node::Bucket(name, _) = node {
                // Every version the requirements admit was ruled out elsewhere; the requirements
                // themselves are listed from the dependency facts.
                facts.requirements.entry(name.to_string()).or_default();
            }
        }
        DerivationTree::External(External::Custom(node, _, why)) => {
            if let Some(name) = node.name() {
                facts.unavailable.entry(name.to_owned()).or_default().push(why.clone());
            }
        }
        DerivationTree::External(External::NotRoot(..)) => {}
    }
}
