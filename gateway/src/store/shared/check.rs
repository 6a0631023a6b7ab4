//! `artgate fsck --shared`: check the bucket's records against its blobs.
//! Safe while the cluster serves (it only reads, and `--repair` only adds
//! blobs or drops cached records).
//!
//! Damage is a record naming a blob the bucket lacks or holds at another
//! size, or a record that cannot be read. `--repair` puts such a blob back
//! from this node's local tier when it holds it, and otherwise drops a
//! cached entry's record (the next request fetches it again); a hosted
//! entry without its blob anywhere stays reported (unreadable records too:
//! they may be a newer artgate's). Unreferenced blobs are leftovers: the
//! collection deletes them after `gc_grace`.

use super::scan::{Census, RecordInfo, Referent};
use super::{Shared, SharedTier, layout};
use crate::store::{BlobStore, Digest, StoreError};
use object_store::ObjectStoreExt as _;
use serde::Serialize;
use std::sync::Arc;

/// Examples kept in a report.
const MAX_EXAMPLES: usize = 32;

/// What [`SharedTier::check`] found (and, with `repair`, fixed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SharedCheck {
    /// What was found: `clean`, `leftovers` (only unreferenced blobs) or
    /// `damage`.
    pub verdict: &'static str,
    /// Whether problems were repaired (the counts are what was found).
    pub repaired: bool,
    /// Records of entries.
    pub records: u64,
    /// Tombstones (deleted hosted entries).
    pub tombstones: u64,
    /// Blobs in the bucket.
    pub blobs: u64,
    /// Their bytes.
    pub bucket_bytes: u64,
    /// Objects under `index/` that are not readable records.
    pub unreadable_records: u64,
    /// Records naming a blob the bucket lacks.
    pub records_missing_blob: u64,
    /// Records whose blob has another size than the entry.
    pub records_wrong_size: u64,
    /// Blobs no record names (the collection deletes them).
    pub unreferenced_blobs: u64,
    /// Their bytes.
    pub unreferenced_bytes: u64,
    /// Blobs written back from this node's local tier (`--repair`).
    pub blobs_restored: u64,
    /// Cached entries' records dropped because no copy of their blob was
    /// found (`--repair`).
    pub records_dropped: u64,
    /// Damage `--repair` could not fix: hosted entries whose blob this
    /// node does not hold, unreadable records.
    pub unrepaired: u64,
    /// A few of the problems, one sentence each.
    pub examples: Vec<String>,
}

impl SharedCheck {
    /// Whether something the bucket promises is missing or wrong (after
    /// a repair: still).
    pub fn damaged(&self) -> bool {
        if self.repaired {
            return self.unrepaired > 0;
        }
        self.found_damage()
    }

    /// Whether the check found damage (before any repair).
    fn found_damage(&self) -> bool {
        self.unreadable_records + self.records_missing_blob + self.records_wrong_size > 0
    }

    fn example(&mut self, text: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(text);
        }
    }
}

impl SharedTier {
    /// Check every record against the blobs; with `repair`, fix what can
    /// be fixed, with `local` (this node's blob files) as the source of
    /// lost blobs.
    pub async fn check(
        &self,
        repair: bool,
        local: Option<&dyn BlobStore>,
    ) -> Result<SharedCheck, StoreError> {
        let census: Census = self.census().await?;
        let mut c = SharedCheck {
            repaired: repair,
            blobs: census.blobs.len() as u64,
            bucket_bytes: census.blobs.values().map(|b| b.size).sum(),
            ..SharedCheck::default()
        };
        for (path, why) in &census.unreadable {
            c.unreadable_records += 1;
            c.example(format!("{path} is not a readable record: {why}"));
            c.unrepaired += 1;
        }
        let referrers = census.referrers();
        for (d, b) in &census.blobs {
            if !referrers.contains_key(d) {
                c.unreferenced_blobs += 1;
                c.unreferenced_bytes += b.size;
            }
        }
        for r in &census.records {
            let Some(t) = r.referent else {
                c.tombstones += 1;
                continue;
            };
            c.records += 1;
            if t.blob == Digest::EMPTY {
                continue;
            }
            let listed = census.blobs.get(&t.blob).map(|b| b.size);
            if listed == Some(t.size) || !self.still_broken(r, &t).await? {
                continue;
            }
            let problem = match census.blobs.get(&t.blob) {
                None => {
                    c.records_missing_blob += 1;
                    format!("{} names blob {} the bucket lacks", r.id, t.blob)
                }
                Some(b) if b.size != t.size => {
                    c.records_wrong_size += 1;
                    format!(
                        "{} names blob {} of {} bytes; the bucket's has {}",
                        r.id, t.blob, t.size, b.size
                    )
                }
                Some(_) => continue,
            };
            c.example(problem);
            if !repair {
                continue;
            }
            if self.restore(&t.blob, t.size, local).await? {
                c.blobs_restored += 1;
            } else if !t.hosted {
                match self.bucket.delete(&r.path).await {
                    Err(object_store::Error::NotFound { .. }) => {}
                    res => self.outcome("drop record", &r.path, res)?,
                }
                c.records_dropped += 1;
            } else {
                c.unrepaired += 1;
                c.example(format!(
                    "{}: no copy of its blob on this node; run fsck --shared --repair on a node that holds it",
                    r.id
                ));
            }
        }
        // What was found (a repair's outcome is in `unrepaired`).
        c.verdict = if c.found_damage() {
            "damage"
        } else if c.unreferenced_blobs > 0 {
            "leftovers"
        } else {
            "clean"
        };
        Ok(c)
    }

    /// Whether record `r`'s problem with its blob (`t`) is still there
    /// when both are looked at again: the cluster may have changed the
    /// record or the blob since the listing (an eviction, a delete, a
    /// replacement).
    async fn still_broken(&self, r: &RecordInfo, t: &Referent) -> Result<bool, StoreError> {
        match self.record(&r.id).await? {
            Shared::Found(e) if e.blob == t.blob && e.size == t.size => {}
            _ => return Ok(false),
        }
        Ok(self
            .blob_meta(&t.blob)
            .await?
            .is_none_or(|m| m.size != t.size))
    }

    /// Write blob `d` (of `size` bytes) back from `local`; whether it was.
    async fn restore(
        &self,
        d: &Digest,
        size: u64,
        local: Option<&dyn BlobStore>,
    ) -> Result<bool, StoreError> {
        let Some(local) = local else {
            return Ok(false);
        };
        let data = match local.open(d) {
            Ok(Some(data)) if data.len() == size => Arc::<dyn crate::store::BlobRead>::from(data),
            _ => return Ok(false),
        };
        // A blob of the wrong size is replaced, not kept.
        let path = layout::blob(d);
        match self.bucket.delete(&path).await {
            Err(object_store::Error::NotFound { .. }) => {}
            res => self.outcome("delete blob", &path, res)?,
        }
        self.upload(d, data).await?;
        Ok(true)
    }
}
