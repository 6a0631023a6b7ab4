//! The cluster's collection: one node at a time (the holder of `gc/lease`),
//! at most once per `gc_every`, lists the bucket (`scan.rs`) and
//!
//! 1. recounts the hosted usage counters from the records (`usage.rs`),
//!    when nothing changed them meanwhile;
//! 2. deletes blobs no record references that are older than `gc_grace`;
//! 3. beyond `max_size`, evicts the least recently used cached blobs with
//!    their records, down to 90 % of it (hosted entries are never
//!    evicted: quotas bound them);
//! 4. deletes pins older than `gc_grace` and leases dead for ten lease
//!    TTLs, and merges the nodes' access batches into `gc/access`.
//!
//! **Why a blob being committed elsewhere is not deleted.** A new blob is
//! younger than `gc_grace`. A node that writes a record naming a blob
//! already in the bucket looks at the blob first; when it is older than
//! half of `gc_grace` it writes the blob's pin before the record
//! ([`SharedTier::upload`]). The collection deletes a blob only when the
//! records listed at the start of its round do not name it, the blob is
//! older than `gc_grace` before that start, and the pin, read again just
//! before the delete, is too. A node that took longer than a quarter of
//! `gc_grace` since it looked at the blob looks (and pins) again before it
//! writes the record ([`SharedTier::recheck_blob`]), so a record written
//! after the listing began names a blob that is young or freshly pinned.
//! What is left is the moment between that last read of the pin and the
//! delete; `artgate fsck --shared` finds a record whose blob went missing
//! and `--repair` puts the blob back from a node that holds it.
//!
//! A record this version cannot read may name any blob: while there is
//! one, a round deletes, evicts and recounts nothing.

use super::access::AccessTimes;
use super::scan::{Census, modified_ms};
use super::usage::Counter;
use super::{Claim, LeaseGuard, SharedTier, layout};
use crate::store::{Digest, StoreError, now_ms};
use object_store::{ObjectStoreExt as _, PutMode, PutPayload, UpdateVersion};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Eviction stops at this share of `max_size`, so that one round makes
/// room for a while.
const LOW_WATER_PERCENT: u64 = 90;

/// A lease not renewed for this many TTLs belonged to a node that died.
const DEAD_LEASE_TTLS: u32 = 10;

/// What one collection round did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Bytes of blobs in the bucket after the round.
    pub bucket_bytes: u64,
    /// Records of cached entries evicted beyond `max_size`.
    pub records_evicted: u64,
    /// Blobs deleted (evicted or unreferenced).
    pub blobs_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Hosted usage counters corrected.
    pub usage_fixed: u64,
    /// Old pins and dead leases deleted.
    pub leftovers_deleted: u64,
    /// Access batches merged.
    pub access_batches: u64,
}

impl SharedTier {
    /// Start [`SharedTier::collect`] in a task of its own (a round may
    /// take minutes; the node's upkeep goes on meanwhile); at most one
    /// runs on a node at a time.
    pub fn collect_in_background(self: &std::sync::Arc<Self>) {
        if self.collecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let tier = self.clone();
        self.runtime.spawn(async move {
            match tier.collect().await {
                Ok(Some(r)) => tracing::info!(
                    evicted = r.records_evicted,
                    blobs_deleted = r.blobs_deleted,
                    bytes_freed = r.bytes_freed,
                    bucket_bytes = r.bucket_bytes,
                    usage_fixed = r.usage_fixed,
                    "the cluster's collection ran"
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the cluster's collection failed; the next round tries again")
                }
            }
            tier.collecting.store(false, Ordering::Release);
        });
    }

    /// Run a collection round when one is due on this node and no other
    /// node ran one less than `gc_every` ago; `None` when none ran.
    async fn collect(self: &std::sync::Arc<Self>) -> Result<Option<GcReport>, StoreError> {
        let every = self.gc_every.as_millis() as u64;
        let now = now_ms();
        if now < self.next_gc_ms.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.next_gc_ms.store(now + every, Ordering::Relaxed);
        let guard = match self
            .claim_at(
                layout::gc_lease(),
                &"the collection",
                self.advertised().unwrap_or_default(),
            )
            .await
        {
            Claim::Held(g) => g,
            Claim::Elsewhere { .. } | Claim::Alone => return Ok(None),
        };
        let report = self.collect_round(&guard).await?;
        self.stats.gc_rounds.fetch_add(1, Ordering::Relaxed);
        self.stats
            .gc_records_evicted
            .fetch_add(report.records_evicted, Ordering::Relaxed);
        self.stats
            .gc_blobs_deleted
            .fetch_add(report.blobs_deleted, Ordering::Relaxed);
        self.stats
            .gc_bytes_freed
            .fetch_add(report.bytes_freed, Ordering::Relaxed);
        // The lease stays until the next round is due: no other node runs
        // one before.
        guard.keep_until(now_ms() + every).await;
        Ok(Some(report))
    }

