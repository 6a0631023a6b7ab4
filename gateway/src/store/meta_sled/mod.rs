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

use super::failpoint::fail_step;
use super::fsck::IndexCheck;
use super::{BlobMeta, Digest, Entry, EntryClass, MetaStore, PutCheck, PutOutcome, StoreError};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{IVec, Transactional, Tree};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Separator between the parts of `entries` and `kv` keys.
const SEP: u8 = 0;
/// Keys handled per transaction by bulk operations.
const TX_CHUNK: usize = 256;
/// Examples kept in an [`IndexCheck`].
const MAX_EXAMPLES: usize = 32;

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

/// Add `id` to the referrers of `digest`, creating its record if needed.
/// Returns the bytes newly counted in the total.
fn tx_add_ref(
    tb: &TransactionalTree,
    digest: &Digest,
    id: &str,
    size: u64,
    now: u64,
) -> TxResult<u64> {
    if *digest == Digest::EMPTY {
        return Ok(0);
    }
    let fresh = BlobMeta {
        size,
        referrers: Vec::new(),
        last_access_ms: now,
    };
    let (mut meta, added) = match tb.get(digest.as_bytes())? {
        Some(v) => match decode_blob(digest, &v) {
            Ok(m) => (m, 0),
            Err(e) => {
                // An undecodable record was never counted; replace it.
                tracing::warn!(error = %e, "replacing corrupt blob record");
                (fresh, size)
            }
        },
        None => (fresh, size),
    };
    if !meta.referrers.iter().any(|r| r == id) {
        meta.referrers.push(id.to_string());
    }
    meta.last_access_ms = meta.last_access_ms.max(now);
    let bytes = encode(format!("blob {digest}"), &meta).map_err(abort)?;
    tb.insert(digest.as_bytes(), bytes)?;
    Ok(added)
}

/// Remove `id` from the referrers of `digest`; the record stays (for
/// `unreferenced_blobs`) even when it has no referrer left. Returns the
/// digest when its referrer list is now empty.
fn tx_remove_ref(tb: &TransactionalTree, digest: &Digest, id: &str) -> TxResult<Option<Digest>> {
    if *digest == Digest::EMPTY {
        return Ok(None);
    }
    let Some(v) = tb.get(digest.as_bytes())? else {
        return Ok(None);
    };
    let Ok(mut meta) = decode_blob(digest, &v) else {
        return Ok(None);
    };
    let before = meta.referrers.len();
    meta.referrers.retain(|r| r != id);
    if meta.referrers.len() != before {
        let bytes = encode(format!("blob {digest}"), &meta).map_err(abort)?;
        tb.insert(digest.as_bytes(), bytes)?;
    }
    Ok(meta.referrers.is_empty().then_some(*digest))
}

/// The usage counter of `remote` (bytes of its entries).
fn tx_usage(tu: &TransactionalTree, remote: &[u8]) -> TxResult<u64> {
    Ok(tu.get(remote)?.map_or(0, |v| decode_u64(&v)))
}

/// Set the usage counter of `remote` (0 removes it).
fn tx_set_usage(tu: &TransactionalTree, remote: &[u8], bytes: u64) -> TxResult<()> {
    if bytes == 0 {
        tu.remove(remote)?;
    } else {
        tu.insert(remote, &bytes.to_be_bytes())?;
    }
    Ok(())
}

/// Move the usage counter of the remote owning entry key `k` by
/// `+add -sub`.
fn tx_usage_change(tu: &TransactionalTree, k: &[u8], add: u64, sub: u64) -> TxResult<()> {
    if add == sub {
        return Ok(());
    }
    let remote = remote_of(k);
    let now = tx_usage(tu, remote)?;
    tx_set_usage(tu, remote, now.saturating_add(add).saturating_sub(sub))
}

/// Record the blob of a refused put as unreferenced when the index does
/// not know it (its file was committed before the put was refused), so
/// that garbage collection deletes the file. Returns the digest and the
/// bytes newly counted when a record was created.
fn tx_record_loser(
    tb: &TransactionalTree,
    digest: &Digest,
    size: u64,
    now: u64,
) -> TxResult<(Option<Digest>, u64)> {
    if *digest == Digest::EMPTY || tb.get(digest.as_bytes())?.is_some() {
        return Ok((None, 0));
    }
    let meta = BlobMeta {
        size,
        referrers: Vec::new(),
        last_access_ms: now,
    };
    let bytes = encode(format!("blob {digest}"), &meta).map_err(abort)?;
    tb.insert(digest.as_bytes(), bytes)?;
    Ok((Some(*digest), size))
}

/// The `negatives` key of a negative entry stored under `k`.
fn negative_key(k: &[u8], e: &Entry) -> Vec<u8> {
    let mut nk = Vec::with_capacity(8 + k.len());
    nk.extend_from_slice(&e.expires_at_ms.unwrap_or(u64::MAX).to_be_bytes());
    nk.extend_from_slice(k);
    nk
}

/// What a negative entry costs against `storage.max_size`: its index
/// record and its `negatives` record, with a little for sled's own
/// bookkeeping.
fn negative_cost(k: &[u8], encoded_len: usize) -> u64 {
    (2 * k.len() + encoded_len + 64) as u64
}

fn decode_cost(v: &[u8]) -> u64 {
    v.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b))
}

