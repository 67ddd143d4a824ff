//! The in-process search index: every visible package's words in a tantivy RAM index, so a search
//! costs no SQL for matching, ranking or counting, however many packages match.
//!
//! Words are what [`terms`] makes of a text (lowercase ASCII letters and digits), the same function
//! that splits a query, so indexing and querying cannot disagree. Each word is indexed with every
//! prefix of it (`server` as `s se ser serv serve server`), so a query word is one term lookup
//! with BM25 scoring: name prefixes weigh 10, keyword prefixes 5, description prefixes 1.
//!
//! The ranking, one code path on both databases: an exact name first, then names starting with
//! the query, then text relevance (BM25, kept below 100), ties broken by downloads (more first) and
//! then by name. `total` counts every match. A package with no non-yanked version is not indexed.
//!
//! Freshness follows the catalog generation (see `service::generation`), which every write raises:
//! a search reads the generation first, and when it is newer than the index's, the index catches
//! up before answering ([`SearchIndex::ensure`]): packages updated since its last look (less a
//! margin for clocks that differ between instances) are read again. So a publish or yank is in the
//! next search on any instance, and search pages can stay in the generation-keyed caches. (No
//! background task polls: an idle instance costs nothing, and the catch-up is one statement per
//! catalog change, not per search.) Download counts only break ties: they are read again at most every
//! second on other instances, at once on the instance that wrote them.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, FromQueryResult, Statement};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED};
use tantivy::{DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument, Term};
use uuid::Uuid;

use crate::db::numbered;
use crate::error::{AppError, AppResult};
use crate::service::generation;

/// Lowercase alphanumeric terms of a text, at most 64 characters each; a query keeps its first 8.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(64).collect::<String>().to_ascii_lowercase())
}

/// The words of a query (at most 8).
pub fn terms(query: &str) -> Vec<String> {
    words(query).take(8).collect()
}

/// Text relevance stays below the name tiers.
const MAX_TEXT_SCORE: f64 = 99.0;
const EXACT_NAME: f64 = 1000.0;
const NAME_PREFIX: f64 = 100.0;
/// Indexed fields and their weights.
const WEIGHTS: [(&str, f32); 3] = [("name", 10.0), ("keywords", 5.0), ("description", 1.0)];
/// How far back, before the newest `updated_at` seen, the follower reads again: instances' clocks
/// may differ by up to this much without a change being missed.
const CLOCK_MARGIN_SECS: i64 = 10;
/// Download counts only break ties; other instances' counts are read again at most this often
/// (the instance that writes counts reads them at once, see `fetch::flush_counts`).
const DOWNLOADS_REFRESH: Duration = Duration::from_secs(1);
/// The tantivy writer's arena (its minimum per thread).
const WRITER_BYTES: usize = 15_000_000;

/// What a search needs of a package besides its words.
#[derive(Clone)]
struct Entry {
    id: Uuid,
    name: String,
    downloads: i64,
    visible: bool,
}

/// Packages by slot (the u64 each tantivy document carries), and by id and name.
#[derive(Default)]
struct Catalog {
    entries: Vec<Entry>,
    by_id: HashMap<Uuid, u32>,
    /// Visible packages by name, for name-prefix matches.
    names: BTreeMap<String, u32>,
}

/// A package as the index reads it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Indexed {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub keywords_text: String,
    pub downloads: i64,
    pub updated_at: DateTime<Utc>,
    /// Has a non-yanked version.
    pub visible: bool,
}

struct Fields {
    slot: Field,
    text: [Field; 3],
}

/// One page of ranked matches: package ids and scores, and how many packages matched in all.
pub struct Ranked {
    pub hits: Vec<(Uuid, f64)>,
    pub total: u64,
}

pub struct SearchIndex {
    fields: Fields,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    reader: IndexReader,
    catalog: RwLock<Catalog>,
    follow: tokio::sync::Mutex<Follow>,
}

