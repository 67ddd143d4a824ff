//! Typo tolerance: what a search that matched nothing suggests instead.
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::{internal, words, AllScores, Found, Ranked, SearchIndex};
use crate::error::AppResult;

impl SearchIndex {
    /// Typo tolerance, for a query that matched nothing: each query word that is no prefix of any
    /// indexed word is matched, in names and keywords, within an edit distance instead (1 for 4 to 7 letters, 2 from 8;
    /// a swap of two letters counts 1; shorter words are not guessed), the others as typed. The
    /// matches, most downloaded first, are suggestions, not results; `did_you_mean` is the query
    /// with each unknown word replaced by the nearest word of the first suggestion. With a keyword
    /// filter, suggestions list that keyword too.
    pub(super) fn suggest(
        &self,
        searcher: &tantivy::Searcher,
        terms: &[String],
        keyword: Option<&str>,
        limit: u64,
    ) -> AppResult<Ranked> {
        let known = |t: &str| {
            self.fields.text.iter().any(|f| searcher.doc_freq(&Term::from_field_text(*f, t)).is_ok_and(|n| n > 0))
        };
        let unknown: Vec<bool> = terms.iter().map(|t| !known(t)).collect();
        // Bounded work: a few words, none huge, and at least one worth guessing.
        let guessable = |t: &String| (4..=32).contains(&t.len());
        if terms.len() > 4
            || !unknown.iter().any(|&u| u)
            || terms.iter().zip(&unknown).any(|(t, &u)| u && !guessable(t))
        {
            return Ok(Ranked::default());
        }
        let mut per_term: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .zip(&unknown)
            .map(|(t, &u)| {
                // A guessed word is looked for in names and keywords only: the description field's
                // dictionary is the largest, and streaming it through the Levenshtein automaton was
                // most of a missed search's cost (a query set with many misses spent 29% there).
                let fields = if u { &self.fields.text[..2] } else { &self.fields.text[..] };
                let fields: Vec<(Occur, Box<dyn Query>)> = fields
                    .iter()
                    .map(|field| {
                        let term = Term::from_field_text(*field, t);
                        let q: Box<dyn Query> = if u {
                            Box::new(FuzzyTermQuery::new(term, if t.len() >= 8 { 2 } else { 1 }, true))
                        } else {
                            Box::new(TermQuery::new(term, IndexRecordOption::Basic))
                        };
                        (Occur::Should, q)
                    })
                    .collect();
                (Occur::Must, Box::new(BooleanQuery::new(fields)) as Box<dyn Query>)
            })
            .collect();
        if let Some(k) = keyword {
            per_term.push((Occur::Must, self.keyword_filter(k)));
        }
        let matched = searcher.search(&BooleanQuery::new(per_term), &AllScores { slot: "slot" }).map_err(internal)?;
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let entries = &catalog.entries;
        let mut slots: Vec<u32> =
            matched.into_iter().map(|(slot, _)| slot).filter(|&s| (s as usize) < entries.len()).collect();
        let order = |a: &u32, b: &u32| {
            let (ea, eb) = (&entries[*a as usize].package, &entries[*b as usize].package);
            eb.downloads.cmp(&ea.downloads).then_with(|| ea.name.cmp(&eb.name))
        };
        let keep = (limit as usize).min(slots.len());
        if keep == 0 {
            return Ok(Ranked::default());
        }
        if keep < slots.len() {
            slots.select_nth_unstable_by(keep - 1, order);
            slots.truncate(keep);
        }
        slots.sort_unstable_by(order);
        let suggestions: Vec<Found> = slots
            .iter()
            .map(|&slot| {
                let e = &entries[slot as usize];
                Found { package: e.package.clone(), latest: e.latest.clone(), score: 0.0 }
            })
            .collect();
        let did_you_mean = suggestions.first().map(|top| {
            let p = &top.package;
            let text = format!("{} {} {}", p.name, p.keywords_text, p.description.as_deref().unwrap_or(""));
            let candidates: Vec<String> = words(&text).collect();
            terms
                .iter()
                .zip(&unknown)
                .map(|(t, &u)| if u { nearest(t, &candidates).unwrap_or(t).to_owned() } else { t.clone() })
                .collect::<Vec<_>>()
                .join(" ")
        });
        Ok(Ranked { suggestions, did_you_mean, ..Ranked::default() })
    }
}

/// The word of `candidates` one of whose prefixes is nearest to `typed` (edit distance with
/// swaps), the shortest such word on a tie.
fn nearest<'a>(typed: &str, candidates: &'a [String]) -> Option<&'a str> {
    let t = typed.as_bytes();
    candidates
        .iter()
        .map(|w| {
            let w = w.as_bytes();
            let lens = t.len().saturating_sub(2).max(1)..=(t.len() + 2).min(w.len());
            let d = lens.map(|k| edit_distance(t, &w[..k])).min().unwrap_or(usize::MAX);
            (d, w.len().abs_diff(t.len()), w)
        })
        .min()
        .and_then(|(d, _, w)| (d <= 2).then(|| std::str::from_utf8(w).ok()).flatten())
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbours each cost 1.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_are_near_the_words_meant() {
        assert_eq!(edit_distance(b"raect", b"react"), 1, "a swap costs 1");
        assert_eq!(edit_distance(b"serer", b"server"), 1);
        assert_eq!(edit_distance(b"", b"abc"), 3);
        let words: Vec<String> = ["fast", "react", "reactor", "widgets"].map(String::from).to_vec();
        assert_eq!(nearest("raect", &words), Some("react"), "the shortest of equally near words");
        assert_eq!(nearest("widgte", &words), Some("widgets"), "a prefix of a word counts");
        assert_eq!(nearest("zzzzzz", &words), None);
    }
}