/// Record `e` (stored under `k`, `encoded_len` bytes) in `negatives` when
/// it is a negative entry; returns the cost newly counted.
fn tx_add_negative(
    tn: &TransactionalTree,
    k: &[u8],
    e: &Entry,
    encoded_len: usize,
) -> TxResult<(u64, u64)> {
    if e.class != EntryClass::NotFound {
        return Ok((0, 0));
    }
    let cost = negative_cost(k, encoded_len);
    let old = tn.insert(negative_key(k, e), cost.to_be_bytes().to_vec())?;
    Ok((cost, old.map_or(0, |v| decode_cost(&v))))
}

/// Drop the `negatives` record of `e` (stored under `k`); returns the cost
/// no longer counted.
fn tx_remove_negative(tn: &TransactionalTree, k: &[u8], e: &Entry) -> TxResult<u64> {
    if e.class != EntryClass::NotFound {
        return Ok(0);
    }
    Ok(tn
        .remove(negative_key(k, e))?
        .map_or(0, |v| decode_cost(&v)))
}

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

    fn access_map(&self) -> MutexGuard<'_, HashMap<Digest, u64>> {
        lock(&self.access)
    }

    /// Record an access to `digest` at `at_ms` (what [`MetaStore::touch`]
    /// does with the current time).
    pub fn touch_at(&self, digest: &Digest, at_ms: u64) {
        let mut map = self.access_map();
        let t = map.entry(*digest).or_insert(at_ms);
        *t = (*t).max(at_ms);
    }

    fn flush_if(&self, durable: bool) -> Result<(), StoreError> {
        if durable {
            self.flush_index()?;
        }
        Ok(())
    }

    /// Flush the index to disk (failpoint `index-flush`).
    fn flush_index(&self) -> Result<(), StoreError> {
        fail_step!("index-flush", |e| StoreError::from(sled::Error::Io(e)));
        self.db.flush()?;
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

    /// Write a kv value with an explicit expiry (unix ms, 0 = never).
    fn kv_set_at(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        check_name(plugin)?;
        let mut v = Vec::with_capacity(8 + value.len());
        v.extend_from_slice(&expires_at_ms.to_be_bytes());
        v.extend_from_slice(value);
        self.kv.insert(join_key(plugin, key), v)?;
        Ok(())
    }
}

