//! The index checked against itself (fsck): undecodable records, referrer
//! lists that disagree with the entries, entries whose blob has no record,
//! usage counters and negative-entry records that disagree with the
//! entries, malformed plugin records; and their repair.

use super::entries::{negative_cost, negative_key};
use super::{
    SledMetaStore, decode_blob, decode_entry, decode_u64, digest_from_key, encode, now_ms,
    remote_of, show_key, split_key,
};
use crate::store::fsck::IndexCheck;
use crate::store::{BlobMeta, Digest, EntryClass, IndexRepair, StoreError};
use sled::Tree;
use std::collections::HashMap;

/// Examples kept in an [`IndexCheck`].
const MAX_EXAMPLES: usize = 32;

impl IndexRepair for SledMetaStore {
    /// Check the index against itself and, with `repair`, fix it.
    fn check_index(&self, repair: bool) -> Result<IndexCheck, StoreError> {
        let mut check = IndexCheck::default();
        let note = |check: &mut IndexCheck, s: String| {
            if check.examples.len() < MAX_EXAMPLES {
                check.examples.push(s);
            }
        };
        // Entries: decodability, and the referrers and usage they imply.
        let mut expected: HashMap<Digest, (u64, Vec<String>)> = HashMap::new();
        let mut usage: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut negatives: HashMap<Vec<u8>, u64> = HashMap::new();
        for item in self.entries.iter() {
            let (k, v) = item?;
            check.entries += 1;
            if let Ok(e) = decode_entry(&k, &v) {
                let slot = usage.entry(remote_of(&k).to_vec()).or_default();
                *slot = slot.saturating_add(e.size);
            }
            match (split_key(&k), decode_entry(&k, &v)) {
                (Some(_), Ok(e)) => {
                    if e.class == EntryClass::NotFound {
                        negatives.insert(negative_key(&k, &e), negative_cost(&k, v.len()));
                    }
                    if e.blob != Digest::EMPTY {
                        let slot = expected.entry(e.blob).or_insert((e.size, Vec::new()));
                        slot.1.push(String::from_utf8_lossy(&k).into_owned());
                    }
                }
                (_, r) => {
                    check.corrupt_records += 1;
                    let why = r
                        .err()
                        .map_or("malformed key".to_string(), |e| e.to_string());
                    note(&mut check, format!("corrupt entry {}: {why}", show_key(&k)));
                    if repair {
                        self.remove_record_if_unchanged(&self.entries, &k, &v)?;
                    }
                }
            }
        }
        // Blob records against the entries.
        for item in self.blobs.iter() {
            let (k, v) = item?;
            check.blob_records += 1;
            let decoded = digest_from_key(&k).map(|d| (d, decode_blob(&d, &v)));
            let (digest, mut meta) = match decoded {
                Some((d, Ok(m))) => (d, m),
                other => {
                    check.corrupt_records += 1;
                    let why = match other {
                        Some((_, Err(e))) => e.to_string(),
                        _ => format!("malformed blob record key {}", hex::encode(&k)),
                    };
                    note(&mut check, why);
                    if repair {
                        self.remove_record_if_unchanged(&self.blobs, &k, &v)?;
                    }
                    continue;
                }
            };
            let mut want = expected.remove(&digest).map(|(_, r)| r).unwrap_or_default();
            want.sort();
            let mut have = meta.referrers.clone();
            have.sort();
            if have != want {
                check.bad_references += 1;
                note(
                    &mut check,
                    format!(
                        "blob {digest} lists {} referrers, {} entries point at it",
                        have.len(),
                        want.len()
                    ),
                );
                if repair {
                    meta.referrers = want;
                    let new = encode(format!("blob {digest}"), &meta)?;
                    let _ = self.blobs.compare_and_swap(&k, Some(&v), Some(new))?;
                }
            }
        }
        // Entries whose blob has no record.
        let mut missing: Vec<_> = expected.into_iter().collect();
        missing.sort_by_key(|(d, _)| *d);
        for (digest, (size, mut referrers)) in missing {
            check.unrecorded_blobs += 1;
            note(
                &mut check,
                format!(
                    "blob {digest} has no record but {} entries point at it",
                    referrers.len()
                ),
            );
            if repair {
                referrers.sort();
                let meta = BlobMeta {
                    size,
                    referrers,
                    last_access_ms: now_ms(),
                };
                let new = encode(format!("blob {digest}"), &meta)?;
                let _ = self
                    .blobs
                    .compare_and_swap(digest.as_bytes(), None::<&[u8]>, Some(new))?;
            }
        }
        // Usage counters against the entries' sizes.
        let mut counters: HashMap<Vec<u8>, u64> = HashMap::new();
        for item in self.usage.iter() {
            let (k, v) = item?;
            counters.insert(k.to_vec(), decode_u64(&v));
        }
        let mut remotes: Vec<&Vec<u8>> = usage.keys().chain(counters.keys()).collect();
        remotes.sort();
        remotes.dedup();
        for r in remotes {
            let (want, have) = (
                usage.get(r).copied().unwrap_or(0),
                counters.get(r).copied().unwrap_or(0),
            );
            if want != have {
                check.bad_usage += 1;
                note(
                    &mut check,
                    format!(
                        "remote {}: its size counter says {have} bytes, its entries total {want}",
                        String::from_utf8_lossy(r)
                    ),
                );
            }
        }
        // Negative-entry records against the negative entries.
        for item in self.negatives.iter() {
            let (k, v) = item?;
            if negatives.remove(&k[..]).is_some() {
                continue;
            }
            check.bad_references += 1;
            note(
                &mut check,
                format!(
                    "negative-entry record {} has no such entry",
                    show_key(&k[8.min(k.len())..])
                ),
            );
            if repair {
                self.remove_record_if_unchanged(&self.negatives, &k, &v)?;
            }
        }
        let mut missing: Vec<_> = negatives.into_iter().collect();
        missing.sort();
        for (k, cost) in missing {
            check.bad_references += 1;
            note(
                &mut check,
                format!("negative entry {} has no record", show_key(&k[8..])),
            );
            if repair {
                self.negatives.insert(k, cost.to_be_bytes().to_vec())?;
            }
        }
        // Plugin key-value records.
        for item in self.kv.iter() {
            let (k, v) = item?;
            if v.len() < 8 {
                check.corrupt_records += 1;
                note(
                    &mut check,
                    format!("corrupt kv {}: value shorter than 8 bytes", show_key(&k)),
                );
                if repair {
                    self.remove_record_if_unchanged(&self.kv, &k, &v)?;
                }
            }
        }
        if repair {
            self.rescan()?;
            self.rebuild_usage()?;
            self.db.flush()?;
        }
        Ok(check)
    }
}

