//! What the bucket holds, listed: every record (what it references), every
//! blob with its size and age, every pin. The cluster's collection
//! (`gc.rs`) and `artgate fsck --shared` (`check.rs`) work from it.
//!
//! A listing returns each object's ETag, so a record read in an earlier
//! round is not read again unless it changed: after the first round, a
//! census costs the listings and a read per changed record.

use super::{SharedTier, layout};
use crate::store::{Digest, EntryClass, EntryId, StoreError, now_ms};
use futures_util::StreamExt as _;
use object_store::path::Path;
use std::collections::HashMap;

/// Record reads in flight at once during a census.
const READS_IN_FLIGHT: usize = 16;

/// What a record references, as far as the collection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Referent {
    /// The blob holding the entry's body.
    pub blob: Digest,
    /// The entry's size.
    pub size: u64,
    /// Whether it is a hosted entry (never evicted).
    pub hosted: bool,
}

/// One record in the bucket.
#[derive(Debug, Clone)]
pub struct RecordInfo {
    /// Where it is.
    pub path: Path,
    /// The entry it is the record of.
    pub id: EntryId,
    /// What it references; `None`: a tombstone.
    pub referent: Option<Referent>,
}

/// One blob in the bucket.
#[derive(Debug, Clone, Copy)]
pub struct BlobInfo {
    /// Its size.
    pub size: u64,
    /// When it was written (unix milliseconds).
    pub modified_ms: u64,
}

/// The bucket's contents at one moment.
#[derive(Debug, Default)]
pub struct Census {
    /// When the listing of records began (unix milliseconds): a record
    /// written later may be missing from it.
    pub started_ms: u64,
    /// Every readable record.
    pub records: Vec<RecordInfo>,
    /// Objects under `index/` that are not readable records, with why.
    pub unreadable: Vec<(Path, String)>,
    /// Every blob.
    pub blobs: HashMap<Digest, BlobInfo>,
    /// Every pin: the blob and when it was written (unix milliseconds).
    pub pins: HashMap<Digest, u64>,
}

/// Records read in earlier rounds, by path and ETag.
pub(super) type RecordMemo = HashMap<Path, (Option<String>, Option<Referent>)>;

impl Census {
    /// The live records referencing each blob.
    pub fn referrers(&self) -> HashMap<Digest, Vec<&RecordInfo>> {
        let mut map: HashMap<Digest, Vec<&RecordInfo>> = HashMap::new();
        for r in &self.records {
            if let Some(t) = &r.referent
                && t.blob != Digest::EMPTY
            {
                map.entry(t.blob).or_default().push(r);
            }
        }
        map
    }
}

/// An object's modification time in unix milliseconds.
pub(super) fn modified_ms(meta: &object_store::ObjectMeta) -> u64 {
    meta.last_modified.timestamp_millis().max(0) as u64
}

impl SharedTier {
    /// List the bucket: records, blobs and pins.
    pub(super) async fn census(&self) -> Result<Census, StoreError> {
        let mut census = Census {
            started_ms: now_ms(),
            ..Census::default()
        };
        let listed = self.list_all("index").await?;
        // Held to the end: a census that fails keeps the memo it started
        // with for the next one.
        let mut kept = self.record_memo.lock().await;
        let previous = &*kept;
        let mut memo = RecordMemo::new();
        let mut to_read = Vec::new();
        for meta in listed {
            let Some(id) = layout::record_id(&meta.location) else {
                census
                    .unreadable
                    .push((meta.location, "not a record's name".into()));
                continue;
            };
            match previous.get(&meta.location) {
                Some((tag, referent)) if tag.is_some() && *tag == meta.e_tag => {
                    memo.insert(meta.location.clone(), (tag.clone(), *referent));
                    census.records.push(RecordInfo {
                        path: meta.location,
                        id,
                        referent: *referent,
                    });
                }
                _ => to_read.push((meta, id)),
            }
        }
        let mut reads = futures_util::stream::iter(to_read)
            .map(|(meta, id)| async move {
                let read = self.read_referent(&meta.location).await;
                (meta, id, read)
            })
            .buffer_unordered(READS_IN_FLIGHT);
        while let Some((meta, id, read)) = reads.next().await {
            match read? {
                // Deleted since the listing.
                None => {}
                Some(Err(reason)) => census.unreadable.push((meta.location, reason)),
                Some(Ok((tag, referent))) => {
                    memo.insert(meta.location.clone(), (tag, referent));
                    census.records.push(RecordInfo {
                        path: meta.location,
                        id,
                        referent,
                    });
                }
            }
        }
        drop(reads);
        *kept = memo;
        drop(kept);
        for meta in self.list_all("blobs").await? {
            if let Some(d) = layout::blob_digest(&meta.location) {
                census.blobs.insert(
                    d,
                    BlobInfo {
                        size: meta.size,
                        modified_ms: modified_ms(&meta),
                    },
                );
            }
        }
        for meta in self.list_all("pins").await? {
            if let Some(Ok(d)) = meta.location.filename().map(Digest::from_hex) {
                census.pins.insert(d, modified_ms(&meta));
            }
        }
        Ok(census)
    }

    /// Every object under `prefix`.
    pub(super) async fn list_all(
        &self,
        prefix: &str,
    ) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        let prefix = Path::from(prefix);
        let mut listing = self.bucket.list(Some(&prefix));
        let mut all = Vec::new();
        while let Some(meta) = listing.next().await {
            all.push(self.outcome("list", &prefix, meta)?);
        }
        Ok(all)
    }

    /// What the record at `path` references, with its ETag; `None` when
    /// it is gone, a reason when it cannot be read as a record.
    async fn read_referent(
        &self,
        path: &Path,
    ) -> Result<Option<Result<(Option<String>, Option<Referent>), String>>, StoreError> {
        let Some((bytes, tag)) = self.get_small("read record", path, path).await? else {
            return Ok(None);
        };
        Ok(Some(layout::Record::decode(&bytes).map(|r| {
            let referent = r.entry.map(|e| Referent {
                blob: e.blob,
                size: e.size,
                hosted: e.class == EntryClass::Hosted,
            });
            (tag, referent)
        })))
    }
}