/// Where the follower is: the generation and newest `updated_at` it has read.
struct Follow {
    generation: i64,
    updated_since: Option<DateTime<Utc>>,
    downloads_read: Instant,
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> AppResult<SearchIndex> {
        let mut schema = Schema::builder();
        let slot = schema.add_u64_field("slot", INDEXED | FAST);
        let prefixes = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer("whitespace").set_index_option(IndexRecordOption::WithFreqs),
        );
        let text = WEIGHTS.map(|(name, _)| schema.add_text_field(name, prefixes.clone()));
        let index = Index::create_in_ram(schema.build());
        let writer = index.writer_with_num_threads(1, WRITER_BYTES).map_err(internal)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(internal)?;
        Ok(SearchIndex {
            fields: Fields { slot, text },
            writer: Mutex::new(writer),
            reader,
            catalog: RwLock::default(),
            follow: tokio::sync::Mutex::new(Follow {
                generation: i64::MIN,
                updated_since: None,
                downloads_read: Instant::now(),
            }),
        })
    }

    /// Reads every package (at start).
    #[tracing::instrument(name = "search_index.load", skip_all)]
    pub async fn load(&self, db: &DatabaseConnection) -> AppResult<()> {
        let mut follow = self.follow.lock().await;
        let generation = generation::current(db).await?;
        let rows = changed_since(db, None).await?;
        let n = rows.len();
        let newest = rows.iter().map(|r| r.updated_at).max();
        self.apply(&rows)?;
        follow.generation = generation;
        follow.updated_since = newest;
        follow.downloads_read = Instant::now();
        tracing::info!(packages = n, "search index loaded");
        Ok(())
    }

    fn apply(&self, rows: &[Indexed]) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
            for p in rows {
                let slot = match catalog.by_id.get(&p.id) {
                    Some(&slot) => {
                        let old = catalog.entries[slot as usize].name.clone();
                        catalog.names.remove(&old);
                        writer.delete_term(Term::from_field_u64(self.fields.slot, u64::from(slot)));
                        slot
                    }
                    None => {
                        let slot = catalog.entries.len() as u32;
                        catalog.entries.push(Entry { id: p.id, name: String::new(), downloads: 0, visible: false });
                        catalog.by_id.insert(p.id, slot);
                        slot
                    }
                };
                catalog.entries[slot as usize] =
                    Entry { id: p.id, name: p.name.clone(), downloads: p.downloads, visible: p.visible };
                if !p.visible {
                    continue;
                }
                catalog.names.insert(p.name.clone(), slot);
                let mut doc = TantivyDocument::new();
                doc.add_u64(self.fields.slot, u64::from(slot));
                let texts = [p.name.as_str(), p.keywords_text.as_str(), p.description.as_deref().unwrap_or("")];
                for (field, text) in self.fields.text.iter().zip(texts) {
                    doc.add_text(*field, prefixes(text));
                }
                writer.add_document(doc).map_err(internal)?;
            }
        }
        writer.commit().map_err(internal)?;
        self.reader.reload().map_err(internal)?;
        Ok(())
    }

    /// Reads every package's download count again.
    pub async fn refresh_downloads(&self, db: &DatabaseConnection) -> AppResult<()> {
        let mut follow = self.follow.lock().await;
        self.set_downloads(&downloads(db).await?);
        follow.downloads_read = Instant::now();
        Ok(())
    }

    /// Sets download counts (they only break ties, so they need not be written as documents).
    fn set_downloads(&self, counts: &[(Uuid, i64)]) {
        let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        for (id, n) in counts {
            if let Some(&slot) = catalog.by_id.get(id) {
                catalog.entries[slot as usize].downloads = *n;
            }
        }
    }

    /// Packages matching every word of `query` (or whose name starts with the whole query), best
    /// first, `limit` of them from `offset`.
    pub fn search(&self, query: &str, offset: u64, limit: u64) -> AppResult<Ranked> {
        let terms = terms(query);
        if terms.is_empty() {
            return Ok(Ranked { hits: Vec::new(), total: 0 });
        }
        let exact = query.trim().to_lowercase();
        let searcher = self.reader.searcher();
        let per_term: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .map(|t| {
                let fields: Vec<(Occur, Box<dyn Query>)> = self
                    .fields
                    .text
                    .iter()
                    .zip(WEIGHTS)
                    .map(|(field, (_, weight))| {
                        let q = TermQuery::new(Term::from_field_text(*field, t), IndexRecordOption::WithFreqs);
                        (Occur::Should, Box::new(BoostQuery::new(Box::new(q), weight)) as Box<dyn Query>)
                    })
                    .collect();
                (Occur::Must, Box::new(BooleanQuery::new(fields)) as Box<dyn Query>)
            })
            .collect();
        let matched = searcher.search(&BooleanQuery::new(per_term), &AllScores { slot: "slot" }).map_err(internal)?;

        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let mut scores: HashMap<u32, f64> = HashMap::with_capacity(matched.len());
        for (slot, score) in matched {
            scores.insert(slot, f64::from(score).min(MAX_TEXT_SCORE));
        }
        // Names starting with the whole query match even when its words do not (`http-cl`).
        let upper = format!("{exact}\u{10FFFF}");
        for (_, &slot) in catalog.names.range(exact.clone()..upper) {
            scores.entry(slot).or_insert(0.0);
        }
        let mut ranked: Vec<(f64, &Entry)> = scores
            .into_iter()
            .filter_map(|(slot, text)| catalog.entries.get(slot as usize).map(|e| (text, e)))
            .filter(|(_, e)| e.visible)
            .map(|(text, e)| {
                let tier = if e.name == exact {
                    EXACT_NAME
                } else if e.name.starts_with(&exact) {
                    NAME_PREFIX
                } else {
                    0.0
                };
                (tier + text, e)
            })
            .collect();
        let total = ranked.len() as u64;
        let order = |a: &(f64, &Entry), b: &(f64, &Entry)| {
            b.0.total_cmp(&a.0).then(b.1.downloads.cmp(&a.1.downloads)).then_with(|| a.1.name.cmp(&b.1.name))
        };
        let end = offset.saturating_add(limit).min(total) as usize;
        let start = (offset.min(total)) as usize;
        if end == 0 {
            return Ok(Ranked { hits: Vec::new(), total });
        }
        if end < ranked.len() {
            // Only the first `end` need ordering.
            ranked.select_nth_unstable_by(end - 1, order);
            ranked.truncate(end);
        }
        ranked.sort_unstable_by(order);
        let hits = ranked.get(start..end).unwrap_or_default().iter().map(|(s, e)| (e.id, *s)).collect();
        Ok(Ranked { hits, total })
    }
}