impl SledMetaStore {
    /// Delete `k` from `tree` unless its value is no longer `v`.
    fn remove_record_if_unchanged(
        &self,
        tree: &Tree,
        k: &[u8],
        v: &[u8],
    ) -> Result<(), StoreError> {
        let _ = tree.compare_and_swap(k, Some(v), None::<&[u8]>)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::join_key;
    use super::super::tests::{entry, open, refs};
    use super::*;
    use crate::store::prelude::*;

    #[test]
    fn corrupt_records_are_errors_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        m.put_entry("r", "good", &entry(a, 7, EntryClass::Immutable), false)
            .unwrap();
        m.entries
            .insert(join_key("r", "bad"), &b"{not json"[..])
            .unwrap();
        m.blobs.insert(b.as_bytes(), &b"garbage"[..]).unwrap();
        m.blobs.insert(&b"short"[..], &b"{}"[..]).unwrap();
        // A dangling referrer and an entry without a blob record.
        let c = Digest::of(b"c");
        m.entries
            .insert(
                join_key("r", "norecord"),
                serde_json::to_vec(&entry(c, 4, EntryClass::Immutable)).unwrap(),
            )
            .unwrap();
        m.blobs
            .insert(
                a.as_bytes(),
                serde_json::to_vec(&BlobMeta {
                    size: 7,
                    referrers: vec!["r\0good".into(), "r\0ghost".into()],
                    last_access_ms: 0,
                })
                .unwrap(),
            )
            .unwrap();

        match m.get_entry("r", "bad") {
            Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, "entry r/bad"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.blob_meta(&b), Err(StoreError::Corrupt { .. })));
        assert_eq!(m.all_entries().unwrap().len(), 2);
        assert_eq!(m.list_entries("r", "", None, 10).unwrap().len(), 2);
        assert_eq!(m.lru_blobs(10).unwrap().len(), 1);

        let check = m.check_index(false).unwrap();
        assert_eq!(check.corrupt_records, 3, "{check:?}");
        assert_eq!(check.bad_references, 1, "{check:?}");
        assert_eq!(check.unrecorded_blobs, 1, "{check:?}");
        assert!(!check.is_clean());
        let again = m.check_index(true).unwrap();
        assert_eq!(again.corrupt_records, 3);
        let clean = m.check_index(false).unwrap();
        assert!(clean.is_clean(), "{clean:?}");
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0good"]);
        assert_eq!(refs(&m, &c).unwrap(), vec!["r\0norecord"]);
        assert_eq!(m.total_size(), 11);

        // Replacing a corrupt entry works and heals it.
        m.entries
            .insert(join_key("r", "bad"), &b"{not json"[..])
            .unwrap();
        assert!(
            m.put_entry("r", "bad", &entry(a, 7, EntryClass::Immutable), false)
                .unwrap()
                .is_none()
        );
        assert!(m.get_entry("r", "bad").unwrap().is_some());
        m.entries
            .insert(join_key("r", "bad"), &b"{not json"[..])
            .unwrap();
        assert!(m.remove_entry("r", "bad", false).unwrap().is_none());
        assert!(matches!(
            m.update_entry("r", "good", &|_| {}).map(|e| e.is_some()),
            Ok(true)
        ));
    }
}
