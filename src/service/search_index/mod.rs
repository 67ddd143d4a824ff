//! The in-process search index: every visible package's words in a tantivy RAM index, so a search
//! costs no SQL for matching, ranking or counting, however many packages match.
//!
//! Words are what [`terms`] makes of a text (lowercase ASCII letters and digits), the same function
//! that splits a query, so indexing and querying cannot disagree. Each word is indexed with every
//! prefix of it (`server` as `s se ser serv serve server`), so a query word is one term lookup
//! with BM25 scoring: name prefixes weigh 10, keyword prefixes 5, description prefixes 1.
//! Each keyword is also indexed whole, unscored, in a field of its own: a search filtered by
//! keyword intersects the posting list of that one term, never looks at the other packages.
//!
//! The ranking, one code path on both databases: an exact name first, then names starting with
//! the query, then text relevance (BM25, kept below 100), ties broken by downloads (more first) and
//! then by name. `total` counts every match. A package with no non-yanked version is not indexed.
//! A page is found without scoring every match (`rank.rs`): the name tiers come from a field of
//! name starts, the rest from block-max WAND top-k, and the total from a count that scores nothing.
//!
//! Freshness follows the catalog generation (see `service::generation`), which every write raises:
//! a search reads the generation first, and when it is newer than the index's, the index catches
//! up before answering ([`SearchIndex::ensure`]): packages updated since its last look (less a
//! margin for clocks that differ between instances) are read again. So a publish or yank is in the
//! next search on any instance, and search pages can stay in the generation-keyed caches. (No
//! background task polls: an idle instance costs nothing, and the catch-up is one statement per
//! catalog change, not per search.) Download counts only break ties: they are read again at most every
//! second on other instances, at once on the instance that wrote them.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED};
use tantivy::{DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument, Term};
use uuid::Uuid;

use entity::{packages, versions};

use crate::domain::latest_version;
use crate::error::{AppError, AppResult};
use crate::service::generation;
use crate::service::inlist::padded;

mod rank;
mod suggest;

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
/// Download counts only break ties. Other instances' counts are read again (every package's, in
/// one statement) at most this often; the instance that writes counts reads them at once (see
/// `fetch::flush_counts`).
const DOWNLOADS_REFRESH: Duration = Duration::from_secs(10);
/// The tantivy writer's arena (its minimum per thread).
const WRITER_BYTES: usize = 15_000_000;

/// A package as search shows it: its row and its latest version.
#[derive(Clone)]
struct Entry {
    /// The name's first 8 bytes, big-endian: ordering by it orders by name except between names
    /// that share those 8 bytes, so ties in score and downloads rarely compare strings.
    name_key: u64,
    package: Arc<packages::Model>,
    /// The latest non-yanked version; None when every version is yanked, and then the package is
    /// not in the index.
    latest: Option<Arc<str>>,
}

/// Packages by slot (the u64 each tantivy document carries), and slots by id.
#[derive(Default)]
struct Catalog {
    entries: Vec<Entry>,
    by_id: HashMap<Uuid, u32>,
}

/// A package read for the index: its row and its non-yanked versions' numbers.
struct Indexed {
    package: packages::Model,
    latest: Option<String>,
}

struct Fields {
    slot: Field,
    text: [Field; 3],
    /// Each keyword whole (keywords are stored lowercase, without spaces), for the keyword filter.
    keyword: Field,
    /// The prefixes of each name's first characters, unscored: finds the name tiers (`rank.rs`).
    name_start: Field,
    /// The three text fields' terms together, unscored: what a package matches, found by
    /// intersecting one posting list per word rather than a union of three (`rank.rs`).
    any: Field,
}

/// One match: the package row (downloads as of the index's last look), its latest version and score.
pub struct Found {
    pub package: Arc<packages::Model>,
    pub latest: Option<Arc<str>>,
    pub score: f64,
}

/// A match as it is ranked.
struct Key {
    score: f64,
    downloads: i64,
    name_key: u64,
    slot: u32,
}

fn name_key(name: &str) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, n) in bytes.iter_mut().zip(name.bytes()) {
        *b = n;
    }
    u64::from_be_bytes(bytes)
}

