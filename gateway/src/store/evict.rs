//! Size-bounded eviction (LRU) and garbage collection of unreferenced blobs.
//!
//! Both remove a blob from the index first, flush the index, and only then
//! delete the file, so that after a crash no entry points at a deleted file
//! (a leftover file is an orphan that fsck removes).
//!
//! A commit racing with a deletion keeps its file: a file is kept when the
//! blob is back in the index by the time it would be deleted, or when a
//! commit claimed its digest since the deletion began (its index insert
//! may still be coming); the claim and the check-then-unlink hold the same
//! lock ([`BlobStore::remove_unless_claimed`]). The price: a blob evicted
//! while a commit of the same content was in flight may stay on disk as an
//! orphan until the next orphan reclaim.

use super::{BlobStore, Digest, MetaStore, Store, StoreError};
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// Candidates fetched per LRU scan.
const BATCH: usize = 256;

/// What [`evict_to`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EvictReport {
    /// Blobs removed (including unreferenced ones collected first).
    pub blobs: u64,
    /// Entries removed with them.
    pub entries: u64,
    /// Negative entries (cached upstream 404s) removed.
    pub negatives: u64,
    /// Bytes the removed blobs took (by the index's sizes).
    pub bytes: u64,
    /// Blobs kept because a hosted entry references them.
    pub skipped_hosted: u64,
    /// [`BlobIndex::total_size`](super::BlobIndex::total_size) afterwards.
    pub size_after: u64,
    /// Whether the size is now at most the limit (false when only blobs
    /// of hosted entries are left above it).
    pub target_reached: bool,
}

/// What [`gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Unreferenced blobs taken out of the index.
    pub blobs: u64,
    /// Bytes of the blob files deleted.
    pub bytes: u64,
}

/// Delete `digest`'s file unless the blob is back in the index or a
/// commit claimed it since `since` (a racing commit); returns the file's
/// size when it was deleted.
fn delete_file(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    digest: &Digest,
    since: Instant,
) -> Result<Option<u64>, StoreError> {
    let indexed = |d: &Digest| !matches!(meta.blob_meta(d), Ok(None));
    if indexed(digest) {
        return Ok(None);
    }
    let size = match blobs.open(digest) {
        Ok(Some(b)) => b.len(),
        _ => 0,
    };
    match blobs.remove_unless_claimed(digest, since, &indexed) {
        Ok(true) => Ok(Some(size)),
        Ok(false) => Ok(None),
        Err(e) => Err(StoreError::io("delete blob", digest, e)),
    }
}

/// Take the blobs no entry references out of the index
/// ([`BlobIndex::unreferenced_blobs`](super::BlobIndex::unreferenced_blobs)) and delete their files.
pub fn gc(store: &Store) -> Result<GcReport, StoreError> {
    gc_with(&*store.meta, &*store.blobs)
}

/// [`gc`] on the two stores separately (for fsck).
pub(super) fn gc_with(meta: &dyn MetaStore, blobs: &dyn BlobStore) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let since = Instant::now();
    let digests = meta.unreferenced_blobs()?;
    if digests.is_empty() {
        return Ok(report);
    }
    meta.flush()?;
    report.blobs = digests.len() as u64;
    for d in &digests {
        if let Some(size) = delete_file(meta, blobs, d, since)? {
            report.bytes += size;
        }
    }
    Ok(report)
}

/// Delete orphan blob files: files no index record knows (a crash between
/// a commit's rename and its index insert leaves one). Blobs this process
/// committed within `grace` are spared (see [`BlobStore::reclaim_orphans`]);
/// a record that cannot be read counts as known.
pub fn reclaim_orphans(store: &Store, grace: std::time::Duration) -> Result<GcReport, StoreError> {
    let meta = &*store.meta;
    store
        .blobs
        .reclaim_orphans(grace, &|d| !matches!(meta.blob_meta(d), Ok(None)))
        .map_err(|e| StoreError::io("reclaim orphan blobs in", "blobs/", e))
}

