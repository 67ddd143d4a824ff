//! Hot tarballs in memory, bounded by bytes (`BLOB_CACHE_BYTES`). A version's bytes never change
//! once published, so an entry is keyed by its recorded sha256 and needs no invalidation. Only
//! verified bytes enter: the blob is read whole, its size and sha256 checked against the version
//! row once, and from then on it is served without touching storage or hashing again. A blob that
//! fails the check never enters, and the download is refused.
//!
//! Eviction is CLOCK (second chance): a hit only sets a flag under the read lock, so concurrent
//! downloads of hot blobs do not serialise on a writer lock.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use bytes::Bytes;

struct Entry {
    bytes: Bytes,
    referenced: AtomicBool,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Keys in insertion order; the clock hand is the front.
    order: VecDeque<String>,
    used: u64,
}

pub struct BlobCache {
    max_bytes: u64,
    inner: RwLock<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlobCache {
    pub fn new(max_bytes: u64) -> BlobCache {
        BlobCache { max_bytes, inner: RwLock::default(), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// Whether a blob of `size` bytes may enter: a quarter of the cache at most, so one large blob
    /// cannot flush every hot small one.
    pub fn admits(&self, size: u64) -> bool {
        size > 0 && size <= self.max_bytes / 4
    }

    /// The verified bytes of the blob with this sha256, if held.
    pub fn get(&self, sha256: &str) -> Option<Bytes> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match inner.entries.get(sha256) {
            Some(e) => {
                e.referenced.store(true, Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_lookup("blobs", true);
                Some(e.bytes.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_lookup("blobs", false);
                None
            }
        }
    }

    /// Keeps `bytes`, which the caller has checked against `sha256`, evicting what the clock
    /// finds unreferenced until it fits.
    pub fn insert(&self, sha256: &str, bytes: Bytes) {
        let size = bytes.len() as u64;
        if !self.admits(size) {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.entries.contains_key(sha256) {
            return;
        }
        // Each entry gets at most one second chance, so this ends within two passes.
        let mut budget = inner.order.len() * 2 + 1;
        while inner.used + size > self.max_bytes && budget > 0 {
            budget -= 1;
            let Some(key) = inner.order.pop_front() else { break };
            let second_chance = inner.entries.get(&key).is_some_and(|e| e.referenced.swap(false, Ordering::Relaxed));
            if second_chance {
                inner.order.push_back(key);
            } else if let Some(e) = inner.entries.remove(&key) {
                inner.used -= e.bytes.len() as u64;
            }
        }
        if inner.used + size > self.max_bytes {
            return;
        }
        inner.used += size;
        inner.order.push_back(sha256.to_owned());
        inner.entries.insert(sha256.to_owned(), Entry { bytes, referenced: AtomicBool::new(false) });
    }

    /// Bytes held now (never more than the configured bound).
    pub fn used_bytes(&self) -> u64 {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).used
    }

    /// Blobs held now.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) since start.
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    #[test]
    fn holds_at_most_its_bound_and_refuses_blobs_over_a_quarter_of_it() {
        let c = BlobCache::new(1000);
        assert!(!c.admits(251) && c.admits(250) && !c.admits(0));
        c.insert("big", blob(251, 1));
        assert!(c.get("big").is_none(), "over a quarter never enters");
        for i in 0..20 {
            c.insert(&format!("b{i}"), blob(200, i as u8));
            assert!(c.used_bytes() <= 1000, "bound kept after {i}: {}", c.used_bytes());
        }
        assert_eq!(c.len(), 5);
        assert_eq!(c.get("b19").unwrap(), blob(200, 19), "the newest is held, byte for byte");
        assert!(c.get("b0").is_none(), "the oldest went");
    }

    #[test]
    fn a_blob_read_since_the_last_pass_survives_the_next_eviction() {
        let c = BlobCache::new(1000);
        for i in 0..5 {
            c.insert(&format!("b{i}"), blob(200, i as u8));
        }
        assert!(c.get("b0").is_some(), "b0 is hot");
        c.insert("new", blob(200, 9));
        assert!(c.get("b0").is_some(), "the hot blob got its second chance");
        assert!(c.get("b1").is_none(), "the coldest one went instead");
        assert!(c.get("new").is_some());
        assert_eq!(c.lookups().0, 3);
    }

    #[test]
    fn a_cache_of_zero_bytes_holds_nothing() {
        let c = BlobCache::new(0);
        c.insert("a", blob(1, 1));
        assert!(c.is_empty() && c.get("a").is_none());
    }
}
