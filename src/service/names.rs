//! Name checks against typosquatting: which existing packages a name could be mistaken for, and
//! whether a name is free for a caller (`nameCheck`, and the NAME_CONFUSABLE refusal of a new
//! package's publish).
//!
//! A name is confusable with an existing package when their folds (`domain::confusable`) are
//! equal, whatever the package's downloads, or one edit apart and the package has at least
//! NAME_CONFUSABLE_MIN_DOWNLOADS downloads. Folded-equal names are one indexed lookup
//! (`packages.name_folded`); the edit-distance pass reads the folded names of the most downloaded
//! packages only, at most [`MAX_POPULAR_COMPARED`] of them, so its cost is bounded whatever the
//! catalogue's size.
use std::collections::HashSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use entity::{package_owners, packages};

use crate::auth::Viewer;
use crate::domain::confusable::{fold_name, within_one_edit};
use crate::domain::PackageName;
use crate::error::AppResult;
use crate::state::AppState;

/// Popular packages compared by edit distance, most downloaded first.
pub const MAX_POPULAR_COMPARED: u64 = 10_000;
/// Confusable packages listed for one name.
pub const MAX_SIMILAR: usize = 20;
/// Longer input is not a name (names have at most 64 characters) and is not folded.
const MAX_FOLDED_INPUT: usize = 256;

/// The answer of `nameCheck`.
pub struct NameCheck {
    pub valid: bool,
    pub available: bool,
    pub reasons: Vec<String>,
    pub similar: Vec<packages::Model>,
}

/// Checks `input` for `viewer` (anonymous: no package is theirs). `available` is
/// `valid && !taken && no confusable package that would refuse this caller's publish`.
#[tracing::instrument(name = "names.check", skip_all)]
pub async fn check(state: &AppState, viewer: Option<&Viewer>, input: &str) -> AppResult<NameCheck> {
    let mut reasons = Vec::new();
    let parsed = PackageName::parse(input).map_err(|e| reasons.push(e.message)).ok();
    let taken = match PackageName::lookup(input) {
        Ok(name) => crate::service::packages::find_by_name(&state.db, &name).await?.is_some(),
        Err(_) => false,
    };
    if taken {
        reasons.push(format!("package {input} already exists"));
    }
    let similar = if input.len() <= MAX_FOLDED_INPUT { confusables(state, input).await? } else { Vec::new() };
    let owned = owned_among(state, viewer, &similar).await?;
    let blocking: Vec<&packages::Model> = similar.iter().filter(|p| !owned.contains(&p.id)).collect();
    for p in &blocking {
        reasons.push(format!("confusable with the existing package {}", p.name));
    }
    let valid = parsed.is_some();
    Ok(NameCheck { valid, available: valid && !taken && blocking.is_empty(), reasons, similar })
}

/// The packages a new package `name` may not be published beside by `viewer`: the confusable
/// ones the viewer does not own (either role).
pub async fn blocking(
    state: &AppState,
    viewer: Option<&Viewer>,
    name: &PackageName,
) -> AppResult<Vec<packages::Model>> {
    let similar = confusables(state, name.as_str()).await?;
    if similar.is_empty() {
        return Ok(similar);
    }
    let owned = owned_among(state, viewer, &similar).await?;
    Ok(similar.into_iter().filter(|p| !owned.contains(&p.id)).collect())
}

/// Existing packages other than `name` itself that `name` could be mistaken for, folded-equal
/// ones first, then the popular ones one edit away (most downloaded first); at most MAX_SIMILAR.
#[tracing::instrument(name = "db.confusables", skip_all)]
pub async fn confusables(state: &AppState, name: &str) -> AppResult<Vec<packages::Model>> {
    let folded = fold_name(name);
    if folded.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = packages::Entity::find()
        .filter(packages::Column::NameFolded.eq(folded.as_str()))
        .filter(packages::Column::Name.ne(name))
        .order_by_asc(packages::Column::Name)
        .limit(MAX_SIMILAR as u64)
        .all(&state.db)
        .await?;
    let min = state.config.name_confusable_min_downloads;
    let popular: Vec<(Uuid, String)> = packages::Entity::find()
        .select_only()
        .column(packages::Column::Id)
        .column(packages::Column::NameFolded)
        .filter(packages::Column::Downloads.gte(min))
        .order_by_desc(packages::Column::Downloads)
        .limit(MAX_POPULAR_COMPARED)
        .into_tuple()
        .all(&state.db)
        .await?;
    let near: Vec<Uuid> = popular
        .into_iter()
        .filter(|(_, other)| *other != folded && within_one_edit(&folded, other))
        .map(|(id, _)| id)
        .take(MAX_SIMILAR.saturating_sub(found.len()))
        .collect();
    if !near.is_empty() {
        let mut rows = packages::Entity::find()
            .filter(packages::Column::Id.is_in(crate::service::inlist::padded(near.iter().copied())))
            .filter(packages::Column::Name.ne(name))
            .all(&state.db)
            .await?;
        rows.sort_by(|a, b| b.downloads.cmp(&a.downloads).then_with(|| a.name.cmp(&b.name)));
        found.extend(rows);
    }
    Ok(found)
}

/// The ids among `packages` that `viewer` owns or maintains.
async fn owned_among(
    state: &AppState,
    viewer: Option<&Viewer>,
    packages: &[packages::Model],
) -> AppResult<HashSet<Uuid>> {
    let Some(viewer) = viewer else {
        return Ok(HashSet::new());
    };
    if packages.is_empty() {
        return Ok(HashSet::new());
    }
    let ids = packages.iter().map(|p| p.id);
    Ok(package_owners::Entity::find()
        .select_only()
        .column(package_owners::Column::PackageId)
        .filter(package_owners::Column::UserId.eq(viewer.user_id))
        .filter(package_owners::Column::PackageId.is_in(crate::service::inlist::padded(ids)))
        .into_tuple::<Uuid>()
        .all(&state.db)
        .await?
        .into_iter()
        .collect())
}
