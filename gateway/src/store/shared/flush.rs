//! Cluster-wide flushes. `PUT /cache/flush` through any node deletes the
//! flushed records from the bucket and leaves a marker,
//! `flushes/REMOTE/all` or `flushes/REMOTE/key/KEY`; every node looks for
//! new markers in its upkeep round (every 5 s) and drops its own copies of
//! what the marker names that were stored before the flush. Markers are
//! deleted a day after they were written; a node down for longer than
//! that keeps what it held.

use super::{SharedTier, layout};
use crate::store::{EntryId, StoreError, now_ms};
use futures_util::StreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};

/// How long a flush marker is kept.
const MARKER_LIFE_MS: u64 = 24 * 3600 * 1000;

/// A flush as the bucket holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flush {
    /// The node it went through.
    pub node: String,
    /// When (unix milliseconds, that node's clock): entries stored before
    /// are dropped.
    pub at_ms: u64,
    /// The remote.
    pub remote: String,
    /// One key, or every key of the remote.
    pub key: Option<String>,
}

impl SharedTier {
    /// Flush `remote` (or its `key`) for the cluster: its records leave the
    /// bucket, and a marker tells the other nodes. How many records were
    /// deleted.
    pub async fn flush(&self, remote: &str, key: Option<&str>) -> Result<u64, StoreError> {
        let mut deleted = 0;
        match key {
            Some(k) => {
                let id = EntryId::new(remote, k);
                match self.bucket.delete(&layout::record(&id)).await {
                    Err(object_store::Error::NotFound { .. }) => {}
                    r => {
                        self.outcome("flush record", &id, r)?;
                        deleted = 1;
                    }
                }
            }
            None => {
                let prefix = Path::from(format!("index/{remote}"));
                let mut listing = self.bucket.list(Some(&prefix));
                while let Some(meta) = listing.next().await {
                    let meta = self.outcome("list records", &prefix, meta)?;
                    match self.bucket.delete(&meta.location).await {
                        Err(object_store::Error::NotFound { .. }) => {}
                        r => {
                            self.outcome("flush record", &meta.location, r)?;
                            deleted += 1;
                        }
                    }
                }
            }
        }
        let flush = Flush {
            node: self.node.clone(),
            at_ms: now_ms(),
            remote: remote.to_owned(),
            key: key.map(str::to_owned),
        };
        let payload = PutPayload::from(serde_json::to_vec(&flush).unwrap_or_default());
        let path = layout::flush_marker(remote, key);
        let r = self.bucket.put(&path, payload).await;
        self.outcome("write flush marker", &path, r)?;
        Ok(deleted)
    }

    /// The flushes of other nodes not seen before by this node (each is
    /// returned once); markers older than a day are deleted.
    pub async fn new_flushes(&self) -> Result<Vec<Flush>, StoreError> {
        let prefix = Path::from("flushes");
        let mut listing = self.bucket.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = self.outcome("list flushes", &prefix, meta)?;
            let seen = (meta.location.to_string(), meta.e_tag.clone());
            if self
                .flushes_seen
                .lock()
                .map(|s| s.contains(&seen))
                .unwrap_or(true)
            {
                continue;
            }
            let marker = &meta.location;
            // `None`: expired and deleted by another node meanwhile.
            let Some((bytes, _)) = self.get_small("read flush marker", marker, marker).await?
            else {
                continue;
            };
            if let Ok(mut s) = self.flushes_seen.lock() {
                s.insert(seen);
            }
            let Ok(flush) = serde_json::from_slice::<Flush>(&bytes) else {
                tracing::warn!(marker = %meta.location, "an unreadable flush marker in the bucket; ignored");
                continue;
            };
            if flush.at_ms + MARKER_LIFE_MS < now_ms() {
                let _ = self.bucket.delete(&meta.location).await;
                continue;
            }
            if flush.node != self.node {
                found.push(flush);
            }
        }
        Ok(found)
    }
}

impl crate::store::Store {
    /// In cluster mode, flush `remote` (or its `key`) in the bucket too
    /// ([`SharedTier::flush`]); nothing on a single node.
    pub async fn flush_shared(&self, remote: &str, key: Option<&str>) -> Result<u64, StoreError> {
        match &self.shared {
            Some(shared) => shared.flush(remote, key).await,
            None => Ok(0),
        }
    }

    /// Apply the flushes other nodes made since the last call: drop this
    /// node's entries they name that were stored before them. How many
    /// entries were dropped (their blobs go in the next garbage
    /// collection).
    pub async fn apply_flushes(&self) -> Result<u64, StoreError> {
        let Some(shared) = &self.shared else {
            return Ok(0);
        };
        let mut dropped = 0;
        for flush in shared.new_flushes().await? {
            let meta = self.meta.clone();
            dropped += Self::blocking(move || {
                let older = |e: &crate::store::Entry| {
                    e.stored_at_ms < flush.at_ms && e.class != crate::store::EntryClass::Hosted
                };
                let mut n = 0;
                if let Some(key) = &flush.key {
                    if let Some(e) = meta.get_entry(&flush.remote, key)?
                        && older(&e)
                    {
                        n += u64::from(meta.remove_entry(&flush.remote, key, false)?.is_some());
                    }
                    return Ok(n);
                }
                let mut after: Option<String> = None;
                loop {
                    let page = meta.list_entries(&flush.remote, "", after.as_deref(), 1000)?;
                    let Some((last, _)) = page.last() else {
                        break;
                    };
                    after = Some(last.clone());
                    for (key, e) in &page {
                        if older(e) {
                            n += u64::from(meta.remove_entry(&flush.remote, key, false)?.is_some());
                        }
                    }
                }
                Ok(n)
            })
            .await?;
        }
        Ok(dropped)
    }
}
