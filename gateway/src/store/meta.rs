//! The metadata index behind a trait: [`MetaStore`] and the four parts it
//! is made of, one per kind of record, so that a backend implements each
//! operation once under the name callers use:
//!
//! - [`EntryIndex`] — cache entries, with the blob references and remote
//!   usage that change in the same transaction;
//! - [`BlobIndex`] — blob records: size, last access, eviction order;
//! - [`PluginKv`] — the adapters' key-value store;
//! - [`IndexRepair`] — the offline consistency check (fsck).
//!
//! Methods of the parts are callable on `dyn MetaStore` without importing
//! them; code holding a concrete backend imports the part it calls.

use super::{BlobMeta, Digest, Entry, EntryId, IndexCheck, PutCheck, PutOutcome, StoreError};
use std::sync::Arc;

/// The metadata index: cache entries, blob references and sizes, last
/// access, and the plugins' key-value store. All methods block (see
/// [`BlobStore`](super::BlobStore)).
///
/// The empty blob ([`Digest::EMPTY`], e.g. of negative entries) is not
/// tracked: entries pointing at it add no blob record.
///
/// Remote and plugin names must not contain NUL bytes
/// ([`StoreError::InvalidName`]). Point lookups of an undecodable record
/// return [`StoreError::Corrupt`]; scans skip such records with a warning
/// (fsck reports and removes them, see [`IndexRepair::check_index`]).
pub trait MetaStore:
    EntryIndex + BlobIndex + PluginKv + IndexRepair + Send + Sync + 'static
{
    /// Flush the index to disk.
    fn flush(&self) -> Result<(), StoreError>;
}

