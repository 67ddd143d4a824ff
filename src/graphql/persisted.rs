//! Automatic persisted queries (Apollo's `persistedQuery` extension): a client sends
//! `extensions: {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}` with only the hash; an
//! unknown hash answers `PERSISTED_QUERY_NOT_FOUND`, and the client sends the document once with
//! its hash to register it.
//!
//! Resolved here, in the transport, before anything else looks at the document, rather than with
//! async-graphql's `ApolloPersistedQueries` extension: that one resolves the hash inside
//! `Schema::execute`, after the transport has decided that a GET does not carry a mutation and
//! checked the document's size and shape, so a hash-only GET would run a registered mutation,
//! and its errors carry no `extensions.code`. Resolved first, a document from the store goes
//! through exactly the checks of a document sent in full. The store keeps query texts (not
//! parsed documents), bounded in bytes, least recently used first out.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_graphql::Request;
use sha2::{Digest, Sha256};

const EXTENSION: &str = "persistedQuery";

/// Why a request's persisted query could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The hash is not (or no longer) in the store: the client should send the document.
    NotFound,
    /// The extension is malformed, of another version, or its hash does not match the document.
    Invalid(String),
}

/// A request's persisted query, resolved.
pub enum Resolved {
    /// The request does not use the extension.
    Plain,
    /// The document came from the store.
    FromStore,
    /// The document came with its (verified) hash: keep it once the request is admitted.
    Register(String),
}

/// The store: query texts by their SHA-256 (lowercase hex).
pub struct PersistedQueries {
    inner: Mutex<Lru>,
}

struct Lru {
    entries: HashMap<String, (Arc<str>, u64)>,
    /// Last use -> hash, oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    max_bytes: usize,
}

impl PersistedQueries {
    pub fn new(max_bytes: u64) -> PersistedQueries {
        PersistedQueries {
            inner: Mutex::new(Lru {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, hash: &str) -> Option<Arc<str>> {
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let (text, last) = lru.entries.get_mut(hash)?;
        let (text, old) = (text.clone(), std::mem::replace(last, tick));
        lru.order.remove(&old);
        lru.order.insert(tick, hash.to_owned());
        Some(text)
    }

    /// Keeps `text` under `hash`, dropping the least recently used entries to make room.
    pub fn insert(&self, hash: String, text: &str) {
        let cost = text.len() + hash.len();
        let mut lru = self.lock();
        if cost > lru.max_bytes {
            return;
        }
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((_, old)) = lru.entries.remove(&hash) {
            lru.order.remove(&old);
            lru.bytes -= cost;
        }
        while lru.bytes + cost > lru.max_bytes {
            let Some((_, oldest)) = lru.order.pop_first() else { break };
            if let Some((old_text, _)) = lru.entries.remove(&oldest) {
                lru.bytes -= old_text.len() + oldest.len();
            }
        }
        lru.bytes += cost;
        lru.order.insert(tick, hash.clone());
        lru.entries.insert(hash, (text.into(), tick));
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the extension out of `request` and, for a hash-only request, puts the stored
    /// document in. A document sent with a hash must match it.
    pub fn resolve(&self, request: &mut Request) -> Result<Resolved, Refusal> {
        let Some(value) = request.extensions.remove(EXTENSION) else {
            return Ok(Resolved::Plain);
        };
        let hash = parse_extension(value)?;
        if request.query.is_empty() {
            let text = self.get(&hash).ok_or(Refusal::NotFound)?;
            request.query = text.to_string();
            return Ok(Resolved::FromStore);
        }
        if hex::encode(Sha256::digest(request.query.as_bytes())) != hash {
            return Err(Refusal::Invalid("provided sha does not match query".into()));
        }
        Ok(Resolved::Register(hash))
    }
}

/// `{"version": 1, "sha256Hash": "<64 hex digits>"}`; the hash is returned lowercased.
fn parse_extension(value: async_graphql::Value) -> Result<String, Refusal> {
    #[derive(serde::Deserialize)]
    struct Extension {
        version: i64,
        #[serde(rename = "sha256Hash")]
        sha256_hash: String,
    }
    let ext: Extension = async_graphql::from_value(value).map_err(|_| {
        Refusal::Invalid("the persistedQuery extension must be {\"version\": 1, \"sha256Hash\": \"<hex>\"}".into())
    })?;
    if ext.version != 1 {
        return Err(Refusal::Invalid(format!(
            "persistedQuery version {} is not supported; only version 1 is",
            ext.version
        )));
    }
    let hash = ext.sha256_hash.to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::Invalid("persistedQuery.sha256Hash must be 64 hexadecimal digits".into()));
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn least_recently_used_leaves_first_and_bytes_stay_bounded() {
        let docs = ["{ a }", "{ b }", "{ c }"];
        let per = docs[0].len() + 64;
        let store = PersistedQueries::new((2 * per) as u64);
        store.insert(hash(docs[0]), docs[0]);
        store.insert(hash(docs[1]), docs[1]);
        assert!(store.get(&hash(docs[0])).is_some(), "a read makes `a` the most recent");
        store.insert(hash(docs[2]), docs[2]);
        assert_eq!(store.len(), 2);
        assert!(store.get(&hash(docs[1])).is_none(), "`b` was the least recently used");
        assert!(store.get(&hash(docs[0])).is_some() && store.get(&hash(docs[2])).is_some());
        store.insert(hash(docs[2]), docs[2]);
        assert_eq!(store.len(), 2, "a second registration replaces the first");
        assert!(store.lock().bytes <= 2 * per);
        store.insert("x".repeat(64), &"{ x }".repeat(100));
        assert_eq!(store.len(), 2, "a document larger than the store is not kept");
    }
}
