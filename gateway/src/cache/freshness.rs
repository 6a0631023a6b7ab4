//! Freshness: what a stored entry is worth at a given time.

use crate::store::{Entry, EntryClass};

/// Now, in unix milliseconds (the store's clock).
pub use crate::store::now_ms;

/// How a lookup found an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Fresh: serve it without the upstream or the adapter.
    Fresh(Entry),
    /// Expired (or the client asked for revalidation): revalidate or
    /// refetch; serve it stale if the upstream fails.
    Expired(Entry),
    /// Nothing stored.
    Miss,
}

/// Classify an entry. `client_no_cache` (`Cache-Control: no-cache` or
/// `Pragma: no-cache`) forces revalidation of mutable and negative entries;
/// immutable and hosted content never needs it.
pub fn classify(entry: Option<Entry>, now_ms: u64, client_no_cache: bool) -> Lookup {
    match entry {
        None => Lookup::Miss,
        Some(e) if serves_fresh(&e, now_ms, client_no_cache) => Lookup::Fresh(e),
        Some(e) => Lookup::Expired(e),
    }
}

/// Whether `e` may be served as it is ([`classify`] would say `Fresh`).
pub fn serves_fresh(e: &Entry, now_ms: u64, client_no_cache: bool) -> bool {
    let revalidatable = matches!(e.class, EntryClass::Mutable | EntryClass::NotFound);
    e.is_fresh(now_ms) && !(client_no_cache && revalidatable)
}

/// Whether request headers ask for revalidation.
pub fn client_wants_revalidation(headers: &http::HeaderMap) -> bool {
    let has = |name: http::header::HeaderName| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| {
                    s.split(',').any(|d| {
                        matches!(
                            d.trim().to_ascii_lowercase().as_str(),
                            "no-cache" | "max-age=0"
                        )
                    })
                })
                .unwrap_or(false)
        })
    };
    has(http::header::CACHE_CONTROL) || has(http::header::PRAGMA)
}
