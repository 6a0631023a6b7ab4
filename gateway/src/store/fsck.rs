//! `artgate fsck`: check the index against itself and against the blob
//! tree, and optionally repair what is wrong.
//!
//! Run it offline (or at startup, before serving): a blob committed by a
//! running gateway but not yet indexed would look like an orphan.
//!
//! What it finds is damage (something the index promises is missing or
//! wrong: [`FsckReport::damaged`]) or leftovers (spools, orphan blob files
//! and unreferenced blobs a crash or a delete leaves; harmless: a starting
//! gateway deletes spools and, in the background, orphans, and garbage
//! collection takes unreferenced blobs). [`FsckReport::verdict`] says
//! which; `artgate fsck` exits 1 only for damage.

use super::{BlobStore, Digest, MetaStore, StoreError};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::io;

/// Examples kept in a report.
const MAX_EXAMPLES: usize = 32;

/// What [`IndexRepair::check_index`](super::IndexRepair::check_index) found (counts, and up to 32 examples).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexCheck {
    /// Entry records checked.
    pub entries: u64,
    /// Blob records checked.
    pub blob_records: u64,
    /// Undecodable records (entries, blob records, key-value records).
    pub corrupt_records: u64,
    /// Blob records whose referrer list disagrees with the entries, and
    /// negative-entry records that disagree with the negative entries.
    pub bad_references: u64,
    /// Blobs that entries point at but that have no blob record.
    pub unrecorded_blobs: u64,
    /// Remotes whose size counter (hosted quotas) disagrees with the sum
    /// of their entries' sizes.
    pub bad_usage: u64,
    /// A few of the problems, one sentence each.
    pub examples: Vec<String>,
}

impl IndexCheck {
    /// Whether nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.corrupt_records == 0
            && self.bad_references == 0
            && self.unrecorded_blobs == 0
            && self.bad_usage == 0
    }
}

/// What [`check`] found (and, with `repair`, fixed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    /// `clean` (nothing found), `leftovers` (only spools, orphan blobs or
    /// unreferenced blobs: harmless) or `damage`.
    pub verdict: &'static str,
    /// Whether problems were repaired (the counts are what was found).
    pub repaired: bool,
    /// Whether blob contents were re-hashed.
    pub verified_content: bool,
    /// Entry records checked.
    pub entries: u64,
    /// Blob records checked.
    pub blob_records: u64,
    /// Blob files found.
    pub blob_files: u64,
    /// Undecodable index records (removed).
    pub corrupt_records: u64,
    /// Blob records whose referrer list disagreed with the entries
    /// (rebuilt).
    pub bad_references: u64,
    /// Blobs that entries point at without a blob record (record rebuilt).
    pub unrecorded_blobs: u64,
    /// Remotes whose size counter disagreed with their entries (counters
    /// rebuilt).
    pub bad_usage: u64,
    /// Entries whose blob file is missing (entry dropped).
    pub entries_missing_blob: u64,
    /// Blob files whose content does not match their name (blob and its
    /// entries dropped).
    pub corrupt_blobs: u64,
    /// Blob records whose file is missing (record dropped).
    pub records_missing_file: u64,
    /// Blob files no index record knows (file deleted).
    pub orphan_blobs: u64,
    /// Leftover spools (deleted).
    pub spools: u64,
    /// Files in the blob tree that are not blobs (deleted).
    pub strays: u64,
    /// Blobs no entry references any more, waiting for garbage collection
    /// (not damage; collected on repair).
    pub unreferenced_blobs: u64,
    /// A few of the problems, one sentence each.
    pub examples: Vec<String>,
}

impl FsckReport {
    /// Whether nothing was wrong (unreferenced blobs waiting for collection
    /// are normal).
    pub fn is_clean(&self) -> bool {
        self.corrupt_records == 0
            && self.bad_references == 0
            && self.unrecorded_blobs == 0
            && self.bad_usage == 0
            && self.entries_missing_blob == 0
            && self.corrupt_blobs == 0
            && self.records_missing_file == 0
            && self.orphan_blobs == 0
            && self.spools == 0
            && self.strays == 0
    }

