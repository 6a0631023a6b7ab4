//! The fill leader: the one task per key that talks to the upstream,
//! revalidates or refetches, streams the body into a spool while
//! publishing progress to waiters, verifies it, commits it (invariants 3,
//! 4 and 5) — or falls back to the stale copy when the upstream fails.
//!
//! [`run`] is an orchestrator over named phases, each in its own file:
//! the stored copy ([`stored`]), revalidation and what an upstream answer
//! means ([`revalidate`]), the upstream request with the adapter's
//! `on-response` retries ([`fetch`]), then the body: buffered for the
//! adapter to inspect ([`inspect`]) or streamed to the waiters ([`tee`]),
//! and committed once verified ([`commit`]). A phase either hands the
//! next one its value, or ends the fill: it published the result
//! ([`Published`]) or failed ([`FillError`]).

pub mod cluster;
mod commit;
mod error;
mod fetch;
mod inspect;
mod revalidate;
mod stored;
mod tee;

pub use error::FillError;

use super::engine::Engine;
use super::fill::{Fill, FillState, Head};
use super::plan::Plan;
use crate::plugins::{Adapter, CallContext, wit};
use crate::state::RemoteRuntime;
use crate::store::{BlobRead, EntryId};
use bytes::Bytes;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

/// Most `retry` answers an adapter may give for one fetch.
pub const MAX_ADAPTER_RETRIES: u32 = 3;

/// Everything the leader needs; owned, since it runs in its own task.
pub struct Job {
    /// What the fill uses of the gateway.
    pub engine: Engine,
    /// The remote.
    pub remote: Arc<RemoteRuntime>,
    /// The resolved plan.
    pub plan: Plan,
    /// The upstream request as the adapter asked for it.
    pub sent: wit::UpstreamRequest,
    /// The client's body, when it is forwarded (buffered whole).
    pub body: Option<Bytes>,
    /// The client request as the adapter saw it.
    pub req: wit::Request,
    /// The adapter (for `on-response` and `inspect-body`); none for a
    /// fetch an adapter asked for from inside a call (`cache-send`), whose
    /// responses are accepted as they come and never inspected.
    pub adapter: Option<Arc<Adapter>>,
    /// Call context for adapter calls.
    pub ctx: CallContext,
    /// The entry the fill fills (the fill's id too).
    pub id: EntryId,
    /// Set when a stored index asks for the files it references to be
    /// fetched too ([`run`] returns it).
    pub prefetch: OnceLock<Prefetch>,
    /// This node's part in a cluster-wide fill ([`cluster`]), once known.
    pub cluster: OnceLock<cluster::Role>,
}

/// Files an inspected index references, to fetch into the cache next
/// ([`super::prefetch::spawn`]).
pub struct Prefetch {
    /// The remote they belong to.
    pub remote: Arc<RemoteRuntime>,
    /// The adapter that plans them.
    pub adapter: Arc<Adapter>,
    /// Their paths, relative to the remote.
    pub paths: Vec<String>,
}

/// Proof that the fill's final state was published: the only success a
/// phase that ends the fill can return.
#[must_use]
struct Published(());

impl Published {
    /// Publish `len` bytes of `data` under `head` as the fill's complete
    /// body.
    fn done(fill: &Fill, head: Arc<Head>, data: Arc<dyn BlobRead>, len: u64) -> Published {
        fill.publish(FillState::Done { head, data, len });
        Published(())
    }
}

/// What a phase returns: `Continue` with what the next phase needs,
/// `Break` once the fill's result is published, or an error.
type Step<T> = Result<ControlFlow<Published, T>, FillError>;

/// Run a phase: its value when the fill goes on; otherwise return from the
/// orchestrator with what it published, or its error.
macro_rules! next {
    ($phase:expr) => {
        match $phase? {
            ControlFlow::Continue(value) => value,
            ControlFlow::Break(published) => return Ok(published),
        }
    };
}

/// Run the fill to completion, publishing every step to `fill`'s waiters,
/// then remove it from the in-flight map. What the adapter writes to its
/// key-value store meanwhile is held back and written only when a verified
/// body is committed (`plugins/kv.rs`). Returns the files a stored index
/// asked to prefetch.
pub async fn run(mut job: Job, fill: Arc<Fill>) -> Option<Prefetch> {
    job.ctx = job.ctx.deferring_kv();
    let engine = job.engine.clone();
    let id = job.id.clone();
    engine.metrics.fills_inflight(1);
    let outcome = phases(&job, &fill).await;
    // Leave the map before publishing a failure: a request arriving after
    // it is published must start a new fetch, not join this dead one.
    engine.fills.finish(&id, &fill);
    if let Err(e) = outcome {
        // Clients only see their connection cut: say why once, here.
        if let FillError::Aborted(why) = &e {
            tracing::warn!(remote = %job.remote.cfg.name, key = %job.plan.key, culprit = ?why.culprit, reason = %why.reason, "fill aborted after the headers; nothing stored");
        }
        fill.publish(e.into_state());
    }
    engine.metrics.fills_inflight(-1);
    job.prefetch.into_inner()
}

/// The fill, phase by phase: a fresh stored copy, or one the upstream
/// confirms by `HEAD`, ends it early; in a cluster, a miss another node is
/// fetching is streamed from it; otherwise the upstream is asked
/// (conditionally when there is a stored copy), its answer decides between
/// the stored copy, a negative entry, an error and a body, and the body is
/// inspected by the adapter or streamed to the waiters, then committed.
async fn phases(job: &Job, fill: &Arc<Fill>) -> Result<Published, FillError> {
    let stored = next!(stored::lookup(job, fill).await);
    next!(revalidate::head_compare(job, fill, stored.as_ref()).await);
    if let Some(url) = cluster::coordinate(job, stored.is_some()).await
        && let Some(resp) = cluster::from_peer(job, &url).await
    {
        return tee::stream(job, fill, tee::Body::relay(job, resp).await?).await;
    }
    // In a cluster, the node that fetched this key may have shared it
    // between the first lookup and the claim (a bucket slow to refuse the
    // claim makes that likely): look once more before going upstream.
    let stored = match stored {
        None if job.engine.store.shared.is_some() => next!(stored::lookup(job, fill).await),
        stored => stored,
    };
    let validators = revalidate::validators(&job.plan, stored.as_ref());
    let answer = fetch::send(job, validators).await?;
    let fetched = next!(revalidate::answer(job, fill, answer, stored.as_ref()).await);
    let body = tee::Body::open(job, fetched).await?;
    match body.plan.inspect_limit {
        Some(limit) => inspect::run(job, fill, body, limit, stored).await,
        None => tee::stream(job, fill, body).await,
    }
}

#[cfg(test)]
mod tests;
