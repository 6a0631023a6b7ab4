//! In-memory layers in front of the store, so that a hit on a hot key
//! touches neither sled nor the file system:
//!
//! - [`CachedMetaStore`] wraps any [`MetaStore`] and keeps recently read
//!   index entries in a bounded map. Every method that changes an entry
//!   goes through the wrapper and drops the cached copy, and a read that
//!   raced with a change does not put its (possibly older) copy back (a
//!   generation counter taken before the read is compared under the same
//!   lock the writers hold), so a cached entry is never older than the
//!   index.
//! - [`HotBlobs`] keeps the bytes of small blobs by digest, bounded by
//!   total size. Blobs are content-addressed and immutable, so a cached
//!   copy can never be stale; it can only outlive the blob's index
//!   entries, and those are looked up first.

use super::{
    BlobIndex, BlobMeta, Digest, Entry, EntryId, EntryIndex, IndexCheck, IndexRepair, MetaStore,
    PluginKv, PutCheck, PutOutcome, StoreError,
};
use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Id of an entry in the cache: its [`EntryId`]'s written form.
fn entry_id(remote: &str, key: &str) -> String {
    EntryId::new(remote, key).into_string()
}

/// A [`MetaStore`] with a bounded in-memory cache of entries in front.
pub struct CachedMetaStore {
    inner: Arc<dyn MetaStore>,
    entries: Cache<String, Arc<Entry>>,
    /// Bumped (under the write lock) by every change to an entry.
    generation: AtomicU64,
    /// Writers hold it to drop a copy and bump the generation; readers to
    /// compare the generation and insert.
    lock: RwLock<()>,
    /// Tests: runs once between a read of the inner store and its insert.
    #[cfg(test)]
    after_read: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl CachedMetaStore {
    /// Cache up to `capacity` entries of `inner`.
    pub fn new(inner: Arc<dyn MetaStore>, capacity: usize) -> CachedMetaStore {
        CachedMetaStore {
            inner,
            entries: Cache::new(capacity.max(1)),
            generation: AtomicU64::new(0),
            lock: RwLock::new(()),
            #[cfg(test)]
            after_read: std::sync::Mutex::new(None),
        }
    }

    /// Run a change to the index, then forget the cached copies of
    /// `ids` (`None`: of every entry).
    fn changing<T>(&self, ids: Option<&[String]>, f: impl FnOnce() -> T) -> T {
        let out = f();
        self.forget(ids);
        out
    }

    fn forget(&self, ids: Option<&[String]>) {
        let _g = self.lock.write().unwrap_or_else(|p| p.into_inner());
        match ids {
            Some(ids) => {
                for id in ids {
                    self.entries.remove(id);
                }
            }
            None => self.entries.clear(),
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl MetaStore for CachedMetaStore {
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

impl EntryIndex for CachedMetaStore {
    fn get_entry(&self, remote: &str, key: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self.get_shared(remote, key)?.map(|e| (*e).clone()))
    }

    fn cached_entry(&self, id: &EntryId) -> Option<Arc<Entry>> {
        self.entries.get(id.as_str())
    }

    fn get_shared(&self, remote: &str, key: &str) -> Result<Option<Arc<Entry>>, StoreError> {
        let id = entry_id(remote, key);
        if let Some(e) = self.entries.get(&id) {
            return Ok(Some(e));
        }
        let before = self.generation.load(Ordering::Acquire);
        let Some(entry) = self.inner.get_entry(remote, key)? else {
            return Ok(None);
        };
        let entry = Arc::new(entry);
        #[cfg(test)]
        if let Some(hook) = self.after_read.lock().unwrap().take() {
            hook();
        }
        let _g = self.lock.read().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) == before {
            self.entries.insert(id, entry.clone());
        }
        Ok(Some(entry))
    }

    fn put_entry(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        self.changing(Some(&[entry_id(remote, key)]), || {
            self.inner.put_entry(remote, key, entry, durable)
        })
    }

    fn put_entry_checked(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        check: PutCheck,
        durable: bool,
    ) -> Result<PutOutcome, StoreError> {
        self.changing(Some(&[entry_id(remote, key)]), || {
            self.inner
                .put_entry_checked(remote, key, entry, check, durable)
        })
    }

    fn remote_size(&self, remote: &str) -> Result<u64, StoreError> {
        self.inner.remote_size(remote)
    }

    fn update_entry(
        &self,
        remote: &str,
        key: &str,
        f: &dyn Fn(&mut Entry),
    ) -> Result<Option<Entry>, StoreError> {
        self.changing(Some(&[entry_id(remote, key)]), || {
            self.inner.update_entry(remote, key, f)
        })
    }

    fn remove_entry(
        &self,
        remote: &str,
        key: &str,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        self.changing(Some(&[entry_id(remote, key)]), || {
            self.inner.remove_entry(remote, key, durable)
        })
    }

    fn remove_all(&self, remote: Option<&str>) -> Result<u64, StoreError> {
        self.changing(None, || self.inner.remove_all(remote))
    }

    fn list_entries(
        &self,
        remote: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StoreError> {
        self.inner.list_entries(remote, prefix, after, limit)
    }

    fn count_entries(&self, remote: &str, prefix: &str, limit: u64) -> Result<u64, StoreError> {
        self.inner.count_entries(remote, prefix, limit)
    }

    fn all_entries(&self) -> Result<Vec<(String, String, Entry)>, StoreError> {
        self.inner.all_entries()
    }

    fn remove_negatives(&self, until_ms: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let ids = self.inner.remove_negatives(until_ms, limit);
        match &ids {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => self.forget(Some(ids)),
            Err(_) => self.forget(None),
        }
        ids
    }
}

impl BlobIndex for CachedMetaStore {
    fn blob_meta(&self, digest: &Digest) -> Result<Option<BlobMeta>, StoreError> {
        self.inner.blob_meta(digest)
    }

    fn touch(&self, digest: &Digest) {
        self.inner.touch(digest)
    }

    fn persist_access(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        self.inner.persist_access()
    }

    fn total_size(&self) -> u64 {
        self.inner.total_size()
    }

    fn lru_blobs(&self, limit: usize) -> Result<Vec<(Digest, BlobMeta)>, StoreError> {
        self.inner.lru_blobs(limit)
    }

    fn evict_blob(&self, digest: &Digest) -> Result<Vec<String>, StoreError> {
        let ids = self.inner.evict_blob(digest);
        // The ids are `remote\0key`, the cache's own ids.
        match &ids {
            Ok(ids) => self.forget(Some(ids)),
            Err(_) => self.forget(None),
        }
        ids
    }

    fn evict_blob_unless_hosted(&self, digest: &Digest) -> Result<Option<Vec<String>>, StoreError> {
        let ids = self.inner.evict_blob_unless_hosted(digest);
        match &ids {
            Ok(Some(ids)) => self.forget(Some(ids)),
            Ok(None) => {}
            Err(_) => self.forget(None),
        }
        ids
    }

    fn unreferenced_blobs(&self) -> Result<Vec<Digest>, StoreError> {
        self.inner.unreferenced_blobs()
    }

    fn unreferenced_pending(&self) -> usize {
        self.inner.unreferenced_pending()
    }
}

impl PluginKv for CachedMetaStore {
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.kv_get(plugin, key)
    }

    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.inner.kv_set(plugin, key, value, ttl_secs)
    }

    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        self.inner.kv_delete(plugin, key)
    }

    fn kv_compare_and_set(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<bool, StoreError> {
        self.inner
            .kv_compare_and_set(plugin, key, expected, value, ttl_secs)
    }
}

impl IndexRepair for CachedMetaStore {
    fn check_index(&self, repair: bool) -> Result<IndexCheck, StoreError> {
        self.changing(None, || self.inner.check_index(repair))
    }
}

/// Weighs a cached blob by its length (at least 1, so empty blobs count).
#[derive(Clone)]
struct ByLength;

impl Weighter<Digest, Bytes> for ByLength {
    fn weight(&self, _key: &Digest, val: &Bytes) -> u64 {
        (val.len() as u64).max(1)
    }
}

/// Bytes of small blobs, by digest, bounded by total size.
pub struct HotBlobs {
    cache: Option<Cache<Digest, Bytes, ByLength>>,
    max_object: u64,
}

impl HotBlobs {
    /// Keep blobs of at most `max_object` bytes, `capacity` bytes in all;
    /// a capacity of 0 keeps nothing.
    pub fn new(capacity: u64, max_object: u64) -> HotBlobs {
        let cache = (capacity > 0 && max_object > 0).then(|| {
            // quick_cache wants an estimate of the item count.
            let items = (capacity / max_object.clamp(1, 64 * 1024)).max(16) as usize;
            Cache::with_weighter(items, capacity, ByLength)
        });
        HotBlobs { cache, max_object }
    }

    /// Whether a blob of `size` bytes is small enough to keep.
    pub fn wants(&self, size: u64) -> bool {
        self.cache.is_some() && size <= self.max_object
    }

    /// The cached bytes of `digest`.
    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.cache.as_ref()?.get(digest)
    }

    /// Keep the bytes of `digest` (verified content read from the store).
    pub fn insert(&self, digest: Digest, bytes: Bytes) {
        if let Some(c) = &self.cache
            && bytes.len() as u64 <= self.max_object
        {
            c.insert(digest, bytes);
        }
    }

    /// Bytes held now.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::{EntryClass, SledMetaStore};

    fn entry(size: u64) -> Entry {
        Entry::test(Digest::of(&size.to_le_bytes()), size, EntryClass::Immutable)
    }

    fn store() -> (tempfile::TempDir, CachedMetaStore) {
        let dir = tempfile::tempdir().unwrap();
        let inner = SledMetaStore::open(&dir.path().join("index")).unwrap();
        (dir, CachedMetaStore::new(Arc::new(inner), 1000))
    }

    #[test]
    fn reads_are_cached_and_every_change_drops_the_copy() {
        let (_d, m) = store();
        assert!(m.cached_entry(&EntryId::new("r", "k")).is_none());
        m.put_entry("r", "k", &entry(1), false).unwrap();
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 1);
        assert_eq!(m.cached_entry(&EntryId::new("r", "k")).unwrap().size, 1);

        m.put_entry("r", "k", &entry(2), false).unwrap();
        assert!(m.cached_entry(&EntryId::new("r", "k")).is_none());
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 2);

