//! The local tier over the shared one: what the [`Store`] facade does
//! when a bucket is configured.
//!
//! - **Read-through.** A key the local tier lacks (or holds expired) is
//!   looked up in the bucket; a record there that serves is adopted: its
//!   blob is copied into the local tier (one download per blob on a node,
//!   verified against its digest before it is committed) and the record
//!   becomes the local entry. So a node with an empty disk serves what
//!   the cluster holds, and a mutable entry revalidated by one node is
//!   fresh for all of them until it expires.
//! - **Write-through.** A cached entry is written to the bucket after it
//!   is stored locally, in the background (the clients already have their
//!   bytes; a bucket that fails leaves the entry unshared, logged and
//!   counted). A hosted entry is written through before it is
//!   acknowledged: its blob first, then its record (created only if absent
//!   for write-once keys); when the bucket fails, the local change is
//!   undone and the upload gets 503. A remote's quota holds for the
//!   cluster: the bytes go into the bucket's usage counter before the
//!   record (`usage.rs`).
//!
//! Failing reads of the bucket are misses: the caller goes on to the
//! upstream.

use super::super::{Digest, Entry, EntryClass, EntryId, PutCheck, PutOutcome, Store, StoreError};
use super::usage::Added;
use super::{RecordWrite, Shared, SharedTier, Written};
use bytes::BytesMut;
use futures_util::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Bytes gathered from the bucket before they are written to the spool.
const WRITE_CHUNK: usize = 1024 * 1024;

impl Store {
    /// Adopt the bucket's record of `id` when `serves` accepts it: its blob
    /// copied into the local tier, the record stored as the local entry.
    /// Whether it was adopted; a failing bucket adopts nothing.
    pub(in crate::store) async fn adopt(
        &self,
        shared: &SharedTier,
        id: &EntryId,
        serves: &(dyn Fn(&Entry) -> bool + Send + Sync),
    ) -> bool {
        match self.try_adopt(shared, id, serves).await {
            Ok(adopted) => adopted,
            Err(e) => {
                tracing::warn!(entry = %id, error = %e, "reading through to the shared tier failed; treating it as a miss");
                false
            }
        }
    }

    pub(in crate::store) async fn try_adopt(
        &self,
        shared: &SharedTier,
        id: &EntryId,
        serves: &(dyn Fn(&Entry) -> bool + Send + Sync),
    ) -> Result<bool, StoreError> {
        let Some(entry) = shared.record(id).await?.entry() else {
            return Ok(false);
        };
        if !serves(&entry) || !self.fetch_blob(shared, &entry.blob).await? {
            return Ok(false);
        }
        let (meta, id, blob) = (self.meta.clone(), id.clone(), entry.blob);
        let put =
            Self::blocking(move || meta.put_entry(id.remote(), id.key(), &entry, false)).await;
        self.blobs.settle(&blob);
        put?;
        Ok(true)
    }

