//! Search and browse. Search by relevance goes to the in-process index (`search_index`): exact name,
//! then name prefix, then text relevance, ties broken by downloads, the same on both databases.
//! Other orders of a search, and browsing, are SQL: PostgreSQL uses the weighted tsvector + GIN
//! index, SQLite FTS5 with bm25. The user's
//! words are reduced to [a-z0-9] terms and passed as bound parameters, so `%`, `_`, quotes and FTS
//! operators are never syntax.
//!
//! Both can be narrowed to the packages listing one keyword (a normalised [`Keyword`]): the index
//! intersects that keyword's term, SQL adds a semi-join on the `keywords` table. Totals count the
//! narrowed set.
use chrono::{Duration, Utc};
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement, Value};

use entity::packages;

use crate::db::numbered;
use crate::domain::Keyword;
use crate::error::AppResult;
use crate::service::cache::PageKey;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageSort {
    /// Best match first (search only; browsing falls back to `Downloads`).
    Relevance,
    Downloads,
    /// Downloads over the last 90 days.
    RecentDownloads,
    Newest,
    RecentlyUpdated,
    Name,
}

#[derive(Clone)]
pub struct Hit {
    pub package: packages::Model,
    pub score: f64,
    /// The latest non-yanked version's number, when the search index answered (it keeps them);
    /// None from SQL.
    pub latest: Option<std::sync::Arc<str>>,
}

#[derive(Clone, Default)]
pub struct Page {
    pub hits: Vec<Hit>,
    pub total: u64,
    /// When a search by relevance found nothing because of a misspelled word: packages it
    /// probably meant (not in `hits`, not counted in `total`), and the corrected query.
    pub suggestions: Vec<Hit>,
    pub did_you_mean: Option<String>,
}

#[derive(FromQueryResult)]
struct Row {
    #[sea_orm(nested)]
    package: packages::Model,
    score: f64,
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

pub use crate::service::search_index::terms;

pub(crate) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Packages with at least one non-yanked version: fully yanked packages leave search and browse.
const VISIBLE: &str = "EXISTS (SELECT 1 FROM versions v WHERE v.package_id = p.id AND v.yanked = FALSE)";
pub(crate) const COLUMNS: &str = "p.id, p.name, p.name_folded, p.description, p.license, p.repository, p.homepage, p.keywords_text, p.downloads, p.created_at, p.updated_at";

pub(crate) fn order_by(sort: PackageSort) -> &'static str {
    match sort {
        PackageSort::Relevance => "score DESC, p.downloads DESC, p.name",
        PackageSort::Downloads => "p.downloads DESC, p.name",
        PackageSort::RecentDownloads => "recent DESC, p.downloads DESC, p.name",
        PackageSort::Newest => "p.created_at DESC, p.name",
        PackageSort::RecentlyUpdated => "p.updated_at DESC, p.name",
        PackageSort::Name => "p.name",
    }
}

pub(crate) const RECENT: &str = "(SELECT CAST(COALESCE(SUM(d.count), 0) AS BIGINT) FROM version_downloads d JOIN versions rv ON rv.id = d.version_id \
                      WHERE rv.package_id = p.id AND d.day >= ?)";

fn to_page(rows: Vec<Row>, total: i64) -> Page {
    Page {
        hits: rows.into_iter().map(|r| Hit { score: r.score, package: r.package, latest: None }).collect(),
        total: total.max(0) as u64,
        ..Page::default()
    }
}

#[derive(FromQueryResult)]
struct CountedRow {
    #[sea_orm(nested)]
    row: Row,
    total: i64,
}

/// Longer texts are searched but not cached: they are rare and would make large keys.
pub const MAX_CACHED_QUERY: usize = 128;

/// A page from the cache when the catalog has not changed since it was computed, else from the
/// database. Costs one small statement on a hit, none when the caller already read the generation.
async fn cached(
    state: &AppState,
    generation: Option<i64>,
    key: PageKey,
    compute: impl std::future::Future<Output = AppResult<Page>>,
) -> AppResult<Page> {
    let cache = &state.caches.pages;
    if !cache.enabled() || key.query.as_ref().is_some_and(|q| q.len() > MAX_CACHED_QUERY) {
        return compute.await;
    }
    let generation = match generation {
        Some(g) => g,
        None => state.generation.current(&state.db).await?,
    };
    if let Some(page) = cache.get(generation, &key) {
        crate::metrics::cache_lookup("pages", true);
        return Ok(page);
    }
    crate::metrics::cache_lookup("pages", false);
    let page = compute.await?;
    cache.put(generation, key, page.clone());
    Ok(page)
}

