//! A `cas` remote's store as the gRPC front uses it: blobs under
//! `cas/{sha256}` (the keys the `cas` adapter's HTTP layout uses, so both
//! protocols share one store), action results under `ac/{sha256}`, asset
//! references under `asset/...`. Writes go through the hosted commit
//! (`serve::commit_hosted`: verified digest, quota, durable before the
//! call answers); presence checks of many keys run in one blocking task.

use super::digest::BlobId;
use super::error::GrpcError;
use super::instance::Instance;
use crate::serve::{NewEntry, commit_hosted};
use crate::store::{BlobRead, Digest, Entry, EntryClass, EntryId, Spool, StoreError, Validators};
use bytes::Bytes;
use std::sync::Arc;

/// Content type of the entries the gRPC front writes.
pub const OCTET_STREAM: &str = "application/octet-stream";

impl Instance {
    /// The entry stored under `key`, if any (a virtual remote's first
    /// member that has one).
    pub async fn entry(&self, key: &str) -> Result<Option<Arc<Entry>>, GrpcError> {
        if !self.members.is_empty() {
            for m in &self.members {
                if let Some(e) = Box::pin(m.entry(key)).await? {
                    return Ok(Some(e));
                }
            }
            return Ok(None);
        }
        let id = EntryId::new(self.name(), key);
        Ok(self.state.engine.store.entry(&id).await?)
    }

    /// The blobs of `ids` the store does not hold (in their order), in one
    /// blocking task whatever their number. A blob is held when its entry
    /// exists with the digest's size; the empty blob always is. On a
    /// virtual remote, those every member lacks. A pull-through remote
    /// answers for its own store: uploads stay in it, so a client uploads
    /// what a push needs here even when the upstream has it, and the
    /// closures of what it pushes are complete locally.
    pub async fn missing(&self, mut ids: Vec<BlobId>) -> Result<Vec<BlobId>, GrpcError> {
        ids.retain(|id| !id.is_empty_blob());
        self.absent(ids, BlobId::key, |id, e| {
            e.size == id.size && e.blob == id.digest
        })
        .await
    }

    /// The keys of `keys` the store has no entry for (on a virtual remote:
    /// that no member has), in one blocking task.
    pub async fn missing_keys(&self, keys: Vec<String>) -> Result<Vec<String>, GrpcError> {
        self.absent(keys, String::clone, |_, _| true).await
    }

