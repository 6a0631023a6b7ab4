//! Where the shared tier keeps things in the bucket (under the configured
//! prefix), and how an index record is written there:
//!
//! - `blobs/sha256/{first two hex digits}/{hex}`: blob content by digest,
//!   written once (a conditional create; "already there" is success);
//! - `index/{remote}/{key}`: one record per entry, the key in URL-safe
//!   base64 (keys hold `/`, `%` and any other byte an S3 key may not);
//! - `leases/{remote}/{key}`: fetch leases;
//! - `flushes/{remote}/all`, `flushes/{remote}/key/{key}`: flush markers;
//! - `usage/{remote}`: the bytes a hosted remote's entries take across the
//!   cluster (its quota, `usage.rs`);
//! - `pins/sha256/{hex}`: written when a node references a blob older than
//!   half of `gc_grace` again, so that the collection spares it (`gc.rs`);
//! - `access/{node}/{millis}`: batches of blob access times a node sends
//!   for the cluster's least-recently-used eviction;
//! - `gc/lease`, `gc/access`: the collecting node's lease, and the access
//!   times it has merged so far.

use crate::store::{Digest, Entry, EntryId};
use base64::Engine as _;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

/// The record format written by this version.
const RECORD_VERSION: u32 = 1;

/// Where the blob `digest` is.
pub fn blob(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from(format!("blobs/sha256/{}/{hex}", &hex[..2]))
}

/// A key as one path segment (URL-safe base64): in object names and on
/// the cluster's internal route.
pub fn encode_key(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// A key [`encode_key`] made; `None` when `segment` is not one.
pub fn decode_key(segment: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Where the record of entry `id` is.
pub fn record(id: &EntryId) -> Path {
    Path::from(format!("index/{}/{}", id.remote(), encode_key(id.key())))
}

/// Where the fetch lease of entry `id` is (`lease.rs`).
pub fn lease(id: &EntryId) -> Path {
    Path::from(format!("leases/{}/{}", id.remote(), encode_key(id.key())))
}

/// Where the marker of a flush of `remote` (or of its `key`) is
/// (`flush.rs`).
pub fn flush_marker(remote: &str, key: Option<&str>) -> Path {
    match key {
        None => Path::from(format!("flushes/{remote}/all")),
        Some(k) => Path::from(format!("flushes/{remote}/key/{}", encode_key(k))),
    }
}

/// Where the hosted usage counter of `remote` is (`usage.rs`).
pub fn usage(remote: &str) -> Path {
    Path::from(format!("usage/{remote}"))
}

/// Where the pin of blob `digest` is (`gc.rs`).
pub fn pin(digest: &Digest) -> Path {
    Path::from(format!("pins/sha256/{}", digest.hex()))
}

/// Where `node`'s batch of access times sent at `at_ms` is.
pub fn access_batch(node: &str, at_ms: u64) -> Path {
    Path::from(format!("access/{node}/{at_ms:016}"))
}

/// The collection's lease (`gc.rs`).
pub fn gc_lease() -> Path {
    Path::from("gc/lease")
}

/// The access times the collecting node merged (`gc.rs`).
pub fn gc_access() -> Path {
    Path::from("gc/access")
}

/// The remote and entry a record's path names; `None` for anything else.
pub fn record_id(path: &Path) -> Option<EntryId> {
    let mut parts = path.parts();
    if parts.next()?.as_ref() != "index" {
        return None;
    }
    let remote = parts.next()?;
    let key = decode_key(parts.next()?.as_ref())?;
    if parts.next().is_some() {
        return None;
    }
    Some(EntryId::new(remote.as_ref(), &key))
}

/// The digest a blob's path names; `None` for anything else.
pub fn blob_digest(path: &Path) -> Option<Digest> {
    let hex = path.filename()?;
    let d = Digest::from_hex(hex).ok()?;
    (blob(&d) == *path).then_some(d)
}

/// One entry as the bucket holds it: the entry, or a tombstone where a
/// hosted entry was deleted (so a node holding a copy from before it
/// joined the cluster can tell "deleted" from "never shared").
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    /// The format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The node that wrote it.
    pub node: String,
    /// The entry; `None`: deleted.
    pub entry: Option<Entry>,
}

impl Record {
    /// `entry` (`None`: a tombstone) as written by `node`.
    pub fn encode(node: &str, entry: Option<&Entry>) -> Vec<u8> {
        #[derive(Serialize)]
        struct Out<'a> {
            v: u32,
            node: &'a str,
            entry: Option<&'a Entry>,
        }
        serde_json::to_vec(&Out {
            v: RECORD_VERSION,
            node,
            entry,
        })
        .unwrap_or_default()
    }

    /// A record read from the bucket; a reason when it cannot be used.
    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        let r: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if r.v != RECORD_VERSION {
            return Err(format!(
                "record format {} is not {RECORD_VERSION} (written by a newer artgate?)",
                r.v
            ));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_plain_and_distinct() {
        let d = Digest::of(b"x");
        assert_eq!(
            blob(&d).as_ref(),
            format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex())
        );
        let a = record(&EntryId::new("r", "a/b%2F../c"));
        let b = record(&EntryId::new("r", "a/b/../c"));
        assert_ne!(a, b);
        assert!(a.as_ref().starts_with("index/r/"), "{a}");
        assert_eq!(a.parts().count(), 3, "the key is one path segment: {a}");
        assert_eq!(
            decode_key(&encode_key("a/b%2F../c")).as_deref(),
            Some("a/b%2F../c")
        );
        assert_eq!(decode_key("not base64!"), None);
        let id = EntryId::new("r", "a/b%2F../c");
        assert_eq!(record_id(&record(&id)), Some(id));
        assert_eq!(record_id(&Path::from("index/r")), None);
        assert_eq!(record_id(&Path::from("leases/r/YQ")), None);
        assert_eq!(blob_digest(&blob(&d)), Some(d));
        assert_eq!(blob_digest(&pin(&d)), None);
        assert!(access_batch("n1", 5) < access_batch("n1", 40));
    }

    #[test]
    fn records_round_trip_and_refuse_other_versions() {
        let e = Entry::hosted(Digest::of(b"x"), 1, 5, None, vec!["k".into()]);
        let bytes = Record::encode("n1", Some(&e));
        let r = Record::decode(&bytes).unwrap();
        assert_eq!((r.node.as_str(), r.entry), ("n1", Some(e)));
        let tomb = Record::decode(&Record::encode("n2", None)).unwrap();
        assert_eq!((tomb.node.as_str(), tomb.entry), ("n2", None));
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace("\"v\":1", "\"v\":2");
        assert!(
            Record::decode(newer.as_bytes())
                .unwrap_err()
                .contains("format 2")
        );
        assert!(Record::decode(b"{").is_err());
    }
}