/// One page of ranked matches, and how many packages matched in all. When nothing matched and a
/// word of the query is not in the index, packages matching the query with that word misspelled
/// (see `suggest.rs`) and the query as it was probably meant.
#[derive(Default)]
pub struct Ranked {
    pub hits: Vec<Found>,
    pub total: u64,
    pub suggestions: Vec<Found>,
    pub did_you_mean: Option<String>,
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
        // Unscored fields: documents only, no frequencies.
        let unscored = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer("whitespace").set_index_option(IndexRecordOption::Basic),
        );
        let keyword = schema.add_text_field("keyword", unscored.clone());
        let name_start = schema.add_text_field("name_start", unscored.clone());
        let any = schema.add_text_field("any", unscored);
        let index = Index::create_in_ram(schema.build());
        let writer = index.writer_with_num_threads(1, WRITER_BYTES).map_err(internal)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(internal)?;
        Ok(SearchIndex {
            fields: Fields { slot, text, keyword, name_start, any },
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
    pub async fn load(self: &Arc<Self>, db: &DatabaseConnection) -> AppResult<()> {
        let mut follow = self.follow.lock().await;
        let generation = generation::current(db).await?;
        let rows = changed_since(db, None).await?;
        let n = rows.len();
        let newest = rows.iter().map(|r| r.package.updated_at).max();
        self.apply_off_thread(rows).await?;
        follow.generation = generation;
        follow.updated_since = newest;
        follow.downloads_read = Instant::now();
        let index_bytes = self.reader.searcher().space_usage().map(|u| u.total().get_bytes()).unwrap_or(0);
        tracing::info!(packages = n, index_bytes, "search index loaded");
        Ok(())
    }

    /// Indexing and tantivy's commit are CPU work: they run on the blocking pool, not on the
    /// thread that serves requests.
    async fn apply_off_thread(self: &Arc<Self>, rows: Vec<Indexed>) -> AppResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let index = self.clone();
        tokio::task::spawn_blocking(move || index.apply(rows)).await.map_err(internal)?
    }

    fn apply(&self, rows: Vec<Indexed>) -> AppResult<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut documents = Vec::with_capacity(rows.len());
        {
            let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
            for Indexed { package, latest } in rows {
                let visible = latest.is_some();
                let entry = Entry {
                    name_key: name_key(&package.name),
                    latest: latest.map(Arc::from),
                    package: Arc::new(package),
                };
                let slot = match catalog.by_id.get(&entry.package.id) {
                    Some(&slot) => {
                        writer.delete_term(Term::from_field_u64(self.fields.slot, u64::from(slot)));
                        catalog.entries[slot as usize] = entry.clone();
                        slot
                    }
                    None => {
                        let slot = catalog.entries.len() as u32;
                        catalog.by_id.insert(entry.package.id, slot);
                        catalog.entries.push(entry.clone());
                        slot
                    }
                };
                if visible {
                    documents.push((slot, entry.package));
                }
            }
        }
        for (slot, p) in documents {
            let mut doc = TantivyDocument::new();
            doc.add_u64(self.fields.slot, u64::from(slot));
            let texts = [p.name.as_str(), p.keywords_text.as_str(), p.description.as_deref().unwrap_or("")];
            let mut any = String::new();
            for (field, text) in self.fields.text.iter().zip(texts) {
                let terms = prefixes(text);
                any.push_str(&terms);
                any.push(' ');
                doc.add_text(*field, terms);
            }
            doc.add_text(self.fields.any, any);
            doc.add_text(self.fields.keyword, p.keywords_text.as_str());
            doc.add_text(self.fields.name_start, rank::name_starts(&p.name));
            writer.add_document(doc).map_err(internal)?;
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
        let Catalog { entries, by_id } = &mut *catalog;
        for (id, n) in counts {
            if let Some(entry) = by_id.get(id).and_then(|&slot| entries.get_mut(slot as usize)) {
                if entry.package.downloads != *n {
                    Arc::make_mut(&mut entry.package).downloads = *n;
                }
            }
        }
    }

    /// Packages matching every word of `query` (and listing `keyword`, when given: a normalised
    /// keyword), best first, `limit` of them from `offset`.
    ///
    /// A name starting with the whole query always matches its words (each query word is a
    /// prefix of one of the name's words), so the name tiers are the matches among names starting
    /// with the query: few, and all scored. The other matches are read only as far as the page
    /// reaches (`rank.rs`).
    pub fn search(&self, query: &str, keyword: Option<&str>, offset: u64, limit: u64) -> AppResult<Ranked> {
        let terms = terms(query);
        if terms.is_empty() {
            return Ok(Ranked::default());
        }
        let exact = query.trim().to_lowercase();
        let searcher = self.reader.searcher();
        let total = self.matching(&terms, keyword, None).count(&searcher).map_err(internal)? as u64;
        if total == 0 {
            return self.suggest(&searcher, &terms, keyword, limit);
        }
        let end = offset.saturating_add(limit).min(total) as usize;
        let start = offset.min(total) as usize;
        if end <= start {
            return Ok(Ranked { total, ..Ranked::default() });
        }
        // The name tiers in full, then (when they are not enough) the best of the other matches.
        let mut candidates =
            if rank::may_be_name_prefix(&exact) { self.name_tier(&searcher, &terms, keyword, &exact)? } else { vec![] };
        let tier_size = candidates.len();
        if tier_size < end {
            candidates.extend(self.best_by_text(&searcher, &terms, keyword, end)?);
        }

        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let entries = &catalog.entries;
        // Each candidate with its sort key: tier plus text relevance, downloads, name. The key is
        // built once per candidate, so ordering compares numbers, not entries.
        let mut ranked: Vec<Key> = Vec::with_capacity(candidates.len());
        for (i, (slot, text)) in candidates.into_iter().enumerate() {
            let Some(e) = entries.get(slot as usize) else { continue };
            let name = e.package.name.as_bytes();
            let starts = name.starts_with(exact.as_bytes());
            // A tier member found again among the best by text is already counted.
            if i >= tier_size && starts {
                continue;
            }
            let tier = match (starts, name.len() == exact.len()) {
                (true, true) => EXACT_NAME,
                (true, false) => NAME_PREFIX,
                _ => 0.0,
            };
            let score = tier + f64::from(rank::quantize(text)).min(MAX_TEXT_SCORE);
            ranked.push(Key { score, downloads: e.package.downloads, name_key: e.name_key, slot });
        }
        let order = |a: &Key, b: &Key| {
            b.score
                .total_cmp(&a.score)
                .then(b.downloads.cmp(&a.downloads))
                .then(a.name_key.cmp(&b.name_key))
                .then_with(|| entries[a.slot as usize].package.name.cmp(&entries[b.slot as usize].package.name))
        };
        let end = end.min(ranked.len());
        if end < ranked.len() {
            // Only the first `end` need ordering.
            ranked.select_nth_unstable_by(end - 1, order);
            ranked.truncate(end);
        }
        ranked.sort_unstable_by(order);
        let hits = ranked[start.min(end)..end]
            .iter()
            .map(|k| {
                let e = &entries[k.slot as usize];
                Found { package: e.package.clone(), latest: e.latest.clone(), score: k.score }
            })
            .collect();
        Ok(Ranked { hits, total, ..Ranked::default() })
    }

    /// One word of a query: a prefix of a word of the name, keywords or description, scored by
    /// each field's BM25, weighted. A plain union of term queries, which tantivy ranks with
    /// block-max WAND (see `rank.rs`).
    fn word_query(&self, word: &str) -> Box<dyn Query> {
        let fields: Vec<(Occur, Box<dyn Query>)> = self
            .fields
            .text
            .iter()
            .zip(WEIGHTS)
            .map(|(field, (_, weight))| {
                let q = TermQuery::new(Term::from_field_text(*field, word), IndexRecordOption::WithFreqs);
                (Occur::Should, Box::new(BoostQuery::new(Box::new(q), weight)) as Box<dyn Query>)
            })
            .collect();
        Box::new(BooleanQuery::new(fields))
    }
}

