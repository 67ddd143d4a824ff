//! Ranking without scoring every match: the page of a search is found from two small sets.
//!
//! The order (see the module docs) puts every name starting with the query (the name tiers) before
//! every other match, and text relevance is capped, so:
//! - the name tiers are matches whose name starts with the query: found through the `name_start`
//!   field (each name's first [`NAME_START_LEN`] characters as prefixes), scored all (there are few
//!   of them: a name prefix is rare next to a word);
//! - the other matches are needed only when the tiers hold fewer than `offset + limit`, and then
//!   only the best `offset + limit` by text relevance, plus every match tying with the last of
//!   them (ties are broken by downloads and name, which the index does not score). For one word,
//!   tantivy finds those with block-max WAND over the word's three fields: it skips whole blocks of
//!   postings that cannot beat the current `offset + limit`-th score, so a common word costs a few
//!   hundred scored matches, not tens of thousands.
//!
//! What matches is an intersection of one posting list per word in the unscored `any` field (and
//! the keyword's, and the name start's): a profile at 100,000 packages spent a third of a search in
//! tantivy's buffered unions of the three fields per word, which score every document of each
//! word's union even where the other words rule it out. The matches of an intersection are scored
//! one by one, each word's field scorers seeking to them. `total` counts the intersection without
//! scoring.
//!
//! Text scores are compared at 1/1024: sums of the same terms in another order differ in the last
//! bits of a float, and that noise must not outrank downloads.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tantivy::query::{BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery, Weight};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, DocSet, Score, Searcher, Term};

use super::{internal, SearchIndex, MAX_TEXT_SCORE, WEIGHTS};
use crate::error::AppResult;

/// How many characters of each name the `name_start` field indexes as prefixes (a longer query
/// looks up its first this many and checks the rest on the name).
pub(super) const NAME_START_LEN: usize = 8;

/// The prefixes of a name's first [`NAME_START_LEN`] characters, space-separated.
pub(super) fn name_starts(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let ends = (1..=lower.len().min(NAME_START_LEN)).filter(|&e| lower.is_char_boundary(e));
    ends.map(|e| &lower[..e]).collect::<Vec<_>>().join(" ")
}

