//! What the cache engine uses of the gateway, and nothing more: the store,
//! the upstream client, the metrics and the table of fills in progress.
//! A fill leader runs on an [`Engine`], not on the whole gateway state, so
//! that unit tests drive it with a store in a temp dir and an upstream on
//! 127.0.0.1, and a second front (gRPC) can run fills the same way.

use super::Fills;
use super::freshness::{self, now_ms};
use crate::metrics::Metrics;
use crate::store::{BlobRead, Content, Digest, Entry, EntryId, Store};
use crate::upstream::Upstream;
use std::sync::Arc;

/// The parts of the gateway a fill uses (cheap to clone: each is shared).
#[derive(Clone)]
pub struct Engine {
    /// Index and blobs.
    pub store: Store,
    /// The upstream HTTP client.
    pub upstream: Upstream,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The fills in progress, by entry.
    pub fills: Arc<Fills>,
}

impl Engine {
    /// The entry for `id`, or `None` (also when the index read fails:
    /// logged, and treated as a miss).
    pub async fn entry(&self, id: &EntryId) -> Option<Arc<Entry>> {
        self.store.entry(id).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "index read failed; treating as a miss");
            None
        })
    }

    /// A fresh entry for `id` with its content ([`Store::fresh`]: no
    /// blocking task when both are in memory). `None` when absent, expired
    /// (or one the client's `no_cache` sends back upstream), or when its
    /// blob has gone missing — the caller then treats it as a miss.
    pub async fn fresh(
        &self,
        id: &EntryId,
        no_cache: freshness::NoCache,
    ) -> Option<(Arc<Entry>, Content)> {
        let serves = move |e: &Entry| freshness::serves_fresh(e, now_ms(), no_cache);
        self.store.fresh(id, serves).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "index read failed; treating as a miss");
            None
        })
    }

    /// The blob `digest`, when the store has it (a read error is logged
    /// and counts as missing).
    pub async fn open(&self, digest: &Digest) -> Option<Arc<dyn BlobRead>> {
        self.store.open(digest).await.unwrap_or_else(|e| {
            tracing::warn!(blob = %digest, error = %e, "reading a stored blob failed; treating it as missing");
            None
        })
    }
}