impl MetaStore for SledMetaStore {
    fn get_entry(&self, remote: &str, key: &str) -> Result<Option<Entry>, StoreError> {
        check_name(remote)?;
        let k = join_key(remote, key);
        match self.entries.get(&k)? {
            Some(v) => decode_entry(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    fn put_entry(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        match self.put_entry_checked(remote, key, entry, PutCheck::default(), durable)? {
            PutOutcome::Stored(prev) => Ok(prev.map(|p| *p)),
            // Unreachable without checks; reported as "nothing replaced".
            PutOutcome::Exists | PutOutcome::OverQuota { .. } => Ok(None),
        }
    }

    fn put_entry_checked(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        check: PutCheck,
        durable: bool,
    ) -> Result<PutOutcome, StoreError> {
        check_name(remote)?;
        fail_step!("index-put", |e| StoreError::from(sled::Error::Io(e)));
        let k = join_key(remote, key);
        let id = show_key(&k);
        let bytes = encode(format!("entry {id}"), entry)?;
        let ref_id = String::from_utf8_lossy(&k).into_owned();
        let now = now_ms();
        let (outcome, added, removed, emptied) =
            (&self.entries, &self.blobs, &self.usage, &self.negatives)
                .transaction(|(te, tb, tu, tn)| {
                    let raw = te.get(&k)?;
                    // A corrupt record counts as present: write-once holds.
                    if check.if_absent && raw.is_some() {
                        let (loser, added) = tx_record_loser(tb, &entry.blob, entry.size, now)?;
                        return Ok((PutOutcome::Exists, added, 0, loser));
                    }
                    let prev = match raw {
                        Some(v) => match decode_entry(&k, &v) {
                            Ok(e) => Some(e),
                            Err(e) => {
                                tracing::warn!(error = %e, "replacing corrupt entry");
                                None
                            }
                        },
                        None => None,
                    };
                    let used = tx_usage(tu, remote.as_bytes())?;
                    let after = used
                        .saturating_sub(prev.as_ref().map_or(0, |p| p.size))
                        .saturating_add(entry.size);
                    if check.quota.is_some_and(|limit| after > limit) {
                        let (loser, added) = tx_record_loser(tb, &entry.blob, entry.size, now)?;
                        return Ok((PutOutcome::OverQuota { used }, added, 0, loser));
                    }
                    let mut emptied = None;
                    let mut removed = 0;
                    if let Some(p) = &prev {
                        removed = tx_remove_negative(tn, &k, p)?;
                        if p.blob != entry.blob {
                            emptied = tx_remove_ref(tb, &p.blob, &ref_id)?;
                        }
                    }
                    let added = tx_add_ref(tb, &entry.blob, &ref_id, entry.size, now)?;
                    let (neg, replaced) = tx_add_negative(tn, &k, entry, bytes.len())?;
                    te.insert(k.as_slice(), bytes.as_slice())?;
                    tx_set_usage(tu, remote.as_bytes(), after)?;
                    Ok((
                        PutOutcome::Stored(prev.map(Box::new)),
                        added + neg,
                        removed + replaced,
                        emptied,
                    ))
                })
                .map_err(tx_err)?;
        self.add_total(added);
        self.sub_total(removed);
        self.note_unreferenced(emptied);
        self.flush_if(durable && matches!(outcome, PutOutcome::Stored(_)))?;
        Ok(outcome)
    }

    fn remote_size(&self, remote: &str) -> Result<u64, StoreError> {
        check_name(remote)?;
        Ok(self
            .usage
            .get(remote.as_bytes())?
            .map_or(0, |v| decode_u64(&v)))
    }

    fn update_entry(
        &self,
        remote: &str,
        key: &str,
        f: &dyn Fn(&mut Entry),
    ) -> Result<Option<Entry>, StoreError> {
        check_name(remote)?;
        let k = join_key(remote, key);
        let ref_id = String::from_utf8_lossy(&k).into_owned();
        let now = now_ms();
        let r = (&self.entries, &self.blobs, &self.usage, &self.negatives)
            .transaction(|(te, tb, tu, tn)| {
                let Some(v) = te.get(&k)? else {
                    return Ok(None);
                };
                let old = decode_entry(&k, &v).map_err(abort)?;
                let mut new = old.clone();
                f(&mut new);
                let bytes = encode(format!("entry {}", show_key(&k)), &new).map_err(abort)?;
                let mut added = 0;
                let mut emptied = None;
                if old.blob != new.blob {
                    emptied = tx_remove_ref(tb, &old.blob, &ref_id)?;
                    added = tx_add_ref(tb, &new.blob, &ref_id, new.size, now)?;
                }
                tx_usage_change(tu, &k, new.size, old.size)?;
                let mut removed = tx_remove_negative(tn, &k, &old)?;
                let (neg, replaced) = tx_add_negative(tn, &k, &new, bytes.len())?;
                removed += replaced;
                te.insert(k.as_slice(), bytes)?;
                Ok(Some((new, added + neg, removed, emptied)))
            })
            .map_err(tx_err)?;
        Ok(r.map(|(e, added, removed, emptied)| {
            self.add_total(added);
            self.sub_total(removed);
            self.note_unreferenced(emptied);
            e
        }))
    }

    fn remove_entry(
        &self,
        remote: &str,
        key: &str,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        check_name(remote)?;
        let k = join_key(remote, key);
        let ref_id = String::from_utf8_lossy(&k).into_owned();
        let (prev, emptied, removed) = (&self.entries, &self.blobs, &self.usage, &self.negatives)
            .transaction(|(te, tb, tu, tn)| {
                let Some(v) = te.remove(k.as_slice())? else {
                    return Ok((None, None, 0));
                };
                match decode_entry(&k, &v) {
                    Ok(e) => {
                        tx_usage_change(tu, &k, 0, e.size)?;
                        let emptied = tx_remove_ref(tb, &e.blob, &ref_id)?;
                        let removed = tx_remove_negative(tn, &k, &e)?;
                        Ok((Some(e), emptied, removed))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "removed corrupt entry");
                        Ok((None, None, 0))
                    }
                }
            })
            .map_err(tx_err)?;
        self.sub_total(removed);
        self.note_unreferenced(emptied);
        self.flush_if(durable)?;
        Ok(prev)
    }

    fn remove_all(&self, remote: Option<&str>) -> Result<u64, StoreError> {
        let prefix = match remote {
            Some(r) => {
                check_name(r)?;
                join_key(r, "")
            }
            None => Vec::new(),
        };
        let mut removed = 0u64;
        let mut after: Option<IVec> = None;
        loop {
            let keys = Self::next_keys(&self.entries, &prefix, after.as_ref(), TX_CHUNK)?;
            let Some(last) = keys.last() else { break };
            after = Some(last.clone());
            let (n, emptied, freed) = (&self.entries, &self.blobs, &self.usage, &self.negatives)
                .transaction(|(te, tb, tu, tn)| {
                    let mut n = 0u64;
                    let mut emptied = Vec::new();
                    let mut freed = 0;
                    for k in &keys {
                        let Some(v) = te.remove(k)? else { continue };
                        n += 1;
                        if let Ok(e) = decode_entry(k, &v) {
                            tx_usage_change(tu, k, 0, e.size)?;
                            emptied.extend(tx_remove_ref(
                                tb,
                                &e.blob,
                                &String::from_utf8_lossy(k),
                            )?);
                            freed += tx_remove_negative(tn, k, &e)?;
                        }
                    }
                    Ok((n, emptied, freed))
                })
                .map_err(tx_err)?;
            removed += n;
            self.sub_total(freed);
            self.note_unreferenced(emptied);
        }
        self.db.flush()?;
        Ok(removed)
    }

    fn list_entries(
        &self,
        remote: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StoreError> {
        check_name(remote)?;
        let full_prefix = join_key(remote, prefix);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(join_key(remote, a)),
            _ => Bound::Included(full_prefix.clone()),
        };
        let skip = remote.len() + 1;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for item in self.entries.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (k, v) = item?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            let key = k.get(skip..).and_then(|b| std::str::from_utf8(b).ok());
            match (key, decode_entry(&k, &v)) {
                (Some(key), Ok(e)) => out.push((key.to_string(), e)),
                (_, Err(e)) => tracing::warn!(error = %e, "skipping corrupt entry"),
                (None, _) => {
                    tracing::warn!(key = %show_key(&k), "skipping entry with a non-UTF-8 key")
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn all_entries(&self) -> Result<Vec<(String, String, Entry)>, StoreError> {
        let mut out = Vec::new();
        for item in self.entries.iter() {
            let (k, v) = item?;
            match (split_key(&k), decode_entry(&k, &v)) {
                (Some((remote, key)), Ok(e)) => out.push((remote, key, e)),
                (_, Err(e)) => tracing::warn!(error = %e, "skipping corrupt entry"),
                (None, _) => {
                    tracing::warn!(key = %show_key(&k), "skipping entry with a malformed key")
                }
            }
        }
        Ok(out)
    }

    fn blob_meta(&self, digest: &Digest) -> Result<Option<BlobMeta>, StoreError> {
        match self.blobs.get(digest.as_bytes())? {
            Some(v) => decode_blob(digest, &v).map(Some),
            None => Ok(None),
        }
    }

    fn touch(&self, digest: &Digest) {
        self.touch_at(digest, now_ms());
    }

    fn persist_access(&self) -> Result<(), StoreError> {
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
        Ok(())
    }

    fn total_size(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// A full scan of the blob records (cost linear in the number of blobs,
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

    /// A range scan of `negatives` up to `until_ms`; a record whose entry
    /// changed meanwhile (or was corrupt) is dropped without the entry.
    fn remove_negatives(&self, until_ms: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for item in self.negatives.iter() {
            let (nk, _) = item?;
            let expiry = nk.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b));
            if expiry >= until_ms || keys.len() >= limit {
                break;
            }
            keys.push(nk);
        }
        let mut out = Vec::new();
        for chunk in keys.chunks(TX_CHUNK) {
            let (ids, freed, emptied) = (&self.entries, &self.blobs, &self.negatives)
                .transaction(|(te, tb, tn)| {
                    let (mut ids, mut freed, mut emptied) = (Vec::new(), 0u64, Vec::new());
                    for nk in chunk {
                        let Some(cost) = tn.remove(nk)? else { continue };
                        freed += decode_cost(&cost);
                        let k = nk.get(8..).unwrap_or_default();
                        let Some(v) = te.get(k)? else { continue };
                        let Ok(e) = decode_entry(k, &v) else { continue };
                        if e.class != EntryClass::NotFound || negative_key(k, &e) != nk.as_ref() {
                            continue;
                        }
                        te.remove(k)?;
                        let id = String::from_utf8_lossy(k).into_owned();
                        emptied.extend(tx_remove_ref(tb, &e.blob, &id)?);
                        ids.push(id);
                    }
                    Ok((ids, freed, emptied))
                })
                .map_err(tx_err)?;
            self.sub_total(freed);
            self.note_unreferenced(emptied);
            out.extend(ids);
        }
        Ok(out)
    }

    /// Checks only the blobs whose referrer list became empty since open
    /// (plus those found empty by the scan at open), not the whole index.
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

    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_name(plugin)?;
        let k = join_key(plugin, key);
        let Some(v) = self.kv.get(&k)? else {
            return Ok(None);
        };
        let Some((head, value)) = v.split_first_chunk::<8>() else {
            return Err(StoreError::Corrupt {
                id: format!("kv {}", show_key(&k)),
                reason: format!("value has {} bytes, less than the 8-byte expiry", v.len()),
            });
        };
        let expires = u64::from_be_bytes(*head);
        if expires != 0 && expires <= now_ms() {
            // Lazily delete, unless it was rewritten meanwhile.
            let _ = self.kv.compare_and_swap(&k, Some(&v), None::<&[u8]>)?;
            return Ok(None);
        }
        Ok(Some(value.to_vec()))
    }

    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let expires = if ttl_secs == 0 {
            0
        } else {
            now_ms().saturating_add(ttl_secs.saturating_mul(1000))
        };
        self.kv_set_at(plugin, key, value, expires)
    }

    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        check_name(plugin)?;
        self.kv.remove(join_key(plugin, key))?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.flush_index()
    }

    fn check_index(&self, repair: bool) -> Result<IndexCheck, StoreError> {
        let mut check = IndexCheck::default();
        let note = |check: &mut IndexCheck, s: String| {
            if check.examples.len() < MAX_EXAMPLES {
                check.examples.push(s);
            }
        };
        // Entries: decodability, and the referrers and usage they imply.
        let mut expected: HashMap<Digest, (u64, Vec<String>)> = HashMap::new();
        let mut usage: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut negatives: HashMap<Vec<u8>, u64> = HashMap::new();
        for item in self.entries.iter() {
            let (k, v) = item?;
            check.entries += 1;
            if let Ok(e) = decode_entry(&k, &v) {
                let slot = usage.entry(remote_of(&k).to_vec()).or_default();
                *slot = slot.saturating_add(e.size);
            }
            match (split_key(&k), decode_entry(&k, &v)) {
                (Some(_), Ok(e)) => {
                    if e.class == EntryClass::NotFound {
                        negatives.insert(negative_key(&k, &e), negative_cost(&k, v.len()));
                    }
                    if e.blob != Digest::EMPTY {
                        let slot = expected.entry(e.blob).or_insert((e.size, Vec::new()));
                        slot.1.push(String::from_utf8_lossy(&k).into_owned());
                    }
                }
                (_, r) => {
                    check.corrupt_records += 1;
                    let why = r
                        .err()
                        .map_or("malformed key".to_string(), |e| e.to_string());
                    note(&mut check, format!("corrupt entry {}: {why}", show_key(&k)));
                    if repair {
                        self.remove_record_if_unchanged(&self.entries, &k, &v)?;
                    }
                }
            }
        }
        // Blob records against the entries.
        for item in self.blobs.iter() {
            let (k, v) = item?;
            check.blob_records += 1;
            let decoded = digest_from_key(&k).map(|d| (d, decode_blob(&d, &v)));
            let (digest, mut meta) = match decoded {
                Some((d, Ok(m))) => (d, m),
                other => {
                    check.corrupt_records += 1;
                    let why = match other {
                        Some((_, Err(e))) => e.to_string(),
                        _ => format!("malformed blob record key {}", hex::encode(&k)),
                    };
                    note(&mut check, why);
                    if repair {
                        self.remove_record_if_unchanged(&self.blobs, &k, &v)?;
                    }
                    continue;
                }
            };
            let mut want = expected.remove(&digest).map(|(_, r)| r).unwrap_or_default();
            want.sort();
            let mut have = meta.referrers.clone();
            have.sort();
            if have != want {
                check.bad_references += 1;
                note(
                    &mut check,
                    format!(
                        "blob {digest} lists {} referrers, {} entries point at it",
                        have.len(),
                        want.len()
                    ),
                );
                if repair {
                    meta.referrers = want;
                    let new = encode(format!("blob {digest}"), &meta)?;
                    let _ = self.blobs.compare_and_swap(&k, Some(&v), Some(new))?;
                }
            }
        }
        // Entries whose blob has no record.
        let mut missing: Vec<_> = expected.into_iter().collect();
        missing.sort_by_key(|(d, _)| *d);
        for (digest, (size, mut referrers)) in missing {
            check.unrecorded_blobs += 1;
            note(
                &mut check,
                format!(
                    "blob {digest} has no record but {} entries point at it",
                    referrers.len()
                ),
            );
            if repair {
                referrers.sort();
                let meta = BlobMeta {
                    size,
                    referrers,
                    last_access_ms: now_ms(),
                };
                let new = encode(format!("blob {digest}"), &meta)?;
                let _ = self
                    .blobs
                    .compare_and_swap(digest.as_bytes(), None::<&[u8]>, Some(new))?;
            }
        }
        // Usage counters against the entries' sizes.
        let mut counters: HashMap<Vec<u8>, u64> = HashMap::new();
        for item in self.usage.iter() {
            let (k, v) = item?;
            counters.insert(k.to_vec(), decode_u64(&v));
        }
        let mut remotes: Vec<&Vec<u8>> = usage.keys().chain(counters.keys()).collect();
        remotes.sort();
        remotes.dedup();
        for r in remotes {
            let (want, have) = (
                usage.get(r).copied().unwrap_or(0),
                counters.get(r).copied().unwrap_or(0),
            );
            if want != have {
                check.bad_usage += 1;
                note(
                    &mut check,
                    format!(
                        "remote {}: its size counter says {have} bytes, its entries total {want}",
                        String::from_utf8_lossy(r)
                    ),
                );
            }
        }
        // Negative-entry records against the negative entries.
        for item in self.negatives.iter() {
            let (k, v) = item?;
            if negatives.remove(&k[..]).is_some() {
                continue;
            }
            check.bad_references += 1;
            note(
                &mut check,
                format!(
                    "negative-entry record {} has no such entry",
                    show_key(&k[8.min(k.len())..])
                ),
            );
            if repair {
                self.remove_record_if_unchanged(&self.negatives, &k, &v)?;
            }
        }
        let mut missing: Vec<_> = negatives.into_iter().collect();
        missing.sort();
        for (k, cost) in missing {
            check.bad_references += 1;
            note(
                &mut check,
                format!("negative entry {} has no record", show_key(&k[8..])),
            );
            if repair {
                self.negatives.insert(k, cost.to_be_bytes().to_vec())?;
            }
        }
        // Plugin key-value records.
        for item in self.kv.iter() {
            let (k, v) = item?;
            if v.len() < 8 {
                check.corrupt_records += 1;
                note(
                    &mut check,
                    format!("corrupt kv {}: value shorter than 8 bytes", show_key(&k)),
                );
                if repair {
                    self.remove_record_if_unchanged(&self.kv, &k, &v)?;
                }
            }
        }
        if repair {
            self.rescan()?;
            self.rebuild_usage()?;
            self.db.flush()?;
        }
        Ok(check)
    }
}

impl SledMetaStore {
    fn remove_record_if_unchanged(
        &self,
        tree: &Tree,
        k: &[u8],
        v: &[u8],
    ) -> Result<(), StoreError> {
        let _ = tree.compare_and_swap(k, Some(v), None::<&[u8]>)?;
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
    use super::*;
    use crate::store::EntryClass;

    fn entry(blob: Digest, size: u64, class: EntryClass) -> Entry {
        Entry {
            content_type: Some("application/octet-stream".into()),
            headers: vec![("x-a".into(), "b".into())],
            ..Entry::test(blob, size, class)
        }
    }

    /// Open the index in `dir`. sled may release the file lock of a store
    /// just dropped from a background thread a moment later, so a reopen
    /// retries (bounded) while the lock is still held.
    fn open(dir: &Path) -> SledMetaStore {
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

    fn refs(m: &SledMetaStore, d: &Digest) -> Option<Vec<String>> {
        m.blob_meta(d).unwrap().map(|b| {
            let mut r = b.referrers;
            r.sort();
            r
        })
    }

    #[test]
    fn refcounts_and_total_size() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(m.total_size(), 0);

        assert!(
            m.put_entry("r", "k1", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            m.put_entry("r", "k2", &entry(a, 10, EntryClass::Immutable), true)
                .unwrap(),
            None
        );
        assert_eq!(
            m.put_entry("s", "k1", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap(),
            None
        );
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0k1", "r\0k2", "s\0k1"]);
        assert_eq!(m.total_size(), 10, "shared blob counted once");

        // Replacing k1 with another blob moves the reference.
        let prev = m
            .put_entry("r", "k1", &entry(b, 5, EntryClass::Mutable), false)
            .unwrap();
        assert_eq!(prev.unwrap().blob, a);
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0k2", "s\0k1"]);
        assert_eq!(refs(&m, &b).unwrap(), vec!["r\0k1"]);
        assert_eq!(m.total_size(), 15);
        // Re-putting the same blob does not duplicate.
        m.put_entry("r", "k1", &entry(b, 5, EntryClass::Mutable), false)
            .unwrap();
        assert_eq!(refs(&m, &b).unwrap(), vec!["r\0k1"]);

        assert_eq!(m.remove_entry("r", "k2", true).unwrap().unwrap().blob, a);
        assert!(m.remove_entry("r", "k2", false).unwrap().is_none());
        assert_eq!(m.remove_all(Some("s")).unwrap(), 1);
        assert_eq!(
            refs(&m, &a).unwrap(),
            Vec::<String>::new(),
            "record stays until collected"
        );
        assert_eq!(m.total_size(), 15);
        assert!(m.get_entry("s", "k1").unwrap().is_none());

        assert_eq!(m.unreferenced_blobs().unwrap(), vec![a]);
        assert!(m.blob_meta(&a).unwrap().is_none());
        assert_eq!(m.total_size(), 5);
        assert!(m.unreferenced_blobs().unwrap().is_empty());

        // The empty blob is not tracked.
        m.put_entry(
            "r",
            "404",
            &entry(Digest::EMPTY, 0, EntryClass::NotFound),
            false,
        )
        .unwrap();
        assert!(m.blob_meta(&Digest::EMPTY).unwrap().is_none());
        // A negative entry counts its index bytes, not a blob.
        let neg = m.total_size() - 5;
        assert!(neg > 0);

        // update_entry refreshes fields and moves references when the blob changes.
        let upd = m
            .update_entry("r", "k1", &|e| {
                e.expires_at_ms = Some(99);
            })
            .unwrap()
            .unwrap();
        assert_eq!(upd.expires_at_ms, Some(99));
        assert_eq!(
            m.get_entry("r", "k1").unwrap().unwrap().expires_at_ms,
            Some(99)
        );
        m.update_entry("r", "k1", &|e| {
            e.blob = a;
            e.size = 10;
        })
        .unwrap();
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0k1"]);
        assert_eq!(refs(&m, &b).unwrap(), Vec::<String>::new());
        assert_eq!(m.total_size(), 15 + neg);
        assert!(m.update_entry("r", "nope", &|_| {}).unwrap().is_none());

        assert_eq!(m.remove_all(None).unwrap(), 2);
        let mut gone = m.unreferenced_blobs().unwrap();
        gone.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(gone, want);
        assert_eq!(m.total_size(), 0);
        assert!(m.check_index(false).unwrap().is_clean());
    }

    #[test]
    fn concurrent_puts_keep_references_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let m = std::sync::Arc::new(open(dir.path()));
        let blobs: Vec<Digest> = (0..5u8).map(|i| Digest::of(&[i])).collect();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let m = m.clone();
                let blobs = blobs.clone();
                std::thread::spawn(move || {
                    for i in 0..50usize {
                        let d = blobs[(i + t) % blobs.len()];
                        let key = format!("k{}", i % 10);
                        m.put_entry("r", &key, &entry(d, 100, EntryClass::Immutable), false)
                            .unwrap();
                        if i % 7 == 0 {
                            m.remove_entry("r", &key, false).unwrap();
                        }
                        m.touch(&d);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(m.check_index(false).unwrap().is_clean());
        let live: HashSet<Digest> = m
            .all_entries()
            .unwrap()
            .into_iter()
            .map(|(_, _, e)| e.blob)
            .collect();
        let gone = m.unreferenced_blobs().unwrap();
        assert_eq!(live.len() + gone.len(), blobs.len());
        assert_eq!(m.total_size(), 100 * live.len() as u64);
        m.persist_access().unwrap();
    }

    /// The sum of `remote`'s entry sizes, from a scan.
    fn summed(m: &SledMetaStore, remote: &str) -> u64 {
        m.list_entries(remote, "", None, usize::MAX)
            .unwrap()
            .iter()
            .map(|(_, e)| e.size)
            .sum()
    }

    #[test]
    fn usage_counters_follow_every_change_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        {
            let m = open(dir.path());
            m.put_entry("r", "k1", &entry(a, 10, EntryClass::Hosted), false)
                .unwrap();
            m.put_entry("r", "k2", &entry(a, 10, EntryClass::Hosted), false)
                .unwrap();
            m.put_entry("s", "k1", &entry(b, 7, EntryClass::Immutable), false)
                .unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 20, "each entry counts");
            m.put_entry("r", "k1", &entry(b, 7, EntryClass::Hosted), false)
                .unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 17);
            m.update_entry("r", "k1", &|e| {
                e.blob = c;
                e.size = 3;
            })
            .unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 13);
            m.remove_entry("r", "k2", false).unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 3);
            m.put_entry("r", "k3", &entry(b, 7, EntryClass::Immutable), false)
                .unwrap();
            // Evicting b takes s/k1 and r/k3 out of both counters.
            m.evict_blob(&b).unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 3);
            assert_eq!(m.remote_size("s").unwrap(), 0);
            m.put_entry("s", "k2", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap();
            assert_eq!(m.remove_all(Some("s")).unwrap(), 1);
            assert_eq!(m.remote_size("s").unwrap(), 0);
            for r in ["r", "s"] {
                assert_eq!(m.remote_size(r).unwrap(), summed(&m, r), "{r}");
            }
            assert!(m.check_index(false).unwrap().is_clean());
        }
        let m = open(dir.path());
        assert_eq!(m.remote_size("r").unwrap(), 3);
        assert!(m.check_index(false).unwrap().is_clean());
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

    /// Concurrent checked puts: of writers racing for one new key exactly
    /// one stores; of uploads racing for a quota the total never exceeds
    /// it. Refused blobs are recorded unreferenced for garbage collection.
    #[test]
    fn checked_puts_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let m = std::sync::Arc::new(open(dir.path()));
        let run = |key: fn(usize) -> String, check: PutCheck| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let m = m.clone();
                    std::thread::spawn(move || {
                        let e = entry(Digest::of(&[t as u8, 9]), 100, EntryClass::Hosted);
                        m.put_entry_checked("h", &key(t), &e, check, false).unwrap()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        };
        let once = PutCheck {
            if_absent: true,
            quota: None,
        };
        let out = run(|_| "k".into(), once);
        let stored = out
            .iter()
            .filter(|o| **o == PutOutcome::Stored(None))
            .count();
        assert_eq!(stored, 1, "{out:?}");
        assert_eq!(out.iter().filter(|o| **o == PutOutcome::Exists).count(), 7);
        let losers = m.unreferenced_blobs().unwrap();
        assert_eq!(losers.len(), 7, "refused blobs are collectable");
        assert_eq!(m.total_size(), 100);

        let quota = PutCheck {
            if_absent: false,
            quota: Some(350),
        };
        let out = run(|t| format!("q{t}"), quota);
        let stored = out
            .iter()
            .filter(|o| matches!(o, PutOutcome::Stored(_)))
            .count();
        // 100 bytes are held by "k": two more fit.
        assert_eq!(stored, 2, "{out:?}");
        assert_eq!(m.remote_size("h").unwrap(), 300);
        assert_eq!(summed(&m, "h"), 300);
        assert!(m.check_index(false).unwrap().is_clean());
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
    fn list_entries_prefix_after_limit() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let e = entry(Digest::of(b"x"), 1, EntryClass::Immutable);
        for k in ["tags/a", "tags/b", "tags/c", "blobs/x", "tagz"] {
            m.put_entry("r", k, &e, false).unwrap();
        }
        m.put_entry("r2", "tags/z", &e, false).unwrap();
        let keys = |v: Vec<(String, Entry)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(m.list_entries("r", "tags/", None, 10).unwrap()),
            ["tags/a", "tags/b", "tags/c"]
        );
        assert_eq!(
            keys(m.list_entries("r", "tags/", Some("tags/a"), 10).unwrap()),
            ["tags/b", "tags/c"]
        );
        assert_eq!(
            keys(m.list_entries("r", "tags/", None, 2).unwrap()),
            ["tags/a", "tags/b"]
        );
        assert_eq!(
            keys(m.list_entries("r", "tags/", Some("a"), 10).unwrap()).len(),
            3
        );
        assert!(
            m.list_entries("r", "tags/", Some("tags/c"), 10)
                .unwrap()
                .is_empty()
        );
        assert!(m.list_entries("r", "tags/", None, 0).unwrap().is_empty());
        assert_eq!(m.list_entries("r", "", None, 100).unwrap().len(), 5);
        assert_eq!(m.all_entries().unwrap().len(), 6);
    }

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

