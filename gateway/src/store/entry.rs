//! The index record of one cached or hosted object.

use super::Digest;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Freshness class of an entry, as the adapter planned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryClass {
    /// Never expires.
    Immutable,
    /// Expires at [`Entry::expires_at_ms`].
    Mutable,
    /// A cached upstream 404 (negative entry); expires at
    /// [`Entry::expires_at_ms`]; has no blob content worth serving.
    NotFound,
    /// Uploaded into a hosted remote; never expires.
    Hosted,
}

/// How an expired mutable entry is checked against the upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validators {
    /// Conditional GET with the stored `ETag` / `Last-Modified`.
    Conditional,
    /// `HEAD` and compare this response header with the stored value.
    HeadCompare(String),
    /// Refetch.
    Refetch,
}

/// One entry: which blob holds the body, how to serve it, and when it
/// expires. Entries carry the adapter's decision so that a fresh hit is
/// served without calling into wasm (invariant 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Body content.
    pub blob: Digest,
    /// Body size in bytes.
    pub size: u64,
    /// HTTP status served (200, or 404 for negative entries).
    pub status: u16,
    /// Freshness class.
    pub class: EntryClass,
    /// When the entry was stored or last revalidated, unix milliseconds.
    pub stored_at_ms: u64,
    /// When a mutable or negative entry expires, unix milliseconds.
    pub expires_at_ms: Option<u64>,
    /// TTL applied on refresh, milliseconds (mutable and negative entries).
    pub ttl_ms: Option<u64>,
    /// `Content-Type` to serve.
    pub content_type: Option<String>,
    /// Extra response headers (from the plan and kept upstream headers).
    pub headers: Vec<(String, String)>,
    /// Upstream `ETag`, for conditional revalidation.
    pub etag: Option<String>,
    /// Upstream `Last-Modified`, for conditional revalidation.
    pub last_modified: Option<String>,
    /// How to revalidate once expired.
    pub validator: Validators,
    /// Stored value of the header a `HeadCompare` validator compares.
    pub compare_value: Option<String>,
    /// Upstream target (path or absolute URL) the entry was fetched from,
    /// used for revalidation without calling the adapter.
    pub upstream_target: Option<String>,
    /// Keys in the same remote that must exist for this entry to be served
    /// (hosted completeness, e.g. an action result's blobs).
    pub references: Vec<String>,
    /// Since when (unix milliseconds) this copy stands in for an upstream
    /// that failed: set when it is served stale, cleared when the upstream
    /// confirms or replaces it. While set, hits say `X-Artifact-Source:
    /// stale`. Not written while unset, so entries of either format read
    /// the same; entries written before it existed read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_since_ms: Option<u64>,
    /// The response head rendered from the fields above, made on the
    /// entry's first hit (`cache/head.rs`) and reused by every later hit
    /// of the same shared entry. Never stored, and empty in a clone: an
    /// entry changed through a clone, or read from the index, renders
    /// afresh. (Change an entry only through a clone, never in place.)
    #[serde(skip)]
    pub rendered: Rendered,
}

/// The response head of an entry, rendered once ([`Entry::rendered`]).
/// A clone starts empty, and it compares equal to any other, so it never
/// outlives a change to the entry made through a clone nor decides
/// whether two entries are the same.
#[derive(Default)]
pub struct Rendered(OnceLock<http::HeaderMap>);

impl Rendered {
    /// The head, rendered by `render` the first time.
    pub fn get_or_init(&self, render: impl FnOnce() -> http::HeaderMap) -> &http::HeaderMap {
        self.0.get_or_init(render)
    }
}

impl Clone for Rendered {
    fn clone(&self) -> Self {
        Rendered::default()
    }
}

impl PartialEq for Rendered {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Rendered {}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Rendered(yes)"
        } else {
            "Rendered(no)"
        })
    }
}

impl Entry {
    /// A 200 entry fetched from `upstream_target` under the adapter's
    /// freshness `class` and `validator`, before its body is stored: the
    /// blob is empty, and the caller fills in the representation (content
    /// type, headers, validators) and, at commit, the blob and times.
    pub fn fetched(class: EntryClass, validator: Validators, upstream_target: String) -> Entry {
        Entry {
            blob: Digest::EMPTY,
            size: 0,
            status: 200,
            class,
            stored_at_ms: 0,
            expires_at_ms: None,
            ttl_ms: None,
            content_type: None,
            headers: Vec::new(),
            etag: None,
            last_modified: None,
            validator,
            compare_value: None,
            upstream_target: Some(upstream_target),
            references: Vec::new(),
            stale_since_ms: None,
            rendered: Rendered::default(),
        }
    }

    /// A negative entry (a cached upstream 404) stored at `now_ms` for
    /// `ttl_ms`; `blob` is the empty blob.
    pub fn negative(blob: Digest, now_ms: u64, ttl_ms: u64, upstream_target: String) -> Entry {
        Entry {
            blob,
            status: 404,
            stored_at_ms: now_ms,
            expires_at_ms: Some(now_ms + ttl_ms),
            ttl_ms: Some(ttl_ms),
            ..Entry::fetched(EntryClass::NotFound, Validators::Refetch, upstream_target)
        }
    }

    /// An object uploaded into a hosted remote at `now_ms`: never expires,
    /// and is served only while every key in `references` exists too.
    pub fn hosted(
        blob: Digest,
        size: u64,
        now_ms: u64,
        content_type: Option<String>,
        references: Vec<String>,
    ) -> Entry {
        Entry {
            blob,
            size,
            status: 200,
            class: EntryClass::Hosted,
            stored_at_ms: now_ms,
            expires_at_ms: None,
            ttl_ms: None,
            content_type,
            headers: Vec::new(),
            etag: None,
            last_modified: None,
            validator: Validators::Refetch,
            compare_value: None,
            upstream_target: None,
            references,
            stale_since_ms: None,
            rendered: Rendered::default(),
        }
    }

