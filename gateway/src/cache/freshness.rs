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

/// Classify an entry; `no_cache` is what the client's request asks
/// ([`NoCache::of`]).
pub fn classify(entry: Option<Entry>, now_ms: u64, no_cache: NoCache) -> Lookup {
    match entry {
        None => Lookup::Miss,
        Some(e) if serves_fresh(&e, now_ms, no_cache) => Lookup::Fresh(e),
        Some(e) => Lookup::Expired(e),
    }
}

/// Which stored entries a client's request sends back to the upstream
/// before their time: `Cache-Control: no-cache` (or `max-age=0`, or
/// `Pragma: no-cache`) revalidates mutable entries, and remembered 404s
/// unless the remote sets `no_cache_revalidates_404 = false` (Maven sends
/// `no-cache` with every request and probes every repository it knows).
/// Immutable and hosted content never needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoCache {
    /// Mutable entries are revalidated.
    pub mutable: bool,
    /// Remembered 404s are asked about again.
    pub not_found: bool,
}

impl NoCache {
    /// A request that asks for nothing: every fresh entry is served.
    pub const NONE: NoCache = NoCache {
        mutable: false,
        not_found: false,
    };

    /// What a request with `headers` asks of the entries of `remote`.
    pub fn of(headers: &http::HeaderMap, remote: &crate::config::RemoteConfig) -> NoCache {
        let asked = client_wants_revalidation(headers);
        NoCache {
            mutable: asked,
            not_found: asked && remote.no_cache_revalidates_404,
        }
    }
}

/// Whether `e` may be served as it is ([`classify`] would say `Fresh`).
pub fn serves_fresh(e: &Entry, now_ms: u64, no_cache: NoCache) -> bool {
    let forced = match e.class {
        EntryClass::Mutable => no_cache.mutable,
        EntryClass::NotFound => no_cache.not_found,
        _ => false,
    };
    e.is_fresh(now_ms) && !forced
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