/// Whether some package name could start with `exact` (names are lowercase ASCII letters,
/// digits and '-').
pub(super) fn may_be_name_prefix(exact: &str) -> bool {
    !exact.is_empty() && exact.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A text score as ranking compares it: rounded down to a multiple of 1/1024 (exact in f32 for
/// every score below 2^14).
pub(super) fn quantize(score: Score) -> Score {
    (score * 1024.0).floor() / 1024.0
}

/// A candidate: slot and text score.
pub(super) type Scored = (u32, Score);

/// The best `k` scores seen and every candidate that may still be among them or tie with the
/// last of them. Scores are never negative, so their bits order as they do.
struct TopTies {
    k: usize,
    best: BinaryHeap<Reverse<u32>>,
    kept: Vec<Scored>,
    /// [`TopTies::threshold`]'s value, kept current by `push` (it is asked once per match).
    threshold: Score,
}

impl TopTies {
    fn new(k: usize) -> TopTies {
        TopTies {
            k,
            best: BinaryHeap::with_capacity(k + 1),
            kept: Vec::with_capacity(k.min(4096) * 2),
            threshold: Score::MIN,
        }
    }

    /// The score a candidate must reach to matter (capped, since capped scores tie).
    fn floor(&self) -> Option<Score> {
        (self.best.len() >= self.k).then(|| {
            let kth = self.best.peek().map_or(0.0, |Reverse(bits)| Score::from_bits(*bits));
            quantize(kth).min(MAX_TEXT_SCORE as Score)
        })
    }

    /// What tantivy may skip: scores strictly below the floor (it passes only scores above the
    /// threshold, so the threshold sits just under the floor to keep ties; a raw score at the
    /// floor quantizes to it).
    fn threshold(&self) -> Score {
        self.threshold
    }

    fn push(&mut self, slot: u32, score: Score) {
        self.kept.push((slot, score));
        self.best.push(Reverse(score.max(0.0).to_bits()));
        if self.best.len() > self.k {
            self.best.pop();
        }
        self.threshold = self.floor().map_or(Score::MIN, |f| if f > 0.0 { f.next_down() } else { Score::MIN });
        if self.kept.len() >= 8 * self.k + 256 {
            self.prune();
        }
    }

    fn prune(&mut self) {
        if let Some(floor) = self.floor() {
            self.kept.retain(|&(_, s)| quantize(s).min(MAX_TEXT_SCORE as Score) >= floor);
        }
    }

    fn finish(mut self) -> Vec<Scored> {
        self.prune();
        self.kept
    }
}

impl SearchIndex {
    /// What a query matches, unscored: every word (in any text field), the keyword when given,
    /// and the name start when given.
    pub(super) fn matching(&self, terms: &[String], keyword: Option<&str>, start: Option<&str>) -> BooleanQuery {
        let term = |field, text: &str| -> (Occur, Box<dyn Query>) {
            (Occur::Must, Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic)))
        };
        let mut clauses: Vec<_> = terms.iter().map(|t| term(self.fields.any, t)).collect();
        clauses.extend(keyword.map(|k| term(self.fields.keyword, k)));
        clauses.extend(start.map(|s| term(self.fields.name_start, &s[..s.len().min(NAME_START_LEN)])));
        BooleanQuery::new(clauses)
    }

    /// Each word in each text field, weighted: the parts of a match's score.
    fn field_weights(&self, searcher: &Searcher, terms: &[String]) -> AppResult<Vec<Box<dyn Weight>>> {
        let scoring = EnableScoring::enabled_from_searcher(searcher);
        let mut weights = Vec::with_capacity(terms.len() * WEIGHTS.len());
        for t in terms {
            for (field, (_, weight)) in self.fields.text.iter().zip(WEIGHTS) {
                let term = TermQuery::new(Term::from_field_text(*field, t), IndexRecordOption::WithFreqs);
                weights.push(BoostQuery::new(Box::new(term), weight).weight(scoring).map_err(internal)?);
            }
        }
        Ok(weights)
    }

    /// Calls `each` with every live match of `matching` and its text score: the sum, over words
    /// and fields, of the field's weighted BM25 where the word is in that field.
    fn scored(
        &self,
        searcher: &Searcher,
        matching: &BooleanQuery,
        terms: &[String],
        each: &mut dyn FnMut(u32, Score),
    ) -> AppResult<()> {
        let weight = matching.weight(EnableScoring::disabled_from_searcher(searcher)).map_err(internal)?;
        let parts = self.field_weights(searcher, terms)?;
        for segment in searcher.segment_readers() {
            let slots = segment.fast_fields().u64("slot").map_err(internal)?;
            let alive = segment.alive_bitset();
            let mut scorers =
                parts.iter().map(|w| w.scorer(segment, 1.0)).collect::<tantivy::Result<Vec<_>>>().map_err(internal)?;
            weight
                .for_each_no_score(segment, &mut |docs: &[DocId]| {
                    for &doc in docs {
                        if alive.is_some_and(|a| a.is_deleted(doc)) {
                            continue;
                        }
                        let mut score: Score = 0.0;
                        for s in scorers.iter_mut() {
                            // Scorers only move forward, and matches come in document order.
                            let at = if s.doc() < doc { s.seek(doc) } else { s.doc() };
                            if at == doc {
                                score += s.score();
                            }
                        }
                        if let Some(slot) = slots.first(doc) {
                            each(slot as u32, score);
                        }
                    }
                })
                .map_err(internal)?;
        }
        Ok(())
    }

    /// The matches among names starting with `exact` (which [`may_be_name_prefix`]), every one of
    /// them with its text score.
    pub(super) fn name_tier(
        &self,
        searcher: &Searcher,
        terms: &[String],
        keyword: Option<&str>,
        exact: &str,
    ) -> AppResult<Vec<Scored>> {
        let matching = self.matching(terms, keyword, Some(exact));
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::new();
        self.scored(searcher, &matching, terms, &mut |slot, score| {
            // The field holds the first characters only: a longer query is checked on the name.
            let starts = exact.len() <= NAME_START_LEN
                || catalog
                    .entries
                    .get(slot as usize)
                    .is_some_and(|e| e.package.name.as_bytes().starts_with(exact.as_bytes()));
            if starts {
                found.push((slot, score));
            }
        })?;
        Ok(found)
    }

    /// The best `k` matches by text score (capped), with every match tying the last.
    pub(super) fn best_by_text(
        &self,
        searcher: &Searcher,
        terms: &[String],
        keyword: Option<&str>,
        k: usize,
    ) -> AppResult<Vec<Scored>> {
        let mut top = TopTies::new(k.max(1));
        if let ([one], None) = (terms, keyword) {
            // One word, no filter: a union of term queries, which tantivy prunes (block-max WAND).
            let query = self.word_query(one);
            let weight = query.weight(EnableScoring::enabled_from_searcher(searcher)).map_err(internal)?;
            for segment in searcher.segment_readers() {
                let slots = segment.fast_fields().u64("slot").map_err(internal)?;
                let alive = segment.alive_bitset();
                weight
                    .for_each_pruning(top.threshold(), segment, &mut |doc, score| {
                        if !alive.is_some_and(|a| a.is_deleted(doc)) {
                            if let Some(slot) = slots.first(doc) {
                                top.push(slot as u32, score);
                            }
                        }
                        top.threshold()
                    })
                    .map_err(internal)?;
            }
        } else {
            let matching = self.matching(terms, keyword, None);
            self.scored(searcher, &matching, terms, &mut |slot, score| {
                if score > top.threshold() {
                    top.push(slot, score);
                }
            })?;
        }
        Ok(top.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{terms, AllScores, Indexed};
    use super::*;
    use entity::packages;

    #[test]
    fn top_ties_keeps_the_best_and_their_ties() {
        let mut top = TopTies::new(2);
        for (slot, score) in [(1, 1.0), (2, 5.0), (3, 3.0), (4, 3.0), (5, 0.5), (6, 2.0)] {
            if score > top.threshold() {
                top.push(slot, score);
            }
        }
        let mut kept = top.finish();
        kept.sort_by_key(|&(slot, _)| slot);
        assert_eq!(kept, vec![(2, 5.0), (3, 3.0), (4, 3.0)], "the best two and the tie with the second");
    }

    #[test]
    fn capped_scores_all_tie() {
        let mut top = TopTies::new(1);
        for (slot, score) in [(1, 150.0), (2, 120.0), (3, 99.0), (4, 98.0)] {
            if score > top.threshold() {
                top.push(slot, score);
            }
        }
        let mut kept: Vec<u32> = top.finish().into_iter().map(|(s, _)| s).collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![1, 2, 3], "every score at or above the cap ties with the best");
    }

    #[test]
    fn name_starts_are_the_first_characters() {
        assert_eq!(name_starts("json-rpc-client"), "j js jso json json- json-r json-rp json-rpc");
        assert_eq!(name_starts("ab"), "a ab");
        assert!(may_be_name_prefix("json-"));
        assert!(!may_be_name_prefix("json client"));
        assert!(!may_be_name_prefix(""));
    }

    fn package(i: usize, downloads: i64) -> Indexed {
        const FIRST: [&str; 5] = ["fast", "fa", "json", "jsonic", "async"];
        const MID: [&str; 4] = ["json", "http", "fastcgi", "core"];
        let name = format!("{}-{}-{i}", FIRST[i % 5], MID[(i / 5) % 4]);
        // Descriptions of different lengths and word counts, so BM25 scores spread out and tie.
        let description = format!("{} json{}", "fast ".repeat(i % 4), " filler".repeat(i % 9));
        let now = chrono::Utc::now();
        let package = packages::Model {
            id: uuid::Uuid::new_v4(),
            name_folded: name.clone(),
            name,
            description: Some(description),
            license: None,
            repository: None,
            homepage: None,
            keywords_text: if i.is_multiple_of(3) { "fast json".into() } else { "http".into() },
            downloads,
            created_at: now,
            updated_at: now,
        };
        Indexed { package, latest: (!i.is_multiple_of(11)).then(|| "1.0.0".into()) }
    }

    /// Every match scored and sorted: what the ranking must equal.
    /// tantivy's own scoring of the text query, over every match.
    fn reference(
        index: &SearchIndex,
        query: &str,
        keyword: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> (u64, Vec<String>) {
        let searcher = index.reader.searcher();
        let words: Vec<(Occur, Box<dyn Query>)> =
            terms(query).iter().map(|t| (Occur::Must, index.word_query(t))).collect();
        let all = searcher.search(&BooleanQuery::new(words), &AllScores { slot: "slot" }).unwrap();
        let catalog = index.catalog.read().unwrap();
        let exact = query.trim().to_lowercase();
        let mut keyed: Vec<(f64, i64, String)> = all
            .iter()
            .filter(|&&(slot, _)| {
                keyword.is_none_or(|k| catalog.entries[slot as usize].package.keywords_text.split(' ').any(|w| w == k))
            })
            .map(|&(slot, text)| {
                let p = &catalog.entries[slot as usize].package;
                let tier = match (p.name.starts_with(&exact), p.name == exact) {
                    (true, true) => 1000.0,
                    (true, false) => 100.0,
                    _ => 0.0,
                };
                (tier + f64::from(quantize(text)).min(MAX_TEXT_SCORE), p.downloads, p.name.clone())
            })
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        (keyed.len() as u64, keyed.into_iter().skip(offset).take(limit).map(|k| k.2).collect())
    }

    #[test]
    fn pruned_ranking_equals_sorting_every_match() {
        let index = SearchIndex::new().unwrap();
        index.apply((0..3_000).map(|i| package(i, (i % 7) as i64)).collect()).unwrap();
        // Some packages again with other counts and words (deleted documents, a second segment),
        // and an exact name.
        let again: Vec<Indexed> = (0..3_000)
            .step_by(13)
            .map(|i| {
                let mut p = package(i, 100 + (i % 3) as i64);
                let slot = index.catalog.read().unwrap().entries.iter().position(|e| e.package.name == p.package.name);
                p.package.id = index.catalog.read().unwrap().entries[slot.unwrap()].package.id;
                p
            })
            .chain([package(3_000, 1)].into_iter().map(|mut p| {
                p.package.name = "fast".into();
                p
            }))
            .collect();
        index.apply(again).unwrap();
        let queries =
            ["fast", "fa", "json", "fast json", "json fast", "fast-j", "fa-json", "jsonic-core-1", "f", "core"];
        for q in queries {
            for keyword in [None, Some("json"), Some("http")] {
                for (offset, limit) in [(0, 20), (0, 1), (7, 3), (37, 20), (0, 500), (2_990, 20)] {
                    let got = index.search(q, keyword, offset as u64, limit as u64).unwrap();
                    let names: Vec<String> = got.hits.iter().map(|f| f.package.name.clone()).collect();
                    let (total, expected) = reference(&index, q, keyword, offset, limit);
                    assert_eq!(got.total, total, "total of {q:?} {keyword:?}");
                    assert_eq!(names, expected, "{q:?} {keyword:?} offset {offset} limit {limit}");
                }
            }
        }
    }
}
