//! Storage: a metadata index ([`MetaStore`]) and a content-addressed blob
//! store ([`BlobStore`]), both behind traits, under the async [`Store`]
//! the request path calls (`tiered.rs`: the memory tier over the local
//! one; a shared object-storage tier goes underneath without touching
//! callers).
//!
//! The commit protocol (crash-safe commits, ARCHITECTURE.md's invariants)
//! is split between the two:
//!
//! 1. bytes stream into a [`Spool`] (a temp file under `storage.dir/tmp`),
//!    hashed as they are written;
//! 2. [`BlobStore::commit`] fsyncs the spool, compares its sha256 with the
//!    expected digest (a mismatch deletes the spool and returns
//!    [`StoreError::DigestMismatch`]), renames it to
//!    `blobs/sha256/ab/abcdef…` and fsyncs the directory;
//! 3. [`MetaStore::put_entry`] inserts the index entry and the blob
//!    reference in one transaction, and with `durable = true` flushes the
//!    index before returning (uploads answer 201 only after that).
//!
//! After a crash at any point the store opens, serves no partial object
//! (spools are never read by a later process; blobs appear only by rename),
//! deletes the spools at startup and the orphan blobs in the background
//! ([`reclaim_orphans`]); `artgate fsck` reports both as leftovers.

mod blob_fs;
mod digest;
mod entry;
mod error;
mod evict;
pub mod failpoint;
pub mod fsck;
mod hot;
#[cfg(test)]
mod memfs;
mod meta_sled;
mod read;
mod reserve;
mod spool;
mod tiered;
mod vfs;

pub use blob_fs::FsBlobStore;
pub use digest::{Digest, DigestError};
pub use entry::{Entry, EntryClass, EntryId, Validators};
pub use error::{StoreError, is_no_space};
pub use evict::{EvictReport, GcReport, evict_to, gc, reclaim_orphans};
pub use fsck::{FsckReport, IndexCheck};
pub use hot::{CachedMetaStore, HotBlobs};
pub use meta_sled::{SledMetaStore, now_ms};
pub use read::{read_chunk, read_whole};
pub use spool::Spool;
pub use tiered::{Content, Store};
pub use vfs::{FileKind, OsFs, Stat, Vfs, VfsFile};

use std::io;
use std::sync::Arc;

/// A committed blob: its digest and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    /// sha256 of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// Random-access reads of a committed blob.
///
/// Backends return whatever handle fits them; the local file backend exposes
/// the file itself, so that reads that the page cache can answer run on the
/// request thread ([`read_chunk`]).
pub trait BlobRead: Send + Sync {
    /// Size of the blob in bytes.
    fn len(&self) -> u64;
    /// True when the blob is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Read into `buf` from `offset`; returns the number of bytes read
    /// (0 only at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The first `len` bytes, read whole (for small blobs held in memory);
    /// `UnexpectedEof` when the blob is shorter.
    fn read_prefix(&self, len: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.read_at(&mut buf[filled..], filled as u64)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stored blob is shorter than its index entry",
                    ));
                }
                n => filled += n,
            }
        }
        Ok(buf)
    }
    /// The underlying file, when the backend is local.
    fn as_file(&self) -> Option<&std::fs::File> {
        None
    }
}