    /// Whether the index and the blob tree disagree in a way that loses or
    /// corrupts an object (leftovers are not damage).
    pub fn damaged(&self) -> bool {
        self.corrupt_records != 0
            || self.bad_references != 0
            || self.unrecorded_blobs != 0
            || self.entries_missing_blob != 0
            || self.corrupt_blobs != 0
            || self.records_missing_file != 0
            || self.strays != 0
    }

    /// Whether crash or delete leftovers were found: spools, orphan blob
    /// files, unreferenced blobs.
    pub fn has_leftovers(&self) -> bool {
        self.spools != 0 || self.orphan_blobs != 0 || self.unreferenced_blobs != 0
    }

    fn set_verdict(&mut self) {
        self.verdict = if self.damaged() {
            "damage"
        } else if self.has_leftovers() {
            "leftovers"
        } else {
            "clean"
        };
    }

    fn note(&mut self, example: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example);
        }
    }
}

fn blob_io(
    op: &'static str,
    target: impl std::fmt::Display,
) -> impl FnOnce(io::Error) -> StoreError {
    move |e| StoreError::io(op, target, e)
}

/// Check the index and the blob store against each other; with `repair`,
/// fix what is wrong (see the [`FsckReport`] fields for what each repair
/// does), without it only report. With `verify_content`, every blob is
/// re-hashed (reads the whole store).
///
/// Checks, in order: the index itself ([`IndexRepair::check_index`](super::IndexRepair::check_index)),
/// leftover spools, strays in the blob tree, blob contents, entries whose
/// blob file is missing, blob records whose file is missing, orphan blob
/// files, and (on repair) unreferenced blobs are collected.
pub fn check(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    repair: bool,
    verify_content: bool,
) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport {
        repaired: repair,
        verified_content: verify_content,
        ..FsckReport::default()
    };

    let index = meta.check_index(repair)?;
    report.entries = index.entries;
    report.blob_records = index.blob_records;
    report.corrupt_records = index.corrupt_records;
    report.bad_references = index.bad_references;
    report.unrecorded_blobs = index.unrecorded_blobs;
    report.bad_usage = index.bad_usage;
    for e in index.examples {
        report.note(e);
    }

    let spools = blobs.spools().map_err(blob_io("list", "spools"))?;
    report.spools = spools.len() as u64;
    for s in &spools {
        report.note(format!("leftover spool {s}"));
    }
    if repair && !spools.is_empty() {
        blobs.clean_spools().map_err(blob_io("delete", "spools"))?;
    }

    let strays = blobs.strays().map_err(blob_io("list", "blob tree"))?;
    report.strays = strays.len() as u64;
    for s in &strays {
        report.note(format!("stray file in the blob tree: {s}"));
        if repair {
            blobs.remove_stray(s).map_err(blob_io("delete stray", s))?;
        }
    }

    let mut files: HashMap<Digest, u64> = blobs
        .list()
        .map_err(blob_io("list", "blobs"))?
        .into_iter()
        .map(|b| (b.digest, b.size))
        .collect();
    report.blob_files = files.len() as u64;

    if verify_content {
        let mut digests: Vec<Digest> = files.keys().copied().collect();
        digests.sort();
        for d in digests {
            match blobs.verify(&d) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    files.remove(&d);
                    continue;
                }
                Err(e) => return Err(StoreError::io("verify blob", d, e)),
            }
            report.corrupt_blobs += 1;
            report.note(format!("blob {d} does not match its content"));
            if repair {
                // Index first, then the file.
                meta.evict_blob(&d)?;
                meta.flush()?;
                blobs.remove(&d).map_err(blob_io("delete blob", d))?;
                files.remove(&d);
            }
        }
    }

    let mut absent: HashMap<Digest, bool> = HashMap::new();
    let mut present = |d: &Digest| -> Result<bool, StoreError> {
        if files.contains_key(d) {
            return Ok(true);
        }
        if let Some(p) = absent.get(d) {
            return Ok(*p);
        }
        // Backends may have implicit blobs (the empty one).
        let p = blobs.contains(d).map_err(blob_io("stat blob", d))?;
        absent.insert(*d, p);
        Ok(p)
    };

    for (remote, key, entry) in meta.all_entries()? {
        if present(&entry.blob)? {
            continue;
        }
        report.entries_missing_blob += 1;
        report.note(format!(
            "entry {remote}/{key}: blob {} is missing",
            entry.blob
        ));
        if repair {
            meta.remove_entry(&remote, &key, false)?;
        }
    }

    let mut recorded = HashSet::new();
    for (d, m) in meta.lru_blobs(usize::MAX)? {
        recorded.insert(d);
        if !present(&d)? {
            report.records_missing_file += 1;
            report.note(format!("blob {d} is in the index but its file is missing"));
            if repair {
                meta.evict_blob(&d)?;
            }
        } else if m.referrers.is_empty() && !repair {
            report.unreferenced_blobs += 1;
        }
    }

    let mut orphans: Vec<Digest> = files
        .keys()
        .filter(|d| !recorded.contains(*d))
        .copied()
        .collect();
    orphans.sort();
    for d in orphans {
        // A corrupt record is not listed by lru_blobs; only a missing one
        // makes an orphan.
        if !matches!(meta.blob_meta(&d), Ok(None)) {
            continue;
        }
        report.orphan_blobs += 1;
        report.note(format!("blob file {d} is not in the index"));
        if repair {
            blobs.remove(&d).map_err(blob_io("delete blob", d))?;
        }
    }

    if repair {
        meta.flush()?;
        let gc = super::evict::gc_with(meta, blobs)?;
        report.unreferenced_blobs = gc.blobs;
        meta.flush()?;
    }
    report.set_verdict();
    Ok(report)
}