/// Search, best match first (see the module doc), through the page cache. `generation`: the
/// catalog generation when the caller has read it already. With a `keyword`, only packages
/// listing it; a query without words then lists them all (see [`browse`]), otherwise it finds
/// nothing.
pub async fn search(
    state: &AppState,
    generation: Option<i64>,
    query: &str,
    keyword: Option<&Keyword>,
    sort: PackageSort,
    offset: u64,
    limit: u64,
) -> AppResult<Page> {
    // The text reaches SQL (the exact-name and prefix matches): no control characters.
    crate::domain::text::line("query", query)?;
    if terms(query).is_empty() {
        return match keyword {
            Some(_) => browse(state, generation, keyword, sort, offset, limit).await,
            None => Ok(Page::default()),
        };
    }
    let key = PageKey {
        query: Some(query.trim().to_lowercase()),
        keyword: keyword.map(|k| k.as_str().to_owned()),
        sort,
        offset,
        limit,
        day: Utc::now().date_naive(),
    };
    if sort != PackageSort::Relevance {
        // Other orders (downloads, dates, names) of the matches are rare: SQL ranks them.
        return cached(state, generation, key, search_uncached(&state.db, query, keyword, sort, offset, limit)).await;
    }
    let generation = match generation {
        Some(g) => g,
        None => state.generation.current(&state.db).await?,
    };
    state.search.ensure(&state.db, generation).await?;
    cached(state, Some(generation), key, from_index(state, query, keyword, offset, limit)).await
}

/// A page ranked by the search index, which also holds the packages' rows: no SQL.
async fn from_index(
    state: &AppState,
    query: &str,
    keyword: Option<&Keyword>,
    offset: u64,
    limit: u64,
) -> AppResult<Page> {
    let ranked = state.search.search(query, keyword.map(Keyword::as_str), offset, limit)?;
    let hit = |f: crate::service::search_index::Found| Hit {
        package: (*f.package).clone(),
        score: f.score,
        latest: f.latest,
    };
    Ok(Page {
        hits: ranked.hits.into_iter().map(hit).collect(),
        total: ranked.total,
        suggestions: ranked.suggestions.into_iter().map(hit).collect(),
        did_you_mean: ranked.did_you_mean,
    })
}

/// Every visible package (with a `keyword`, every one listing it) in the chosen order, through
/// the page cache. `Relevance` has nothing to rank by here: it is `Downloads`.
pub async fn browse(
    state: &AppState,
    generation: Option<i64>,
    keyword: Option<&Keyword>,
    sort: PackageSort,
    offset: u64,
    limit: u64,
) -> AppResult<Page> {
    let sort = if sort == PackageSort::Relevance { PackageSort::Downloads } else { sort };
    let key = PageKey {
        query: None,
        keyword: keyword.map(|k| k.as_str().to_owned()),
        sort,
        offset,
        limit,
        day: Utc::now().date_naive(),
    };
    cached(state, generation, key, browse_uncached(&state.db, keyword, sort, offset, limit)).await
}

/// ` AND <keyword filter>` and its value, or nothing. Written as `IN (subquery)` so the database
/// can start from the keyword's index (`idx_keywords_keyword`) rather than probe every package.
fn keyword_clause(keyword: Option<&Keyword>) -> (&'static str, Option<Value>) {
    match keyword {
        Some(k) => (" AND p.id IN (SELECT k.package_id FROM keywords k WHERE k.keyword = ?)", Some(k.as_str().into())),
        None => ("", None),
    }
}

