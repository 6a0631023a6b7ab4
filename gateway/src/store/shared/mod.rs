//! The shared tier: an S3-compatible bucket under the local store that
//! every node of a cluster reads and writes (`[shared]`,
//! docs/cluster.md). The bucket is the source of truth; a node's sled
//! index and blob files are a cache of it that the node may lose.
//!
//! This module is the bucket as the store sees it: records and blobs by
//! name ([`layout`]), the client ([`bucket`]), the health the last calls
//! showed. How the local tier reads through to it and writes through to
//! it is `store/shared/through.rs`; nothing above `store/` knows it is
//! there.

mod access;
mod bucket;
mod check;
mod flush;
mod gc;
pub mod layout;
mod lease;
mod scan;
pub(super) mod through;
mod usage;

pub use bucket::Https;
pub use check::SharedCheck;
pub use flush::Flush;
pub use lease::{Claim, LeaseGuard};

use super::{BlobRead, Digest, Entry, EntryId, StoreError};
use crate::config::SharedConfig;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use layout::Record;
use object_store::{
    ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Blobs up to this size go up in one request; larger ones as a multipart
/// upload in parts of this size (S3 wants at least 5 MiB per part).
const PART: u64 = 8 * 1024 * 1024;

/// While degraded, how often a call may try the bucket ([`SharedTier::gate`]).
const PROBE_EVERY_MS: u64 = 1000;

/// Compare-and-swap attempts of a cached record before another node's
/// writes are left to stand.
const CAS_ATTEMPTS: usize = 4;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// What a write of a record does when one is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordWrite {
    /// Replace it.
    Overwrite,
    /// Keep it and report [`Written::Exists`] (write-once hosted keys).
    Create,
}

/// What the bucket holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shared {
    /// No record: never shared (or lost).
    Absent,
    /// A tombstone: deleted through some node.
    Deleted,
    /// The entry.
    Found(Box<Entry>),
}

impl Shared {
    /// The entry, when there is one.
    pub fn entry(self) -> Option<Entry> {
        match self {
            Shared::Found(e) => Some(*e),
            _ => None,
        }
    }
}

/// The outcome of a record write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The record is in the bucket.
    Stored,
    /// [`RecordWrite::Create`] found one there; nothing changed.
    Exists,
}

/// Counters of the shared tier since start (`/health`, `/metrics`).
#[derive(Debug, Default)]
pub struct SharedStats {
    /// Records found in the bucket after a local miss.
    pub record_hits: AtomicU64,
    /// Records looked for and not found.
    pub record_misses: AtomicU64,
    /// Records written.
    pub record_writes: AtomicU64,
    /// Blobs copied from the bucket to the local tier.
    pub blob_downloads: AtomicU64,
    /// Blobs written to the bucket.
    pub blob_uploads: AtomicU64,
    /// Bucket calls that failed.
    pub errors: AtomicU64,
    /// Entries served or stored without the bucket because it failed.
    pub unshared: AtomicU64,
    /// Fetch leases taken over from a node that let them expire.
    pub lease_takeovers: AtomicU64,
    /// Fills streamed from the node holding their lease.
    pub peer_fills: AtomicU64,
    /// Fresh hits answered from the memory tier.
    pub hits_memory: AtomicU64,
    /// Fresh hits answered from the local tier (sled and files).
    pub hits_local: AtomicU64,
    /// Fresh hits answered after adopting the bucket's entry.
    pub hits_shared: AtomicU64,
    /// Collection rounds this node ran.
    pub gc_rounds: AtomicU64,
    /// Records the collection evicted beyond `max_size`.
    pub gc_records_evicted: AtomicU64,
    /// Blobs the collection deleted.
    pub gc_blobs_deleted: AtomicU64,
    /// Their bytes.
    pub gc_bytes_freed: AtomicU64,
}

