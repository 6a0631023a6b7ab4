//! Remembered adapter decisions, so a fresh hit never enters wasm
//! (invariant 2).
//!
//! After an adapter plans a cacheable GET/HEAD, the core remembers which
//! cache key that request maps to: per remote, path and query, plus the
//! values of the request headers the plan says it varies on (`vary`). The
//! next identical request finds the key here, finds a fresh entry in the
//! store, and is served without calling the adapter. Decisions are tagged
//! with the adapter's sha256, so a hot reload invalidates them.

use http::HeaderMap;
use quick_cache::sync::Cache;
use std::sync::Arc;

/// The parts of a request a remembered decision is looked up by.
#[derive(Clone, Copy)]
pub struct RequestShape<'a> {
    /// sha256 of the adapter that decided (a reload invalidates).
    pub adapter_sha: &'a str,
    /// Remote name.
    pub remote: &'a str,
    /// Normalised path.
    pub path: &'a str,
    /// Raw query.
    pub query: Option<&'a str>,
    /// Request headers (for `vary`).
    pub headers: &'a HeaderMap,
    /// The authority the client used
    /// ([`crate::public_url::client_authority`]), which `vary` on `host`
    /// means: an adapter that writes the gateway's URL into a body
    /// (`gateway-url`) varies on it.
    pub authority: Option<&'a str>,
}

/// Bounded map of remembered decisions.
pub struct DecisionMemo {
    cache: Cache<String, Arc<str>>,
}

fn base(adapter_sha: &str, remote: &str, path: &str, query: Option<&str>) -> String {
    let mut s = String::with_capacity(adapter_sha.len() + remote.len() + path.len() + 8);
    s.push_str(adapter_sha);
    s.push('\0');
    s.push_str(remote);
    s.push('\0');
    s.push_str(path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

fn with_values(mut base: String, vary: &str, r: &RequestShape<'_>) -> String {
    for name in vary.split(',').filter(|n| !n.is_empty()) {
        base.push('\0');
        if name == "host" {
            base.push_str(r.authority.unwrap_or(""));
            continue;
        }
        for v in r.headers.get_all(name) {
            base.push_str(v.to_str().unwrap_or(""));
            base.push('\n');
        }
    }
    base
}

impl DecisionMemo {
    /// A memo holding at most `capacity` decisions.
    pub fn new(capacity: usize) -> Self {
        DecisionMemo {
            cache: Cache::new(capacity),
        }
    }

    /// The cache key a previous identical request was planned to.
    pub fn lookup(&self, r: RequestShape<'_>) -> Option<Arc<str>> {
        let b = base(r.adapter_sha, r.remote, r.path, r.query);
        let vary = self.cache.get(&format!("v{b}"))?;
        self.cache.get(&format!("k{}", with_values(b, &vary, &r)))
    }

    /// Remember that this request maps to `key`, varying on `vary`.
    pub fn remember(&self, r: RequestShape<'_>, vary: &[String], key: &str) {
        let b = base(r.adapter_sha, r.remote, r.path, r.query);
        let vary: String = vary
            .iter()
            .map(|v| v.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        self.cache.insert(format!("v{b}"), Arc::from(vary.as_str()));
        self.cache
            .insert(format!("k{}", with_values(b, &vary, &r)), Arc::from(key));
    }

    /// Forget everything (after a flush).
    pub fn clear(&self) {
        self.cache.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape<'a>(sha: &'a str, query: Option<&'a str>, headers: &'a HeaderMap) -> RequestShape<'a> {
        RequestShape {
            adapter_sha: sha,
            remote: "r",
            path: "p",
            query,
            headers,
            authority: None,
        }
    }

    #[test]
    fn varies_on_named_headers_only() {
        let m = DecisionMemo::new(100);
        let mut h = HeaderMap::new();
        h.insert("accept", "a/b".parse().unwrap());
        h.insert("user-agent", "x".parse().unwrap());
        m.remember(shape("sha", None, &h), &["Accept".into()], "k1");
        assert_eq!(m.lookup(shape("sha", None, &h)).as_deref(), Some("k1"));
        h.insert("user-agent", "y".parse().unwrap());
        assert_eq!(m.lookup(shape("sha", None, &h)).as_deref(), Some("k1"));
        h.insert("accept", "c/d".parse().unwrap());
        assert_eq!(m.lookup(shape("sha", None, &h)), None);
        assert_eq!(m.lookup(shape("other", None, &h)), None);
        assert_eq!(m.lookup(shape("sha", Some("q"), &h)), None);
    }

    /// `vary` on `host` remembers by the authority the client used (the
    /// request path gives it: HTTP/2's `:authority`, else `Host`), not by
    /// a `Host` header beside it.
    #[test]
    fn host_is_the_authority_the_client_used() {
        let m = DecisionMemo::new(100);
        let mut h = HeaderMap::new();
        h.insert("host", "header.example".parse().unwrap());
        let at = |authority| RequestShape {
            authority: Some(authority),
            ..shape("sha", None, &h)
        };
        m.remember(at("a.example"), &["host".into()], "ka");
        m.remember(at("b.example"), &["host".into()], "kb");
        assert_eq!(m.lookup(at("a.example")).as_deref(), Some("ka"));
        assert_eq!(m.lookup(at("b.example")).as_deref(), Some("kb"));
        assert_eq!(m.lookup(at("c.example")), None);
        assert_eq!(m.lookup(shape("sha", None, &h)), None, "no authority");
    }
}
