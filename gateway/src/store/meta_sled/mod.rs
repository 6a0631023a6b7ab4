//! The sled metadata index.
//!
//! Trees:
//!
//! - `entries`: `remote \0 key` → JSON [`Entry`];
//! - `blobs`: 32 raw digest bytes → JSON [`BlobMeta`];
//! - `kv`: `plugin \0 key` → 8-byte big-endian expiry (unix ms, 0 = never)
//!   followed by the value;
//! - `usage`: `remote` → 8-byte big-endian sum of the sizes of the
//!   remote's decodable entries (hosted quotas read it in O(1)); absent
//!   means 0. Indexes written before it existed get it rebuilt at open
//!   (the `usage-v1` marker in the default tree says it is complete).
//! - `negatives`: 8-byte big-endian expiry (unix ms) followed by
//!   `remote \0 key` → 8-byte big-endian cost, one record per negative
//!   entry (a cached upstream 404), so that expired ones are found by a
//!   range scan and their index bytes count toward `storage.max_size`
//!   (they have no blob of their own to count).
//!
//! Entries, blob records and usage counters change together in multi-tree
//! transactions, so `BlobMeta::referrers` always lists exactly the entries
//! pointing at the blob (the empty blob is not tracked) and each counter is
//! exactly the sum of its remote's entries, also after a crash (sled
//! recovers whole transactions or none). In sled 0.34 a transaction holds a
//! process-wide write lock and single-key operations a read lock, so the
//! compare-and-swap loops used outside transactions are atomic with respect
//! to them.
//!
//! The files, one idea each:
//!
//! - `mod.rs` (this file): the store itself, its opening (with the
//!   upgrades of indexes written by older versions) and its clean close
//!   (the [`Summary`]), the record keys and their encoding, the generic
//!   transaction helpers, sled's errors as [`StoreError`]s, and
//!   [`MetaStore::flush`];
//! - `entries.rs`: [`EntryIndex`](crate::store::EntryIndex) — entries and
//!   what changes with them in the same transaction (blob references,
//!   usage counters, negative-entry records), listings, and the expiry of
//!   negative entries;
//! - `access.rs`: [`BlobIndex`](crate::store::BlobIndex) — blob records,
//!   access times, least-recently-used order, eviction, and the blobs no
//!   entry references any more;
//! - `kv.rs`: [`PluginKv`](crate::store::PluginKv) — the plugins'
//!   key-value records;
//! - `check.rs`: [`IndexRepair`](crate::store::IndexRepair) — the index
//!   checked against itself and repaired (fsck).

mod access;
mod check;
mod entries;
mod kv;

use super::failpoint::fail_step;
use super::{BlobIndex, BlobMeta, Digest, Entry, EntryClass, MetaStore, StoreError, is_no_space};
use entries::{decode_cost, negative_cost, negative_key};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
};
use sled::{IVec, Tree};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Separator between the parts of `entries` and `kv` keys.
const SEP: u8 = 0;
/// Keys handled per transaction by bulk operations.
const TX_CHUNK: usize = 256;

type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// The metadata index in a sled database (see the module docs for the
/// layout).
pub struct SledMetaStore {
    db: sled::Db,
    entries: Tree,
    blobs: Tree,
    kv: Tree,
    usage: Tree,
    negatives: Tree,
    /// Sum of the sizes of all decodable blob records and the costs of the
    /// negative entries.
    total: AtomicU64,
    /// Access times recorded by `touch` and not yet persisted.
    access: Mutex<HashMap<Digest, u64>>,
    /// Blobs whose referrer list became empty: the candidates of
    /// `unreferenced_blobs`, so that it needs no scan (filled by a scan at
    /// open).
    unreferenced: Mutex<HashSet<Digest>>,
}

impl fmt::Debug for SledMetaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledMetaStore")
            .field("total_size", &self.total_size())
            .finish_non_exhaustive()
    }
}

/// Lock a mutex guarding plain values (a map of times, a set of digests):
/// a panic elsewhere cannot leave them inconsistent, so a poisoned lock is
/// still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The current time in unix milliseconds (0 before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.as_bytes().contains(&SEP) {
        Err(StoreError::InvalidName(name.to_string()))
    } else {
        Ok(())
    }
}

