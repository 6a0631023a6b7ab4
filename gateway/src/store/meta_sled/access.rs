//! Access times and the blobs that leave the index: accesses remembered in
//! memory ([`SledMetaStore::touch_at`]) and written back (`persist_access`);
//! the least-recently-used order that eviction follows; eviction; and the
//! blobs no entry references any more, taken out for garbage collection.

use super::entries::{tx_remove_negative, tx_usage_change};
use super::{
    SledMetaStore, TX_CHUNK, decode_blob, decode_entry, digest_from_key, encode, lock, now_ms,
    tx_err,
};
use crate::store::{BlobIndex, BlobMeta, Digest, EntryClass, StoreError};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use std::collections::{BinaryHeap, HashMap};
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

/// An LRU candidate, ordered by (access time, digest).
struct LruItem {
    at: u64,
    digest: Digest,
    meta: BlobMeta,
}

impl PartialEq for LruItem {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.digest) == (other.at, other.digest)
    }
}
impl Eq for LruItem {}
impl PartialOrd for LruItem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LruItem {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.digest).cmp(&(other.at, other.digest))
    }
}

impl SledMetaStore {
    /// The access times remembered and not yet persisted.
    fn access_map(&self) -> MutexGuard<'_, HashMap<Digest, u64>> {
        lock(&self.access)
    }

    /// Record an access to `digest` at `at_ms` (what
    /// [`BlobIndex::touch`] does with the
    /// current time).
    pub fn touch_at(&self, digest: &Digest, at_ms: u64) {
        let mut map = self.access_map();
        let t = map.entry(*digest).or_insert(at_ms);
        *t = (*t).max(at_ms);
    }

    /// Drop `digest` and its entries from the index in one transaction
    /// ([`BlobIndex::evict_blob`]); with `spare_hosted`, nothing changes
    /// (`None`) when a hosted entry references it
    /// ([`BlobIndex::evict_blob_unless_hosted`]).
    fn evict(
        &self,
        digest: &Digest,
        spare_hosted: bool,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let r = (&self.entries, &self.blobs, &self.usage, &self.negatives)
            .transaction(|(te, tb, tu, tn)| {
                let Some(v) = tb.get(digest.as_bytes())? else {
                    return Ok(Some((Vec::new(), 0)));
                };
                // An undecodable record was never counted and its referrers
                // are unknown; it is dropped (fsck finds dangling entries).
                let (size, referrers) = match decode_blob(digest, &v) {
                    Ok(m) => (m.size, m.referrers),
                    Err(_) => (0, Vec::new()),
                };
                // The victims with the sizes their remotes' counters hold.
                let mut victims = Vec::new();
                let mut negative = 0;
                for id in referrers {
                    let Some(ev) = te.get(id.as_bytes())? else {
                        continue;
                    };
                    match decode_entry(id.as_bytes(), &ev) {
                        // A stale referrer: the entry now holds another blob.
                        Ok(e) if e.blob != *digest => continue,
                        Ok(e) if spare_hosted && e.class == EntryClass::Hosted => return Ok(None),
                        Ok(e) => {
                            negative += tx_remove_negative(tn, id.as_bytes(), &e)?;
                            victims.push((id, e.size));
                        }
                        Err(_) => victims.push((id, 0)),
                    }
                }
                for (id, counted) in &victims {
                    te.remove(id.as_bytes())?;
                    tx_usage_change(tu, id.as_bytes(), 0, *counted)?;
                }
                tb.remove(digest.as_bytes())?;
                let ids: Vec<String> = victims.into_iter().map(|(id, _)| id).collect();
                Ok(Some((ids, size + negative)))
            })
            .map_err(tx_err)?;
        Ok(r.map(|(victims, size)| {
            self.sub_total(size);
            self.access_map().remove(digest);
            lock(&self.unreferenced).remove(digest);
            victims
        }))
    }
}

impl BlobIndex for SledMetaStore {
    /// The blob record of `digest`.
    fn blob_meta(&self, digest: &Digest) -> Result<Option<BlobMeta>, StoreError> {
        match self.blobs.get(digest.as_bytes())? {
            Some(v) => decode_blob(digest, &v).map(Some),
            None => Ok(None),
        }
    }

    fn touch(&self, digest: &Digest) {
        self.touch_at(digest, now_ms());
    }

    /// Write the remembered access times to the blob records; what was not
    /// written is kept for the next attempt.
    fn persist_access(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        let pending: Vec<(Digest, u64)> = std::mem::take(&mut *self.access_map())
            .into_iter()
            .collect();
        for (i, (digest, at)) in pending.iter().enumerate() {
            let r = (|| -> Result<(), StoreError> {
                loop {
                    let Some(old) = self.blobs.get(digest.as_bytes())? else {
                        return Ok(());
                    };
                    let Ok(mut meta) = decode_blob(digest, &old) else {
                        return Ok(());
                    };
                    if meta.last_access_ms >= *at {
                        return Ok(());
                    }
                    meta.last_access_ms = *at;
                    let new = encode(format!("blob {digest}"), &meta)?;
                    if self
                        .blobs
                        .compare_and_swap(digest.as_bytes(), Some(&old), Some(new))?
                        .is_ok()
                    {
                        return Ok(());
                    }
                }
            })();
            if let Err(e) = r {
                // Keep what was not written for the next attempt.
                for (d, t) in &pending[i..] {
                    self.touch_at(d, *t);
                }
                return Err(e);
            }
        }
        Ok(pending)
    }