    /// Whether the entry is fresh at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        match self.expires_at_ms {
            None => true,
            Some(t) => now_ms < t,
        }
    }
}

/// Which entry: a remote and a key in it. The index, the in-memory entry
/// cache and the table of fills in progress all know an entry by this id,
/// written `remote \0 key` (remote names never contain NUL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryId {
    id: String,
    /// Where the remote ends (the NUL's index).
    split: usize,
}

impl EntryId {
    /// The id of `remote`'s entry under `key`.
    pub fn new(remote: &str, key: &str) -> EntryId {
        let mut id = String::with_capacity(remote.len() + key.len() + 1);
        id.push_str(remote);
        id.push('\0');
        id.push_str(key);
        EntryId {
            id,
            split: remote.len(),
        }
    }

    /// Read an id in its written form (as [`crate::store::BlobMeta`]'s
    /// referrers and eviction reports list them); `None` without a NUL.
    pub fn parse(id: &str) -> Option<EntryId> {
        let split = id.find('\0')?;
        Some(EntryId {
            id: id.to_owned(),
            split,
        })
    }

    /// The remote's name.
    pub fn remote(&self) -> &str {
        &self.id[..self.split]
    }

    /// The key within the remote.
    pub fn key(&self) -> &str {
        &self.id[self.split + 1..]
    }

    /// The written form, `remote \0 key`.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The written form, owned.
    pub fn into_string(self) -> String {
        self.id
    }
}

impl std::fmt::Display for EntryId {
    /// `remote/key`, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.remote(), self.key())
    }
}

#[cfg(test)]
impl Entry {
    /// A bare 200 entry for store tests.
    pub(crate) fn test(blob: Digest, size: u64, class: EntryClass) -> Entry {
        Entry {
            class,
            ..Entry::hosted(blob, size, 1, None, Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as written before `stale_since_ms` existed (the index is
    /// JSON): it still reads, as never served stale.
    #[test]
    fn entries_of_the_old_format_still_read() {
        let old = r#"{"blob":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"status":200,"class":"mutable","stored_at_ms":1,"expires_at_ms":5,"ttl_ms":4,"content_type":"text/plain","headers":[["etag","\"x\""]],"etag":"\"x\"","last_modified":null,"validator":"conditional","compare_value":null,"upstream_target":"/a","references":[]}"#;
        let e: Entry = serde_json::from_str(old).expect("an old entry reads");
        assert_eq!(e.stale_since_ms, None);
        assert_eq!(e.class, EntryClass::Mutable);
        assert_eq!(e.headers, vec![("etag".to_owned(), "\"x\"".to_owned())]);
        // Written back unchanged: an entry never served stale keeps the old
        // format, so an older binary reads it too.
        let again = serde_json::to_value(&e).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(old).unwrap()
        );
    }

    /// An id keeps its remote and key apart, also when the key holds
    /// the separator's neighbours, and reads back from its written form.
    #[test]
    fn entry_ids_split_where_the_remote_ends() {
        let id = EntryId::new("docker-hub", "v2/library/alpine/manifests/3.20");
        assert_eq!(id.remote(), "docker-hub");
        assert_eq!(id.key(), "v2/library/alpine/manifests/3.20");
        assert_eq!(id.as_str(), "docker-hub\0v2/library/alpine/manifests/3.20");
        assert_eq!(EntryId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(
            id.to_string(),
            "docker-hub/v2/library/alpine/manifests/3.20"
        );
        let empty = EntryId::new("r", "");
        assert_eq!((empty.remote(), empty.key()), ("r", ""));
        assert_eq!(EntryId::parse("no separator"), None);
        // A key may itself hold a NUL (the index stores it); the remote
        // ends at the first one.
        let odd = EntryId::parse("r\0k\0x").unwrap();
        assert_eq!((odd.remote(), odd.key()), ("r", "k\0x"));
    }

    /// The constructors give each kind of entry its class and expiry.
    #[test]
    fn constructors_set_class_status_and_expiry() {
        let f = Entry::fetched(EntryClass::Mutable, Validators::Conditional, "/a".into());
        assert_eq!(
            (f.status, f.class, f.blob),
            (200, EntryClass::Mutable, Digest::EMPTY)
        );
        assert_eq!(f.upstream_target.as_deref(), Some("/a"));
        let n = Entry::negative(Digest::EMPTY, 1_000, 500, "/b".into());
        assert_eq!((n.status, n.class), (404, EntryClass::NotFound));
        assert_eq!((n.expires_at_ms, n.ttl_ms), (Some(1_500), Some(500)));
        assert!(n.is_fresh(1_499) && !n.is_fresh(1_500));
        let h = Entry::hosted(Digest::of(b"x"), 1, 7, None, vec!["k".into()]);
        assert_eq!(
            (h.class, h.expires_at_ms, h.stored_at_ms),
            (EntryClass::Hosted, None, 7)
        );
        assert_eq!(h.upstream_target, None);
    }

    /// A stale mark survives the round trip through the index format.
    #[test]
    fn the_stale_mark_round_trips() {
        let e = Entry {
            stale_since_ms: Some(42),
            ..Entry::test(Digest::EMPTY, 0, EntryClass::Mutable)
        };
        let back: Entry = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
