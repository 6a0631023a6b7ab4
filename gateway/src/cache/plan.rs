//! Cache plans: an adapter's `cache-plan` with the remote's defaults
//! applied ([`resolve`]) and the changes `on-response` / `inspect-body` may
//! make to it ([`apply_update`]).

use super::checksum::Checksum;
use crate::plugins::wit;
use crate::state::RemoteRuntime;
use crate::store::{Digest, EntryClass, Validators};
use std::time::Duration;

/// A cache plan with the remote's defaults applied.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Cache key within the remote.
    pub key: String,
    /// Freshness class (`no-store` never reaches a fill).
    pub class: EntryClass,
    /// TTL of a mutable entry.
    pub ttl: Duration,
    /// How an expired entry is checked.
    pub validator: Validators,
    /// Content type override.
    pub content_type: Option<String>,
    /// The sha256 the body must have (the store's own digest).
    pub expected: Option<Digest>,
    /// Another digest the body must have (`sha512:`, `sha1:`).
    pub checksum: Option<Checksum>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Buffer and inspect bodies up to this size.
    pub inspect_limit: Option<u32>,
    /// Cache upstream 404s for the negative TTL.
    pub cache_not_found: bool,
}

/// The response header by which an adapter names the size the body will
/// have (`response-headers` of a plan or `add-headers` of an update): the
/// core checks the upstream's `Content-Length` and the body against it, and
/// it lets clients learn the size before the body even when the upstream
/// sends none. It is served as `X-Artifact-Size` (and `Content-Length`).
pub const SIZE_HEADER: &str = "x-artifact-size";

impl Plan {
    /// The size the adapter expects the body to have ([`SIZE_HEADER`]);
    /// the last one given counts.
    pub fn expected_size(&self) -> Option<u64> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(SIZE_HEADER))
            .and_then(|(_, v)| v.trim().parse().ok())
    }
}

/// Refuse a [`SIZE_HEADER`] that is not a size in bytes.
fn check_size_headers<'a>(
    mut headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    match headers
        .find(|(k, v)| k.eq_ignore_ascii_case(SIZE_HEADER) && v.trim().parse::<u64>().is_err())
    {
        Some((_, v)) => Err(format!(
            "the adapter gave {SIZE_HEADER} {v:?}, which is not a size in bytes"
        )),
        None => Ok(()),
    }
}

/// Apply an `on-response` / `inspect-body` update to a plan.
pub fn apply_update(plan: &mut Plan, u: &wit::PlanUpdate) -> Result<(), String> {
    check_size_headers(
        u.add_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str())),
    )?;
    if let Some(c) = u.class {
        plan.class =
            match c {
                wit::CacheClass::Immutable => EntryClass::Immutable,
                wit::CacheClass::Mutable => EntryClass::Mutable,
                wit::CacheClass::NoStore => return Err(
                    "the adapter turned a shared fetch into no-store after the response arrived"
                        .into(),
                ),
            };
    }
    if let Some(t) = u.ttl_secs {
        plan.ttl = Duration::from_secs(t);
    }
    if let Some(ct) = &u.content_type {
        plan.content_type = Some(ct.clone());
    }
    if let Some(d) = &u.expected_digest {
        match expected_digest(d)? {
            Expected::Sha256(e) => plan.expected = Some(e),
            Expected::Other(c) => plan.checksum = Some(c),
        }
    }
    for h in &u.add_headers {
        plan.headers.push((h.name.clone(), h.value.clone()));
    }
    Ok(())
}

/// An adapter's `expected-digest`: the store's sha256, or another
/// algorithm the body is checked against as it streams.
enum Expected {
    Sha256(Digest),
    Other(Checksum),
}

/// Whether `d` is an `expected-digest` the gateway takes (sha256, sha512
/// or sha1); the error says what is wrong with it. For `artgate plugin
/// check`, which judges decisions as the request path does.
pub fn check_expected_digest(d: &str) -> Result<(), String> {
    expected_digest(d).map(|_| ())
}

/// Parse an adapter's `expected-digest`: `sha256:`, `sha512:` or `sha1:`
/// and the digest in hexadecimal.
fn expected_digest(d: &str) -> Result<Expected, String> {
    let invalid = |e: &dyn std::fmt::Display| {
        format!("the adapter gave an invalid expected digest {d:?}: {e}")
    };
    match Checksum::parse(d) {
        Some(Ok(c)) => Ok(Expected::Other(c)),
        Some(Err(e)) => Err(invalid(&e)),
        None => d.parse().map(Expected::Sha256).map_err(|e| invalid(&e)),
    }
}

