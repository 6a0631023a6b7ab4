//! The end of a body's fill: only verified bytes are committed (invariant
//! 4). The spool is committed under its digest (checked against the
//! plan's), the entry stored, the adapter's held-back key-value writes
//! released, and only then is the whole body published. A body that
//! cannot be trusted whole is delivered to the waiters and not stored.

use super::{FillError, Job, Published};
use crate::cache::fill::{Abort, Fill, Head};
use crate::cache::freshness::now_ms;
use crate::cache::plan::Plan;
use crate::store::{BlobRead, Entry, EntryClass, Spool, StoreError};
use std::sync::Arc;

/// Commit `spool` (verifying it against the plan's digest), store `entry`
/// for it, release the held key-value writes and publish the body.
/// Every failure here comes after the head: it aborts the fill.
pub(super) async fn commit(
    job: &Job,
    fill: &Arc<Fill>,
    plan: Plan,
    mut head: Head,
    mut entry: Entry,
    spool: Spool,
) -> Result<Published, FillError> {
    let engine = &job.engine;
    let blob = match engine.store.commit(spool, plan.expected).await {
        Ok(b) => b,
        Err(StoreError::DigestMismatch { expected, actual }) => {
            tracing::error!(remote = %job.remote.cfg.name, key = %plan.key, %expected, %actual, "upstream content failed verification; nothing stored");
            return Err(FillError::upstream_abort(format!(
                "the upstream sent content with digest {actual}, expected {expected}"
            )));
        }
        Err(e) => return Err(FillError::Aborted(Abort::store(&e))),
    };
    let now = now_ms();
    entry.blob = blob.digest;
    entry.size = blob.size;
    entry.stored_at_ms = now;
    if entry.class == EntryClass::Mutable {
        entry.ttl_ms = Some(plan.ttl.as_millis() as u64);
        entry.expires_at_ms = Some(now + plan.ttl.as_millis() as u64);
    }
    if let Err(e) = engine.store.put(&job.id, &entry, false).await {
        return Err(FillError::Aborted(Abort::store(&e)));
    }
    engine
        .metrics
        .set_store_bytes(engine.store.meta.total_size());
    apply_held_kv(job).await;
    let Some(data) = engine.open(&blob.digest).await else {
        return Err(FillError::Aborted(Abort::store(&StoreError::io(
            "open committed blob",
            blob.digest,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))));
    };
    head.size = Some(blob.size);
    Ok(Published::done(fill, Arc::new(head), data, blob.size))
}

/// Hand a close-delimited body without a digest to the waiting clients
/// and keep nothing: its clean end may be a cut connection, and a cut body
/// stored would be served as whole for good.
pub(super) fn deliver_unstored(
    job: &Job,
    fill: &Fill,
    head: Arc<Head>,
    data: Arc<dyn BlobRead>,
    len: u64,
) -> Published {
    tracing::warn!(remote = %job.remote.cfg.name, key = %job.plan.key, bytes = len, "the upstream body had neither Content-Length nor chunked framing and the plan no digest: delivered, not stored");
    Published::done(fill, head, data, len)
}

/// The body is verified and stored: the facts the adapter wrote about it
/// may now be seen by later calls. A store failure loses only them.
async fn apply_held_kv(job: &Job) {
    let Some(kv) = job.ctx.kv.clone() else {
        return;
    };
    let remote = job.remote.cfg.name.clone();
    let adapter = job
        .adapter
        .as_ref()
        .map_or_else(String::new, |a| a.name().to_owned());
    let applied = job.engine.store.run(move |_| Ok(kv.apply())).await;
    if let Ok(Err(e)) = applied {
        tracing::warn!(remote = %remote, adapter = %adapter, error = %e, "adapter key-value writes of a verified fetch were lost");
    }
}
