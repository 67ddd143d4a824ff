//! Ranking without scoring every match: the page of a search is found from two small sets.
//!
//! The order (see the module docs) puts every name starting with the query (the name tiers) before
//! every other match, and text relevance is capped, so:
//! - the name tiers are matches whose name starts with the query: found through the `name_start`
//!   field (each name's first [`NAME_START_LEN`] characters as prefixes), scored all (there are few
//!   of them: a name prefix is rare next to a word);
//! - the other matches are needed only when the tiers hold fewer than `offset + limit`, and then
//!   only the best `offset + limit` by text relevance, plus every match tying with the last of
//!   them (ties are broken by downloads and name, which the index does not score). tantivy finds
//!   those with block-max WAND on a one-word query: it skips whole blocks of postings that cannot
//!   beat the current `offset + limit`-th score, so a common word costs a few hundred scored
//!   matches, not tens of thousands.
//!
//! `total` is a count without scoring. Every answer is the same as sorting all matches would give
//! (tests on ranking, ties and pagination run on both databases).
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tantivy::query::{BooleanQuery, ConstScoreQuery, EnableScoring, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Score, Searcher, Term};

use super::{internal, SearchIndex, MAX_TEXT_SCORE};
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

/// A candidate: slot and text score.
pub(super) type Scored = (u32, Score);

/// The best `k` scores seen and every candidate that may still be among them or tie with the
/// last of them. Scores are never negative, so their bits order as they do.
struct TopTies {
    k: usize,
    best: BinaryHeap<Reverse<u32>>,
    kept: Vec<Scored>,
}

impl TopTies {
    fn new(k: usize) -> TopTies {
        TopTies { k, best: BinaryHeap::with_capacity(k + 1), kept: Vec::with_capacity(k.min(4096) * 2) }
    }

    /// The score a candidate must reach to matter (capped, since capped scores tie).
    fn floor(&self) -> Option<Score> {
        (self.best.len() >= self.k).then(|| {
            let kth = self.best.peek().map_or(0.0, |Reverse(bits)| Score::from_bits(*bits));
            kth.min(MAX_TEXT_SCORE as Score)
        })
    }

    /// What tantivy may skip: scores strictly below the floor (it passes only scores above the
    /// threshold, so the threshold sits just under the floor to keep ties).
    fn threshold(&self) -> Score {
        self.floor().map_or(Score::MIN, |f| if f > 0.0 { f.next_down() } else { Score::MIN })
    }

    fn push(&mut self, slot: u32, score: Score) {
        self.kept.push((slot, score));
        self.best.push(Reverse(score.max(0.0).to_bits()));
        if self.best.len() > self.k {
            self.best.pop();
        }
        if self.kept.len() >= 8 * self.k + 256 {
            self.prune();
        }
    }

    fn prune(&mut self) {
        if let Some(floor) = self.floor() {
            self.kept.retain(|&(_, s)| s.min(MAX_TEXT_SCORE as Score) >= floor);
        }
    }

    fn finish(mut self) -> Vec<Scored> {
        self.prune();
        self.kept
    }
}

impl SearchIndex {
    /// The matches of `query` among names starting with `exact` (which [`may_be_name_prefix`]),
    /// every one of them with its text score.
    pub(super) fn name_tier(&self, searcher: &Searcher, query: &dyn Query, exact: &str) -> AppResult<Vec<Scored>> {
        let start = &exact[..exact.len().min(NAME_START_LEN)];
        let starts = TermQuery::new(Term::from_field_text(self.fields.name_start, start), IndexRecordOption::Basic);
        let tier = BooleanQuery::new(vec![
            (Occur::Must, query.box_clone()),
            (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(starts), 0.0))),
        ]);
        let weight = tier.weight(EnableScoring::enabled_from_searcher(searcher)).map_err(internal)?;
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::new();
        for segment in searcher.segment_readers() {
            let slots = segment.fast_fields().u64("slot").map_err(internal)?;
            let alive = segment.alive_bitset();
            weight
                .for_each(segment, &mut |doc, score| {
                    if alive.is_some_and(|a| a.is_deleted(doc)) {
                        return;
                    }
                    let Some(slot) = slots.first(doc) else { return };
                    let long_enough = exact.len() <= NAME_START_LEN
                        || catalog
                            .entries
                            .get(slot as usize)
                            .is_some_and(|e| e.package.name.as_bytes().starts_with(exact.as_bytes()));
                    if long_enough {
                        found.push((slot as u32, score));
                    }
                })
                .map_err(internal)?;
        }
        Ok(found)
    }

    /// The best `k` matches of `query` by text score (capped), with every match tying the last.
    pub(super) fn best_by_text(&self, searcher: &Searcher, query: &dyn Query, k: usize) -> AppResult<Vec<Scored>> {
        let weight = query.weight(EnableScoring::enabled_from_searcher(searcher)).map_err(internal)?;
        let mut top = TopTies::new(k.max(1));
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
            keywords_text: if i % 3 == 0 { "fast json".into() } else { "http".into() },
            downloads,
            created_at: now,
            updated_at: now,
        };
        Indexed { package, latest: (i % 11 != 0).then(|| "1.0.0".into()) }
    }

    /// Every match scored and sorted: what the ranking must equal.
    fn reference(index: &SearchIndex, query: &str, offset: usize, limit: usize) -> (u64, Vec<String>) {
        let searcher = index.reader.searcher();
        let all = searcher.search(index.text_query(&terms(query)).as_ref(), &AllScores { slot: "slot" }).unwrap();
        let catalog = index.catalog.read().unwrap();
        let exact = query.trim().to_lowercase();
        let mut keyed: Vec<(f64, i64, String)> = all
            .iter()
            .map(|&(slot, text)| {
                let p = &catalog.entries[slot as usize].package;
                let tier = match (p.name.starts_with(&exact), p.name == exact) {
                    (true, true) => 1000.0,
                    (true, false) => 100.0,
                    _ => 0.0,
                };
                (tier + f64::from(text).min(MAX_TEXT_SCORE), p.downloads, p.name.clone())
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
            for (offset, limit) in [(0, 20), (0, 1), (7, 3), (37, 20), (0, 500), (2_990, 20)] {
                let got = index.search(q, None, offset as u64, limit as u64).unwrap();
                let names: Vec<String> = got.hits.iter().map(|f| f.package.name.clone()).collect();
                let (total, expected) = reference(&index, q, offset, limit);
                assert_eq!(got.total, total, "total of {q:?}");
                assert_eq!(names, expected, "{q:?} offset {offset} limit {limit}");
            }
        }
    }
}
