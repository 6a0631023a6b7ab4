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
//! 3. [`EntryIndex::put_entry`] inserts the index entry and the blob
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
mod meta;
mod meta_sled;
mod read;
mod reserve;
pub mod shared;
mod spool;
mod tiered;
mod vfs;

pub use blob_fs::FsBlobStore;
pub use digest::{Digest, DigestError};
pub use entry::{Entry, EntryClass, EntryId, Rendered, Validators};
pub use error::{StoreError, is_no_space};
pub use evict::{EvictReport, GcReport, evict_to, gc, reclaim_orphans};
pub use fsck::{FsckReport, IndexCheck};
pub use hot::{CachedMetaStore, HotBlobs};
pub use meta::{BlobIndex, EntryIndex, IndexRepair, MetaStore, PluginKv};

/// The index traits in one import, for code that calls them on a concrete
/// backend (`SledMetaStore`, `CachedMetaStore`); through `dyn MetaStore`
/// every method is callable without it.
pub mod prelude {
    pub use super::meta::{BlobIndex, EntryIndex, IndexRepair, MetaStore, PluginKv};
}
pub use meta_sled::{SledMetaStore, now_ms};
pub use read::{read_chunk, read_whole};
pub use shared::{Claim, LeaseGuard, SharedStatus, SharedTier};
pub use spool::Spool;
pub use tiered::{Content, Sharing, Store};
pub use vfs::{FileKind, OsFs, Stat, Vfs, VfsFile};

use std::io;

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
    /// Say that the index insert following a commit of `digest` is done
    /// (or failed, or never comes): until then, garbage collection spares
    /// the file ([`BlobStore::remove_unless_claimed`]). The [`Store`]'s
    /// puts call it.
    fn settle(&self, digest: &Digest) {
        let _ = digest;
    }
    /// Delete a blob unless a commit claimed it at or after `since`, or
    /// claimed it earlier and has not settled yet (it may be about to be
    /// indexed), or `indexed` says the index knows it;
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
/// write ([`EntryIndex::put_entry_checked`]), so that concurrent uploads
/// cannot both pass them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutCheck {
    /// Refuse when the key already has an entry (write-once remotes).
    pub if_absent: bool,
    /// Refuse when the remote's entries would then total more than this
    /// many bytes ([`EntryIndex::remote_size`]).
    pub quota: Option<u64>,
}

/// What [`EntryIndex::put_entry_checked`] did.
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
