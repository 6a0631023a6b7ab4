//! The stored copy: the double-checked lookup a fill starts with (a fresh
//! entry, or a sibling holding the same digest, ends the fill at once),
//! and every way a fill ends by publishing an entry from the store —
//! confirmed, stale, or a new negative entry.

use super::{FillError, Job, Published, Step};
use crate::cache::Outcome;
use crate::cache::fill::Fill;
use crate::cache::freshness::{self, now_ms};
use crate::cache::head::head_of_entry;
use crate::plugins::wit_http::request_headers;
use crate::store::{BlobRead, Digest, Entry, EntryClass};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

/// Look the key up again: a fill that finished just before this one
/// started may have stored what we need. A fresh entry, or (for an
/// immutable object of known digest) another entry of the remote holding
/// that blob, is published as the result. Otherwise the entry that is
/// stored, if its blob is there, goes on to revalidation.
pub(super) async fn lookup(job: &Job, fill: &Arc<Fill>) -> Step<Option<Entry>> {
    let engine = &job.engine;
    let existing = match engine.store.entry(&job.id).await {
        Ok(e) => e.map(|e| Entry::clone(&e)),
        // A cluster's bucket that cannot say is a miss: the upstream is
        // asked (and the entry kept on this node until the bucket is back).
        Err(crate::store::StoreError::Shared { .. }) => None,
        Err(e) => return Err(FillError::store(e)),
    };
    // An entry whose blob went missing (evicted or damaged) is a miss.
    let (existing, data) = match existing {
        Some(e) => match engine.open(&e.blob).await {
            Some(d) => (Some(e), Some(d)),
            None => (None, None),
        },
        None => (None, None),
    };
    if let (Some(e), Some(data)) = (&existing, data) {
        let forced = freshness::NoCache::of(&request_headers(&job.req), &job.remote.cfg);
        if freshness::serves_fresh(e, now_ms(), forced) {
            return Ok(ControlFlow::Break(publish_done(
                fill,
                e,
                data,
                Outcome::Revalidated,
            )));
        }
    }
    // Content-addressed hit: an immutable object whose digest this remote
    // already holds under another key (a manifest fetched by tag, now asked
    // for by digest) is served from the store without the upstream, which
    // may be down. Only within the remote: another remote's content may
    // come from a registry this one's clients may not read.
    if existing.is_none()
        && job.plan.class == EntryClass::Immutable
        && let Some(digest) = job.plan.expected
        && let Some(entry) = entry_from_sibling(job, digest).await?
    {
        return publish_entry(job, fill, entry, Outcome::Revalidated)
            .await
            .map(ControlFlow::Break);
    }
    Ok(ControlFlow::Continue(existing))
}

/// Store and return an entry for the job's key that points at `digest`,
/// when another entry of the same remote already holds that blob. The
/// plan's content type and headers apply (the sibling's content type when
/// the plan has none).
async fn entry_from_sibling(job: &Job, digest: Digest) -> Result<Option<Entry>, FillError> {
    let store = &job.engine.store;
    let Some(sibling) = store
        .entry_holding(&job.remote.cfg.name, digest)
        .await
        .map_err(FillError::store)?
    else {
        return Ok(None);
    };
    let plan = &job.plan;
    let entry = Entry {
        blob: digest,
        size: sibling.size,
        stored_at_ms: now_ms(),
        content_type: plan.content_type.clone().or(sibling.content_type),
        headers: plan.headers.clone(),
        ..Entry::fetched(
            EntryClass::Immutable,
            plan.validator.clone(),
            job.sent.target.clone(),
        )
    };
    store
        .put(&job.id, &entry, false)
        .await
        .map_err(FillError::store)?;
    tracing::debug!(remote = %job.remote.cfg.name, key = %plan.key, blob = %digest, "served from a stored copy with the same digest");
    Ok(Some(entry))
}

/// Publish a stored entry as the fill's result.
async fn publish_entry(
    job: &Job,
    fill: &Arc<Fill>,
    entry: Entry,
    outcome: Outcome,
) -> Result<Published, FillError> {
    let Some(data) = job.engine.open(&entry.blob).await else {
        return Err(FillError::bad_gateway(
            "the cached object is missing from the store",
        ));
    };
    Ok(publish_done(fill, &entry, data, outcome))
}

/// Publish `entry`, whose blob is `data`, as the fill's result.
fn publish_done(
    fill: &Fill,
    entry: &Entry,
    data: Arc<dyn BlobRead>,
    outcome: Outcome,
) -> Published {
    Published::done(
        fill,
        Arc::new(head_of_entry(entry, outcome)),
        data,
        entry.size,
    )
}

/// Refresh an entry's TTL (304, same digest, or stale fallback) and
/// publish it. A stale fallback marks the entry stale (its hits say so
/// until the upstream answers again); an upstream confirmation clears it.
pub(super) async fn refresh_and_publish(
    job: &Job,
    fill: &Arc<Fill>,
    old: Entry,
    outcome: Outcome,
) -> Result<Published, FillError> {
    let stale = outcome == Outcome::Stale;
    let fallback_ttl = match old.class {
        EntryClass::NotFound => job.remote.cfg.negative_ttl,
        _ => job.plan.ttl,
    };
    let updated = job
        .engine
        .store
        .update(&job.id, move |e: &mut Entry| {
            let ttl = e.ttl_ms.unwrap_or(fallback_ttl.as_millis() as u64);
            let now = now_ms();
            e.stored_at_ms = now;
            if e.expires_at_ms.is_some() {
                e.expires_at_ms = Some(now + ttl);
            }
            e.stale_since_ms = match (stale, e.stale_since_ms) {
                (true, since) => Some(since.unwrap_or(now)),
                (false, _) => None,
            };
        })
        .await
        .map_err(FillError::store)?;
    publish_entry(job, fill, updated.unwrap_or(old), outcome).await
}

/// The upstream failed: publish the stored copy, marked stale.
pub(super) async fn serve_stale(
    job: &Job,
    fill: &Arc<Fill>,
    old: Entry,
) -> Result<Published, FillError> {
    job.engine.metrics.stale_served(&job.remote.cfg.name);
    tracing::warn!(remote = %job.remote.cfg.name, key = %job.plan.key, "upstream unavailable; serving the stale copy");
    refresh_and_publish(job, fill, old, Outcome::Stale).await
}

/// Store the upstream's 404 as a negative entry that lives `ttl`, and
/// publish it.
pub(super) async fn store_not_found(
    job: &Job,
    fill: &Arc<Fill>,
    ttl: Duration,
) -> Result<Published, FillError> {
    let store = &job.engine.store;
    let blob = store.commit_empty().await.map_err(FillError::store)?;
    let entry = Entry::negative(
        blob.digest,
        now_ms(),
        ttl.as_millis() as u64,
        job.sent.target.clone(),
    );
    store
        .put(&job.id, &entry, false)
        .await
        .map_err(FillError::store)?;
    publish_entry(job, fill, entry, Outcome::Miss).await
}