impl SearchIndex {
    /// Matches the packages listing `keyword`, adding nothing to their score.
    fn keyword_filter(&self, keyword: &str) -> Box<dyn Query> {
        let term = TermQuery::new(Term::from_field_text(self.fields.keyword, keyword), IndexRecordOption::Basic);
        Box::new(ConstScoreQuery::new(Box::new(term), 0.0))
    }

    /// Makes sure the index has caught up with catalog generation `generation` (read by the caller
    /// before it reads anything else): a search that sees a generation sees every write before it.
    pub async fn ensure(self: &Arc<Self>, db: &DatabaseConnection, generation: i64) -> AppResult<()> {
        let mut follow = self.follow.lock().await;
        if follow.generation >= generation {
            return Ok(());
        }
        let since = follow.updated_since.map(|t| t - chrono::Duration::seconds(CLOCK_MARGIN_SECS));
        let rows = changed_since(db, since).await?;
        if let Some(newest) = rows.iter().map(|r| r.package.updated_at).max() {
            follow.updated_since = Some(follow.updated_since.map_or(newest, |t| t.max(newest)));
        }
        self.apply_off_thread(rows).await?;
        if follow.downloads_read.elapsed() >= DOWNLOADS_REFRESH {
            self.set_downloads(&downloads(db).await?);
            follow.downloads_read = Instant::now();
        }
        follow.generation = generation;
        Ok(())
    }
}