/// Content-addressed blob storage. All methods block: the request path
/// goes through [`Store`], which runs them on the blocking pool.
///
/// `V` is the file system spools are written on ([`OsFs`] but in tests of
/// the local backend).
pub trait BlobStore<V: Vfs = OsFs>: Send + Sync + 'static {
    /// Create a new spool (temp file) to stream bytes into.
    fn create_spool(&self) -> io::Result<Spool<V>>;
    /// Make a spool durable and visible under its digest (see the module
    /// docs). `expected` is checked before anything becomes visible. When a
    /// blob with the same digest exists, the spool is dropped and the
    /// existing blob is kept.
    fn commit(&self, spool: Spool<V>, expected: Option<&Digest>) -> Result<BlobRef, StoreError>;
    /// Open a committed blob; `None` when absent.
    fn open(&self, digest: &Digest) -> io::Result<Option<Box<dyn BlobRead>>>;
    /// Whether a blob exists.
    fn contains(&self, digest: &Digest) -> io::Result<bool>;
    /// Delete a blob; false when it was absent.
    fn remove(&self, digest: &Digest) -> io::Result<bool>;
    /// Every committed blob with its size (for fsck and size accounting).
    fn list(&self) -> io::Result<Vec<BlobRef>>;
    /// Re-hash a blob and report whether its content matches its name.
    fn verify(&self, digest: &Digest) -> io::Result<bool>;
    /// Delete leftover spools of earlier processes; returns how many.
    /// Spools of this process are never touched, but call it at startup (or
    /// offline, from fsck): another process sharing the directory would
    /// lose its spools.
    fn clean_spools(&self) -> io::Result<usize>;
    /// Leftover spools of earlier processes (what [`BlobStore::clean_spools`]
    /// would delete), by name; for fsck.
    fn spools(&self) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Anything in the blob area that is neither a blob nor a spool, by name
    /// relative to the blob tree; for fsck.
    fn strays(&self) -> io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Delete a stray reported by [`BlobStore::strays`]; false when it was
    /// absent. Names outside the blob tree are rejected.
    fn remove_stray(&self, name: &str) -> io::Result<bool> {
        let _ = name;
        Ok(false)
    }
    /// Delete a blob unless a commit claimed it at or after `since` (it
    /// may be about to be indexed) or `indexed` says the index knows it;
    /// the check and the deletion are atomic with respect to commits.
    /// Returns whether the file was deleted.
    fn remove_unless_claimed(
        &self,
        digest: &Digest,
        since: std::time::Instant,
        indexed: &dyn Fn(&Digest) -> bool,
    ) -> io::Result<bool> {
        let _ = since;
        if indexed(digest) {
            return Ok(false);
        }
        self.remove(digest)
    }
    /// Delete the blobs no index record knows (orphans: a crash between a
    /// commit's rename and its index insert, or a failed insert), except
    /// those this process committed within `grace` (their insert may still
    /// be coming). `indexed` asks the index about a digest (true when in
    /// doubt). Safe while serving: a commit of the same digest is either
    /// seen and spared or finds the file gone and writes it again.
    fn reclaim_orphans(
        &self,
        grace: std::time::Duration,
        indexed: &dyn Fn(&Digest) -> bool,
    ) -> io::Result<GcReport> {
        let _ = (grace, indexed);
        Ok(GcReport::default())
    }
}

/// Blob bookkeeping kept in the index: size, how many entries reference it,
/// and when it was last served (for LRU eviction).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobMeta {
    /// Size in bytes.
    pub size: u64,
    /// Entry ids (`remote\0key`) that reference this blob.
    pub referrers: Vec<String>,
    /// Last access, unix milliseconds.
    pub last_access_ms: u64,
}

/// The checks a hosted commit makes in the same index transaction as its
/// write ([`MetaStore::put_entry_checked`]), so that concurrent uploads
/// cannot both pass them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutCheck {
    /// Refuse when the key already has an entry (write-once remotes).
    pub if_absent: bool,
    /// Refuse when the remote's entries would then total more than this
    /// many bytes ([`MetaStore::remote_size`]).
    pub quota: Option<u64>,
}

/// What [`MetaStore::put_entry_checked`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The entry was stored; the entry it replaced, if any.
    Stored(Option<Box<Entry>>),
    /// Nothing changed: the key has an entry and [`PutCheck::if_absent`]
    /// was set.
    Exists,
    /// Nothing changed: the remote's entries would total more than
    /// [`PutCheck::quota`]; `used` is what they total now.
    OverQuota {
        /// Bytes the remote's entries take now.
        used: u64,
    },
}