    /// The items whose entry (under `key(item)`) is absent or not `held`
    /// by it, in one blocking task per remote; on a virtual remote, those
    /// no member holds.
    async fn absent<T: Send + 'static>(
        &self,
        items: Vec<T>,
        key: fn(&T) -> String,
        held: fn(&T, &Entry) -> bool,
    ) -> Result<Vec<T>, GrpcError> {
        if !self.members.is_empty() {
            let mut left = items;
            for m in &self.members {
                if left.is_empty() {
                    break;
                }
                left = Box::pin(m.absent(left, key, held)).await?;
            }
            return Ok(left);
        }
        let remote = self.name().to_owned();
        Ok(self
            .state
            .engine
            .store
            .run(move |store| {
                let mut left = Vec::new();
                for item in items {
                    let entry = store.meta.get_shared(&remote, &key(&item))?;
                    if !entry.is_some_and(|e| held(&item, &e)) {
                        left.push(item);
                    }
                }
                Ok(left)
            })
            .await?)
    }

    /// The blob `id`, open for reading; `NotFound` when the store lacks it
    /// (and, on a pull-through remote, its upstream too).
    pub async fn open_blob(&self, id: &BlobId) -> Result<Option<Arc<dyn BlobRead>>, GrpcError> {
        if !self.members.is_empty() {
            let mut last = None;
            for m in &self.members {
                match Box::pin(m.open_blob(id)).await {
                    Err(e @ GrpcError::NotFound(_)) => last = Some(e),
                    r => return r,
                }
            }
            return Err(last
                .unwrap_or_else(|| GrpcError::NotFound(format!("blob {id} is not in the cache"))));
        }
        match self.open_here(id).await {
            Err(GrpcError::NotFound(_)) if self.upstream.is_some() => {
                self.fill(id).await?;
                self.open_here(id).await
            }
            r => r,
        }
    }

    /// Fetch the blob `id` from the upstream into the store, once for all
    /// concurrent callers: the others wait for the first, then find it.
    async fn fill(&self, id: &BlobId) -> Result<(), GrpcError> {
        let Some(up) = &self.upstream else {
            return Ok(());
        };
        let key = format!("{}\0{}", self.name(), id.key());
        let mut flight = self.state.grpc_flights.lock(&key).await;
        if self.missing(vec![id.clone()]).await?.is_empty() {
            return Ok(());
        }
        if let Some((code, why)) = flight.failed_before() {
            return Err(match code {
                tonic::Code::NotFound => GrpcError::NotFound(why.to_owned()),
                _ => GrpcError::Unavailable(why.to_owned()),
            });
        }
        let r = self.fetch_from(up, id).await;
        if let Err(e) = &r {
            flight.fail(e.code(), e.to_string());
        }
        r
    }

    /// Fetch the blob `id` from `up`, verify and keep it.
    async fn fetch_from(
        &self,
        up: &super::upstream::RemoteCas,
        id: &BlobId,
    ) -> Result<(), GrpcError> {
        let store = &self.state.engine.store;
        let spool = up.read_into(id, store.create_spool().await?).await?;
        let target = format!("{}/blobs/{id}", up.shown());
        match self
            .put_cached(
                &id.key(),
                spool,
                id.digest,
                Vec::new(),
                OCTET_STREAM,
                target,
            )
            .await
        {
            Err(GrpcError::InvalidArgument(_)) => {
                return Err(GrpcError::Unavailable(format!(
                    "upstream {} sent bytes that are not blob {id}; nothing was stored",
                    up.shown()
                )));
            }
            r => r?,
        }
        tracing::info!(remote = %self.name(), blob = %id, upstream = up.shown(), "blob fetched from the upstream");
        Ok(())
    }

    /// [`Instance::open_blob`] in the local store only.
    async fn open_here(&self, id: &BlobId) -> Result<Option<Arc<dyn BlobRead>>, GrpcError> {
        if id.is_empty_blob() {
            return Ok(None);
        }
        let not_found = || GrpcError::NotFound(format!("blob {id} is not in the cache"));
        let entry = self.entry(&id.key()).await?.ok_or_else(not_found)?;
        if entry.size != id.size || entry.blob != id.digest {
            return Err(not_found());
        }
        let data = self
            .state
            .engine
            .store
            .open(&entry.blob)
            .await?
            .ok_or_else(not_found)?;
        Ok(Some(data))
    }

    /// The whole blob `id` in memory (the caller bounds its size).
    pub async fn read(&self, id: &BlobId) -> Result<Bytes, GrpcError> {
        let Some(data) = self.open_blob(id).await? else {
            return Ok(Bytes::new());
        };
        let bytes = crate::store::read_whole(data, id.size)
            .await
            .map_err(|e| GrpcError::Internal(format!("reading blob {id} failed: {e}")))?;
        Ok(Bytes::from(bytes))
    }

    /// The entry `key` read whole, if it exists (on a virtual remote, in
    /// the first member that has it): small messages (action results,
    /// asset records, directories). An entry larger than `max` is not one
    /// (e.g. a ccache entry under `ac/`): `FAILED_PRECONDITION`, and it is
    /// never read into memory.
    pub async fn read_entry(
        &self,
        key: &str,
        max: u64,
    ) -> Result<Option<(Arc<Entry>, Bytes)>, GrpcError> {
        let Some(entry) = self.entry(key).await? else {
            return Ok(None);
        };
        if entry.size > max {
            return Err(GrpcError::FailedPrecondition(format!(
                "{key} is {} bytes, more than the {max} its message may have",
                entry.size
            )));
        }
        let Some(data) = self.state.engine.store.open(&entry.blob).await? else {
            return Ok(None);
        };
        let bytes = crate::store::read_whole(data, entry.size)
            .await
            .map_err(|e| GrpcError::Internal(format!("reading {key} failed: {e}")))?;
        Ok(Some((entry, Bytes::from(bytes))))
    }

    /// Store `bytes` as the blob `id`, verified against it. A blob already
    /// held is not written again.
    pub async fn put(&self, id: &BlobId, bytes: Bytes) -> Result<(), GrpcError> {
        if bytes.len() as u64 != id.size {
            return Err(GrpcError::InvalidArgument(format!(
                "blob {id} has {} bytes, not the {} its digest says; nothing was stored",
                bytes.len(),
                id.size
            )));
        }
        if self.missing(vec![id.clone()]).await?.is_empty() {
            return Ok(());
        }
        let spool = self.spool_of(bytes).await?;
        self.commit_blob(id, spool).await
    }

    /// Commit a spool holding the blob `id` (its digest is checked).
    pub async fn commit_blob(&self, id: &BlobId, spool: Spool) -> Result<(), GrpcError> {
        self.commit(&id.key(), spool, Some(id.digest), Vec::new())
            .await
    }

    /// Store `bytes` as the entry `key` with `references` (an action
    /// result, an asset record).
    pub async fn put_entry(
        &self,
        key: &str,
        bytes: Bytes,
        references: Vec<String>,
    ) -> Result<(), GrpcError> {
        let spool = self.spool_of(bytes).await?;
        self.commit(key, spool, None, references).await
    }

    /// Keep `bytes` as the cached entry `key` with `references`: an answer
    /// of a pull-through remote's upstream, evicted like any cached file
    /// and not flushed durably. An entry with the same content is left as
    /// it is; a failure to keep it is logged, never the caller's error
    /// (the answer is in hand).
    pub async fn keep(&self, key: &str, bytes: Bytes, references: Vec<String>, content_type: &str) {
        let digest = Digest::of(&bytes);
        let kept = async {
            if let Some(e) = self.entry(key).await?
                && e.blob == digest
                && e.references == references
                && e.content_type.as_deref() == Some(content_type)
            {
                return Ok(());
            }
            let spool = self.spool_of(bytes).await?;
            self.put_cached(key, spool, digest, references, content_type, key.to_owned())
                .await
        };
        if let Err(e) = kept.await {
            tracing::warn!(remote = %self.name(), key, error = %e, "an upstream answer could not be kept");
        }
    }

    /// A spool holding `bytes`.
    async fn spool_of(&self, bytes: Bytes) -> Result<Spool, GrpcError> {
        let store = &self.state.engine.store;
        Ok(store.write(store.create_spool().await?, bytes).await?)
    }

    /// Commit `spool` (checked against `digest`: a mismatch is
    /// `INVALID_ARGUMENT`) as the cached entry `key`, fetched from
    /// `target`: evictable, not flushed durably.
    async fn put_cached(
        &self,
        key: &str,
        spool: Spool,
        digest: Digest,
        references: Vec<String>,
        content_type: &str,
        target: String,
    ) -> Result<(), GrpcError> {
        let store = &self.state.engine.store;
        let blob = match store.commit(spool, Some(digest)).await {
            Ok(b) => b,
            Err(StoreError::DigestMismatch { expected, actual }) => {
                return Err(GrpcError::InvalidArgument(format!(
                    "the bytes have digest {actual}, not {expected}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut entry = Entry::fetched(EntryClass::Immutable, Validators::Refetch, target);
        entry.blob = blob.digest;
        entry.size = blob.size;
        entry.stored_at_ms = crate::store::now_ms();
        entry.content_type = Some(content_type.to_owned());
        entry.references = references;
        store
            .put(&EntryId::new(self.name(), key), &entry, false)
            .await?;
        Ok(())
    }

    /// Commit `spool` (checked against `expected`) as the hosted entry
    /// `key`: quota, durable before this returns.
    async fn commit(
        &self,
        key: &str,
        spool: Spool,
        expected: Option<Digest>,
        references: Vec<String>,
    ) -> Result<(), GrpcError> {
        let new = NewEntry {
            key,
            content_type: Some(OCTET_STREAM.to_owned()),
            references,
            refuse_overwrite: false,
            replans: false,
        };
        commit_hosted(&self.state, &self.remote, new, spool, expected).await?;
        Ok(())
    }
}