    fn total_size(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The blobs in least-recently-used order: a
    /// full scan of the blob records (cost linear in the number of blobs,
    /// memory bounded by `limit`).
    fn lru_blobs(&self, limit: usize) -> Result<Vec<(Digest, BlobMeta)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let access = self.access_map().clone();
        let mut heap = BinaryHeap::new();
        for item in self.blobs.iter() {
            let (k, v) = item?;
            let Some(digest) = digest_from_key(&k) else {
                tracing::warn!(key = %hex::encode(&k), "skipping blob record with a malformed key");
                continue;
            };
            let mut meta = match decode_blob(&digest, &v) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping corrupt blob record");
                    continue;
                }
            };
            if let Some(t) = access.get(&digest) {
                meta.last_access_ms = meta.last_access_ms.max(*t);
            }
            heap.push(LruItem {
                at: meta.last_access_ms,
                digest,
                meta,
            });
            if heap.len() > limit {
                heap.pop();
            }
        }
        Ok(heap
            .into_sorted_vec()
            .into_iter()
            .map(|i| (i.digest, i.meta))
            .collect())
    }

    fn evict_blob(&self, digest: &Digest) -> Result<Vec<String>, StoreError> {
        Ok(self.evict(digest, false)?.unwrap_or_default())
    }

    fn evict_blob_unless_hosted(&self, digest: &Digest) -> Result<Option<Vec<String>>, StoreError> {
        self.evict(digest, true)
    }

    /// Take the blobs no entry references out of the index. Checks only the
    /// blobs whose referrer list became empty since open (plus those found
    /// empty by the scan at open), not the whole index.
    fn unreferenced_pending(&self) -> usize {
        lock(&self.unreferenced).len()
    }

    fn unreferenced_blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let mut candidates: Vec<Digest> = std::mem::take(&mut *lock(&self.unreferenced))
            .into_iter()
            .collect();
        candidates.sort();
        let mut out = Vec::new();
        for (i, chunk) in candidates.chunks(TX_CHUNK).enumerate() {
            let r = self
                .blobs
                .transaction(|tb| {
                    let mut taken = Vec::new();
                    let mut freed = 0u64;
                    for d in chunk {
                        if let Some(v) = tb.get(d.as_bytes())?
                            && let Ok(m) = decode_blob(d, &v)
                            && m.referrers.is_empty()
                        {
                            tb.remove(d.as_bytes())?;
                            taken.push(*d);
                            freed = freed.saturating_add(m.size);
                        }
                    }
                    Ok::<_, ConflictableTransactionError<StoreError>>((taken, freed))
                })
                .map_err(tx_err);
            let (taken, freed) = match r {
                Ok(r) => r,
                Err(e) => {
                    // Keep the unchecked candidates for the next call.
                    self.note_unreferenced(candidates[i * TX_CHUNK..].iter().copied());
                    return Err(e);
                }
            };
            self.sub_total(freed);
            let mut access = self.access_map();
            for d in &taken {
                access.remove(d);
            }
            out.extend(taken);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::now_ms;
    use super::super::tests::{entry, open};
    use super::*;
    use crate::store::EntryClass;
    use crate::store::prelude::*;

    #[test]
    fn lru_order_after_touch_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let digests: Vec<Digest> = (0..5u8).map(|i| Digest::of(&[i])).collect();
        {
            let m = open(dir.path());
            for (i, d) in digests.iter().enumerate() {
                m.put_entry(
                    "r",
                    &format!("k{i}"),
                    &entry(*d, 1, EntryClass::Immutable),
                    false,
                )
                .unwrap();
            }
            // Access order: 3, 1, 4, 0, 2 (oldest first), all in the future
            // relative to the put time.
            let base = now_ms() + 10_000;
            for (t, i) in [3usize, 1, 4, 0, 2].iter().enumerate() {
                m.touch_at(&digests[*i], base + t as u64);
            }
            let order: Vec<Digest> = m
                .lru_blobs(10)
                .unwrap()
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            assert_eq!(order, [3, 1, 4, 0, 2].map(|i| digests[i]));
            let two: Vec<Digest> = m
                .lru_blobs(2)
                .unwrap()
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            assert_eq!(two, [digests[3], digests[1]]);
            assert!(m.lru_blobs(0).unwrap().is_empty());
            m.persist_access().unwrap();
            assert!(m.access_map().is_empty());
            assert_eq!(
                m.blob_meta(&digests[2]).unwrap().unwrap().last_access_ms,
                base + 4
            );
            // An older touch does not move a blob back.
            m.touch_at(&digests[2], 1);
            m.persist_access().unwrap();
            assert_eq!(
                m.blob_meta(&digests[2]).unwrap().unwrap().last_access_ms,
                base + 4
            );
            m.touch_at(&digests[3], base + 100);
            // Dropped without persisting: Drop persists.
        }
        let m = open(dir.path());
        let order: Vec<Digest> = m
            .lru_blobs(10)
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(order, [1, 4, 0, 2, 3].map(|i| digests[i]));
    }

    #[test]
    fn evict_blob_and_hosted() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        m.put_entry("r", "k1", &entry(a, 3, EntryClass::Immutable), false)
            .unwrap();
        m.put_entry("h", "k2", &entry(a, 3, EntryClass::Hosted), false)
            .unwrap();
        assert_eq!(m.evict_blob_unless_hosted(&a).unwrap(), None);
        assert!(m.get_entry("r", "k1").unwrap().is_some());
        let mut ids = m.evict_blob(&a).unwrap();
        ids.sort();
        assert_eq!(ids, vec!["h\0k2", "r\0k1"]);
        assert!(m.get_entry("h", "k2").unwrap().is_none());
        assert!(m.blob_meta(&a).unwrap().is_none());
        assert_eq!(m.total_size(), 0);
        assert_eq!(m.evict_blob(&a).unwrap(), Vec::<String>::new());
    }
}