/// `a \0 b`.
fn join_key(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(SEP);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The remote part of an `entries` key (the usage counter's key).
fn remote_of(k: &[u8]) -> &[u8] {
    k.split(|b| *b == SEP).next().unwrap_or(k)
}

/// A usage counter's value (a malformed one reads as 0; fsck finds it).
fn decode_u64(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map_or(0, u64::from_be_bytes)
}

/// Split an `entries` key into `(remote, key)`.
fn split_key(k: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(k).ok()?;
    let (a, b) = s.split_once(SEP as char)?;
    Some((a.to_string(), b.to_string()))
}

/// A readable name of an `entries` or `kv` key for messages.
fn show_key(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replacen(SEP as char, "/", 1)
}

fn digest_from_key(k: &[u8]) -> Option<Digest> {
    <[u8; 32]>::try_from(k).ok().map(Digest::from_bytes)
}

fn decode_entry(k: &[u8], v: &[u8]) -> Result<Entry, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        id: format!("entry {}", show_key(k)),
        reason: e.to_string(),
    })
}

fn decode_blob(d: &Digest, v: &[u8]) -> Result<BlobMeta, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        id: format!("blob {d}"),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(id: impl fmt::Display, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        reason: format!("cannot encode: {e}"),
    })
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

/// sled's errors as the store's: a full disk (or quota) under the index is
/// [`StoreError::NoSpace`] like one under a blob; anything else is
/// [`StoreError::Index`].
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(source) if is_no_space(&source) => StoreError::NoSpace {
                op: "write index",
                target: "sled database".to_string(),
                source,
            },
            other => StoreError::Index(Box::new(other)),
        }
    }
}

/// Bytes of index pages sled keeps in memory (its default is 1 GiB, which
/// a large index fills: ~370 MB of RSS for a million entries).
const CACHE_CAPACITY: u64 = 32 * 1024 * 1024;

/// Key (in the default tree) of the [`Summary`].
const SUMMARY_KEY: &[u8] = b"summary";

/// Key (in the default tree) saying the `usage` tree is complete.
const USAGE_MARKER: &[u8] = b"usage-v1";

/// Key (in the default tree) set once every negative entry has its
/// `negatives` record: an index written before that tree existed gets
/// them (one scan of the entries) at its first open.
const NEGATIVES_MARKER: &[u8] = b"negatives-v1";

/// What a full scan of the blob records computes, written by a clean close
/// and taken out by the next open, so that a clean restart of a large
/// store needs no scan.
#[derive(Serialize, Deserialize)]
struct Summary {
    /// Sum of the recorded blob sizes.
    total: u64,
    /// Blobs with no referrer left (hex digests).
    unreferenced: Vec<String>,
}

