//! The resolve scenario: `POST /api/v1/resolve` for projects of 10 direct dependencies that reach
//! about 100 packages of the seed. The seed's requirements mix `^1`, `^0.1`, `~1.0`, exact pins
//! and pins that collide (see `seed::plan`), so the solver goes back to earlier versions on the way.
use super::*;

/// Direct dependencies of each benchmark project.
pub(crate) const DIRECT: usize = 10;
/// The packages (direct and transitive) each project should reach.
pub(crate) const REACH: usize = 100;
/// Distinct projects the scenario rotates over.
const PROJECTS: usize = 32;

/// A project: its request body and how many packages it resolves to.
pub(crate) struct Project {
    pub(crate) body: serde_json::Value,
    pub(crate) packages: usize,
}

/// The packages reachable from `roots` through normal dependencies (every version of a seeded
/// package depends on the same names), roots included.
fn closure(plan: &[PlannedPackage], index: &HashMap<&str, usize>, roots: &[usize]) -> usize {
    let mut seen = vec![false; plan.len()];
    let mut stack: Vec<usize> = roots.to_vec();
    let mut n = 0;
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        n += 1;
        stack.extend(plan[i].dependencies.iter().filter_map(|d| index.get(d.as_str()).copied()));
    }
    n
}

/// Deterministic projects of [`DIRECT`] packages each, reaching as close to [`REACH`] packages as
/// the seed allows (the quick mode's 50 packages cannot reach 100).
pub(crate) fn projects(plan: &[PlannedPackage]) -> Vec<Project> {
    let index: HashMap<&str, usize> = plan.iter().map(|p| (p.name.as_str(), p.index)).collect();
    let mut rng = seed::Rng::new(0x7e5017e);
    let mut found: Vec<(usize, Vec<usize>)> = Vec::new();
    let direct = DIRECT.min(plan.len());
    for _ in 0..4000 {
        let mut roots: Vec<usize> = Vec::with_capacity(direct);
        while roots.len() < direct {
            // Later packages have the deeper graphs.
            let i = plan.len() / 4 + rng.below(plan.len() - plan.len() / 4);
            if !roots.contains(&i) {
                roots.push(i);
            }
        }
        roots.sort();
        let n = closure(plan, &index, &roots);
        if !found.iter().any(|(_, r)| *r == roots) {
            found.push((n, roots));
        }
        if found.iter().filter(|(n, _)| n.abs_diff(REACH) <= REACH / 5).count() >= PROJECTS {
            break;
        }
    }
    found.sort_by_key(|(n, _)| n.abs_diff(REACH));
    found.truncate(PROJECTS);
    found
        .into_iter()
        .map(|(packages, roots)| {
            let deps: Vec<serde_json::Value> = roots
                .iter()
                .map(|&i| {
                    let p = &plan[i];
                    serde_json::json!({ "name": p.name, "req": if p.zero_major { "^0.1" } else { "^1" } })
                })
                .collect();
            Project { body: serde_json::json!({ "dependencies": deps }), packages }
        })
        .collect()
}

pub(crate) fn request(project: &Project) -> Req {
    Req::json("/api/v1/resolve", &project.body)
}

/// The scenario, rotating over the projects.
pub(crate) fn scenario(data: &Arc<Data>, conns: usize) -> Scenario {
    let d = data.clone();
    let reach = if data.projects.is_empty() {
        0
    } else {
        data.projects.iter().map(|p| p.packages).sum::<usize>() / data.projects.len()
    };
    Scenario::new(
        "resolve",
        &format!("REST resolve, {DIRECT} direct dependencies reaching ~{reach} packages"),
        Load::new(conns, Check::OK, Arc::new(move |k| request(&d.projects[k as usize % d.projects.len()]))),
        Target::None,
    )
}

/// Every project resolves (no conflicts) to the packages it reaches.
pub(crate) async fn preflight(addr: SocketAddr, data: &Data) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, p) in data.projects.iter().enumerate() {
        match request_once(addr, &request(p)).await {
            Ok((s, j))
                if s == StatusCode::OK
                    && j["conflicts"].as_array().is_some_and(Vec::is_empty)
                    && j["packages"].as_array().map(Vec::len) == Some(p.packages) => {}
            Ok((s, j)) => problems.push(format!("resolve project {i} ({} packages expected): {s} {j}", p.packages)),
            Err(e) => problems.push(format!("resolve project {i}: {e}")),
        }
    }
    problems
}
