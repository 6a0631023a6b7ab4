//! The store as the request path uses it: async methods over a stack of
//! tiers, each method running its blocking work on tokio's blocking pool
//! itself, so that no caller outside `store/` calls `spawn_blocking`.
//!
//! The tiers, read top down and written through:
//!
//! 1. **memory** — recently read index entries ([`CachedMetaStore`], behind
//!    [`Store::meta`]) and the bytes of small, recently served blobs
//!    ([`HotBlobs`]). A hit served from here runs no blocking task and
//!    makes no system call ([`Store::cached`], the first half of
//!    [`Store::fresh`]).
//! 2. **local** — the sled index and the content-addressed blob files
//!    ([`MetaStore`], [`BlobStore`]); one blocking task per operation.
//!
//! 3. **shared** (cluster mode, `[shared]`) — a bucket every node reads
//!    and writes ([`SharedTier`]): the local tier reads through to it on a
//!    miss and writes through to it (`store/shared/through.rs`); callers
//!    keep calling the same methods.
//!
//! [`CachedMetaStore`]: super::CachedMetaStore

use super::shared::through::Confirmed;
use super::{
    BlobRead, BlobRef, BlobStore, Digest, Entry, EntryClass, EntryId, HotBlobs, MetaStore,
    PutCheck, PutOutcome, SharedTier, Spool, StoreError,
};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The index, the blobs and the memory tier together (see the module
/// docs). Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The index, with its memory tier in front. The request path uses the
    /// methods of [`Store`]; background and offline work (eviction, fsck,
    /// the plugins' key-value store on their own threads) call it directly.
    pub meta: Arc<dyn MetaStore>,
    /// Blob content (see [`Store::meta`] for who calls it directly).
    pub blobs: Arc<dyn BlobStore>,
    /// Bytes of small, recently served blobs.
    pub hot: Arc<HotBlobs>,
    /// The bucket of a cluster (`[shared]`); `None` on a single node.
    pub shared: Option<Arc<SharedTier>>,
}

/// How a cached entry reaches a cluster's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// After the put, in the background (the clients have their bytes).
    Background,
    /// Before the put returns (a fill other nodes wait for: they read the
    /// bucket once its lease is given up).
    Now,
}

/// The content of a stored entry, ready to serve.
pub enum Content {
    /// A small blob's bytes, held in memory ([`HotBlobs`]).
    Memory(Bytes),
    /// An open blob, read in chunks as the client takes them.
    Blob(Arc<dyn BlobRead>),
}