/// The bucket of a cluster, as the store uses it.
pub struct SharedTier {
    bucket: Arc<dyn ObjectStore>,
    node: String,
    /// Where it is, for messages (`s3://bucket/prefix`).
    url: String,
    degraded: AtomicBool,
    /// When the last bucket call failed (unix milliseconds).
    failed_at_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Counters.
    pub stats: SharedStats,
    /// One download per blob at a time on this node.
    flights: Mutex<HashMap<Digest, Weak<tokio::sync::Mutex<()>>>>,
    /// This node's base URL for the others (`advertise`, or the bound
    /// listener's address).
    advertise: std::sync::OnceLock<String>,
    /// How long a fetch lease lasts unless renewed.
    lease_ttl: std::time::Duration,
    /// Longest wait for a bucket answer's head, or for its body's next
    /// bytes.
    timeout: std::time::Duration,
    /// What nodes show each other on the internal route.
    cluster_token: String,
    /// The runtime background shares run on (they may be started from an
    /// adapter's lane thread, outside it).
    runtime: tokio::runtime::Handle,
    /// Entries a failing bucket left on this node only, to share once it
    /// answers again (at most [`MAX_UNSHARED`]).
    unshared: Mutex<std::collections::HashSet<EntryId>>,
    /// Flush markers already applied (path and ETag).
    flushes_seen: Mutex<std::collections::HashSet<(String, Option<String>)>>,
    /// `max_size`: the bucket's size limit.
    max_size: Option<u64>,
    /// `gc_every`.
    gc_every: std::time::Duration,
    /// `gc_grace`.
    gc_grace: std::time::Duration,
    /// When this node may try the next collection round (unix ms).
    next_gc_ms: AtomicU64,
    /// Whether a collection round runs on this node.
    collecting: AtomicBool,
    /// Records the last census read, by path and ETag (`scan.rs`).
    record_memo: tokio::sync::Mutex<scan::RecordMemo>,
    /// Blob access times for the next batch (`access.rs`).
    access: Mutex<HashMap<Digest, u64>>,
}

/// Most entries remembered for sharing after an outage; beyond, they stay
/// on their node until fetched again (counted all the same).
const MAX_UNSHARED: usize = 100_000;