        m.update_entry("r", "k", &|e| e.ttl_ms = Some(5)).unwrap();
        assert!(m.cached_entry(&EntryId::new("r", "k")).is_none());
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().ttl_ms, Some(5));

        let blob = m.get_entry("r", "k").unwrap().unwrap().blob;
        m.evict_blob(&blob).unwrap();
        assert!(m.cached_entry(&EntryId::new("r", "k")).is_none());
        assert!(m.get_entry("r", "k").unwrap().is_none());

        m.put_entry("r", "k", &entry(3), false).unwrap();
        m.get_entry("r", "k").unwrap();
        m.remove_all(Some("r")).unwrap();
        assert!(m.cached_entry(&EntryId::new("r", "k")).is_none());

        m.put_entry("r", "k", &entry(4), false).unwrap();
        m.get_entry("r", "k").unwrap();
        m.remove_entry("r", "k", false).unwrap();
        assert!(m.get_entry("r", "k").unwrap().is_none());

        // A checked put drops the copy when it stores, and a refused one
        // leaves the cached entry what the index holds.
        m.put_entry("r", "k", &entry(5), false).unwrap();
        m.get_entry("r", "k").unwrap();
        let once = crate::store::PutCheck {
            if_absent: true,
            quota: None,
        };
        let refused = m.put_entry_checked("r", "k", &entry(6), once, false);
        assert_eq!(refused.unwrap(), PutOutcome::Exists);
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 5);
        let replace = crate::store::PutCheck::default();
        m.put_entry_checked("r", "k", &entry(7), replace, false)
            .unwrap();
        assert!(m.cached_entry(&EntryId::new("r", "k")).is_none());
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 7);
        assert_eq!(m.remote_size("r").unwrap(), 7);
    }

    #[test]
    fn a_read_racing_a_write_never_caches_the_older_copy() {
        let (_d, m) = store();
        let m = Arc::new(m);
        m.put_entry("r", "k", &entry(1), false).unwrap();
        // A write lands between the read of the index and the insert.
        let writer = Arc::downgrade(&m);
        *m.after_read.lock().unwrap() = Some(Box::new(move || {
            let m = writer.upgrade().unwrap();
            m.put_entry("r", "k", &entry(2), false).unwrap();
        }));
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 1);
        assert!(
            m.cached_entry(&EntryId::new("r", "k")).is_none(),
            "the older copy was cached"
        );
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 2);
    }

    #[test]
    fn hot_blobs_keep_small_blobs_within_capacity() {
        let hot = HotBlobs::new(10_000, 1_000);
        assert!(hot.wants(1_000));
        assert!(!hot.wants(1_001));
        for i in 0..100u64 {
            let b = Bytes::from(vec![i as u8; 900]);
            hot.insert(Digest::of(&b), b);
        }
        assert!(hot.weight() <= 10_000, "{}", hot.weight());
        let big = Bytes::from(vec![1; 2_000]);
        hot.insert(Digest::of(&big), big.clone());
        assert!(hot.get(&Digest::of(&big)).is_none());
        let off = HotBlobs::new(0, 1_000);
        assert!(!off.wants(1));
    }
}
