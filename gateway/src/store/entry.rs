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
        }
    }
}
