//! The end of a body's fill: only verified bytes are released whole, and
//! only verified bytes are committed (invariant 4). The spool's length was
//! checked as it was written ([`super::tee`]); here its digest is checked
//! against the plan's, then the whole body is published to the waiters
//! ([`FillState::Done`](crate::cache::fill::FillState::Done), read from
//! the spool), with the adapter's held-back key-value writes about it,
//! and only then is it committed: fsynced, renamed into the blob store and
//! indexed. The clients finish their responses while the commit runs;
//! the fill stays in the in-flight map until the commit has ended, so a
//! request arriving meanwhile joins it (it reads the same spool) instead
//! of fetching again or seeing an entry half committed. A commit that
//! fails leaves the entry absent (the next request fetches again); the
//! clients keep the verified bytes they were sent. A body that cannot be
//! trusted whole is delivered to the waiters and not stored.

use super::{FillError, Job, Published};
use crate::cache::checksum::Checksum;
use crate::cache::fill::{Fill, Head};
use crate::cache::freshness::now_ms;
use crate::cache::plan::Plan;
use crate::store::{BlobRead, Entry, EntryClass, Spool, StoreError};
use std::sync::Arc;

/// What [`commit`] did once the body was released.
#[must_use]
pub(super) struct Released {
    /// The whole body was published to the waiters.
    pub published: Published,
    /// Whether it was also stored (false: the commit failed, logged).
    pub stored: bool,
}

/// Verify `spool` (the bytes the waiters read through `data`) against the
/// plan's digests (its sha256, and `checksum`, the body's digest in the
/// plan's other algorithm), publish it whole under `head`, then commit it
/// and store `entry` for it. A digest mismatch aborts the fill before the
/// last bytes are released; a failure of the commit after the release is
/// logged and leaves nothing stored.
#[allow(clippy::too_many_arguments)]
pub(super) async fn commit(
    job: &Job,
    fill: &Arc<Fill>,
    plan: Plan,
    mut head: Head,
    entry: Entry,
    spool: Spool,
    data: Arc<dyn BlobRead>,
    checksum: Option<Checksum>,
) -> Result<Released, FillError> {
    let actual = spool.digest();
    let mismatch = match (&plan.expected, &plan.checksum) {
        (Some(expected), _) if *expected != actual => {
            Some((expected.to_string(), actual.to_string()))
        }
        (_, Some(expected)) if checksum.as_ref() != Some(expected) => Some((
            expected.to_string(),
            checksum.map_or_else(|| "none".into(), |c| c.to_string()),
        )),
        _ => None,
    };
    if let Some((expected, actual)) = mismatch {
        tracing::error!(remote = %job.remote.cfg.name, key = %plan.key, %expected, %actual, "upstream content failed verification; nothing stored");
        // Dropping the spool deletes it.
        return Err(FillError::upstream_abort(format!(
            "the upstream sent content with digest {actual}, expected {expected}"
        )));
    }
    let len = spool.len();
    head.size = Some(len);
    // The entry's life starts when its clients got it, not when the
    // commit that follows ends.
    let now = now_ms();
    // What the adapter learnt from the verified body is visible before
    // its clients can send their next request.
    apply_held_kv(job).await;
    let published = Published::done(fill, Arc::new(head), data, len);
    let stored = match store(job, &plan, entry, spool, now).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(remote = %job.remote.cfg.name, key = %plan.key, error = %e, "the verified body was delivered, but storing it failed; nothing stored");
            false
        }
    };
    Ok(Released { published, stored })
}

/// Make the verified `spool` durable under its digest (the store checks
/// it against the plan's again) and store `entry` for it as of `now`.
async fn store(
    job: &Job,
    plan: &Plan,
    mut entry: Entry,
    spool: Spool,
    now: u64,
) -> Result<(), StoreError> {
    let engine = &job.engine;
    let blob = engine.store.commit(spool, plan.expected).await?;
    entry.blob = blob.digest;
    entry.size = blob.size;
    entry.stored_at_ms = now;
    if entry.class == EntryClass::Mutable {
        entry.ttl_ms = Some(plan.ttl.as_millis() as u64);
        entry.expires_at_ms = Some(now + plan.ttl.as_millis() as u64);
    }
    let sharing = super::cluster::Role::sharing(job.cluster.get());
    engine
        .store
        .put_sharing(&job.id, &entry, false, sharing)
        .await?;
    engine
        .metrics
        .set_store_bytes(engine.store.meta.total_size());
    Ok(())
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

/// The body is verified: the facts the adapter wrote about it during the
/// fill may now be seen by later calls (also when storing the body then
/// fails: they are facts about verified bytes). A failure to write them
/// loses only them.
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