    /// One round under `guard` (see the module docs).
    async fn collect_round(&self, guard: &LeaseGuard) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        let counters = self.all_usage().await?;
        let census = self.census().await?;
        let old = census
            .started_ms
            .saturating_sub(self.gc_grace.as_millis() as u64);
        let (mut times, batches) = self.merged_access().await?;
        report.access_batches = batches.len() as u64;
        // A record this version cannot read (a newer artgate's, or a
        // damaged one) may name any blob: nothing is deleted or recounted
        // while there is one.
        let blind = !census.unreadable.is_empty();
        if blind {
            tracing::warn!(
                records = census.unreadable.len(),
                example = %census.unreadable[0].0,
                "the bucket holds records this node cannot read; the collection deletes nothing this round (artgate fsck --shared lists them)"
            );
        } else {
            report.usage_fixed = self.recount(&census, counters).await?;
        }

        let referrers = census.referrers();
        let mut total: u64 = census
            .blobs
            .values()
            .fold(0, |t, b| t.saturating_add(b.size));
        let mut gone = Vec::new();
        for (d, b) in &census.blobs {
            if guard.is_lost() {
                return Ok(report);
            }
            if blind || referrers.contains_key(d) || b.modified_ms >= old {
                continue;
            }
            if self.delete_unpinned(d, old).await? {
                report.blobs_deleted += 1;
                report.bytes_freed += b.size;
                total = total.saturating_sub(b.size);
                gone.push(*d);
            }
        }

        if let Some(max) = self.max_size
            && total > max
            && !blind
        {
            let low = max - max / 100 * (100 - LOW_WATER_PERCENT);
            let mut lru: Vec<(u64, Digest)> = referrers
                .iter()
                .filter(|(_, rs)| rs.iter().all(|r| r.referent.is_some_and(|t| !t.hosted)))
                .filter_map(|(d, _)| {
                    let b = census.blobs.get(d).filter(|b| b.modified_ms < old)?;
                    let used = times.blobs.get(&d.hex()).copied().unwrap_or(0);
                    Some((used.max(b.modified_ms), *d))
                })
                .collect();
            lru.sort_unstable();
            for (_, d) in lru {
                if total <= low || guard.is_lost() {
                    break;
                }
                if self.pinned(&d, old).await? {
                    continue;
                }
                for r in &referrers[&d] {
                    match self.bucket.delete(&r.path).await {
                        Err(object_store::Error::NotFound { .. }) => {}
                        res => self.outcome("evict record", &r.path, res)?,
                    }
                    report.records_evicted += 1;
                }
                if self.delete_unpinned(&d, old).await? {
                    let size = census.blobs[&d].size;
                    report.blobs_deleted += 1;
                    report.bytes_freed += size;
                    total = total.saturating_sub(size);
                    gone.push(d);
                }
            }
            if total > max {
                tracing::warn!(
                    bucket = %self.url,
                    bytes = total,
                    max_size = max,
                    "the bucket stays over [shared] max_size: hosted entries and blobs younger than gc_grace are not evicted"
                );
            }
        }
        report.bucket_bytes = total;

