//! Key lists for `IN (...)`, padded so that a query has a few shapes instead of one per list length.
//!
//! Both sqlx drivers keep each connection's prepared statements in a cache keyed by SQL text
//! (`SQLITE_STATEMENT_CACHE` entries per connection on SQLite). With one placeholder per key,
//! every batch size was its own statement: a page of 17 packages and a page of 18 prepared twice,
//! and each connection's cache filled slowly with near-duplicates. The soak showed RSS still
//! growing after 10 minutes; the statement cache was the lead.
//!
//! Padding to the next power of two by repeating the last key keeps a query to
//! log2(largest list) + 1 shapes. A repeated key matches the same rows again, and `IN` does not
//! return a row twice, so results are unchanged; at worst a list carries twice its keys.
use sea_orm::Value;

/// The keys, padded to the next power of two with copies of the last key (empty stays empty).
pub fn padded<T: Clone>(keys: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut keys: Vec<T> = keys.into_iter().collect();
    if let Some(last) = keys.last().cloned() {
        keys.resize(keys.len().next_power_of_two(), last);
    }
    keys
}

/// `?, ?, ...` for a padded list of `keys` (numbered later by `db::numbered` on PostgreSQL),
/// and the padded values to bind.
pub fn bind<T: Clone + Into<Value>>(keys: impl IntoIterator<Item = T>) -> (String, Vec<Value>) {
    let values: Vec<Value> = padded(keys).into_iter().map(Into::into).collect();
    (vec!["?"; values.len()].join(", "), values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_a_power_of_two_with_the_last_key() {
        assert!(padded(Vec::<u8>::new()).is_empty());
        assert_eq!(padded([7]), vec![7]);
        assert_eq!(padded([1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(1..=5).len(), 8);
        assert_eq!(padded(1..=8).len(), 8);
        let shapes: std::collections::HashSet<usize> = (1..=100).map(|n| padded(0..n).len()).collect();
        assert_eq!(shapes.len(), 8, "1..=100 keys take 8 list lengths: {shapes:?}");
    }

    #[test]
    fn bind_makes_one_placeholder_per_padded_key() {
        let (sql, values) = bind(["a", "b", "c"]);
        assert_eq!(sql, "?, ?, ?, ?");
        assert_eq!(values.len(), 4);
    }
}