/// Cache entries by `(remote, key)`; every change updates the blob
/// references and the remote's usage in the same transaction.
pub trait EntryIndex {
    /// The entry for `key` in `remote`.
    fn get_entry(&self, remote: &str, key: &str) -> Result<Option<Entry>, StoreError>;
    /// [`EntryIndex::get_entry`], shared: backends with an in-memory cache
    /// hand out their copy without cloning it.
    fn get_shared(&self, remote: &str, key: &str) -> Result<Option<Arc<Entry>>, StoreError> {
        Ok(self.get_entry(remote, key)?.map(Arc::new))
    }
    /// The entry for `key` when it is in memory; never blocks (callable on
    /// the async threads). `None` says nothing about the index.
    fn cached_entry(&self, id: &EntryId) -> Option<Arc<Entry>> {
        let _ = id;
        None
    }
    /// Insert or replace an entry, updating blob references in the same
    /// transaction. With `durable`, the index is flushed to disk before
    /// returning. Returns the previous entry.
    fn put_entry(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError>;
    /// [`EntryIndex::put_entry`] after `check`, in the same transaction: a
    /// refused put changes no entry. The refused entry's blob (already
    /// committed to the blob store) is recorded as unreferenced when the
    /// index does not know it yet, so that garbage collection deletes its
    /// file instead of leaving an orphan.
    fn put_entry_checked(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        check: PutCheck,
        durable: bool,
    ) -> Result<PutOutcome, StoreError>;
    /// Sum of the sizes of `remote`'s entries (a counter kept in the same
    /// transactions as the entries; O(1)).
    fn remote_size(&self, remote: &str) -> Result<u64, StoreError>;
    /// Apply `f` to the entry atomically (a compare-and-swap loop, so a
    /// concurrent replacement is never overwritten with stale fields); used
    /// to refresh TTLs. Returns the updated entry, `None` when absent.
    fn update_entry(
        &self,
        remote: &str,
        key: &str,
        f: &dyn Fn(&mut Entry),
    ) -> Result<Option<Entry>, StoreError>;
    /// Remove an entry; returns it. Blobs left with no referrer are reported
    /// by [`BlobIndex::unreferenced_blobs`] for deletion.
    fn remove_entry(
        &self,
        remote: &str,
        key: &str,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError>;
    /// Remove every entry of `remote`, or of all remotes; returns how many.
    fn remove_all(&self, remote: Option<&str>) -> Result<u64, StoreError>;
    /// Entries of `remote` whose key starts with `prefix`, after `after`, at
    /// most `limit`, in key order.
    fn list_entries(
        &self,
        remote: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StoreError>;
    /// How many entries of `remote` have a key starting with `prefix`,
    /// counting at most `limit` (keys only: nothing is decoded).
    fn count_entries(&self, remote: &str, prefix: &str, limit: u64) -> Result<u64, StoreError>;
    /// Every entry as `(remote, key, entry)` (fsck). Undecodable records
    /// are skipped.
    fn all_entries(&self) -> Result<Vec<(String, String, Entry)>, StoreError>;
    /// Remove negative entries ([`EntryClass::NotFound`](super::EntryClass))
    /// that expire before `until_ms`, earliest expiry first, at most
    /// `limit`; returns the removed entries' ids (`remote\0key`). `now`
    /// expires them; `u64::MAX` evicts the earliest-expiring ones whatever
    /// their expiry.
    fn remove_negatives(&self, until_ms: u64, limit: usize) -> Result<Vec<String>, StoreError>;
}

/// Blob records: size, referrers, last access; the eviction order and
/// the blobs no entry references any more.
pub trait BlobIndex {
    /// Blob bookkeeping for a digest.
    fn blob_meta(&self, digest: &Digest) -> Result<Option<BlobMeta>, StoreError>;
    /// Record that a blob was served now (cheap: kept in memory and written
    /// back periodically by [`BlobIndex::persist_access`]).
    fn touch(&self, digest: &Digest);
    /// Write remembered access times to the index; returns them (a
    /// cluster node sends them on to the bucket, `store/shared/access.rs`).
    fn persist_access(&self) -> Result<Vec<(Digest, u64)>, StoreError>;
    /// Sum of the sizes of all blobs recorded in the index, each counted
    /// once, including unreferenced ones not yet taken out by
    /// [`BlobIndex::unreferenced_blobs`] (their files still use the disk),
    /// plus the index bytes of the negative entries (cached upstream 404s
    /// have no blob, but every distinct one grows the index).
    fn total_size(&self) -> u64;
    /// Blobs in least-recently-used order, oldest first, at most `limit`.
    /// Access times remembered by [`BlobIndex::touch`] are merged in.
    fn lru_blobs(&self, limit: usize) -> Result<Vec<(Digest, BlobMeta)>, StoreError>;
    /// Drop a blob and every entry referencing it from the index (eviction);
    /// returns the removed entries' ids. Flush the index before deleting the
    /// file, so that a crash cannot bring back entries whose file is gone.
    fn evict_blob(&self, digest: &Digest) -> Result<Vec<String>, StoreError>;
    /// Like [`BlobIndex::evict_blob`], but in the same transaction checks
    /// that no [`EntryClass::Hosted`](super::EntryClass) entry references
    /// the blob; when one does, nothing changes and the result is `None`.
    fn evict_blob_unless_hosted(&self, digest: &Digest) -> Result<Option<Vec<String>>, StoreError>;
    /// Blobs recorded in the index that no entry references any more; they
    /// are removed from the index by this call and the caller deletes the
    /// files (after [`MetaStore::flush`]).
    fn unreferenced_blobs(&self) -> Result<Vec<Digest>, StoreError>;
    /// How many blobs may have lost their last referrer since the last
    /// [`BlobIndex::unreferenced_blobs`] (what the next garbage collection
    /// looks at); never blocks.
    fn unreferenced_pending(&self) -> usize;
}

/// The adapters' key-value store, namespaced by plugin.
pub trait PluginKv {
    /// A plugin key-value read (`None` when absent or expired).
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// A plugin key-value write; `ttl_secs` 0 never expires.
    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError>;
    /// A plugin key-value delete.
    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError>;
    /// Write `value` (expiring after `ttl_secs`, 0 never) only when the
    /// current value is `expected` (`None`: absent or expired), atomically;
    /// whether it was written.
    fn kv_compare_and_set(
        &self,
        plugin: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<bool, StoreError>;
}

/// The offline consistency check of the index (`artgate fsck`).
pub trait IndexRepair {
    /// Check the index against itself: undecodable records, blob
    /// reference lists that disagree with the entries, entries whose blob
    /// has no record. With `repair`, undecodable records are removed,
    /// reference lists and missing records rebuilt from the entries, and
    /// the size total recomputed. Run it offline.
    fn check_index(&self, repair: bool) -> Result<IndexCheck, StoreError>;
}