/// Remove least-recently-used blobs (with their entries) until
/// [`BlobIndex::total_size`](super::BlobIndex::total_size) is at most `max_size`. Unreferenced blobs are
/// collected first ([`gc`]), then negative entries (cached 404s: the
/// cheapest to fetch again, and what a client asking for many missing
/// paths piles up), earliest expiry first. Blobs referenced by a hosted
/// entry are never evicted (checked atomically by
/// [`BlobIndex::evict_blob_unless_hosted`](super::BlobIndex::evict_blob_unless_hosted)).
///
/// Each round is a full scan of the blob records ([`BlobIndex::lru_blobs`](super::BlobIndex::lru_blobs))
/// for the next 256 candidates, so evicting `n` blobs out of `N` costs
/// about `N * n / 256` record reads, plus one index flush per round.
pub fn evict_to(store: &Store, max_size: u64) -> Result<EvictReport, StoreError> {
    let meta = &*store.meta;
    let mut report = EvictReport::default();
    if meta.total_size() > max_size {
        let g = gc(store)?;
        report.blobs += g.blobs;
        report.bytes += g.bytes;
    }
    while meta.total_size() > max_size {
        let removed = meta.remove_negatives(u64::MAX, BATCH)?.len() as u64;
        if removed == 0 {
            break;
        }
        report.negatives += removed;
    }
    let mut pinned: HashSet<Digest> = HashSet::new();
    let since = Instant::now();
    while meta.total_size() > max_size {
        let want = pinned.len().saturating_add(BATCH);
        let candidates = meta.lru_blobs(want)?;
        let exhausted = candidates.len() < want;
        let mut evicted = Vec::new();
        for (digest, blob) in candidates {
            if meta.total_size() <= max_size {
                break;
            }
            if pinned.contains(&digest) {
                continue;
            }
            match meta.evict_blob_unless_hosted(&digest)? {
                None => {
                    pinned.insert(digest);
                    report.skipped_hosted += 1;
                }
                Some(ids) => {
                    report.blobs += 1;
                    report.entries += ids.len() as u64;
                    report.bytes += blob.size;
                    evicted.push(digest);
                }
            }
        }
        if !evicted.is_empty() {
            meta.flush()?;
            for d in &evicted {
                delete_file(meta, &*store.blobs, d, since)?;
            }
        } else if exhausted {
            break;
        }
    }
    report.size_after = meta.total_size();
    report.target_reached = report.size_after <= max_size;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, EntryClass, FsBlobStore, SledMetaStore};
    use std::sync::Arc;

    fn setup(dir: &std::path::Path) -> (Store, Arc<SledMetaStore>) {
        let meta = Arc::new(SledMetaStore::open(&dir.join("index")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(dir).unwrap());
        (
            Store {
                meta: meta.clone(),
                blobs,
                hot: Arc::new(crate::store::HotBlobs::new(0, 0)),
                shared: None,
            },
            meta,
        )
    }

    fn add(store: &Store, remote: &str, key: &str, data: &[u8], class: EntryClass) -> Digest {
        let mut s = store.blobs.create_spool().unwrap();
        s.write(data).unwrap();
        let r = store.blobs.commit(s, None).unwrap();
        store
            .meta
            .put_entry(remote, key, &Entry::test(r.digest, r.size, class), false)
            .unwrap();
        store.blobs.settle(&r.digest);
        r.digest
    }

    #[test]
    fn evicts_oldest_first_and_spares_hosted() {
        let dir = tempfile::tempdir().unwrap();
        let (store, sled) = setup(dir.path());
        // Five 10-byte blobs; the oldest is hosted.
        let hosted = add(&store, "h", "up", b"hosted-000", EntryClass::Hosted);
        let d: Vec<Digest> = (1..5)
            .map(|i| {
                add(
                    &store,
                    "r",
                    &format!("k{i}"),
                    format!("cached-00{i}").as_bytes(),
                    EntryClass::Immutable,
                )
            })
            .collect();
        // A second entry on d[0], in another remote.
        store
            .meta
            .put_entry(
                "s",
                "same",
                &Entry::test(d[0], 10, EntryClass::Mutable),
                false,
            )
            .unwrap();
        assert_eq!(store.meta.total_size(), 50);
        let base = crate::store::now_ms() + 60_000;
        sled.touch_at(&hosted, base);
        // Access order, oldest first: d[2], d[0], d[3], d[1].
        for (t, i) in [2usize, 0, 3, 1].iter().enumerate() {
            sled.touch_at(&d[*i], base + 1 + t as u64);
        }

        let r = evict_to(&store, 25).unwrap();
        assert_eq!(r.blobs, 3, "{r:?}");
        assert_eq!(r.entries, 4, "{r:?}");
        assert_eq!(r.bytes, 30);
        assert_eq!(r.skipped_hosted, 1);
        assert_eq!(r.size_after, 20);
        assert!(r.target_reached);
        for i in [2, 0, 3] {
            assert!(!store.blobs.contains(&d[i]).unwrap());
            assert!(store.meta.blob_meta(&d[i]).unwrap().is_none());
        }
        assert!(store.meta.get_entry("s", "same").unwrap().is_none());
        assert!(store.blobs.contains(&d[1]).unwrap());
        assert!(store.blobs.contains(&hosted).unwrap());
        assert!(store.meta.get_entry("h", "up").unwrap().is_some());

        // Below the hosted blob's size the target cannot be reached.
        let r = evict_to(&store, 5).unwrap();
        assert_eq!(r.blobs, 1);
        assert!(!r.target_reached);
        assert_eq!(r.size_after, 10);
        assert!(store.blobs.contains(&hosted).unwrap());

        // Nothing to do.
        let r = evict_to(&store, 100).unwrap();
        assert_eq!(
            r,
            EvictReport {
                size_after: 10,
                target_reached: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn gc_deletes_unreferenced_files() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = setup(dir.path());
        let a = add(&store, "r", "a", b"aaaa", EntryClass::Immutable);
        let b = add(&store, "r", "b", b"bbbbbb", EntryClass::Immutable);
        store
            .meta
            .put_entry("r", "b2", &Entry::test(b, 6, EntryClass::Immutable), false)
            .unwrap();
        assert_eq!(gc(&store).unwrap(), GcReport::default());
        store.meta.remove_entry("r", "a", false).unwrap();
        store.meta.remove_entry("r", "b", false).unwrap();
        let r = gc(&store).unwrap();
        assert_eq!(r, GcReport { blobs: 1, bytes: 4 });
        assert!(!store.blobs.contains(&a).unwrap());
        assert!(store.blobs.contains(&b).unwrap());
        assert_eq!(store.meta.total_size(), 6);
    }

    /// Cached 404s count toward `max_size` and are evicted before any
    /// blob: a client asking for thousands of missing paths cannot grow
    /// the index for good, nor push real content out.
    #[test]
    fn negative_entries_are_evicted_first() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = setup(dir.path());
        let d = add(&store, "r", "real", &[7u8; 1000], EntryClass::Immutable);
        let far = crate::store::now_ms() + 3_600_000;
        for i in 0..1000 {
            let e = Entry {
                status: 404,
                expires_at_ms: Some(far + i),
                ..Entry::test(Digest::EMPTY, 0, EntryClass::NotFound)
            };
            store
                .meta
                .put_entry("r", &format!("missing/{i:04}"), &e, false)
                .unwrap();
        }
        let before = store.meta.total_size();
        assert!(
            before > 300_000,
            "1000 negative entries count {before} bytes"
        );
        let r = evict_to(&store, before / 2).unwrap();
        assert!(r.target_reached, "{r:?}");
        assert_eq!(r.blobs, 0, "{r:?}");
        assert!((500..1000).contains(&r.negatives), "{r:?}");
        assert!(store.blobs.contains(&d).unwrap());
        assert!(store.meta.get_entry("r", "real").unwrap().is_some());
        // Earliest expiry first.
        assert!(store.meta.get_entry("r", "missing/0000").unwrap().is_none());
        assert!(store.meta.get_entry("r", "missing/0999").unwrap().is_some());
        // Below the blob's size, the blob goes too.
        let r = evict_to(&store, 500).unwrap();
        assert_eq!(r.blobs, 1, "{r:?}");
        assert_eq!(store.meta.total_size(), 0);
    }

    /// A commit of an evicted blob's content that claimed the digest
    /// before its index insert keeps the file: the deletion that follows
    /// the eviction's index flush leaves it alone, so the insert does not
    /// end up pointing at a deleted file.
    #[test]
    fn a_commit_racing_an_eviction_keeps_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = setup(dir.path());
        let d = add(&store, "r", "k", b"contended", EntryClass::Immutable);
        let since = Instant::now();
        store.meta.evict_blob(&d).unwrap();
        // A fill of the same content commits (finds the file in place)
        // and has not inserted its entry yet.
        let mut s = store.blobs.create_spool().unwrap();
        s.write(b"contended").unwrap();
        assert_eq!(store.blobs.commit(s, None).unwrap().digest, d);
        assert_eq!(
            delete_file(&*store.meta, &*store.blobs, &d, since).unwrap(),
            None
        );
        assert!(store.blobs.contains(&d).unwrap());
        // Settled (its insert failed, say), without a claim since then, the
        // file goes.
        store.blobs.settle(&d);
        assert_eq!(
            delete_file(&*store.meta, &*store.blobs, &d, Instant::now()).unwrap(),
            Some(9)
        );
        assert!(!store.blobs.contains(&d).unwrap());
    }

    /// A commit that claimed a digest before a collection began and
    /// inserts its entry after the collection took the blob's record keeps
    /// its file: until the insert settles, the claim protects it (the
    /// interleaving behind a rare crash-test failure: a fill's insert
    /// after the garbage collection of `PUT /cache/flush`).
    #[test]
    fn a_commit_claimed_before_a_collection_keeps_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = setup(dir.path());
        let d = add(&store, "r", "k", b"contended", EntryClass::Immutable);
        // The entry goes: the blob is recorded, unreferenced.
        store.meta.remove_entry("r", "k", false).unwrap();
        // A fill of the same content commits (finds the file in place)...
        let mut s = store.blobs.create_spool().unwrap();
        s.write(b"contended").unwrap();
        assert_eq!(store.blobs.commit(s, None).unwrap().digest, d);
        // ...a collection begins after its claim and takes the record...
        std::thread::sleep(std::time::Duration::from_millis(5));
        let r = gc(&store).unwrap();
        assert_eq!(
            (r.blobs, r.bytes),
            (1, 0),
            "the record goes, the file stays: {r:?}"
        );
        // ...and then the fill's insert lands.
        store
            .meta
            .put_entry("r", "k", &Entry::test(d, 9, EntryClass::Immutable), false)
            .unwrap();
        store.blobs.settle(&d);
        assert!(
            store.blobs.contains(&d).unwrap(),
            "the entry's file is there"
        );
    }
}
