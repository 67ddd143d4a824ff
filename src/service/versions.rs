//! Version lookups shared by REST, GraphQL loaders and profiles.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use entity::{keywords, packages, versions};

use crate::domain::latest_version;
use crate::error::AppResult;

/// Orders by SemVer precedence (so 1.10.0 > 1.2.0), which SQL string ordering cannot do. This is
/// the order of version lists; which version is latest is [`latest_version`]'s rule.
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

#[derive(sea_orm::FromQueryResult)]
struct VersionNum {
    id: Uuid,
    package_id: Uuid,
    num: String,
}

/// The latest version of each package that has one (see [`latest_version`]: the highest
/// non-yanked release, else the highest non-yanked prerelease), README left out. The numbers of
/// the non-yanked versions are read first (three narrow columns) to choose it, then only the chosen
/// rows whole: reading every version's full row to keep one was 14% of a GraphQL results page's
/// CPU at 100,000 packages (the decoding), and it grows with each package's number of versions.
#[tracing::instrument(name = "db.latest_versions", skip_all, fields(n = package_ids.len()))]
pub async fn latest_for_packages(
    db: &impl ConnectionTrait,
    package_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, versions::Model>> {
    use crate::service::inlist::padded;
    use sea_orm::QuerySelect;
    let nums = versions::Entity::find()
        .select_only()
        .columns([versions::Column::Id, versions::Column::PackageId, versions::Column::Num])
        .filter(versions::Column::PackageId.is_in(padded(package_ids.iter().copied())))
        .filter(versions::Column::Yanked.eq(false))
        .into_model::<VersionNum>()
        .all(db)
        .await?;
    let mut by_package: HashMap<Uuid, Vec<VersionNum>> = HashMap::new();
    for v in nums {
        by_package.entry(v.package_id).or_default().push(v);
    }
    let chosen: Vec<Uuid> = by_package
        .into_values()
        .filter_map(|list| latest_version(list, |v| v.num.as_str(), |_| false).map(|v| v.id))
        .collect();
    if chosen.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = without_readme().filter(versions::Column::Id.is_in(padded(chosen))).all(db).await?;
    Ok(rows.into_iter().map(|v| (v.package_id, v)).collect())
}

/// The latest versions of packages whose latest version number is already known (the search
/// index keeps it): the named rows in one statement, README left out. A package whose named
/// version is gone or yanked since (a write after the caller's catalog generation) is read as
/// [`latest_for_packages`] reads it.
#[tracing::instrument(name = "db.named_latest_versions", skip_all, fields(n = named.len()))]
pub async fn named_latest_for_packages(
    db: &impl ConnectionTrait,
    named: &[(Uuid, std::sync::Arc<str>)],
) -> AppResult<HashMap<Uuid, versions::Model>> {
    use crate::service::inlist::padded;
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = without_readme()
        .filter(versions::Column::PackageId.is_in(padded(named.iter().map(|(id, _)| *id))))
        .filter(versions::Column::Num.is_in(padded(named.iter().map(|(_, num)| num.to_string()))))
        .filter(versions::Column::Yanked.eq(false))
        .all(db)
        .await?;
    let wanted: HashMap<Uuid, &str> = named.iter().map(|(id, num)| (*id, &**num)).collect();
    let mut found: HashMap<Uuid, versions::Model> = rows
        .into_iter()
        .filter(|v| wanted.get(&v.package_id).is_some_and(|num| *num == v.num))
        .map(|v| (v.package_id, v))
        .collect();
    let missing: Vec<Uuid> = named.iter().map(|(id, _)| *id).filter(|id| !found.contains_key(id)).collect();
    if !missing.is_empty() {
        found.extend(latest_for_packages(db, &missing).await?);
    }
    Ok(found)
}

/// The package row shows the metadata of its latest version: description, license, links and
/// keywords (the denormalised copy that search and the package pages read). Called in the
/// transaction of every publish to an existing package, yank and unyank, after the version row is
/// written: it finds the latest version and copies whatever differs, and sets `updated_at`. When
/// every version is yanked there is no latest, and the metadata stays as it was.
pub async fn show_latest_metadata(
    txn: &DatabaseTransaction,
    package: packages::Model,
    now: DateTime<Utc>,
) -> AppResult<packages::Model> {
    let latest = latest_for_packages(txn, &[package.id]).await?.remove(&package.id);
    let mut a: packages::ActiveModel = package.clone().into();
    a.updated_at = Set(now);
    let mut new_keywords = None;
    if let Some(v) = latest {
        if package.description != v.description {
            a.description = Set(v.description);
        }
        if package.license != v.license {
            a.license = Set(v.license);
        }
        if package.repository != v.repository {
            a.repository = Set(v.repository);
        }
        if package.homepage != v.homepage {
            a.homepage = Set(v.homepage);
        }
        // Versions keep keywords comma-joined, packages space-joined (for full-text search).
        let keywords: Vec<String> = v.keywords.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect();
        let text = keywords.join(" ");
        if package.keywords_text != text {
            a.keywords_text = Set(text);
            new_keywords = Some(keywords);
        }
    }
    let updated = a.update(txn).await?;
    if let Some(list) = new_keywords {
        keywords::Entity::delete_many().filter(keywords::Column::PackageId.eq(updated.id)).exec(txn).await?;
        insert_keywords(txn, updated.id, &list).await?;
    }
    Ok(updated)
}

/// The keyword rows of a package (its keywords are already lowercased and unique).
pub async fn insert_keywords(txn: &DatabaseTransaction, package_id: Uuid, list: &[String]) -> AppResult<()> {
    if !list.is_empty() {
        keywords::Entity::insert_many(
            list.iter().map(|k| keywords::ActiveModel { package_id: Set(package_id), keyword: Set(k.clone()) }),
        )
        .exec(txn)
        .await?;
    }
    Ok(())
}