    #[test]
    fn kv_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        m.kv_set("docker", "token", b"abc", 0).unwrap();
        assert_eq!(m.kv_get("docker", "token").unwrap().unwrap(), b"abc");
        m.kv_set("docker", "t2", b"x", 3600).unwrap();
        assert_eq!(m.kv_get("docker", "t2").unwrap().unwrap(), b"x");
        assert!(m.kv_get("other", "token").unwrap().is_none());
        m.kv_set_at("docker", "old", b"y", now_ms() - 1).unwrap();
        assert!(m.kv_get("docker", "old").unwrap().is_none());
        assert!(
            m.kv.get(join_key("docker", "old")).unwrap().is_none(),
            "lazily deleted"
        );
        m.kv_delete("docker", "token").unwrap();
        assert!(m.kv_get("docker", "token").unwrap().is_none());
        m.kv.insert(join_key("docker", "bad"), &b"123"[..]).unwrap();
        assert!(matches!(
            m.kv_get("docker", "bad"),
            Err(StoreError::Corrupt { .. })
        ));
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

    #[test]
    fn corrupt_records_are_errors_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        m.put_entry("r", "good", &entry(a, 7, EntryClass::Immutable), false)
            .unwrap();
        m.entries
            .insert(join_key("r", "bad"), &b"{not json"[..])
            .unwrap();
        m.blobs.insert(b.as_bytes(), &b"garbage"[..]).unwrap();
        m.blobs.insert(&b"short"[..], &b"{}"[..]).unwrap();
        // A dangling referrer and an entry without a blob record.
        let c = Digest::of(b"c");
        m.entries
            .insert(
                join_key("r", "norecord"),
                serde_json::to_vec(&entry(c, 4, EntryClass::Immutable)).unwrap(),
            )
            .unwrap();
        m.blobs
            .insert(
                a.as_bytes(),
                serde_json::to_vec(&BlobMeta {
                    size: 7,
                    referrers: vec!["r\0good".into(), "r\0ghost".into()],
                    last_access_ms: 0,
                })
                .unwrap(),
            )
            .unwrap();