/// A snapshot of the shared tier's state for `/health`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedStatus {
    /// `s3://bucket/prefix`.
    pub url: String,
    /// This node's name.
    pub node: String,
    /// `"ok"`, or `"degraded"` when the last bucket call failed.
    pub state: &'static str,
    /// The last failure (also after the tier recovered), with when it
    /// happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl SharedTier {
    /// The tier for `cfg`, its requests sent through `https`. Nothing is
    /// sent yet: a bucket that is down makes the tier degraded, not the
    /// gateway fail to start. Call it inside the runtime its background
    /// work is to run on.
    pub fn new(cfg: &SharedConfig, https: Https) -> Result<SharedTier, String> {
        let url = if cfg.prefix.is_empty() {
            format!("s3://{}", cfg.bucket)
        } else {
            format!("s3://{}/{}", cfg.bucket, cfg.prefix)
        };
        Ok(SharedTier {
            bucket: bucket::connect(cfg, https)?,
            node: cfg.node.clone(),
            degraded: AtomicBool::new(false),
            failed_at_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stats: SharedStats::default(),
            flights: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            unshared: Mutex::default(),
            flushes_seen: Mutex::default(),
            advertise: match cfg.advertise.clone() {
                Some(a) => std::sync::OnceLock::from(a),
                None => std::sync::OnceLock::new(),
            },
            lease_ttl: cfg.lease_ttl,
            timeout: cfg.timeout,
            max_size: cfg.max_size,
            gc_every: cfg.gc_every,
            gc_grace: cfg.gc_grace,
            next_gc_ms: AtomicU64::new(0),
            collecting: AtomicBool::new(false),
            record_memo: tokio::sync::Mutex::default(),
            access: Mutex::default(),
            cluster_token: match &cfg.cluster_secret {
                Some(s) => s.0.clone(),
                None => {
                    use sha2::Digest as _;
                    let mut h = sha2::Sha256::new();
                    h.update(b"artgate cluster token\0");
                    h.update(cfg.secret_access_key.0.as_bytes());
                    h.update(b"\0");
                    h.update(url.as_bytes());
                    hex::encode(h.finalize())
                }
            },
            url,
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The state for `/health`.
    pub fn status(&self) -> SharedStatus {
        let degraded = self.degraded.load(Ordering::Relaxed);
        SharedStatus {
            url: self.url.clone(),
            node: self.node.clone(),
            state: if degraded { "degraded" } else { "ok" },
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Whether the last bucket call failed.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// While the bucket fails, at most one call a second tries it (a
    /// bucket that does not answer would otherwise cost every request its
    /// `timeout`, several times); the others fail at once.
    fn gate(
        &self,
        op: &'static str,
        target: &(dyn std::fmt::Display + Sync),
    ) -> Result<(), StoreError> {
        if !self.degraded.load(Ordering::Relaxed) {
            return Ok(());
        }
        let last = self.failed_at_ms.load(Ordering::Relaxed);
        let now = crate::store::now_ms();
        if now.saturating_sub(last) >= PROBE_EVERY_MS
            && self
                .failed_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Ok(()); // this call probes the bucket
        }
        Err(StoreError::Shared {
            op,
            target: target.to_string(),
            message: "the bucket failed less than a second ago; not asked again yet".into(),
        })
    }

    /// Note a call's outcome: a success clears the degraded state, a
    /// failure sets it and becomes a [`StoreError::Shared`].
    fn outcome<T>(
        &self,
        op: &'static str,
        target: &(dyn std::fmt::Display + Sync),
        r: object_store::Result<T>,
    ) -> Result<T, StoreError> {
        match r {
            Ok(v) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(bucket = %self.url, "the shared tier answers again");
                }
                Ok(v)
            }
            Err(e) => Err(self.failed(op, target, &e)),
        }
    }

    /// Record a failed call.
    fn failed(
        &self,
        op: &'static str,
        target: &(dyn std::fmt::Display + Sync),
        e: &(dyn std::fmt::Display + Sync),
    ) -> StoreError {
        let message = e.to_string();
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.failed_at_ms
            .store(crate::store::now_ms(), Ordering::Relaxed);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(bucket = %self.url, op, error = %message, "the shared tier failed; serving from the local tier");
        }
        if let Ok(mut last) = self.last_error.lock() {
            let at = httpdate::fmt_http_date(std::time::SystemTime::now());
            *last = Some(format!("{at}: {op} {target}: {message}"));
        }
        StoreError::Shared {
            op,
            target: target.to_string(),
            message,
        }
    }

    /// The record of `id` in the bucket with its ETag. An unreadable
    /// record is an error.
    async fn lookup(&self, id: &EntryId) -> Result<Option<(Record, Option<String>)>, StoreError> {
        self.gate("read record", id)?;
        let path = layout::record(id);
        let Some((bytes, e_tag)) = self.get_small("read record", id, &path).await? else {
            return Ok(None);
        };
        let record = Record::decode(&bytes).map_err(|reason| StoreError::Corrupt {
            id: format!("shared record {path}"),
            reason,
        })?;
        Ok(Some((record, e_tag)))
    }

    /// The small object at `path` (a record, a counter, a marker) and its
    /// ETag; `None` when absent. `op` and `target` name it in errors.
    pub(super) async fn get_small(
        &self,
        op: &'static str,
        target: &(dyn std::fmt::Display + Sync),
        path: &object_store::path::Path,
    ) -> Result<Option<(Bytes, Option<String>)>, StoreError> {
        let got = match self.bucket.get(path).await {
            Err(object_store::Error::NotFound { .. }) => return self.outcome(op, target, Ok(None)),
            r => self.outcome(op, target, r)?,
        };
        let e_tag = got.meta.e_tag.clone();
        let bytes = self.outcome(op, target, self.body(got).await)?;
        Ok(Some((bytes, e_tag)))
    }

    /// A small answer's whole body, within `timeout`.
    async fn body(&self, got: object_store::GetResult) -> object_store::Result<Bytes> {
        match tokio::time::timeout(self.timeout, got.bytes()).await {
            Ok(r) => r,
            Err(_) => Err(object_store::Error::Generic {
                store: "S3",
                source: format!("the body did not arrive within {:?}", self.timeout).into(),
            }),
        }
    }

    /// What the bucket says of `id`.
    pub async fn record(&self, id: &EntryId) -> Result<Shared, StoreError> {
        let found = match self.lookup(id).await? {
            None => Shared::Absent,
            Some((Record { entry: None, .. }, _)) => Shared::Deleted,
            Some((Record { entry: Some(e), .. }, _)) => Shared::Found(Box::new(e)),
        };
        let counter = match found {
            Shared::Found(_) => &self.stats.record_hits,
            _ => &self.stats.record_misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(found)
    }

    /// Write the record of `id` (`None`: a tombstone). A
    /// [`RecordWrite::Create`] succeeds over a tombstone only when nobody
    /// replaced it meanwhile (`If-Match` on its ETag).
    pub async fn put_record(
        &self,
        id: &EntryId,
        entry: Option<&Entry>,
        how: RecordWrite,
    ) -> Result<Written, StoreError> {
        self.gate("write record", id)?;
        let path = layout::record(id);
        let payload = PutPayload::from(Record::encode(&self.node, entry));
        let mode = match how {
            RecordWrite::Create => PutMode::Create,
            RecordWrite::Overwrite => PutMode::Overwrite,
        };
        let opts = |mode| PutOptions {
            mode,
            ..PutOptions::default()
        };
        let r = match self
            .bucket
            .put_opts(&path, payload.clone(), opts(mode))
            .await
        {
            Err(object_store::Error::AlreadyExists { .. }) if how == RecordWrite::Create => {
                let (found, e_tag) = match self.lookup(id).await? {
                    Some((Record { entry, .. }, e_tag)) => (entry, e_tag),
                    None => (None, None),
                };
                match (&found, entry) {
                    // Ours already: a retried create whose first attempt
                    // landed, or this entry shared by a read meanwhile.
                    (Some(there), Some(mine))
                        if there.blob == mine.blob && there.size == mine.size =>
                    {
                        return self.outcome("write record", id, Ok(Written::Stored));
                    }
                    (None, _) if e_tag.is_some() => {}
                    _ => return self.outcome("write record", id, Ok(Written::Exists)),
                }
                let over = PutMode::Update(object_store::UpdateVersion {
                    e_tag,
                    version: None,
                });
                match self.bucket.put_opts(&path, payload, opts(over)).await {
                    Err(
                        object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. },
                    ) => return self.outcome("write record", id, Ok(Written::Exists)),
                    r => r,
                }
            }
            r => r,
        };
        self.outcome("write record", id, r)?;
        self.stats.record_writes.fetch_add(1, Ordering::Relaxed);
        Ok(Written::Stored)
    }

    /// Write the record of a cached entry unless the bucket holds a later
    /// copy (a later `stored_at_ms`: another node revalidated or fetched
    /// it after this one): read the record, and replace it with `If-Match`
    /// on its ETag (or create it); a write that loses the race looks
    /// again. [`Written::Exists`] when the bucket's copy stands.
    pub async fn put_record_if_newer(
        &self,
        id: &EntryId,
        entry: &Entry,
    ) -> Result<Written, StoreError> {
        self.gate("write record", id)?;
        let entry = Some(entry);
        let path = layout::record(id);
        let payload = PutPayload::from(Record::encode(&self.node, entry));
        let mine = entry.map_or(0, |e| e.stored_at_ms);
        for _ in 0..CAS_ATTEMPTS {
            let mode = match self.lookup(id).await? {
                Some((
                    Record {
                        entry: Some(there), ..
                    },
                    _,
                )) if there.stored_at_ms > mine => {
                    return Ok(Written::Exists);
                }
                Some((_, Some(e_tag))) => PutMode::Update(object_store::UpdateVersion {
                    e_tag: Some(e_tag),
                    version: None,
                }),
                Some((_, None)) => PutMode::Overwrite,
                None => PutMode::Create,
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self.bucket.put_opts(&path, payload.clone(), opts).await {
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => continue,
                r => {
                    self.outcome("write record", id, r)?;
                    self.stats.record_writes.fetch_add(1, Ordering::Relaxed);
                    return Ok(Written::Stored);
                }
            }
        }
        // Others kept writing it: theirs stands.
        Ok(Written::Exists)
    }

    /// Mark `id` deleted: a tombstone replaces its record.
    pub async fn delete_record(&self, id: &EntryId) -> Result<(), StoreError> {
        self.put_record(id, None, RecordWrite::Overwrite)
            .await
            .map(|_| ())
    }

    /// Blob `digest` as the bucket lists it; `None` when absent.
    pub async fn blob_meta(
        &self,
        digest: &Digest,
    ) -> Result<Option<object_store::ObjectMeta>, StoreError> {
        self.gate("look for blob", digest)?;
        match self.bucket.head(&layout::blob(digest)).await {
            Err(object_store::Error::NotFound { .. }) => {
                self.outcome("look for blob", digest, Ok(None))
            }
            r => self.outcome("look for blob", digest, r.map(Some)),
        }
    }

    /// Copy the committed blob `data` (whose digest is `digest`) into the
    /// bucket unless it is there, before a record naming it is written. A
    /// large blob goes up in parts, and an upload that fails is aborted,
    /// so the bucket never holds part of a blob under its name. A blob
    /// already there is pinned when it is old (`gc.rs`), so that the
    /// collection spares it for the record about to name it.
    pub async fn upload(&self, digest: &Digest, data: Arc<dyn BlobRead>) -> Result<(), StoreError> {
        if let Some(meta) = self.blob_meta(digest).await? {
            return self.pin_if_old(digest, &meta).await;
        }
        let path = layout::blob(digest);
        let len = data.len();
        if len <= PART {
            let bytes = read_part(&data, 0, len)
                .await
                .map_err(|e| self.failed("read blob", digest, &e))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .bucket
                .put_opts(&path, PutPayload::from(bytes), opts)
                .await
            {
                Err(object_store::Error::AlreadyExists { .. }) => {}
                r => {
                    self.outcome("write blob", digest, r)?;
                }
            }
        } else {
            let upload = self.bucket.put_multipart(&path).await;
            let mut upload = WriteMultipart::new_with_chunk_size(
                self.outcome("start blob upload", digest, upload)?,
                PART as usize,
            );
            let mut at = 0;
            while at < len {
                let n = PART.min(len - at);
                let part = match read_part(&data, at, n).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = upload.abort().await;
                        return Err(self.failed("read blob", digest, &e));
                    }
                };
                if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    let _ = upload.abort().await;
                    return Err(self.failed("write blob part", digest, &e));
                }
                upload.put(part);
                at += n;
            }
            self.outcome("finish blob upload", digest, upload.finish().await)?;
        }
        self.stats.blob_uploads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The bytes of blob `digest` as they arrive from the bucket; `None`
    /// when the bucket does not hold it.
    pub async fn download(
        &self,
        digest: &Digest,
    ) -> Result<Option<BoxStream<'static, Result<Bytes, StoreError>>>, StoreError> {
        self.gate("read blob", digest)?;
        let got = match self.bucket.get(&layout::blob(digest)).await {
            Err(object_store::Error::NotFound { .. }) => {
                return self.outcome("read blob", digest, Ok(None));
            }
            r => self.outcome("read blob", digest, r)?,
        };
        let d = *digest;
        Ok(Some(
            got.into_stream()
                .map(move |r| {
                    r.map_err(|e| StoreError::Shared {
                        op: "read blob",
                        target: d.to_string(),
                        message: e.to_string(),
                    })
                })
                .boxed(),
        ))
    }

    /// Remember `id` for sharing once the bucket answers again.
    pub fn note_unshared(&self, id: &EntryId) {
        self.stats.unshared.fetch_add(1, Ordering::Relaxed);
        let mut set = self.unshared.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() < MAX_UNSHARED {
            set.insert(id.clone());
        }
    }

    /// Up to `n` remembered entries, forgotten until noted again.
    pub fn take_unshared(&self, n: usize) -> Vec<EntryId> {
        let mut set = self.unshared.lock().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<EntryId> = set.iter().take(n).cloned().collect();
        for id in &ids {
            set.remove(id);
        }
        ids
    }

    /// The lock of one download of `digest` on this node: the second
    /// caller waits for the first and then finds the blob local.
    pub async fn flight(&self, digest: &Digest) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, w| w.strong_count() > 0);
            match map.get(digest).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(*digest, Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }
}

/// `len` bytes of `data` from `at`, read on the blocking pool.
async fn read_part(data: &Arc<dyn BlobRead>, at: u64, len: u64) -> Result<Bytes, std::io::Error> {
    let data = data.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len as usize];
        let mut filled = 0;
        while filled < buf.len() {
            let n = data.read_at(&mut buf[filled..], at + filled as u64)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than its record",
                ));
            }
            filled += n;
        }
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}