impl SearchIndex {
    /// Makes sure the index has caught up with catalog generation `generation` (read by the caller
    /// before it reads anything else): a search that sees a generation sees every write before it.
    pub async fn ensure(&self, db: &DatabaseConnection, generation: i64) -> AppResult<()> {
        let mut follow = self.follow.lock().await;
        if follow.generation >= generation {
            return Ok(());
        }
        let since = follow.updated_since.map(|t| t - chrono::Duration::seconds(CLOCK_MARGIN_SECS));
        let rows = changed_since(db, since).await?;
        if let Some(newest) = rows.iter().map(|r| r.updated_at).max() {
            follow.updated_since = Some(follow.updated_since.map_or(newest, |t| t.max(newest)));
        }
        self.apply(&rows)?;
        if follow.downloads_read.elapsed() >= DOWNLOADS_REFRESH {
            self.set_downloads(&downloads(db).await?);
            follow.downloads_read = Instant::now();
        }
        follow.generation = generation;
        Ok(())
    }
}

/// Packages updated at or after `since` (all when None), with whether they have a visible version.
#[tracing::instrument(name = "db.search_index.changed", skip(db))]
async fn changed_since(db: &DatabaseConnection, since: Option<DateTime<Utc>>) -> AppResult<Vec<Indexed>> {
    let backend = db.get_database_backend();
    let visible = "EXISTS (SELECT 1 FROM versions v WHERE v.package_id = p.id AND v.yanked = FALSE)";
    let base = format!(
        "SELECT p.id, p.name, p.description, p.keywords_text, p.downloads, p.updated_at, {visible} AS visible FROM packages p"
    );
    let stmt = match since {
        Some(t) => Statement::from_sql_and_values(
            backend,
            numbered(backend, &format!("{base} WHERE p.updated_at >= ?")),
            [t.into()],
        ),
        None => Statement::from_string(backend, base),
    };
    Ok(Indexed::find_by_statement(stmt).all(db).await?)
}

#[derive(FromQueryResult)]
struct Downloads {
    id: Uuid,
    downloads: i64,
}

#[tracing::instrument(name = "db.search_index.downloads", skip(db))]
async fn downloads(db: &DatabaseConnection) -> AppResult<Vec<(Uuid, i64)>> {
    let stmt = Statement::from_string(db.get_database_backend(), "SELECT id, downloads FROM packages");
    Ok(Downloads::find_by_statement(stmt).all(db).await?.into_iter().map(|d| (d.id, d.downloads)).collect())
}

/// Every prefix of every word of `text`, space-separated.
fn prefixes(text: &str) -> String {
    let mut out = String::new();
    for word in words(text) {
        for end in 1..=word.len() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&word[..end]);
        }
    }
    out
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::internal(anyhow::anyhow!("search index: {e}"))
}

/// Collects every match's slot and score.
struct AllScores {
    slot: &'static str,
}

struct SegmentScores {
    slots: tantivy::columnar::Column<u64>,
    found: Vec<(u32, Score)>,
}

impl Collector for AllScores {
    type Fruit = Vec<(u32, Score)>;
    type Child = SegmentScores;

    fn for_segment(&self, _ord: u32, segment: &SegmentReader) -> tantivy::Result<SegmentScores> {
        Ok(SegmentScores { slots: segment.fast_fields().u64(self.slot)?, found: Vec::new() })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u32, Score)>>) -> tantivy::Result<Vec<(u32, Score)>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentScores {
    type Fruit = Vec<(u32, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(slot) = self.slots.first(doc) {
            self.found.push((slot as u32, score));
        }
    }

    fn harvest(self) -> Vec<(u32, Score)> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_data_not_syntax() {
        assert_eq!(terms("HTTP-client \"x\" OR 50%_off*"), vec!["http", "client", "x", "or", "50", "off"]);
        assert!(terms("%_'\"*()").is_empty());
        assert_eq!(prefixes("Ab-c"), "a ab c");
    }
}
