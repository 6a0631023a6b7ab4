//! Access times for the cluster's least-recently-used eviction. A node
//! already remembers when it served each blob (the local tier's LRU); each
//! upkeep round it sends the times it persisted since the last round to
//! the bucket as one batch, `access/NODE/MILLIS`. The collecting node
//! merges the batches into `gc/access` and deletes them (`gc.rs`).

use super::{SharedTier, layout};
use crate::store::{Digest, StoreError, now_ms};
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most access times a node keeps for the next batch while the bucket
/// fails; beyond, blobs not yet in it are left out (they look older to the
/// eviction than they are).
const MAX_PENDING: usize = 1_000_000;

/// A batch (and the merged times) as the bucket holds them: blob digest
/// (hex) to its last access (unix milliseconds).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct AccessTimes {
    /// The times.
    pub blobs: HashMap<String, u64>,
}

impl AccessTimes {
    /// Keep the later time of each blob.
    pub fn merge(&mut self, other: AccessTimes) {
        for (d, t) in other.blobs {
            let at = self.blobs.entry(d).or_insert(t);
            *at = (*at).max(t);
        }
    }
}

impl SharedTier {
    /// Remember blob access times (from the local tier's upkeep) for the
    /// next batch.
    pub fn note_access(&self, batch: Vec<(Digest, u64)>) {
        let mut pending = self.access.lock().unwrap_or_else(|p| p.into_inner());
        for (d, t) in batch {
            if pending.len() >= MAX_PENDING && !pending.contains_key(&d) {
                continue;
            }
            let at = pending.entry(d).or_insert(t);
            *at = (*at).max(t);
        }
    }

    /// Send the remembered access times as one batch; kept for the next
    /// round when the bucket fails.
    pub async fn send_access(&self) -> Result<usize, StoreError> {
        let batch = std::mem::take(&mut *self.access.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let times = AccessTimes {
            blobs: batch.iter().map(|(d, t)| (d.hex(), *t)).collect(),
        };
        let path = layout::access_batch(&self.node, now_ms());
        let sent = match self.gate("send access times", &path) {
            Ok(()) => {
                let payload = PutPayload::from(serde_json::to_vec(&times).unwrap_or_default());
                let r = self.bucket.put(&path, payload).await;
                self.outcome("send access times", &path, r)
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(_) => Ok(batch.len()),
            Err(e) => {
                self.note_access(batch.into_iter().collect());
                Err(e)
            }
        }
    }
}