        match m.get_entry("r", "bad") {
            Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, "entry r/bad"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.blob_meta(&b), Err(StoreError::Corrupt { .. })));
        assert_eq!(m.all_entries().unwrap().len(), 2);
        assert_eq!(m.list_entries("r", "", None, 10).unwrap().len(), 2);
        assert_eq!(m.lru_blobs(10).unwrap().len(), 1);

        let check = m.check_index(false).unwrap();
        assert_eq!(check.corrupt_records, 3, "{check:?}");
        assert_eq!(check.bad_references, 1, "{check:?}");
        assert_eq!(check.unrecorded_blobs, 1, "{check:?}");
        assert!(!check.is_clean());
        let again = m.check_index(true).unwrap();
        assert_eq!(again.corrupt_records, 3);
        let clean = m.check_index(false).unwrap();
        assert!(clean.is_clean(), "{clean:?}");
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0good"]);
        assert_eq!(refs(&m, &c).unwrap(), vec!["r\0norecord"]);
        assert_eq!(m.total_size(), 11);

        // Replacing a corrupt entry works and heals it.
        m.entries
            .insert(join_key("r", "bad"), &b"{not json"[..])
            .unwrap();
        assert!(
            m.put_entry("r", "bad", &entry(a, 7, EntryClass::Immutable), false)
                .unwrap()
                .is_none()
        );
        assert!(m.get_entry("r", "bad").unwrap().is_some());
        m.entries
            .insert(join_key("r", "bad"), &b"{not json"[..])
            .unwrap();
        assert!(m.remove_entry("r", "bad", false).unwrap().is_none());
        assert!(matches!(
            m.update_entry("r", "good", &|_| {}).map(|e| e.is_some()),
            Ok(true)
        ));
    }

    fn negative(expires_at_ms: u64) -> Entry {
        Entry {
            status: 404,
            expires_at_ms: Some(expires_at_ms),
            ttl_ms: Some(60_000),
            ..Entry::test(Digest::EMPTY, 0, EntryClass::NotFound)
        }
    }

    /// Cached 404s count toward the total (they have no blob), expire by a
    /// range scan, follow their entry through updates, replacements and
    /// removals, and survive a clean close and a crash's rescan.
    #[test]
    fn negative_entries_are_counted_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        m.put_entry("r", "blob", &entry(a, 10, EntryClass::Immutable), false)
            .unwrap();
        assert_eq!(m.total_size(), 10);
        for i in 0..10u64 {
            m.put_entry("r", &format!("missing-{i}"), &negative(1_000 + i), false)
                .unwrap();
        }
        let per = (m.total_size() - 10) / 10;
        assert!(per > 100, "a negative entry costs {per} bytes");
        // Nothing expires before its time.
        assert!(m.remove_negatives(1_000, usize::MAX).unwrap().is_empty());
        // Refreshed (revalidated): its record moves with the expiry.
        m.update_entry("r", "missing-0", &|e| e.expires_at_ms = Some(5_000))
            .unwrap();
        // Replaced by content, or removed: no record left behind.
        m.put_entry(
            "r",
            "missing-1",
            &entry(a, 10, EntryClass::Immutable),
            false,
        )
        .unwrap();
        m.remove_entry("r", "missing-2", false).unwrap();
        assert_eq!(m.total_size(), 10 + 8 * per);
        let removed = m.remove_negatives(1_005, 2).unwrap();
        assert_eq!(removed, vec!["r\0missing-3", "r\0missing-4"]);
        let removed = m.remove_negatives(2_000, usize::MAX).unwrap();
        assert_eq!(removed.len(), 5, "{removed:?}");
        assert!(m.get_entry("r", "missing-9").unwrap().is_none());
        assert!(m.get_entry("r", "missing-0").unwrap().is_some());
        assert_eq!(m.total_size(), 10 + per);
        assert!(m.check_index(false).unwrap().is_clean());
        drop(m);
        // Clean close, then a crash (no summary): the same total.
        let m = open(dir.path());
        assert_eq!(m.total_size(), 10 + per);
        m.rescan().unwrap();
        assert_eq!(m.total_size(), 10 + per);
        // Evicting takes them whatever their expiry.
        assert_eq!(
            m.remove_negatives(u64::MAX, 10).unwrap(),
            vec!["r\0missing-0"]
        );
        assert_eq!(m.total_size(), 10);
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
}
