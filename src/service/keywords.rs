//! The keywords in use: each with how many visible packages list it (those with a non-yanked
//! version, the packages that search and browse show), most used first, ties by name. A package
//! lists the keywords of its latest version (the `keywords` rows, kept by publish, yank and
//! unyank), so a new version that drops a keyword drops the package from its count.
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use crate::db::numbered;
use crate::domain::Keyword;
use crate::error::AppResult;
use crate::service::cache::KeywordKey;
use crate::service::search::like_escape;
use crate::state::AppState;

/// A keyword and how many packages list it.
#[derive(Clone, Debug, FromQueryResult)]
pub struct KeywordCount {
    pub name: String,
    pub package_count: i64,
}

/// One page of keywords, and how many keywords there are in all (under the prefix, if any).
#[derive(Clone, Default)]
pub struct KeywordPage {
    pub keywords: Vec<KeywordCount>,
    pub total: u64,
}

#[derive(FromQueryResult)]
struct Row {
    #[sea_orm(nested)]
    keyword: KeywordCount,
    total: i64,
}

/// Keywords starting with `prefix` (all when None), most used first, `limit` from `offset`, through
/// a cache kept for one catalog generation (a page costs one statement to compute: it groups every
/// keyword row, so it is worth keeping).
pub async fn list(
    state: &AppState,
    generation: Option<i64>,
    prefix: Option<&Keyword>,
    offset: u64,
    limit: u64,
) -> AppResult<KeywordPage> {
    let cache = &state.caches.keywords;
    if !cache.enabled() {
        return list_uncached(&state.db, prefix, offset, limit).await;
    }
    let generation = match generation {
        Some(g) => g,
        None => state.generation.current(&state.db).await?,
    };
    let key = KeywordKey { prefix: prefix.map(|p| p.as_str().to_owned()), offset, limit };
    if let Some(page) = cache.get(generation, &key) {
        crate::metrics::cache_lookup("keywords", true);
        return Ok(page);
    }
    crate::metrics::cache_lookup("keywords", false);
    let page = list_uncached(&state.db, prefix, offset, limit).await?;
    cache.put(generation, key, page.clone());
    Ok(page)
}

#[tracing::instrument(name = "db.keywords", skip(db))]
async fn list_uncached(
    db: &impl ConnectionTrait,
    prefix: Option<&Keyword>,
    offset: u64,
    limit: u64,
) -> AppResult<KeywordPage> {
    let backend = db.get_database_backend();
    let (filter, mut values): (&str, Vec<Value>) = match prefix {
        Some(p) => (" AND k.keyword LIKE ? ESCAPE '\\'", vec![format!("{}%", like_escape(p.as_str())).into()]),
        None => ("", vec![]),
    };
    // The total comes with the page: a window over the groups counts every keyword once.
    let sql = format!(
        "SELECT k.keyword AS name, CAST(COUNT(*) AS BIGINT) AS package_count, CAST(COUNT(*) OVER () AS BIGINT) AS total \
         FROM keywords k JOIN packages p ON p.id = k.package_id \
         WHERE EXISTS (SELECT 1 FROM versions v WHERE v.package_id = p.id AND v.yanked = FALSE){filter} \
         GROUP BY k.keyword ORDER BY package_count DESC, k.keyword LIMIT ? OFFSET ?"
    );
    values.extend([(limit as i64).into(), (offset as i64).into()]);
    let rows = Row::find_by_statement(Statement::from_sql_and_values(backend, numbered(backend, &sql), values))
        .all(db)
        .await?;
    let total = match rows.first() {
        Some(r) => r.total,
        // Past the last page the window has no row to report on.
        None if offset > 0 => Box::pin(list_uncached(db, prefix, 0, 1)).await?.total as i64,
        None => 0,
    };
    Ok(KeywordPage { keywords: rows.into_iter().map(|r| r.keyword).collect(), total: total.max(0) as u64 })
}
