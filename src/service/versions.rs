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

/// The highest non-yanked version of each package, in one query.
#[tracing::instrument(name = "db.latest_versions", skip_all, fields(n = package_ids.len()))]
pub async fn latest_for_packages(
    db: &impl ConnectionTrait,
    package_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, versions::Model>> {
    let rows = versions::Entity::find()
        .filter(versions::Column::PackageId.is_in(package_ids.iter().copied()))
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
