//! Entries and what changes with them in the same transaction: the blob
//! records' referrer lists, the remotes' usage counters and the
//! negative-entry records; listings; the expiry of negative entries (the
//! module docs of `meta_sled` describe the trees).

use super::{
    SledMetaStore, TX_CHUNK, TxResult, abort, check_name, decode_blob, decode_entry, decode_u64,
    encode, join_key, now_ms, remote_of, show_key, split_key, tx_err,
};
use crate::store::failpoint::fail_step;
use crate::store::{
    BlobMeta, Digest, Entry, EntryClass, EntryIndex, PutCheck, PutOutcome, StoreError,
};
use sled::transaction::TransactionalTree;
use sled::{IVec, Transactional};
use std::ops::Bound;

/// Add `id` to the referrers of `digest`, creating its record if needed.
/// Returns the bytes newly counted in the total.
pub(super) fn tx_add_ref(
    tb: &TransactionalTree,
    digest: &Digest,
    id: &str,
    size: u64,
    now: u64,
) -> TxResult<u64> {
    if *digest == Digest::EMPTY {
        return Ok(0);
    }
    let fresh = BlobMeta {
        size,
        referrers: Vec::new(),
        last_access_ms: now,
    };
    let (mut meta, added) = match tb.get(digest.as_bytes())? {
        Some(v) => match decode_blob(digest, &v) {
            Ok(m) => (m, 0),
            Err(e) => {
                // An undecodable record was never counted; replace it.
                tracing::warn!(error = %e, "replacing corrupt blob record");
                (fresh, size)
            }
        },
        None => (fresh, size),
    };
    if !meta.referrers.iter().any(|r| r == id) {
        meta.referrers.push(id.to_string());
    }
    meta.last_access_ms = meta.last_access_ms.max(now);
    let bytes = encode(format!("blob {digest}"), &meta).map_err(abort)?;
    tb.insert(digest.as_bytes(), bytes)?;
    Ok(added)
}

/// Remove `id` from the referrers of `digest`; the record stays (for
/// `unreferenced_blobs`) even when it has no referrer left. Returns the
/// digest when its referrer list is now empty.
pub(super) fn tx_remove_ref(
    tb: &TransactionalTree,
    digest: &Digest,
    id: &str,
) -> TxResult<Option<Digest>> {
    if *digest == Digest::EMPTY {
        return Ok(None);
    }
    let Some(v) = tb.get(digest.as_bytes())? else {
        return Ok(None);
    };
    let Ok(mut meta) = decode_blob(digest, &v) else {
        return Ok(None);
    };
    let before = meta.referrers.len();
    meta.referrers.retain(|r| r != id);
    if meta.referrers.len() != before {
        let bytes = encode(format!("blob {digest}"), &meta).map_err(abort)?;
        tb.insert(digest.as_bytes(), bytes)?;
    }
    Ok(meta.referrers.is_empty().then_some(*digest))
}

/// The usage counter of `remote` (bytes of its entries).
fn tx_usage(tu: &TransactionalTree, remote: &[u8]) -> TxResult<u64> {
    Ok(tu.get(remote)?.map_or(0, |v| decode_u64(&v)))
}

/// Set the usage counter of `remote` (0 removes it).
fn tx_set_usage(tu: &TransactionalTree, remote: &[u8], bytes: u64) -> TxResult<()> {
    if bytes == 0 {
        tu.remove(remote)?;
    } else {
        tu.insert(remote, &bytes.to_be_bytes())?;
    }
    Ok(())
}

/// Move the usage counter of the remote owning entry key `k` by
/// `+add -sub`.
pub(super) fn tx_usage_change(
    tu: &TransactionalTree,
    k: &[u8],
    add: u64,
    sub: u64,
) -> TxResult<()> {
    if add == sub {
        return Ok(());
    }
    let remote = remote_of(k);
    let now = tx_usage(tu, remote)?;
    tx_set_usage(tu, remote, now.saturating_add(add).saturating_sub(sub))
}