impl Store {
    /// Run `f` on the blocking pool. A task that panicked or was cancelled
    /// at shutdown is a store failure like any other.
    pub(in crate::store) async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(f).await.map_err(|e| {
            StoreError::io(
                "run a storage task",
                "blocking pool",
                std::io::Error::other(e),
            )
        })?
    }

    /// The entry for `id` when the memory tier has it; never blocks.
    /// `None` says nothing about the index.
    pub fn cached(&self, id: &EntryId) -> Option<Arc<Entry>> {
        self.meta.cached_entry(id)
    }

    /// The entry for `id`: from memory when it is there, else from the
    /// index.
    pub async fn entry(&self, id: &EntryId) -> Result<Option<Arc<Entry>>, StoreError> {
        if let Some(e) = self.cached(id)
            && (self.shared.is_none() || e.class != EntryClass::Hosted)
        {
            return Ok(Some(e));
        }
        let (meta, rid) = (self.meta.clone(), id.clone());
        let local = Self::blocking(move || meta.get_shared(rid.remote(), rid.key())).await?;
        let Some(shared) = &self.shared else {
            return Ok(local);
        };
        if let Some(e) = &local {
            if e.class != EntryClass::Hosted {
                return Ok(local);
            }
            match self.confirm_hosted(shared, id, e).await? {
                Confirmed::Same => return Ok(local),
                Confirmed::Gone => return Ok(None),
                // Replaced through another node: its entry, or this one
                // while the bucket cannot give it.
                Confirmed::Changed => {
                    if !matches!(self.try_adopt(shared, id, &|_| true).await, Ok(true)) {
                        return Ok(local);
                    }
                }
            }
        } else if !self.try_adopt(shared, id, &|_| true).await? {
            // A failing bucket is an error here, not a miss: a hosted key
            // this node lacks is unknown, not absent (a fill's caller
            // treats the error as a miss and asks the upstream).
            return Ok(None);
        }
        let (meta, rid) = (self.meta.clone(), id.clone());
        Self::blocking(move || meta.get_shared(rid.remote(), rid.key())).await
    }

    /// An entry that `serves` accepts, when both it and its bytes are in
    /// the memory tier; never blocks.
    pub fn fresh_in_memory(
        &self,
        id: &EntryId,
        serves: impl Fn(&Entry) -> bool,
    ) -> Option<(Arc<Entry>, Bytes)> {
        let entry = self.cached(id).filter(|e| serves(e))?;
        let bytes = self.hot.get(&entry.blob)?;
        Some((entry, bytes))
    }

    /// An entry that `serves` accepts, with its content: the whole storage
    /// cost of a hit. When the entry and (for a small blob) its bytes are
    /// in memory, no blocking task runs at all; otherwise one does the
    /// index read, the check and the open (or, for a small blob, the whole
    /// read, which then stays in memory). `None` when absent, refused by
    /// `serves`, or when its blob is missing or unreadable (logged; the
    /// caller treats it as a miss and fetches it again).
    pub async fn fresh(
        &self,
        id: &EntryId,
        serves: impl Fn(&Entry) -> bool + Send + Sync + 'static,
    ) -> Result<Option<(Arc<Entry>, Content)>, StoreError> {
        if let Some(entry) = self.cached(id)
            && (self.shared.is_none() || entry.class != EntryClass::Hosted)
        {
            if !serves(&entry) {
                // Expired here; in a cluster another node may have
                // revalidated it.
                if self.shared.is_none() {
                    return Ok(None);
                }
            } else if let Some(bytes) = self.hot.get(&entry.blob) {
                if let Some(shared) = &self.shared {
                    shared.stats.hits_memory.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(Some((entry, Content::Memory(bytes))));
            }
        }
        let serves = Arc::new(serves);
        let found = self.fresh_local(id, serves.clone()).await?;
        let Some(shared) = &self.shared else {
            return Ok(found);
        };
        let local_hit = || {
            shared.stats.hits_local.fetch_add(1, Ordering::Relaxed);
        };
        if let Some((entry, _)) = &found {
            if entry.class != EntryClass::Hosted {
                local_hit();
                return Ok(found);
            }
            match self.confirm_hosted(shared, id, entry).await? {
                Confirmed::Same => {
                    local_hit();
                    return Ok(found);
                }
                Confirmed::Gone => return Ok(None),
                Confirmed::Changed => {
                    if !self.adopt(shared, id, &*serves).await {
                        return Ok(found);
                    }
                    return self.fresh_local(id, serves).await;
                }
            }
        }
        if !self.adopt(shared, id, &*serves).await {
            return Ok(None);
        }
        let adopted = self.fresh_local(id, serves).await?;
        if adopted.is_some() {
            shared.stats.hits_shared.fetch_add(1, Ordering::Relaxed);
        }
        Ok(adopted)
    }

    /// [`Store::fresh`] in the local tier, on the blocking pool.
    async fn fresh_local(
        &self,
        id: &EntryId,
        serves: Arc<impl Fn(&Entry) -> bool + Send + Sync + 'static>,
    ) -> Result<Option<(Arc<Entry>, Content)>, StoreError> {
        let (meta, blobs, hot) = (self.meta.clone(), self.blobs.clone(), self.hot.clone());
        let id = id.clone();
        Self::blocking(move || {
            let Some(entry) = meta.get_shared(id.remote(), id.key())? else {
                return Ok(None);
            };
            if !serves(&entry) {
                return Ok(None);
            }
            let data = match blobs.open(&entry.blob) {
                Ok(Some(data)) => data,
                _ => {
                    tracing::warn!(entry = %id, blob = %entry.blob, "indexed blob is missing; refetching");
                    return Ok(None);
                }
            };
            if !hot.wants(data.len()) {
                return Ok(Some((entry, Content::Blob(Arc::from(data)))));
            }
            match data.read_prefix(data.len()).map(Bytes::from) {
                Ok(bytes) => {
                    hot.insert(entry.blob, bytes.clone());
                    Ok(Some((entry, Content::Memory(bytes))))
                }
                Err(e) => {
                    tracing::warn!(entry = %id, blob = %entry.blob, error = %e, "reading a stored blob failed; refetching");
                    Ok(None)
                }
            }
        })
        .await
    }

    /// Open a committed blob; `None` when it is absent.
    pub async fn open(&self, digest: &Digest) -> Result<Option<Arc<dyn BlobRead>>, StoreError> {
        let (blobs, d) = (self.blobs.clone(), *digest);
        Self::blocking(move || {
            blobs
                .open(&d)
                .map(|b| b.map(Arc::from))
                .map_err(|e| StoreError::io("open blob", d, e))
        })
        .await
    }

    /// Insert or replace an entry (see [`EntryIndex::put_entry`](super::EntryIndex::put_entry)); returns
    /// the one it replaced. In cluster mode it is written to the bucket in
    /// the background.
    pub async fn put(
        &self,
        id: &EntryId,
        entry: &Entry,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        self.put_sharing(id, entry, durable, Sharing::Background)
            .await
    }

    /// [`Store::put`], reaching the bucket as `sharing` says.
    pub async fn put_sharing(
        &self,
        id: &EntryId,
        entry: &Entry,
        durable: bool,
        sharing: Sharing,
    ) -> Result<Option<Entry>, StoreError> {
        let (meta, rid, e) = (self.meta.clone(), id.clone(), entry.clone());
        let replaced =
            Self::blocking(move || meta.put_entry(rid.remote(), rid.key(), &e, durable)).await;
        self.blobs.settle(&entry.blob);
        let replaced = replaced?;
        if let Some(shared) = &self.shared {
            match sharing {
                Sharing::Background => self.share_later(shared, id, entry.clone()),
                Sharing::Now => {
                    self.share_now(shared, id, entry).await;
                }
            }
        }
        Ok(replaced)
    }

    /// Insert or replace an entry after `check`, in one transaction (see
    /// [`EntryIndex::put_entry_checked`](super::EntryIndex::put_entry_checked)).
    /// In cluster mode a durable put is in the bucket before it returns
    /// (`store/shared/through.rs`).
    pub async fn put_checked(
        &self,
        id: &EntryId,
        entry: Entry,
        check: PutCheck,
        durable: bool,
    ) -> Result<PutOutcome, StoreError> {
        match &self.shared {
            Some(shared) if durable => self.put_checked_shared(shared, id, entry, check).await,
            Some(shared) => {
                let outcome = self
                    .put_checked_local(id, entry.clone(), check, false)
                    .await?;
                if matches!(outcome, PutOutcome::Stored(_)) {
                    self.share_later(shared, id, entry);
                }
                Ok(outcome)
            }
            None => self.put_checked_local(id, entry, check, durable).await,
        }
    }

    /// [`Store::put_checked`] in the local tier only.
    pub(in crate::store) async fn put_checked_local(
        &self,
        id: &EntryId,
        entry: Entry,
        check: PutCheck,
        durable: bool,
    ) -> Result<PutOutcome, StoreError> {
        let (meta, id, blob, blobs) = (
            self.meta.clone(),
            id.clone(),
            entry.blob,
            self.blobs.clone(),
        );
        let put = Self::blocking(move || {
            meta.put_entry_checked(id.remote(), id.key(), &entry, check, durable)
        })
        .await;
        blobs.settle(&blob);
        put
    }

    /// Change an entry atomically (see [`EntryIndex::update_entry`](super::EntryIndex::update_entry));
    /// returns it changed, `None` when absent.
    pub async fn update(
        &self,
        id: &EntryId,
        f: impl Fn(&mut Entry) + Send + 'static,
    ) -> Result<Option<Entry>, StoreError> {
        let (meta, rid) = (self.meta.clone(), id.clone());
        let updated =
            Self::blocking(move || meta.update_entry(rid.remote(), rid.key(), &f)).await?;
        if let (Some(shared), Some(e)) = (&self.shared, &updated) {
            self.share_later(shared, id, e.clone());
        }
        Ok(updated)
    }

    /// Remove an entry; returns it, `None` when absent. In cluster mode
    /// the bucket's record goes first (`store/shared/through.rs`).
    pub async fn remove(&self, id: &EntryId, durable: bool) -> Result<Option<Entry>, StoreError> {
        match &self.shared {
            Some(shared) => self.remove_shared(shared, id, durable).await,
            None => self.remove_local(id, durable).await,
        }
    }

    /// [`Store::remove`] in the local tier only.
    pub(in crate::store) async fn remove_local(
        &self,
        id: &EntryId,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        let (meta, id) = (self.meta.clone(), id.clone());
        Self::blocking(move || meta.remove_entry(id.remote(), id.key(), durable)).await
    }

    /// Entries of `remote` whose key starts with `prefix`, after `after`,
    /// at most `limit`, in key order.
    pub async fn list(
        &self,
        remote: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StoreError> {
        let meta = self.meta.clone();
        let (r, p, a) = (
            remote.to_owned(),
            prefix.to_owned(),
            after.map(str::to_owned),
        );
        Self::blocking(move || meta.list_entries(&r, &p, a.as_deref(), limit)).await
    }

    /// Bytes `remote`'s entries take (the index's counter; in cluster
    /// mode the bucket's, when it can be read: this node's own count may
    /// hold entries other nodes deleted).
    pub async fn remote_size(&self, remote: &str) -> Result<u64, StoreError> {
        if let Some(shared) = &self.shared
            && let Ok(cluster) = shared.usage(remote).await
        {
            return Ok(cluster.unwrap_or(0));
        }
        let (meta, r) = (self.meta.clone(), remote.to_owned());
        Self::blocking(move || meta.remote_size(&r)).await
    }

    /// In cluster mode: send the blob access times the local tier
    /// persisted ([`SharedTier::note_access`]) to the bucket (for the
    /// cluster's eviction) and run the collection when it is due
    /// (`store/shared/gc.rs`); nothing on a single node.
    pub async fn upkeep_shared(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        if let Err(e) = shared.send_access().await {
            tracing::debug!(error = %e, "sending access times to the bucket failed; kept for the next round");
        }
        shared.collect_in_background();
    }

    /// Another 200 entry of `remote` whose content is the blob `digest`,
    /// when the index knows one and the blob is there to serve.
    pub async fn entry_holding(
        &self,
        remote: &str,
        digest: Digest,
    ) -> Result<Option<Entry>, StoreError> {
        if digest == Digest::EMPTY {
            return Ok(None);
        }
        let (meta, blobs, remote) = (self.meta.clone(), self.blobs.clone(), remote.to_owned());
        Self::blocking(move || {
            let Some(bm) = meta.blob_meta(&digest)? else {
                return Ok(None);
            };
            for id in bm.referrers.iter().filter_map(|r| EntryId::parse(r)) {
                if id.remote() != remote {
                    continue;
                }
                if let Some(e) = meta.get_entry(id.remote(), id.key())?
                    && e.blob == digest
                    && e.status == 200
                    && e.class != EntryClass::NotFound
                {
                    let present = blobs
                        .contains(&digest)
                        .map_err(|e| StoreError::io("look for blob", digest, e))?;
                    return Ok(present.then_some(e));
                }
            }
            Ok(None)
        })
        .await
    }

    /// A new spool to stream bytes into.
    pub async fn create_spool(&self) -> Result<Spool, StoreError> {
        let blobs = self.blobs.clone();
        Self::blocking(move || {
            blobs
                .create_spool()
                .map_err(|e| StoreError::io("create spool", "tmp/", e))
        })
        .await
    }

    /// A new spool, for code already on the blocking pool.
    pub fn create_spool_blocking(&self) -> Result<Spool, StoreError> {
        self.blobs
            .create_spool()
            .map_err(|e| StoreError::io("create spool", "tmp/", e))
    }

    /// `bytes` appended to `spool` (for a whole body in hand; a streamed
    /// body writes each chunk on its own thread: the writes go to the page
    /// cache).
    pub async fn write(&self, mut spool: Spool, bytes: Bytes) -> Result<Spool, StoreError> {
        Self::blocking(move || {
            spool
                .write(&bytes)
                .map_err(|e| StoreError::io("write spool", spool.path().display(), e))?;
            Ok(spool)
        })
        .await
    }

    /// Make a spool durable under its digest, after checking it against
    /// `expected` (see [`BlobStore::commit`]).
    pub async fn commit(
        &self,
        spool: Spool,
        expected: Option<Digest>,
    ) -> Result<BlobRef, StoreError> {
        let blobs = self.blobs.clone();
        Self::blocking(move || blobs.commit(spool, expected.as_ref())).await
    }

    /// The empty blob, committed (negative entries point at it).
    pub async fn commit_empty(&self) -> Result<BlobRef, StoreError> {
        let spool = self.create_spool().await?;
        self.commit(spool, Some(Digest::EMPTY)).await
    }

    /// Run index or blob work that has no method of its own (maintenance
    /// rounds, an operator's flush, held plugin key-value writes) on the
    /// blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        Self::blocking(move || f(&store)).await
    }
}
