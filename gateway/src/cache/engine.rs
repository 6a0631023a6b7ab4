//! What the cache engine uses of the gateway, and nothing more: the store,
//! the upstream client, the metrics and the table of fills in progress.
//! A fill leader runs on an [`Engine`], not on the whole gateway state, so
//! that unit tests drive it with a store in a temp dir and an upstream on
//! 127.0.0.1, and a second front (gRPC) can run fills the same way.

use super::Fills;
use crate::metrics::Metrics;
use crate::store::Store;
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