/// Record the blob of a refused put as unreferenced when the index does
/// not know it (its file was committed before the put was refused), so
/// that garbage collection deletes the file. Returns the digest and the
/// bytes newly counted when a record was created.
fn tx_record_loser(
    tb: &TransactionalTree,
    digest: &Digest,
    size: u64,
    now: u64,
) -> TxResult<(Option<Digest>, u64)> {
    if *digest == Digest::EMPTY || tb.get(digest.as_bytes())?.is_some() {
        return Ok((None, 0));
    }
    let meta = BlobMeta {
        size,
        referrers: Vec::new(),
        last_access_ms: now,
    };
    let bytes = encode(format!("blob {digest}"), &meta).map_err(abort)?;
    tb.insert(digest.as_bytes(), bytes)?;
    Ok((Some(*digest), size))
}

/// The `negatives` key of a negative entry stored under `k`.
pub(super) fn negative_key(k: &[u8], e: &Entry) -> Vec<u8> {
    let mut nk = Vec::with_capacity(8 + k.len());
    nk.extend_from_slice(&e.expires_at_ms.unwrap_or(u64::MAX).to_be_bytes());
    nk.extend_from_slice(k);
    nk
}

/// What a negative entry costs against `storage.max_size`: its index
/// record and its `negatives` record, with a little for sled's own
/// bookkeeping.
pub(super) fn negative_cost(k: &[u8], encoded_len: usize) -> u64 {
    (2 * k.len() + encoded_len + 64) as u64
}

/// The cost stored in a `negatives` record (a malformed one reads as 0).
pub(super) fn decode_cost(v: &[u8]) -> u64 {
    v.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b))
}

/// Record `e` (stored under `k`, `encoded_len` bytes) in `negatives` when
/// it is a negative entry; returns the cost newly counted.
fn tx_add_negative(
    tn: &TransactionalTree,
    k: &[u8],
    e: &Entry,
    encoded_len: usize,
) -> TxResult<(u64, u64)> {
    if e.class != EntryClass::NotFound {
        return Ok((0, 0));
    }
    let cost = negative_cost(k, encoded_len);
    let old = tn.insert(negative_key(k, e), cost.to_be_bytes().to_vec())?;
    Ok((cost, old.map_or(0, |v| decode_cost(&v))))
}

/// Drop the `negatives` record of `e` (stored under `k`); returns the cost
/// no longer counted.
pub(super) fn tx_remove_negative(tn: &TransactionalTree, k: &[u8], e: &Entry) -> TxResult<u64> {
    if e.class != EntryClass::NotFound {
        return Ok(0);
    }
    Ok(tn
        .remove(negative_key(k, e))?
        .map_or(0, |v| decode_cost(&v)))
}