    /// Make blob `digest` local, from the bucket when it is not; `false`
    /// when the bucket does not hold it either.
    async fn fetch_blob(&self, shared: &SharedTier, digest: &Digest) -> Result<bool, StoreError> {
        if *digest == Digest::EMPTY {
            return Ok(true);
        }
        let _one = shared.flight(digest).await;
        let (blobs, d) = (self.blobs.clone(), *digest);
        let local = Self::blocking(move || {
            blobs
                .contains(&d)
                .map_err(|e| StoreError::io("look for blob", d, e))
        })
        .await?;
        if local {
            return Ok(true);
        }
        let Some(mut stream) = shared.download(digest).await? else {
            tracing::warn!(blob = %digest, "the shared tier has a record whose blob is missing");
            return Ok(false);
        };
        let mut spool = self.create_spool().await?;
        let mut buf = BytesMut::new();
        loop {
            // A body that stalls is a failure, not a wait without end (the
            // flight lock of the blob is held meanwhile).
            let next = tokio::time::timeout(shared.timeout, stream.next())
                .await
                .map_err(|_| StoreError::Shared {
                    op: "read blob",
                    target: digest.to_string(),
                    message: format!("no bytes for {:?}", shared.timeout),
                })?;
            let Some(chunk) = next else {
                break;
            };
            buf.extend_from_slice(&chunk?);
            if buf.len() >= WRITE_CHUNK {
                spool = self.write(spool, buf.split().freeze()).await?;
            }
        }
        if !buf.is_empty() {
            spool = self.write(spool, buf.freeze()).await?;
        }
        self.commit(spool, Some(*digest)).await?;
        shared.stats.blob_downloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Write `entry` (stored locally under `id`) through to the bucket in
    /// the background.
    pub(in crate::store) fn share_later(
        &self,
        shared: &Arc<SharedTier>,
        id: &EntryId,
        entry: Entry,
    ) {
        let (store, tier, id) = (self.clone(), shared.clone(), id.clone());
        shared.runtime.spawn(async move {
            store.share_now(&tier, &id, &entry).await;
        });
    }

    /// In cluster mode, write `entry` (just changed in the local index
    /// under `id` by code that holds the index itself) through to the
    /// bucket in the background; nothing on a single node.
    pub fn write_through(&self, id: &EntryId, entry: Entry) {
        if let Some(shared) = &self.shared {
            self.share_later(shared, id, entry);
        }
    }

    /// Write `entry` (stored locally under `id`) through to the bucket:
    /// its blob, then its record. A failure leaves it on this node only
    /// (logged, counted, and remembered for [`Store::reshare`]); whether it
    /// was shared.
    pub(in crate::store) async fn share_now(
        &self,
        shared: &SharedTier,
        id: &EntryId,
        entry: &Entry,
    ) -> bool {
        // A hosted entry never replaces a record: another node's upload
        // of the key may have been acknowledged meanwhile. A cached one
        // replaces only an older copy (compare-and-swap).
        let r = async {
            self.share_blob(shared, &entry.blob).await?;
            if entry.class == EntryClass::Hosted {
                shared
                    .put_record(id, Some(entry), RecordWrite::Create)
                    .await
            } else {
                shared.put_record_if_newer(id, entry).await
            }
        }
        .await;
        match r {
            Ok(_) => true,
            Err(e) => {
                shared.note_unshared(id);
                tracing::warn!(entry = %id, error = %e, "stored on this node only for now: the shared tier failed");
                false
            }
        }
    }

    /// Share the entries a failing bucket left on this node only, at most
    /// `n` per call (each upkeep round calls it); a failure keeps them for
    /// the next round. How many were shared.
    pub async fn reshare(&self, n: usize) -> usize {
        let Some(shared) = &self.shared else {
            return 0;
        };
        let mut done = 0;
        let mut ids = shared.take_unshared(n).into_iter();
        while let Some(id) = ids.next() {
            let (meta, rid) = (self.meta.clone(), id.clone());
            let Ok(Some(entry)) =
                Self::blocking(move || meta.get_entry(rid.remote(), rid.key())).await
            else {
                continue; // evicted or removed meanwhile
            };
            if !self.share_now(shared, &id, &entry).await {
                // Still failing: keep the rest for the next round.
                for rest in ids {
                    shared.note_unshared(&rest);
                }
                break;
            }
            done += 1;
        }
        done
    }

    /// Copy local blob `digest` into the bucket unless it is there.
    async fn share_blob(&self, shared: &SharedTier, digest: &Digest) -> Result<(), StoreError> {
        if *digest == Digest::EMPTY {
            return Ok(());
        }
        let Some(data) = self.open(digest).await? else {
            return Err(StoreError::Io {
                op: "share blob",
                target: digest.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the local blob is gone (evicted?)",
                ),
            });
        };
        shared.upload(digest, data).await
    }

    /// [`Store::put_checked`] of a durable (hosted) entry in cluster mode:
    /// blob to the bucket, the local check and put, the record to the
    /// bucket; a bucket failure or a record another node created first
    /// undoes the local put.
    pub(in crate::store) async fn put_checked_shared(
        &self,
        shared: &Arc<SharedTier>,
        id: &EntryId,
        entry: Entry,
        check: PutCheck,
    ) -> Result<PutOutcome, StoreError> {
        // In a task of its own: a client that goes away must not leave the
        // local put done and the record (or the undo) not.
        let (store, shared, id) = (self.clone(), shared.clone(), id.clone());
        tokio::spawn(async move { store.put_checked_both(&shared, &id, entry, check).await })
            .await
            .map_err(|e| {
                StoreError::io(
                    "run a storage task",
                    "hosted write",
                    std::io::Error::other(e),
                )
            })?
    }

