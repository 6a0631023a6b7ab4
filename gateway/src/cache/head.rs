//! Response heads: what a stored entry is served with and which upstream
//! headers are kept with it (conversions to and from the WIT's records are
//! in `plugins/wit_http.rs`).

use super::Outcome;
use super::fill::Head;
use super::plan::{Plan, SIZE_HEADER};
use crate::store::Entry;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

/// How an answer from the stored `entry` counts: `outcome`, except that a
/// hit or revalidation of an entry still standing in for a failed upstream
/// ([`Entry::stale_since_ms`]) is `stale`.
pub fn stored_outcome(entry: &Entry, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Hit | Outcome::Revalidated if entry.stale_since_ms.is_some() => Outcome::Stale,
        o => o,
    }
}

/// The head a stored entry is served with. An entry still standing in for
/// a failed upstream ([`Entry::stale_since_ms`]) is `stale`, not `cache`,
/// until the upstream confirms or replaces it. The headers are rendered
/// once per entry ([`Entry::rendered`]); a hit copies them.
pub fn head_of_entry(entry: &Entry, outcome: Outcome) -> Head {
    Head {
        status: StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK),
        headers: entry.rendered.get_or_init(|| render(entry)).clone(),
        size: Some(entry.size),
        outcome: stored_outcome(entry, outcome),
    }
}

/// The stored part of `entry`'s answers: its stored headers, content type
/// and `ETag` (the blob's digest when the upstream gave none), with room
/// for what each answer adds (`serve/respond.rs`: source, size, ranges).
/// Nothing served-only goes in here: the same head answers `cache-send`.
fn render(entry: &Entry) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(entry.headers.len() + 8);
    for (k, v) in &entry.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    if let Some(ct) = entry
        .content_type
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if !headers.contains_key(header::ETAG)
        && let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", entry.blob.hex()))
    {
        headers.insert(header::ETAG, v);
    }
    headers
}

/// Upstream headers that change what the bytes mean (RFC 9110 8.4, 8.5):
/// they are stored with the entry and replayed on every answer from it,
/// so a body the upstream gzipped unasked reaches clients still labelled
/// `Content-Encoding: gzip`. (`Content-Type` is handled apart: the plan
/// may override it.)
pub const REPRESENTATION_HEADERS: [HeaderName; 2] =
    [header::CONTENT_ENCODING, header::CONTENT_LANGUAGE];

/// Headers to serve for a fresh upstream response: content type (the
/// plan's, else the upstream's), validators, the representation headers
/// ([`REPRESENTATION_HEADERS`]), then the plan's headers.
pub fn response_headers(plan: &Plan, upstream: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    let ct = plan
        .content_type
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
        .or_else(|| upstream.get(header::CONTENT_TYPE).cloned())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    for name in [header::ETAG, header::LAST_MODIFIED] {
        if let Some(v) = upstream.get(&name) {
            h.insert(name, v.clone());
        }
    }
    for name in REPRESENTATION_HEADERS {
        for v in upstream.get_all(&name) {
            h.append(name.clone(), v.clone());
        }
    }
    // The size the adapter names is served per response, from the head's
    // size (what was verified), never as a stored header.
    for (k, v) in plan
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(SIZE_HEADER))
    {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    h
}

/// The body size of an upstream answer: its `Content-Length`, else the
/// size the adapter expects ([`Plan::expected_size`]). `Err` with a
/// sentence when the two disagree (nothing can be right then).
pub fn body_size(plan: &Plan, upstream: &HeaderMap) -> Result<Option<u64>, String> {
    match (content_length(upstream), plan.expected_size()) {
        (Some(l), Some(e)) if l != e => Err(format!(
            "the upstream announced {l} bytes, but the adapter expects {e}"
        )),
        (l, e) => Ok(l.or(e)),
    }
}

/// Headers kept with an entry (all but `content-type`, which is stored apart).
pub fn stored_headers(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter(|(k, _)| *k != header::CONTENT_TYPE)
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// A header as text, when present and valid.
pub fn header_str(h: &HeaderMap, name: HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// `Content-Length` as a number.
pub fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Digest, EntryClass, Validators};

    fn entry() -> Entry {
        let mut e = Entry::fetched(EntryClass::Immutable, Validators::Refetch, "/f".into());
        e.blob = Digest::of(b"bytes");
        e.size = 5;
        e.content_type = Some("text/plain".into());
        e.headers = vec![("content-encoding".into(), "gzip".into())];
        e
    }

    #[test]
    fn an_entry_head_is_rendered_once_and_a_changed_clone_renders_afresh() {
        let e = entry();
        let first = head_of_entry(&e, Outcome::Hit);
        assert_eq!(first.headers["content-type"], "text/plain");
        assert_eq!(first.headers["content-encoding"], "gzip");
        // Served-only headers are added per answer, not stored in the head.
        assert!(!first.headers.contains_key("x-artifact-size"));
        assert!(!first.headers.contains_key("accept-ranges"));
        assert_eq!(
            first.headers["etag"],
            format!("\"{}\"", Digest::of(b"bytes").hex()).as_str()
        );
        // The second hit copies what the first rendered.
        let rendered = e.rendered.get_or_init(|| panic!("rendered again"));
        assert_eq!(rendered, &first.headers);
        assert_eq!(head_of_entry(&e, Outcome::Hit).headers, first.headers);
        // A change goes through a clone, which renders its own head.
        let mut changed = e.clone();
        changed.content_type = Some("application/json".into());
        changed.stale_since_ms = Some(1);
        let head = head_of_entry(&changed, Outcome::Hit);
        assert_eq!(head.headers["content-type"], "application/json");
        assert_eq!(head.outcome, Outcome::Stale);
        assert_eq!(
            head_of_entry(&e, Outcome::Hit).headers["content-type"],
            "text/plain"
        );
    }

    #[test]
    fn a_negative_entry_head_is_a_404_of_size_zero() {
        let e = Entry::negative(Digest::of(b""), 0, 1000, "/missing".into());
        let head = head_of_entry(&e, Outcome::Hit);
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        assert_eq!(head.size, Some(0));
        assert!(!head.headers.contains_key("accept-ranges"));
    }
}