impl EntryIndex for SledMetaStore {
    /// The entry for `key` in `remote`.
    fn get_entry(&self, remote: &str, key: &str) -> Result<Option<Entry>, StoreError> {
        check_name(remote)?;
        let k = join_key(remote, key);
        match self.entries.get(&k)? {
            Some(v) => decode_entry(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Insert or replace an entry.
    fn put_entry(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        match self.put_entry_checked(remote, key, entry, PutCheck::default(), durable)? {
            PutOutcome::Stored(prev) => Ok(prev.map(|p| *p)),
            // Unreachable without checks; reported as "nothing replaced".
            PutOutcome::Exists | PutOutcome::OverQuota { .. } => Ok(None),
        }
    }

    /// Insert or replace an entry after `check`, in the same transaction.
    fn put_entry_checked(
        &self,
        remote: &str,
        key: &str,
        entry: &Entry,
        check: PutCheck,
        durable: bool,
    ) -> Result<PutOutcome, StoreError> {
        check_name(remote)?;
        fail_step!("index-put", |e| StoreError::from(sled::Error::Io(e)));
        let k = join_key(remote, key);
        let id = show_key(&k);
        let bytes = encode(format!("entry {id}"), entry)?;
        let ref_id = String::from_utf8_lossy(&k).into_owned();
        let now = now_ms();
        let (outcome, added, removed, emptied) =
            (&self.entries, &self.blobs, &self.usage, &self.negatives)
                .transaction(|(te, tb, tu, tn)| {
                    let raw = te.get(&k)?;
                    // A corrupt record counts as present: write-once holds.
                    if check.if_absent && raw.is_some() {
                        let (loser, added) = tx_record_loser(tb, &entry.blob, entry.size, now)?;
                        return Ok((PutOutcome::Exists, added, 0, loser));
                    }
                    let prev = match raw {
                        Some(v) => match decode_entry(&k, &v) {
                            Ok(e) => Some(e),
                            Err(e) => {
                                tracing::warn!(error = %e, "replacing corrupt entry");
                                None
                            }
                        },
                        None => None,
                    };
                    let used = tx_usage(tu, remote.as_bytes())?;
                    let after = used
                        .saturating_sub(prev.as_ref().map_or(0, |p| p.size))
                        .saturating_add(entry.size);
                    if check.quota.is_some_and(|limit| after > limit) {
                        let (loser, added) = tx_record_loser(tb, &entry.blob, entry.size, now)?;
                        return Ok((PutOutcome::OverQuota { used }, added, 0, loser));
                    }
                    let mut emptied = None;
                    let mut removed = 0;
                    if let Some(p) = &prev {
                        removed = tx_remove_negative(tn, &k, p)?;
                        if p.blob != entry.blob {
                            emptied = tx_remove_ref(tb, &p.blob, &ref_id)?;
                        }
                    }
                    let added = tx_add_ref(tb, &entry.blob, &ref_id, entry.size, now)?;
                    let (neg, replaced) = tx_add_negative(tn, &k, entry, bytes.len())?;
                    te.insert(k.as_slice(), bytes.as_slice())?;
                    tx_set_usage(tu, remote.as_bytes(), after)?;
                    Ok((
                        PutOutcome::Stored(prev.map(Box::new)),
                        added + neg,
                        removed + replaced,
                        emptied,
                    ))
                })
                .map_err(tx_err)?;
        self.add_total(added);
        self.sub_total(removed);
        self.note_unreferenced(emptied);
        self.flush_if(durable && matches!(outcome, PutOutcome::Stored(_)))?;
        Ok(outcome)
    }

    /// The usage counter of `remote`.
    fn remote_size(&self, remote: &str) -> Result<u64, StoreError> {
        check_name(remote)?;
        Ok(self
            .usage
            .get(remote.as_bytes())?
            .map_or(0, |v| decode_u64(&v)))
    }

    /// Change an entry in one transaction.
    fn update_entry(
        &self,
        remote: &str,
        key: &str,
        f: &dyn Fn(&mut Entry),
    ) -> Result<Option<Entry>, StoreError> {
        check_name(remote)?;
        let k = join_key(remote, key);
        let ref_id = String::from_utf8_lossy(&k).into_owned();
        let now = now_ms();
        let r = (&self.entries, &self.blobs, &self.usage, &self.negatives)
            .transaction(|(te, tb, tu, tn)| {
                let Some(v) = te.get(&k)? else {
                    return Ok(None);
                };
                let old = decode_entry(&k, &v).map_err(abort)?;
                let mut new = old.clone();
                f(&mut new);
                let bytes = encode(format!("entry {}", show_key(&k)), &new).map_err(abort)?;
                let mut added = 0;
                let mut emptied = None;
                if old.blob != new.blob {
                    emptied = tx_remove_ref(tb, &old.blob, &ref_id)?;
                    added = tx_add_ref(tb, &new.blob, &ref_id, new.size, now)?;
                }
                tx_usage_change(tu, &k, new.size, old.size)?;
                let mut removed = tx_remove_negative(tn, &k, &old)?;
                let (neg, replaced) = tx_add_negative(tn, &k, &new, bytes.len())?;
                removed += replaced;
                te.insert(k.as_slice(), bytes)?;
                Ok(Some((new, added + neg, removed, emptied)))
            })
            .map_err(tx_err)?;
        Ok(r.map(|(e, added, removed, emptied)| {
            self.add_total(added);
            self.sub_total(removed);
            self.note_unreferenced(emptied);
            e
        }))
    }

    /// Remove an entry.
    fn remove_entry(
        &self,
        remote: &str,
        key: &str,
        durable: bool,
    ) -> Result<Option<Entry>, StoreError> {
        check_name(remote)?;
        let k = join_key(remote, key);
        let ref_id = String::from_utf8_lossy(&k).into_owned();
        let (prev, emptied, removed) = (&self.entries, &self.blobs, &self.usage, &self.negatives)
            .transaction(|(te, tb, tu, tn)| {
                let Some(v) = te.remove(k.as_slice())? else {
                    return Ok((None, None, 0));
                };
                match decode_entry(&k, &v) {
                    Ok(e) => {
                        tx_usage_change(tu, &k, 0, e.size)?;
                        let emptied = tx_remove_ref(tb, &e.blob, &ref_id)?;
                        let removed = tx_remove_negative(tn, &k, &e)?;
                        Ok((Some(e), emptied, removed))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "removed corrupt entry");
                        Ok((None, None, 0))
                    }
                }
            })
            .map_err(tx_err)?;
        self.sub_total(removed);
        self.note_unreferenced(emptied);
        self.flush_if(durable)?;
        Ok(prev)
    }

    /// Remove every entry of `remote`, or of all remotes, a chunk of keys
    /// per transaction.
    fn remove_all(&self, remote: Option<&str>) -> Result<u64, StoreError> {
        let prefix = match remote {
            Some(r) => {
                check_name(r)?;
                join_key(r, "")
            }
            None => Vec::new(),
        };
        let mut removed = 0u64;
        let mut after: Option<IVec> = None;
        loop {
            let keys = Self::next_keys(&self.entries, &prefix, after.as_ref(), TX_CHUNK)?;
            let Some(last) = keys.last() else { break };
            after = Some(last.clone());
            let (n, emptied, freed) = (&self.entries, &self.blobs, &self.usage, &self.negatives)
                .transaction(|(te, tb, tu, tn)| {
                    let mut n = 0u64;
                    let mut emptied = Vec::new();
                    let mut freed = 0;
                    for k in &keys {
                        let Some(v) = te.remove(k)? else { continue };
                        n += 1;
                        if let Ok(e) = decode_entry(k, &v) {
                            tx_usage_change(tu, k, 0, e.size)?;
                            emptied.extend(tx_remove_ref(
                                tb,
                                &e.blob,
                                &String::from_utf8_lossy(k),
                            )?);
                            freed += tx_remove_negative(tn, k, &e)?;
                        }
                    }
                    Ok((n, emptied, freed))
                })
                .map_err(tx_err)?;
            removed += n;
            self.sub_total(freed);
            self.note_unreferenced(emptied);
        }
        self.db.flush()?;
        Ok(removed)
    }

    /// A page of `remote`'s entries by key prefix.
    fn count_entries(&self, remote: &str, prefix: &str, limit: u64) -> Result<u64, StoreError> {
        check_name(remote)?;
        let mut n = 0;
        for k in self.entries.scan_prefix(join_key(remote, prefix)).keys() {
            k?;
            n += 1;
            if n >= limit {
                break;
            }
        }
        Ok(n)
    }

    fn list_entries(
        &self,
        remote: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>, StoreError> {
        check_name(remote)?;
        let full_prefix = join_key(remote, prefix);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(join_key(remote, a)),
            _ => Bound::Included(full_prefix.clone()),
        };
        let skip = remote.len() + 1;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for item in self.entries.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            let (k, v) = item?;
            if !k.starts_with(&full_prefix) {
                break;
            }
            let key = k.get(skip..).and_then(|b| std::str::from_utf8(b).ok());
            match (key, decode_entry(&k, &v)) {
                (Some(key), Ok(e)) => out.push((key.to_string(), e)),
                (_, Err(e)) => tracing::warn!(error = %e, "skipping corrupt entry"),
                (None, _) => {
                    tracing::warn!(key = %show_key(&k), "skipping entry with a non-UTF-8 key")
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every decodable entry.
    fn all_entries(&self) -> Result<Vec<(String, String, Entry)>, StoreError> {
        let mut out = Vec::new();
        for item in self.entries.iter() {
            let (k, v) = item?;
            match (split_key(&k), decode_entry(&k, &v)) {
                (Some((remote, key)), Ok(e)) => out.push((remote, key, e)),
                (_, Err(e)) => tracing::warn!(error = %e, "skipping corrupt entry"),
                (None, _) => {
                    tracing::warn!(key = %show_key(&k), "skipping entry with a malformed key")
                }
            }
        }
        Ok(out)
    }

    /// Remove the negative entries expiring before `until_ms`: a range scan
    /// of `negatives` up to `until_ms`; a record whose entry changed
    /// meanwhile (or was corrupt) is dropped without the entry.
    fn remove_negatives(&self, until_ms: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for item in self.negatives.iter() {
            let (nk, _) = item?;
            let expiry = nk.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b));
            if expiry >= until_ms || keys.len() >= limit {
                break;
            }
            keys.push(nk);
        }
        let mut out = Vec::new();
        for chunk in keys.chunks(TX_CHUNK) {
            let (ids, freed, emptied) = (&self.entries, &self.blobs, &self.negatives)
                .transaction(|(te, tb, tn)| {
                    let (mut ids, mut freed, mut emptied) = (Vec::new(), 0u64, Vec::new());
                    for nk in chunk {
                        let Some(cost) = tn.remove(nk)? else { continue };
                        freed += decode_cost(&cost);
                        let k = nk.get(8..).unwrap_or_default();
                        let Some(v) = te.get(k)? else { continue };
                        let Ok(e) = decode_entry(k, &v) else { continue };
                        if e.class != EntryClass::NotFound || negative_key(k, &e) != nk.as_ref() {
                            continue;
                        }
                        te.remove(k)?;
                        let id = String::from_utf8_lossy(k).into_owned();
                        emptied.extend(tx_remove_ref(tb, &e.blob, &id)?);
                        ids.push(id);
                    }
                    Ok((ids, freed, emptied))
                })
                .map_err(tx_err)?;
            self.sub_total(freed);
            self.note_unreferenced(emptied);
            out.extend(ids);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, negative, open, refs};
    use super::*;
    use crate::store::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn refcounts_and_total_size() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(m.total_size(), 0);

        assert!(
            m.put_entry("r", "k1", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            m.put_entry("r", "k2", &entry(a, 10, EntryClass::Immutable), true)
                .unwrap(),
            None
        );
        assert_eq!(
            m.put_entry("s", "k1", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap(),
            None
        );
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0k1", "r\0k2", "s\0k1"]);
        assert_eq!(m.total_size(), 10, "shared blob counted once");

        // Replacing k1 with another blob moves the reference.
        let prev = m
            .put_entry("r", "k1", &entry(b, 5, EntryClass::Mutable), false)
            .unwrap();
        assert_eq!(prev.unwrap().blob, a);
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0k2", "s\0k1"]);
        assert_eq!(refs(&m, &b).unwrap(), vec!["r\0k1"]);
        assert_eq!(m.total_size(), 15);
        // Re-putting the same blob does not duplicate.
        m.put_entry("r", "k1", &entry(b, 5, EntryClass::Mutable), false)
            .unwrap();
        assert_eq!(refs(&m, &b).unwrap(), vec!["r\0k1"]);

        assert_eq!(m.remove_entry("r", "k2", true).unwrap().unwrap().blob, a);
        assert!(m.remove_entry("r", "k2", false).unwrap().is_none());
        assert_eq!(m.remove_all(Some("s")).unwrap(), 1);
        assert_eq!(
            refs(&m, &a).unwrap(),
            Vec::<String>::new(),
            "record stays until collected"
        );
        assert_eq!(m.total_size(), 15);
        assert!(m.get_entry("s", "k1").unwrap().is_none());

        assert_eq!(m.unreferenced_blobs().unwrap(), vec![a]);
        assert!(m.blob_meta(&a).unwrap().is_none());
        assert_eq!(m.total_size(), 5);
        assert!(m.unreferenced_blobs().unwrap().is_empty());

        // The empty blob is not tracked.
        m.put_entry(
            "r",
            "404",
            &entry(Digest::EMPTY, 0, EntryClass::NotFound),
            false,
        )
        .unwrap();
        assert!(m.blob_meta(&Digest::EMPTY).unwrap().is_none());
        // A negative entry counts its index bytes, not a blob.
        let neg = m.total_size() - 5;
        assert!(neg > 0);

        // update_entry refreshes fields and moves references when the blob changes.
        let upd = m
            .update_entry("r", "k1", &|e| {
                e.expires_at_ms = Some(99);
            })
            .unwrap()
            .unwrap();
        assert_eq!(upd.expires_at_ms, Some(99));
        assert_eq!(
            m.get_entry("r", "k1").unwrap().unwrap().expires_at_ms,
            Some(99)
        );
        m.update_entry("r", "k1", &|e| {
            e.blob = a;
            e.size = 10;
        })
        .unwrap();
        assert_eq!(refs(&m, &a).unwrap(), vec!["r\0k1"]);
        assert_eq!(refs(&m, &b).unwrap(), Vec::<String>::new());
        assert_eq!(m.total_size(), 15 + neg);
        assert!(m.update_entry("r", "nope", &|_| {}).unwrap().is_none());

        assert_eq!(m.remove_all(None).unwrap(), 2);
        let mut gone = m.unreferenced_blobs().unwrap();
        gone.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(gone, want);
        assert_eq!(m.total_size(), 0);
        assert!(m.check_index(false).unwrap().is_clean());
    }

    #[test]
    fn concurrent_puts_keep_references_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let m = std::sync::Arc::new(open(dir.path()));
        let blobs: Vec<Digest> = (0..5u8).map(|i| Digest::of(&[i])).collect();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let m = m.clone();
                let blobs = blobs.clone();
                std::thread::spawn(move || {
                    for i in 0..50usize {
                        let d = blobs[(i + t) % blobs.len()];
                        let key = format!("k{}", i % 10);
                        m.put_entry("r", &key, &entry(d, 100, EntryClass::Immutable), false)
                            .unwrap();
                        if i % 7 == 0 {
                            m.remove_entry("r", &key, false).unwrap();
                        }
                        m.touch(&d);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(m.check_index(false).unwrap().is_clean());
        let live: HashSet<Digest> = m
            .all_entries()
            .unwrap()
            .into_iter()
            .map(|(_, _, e)| e.blob)
            .collect();
        let gone = m.unreferenced_blobs().unwrap();
        assert_eq!(live.len() + gone.len(), blobs.len());
        assert_eq!(m.total_size(), 100 * live.len() as u64);
        m.persist_access().unwrap();
    }

    /// The sum of `remote`'s entry sizes, from a scan.
    fn summed(m: &SledMetaStore, remote: &str) -> u64 {
        m.list_entries(remote, "", None, usize::MAX)
            .unwrap()
            .iter()
            .map(|(_, e)| e.size)
            .sum()
    }

    #[test]
    fn usage_counters_follow_every_change_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        {
            let m = open(dir.path());
            m.put_entry("r", "k1", &entry(a, 10, EntryClass::Hosted), false)
                .unwrap();
            m.put_entry("r", "k2", &entry(a, 10, EntryClass::Hosted), false)
                .unwrap();
            m.put_entry("s", "k1", &entry(b, 7, EntryClass::Immutable), false)
                .unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 20, "each entry counts");
            m.put_entry("r", "k1", &entry(b, 7, EntryClass::Hosted), false)
                .unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 17);
            m.update_entry("r", "k1", &|e| {
                e.blob = c;
                e.size = 3;
            })
            .unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 13);
            m.remove_entry("r", "k2", false).unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 3);
            m.put_entry("r", "k3", &entry(b, 7, EntryClass::Immutable), false)
                .unwrap();
            // Evicting b takes s/k1 and r/k3 out of both counters.
            m.evict_blob(&b).unwrap();
            assert_eq!(m.remote_size("r").unwrap(), 3);
            assert_eq!(m.remote_size("s").unwrap(), 0);
            m.put_entry("s", "k2", &entry(a, 10, EntryClass::Immutable), false)
                .unwrap();
            assert_eq!(m.remove_all(Some("s")).unwrap(), 1);
            assert_eq!(m.remote_size("s").unwrap(), 0);
            for r in ["r", "s"] {
                assert_eq!(m.remote_size(r).unwrap(), summed(&m, r), "{r}");
            }
            assert!(m.check_index(false).unwrap().is_clean());
        }
        let m = open(dir.path());
        assert_eq!(m.remote_size("r").unwrap(), 3);
        assert!(m.check_index(false).unwrap().is_clean());
    }

    /// Concurrent checked puts: of writers racing for one new key exactly
    /// one stores; of uploads racing for a quota the total never exceeds
    /// it. Refused blobs are recorded unreferenced for garbage collection.
    #[test]
    fn checked_puts_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let m = std::sync::Arc::new(open(dir.path()));
        let run = |key: fn(usize) -> String, check: PutCheck| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let m = m.clone();
                    std::thread::spawn(move || {
                        let e = entry(Digest::of(&[t as u8, 9]), 100, EntryClass::Hosted);
                        m.put_entry_checked("h", &key(t), &e, check, false).unwrap()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        };
        let once = PutCheck {
            if_absent: true,
            quota: None,
        };
        let out = run(|_| "k".into(), once);
        let stored = out
            .iter()
            .filter(|o| **o == PutOutcome::Stored(None))
            .count();
        assert_eq!(stored, 1, "{out:?}");
        assert_eq!(out.iter().filter(|o| **o == PutOutcome::Exists).count(), 7);
        let losers = m.unreferenced_blobs().unwrap();
        assert_eq!(losers.len(), 7, "refused blobs are collectable");
        assert_eq!(m.total_size(), 100);

        let quota = PutCheck {
            if_absent: false,
            quota: Some(350),
        };
        let out = run(|t| format!("q{t}"), quota);
        let stored = out
            .iter()
            .filter(|o| matches!(o, PutOutcome::Stored(_)))
            .count();
        // 100 bytes are held by "k": two more fit.
        assert_eq!(stored, 2, "{out:?}");
        assert_eq!(m.remote_size("h").unwrap(), 300);
        assert_eq!(summed(&m, "h"), 300);
        assert!(m.check_index(false).unwrap().is_clean());
    }

    #[test]
    fn list_entries_prefix_after_limit() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let e = entry(Digest::of(b"x"), 1, EntryClass::Immutable);
        for k in ["tags/a", "tags/b", "tags/c", "blobs/x", "tagz"] {
            m.put_entry("r", k, &e, false).unwrap();
        }
        m.put_entry("r2", "tags/z", &e, false).unwrap();
        assert_eq!(m.count_entries("r", "", 100).unwrap(), 5);
        assert_eq!(m.count_entries("r", "tags/", 100).unwrap(), 3);
        assert_eq!(m.count_entries("r", "tags/", 2).unwrap(), 2);
        assert_eq!(m.count_entries("r3", "", 100).unwrap(), 0);
        let keys = |v: Vec<(String, Entry)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(m.list_entries("r", "tags/", None, 10).unwrap()),
            ["tags/a", "tags/b", "tags/c"]
        );
        assert_eq!(
            keys(m.list_entries("r", "tags/", Some("tags/a"), 10).unwrap()),
            ["tags/b", "tags/c"]
        );
        assert_eq!(
            keys(m.list_entries("r", "tags/", None, 2).unwrap()),
            ["tags/a", "tags/b"]
        );
        assert_eq!(
            keys(m.list_entries("r", "tags/", Some("a"), 10).unwrap()).len(),
            3
        );
        assert!(
            m.list_entries("r", "tags/", Some("tags/c"), 10)
                .unwrap()
                .is_empty()
        );
        assert!(m.list_entries("r", "tags/", None, 0).unwrap().is_empty());
        assert_eq!(m.list_entries("r", "", None, 100).unwrap().len(), 5);
        assert_eq!(m.all_entries().unwrap().len(), 6);
    }