/// The file in the storage directory where `artgate fsck` leaves its last
/// report, for the operator console's storage page.
pub const LAST_REPORT: &str = "last-fsck.json";

/// Save `report` as the last one in `dir` (the storage directory), with
/// the time it was made; written whole or not at all (a temporary file
/// renamed into place).
pub fn save_last(dir: &std::path::Path, report: &FsckReport) -> std::io::Result<()> {
    let doc = serde_json::json!({ "at_ms": super::now_ms(), "report": report });
    let tmp = dir.join(format!("{LAST_REPORT}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)?;
    std::fs::rename(tmp, dir.join(LAST_REPORT))
}

/// The last report saved in `dir` with [`save_last`], if any.
pub fn load_last(dir: &std::path::Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(dir.join(LAST_REPORT)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::{Entry, EntryClass, FsBlobStore, SledMetaStore};
    use std::fs;
    use std::os::unix::fs::FileExt;

    fn entry(blob: Digest, size: u64) -> Entry {
        Entry::test(blob, size, EntryClass::Immutable)
    }

    fn add(meta: &SledMetaStore, blobs: &FsBlobStore, key: &str, data: &[u8]) -> Digest {
        let mut s = blobs.create_spool().unwrap();
        s.write(data).unwrap();
        let r = blobs.commit(s, None).unwrap();
        meta.put_entry("r", key, &entry(r.digest, r.size), true)
            .unwrap();
        blobs.settle(&r.digest);
        r.digest
    }

    #[test]
    fn detects_and_repairs_each_kind_of_damage() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        let meta = SledMetaStore::open(&dir.path().join("index")).unwrap();

        let good = add(&meta, &blobs, "good", b"good content");
        let lost = add(&meta, &blobs, "lost", b"lost content");
        let rotten = add(&meta, &blobs, "rotten", b"rotten content");
        meta.put_entry("r", "rotten2", &entry(rotten, 14), true)
            .unwrap();
        meta.put_entry("r", "empty", &entry(Digest::EMPTY, 0), true)
            .unwrap();
        let clean = check(&meta, &blobs, false, true).unwrap();
        assert!(clean.is_clean(), "{clean:?}");
        assert_eq!(clean.verdict, "clean");
        assert_eq!(clean.entries, 5);
        assert_eq!(clean.blob_files, 3);

        // Damage: a deleted blob file, flipped bytes, an orphan, a spool, a stray.
        fs::remove_file(blobs.blob_path(&lost)).unwrap();
        let f = fs::OpenOptions::new()
            .write(true)
            .open(blobs.blob_path(&rotten))
            .unwrap();
        f.write_all_at(b"R", 0).unwrap();
        let mut s = blobs.create_spool().unwrap();
        s.write(b"orphan").unwrap();
        let orphan = blobs.commit(s, None).unwrap().digest;
        fs::write(
            dir.path().join("tmp/spool-99-1-0000000000000000"),
            b"partial",
        )
        .unwrap();
        fs::write(dir.path().join("blobs/sha256/junk"), b"?").unwrap();
        // An unreferenced blob waiting for gc is not damage.
        let spare = add(&meta, &blobs, "spare", b"spare");
        meta.remove_entry("r", "spare", true).unwrap();

        let found = check(&meta, &blobs, false, true).unwrap();
        assert!(!found.is_clean());
        assert_eq!(found.verdict, "damage");
        assert_eq!(found.entries_missing_blob, 1, "{found:?}");
        assert_eq!(found.records_missing_file, 1, "{found:?}");
        assert_eq!(found.corrupt_blobs, 1, "{found:?}");
        assert_eq!(found.orphan_blobs, 1, "{found:?}");
        assert_eq!(found.spools, 1, "{found:?}");
        assert_eq!(found.strays, 1, "{found:?}");
        assert_eq!(found.unreferenced_blobs, 1, "{found:?}");
        assert!(!found.examples.is_empty());
        serde_json::to_string(&found).unwrap();
        // Reporting changed nothing.
        assert_eq!(check(&meta, &blobs, false, true).unwrap(), found);

        let repaired = check(&meta, &blobs, true, true).unwrap();
        assert!(repaired.repaired);
        assert_eq!(repaired.corrupt_blobs, 1);
        assert_eq!(repaired.entries_missing_blob, 1);
        assert_eq!(repaired.unreferenced_blobs, 1);

        let after = check(&meta, &blobs, false, true).unwrap();
        assert!(after.is_clean(), "{after:?}");
        assert_eq!(after.unreferenced_blobs, 0);
        assert!(meta.get_entry("r", "good").unwrap().is_some());
        assert!(meta.get_entry("r", "empty").unwrap().is_some());
        for k in ["lost", "rotten", "rotten2"] {
            assert!(meta.get_entry("r", k).unwrap().is_none(), "{k}");
        }
        assert!(blobs.contains(&good).unwrap());
        for d in [lost, rotten, orphan, spare] {
            assert!(!blobs.contains(&d).unwrap(), "{d}");
            assert!(meta.blob_meta(&d).unwrap().is_none(), "{d}");
        }
        assert_eq!(meta.total_size(), 12);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    /// Spools, orphans and unreferenced blobs are leftovers, not damage:
    /// the verdict says so and `damaged` stays false.
    #[test]
    fn leftovers_are_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        let meta = SledMetaStore::open(&dir.path().join("index")).unwrap();
        add(&meta, &blobs, "kept", b"kept");
        let mut s = blobs.create_spool().unwrap();
        s.write(b"orphan").unwrap();
        blobs.commit(s, None).unwrap();
        fs::write(
            dir.path().join("tmp/spool-99-1-0000000000000000"),
            b"partial",
        )
        .unwrap();
        add(&meta, &blobs, "gone", b"gone");
        meta.remove_entry("r", "gone", true).unwrap();
        let r = check(&meta, &blobs, false, false).unwrap();
        assert_eq!((r.orphan_blobs, r.spools, r.unreferenced_blobs), (1, 1, 1));
        assert!(!r.damaged(), "{r:?}");
        assert!(r.has_leftovers());
        assert_eq!(r.verdict, "leftovers");
        let r = check(&meta, &blobs, true, false).unwrap();
        assert_eq!(r.verdict, "leftovers");
        let r = check(&meta, &blobs, false, false).unwrap();
        assert_eq!(r.verdict, "clean", "{r:?}");
    }

    #[test]
    fn without_verify_content_rotten_blobs_pass() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        let meta = SledMetaStore::open(&dir.path().join("index")).unwrap();
        let d = add(&meta, &blobs, "k", b"content");
        let f = fs::OpenOptions::new()
            .write(true)
            .open(blobs.blob_path(&d))
            .unwrap();
        f.write_all_at(b"X", 0).unwrap();
        assert!(check(&meta, &blobs, false, false).unwrap().is_clean());
        assert_eq!(check(&meta, &blobs, false, true).unwrap().corrupt_blobs, 1);
    }
}
