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
    pub async fn missing(&self, ids: Vec<BlobId>) -> Result<Vec<BlobId>, GrpcError> {
        if !self.members.is_empty() {
            let mut missing = ids;
            for m in &self.members {
                if missing.is_empty() {
                    break;
                }
                missing = Box::pin(m.missing(missing)).await?;
            }
            return Ok(missing);
        }
        self.missing_here(ids).await
    }

    /// [`Instance::missing`] of one remote's store.
    pub async fn missing_here(&self, ids: Vec<BlobId>) -> Result<Vec<BlobId>, GrpcError> {
        let remote = self.name().to_owned();
        let missing = self
            .state
            .engine
            .store
            .run(move |store| {
                let mut missing = Vec::new();
                for id in ids {
                    if id.is_empty_blob() {
                        continue;
                    }
                    let held = store
                        .meta
                        .get_shared(&remote, &id.key())?
                        .is_some_and(|e| e.size == id.size && e.blob == id.digest());
                    if !held {
                        missing.push(id);
                    }
                }
                Ok(missing)
            })
            .await?;
        Ok(missing)
    }

    /// The keys of `keys` the store has no entry for, in one blocking task
    /// (on a virtual remote: that no member has).
    pub async fn missing_keys(&self, keys: Vec<String>) -> Result<Vec<String>, GrpcError> {
        if !self.members.is_empty() {
            let mut missing = keys;
            for m in &self.members {
                if missing.is_empty() {
                    break;
                }
                missing = Box::pin(m.missing_keys(missing)).await?;
            }
            return Ok(missing);
        }
        let remote = self.name().to_owned();
        Ok(self
            .state
            .engine
            .store
            .run(move |store| {
                let mut missing = Vec::new();
                for key in keys {
                    if store.meta.get_shared(&remote, &key)?.is_none() {
                        missing.push(key);
                    }
                }
                Ok(missing)
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
        if self.missing_here(vec![id.clone()]).await?.is_empty() {
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
        let spool = store.create_spool().await?;
        let spool = up.read_into(id, spool).await?;
        let blob = match store.commit(spool, Some(id.digest())).await {
            Ok(b) => b,
            Err(StoreError::DigestMismatch { .. }) => {
                return Err(GrpcError::Unavailable(format!(
                    "upstream {} sent bytes that are not blob {id}; nothing was stored",
                    up.shown()
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut entry = Entry::fetched(
            EntryClass::Immutable,
            Validators::Refetch,
            format!("{}/blobs/{id}", up.shown()),
        );
        entry.blob = blob.digest;
        entry.size = blob.size;
        entry.stored_at_ms = crate::store::now_ms();
        entry.content_type = Some(OCTET_STREAM.to_owned());
        store
            .put(&EntryId::new(self.name(), &id.key()), &entry, false)
            .await?;
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
        if entry.size != id.size || entry.blob != id.digest() {
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

    /// The entry `key` read whole, if it exists and holds at most `max`
    /// bytes (small messages: action results, asset records, directories;
    /// a larger entry under such a key, e.g. a ccache entry under `ac/`,
    /// is not one and is never read into memory).
    pub async fn read_entry(
        &self,
        key: &str,
        max: u64,
    ) -> Result<Option<(Arc<Entry>, Bytes)>, GrpcError> {
        if !self.members.is_empty() {
            for m in &self.members {
                if let Some(found) = Box::pin(m.read_entry(key, max)).await? {
                    return Ok(Some(found));
                }
            }
            return Ok(None);
        }
        let Some(entry) = self.entry(key).await? else {
            return Ok(None);
        };
        if entry.size > max {
            tracing::debug!(remote = %self.name(), key, size = entry.size, max, "an entry too large for a message; not read");
            return Ok(None);
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
        if id.is_empty_blob() || self.missing_here(vec![id.clone()]).await?.is_empty() {
            return Ok(());
        }
        let store = &self.state.engine.store;
        let spool = store.create_spool().await?;
        let spool = store.write(spool, bytes).await?;
        self.commit_blob(id, spool).await
    }

    /// Commit a spool holding the blob `id` (its digest is checked).
    pub async fn commit_blob(&self, id: &BlobId, spool: Spool) -> Result<(), GrpcError> {
        self.commit(
            &id.key(),
            spool,
            Some(id.digest()),
            Vec::new(),
            OCTET_STREAM,
        )
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
        self.put_typed(key, bytes, references, OCTET_STREAM).await
    }

    /// Keep `bytes` as the cached entry `key` with `references`: an answer
    /// of a pull-through remote's upstream, evicted like any cached file
    /// and not flushed durably. An entry with the same content is left as
    /// it is; a failure to keep it is logged, never the caller's error
    /// (the answer is in hand).
    pub async fn keep(&self, key: &str, bytes: Bytes, references: Vec<String>, content_type: &str) {
        if let Err(e) = self.keep_inner(key, bytes, references, content_type).await {
            tracing::warn!(remote = %self.name(), key, error = %e, "an upstream answer could not be kept");
        }
    }

    async fn keep_inner(
        &self,
        key: &str,
        bytes: Bytes,
        references: Vec<String>,
        content_type: &str,
    ) -> Result<(), GrpcError> {
        let digest = Digest::of(&bytes);
        if let Some(e) = self.entry(key).await?
            && e.blob == digest
            && e.references == references
            && e.content_type.as_deref() == Some(content_type)
        {
            return Ok(());
        }
        let store = &self.state.engine.store;
        let spool = store.create_spool().await?;
        let spool = store.write(spool, bytes).await?;
        let blob = store.commit(spool, Some(digest)).await?;
        let mut entry = Entry::fetched(EntryClass::Immutable, Validators::Refetch, key.to_owned());
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

    /// [`Instance::put_entry`] with a content type that says what the
    /// entry is (e.g. an asset whose closure is not known yet).
    pub async fn put_typed(
        &self,
        key: &str,
        bytes: Bytes,
        references: Vec<String>,
        content_type: &str,
    ) -> Result<(), GrpcError> {
        let store = &self.state.engine.store;
        let spool = store.create_spool().await?;
        let spool = store.write(spool, bytes).await?;
        self.commit(key, spool, None, references, content_type)
            .await
    }

    async fn commit(
        &self,
        key: &str,
        spool: Spool,
        expected: Option<Digest>,
        references: Vec<String>,
        content_type: &str,
    ) -> Result<(), GrpcError> {
        let new = NewEntry {
            key,
            content_type: Some(content_type.to_owned()),
            references,
            refuse_overwrite: false,
            replans: false,
        };
        commit_hosted(&self.state, &self.remote, new, spool, expected).await?;
        Ok(())
    }
}
