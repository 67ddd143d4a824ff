//! Version lookups shared by REST, GraphQL loaders and profiles.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use entity::versions;

use crate::error::AppResult;

/// Orders by SemVer precedence (so 1.10.0 > 1.2.0), which SQL string ordering cannot do.
pub fn semver_key(v: &versions::Model) -> semver::Version {
    semver::Version::parse(&v.num).unwrap_or_else(|_| semver::Version::new(0, 0, 0))
}

/// Every column of a version but its README (`readme` comes back None): lists of versions never
/// show READMEs, which can be far larger than the rest of the row.
pub fn without_readme() -> sea_orm::Select<versions::Entity> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{Iterable, QuerySelect};
    versions::Entity::find()
        .select_only()
        .columns(versions::Column::iter().filter(|c| !matches!(c, versions::Column::Readme)))
        .column_as(Expr::cust("CAST(NULL AS TEXT)"), "readme")
}

/// The highest non-yanked version of each package (README left out), in one query.
#[tracing::instrument(name = "db.latest_versions", skip_all, fields(n = package_ids.len()))]
pub async fn latest_for_packages(
    db: &impl ConnectionTrait,
    package_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, versions::Model>> {
    let rows = without_readme()
        .filter(versions::Column::PackageId.is_in(crate::service::inlist::padded(package_ids.iter().copied())))
        .filter(versions::Column::Yanked.eq(false))
        .all(db)
        .await?;
    let mut best: HashMap<Uuid, versions::Model> = HashMap::new();
    for v in rows {
        match best.get(&v.package_id) {
            Some(cur) if semver_key(cur) >= semver_key(&v) => {}
            _ => {
                best.insert(v.package_id, v);
            }
        }
    }
    Ok(best)
}