        report.leftovers_deleted = self.delete_leftovers(&census, old).await?;
        let before = times.blobs.len();
        for d in &gone {
            times.blobs.remove(&d.hex());
        }
        times
            .blobs
            .retain(|hex, _| Digest::from_hex(hex).is_ok_and(|d| census.blobs.contains_key(&d)));
        if batches.is_empty() && times.blobs.len() == before {
            return Ok(report);
        }
        let path = layout::gc_access();
        let payload = PutPayload::from(serde_json::to_vec(&times).unwrap_or_default());
        let r = self.bucket.put(&path, payload).await;
        self.outcome("write access times", &path, r)?;
        for b in batches {
            let _ = self.bucket.delete(&b).await;
        }
        Ok(report)
    }

    /// Correct the usage counters read before `census` (`counters`) to
    /// what its records total; a counter written meanwhile is left for the
    /// next round. How many were corrected.
    async fn recount(
        &self,
        census: &Census,
        counters: HashMap<String, Counter>,
    ) -> Result<u64, StoreError> {
        let mut sums: HashMap<&str, u64> = HashMap::new();
        for r in &census.records {
            if let Some(t) = r.referent.filter(|t| t.hosted) {
                *sums.entry(r.id.remote()).or_default() += t.size;
            }
        }
        let mut fixed = 0;
        // A counter written shortly before the listing may count an upload
        // whose record the listing missed: left for the next round.
        let settled = census
            .started_ms
            .saturating_sub(2 * self.timeout.as_millis() as u64);
        for (remote, c) in &counters {
            let (bytes, e_tag) = (&c.bytes, &c.e_tag);
            let sum = sums.remove(remote.as_str()).unwrap_or(0);
            if sum == *bytes || c.modified_ms >= settled {
                continue;
            }
            let mode = PutMode::Update(UpdateVersion {
                e_tag: e_tag.clone(),
                version: None,
            });
            if self.put_usage(&layout::usage(remote), sum, mode).await? {
                tracing::info!(
                    remote,
                    was = bytes,
                    now = sum,
                    "corrected a hosted usage counter"
                );
                fixed += 1;
            }
        }
        for (remote, sum) in sums {
            if self
                .put_usage(&layout::usage(remote), sum, PutMode::Create)
                .await?
            {
                fixed += 1;
            }
        }
        Ok(fixed)
    }

    /// The merged access times and the batches not merged into them yet
    /// (merged now; deleted once the merge is written).
    async fn merged_access(
        &self,
    ) -> Result<(AccessTimes, Vec<object_store::path::Path>), StoreError> {
        let path = layout::gc_access();
        let mut times = self.read_times(&path).await?.unwrap_or_default();
        let mut batches = Vec::new();
        for meta in self.list_all("access").await? {
            if let Some(batch) = self.read_times(&meta.location).await? {
                times.merge(batch);
            }
            batches.push(meta.location);
        }
        Ok((times, batches))
    }

    /// Access times at `path`; `None` when absent. Unreadable times are
    /// dropped with a warning (they only order the eviction).
    async fn read_times(
        &self,
        path: &object_store::path::Path,
    ) -> Result<Option<AccessTimes>, StoreError> {
        let Some((bytes, _)) = self.get_small("read access times", path, path).await? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(t) => Ok(Some(t)),
            Err(e) => {
                tracing::warn!(object = %path, error = %e, "unreadable access times in the bucket; ignored");
                Ok(None)
            }
        }
    }

    /// Whether blob `d` was pinned at or after `old`.
    async fn pinned(&self, d: &Digest, old: u64) -> Result<bool, StoreError> {
        let pin = layout::pin(d);
        match self.bucket.head(&pin).await {
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            r => Ok(modified_ms(&self.outcome("read pin", &pin, r)?) >= old),
        }
    }

    /// Delete blob `d` unless it was pinned at or after `old`; whether it
    /// is gone.
    async fn delete_unpinned(&self, d: &Digest, old: u64) -> Result<bool, StoreError> {
        if self.pinned(d, old).await? {
            return Ok(false);
        }
        let path = layout::blob(d);
        match self.bucket.delete(&path).await {
            Err(object_store::Error::NotFound { .. }) => Ok(true),
            r => self.outcome("delete blob", &path, r).map(|_| true),
        }
    }

    /// Delete pins older than `old` and leases nobody renewed for
    /// [`DEAD_LEASE_TTLS`] TTLs; how many.
    async fn delete_leftovers(&self, census: &Census, old: u64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for (d, at) in &census.pins {
            if *at < old && self.delete_if_older(&layout::pin(d), old).await {
                deleted += 1;
            }
        }
        let dead = census
            .started_ms
            .saturating_sub((self.lease_ttl * DEAD_LEASE_TTLS).as_millis() as u64);
        for meta in self.list_all("leases").await? {
            if modified_ms(&meta) < dead && self.delete_if_older(&meta.location, dead).await {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Delete the object at `path` when it is still older than `than`
    /// (unix milliseconds): one written again since the listing stays.
    async fn delete_if_older(&self, path: &object_store::path::Path, than: u64) -> bool {
        match self.bucket.head(path).await {
            Ok(meta) if modified_ms(&meta) < than => self.bucket.delete(path).await.is_ok(),
            _ => false,
        }
    }

    /// Whether a write that looked at its blob at `checked` must look
    /// again before it writes the record: after a quarter of `gc_grace`
    /// (the pin it may have written then is only sure to protect the blob
    /// for half).
    pub(super) fn recheck_blob(&self, checked: std::time::Instant) -> bool {
        checked.elapsed() > self.gc_grace / 4
    }

    /// Write blob `d`'s pin when `meta` (the blob as the bucket has it)
    /// is older than half of `gc_grace`: a record naming it is about to be
    /// written (see the module docs).
    pub(super) async fn pin_if_old(
        &self,
        d: &Digest,
        meta: &object_store::ObjectMeta,
    ) -> Result<(), StoreError> {
        let half = self.gc_grace.as_millis() as u64 / 2;
        if modified_ms(meta) + half > now_ms() {
            return Ok(());
        }
        let pin = layout::pin(d);
        let r = self.bucket.put(&pin, PutPayload::default()).await;
        self.outcome("pin blob", &pin, r).map(|_| ())
    }
}