/// The longest cache key (or reference) an adapter may return: longer
/// than any request target the gateway accepts (`server.max_uri_bytes` is
/// at most 60 KiB), since adapters commonly use the path as the key.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// Apply the remote's defaults to an adapter's plan and check it.
pub fn resolve(remote: &RemoteRuntime, p: &wit::CachePlan) -> Result<Plan, String> {
    if p.key.is_empty() || p.key.len() > MAX_KEY_BYTES || p.key.contains('\0') {
        return Err("the adapter returned an empty, oversized or NUL-containing cache key".into());
    }
    let class = match p.class {
        wit::CacheClass::Immutable => EntryClass::Immutable,
        wit::CacheClass::Mutable | wit::CacheClass::NoStore => EntryClass::Mutable,
    };
    let validator = match &p.validator {
        Some(wit::Validator::Conditional) => Validators::Conditional,
        Some(wit::Validator::HeadCompare(h)) => Validators::HeadCompare(h.to_ascii_lowercase()),
        Some(wit::Validator::Refetch) => Validators::Refetch,
        None if remote.cfg.check_mutable_updates => Validators::Conditional,
        None => Validators::Refetch,
    };
    check_size_headers(
        p.response_headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str())),
    )?;
    let (expected, checksum) = match p.expected_digest.as_deref().map(expected_digest) {
        None => (None, None),
        Some(Ok(Expected::Sha256(e))) => (Some(e), None),
        Some(Ok(Expected::Other(c))) => (None, Some(c)),
        Some(Err(e)) => return Err(e),
    };
    Ok(Plan {
        key: p.key.clone(),
        class,
        ttl: p
            .ttl_secs
            .map(Duration::from_secs)
            .unwrap_or(remote.cfg.mutable_ttl),
        validator,
        content_type: p.content_type.clone(),
        expected,
        checksum,
        headers: p
            .response_headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .collect(),
        inspect_limit: p.inspect_limit,
        cache_not_found: p.cache_not_found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::head::body_size;
    use http::{HeaderMap, HeaderValue, header};

    fn plan(headers: &[(&str, &str)]) -> Plan {
        Plan {
            key: "k".into(),
            class: EntryClass::Immutable,
            ttl: Duration::ZERO,
            validator: Validators::Refetch,
            content_type: None,
            expected: None,
            checksum: None,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            inspect_limit: None,
            cache_not_found: false,
        }
    }

    #[test]
    fn the_size_header_is_read_in_any_case_and_the_last_one_counts() {
        assert_eq!(plan(&[]).expected_size(), None);
        assert_eq!(
            plan(&[("X-Artifact-Size", " 42 ")]).expected_size(),
            Some(42)
        );
        let twice = plan(&[("x-artifact-size", "1"), ("x-artifact-size", "2")]);
        assert_eq!(twice.expected_size(), Some(2));
    }

    #[test]
    fn a_size_that_is_not_a_number_is_refused() {
        assert!(check_size_headers([("x-artifact-size", "12")].into_iter()).is_ok());
        assert!(check_size_headers([("x-other", "many")].into_iter()).is_ok());
        for bad in ["-1", "", "12 bytes", "99999999999999999999999"] {
            let e = check_size_headers([("X-Artifact-Size", bad)].into_iter()).unwrap_err();
            assert!(e.contains("not a size in bytes"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn content_length_and_the_adapters_size_must_agree() {
        let mut up = HeaderMap::new();
        assert_eq!(body_size(&plan(&[]), &up), Ok(None));
        assert_eq!(
            body_size(&plan(&[("x-artifact-size", "7")]), &up),
            Ok(Some(7))
        );
        up.insert(header::CONTENT_LENGTH, HeaderValue::from_static("7"));
        assert_eq!(body_size(&plan(&[]), &up), Ok(Some(7)));
        assert_eq!(
            body_size(&plan(&[("x-artifact-size", "7")]), &up),
            Ok(Some(7))
        );
        let e = body_size(&plan(&[("x-artifact-size", "8")]), &up).unwrap_err();
        assert!(e.contains("7") && e.contains("8"), "{e}");
    }

    /// An adapter's expected digest is the store's sha256 or, by its
    /// prefix, a sha512 or sha1 checked beside it; a malformed one is
    /// refused with the adapter named.
    #[test]
    fn expected_digests_by_algorithm() {
        let sha256 = Digest::of(b"x").to_string();
        assert!(matches!(expected_digest(&sha256), Ok(Expected::Sha256(_))));
        let sha1 = "sha1:11f6ad8ec52a2984abaafd7c3b516503785c2072";
        assert!(matches!(expected_digest(sha1), Ok(Expected::Other(_))));
        for bad in ["sha1:11f6", "md5:00", "sha256:zz", ""] {
            let e = expected_digest(bad).err().expect(bad);
            assert!(e.contains("invalid expected digest"), "{bad}: {e}");
        }
    }
}
