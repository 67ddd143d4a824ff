//! The caches of one server instance, each valid for one catalog generation (see
//! `service::generation`): a newer generation empties a cache, so no entry outlives a write made
//! through any instance. This module holds only the containers and their keys; the services that
//! fill them (search, stats, the read model) decide what goes in. It imports nothing above it, so
//! `AppState` can be assembled from these parts without the parts knowing of it.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::NaiveDate;
use uuid::Uuid;

use entity::{packages, versions};

use crate::service::keywords::KeywordPage;
use crate::service::read::batch::OwnerRow;
use crate::service::resolve::load::LoadedPackage;
use crate::service::search::{PackageSort, Page};
use crate::service::stats::Totals;

/// The caches, sized from the configuration (0 turns one off).
pub struct Caches {
    /// Search and browse pages.
    pub pages: PageCache,
    /// Serialized REST package and version metadata and REST search pages.
    pub bodies: BodyCache,
    /// Package relations (versions, owners) and packages by name, for GraphQL.
    pub relations: RelationCache,
    /// Registry totals.
    pub stats: StatsCache,
    /// Pages of the keyword list.
    pub keywords: KeywordCache,
    /// Every version of a package with its normal dependencies, by name, as dependency
    /// resolution reads them.
    pub resolve: ResolveCache,
    /// What a download needs of a version row (see [`DownloadTarget`]).
    pub targets: TargetCache,
}

impl Caches {
    pub fn new(page_entries: usize, metadata_entries: usize) -> Caches {
        Caches {
            pages: PageCache::new(page_entries),
            bodies: BodyCache::new(metadata_entries),
            relations: RelationCache::new(metadata_entries),
            stats: StatsCache::new(metadata_entries.min(1)),
            keywords: KeywordCache::new(page_entries),
            resolve: ResolveCache::new(metadata_entries),
            targets: TargetCache::new(metadata_entries),
        }
    }
}

/// What a page of results depends on besides the catalog: the day matters to the 90-day sort.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    /// Trimmed, lowercased search text; `None` when browsing.
    pub query: Option<String>,
    /// The normalised keyword filter, if any.
    pub keyword: Option<String>,
    pub sort: PackageSort,
    pub offset: u64,
    pub limit: u64,
    pub day: NaiveDate,
}

/// Pages of search and browse results.
pub type PageCache = GenerationCache<PageKey, Page>;

/// A page of the keyword list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeywordKey {
    /// The normalised prefix filter, if any.
    pub prefix: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// Pages of the keyword list.
pub type KeywordCache = GenerationCache<KeywordKey, KeywordPage>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BodyKey {
    /// The last-month download count depends on the day.
    Package {
        name: String,
        day: NaiveDate,
    },
    Version {
        name: String,
        version: String,
    },
    /// A REST search page: the search text trimmed and lowercased.
    Search {
        q: String,
        limit: u64,
        offset: u64,
    },
}

/// Serialized JSON bodies.
pub type BodyCache = GenerationCache<BodyKey, Bytes>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RelKey {
    Versions(Uuid),
    /// The latest version alone (what a results page shows), cached as a list of at most one.
    Latest(Uuid),
    Owners(Uuid),
    PackageByName(String),
}

#[derive(Clone)]
pub enum RelValue {
    /// `Versions` and `Latest` (at most one row).
    Versions(Arc<Vec<versions::Model>>),
    Owners(Arc<Vec<OwnerRow>>),
    /// Boxed: the row is several times the size of the other variants.
    Package(Box<packages::Model>),
}

pub type RelationCache = GenerationCache<RelKey, RelValue>;

pub type ResolveCache = GenerationCache<String, Arc<LoadedPackage>>;

/// What a download needs of a version: its package's name, its number as published, and the
/// recorded size and sha256 of its tarball. All four are fixed when the version is published
/// (versions are yanked, never deleted or changed; the download's own `immutable` Cache-Control
/// tells every client as much), so these entries need no generation: they live in generation
/// [`TargetCache::IMMUTABLE`] for the life of the process, bounded by the entry count like every
/// cache here.
#[derive(Debug)]
pub struct DownloadTarget {
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub size: u64,
}

/// Download targets by package name and canonical version.
pub type TargetCache = GenerationCache<(String, String), Arc<DownloadTarget>>;

impl TargetCache {
    /// The one generation download targets are kept under.
    pub const IMMUTABLE: i64 = 0;
}

/// The four totals of one catalog generation (registering raises it too, for the user count).
pub type StatsCache = GenerationCache<(), Totals>;

/// A bounded map whose entries are all of one generation: a newer generation empties it, and an
/// answer computed at an older one is not kept.
pub struct GenerationCache<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    generation: i64,
    entries: HashMap<K, V>,
}

impl<K: Hash + Eq + Clone, V: Clone> GenerationCache<K, V> {
    /// `capacity` 0 turns the cache off.
    pub fn new(capacity: usize) -> Self {
        GenerationCache { capacity, inner: Mutex::new(Inner { generation: i64::MIN, entries: HashMap::new() }) }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, generation: i64, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != generation {
            return None;
        }
        inner.entries.get(key).cloned()
    }

    pub fn put(&self, generation: i64, key: K, value: V) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation {
            inner.generation = generation;
            inner.entries.clear();
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            // Full: drop one arbitrary entry (the first the table yields, found without walking
            // it: `retain` visited every entry, on every insert into a full cache). Hot keys come
            // straight back, and the read path keeps no LRU bookkeeping.
            if let Some(victim) = inner.entries.keys().next().cloned() {
                inner.entries.remove(&victim);
            }
        }
        inner.entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::GenerationCache;

    #[test]
    fn entries_live_for_one_generation_and_the_size_is_bounded() {
        let cache = GenerationCache::new(2);
        cache.put(5, "a", 1);
        assert_eq!(cache.get(5, &"a"), Some(1));
        assert_eq!(cache.get(6, &"a"), None, "a newer generation never sees older entries");
        // An answer computed at an older generation than the cache holds is not kept.
        cache.put(6, "b", 2);
        cache.put(5, "c", 3);
        assert_eq!(cache.get(6, &"c"), None);
        assert_eq!(cache.get(5, &"a"), None, "moving to generation 6 emptied the cache");
        cache.put(6, "c", 3);
        cache.put(6, "d", 4);
        let kept = ["b", "c", "d"].iter().filter(|k| cache.get(6, k).is_some()).count();
        assert_eq!(kept, 2, "at most `capacity` entries");
        assert_eq!(cache.get(6, &"d"), Some(4), "the newest entry is kept");
        let off = GenerationCache::new(0);
        off.put(1, "a", 1);
        assert_eq!(off.get(1, &"a"), None);
    }
}