impl SledMetaStore {
    /// Open (creating as needed) the index at `path`. The size total and
    /// the unreferenced blobs come from the summary the last clean close
    /// left (see [`Summary`]); after a crash they are recomputed from the
    /// blob records (a full scan: seconds for a million blobs).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(CACHE_CAPACITY)
            .flush_every_ms(Some(500))
            .open()?;
        let entries = db.open_tree("entries")?;
        let blobs = db.open_tree("blobs")?;
        let kv = db.open_tree("kv")?;
        let usage = db.open_tree("usage")?;
        let negatives = db.open_tree("negatives")?;
        let store = SledMetaStore {
            db,
            entries,
            blobs,
            kv,
            usage,
            negatives,
            total: AtomicU64::new(0),
            access: Mutex::new(HashMap::new()),
            unreferenced: Mutex::new(HashSet::new()),
        };
        // Take the summary out (durably) before anything changes, so that
        // a crash of this process makes the next open scan.
        let summary = store.db.remove(SUMMARY_KEY)?;
        let summary = match summary {
            Some(v) => {
                store.db.flush()?;
                serde_json::from_slice::<Summary>(&v).ok()
            }
            None => None,
        };
        match summary {
            Some(s) => {
                store.total.store(s.total, Ordering::Relaxed);
                *lock(&store.unreferenced) = s
                    .unreferenced
                    .iter()
                    .filter_map(|h| Digest::from_hex(h).ok())
                    .collect();
            }
            None => store.rescan()?,
        }
        if store.db.get(USAGE_MARKER)?.is_none() {
            store.rebuild_usage()?;
        }
        store.record_old_negatives()?;
        Ok(store)
    }

    /// Sum the sizes of the decodable entries per remote (a full scan).
    fn usage_from_entries(&self) -> Result<HashMap<Vec<u8>, u64>, StoreError> {
        let mut sums: HashMap<Vec<u8>, u64> = HashMap::new();
        for item in self.entries.iter() {
            let (k, v) = item?;
            if let Ok(e) = decode_entry(&k, &v) {
                let slot = sums.entry(remote_of(&k).to_vec()).or_default();
                *slot = slot.saturating_add(e.size);
            }
        }
        Ok(sums)
    }

    /// Recompute every usage counter from the entries (at open of an index
    /// without them, and by fsck's repair; nothing else may write
    /// meanwhile). The marker is taken out first and written last, so an
    /// interrupted rebuild is redone at the next open.
    fn rebuild_usage(&self) -> Result<(), StoreError> {
        self.db.remove(USAGE_MARKER)?;
        self.db.flush()?;
        let sums = self.usage_from_entries()?;
        self.usage.clear()?;
        for (remote, bytes) in sums {
            if bytes > 0 {
                self.usage.insert(remote, &bytes.to_be_bytes())?;
            }
        }
        self.db.insert(USAGE_MARKER, &b"1"[..])?;
        self.db.flush()?;
        Ok(())
    }

    /// Give the negative entries of an index written before the
    /// `negatives` tree existed their records (once; see
    /// [`NEGATIVES_MARKER`]).
    fn record_old_negatives(&self) -> Result<(), StoreError> {
        if self.db.contains_key(NEGATIVES_MARKER)? {
            return Ok(());
        }
        let mut added = 0;
        for item in self.entries.iter() {
            let (k, v) = item?;
            if let Ok(e) = decode_entry(&k, &v)
                && e.class == EntryClass::NotFound
            {
                let cost = negative_cost(&k, v.len());
                if self
                    .negatives
                    .insert(negative_key(&k, &e), cost.to_be_bytes().to_vec())?
                    .is_none()
                {
                    added += cost;
                }
            }
        }
        self.add_total(added);
        self.db.insert(NEGATIVES_MARKER, vec![1u8])?;
        self.db.flush()?;
        Ok(())
    }

    /// Write the [`Summary`] a clean close leaves for the next open.
    fn write_summary(&self) -> Result<(), StoreError> {
        let summary = Summary {
            total: self.total.load(Ordering::Relaxed),
            unreferenced: lock(&self.unreferenced).iter().map(|d| d.hex()).collect(),
        };
        self.db
            .insert(SUMMARY_KEY, encode("index summary", &summary)?)?;
        Ok(())
    }

    /// Recompute the size total and the unreferenced candidates from the
    /// decodable blob records and the negative entries (a full scan).
    fn rescan(&self) -> Result<(), StoreError> {
        let mut total = 0u64;
        let mut unreferenced = HashSet::new();
        for item in self.blobs.iter() {
            let (k, v) = item?;
            if let Some(d) = digest_from_key(&k)
                && let Ok(m) = decode_blob(&d, &v)
            {
                total = total.saturating_add(m.size);
                if m.referrers.is_empty() {
                    unreferenced.insert(d);
                }
            }
        }
        for item in self.negatives.iter() {
            let (_, v) = item?;
            total = total.saturating_add(decode_cost(&v));
        }
        self.total.store(total, Ordering::Relaxed);
        *lock(&self.unreferenced) = unreferenced;
        Ok(())
    }

    fn note_unreferenced(&self, digests: impl IntoIterator<Item = Digest>) {
        let mut set = lock(&self.unreferenced);
        set.extend(digests);
    }

    fn add_total(&self, n: u64) {
        if n > 0 {
            self.total.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn sub_total(&self, n: u64) {
        if n > 0 {
            // The closure always returns Some, so this cannot fail.
            let _ = self
                .total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    Some(t.saturating_sub(n))
                });
        }
    }

    fn flush_if(&self, durable: bool) -> Result<(), StoreError> {
        if durable {
            self.flush()?;
        }
        Ok(())
    }

    /// Up to `n` keys of `tree` starting with `prefix`, after `after`.
    fn next_keys(
        tree: &Tree,
        prefix: &[u8],
        after: Option<&IVec>,
        n: usize,
    ) -> Result<Vec<IVec>, StoreError> {
        let start = match after {
            Some(a) => Bound::Excluded(a.clone()),
            None => Bound::Included(IVec::from(prefix)),
        };
        let mut keys = Vec::new();
        for item in tree.range::<IVec, _>((start, Bound::Unbounded)) {
            let (k, _) = item?;
            if !k.starts_with(prefix) || keys.len() >= n {
                break;
            }
            keys.push(k);
        }
        Ok(keys)
    }
}

