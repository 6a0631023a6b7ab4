//! The index record of one cached or hosted object.

use super::Digest;
use serde::{Deserialize, Serialize};

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
}

impl Entry {
    /// Whether the entry is fresh at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        match self.expires_at_ms {
            None => true,
            Some(t) => now_ms < t,
        }
    }
}

#[cfg(test)]
impl Entry {
    /// A bare 200 entry for store tests.
    pub(crate) fn test(blob: Digest, size: u64, class: EntryClass) -> Entry {
        Entry {
            blob,
            size,
            status: 200,
            class,
            stored_at_ms: 1,
            expires_at_ms: None,
            ttl_ms: None,
            content_type: None,
            headers: vec![],
            etag: None,
            last_modified: None,
            validator: Validators::Refetch,
            compare_value: None,
            upstream_target: None,
            references: vec![],
            stale_since_ms: None,
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