/// The metadata index: cache entries, blob references and sizes, last
/// access, and the plugins' key-value store. All methods block (see
/// [`BlobStore`]).
///
/// The empty blob ([`Digest::EMPTY`], e.g. of negative entries) is not
/// tracked: entries pointing at it add no blob record.
///
/// Remote and plugin names must not contain NUL bytes
/// ([`StoreError::InvalidName`]). Point lookups of an undecodable record
/// return [`StoreError::Corrupt`]; scans skip such records with a warning
/// (fsck reports and removes them, see [`MetaStore::check_index`]).
pub trait MetaStore: Send + Sync + 'static {
    /// The entry for `key` in `remote`.
    fn get_entry(&self, remote: &str, key: &str) -> Result<Option<Entry>, StoreError>;
    /// [`MetaStore::get_entry`], shared: backends with an in-memory cache
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
    /// [`MetaStore::put_entry`] after `check`, in the same transaction: a
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
    /// by [`MetaStore::unreferenced_blobs`] for deletion.
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
    /// Every entry as `(remote, key, entry)` (fsck). Undecodable records
    /// are skipped.
    fn all_entries(&self) -> Result<Vec<(String, String, Entry)>, StoreError>;
    /// Blob bookkeeping for a digest.
    fn blob_meta(&self, digest: &Digest) -> Result<Option<BlobMeta>, StoreError>;
    /// Record that a blob was served now (cheap: kept in memory and written
    /// back periodically by [`MetaStore::persist_access`]).
    fn touch(&self, digest: &Digest);
    /// Write remembered access times to the index.
    fn persist_access(&self) -> Result<(), StoreError>;
    /// Sum of the sizes of all blobs recorded in the index, each counted
    /// once, including unreferenced ones not yet taken out by
    /// [`MetaStore::unreferenced_blobs`] (their files still use the disk),
    /// plus the index bytes of the negative entries (cached upstream 404s
    /// have no blob, but every distinct one grows the index).
    fn total_size(&self) -> u64;
    /// Blobs in least-recently-used order, oldest first, at most `limit`.
    /// Access times remembered by [`MetaStore::touch`] are merged in.
    fn lru_blobs(&self, limit: usize) -> Result<Vec<(Digest, BlobMeta)>, StoreError>;
    /// Drop a blob and every entry referencing it from the index (eviction);
    /// returns the removed entries' ids. Flush the index before deleting the
    /// file, so that a crash cannot bring back entries whose file is gone.
    fn evict_blob(&self, digest: &Digest) -> Result<Vec<String>, StoreError>;
    /// Like [`MetaStore::evict_blob`], but in the same transaction checks
    /// that no [`EntryClass::Hosted`] entry references the blob; when one
    /// does, nothing changes and the result is `None`.
    fn evict_blob_unless_hosted(&self, digest: &Digest) -> Result<Option<Vec<String>>, StoreError>;
    /// Remove negative entries ([`EntryClass::NotFound`]) that expire
    /// before `until_ms`, earliest expiry first, at most `limit`; returns
    /// the removed entries' ids (`remote\0key`). `now` expires them;
    /// `u64::MAX` evicts the earliest-expiring ones whatever their expiry.
    fn remove_negatives(&self, until_ms: u64, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Blobs recorded in the index that no entry references any more; they
    /// are removed from the index by this call and the caller deletes the
    /// files (after [`MetaStore::flush`]).
    fn unreferenced_blobs(&self) -> Result<Vec<Digest>, StoreError>;
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
    /// Flush the index to disk.
    fn flush(&self) -> Result<(), StoreError>;
    /// Check the index against itself (fsck): undecodable records, blob
    /// reference lists that disagree with the entries, entries whose blob
    /// has no record. With `repair`, undecodable records are removed,
    /// reference lists and missing records rebuilt from the entries, and
    /// the size total recomputed. Run it offline.
    fn check_index(&self, repair: bool) -> Result<IndexCheck, StoreError>;
}