impl MetaStore for SledMetaStore {
    /// Flush the index to disk (failpoint `index-flush`).
    fn flush(&self) -> Result<(), StoreError> {
        fail_step!("index-flush", |e| StoreError::from(sled::Error::Io(e)));
        self.db.flush()?;
        Ok(())
    }
}

impl Drop for SledMetaStore {
    fn drop(&mut self) {
        if let Err(e) = self.persist_access() {
            tracing::warn!(error = %e, "cannot persist blob access times");
        }
        // Nothing else holds the store now: the figures are exact.
        if let Err(e) = self.write_summary() {
            tracing::warn!(error = %e, "cannot write the index summary; the next start scans");
        }
        if let Err(e) = self.db.flush() {
            tracing::warn!(error = %e, "cannot flush the index");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Opening and closing (the summary, the upgrades of older indexes)
    //! and the names the keys refuse; the helpers the other files' tests
    //! share.

    use super::*;
    use crate::store::EntryClass;
    use crate::store::prelude::*;
    use std::io;

    /// A test entry of `class` for a blob.
    pub(super) fn entry(blob: Digest, size: u64, class: EntryClass) -> Entry {
        Entry {
            content_type: Some("application/octet-stream".into()),
            headers: vec![("x-a".into(), "b".into())],
            ..Entry::test(blob, size, class)
        }
    }

    /// Open the index in `dir`. sled may release the file lock of a store
    /// just dropped from a background thread a moment later, so a reopen
    /// retries (bounded) while the lock is still held.
    pub(super) fn open(dir: &Path) -> SledMetaStore {
        for _ in 0..100 {
            match SledMetaStore::open(&dir.join("index")) {
                Ok(m) => return m,
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the index lock was never released");
    }

    /// The referrers of `d`, sorted; `None` without a blob record.
    pub(super) fn refs(m: &SledMetaStore, d: &Digest) -> Option<Vec<String>> {
        m.blob_meta(d).unwrap().map(|b| {
            let mut r = b.referrers;
            r.sort();
            r
        })
    }

    /// A cached upstream 404 that expires at `expires_at_ms`.
    pub(super) fn negative(expires_at_ms: u64) -> Entry {
        Entry {
            status: 404,
            expires_at_ms: Some(expires_at_ms),
            ttl_ms: Some(60_000),
            ..Entry::test(Digest::EMPTY, 0, EntryClass::NotFound)
        }
    }

    /// An index written before the counters existed gets them at open; a
    /// wrong counter is reported by fsck and rebuilt by its repair.
    #[test]
    fn usage_counters_are_rebuilt_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let m = open(dir.path());
            m.put_entry(
                "r",
                "k",
                &entry(Digest::of(b"a"), 42, EntryClass::Hosted),
                true,
            )
            .unwrap();
            // As an older version left it.
            m.usage.clear().unwrap();
            m.db.remove(USAGE_MARKER).unwrap();
        }
        let m = open(dir.path());
        assert_eq!(m.remote_size("r").unwrap(), 42);
        m.usage.insert(b"r", &5u64.to_be_bytes()).unwrap();
        m.usage.insert(b"ghost", &9u64.to_be_bytes()).unwrap();
        let check = m.check_index(false).unwrap();
        assert_eq!(check.bad_usage, 2, "{check:?}");
        assert!(!check.is_clean());
        m.check_index(true).unwrap();
        assert!(m.check_index(false).unwrap().is_clean());
        assert_eq!(m.remote_size("r").unwrap(), 42);
        assert_eq!(m.remote_size("ghost").unwrap(), 0);
    }

    #[test]
    fn names_with_nul_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let e = entry(Digest::of(b"x"), 1, EntryClass::Immutable);
        assert!(matches!(
            m.put_entry("a\0b", "k", &e, false),
            Err(StoreError::InvalidName(_))
        ));
        assert!(matches!(
            m.kv_get("p\0", "k"),
            Err(StoreError::InvalidName(_))
        ));
        // Keys may contain anything.
        m.put_entry("a", "k\0with\0nul", &e, false).unwrap();
        let all = m.all_entries().unwrap();
        assert_eq!(all[0].0, "a");
        assert_eq!(all[0].1, "k\0with\0nul");
    }

    #[test]
    fn reopen_keeps_flushed_entries() {
        let dir = tempfile::tempdir().unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        {
            let m = open(dir.path());
            m.put_entry("r", "k", &entry(a, 42, EntryClass::Hosted), true)
                .unwrap();
            m.kv_set("p", "k", b"v", 0).unwrap();
            // Unreferenced but not collected before the restart.
            m.put_entry("r", "gone", &entry(b, 8, EntryClass::Immutable), false)
                .unwrap();
            m.remove_entry("r", "gone", true).unwrap();
        }
        let m = open(dir.path());
        assert_eq!(m.get_entry("r", "k").unwrap().unwrap().size, 42);
        assert_eq!(m.total_size(), 50);
        assert_eq!(m.kv_get("p", "k").unwrap().unwrap(), b"v");
        assert_eq!(m.unreferenced_blobs().unwrap(), vec![b]);
        assert_eq!(m.total_size(), 42);
    }

    /// A clean close leaves a summary that the next open takes out
    /// (durably, so a crash after it makes the open after that scan); what
    /// it restores is what a scan computes.
    #[test]
    fn clean_close_summary_matches_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        {
            let m = open(dir.path());
            m.put_entry("r", "a", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap();
            m.put_entry("r", "b", &entry(b, 20, EntryClass::Immutable), false)
                .unwrap();
            m.put_entry("r", "c", &entry(c, 30, EntryClass::Immutable), false)
                .unwrap();
            m.remove_entry("r", "b", false).unwrap();
        }
        let m = open(dir.path());
        assert!(m.db.get(SUMMARY_KEY).unwrap().is_none(), "summary left in");
        let from_summary = (m.total_size(), lock(&m.unreferenced).clone());
        assert_eq!(from_summary.0, 60);
        m.rescan().unwrap();
        let from_scan = (m.total_size(), lock(&m.unreferenced).clone());
        assert_eq!(from_summary, from_scan);
        assert_eq!(m.unreferenced_blobs().unwrap(), vec![b]);
    }

    /// An index written before negative entries had records gets them at
    /// its first open; a record without its entry is dropped by the sweep
    /// and by fsck.
    #[test]
    fn old_negative_entries_get_records_and_strays_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let m = open(dir.path());
            m.put_entry("r", "old", &negative(1_000), false).unwrap();
            // As an older version left it: no record, no marker.
            m.negatives.clear().unwrap();
            m.db.remove(NEGATIVES_MARKER).unwrap();
            m.rescan().unwrap();
            assert_eq!(m.total_size(), 0);
        }
        let m = open(dir.path());
        assert!(m.total_size() > 0);
        assert!(m.check_index(false).unwrap().is_clean());
        // A stray record (its entry gone behind the tree's back).
        m.negatives
            .insert(
                negative_key(b"r\0ghost", &negative(500)),
                7u64.to_be_bytes().to_vec(),
            )
            .unwrap();
        let c = m.check_index(false).unwrap();
        assert_eq!(c.bad_references, 1, "{c:?}");
        assert_eq!(
            m.remove_negatives(2_000, usize::MAX).unwrap(),
            vec!["r\0old"]
        );
        assert!(m.check_index(false).unwrap().is_clean());
        assert_eq!(m.total_size(), 0);
    }

    /// A full disk under the index answers 507 like one under a blob;
    /// anything else sled reports is an index error (500).
    #[test]
    fn sled_errors_are_store_errors() {
        let e: StoreError = sled::Error::Io(io::Error::from_raw_os_error(libc::ENOSPC)).into();
        assert!(matches!(e, StoreError::NoSpace { .. }), "{e:?}");
        assert_eq!(e.status().as_u16(), 507);
        let e: StoreError = sled::Error::Io(io::Error::from_raw_os_error(libc::EDQUOT)).into();
        assert_eq!(e.status().as_u16(), 507);
        let e: StoreError = sled::Error::Unsupported("no".into()).into();
        assert!(matches!(e, StoreError::Index(_)), "{e:?}");
        assert_eq!(e.status().as_u16(), 500);
        assert_eq!(e.to_string(), "index database error: Unsupported: no");
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<sled::Error>());
        assert!(matches!(source, Some(sled::Error::Unsupported(_))), "{e:?}");
    }
}