#[tracing::instrument(name = "db.search", skip(db))]
async fn search_uncached(
    db: &DatabaseConnection,
    query: &str,
    keyword: Option<&Keyword>,
    sort: PackageSort,
    offset: u64,
    limit: u64,
) -> AppResult<Page> {
    let terms = terms(query);
    if terms.is_empty() {
        return Ok(Page::default());
    }
    let backend = db.get_database_backend();
    let exact = query.trim().to_lowercase();
    let prefix = format!("{}%", like_escape(&exact));
    let since = Utc::now().date_naive() - Duration::days(90);
    // The 90-day sum is a subquery per matching row: computed only when it orders the results.
    let recent = if sort == PackageSort::RecentDownloads { RECENT } else { "0" };
    let recent_values: Vec<Value> = if sort == PackageSort::RecentDownloads { vec![since.into()] } else { vec![] };
    let (has_keyword, keyword_value) = keyword_clause(keyword);
    // Exact name outranks any prefix, which outranks any text match (text ranks stay below 100).
    // The total comes with the page (a window count over every hit), so the text is matched once.
    let (sql, mut values): (String, Vec<Value>) = match backend {
        DbBackend::Postgres => {
            let tsq = terms.iter().map(|t| format!("{t}:*")).collect::<Vec<_>>().join(" & ");
            let sql = format!(
                "SELECT {COLUMNS}, (CASE WHEN p.name = ? THEN 1000.0 WHEN p.name LIKE ? ESCAPE '\\' THEN 100.0 ELSE 0.0 END \
                 + CAST(ts_rank(p.search, to_tsquery('simple', ?)) AS DOUBLE PRECISION)) AS score, {recent} AS recent, \
                 CAST(COUNT(*) OVER () AS BIGINT) AS total \
                 FROM packages p WHERE (p.search @@ to_tsquery('simple', ?) OR p.name LIKE ? ESCAPE '\\') AND {VISIBLE}{has_keyword} \
                 ORDER BY {} LIMIT ? OFFSET ?",
                order_by(sort)
            );
            let mut values: Vec<Value> = vec![exact.clone().into(), prefix.clone().into(), tsq.clone().into()];
            values.extend(recent_values);
            values.extend([tsq.into(), prefix.into()]);
            values.extend(keyword_value);
            (sql, values)
        }
        _ => {
            // FTS5 is asked once: its matches and their bm25 ranks are materialised, then joined
            // with the name-prefix matches (a range on the unique name index; names are ASCII
            // lowercase, and U+10FFFF sorts after every character). A correlated MATCH per row
            // re-ran the full-text query for every hit.
            let fts = terms.iter().map(|t| format!("\"{t}\"*")).collect::<Vec<_>>().join(" AND ");
            let sql = format!(
                "WITH m AS MATERIALIZED (SELECT rowid AS rid, -bm25(packages_fts, 10.0, 5.0, 1.0) AS rank \
                   FROM packages_fts WHERE packages_fts MATCH ?), \
                 h AS (SELECT rid, MAX(rank) AS rank FROM (SELECT rid, rank FROM m UNION ALL \
                   SELECT rowid AS rid, 0.0 AS rank FROM packages WHERE name >= ? AND name < ?) GROUP BY rid) \
                 SELECT {COLUMNS}, (CASE WHEN p.name = ? THEN 1000.0 WHEN p.name LIKE ? ESCAPE '\\' THEN 100.0 ELSE 0.0 END \
                 + h.rank / 100.0) AS score, {recent} AS recent, COUNT(*) OVER () AS total \
                 FROM h JOIN packages p ON p.rowid = h.rid WHERE {VISIBLE}{has_keyword} ORDER BY {} LIMIT ? OFFSET ?",
                order_by(sort)
            );
            let mut values: Vec<Value> = vec![
                fts.into(),
                exact.clone().into(),
                format!("{exact}\u{10FFFF}").into(),
                exact.clone().into(),
                prefix.into(),
            ];
            values.extend(recent_values);
            values.extend(keyword_value);
            (sql, values)
        }
    };
    values.push((limit as i64).into());
    values.push((offset as i64).into());
    let rows = CountedRow::find_by_statement(Statement::from_sql_and_values(backend, numbered(backend, &sql), values))
        .all(db)
        .await?;
    let total = match rows.first() {
        Some(r) => r.total,
        // Past the last page the window has no row to report on.
        None if offset > 0 => {
            let first = Box::pin(search_uncached(db, query, keyword, sort, 0, 1)).await?;
            first.total as i64
        }
        None => 0,
    };
    Ok(to_page(rows.into_iter().map(|r| r.row).collect(), total))
}

#[tracing::instrument(name = "db.browse", skip(db))]
async fn browse_uncached(
    db: &DatabaseConnection,
    keyword: Option<&Keyword>,
    sort: PackageSort,
    offset: u64,
    limit: u64,
) -> AppResult<Page> {
    let backend = db.get_database_backend();
    let sort = if sort == PackageSort::Relevance { PackageSort::Downloads } else { sort };
    let (has_keyword, keyword_value) = keyword_clause(keyword);
    let count_sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM packages p WHERE {VISIBLE}{has_keyword}");
    let count = Count::find_by_statement(Statement::from_sql_and_values(
        backend,
        numbered(backend, &count_sql),
        keyword_value.clone(),
    ))
    .one(db)
    .await?
    .map(|c| c.n)
    .unwrap_or(0);
    let since = Utc::now().date_naive() - Duration::days(90);
    let page_sql = format!(
        "SELECT {COLUMNS}, CAST(0.0 AS DOUBLE PRECISION) AS score, {RECENT} AS recent FROM packages p \
         WHERE {VISIBLE}{has_keyword} ORDER BY {} LIMIT ? OFFSET ?",
        order_by(sort)
    );
    let mut values: Vec<Value> = vec![since.into()];
    values.extend(keyword_value);
    values.extend([(limit as i64).into(), (offset as i64).into()]);
    let rows = Row::find_by_statement(Statement::from_sql_and_values(backend, numbered(backend, &page_sql), values))
        .all(db)
        .await?;
    Ok(to_page(rows, count))
}

#[cfg(test)]
mod tests {
    #[test]
    fn terms_are_data_not_syntax() {
        assert_eq!(super::terms("HTTP-client \"x\" OR 50%_off*"), vec!["http", "client", "x", "or", "50", "off"]);
        assert!(super::terms("%_'\"*()").is_empty());
        assert_eq!(super::like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}
