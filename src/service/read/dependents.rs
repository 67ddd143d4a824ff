//! Dependents: the other packages whose latest version (see [`latest_version`]) depends on a
//! package, with that version's requirement and kind, most downloaded first, then by name.
//!
//! Which version of a package is latest is SemVer precedence over its non-yanked versions, which
//! SQL cannot order; so one statement reads, for every package that any non-yanked version of
//! which depends on one of the asked-for packages, all its non-yanked version numbers with that
//! dependency where the version has it, and the rule is applied here. A version that depended
//! but is no longer latest (a newer one dropped the dependency, or it was yanked) no longer counts.
use std::collections::HashMap;

use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use uuid::Uuid;

use crate::db::numbered;
use crate::domain::{latest_version, DependencyKind};
use crate::error::AppResult;
use crate::service::inlist::bind;

/// One dependent: the package, its latest version, and how that version depends on the package.
#[derive(Clone, Debug)]
pub struct DependentRow {
    pub package_id: Uuid,
    pub version_id: Uuid,
    pub req: String,
    /// Normal when the version lists the package both as a dependency and a dev-dependency.
    pub kind: DependencyKind,
}

#[derive(FromQueryResult)]
struct Candidate {
    target: String,
    package_id: Uuid,
    package_name: String,
    downloads: i64,
    version_id: Uuid,
    num: String,
    req: Option<String>,
    kind: Option<String>,
}

/// A non-yanked version of a candidate: its id, number, and dependencies on the target (if any).
struct Candidacy {
    id: Uuid,
    num: String,
    deps: Vec<(String, DependencyKind)>,
}

/// A candidate package's non-yanked versions.
struct Versions {
    name: String,
    downloads: i64,
    list: Vec<Candidacy>,
}

/// The dependents of each package named (every name gets an entry, empty when it has none), in
/// order, in one statement.
#[tracing::instrument(name = "db.dependents", skip_all, fields(n = names.len()))]
pub async fn dependents_of(
    db: &impl ConnectionTrait,
    names: &[String],
) -> AppResult<HashMap<String, Vec<DependentRow>>> {
    let mut out: HashMap<String, Vec<DependentRow>> = names.iter().map(|n| (n.clone(), Vec::new())).collect();
    if names.is_empty() {
        return Ok(out);
    }
    let backend = db.get_database_backend();
    let (list, values) = bind(names.iter().cloned());
    let sql = format!(
        "SELECT t.name AS target, p.id AS package_id, p.name AS package_name, p.downloads, v.id AS version_id, v.num, \
           d.req, d.kind \
         FROM (SELECT DISTINCT d2.name, v2.package_id FROM dependencies d2 JOIN versions v2 ON v2.id = d2.version_id \
               WHERE d2.name IN ({list}) AND v2.yanked = FALSE) t \
         JOIN packages p ON p.id = t.package_id \
         JOIN versions v ON v.package_id = t.package_id AND v.yanked = FALSE \
         LEFT JOIN dependencies d ON d.version_id = v.id AND d.name = t.name \
         WHERE p.name <> t.name"
    );
    let rows = Candidate::find_by_statement(Statement::from_sql_and_values(backend, numbered(backend, &sql), values))
        .all(db)
        .await?;
    let mut by_pair: HashMap<(String, Uuid), Versions> = HashMap::new();
    for r in rows {
        let entry = by_pair.entry((r.target, r.package_id)).or_insert_with(|| Versions {
            name: r.package_name,
            downloads: r.downloads,
            list: Vec::new(),
        });
        let dep = r
            .req
            .map(|req| (req, DependencyKind::parse(r.kind.as_deref().unwrap_or("")).unwrap_or(DependencyKind::Normal)));
        match entry.list.iter_mut().find(|c| c.id == r.version_id) {
            Some(c) => c.deps.extend(dep),
            None => entry.list.push(Candidacy { id: r.version_id, num: r.num, deps: dep.into_iter().collect() }),
        }
    }
    let mut found: HashMap<String, Vec<(i64, String, DependentRow)>> = HashMap::new();
    for ((target, package_id), v) in by_pair {
        let Some(latest) = latest_version(v.list, |c| c.num.as_str(), |_| false) else { continue };
        let version_id = latest.id;
        let Some((req, kind)) = latest.deps.into_iter().min_by_key(|(_, kind)| *kind) else { continue };
        found.entry(target).or_default().push((
            v.downloads,
            v.name,
            DependentRow { package_id, version_id, req, kind },
        ));
    }
    for (target, mut list) in found {
        list.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        out.insert(target, list.into_iter().map(|(_, _, row)| row).collect());
    }
    Ok(out)
}