#[derive(FromQueryResult)]
struct Num {
    package_id: Uuid,
    num: String,
}

/// Packages read per statement.
const READ_CHUNK: u64 = 2_000;

/// Packages updated at or after `since` (all when None), each with its latest non-yanked version.
///
/// Read in chunks of [`READ_CHUNK`] (keyset on the id): the rows of one statement are decoded and
/// dropped before the next is read, so their buffers are reused rather than left as holes between
/// the package rows kept. Read in one statement, 100,000 packages left ~2.9 KB of resident heap per
/// package (pages pinned by one kept string amid freed row buffers) against ~0.5 KB kept.
#[tracing::instrument(name = "db.search_index.changed", skip(db))]
async fn changed_since(db: &DatabaseConnection, since: Option<DateTime<Utc>>) -> AppResult<Vec<Indexed>> {
    let mut out = Vec::new();
    let mut after: Option<Uuid> = None;
    loop {
        let mut query = packages::Entity::find().order_by_asc(packages::Column::Id).limit(READ_CHUNK);
        if let Some(t) = since {
            query = query.filter(packages::Column::UpdatedAt.gte(t));
        }
        if let Some(id) = after {
            query = query.filter(packages::Column::Id.gt(id));
        }
        let chunk = query.all(db).await?;
        let Some(last) = chunk.last() else { break };
        after = Some(last.id);
        let full = chunk.len() as u64 == READ_CHUNK;
        let nums = versions::Entity::find()
            .select_only()
            .column(versions::Column::PackageId)
            .column(versions::Column::Num)
            .filter(versions::Column::Yanked.eq(false))
            .filter(versions::Column::PackageId.is_in(padded(chunk.iter().map(|p| p.id))))
            .into_model::<Num>()
            .all(db)
            .await?;
        let mut by_package: HashMap<Uuid, Vec<String>> = HashMap::with_capacity(chunk.len());
        for n in nums {
            by_package.entry(n.package_id).or_default().push(n.num);
        }
        out.extend(chunk.into_iter().map(|package| {
            let latest =
                by_package.remove(&package.id).and_then(|nums| latest_version(nums, |n| n.as_str(), |_| false));
            Indexed { package, latest }
        }));
        if !full {
            break;
        }
    }
    Ok(out)
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
        Ok(SegmentScores { slots: segment.fast_fields().u64(self.slot)?, found: Vec::with_capacity(1024) })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, mut fruits: Vec<Vec<(u32, Score)>>) -> tantivy::Result<Vec<(u32, Score)>> {
        // Usually one segment: its matches as they are, not copied.
        if fruits.len() == 1 {
            return Ok(fruits.pop().unwrap_or_default());
        }
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

    #[test]
    fn name_keys_order_as_names_do() {
        let mut names = ["abc", "abcd", "abcdefgh-b", "abcdefgh-a", "abcdefgh", "b", "a-1", "a1", "zz"];
        let mut by_key = names;
        names.sort_unstable();
        by_key.sort_unstable_by(|a, b| name_key(a).cmp(&name_key(b)).then_with(|| a.cmp(b)));
        assert_eq!(by_key, names);
        assert!(name_key("abcdefgh-a") == name_key("abcdefgh-b"), "names sharing 8 bytes fall back to the name");
    }
}
