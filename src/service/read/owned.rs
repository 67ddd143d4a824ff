//! The packages a user owns or maintains, a page at a time: a profile's and "my packages" list.
//! Unlike browsing, fully yanked packages stay in it (as in the REST profile): they are still
//! the user's.
use chrono::{Duration, Utc};
use sea_orm::{FromQueryResult, Statement, Value};
use uuid::Uuid;

use entity::packages;

use crate::db::numbered;
use crate::error::AppResult;
use crate::service::search::{order_by, PackageSort, COLUMNS, RECENT};
use crate::state::AppState;

/// One page of a user's packages, and how many they have in all.
pub struct OwnedPage {
    pub packages: Vec<packages::Model>,
    pub total: u64,
}

#[derive(FromQueryResult)]
struct Row {
    #[sea_orm(nested)]
    package: packages::Model,
    total: i64,
}

/// The packages `user_id` owns or maintains in `sort` order (`Relevance` means downloads, as in
/// browsing), `limit` from `offset`: one statement (two past the last page, where no row carries
/// the count).
pub async fn packages_of_user(
    state: &AppState,
    user_id: Uuid,
    sort: PackageSort,
    offset: u64,
    limit: u64,
) -> AppResult<OwnedPage> {
    let backend = state.db.get_database_backend();
    let sort = if sort == PackageSort::Relevance { PackageSort::Downloads } else { sort };
    // The 90-day sum is a subquery per package: computed only when it orders the page.
    let (recent, mut values): (&str, Vec<Value>) = if sort == PackageSort::RecentDownloads {
        (RECENT, vec![(Utc::now().date_naive() - Duration::days(90)).into()])
    } else {
        ("0", vec![])
    };
    let sql = format!(
        "SELECT {COLUMNS}, {recent} AS recent, CAST(COUNT(*) OVER () AS BIGINT) AS total \
         FROM packages p JOIN package_owners o ON o.package_id = p.id WHERE o.user_id = ? \
         ORDER BY {} LIMIT ? OFFSET ?",
        order_by(sort)
    );
    values.extend([user_id.into(), (limit as i64).into(), (offset as i64).into()]);
    let rows = Row::find_by_statement(Statement::from_sql_and_values(backend, numbered(backend, &sql), values))
        .all(&state.db)
        .await?;
    let total = match rows.first() {
        Some(r) => r.total.max(0) as u64,
        None if offset > 0 => Box::pin(packages_of_user(state, user_id, sort, 0, 1)).await?.total,
        None => 0,
    };
    Ok(OwnedPage { packages: rows.into_iter().map(|r| r.package).collect(), total })
}