    /// [`Store::put_checked_shared`], run to its end.
    async fn put_checked_both(
        &self,
        shared: &SharedTier,
        id: &EntryId,
        entry: Entry,
        check: PutCheck,
    ) -> Result<PutOutcome, StoreError> {
        let checked = std::time::Instant::now();
        self.share_blob(shared, &entry.blob).await?;
        let (if_absent, quota) = (check.if_absent, check.quota);
        // The quota is the cluster's, decided on the bucket's counter below:
        // this node's own count may hold entries others deleted.
        let local = PutCheck {
            quota: None,
            ..check
        };
        let outcome = self
            .put_checked_local(id, entry.clone(), local, true)
            .await?;
        let PutOutcome::Stored(previous) = &outcome else {
            return Ok(outcome);
        };
        // The quota across the cluster: the bytes this write adds go into
        // the bucket's counter first (`store/shared/usage.rs`).
        let mut added = 0;
        if let Some(limit) = quota {
            let counted = match shared.record(id).await {
                Ok(there) => {
                    let delta = entry.size as i64 - there.entry().map_or(0, |e| e.size as i64);
                    shared
                        .add_usage(id.remote(), delta, Some(limit))
                        .await
                        .map(|a| (a, delta))
                }
                Err(e) => Err(e),
            };
            match counted {
                Ok((Added::Done, delta)) => added = delta,
                Ok((Added::OverQuota { used }, _)) => {
                    self.undo_local(id, previous.clone()).await;
                    return Ok(PutOutcome::OverQuota { used });
                }
                Err(e) => {
                    self.undo_local(id, previous.clone()).await;
                    return Err(e);
                }
            }
        }
        let how = if if_absent {
            RecordWrite::Create
        } else {
            RecordWrite::Overwrite
        };
        // The collection spares the blob for a while after it was looked
        // at (`gc.rs`); a write slowed down since looks again.
        let written = match shared.recheck_blob(checked) {
            true => match self.share_blob(shared, &entry.blob).await {
                Ok(()) => shared.put_record(id, Some(&entry), how).await,
                Err(e) => Err(e),
            },
            false => shared.put_record(id, Some(&entry), how).await,
        };
        if matches!(written, Ok(Written::Stored)) {
            return Ok(outcome);
        }
        self.undo_local(id, previous.clone()).await;
        if added != 0
            && let Err(e) = shared.add_usage(id.remote(), -added, None).await
        {
            tracing::warn!(entry = %id, error = %e, "giving back the usage of a refused hosted write failed; the collection recounts it");
        }
        match written {
            Ok(_) => Ok(PutOutcome::Exists),
            Err(e) => Err(e),
        }
    }

    /// Put back the local entry a hosted write replaced (`previous`, or
    /// none) after the shared tier refused the write.
    async fn undo_local(&self, id: &EntryId, previous: Option<Box<Entry>>) {
        let (meta, rid) = (self.meta.clone(), id.clone());
        let undone = Self::blocking(move || match previous {
            Some(p) => meta
                .put_entry(rid.remote(), rid.key(), &p, true)
                .map(|_| ()),
            None => meta.remove_entry(rid.remote(), rid.key(), true).map(|_| ()),
        })
        .await;
        if let Err(e) = undone {
            tracing::error!(entry = %id, error = %e, "undoing a hosted write the shared tier refused failed; this node's copy differs from the cluster's until it is written again");
        }
    }

    /// [`Store::remove`] in cluster mode: the record leaves the bucket
    /// first (a failure changes nothing), then the local entry. Returns
    /// the entry that was removed here or, when this node never held it,
    /// in the bucket.
    pub(in crate::store) async fn remove_shared(
        &self,
        shared: &SharedTier,
        id: &EntryId,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        let in_bucket = shared.record(id).await?.entry();
        if let Some(e) = &in_bucket {
            shared.delete_record(id).await?;
            if e.class == EntryClass::Hosted
                && let Err(err) = shared.add_usage(id.remote(), -(e.size as i64), None).await
            {
                tracing::warn!(entry = %id, error = %err, "lowering the cluster's usage after a delete failed; the collection recounts it");
            }
        }
        let local = self.remove_local(id, durable).await?;
        Ok(local.or(in_bucket))
    }
}

/// What the bucket says of a hosted entry this node holds.
pub(in crate::store) enum Confirmed {
    /// The bucket's record has the same content, or there is none (an
    /// entry from before the node joined the cluster: it is written to
    /// the bucket now), or the bucket cannot be asked: the local copy is
    /// served.
    Same,
    /// Another node replaced it: adopt the bucket's.
    Changed,
    /// Deleted through some node (a tombstone): removed here too.
    Gone,
}

impl Store {
    /// Check a hosted entry against the bucket before it is served: hosted
    /// content changes through any node, and every node must answer as
    /// the cluster does (a small record read per hosted read).
    pub(in crate::store) async fn confirm_hosted(
        &self,
        shared: &Arc<SharedTier>,
        id: &EntryId,
        local: &Entry,
    ) -> Result<Confirmed, StoreError> {
        match shared.record(id).await {
            Ok(Shared::Found(e)) if e.blob == local.blob && e.size == local.size => {
                Ok(Confirmed::Same)
            }
            Ok(Shared::Found(_)) => Ok(Confirmed::Changed),
            Ok(Shared::Deleted) => {
                self.remove_local(id, false).await?;
                Ok(Confirmed::Gone)
            }
            Ok(Shared::Absent) => {
                self.share_later(shared, id, local.clone());
                Ok(Confirmed::Same)
            }
            Err(e) => {
                tracing::debug!(entry = %id, error = %e, "the shared tier cannot confirm a hosted entry; serving this node's copy");
                Ok(Confirmed::Same)
            }
        }
    }
}