    /// Cached 404s count toward the total (they have no blob), expire by a
    /// range scan, follow their entry through updates, replacements and
    /// removals, and survive a clean close and a crash's rescan.
    #[test]
    fn negative_entries_are_counted_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let m = open(dir.path());
        let a = Digest::of(b"a");
        m.put_entry("r", "blob", &entry(a, 10, EntryClass::Immutable), false)
            .unwrap();
        assert_eq!(m.total_size(), 10);
        for i in 0..10u64 {
            m.put_entry("r", &format!("missing-{i}"), &negative(1_000 + i), false)
                .unwrap();
        }
        let per = (m.total_size() - 10) / 10;
        assert!(per > 100, "a negative entry costs {per} bytes");
        // Nothing expires before its time.
        assert!(m.remove_negatives(1_000, usize::MAX).unwrap().is_empty());
        // Refreshed (revalidated): its record moves with the expiry.
        m.update_entry("r", "missing-0", &|e| e.expires_at_ms = Some(5_000))
            .unwrap();
        // Replaced by content, or removed: no record left behind.
        m.put_entry(
            "r",
            "missing-1",
            &entry(a, 10, EntryClass::Immutable),
            false,
        )
        .unwrap();
        m.remove_entry("r", "missing-2", false).unwrap();
        assert_eq!(m.total_size(), 10 + 8 * per);
        let removed = m.remove_negatives(1_005, 2).unwrap();
        assert_eq!(removed, vec!["r\0missing-3", "r\0missing-4"]);
        let removed = m.remove_negatives(2_000, usize::MAX).unwrap();
        assert_eq!(removed.len(), 5, "{removed:?}");
        assert!(m.get_entry("r", "missing-9").unwrap().is_none());
        assert!(m.get_entry("r", "missing-0").unwrap().is_some());
        assert_eq!(m.total_size(), 10 + per);
        assert!(m.check_index(false).unwrap().is_clean());
        drop(m);
        // Clean close, then a crash (no summary): the same total.
        let m = open(dir.path());
        assert_eq!(m.total_size(), 10 + per);
        m.rescan().unwrap();
        assert_eq!(m.total_size(), 10 + per);
        // Evicting takes them whatever their expiry.
        assert_eq!(
            m.remove_negatives(u64::MAX, 10).unwrap(),
            vec!["r\0missing-0"]
        );
        assert_eq!(m.total_size(), 10);
    }
}
