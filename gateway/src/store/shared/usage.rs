//! Hosted quotas across the cluster. `usage/REMOTE` holds the bytes a
//! hosted remote's entries take in the bucket; a hosted write with a
//! quota adds its size there with compare-and-swap (`If-Match` on the
//! counter's ETag) before its record is written, and refuses when the sum
//! would pass the quota, so two nodes cannot both fill the last bytes. A
//! delete subtracts. A write that fails after adding gives its bytes back;
//! a node that dies in between leaves the counter high until the
//! collection recounts it from the records (`gc.rs`).

use super::{SharedTier, layout};
use crate::store::StoreError;
use object_store::{PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Compare-and-swap attempts before a contended counter is an error.
const ATTEMPTS: u32 = 20;

/// A usage counter as the bucket holds it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Usage {
    /// Bytes the remote's entries take.
    bytes: u64,
}

/// A usage counter as the collection reads it.
#[derive(Debug, Clone)]
pub(super) struct Counter {
    /// Its value.
    pub bytes: u64,
    /// Its ETag.
    pub e_tag: Option<String>,
    /// When it was last written (unix milliseconds).
    pub modified_ms: u64,
}

/// What [`SharedTier::add_usage`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The counter holds the sum now.
    Done,
    /// Nothing changed: the sum would pass the quota; what the remote
    /// takes now.
    OverQuota {
        /// Bytes the remote's entries take.
        used: u64,
    },
}

impl SharedTier {
    /// The counter of `remote` with its ETag; `None` when there is none.
    async fn read_usage(&self, remote: &str) -> Result<Option<(u64, Option<String>)>, StoreError> {
        self.gate("read usage", &remote)?;
        let path = layout::usage(remote);
        let Some((bytes, tag)) = self.get_small("read usage", &path, &path).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Usage>(&bytes) {
            Ok(usage) => Ok(Some((usage.bytes, tag))),
            // Unreadable: full until the collection recounts it (it
            // replaces the counter with `If-Match` on this ETag).
            Err(e) => {
                tracing::warn!(counter = %path, error = %e, "an unreadable usage counter in the bucket; its remote takes no uploads with a quota until the collection recounts it");
                Ok(Some((u64::MAX, tag)))
            }
        }
    }

    /// The bytes `remote`'s entries take across the cluster; `None` when
    /// no counter was written yet.
    pub(in crate::store) async fn usage(&self, remote: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.read_usage(remote).await?.map(|(b, _)| b))
    }

    /// Add `delta` bytes to `remote`'s counter, unless it grows past
    /// `quota`. A decrease of a counter never written changes nothing.
    pub async fn add_usage(
        &self,
        remote: &str,
        delta: i64,
        quota: Option<u64>,
    ) -> Result<Added, StoreError> {
        let path = layout::usage(remote);
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            let (used, mode) = match self.read_usage(remote).await? {
                None if delta <= 0 => return Ok(Added::Done),
                None => (0, PutMode::Create),
                Some((used, e_tag)) => (
                    used,
                    PutMode::Update(UpdateVersion {
                        e_tag,
                        version: None,
                    }),
                ),
            };
            let sum = used.saturating_add_signed(delta);
            if delta > 0
                && let Some(q) = quota
                && sum > q
            {
                return Ok(Added::OverQuota { used });
            }
            if self.put_usage(&path, sum, mode).await? {
                return Ok(Added::Done);
            }
        }
        // Busy, not broken: this write fails (503), the tier stays healthy.
        Err(StoreError::Shared {
            op: "update usage",
            target: path.to_string(),
            message: format!(
                "other uploads changed the counter under {ATTEMPTS} attempts in a row; try again"
            ),
        })
    }

    /// Write `bytes` to the counter at `path` with `mode`; `false` when
    /// another write came first.
    pub(super) async fn put_usage(
        &self,
        path: &object_store::path::Path,
        bytes: u64,
        mode: PutMode,
    ) -> Result<bool, StoreError> {
        let payload = PutPayload::from(serde_json::to_vec(&Usage { bytes }).unwrap_or_default());
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self.bucket.put_opts(path, payload, opts).await {
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => self.outcome("update usage", path, Ok(false)),
            r => self.outcome("update usage", path, r.map(|_| true)),
        }
    }

    /// Every counter with its ETag and when it was last written (for the
    /// collection's recount).
    pub(super) async fn all_usage(
        &self,
    ) -> Result<std::collections::HashMap<String, Counter>, StoreError> {
        let mut all = std::collections::HashMap::new();
        for meta in self.list_all("usage").await? {
            let Some(remote) = meta.location.filename() else {
                continue;
            };
            if let Some((bytes, e_tag)) = self.read_usage(remote).await? {
                let counter = Counter {
                    bytes,
                    e_tag,
                    modified_ms: super::scan::modified_ms(&meta),
                };
                all.insert(remote.to_owned(), counter);
            }
        }
        Ok(all)
    }
}
