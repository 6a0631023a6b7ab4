//! Fuzz entry points for the gateway's parsers of untrusted input.
//!
//! The cargo-fuzz targets `gateway_*` call these, and
//! `gateway/tests/fuzz_corpus.rs` includes this file and replays the
//! committed corpora through them on stable, so both run the same code.
//! Every entry must not panic for any input and asserts the properties
//! that hold: idempotence, "never leaves the root", agreement with a
//! simple reference, independence from how a body is chunked.

use artgate::cache::pktcheck::PktStream;
use artgate::cache::range::{self, RangeSpec};
use artgate::routes::{self, Route};
use artgate::store::Digest;

/// The input as text (lossy), at most 64 KiB of it.
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]).into_owned()
}

/// A normalised path is relative, has no empty, `.` or `..` segment (also
/// not as `..;x` or with trailing dots and spaces), no control character,
/// no backslash and no character some server reads as one of `./\%`.
fn assert_safe(n: &str) {
    assert!(!n.starts_with('/'), "{n:?}");
    assert!(
        !n.contains('\\') && !n.chars().any(char::is_control),
        "{n:?}"
    );
    assert!(!n.chars().any(routes::is_lookalike), "{n:?}");
    let body = n.strip_suffix('/').unwrap_or(n);
    for seg in body.split('/').filter(|_| !body.is_empty()) {
        let base = seg.split(';').next().unwrap_or(seg);
        assert!(!seg.is_empty(), "{n:?}");
        assert!(
            !(base.contains('.') && base.chars().all(|c| c == '.' || c == ' ')),
            "{n:?}"
        );
    }
}

/// `gateway_path`: the input is the raw (still percent-encoded) path below
/// a remote. What the normaliser accepts is safe and normalises to itself;
/// the router gives the same path for it on both route families.
pub fn path(data: &[u8]) {
    let raw = text(data);
    if let Ok(n) = routes::normalize_path(&raw) {
        assert_safe(&n);
        assert_eq!(routes::normalize_path(&n), Ok(n.clone()), "idempotent");
    }
    for prefix in ["/api/v1/remote/r/", "/v2/r/"] {
        let Ok(uri) = format!("{prefix}{raw}").parse::<http::Uri>() else {
            continue;
        };
        match routes::parse(&http::Method::GET, &uri) {
            Ok(Route::Remote { path, .. }) => {
                assert_safe(&path);
                let again = routes::normalize_path(uri.path().strip_prefix(prefix).unwrap_or(""));
                assert_eq!(again, Ok(path));
            }
            Ok(other) => panic!("{uri} routed to {other:?}"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// `gateway_digest`: what parses prints back as itself (71 characters)
/// and round-trips through its bytes and its bare hex form.
pub fn digest(data: &[u8]) {
    let s = text(data);
    if let Ok(d) = Digest::parse(&s) {
        assert_eq!(d.to_string(), s);
        assert_eq!(s.len(), 71);
        assert_eq!(Digest::from_bytes(*d.as_bytes()), d);
        assert_eq!(Digest::from_hex(&d.hex()), Ok(d));
    }
    if let Ok(d) = Digest::from_hex(&s) {
        assert_eq!(d.hex(), s);
        assert_eq!(Digest::parse(&format!("sha256:{s}")), Ok(d));
    }
    if let Err(e) = Digest::parse(&s) {
        let msg = e.to_string();
        assert!(!msg.is_empty() && msg.len() < 200, "{msg}");
    }
}

/// `gateway_range`: the first line is the body length (else the input's
/// length), the rest the `Range` value. A partial range lies inside the
/// body; a plain `bytes=a-b` gets exactly what RFC 9110 says.
pub fn range(data: &[u8]) {
    let s = text(data);
    let (len, header) = match s.split_once('\n') {
        Some((l, h)) => match l.parse::<u64>() {
            Ok(n) => (n, h),
            Err(_) => (data.len() as u64, s.as_str()),
        },
        None => (data.len() as u64, s.as_str()),
    };
    let got = range::parse(Some(header), len);
    if let RangeSpec::Partial { start, end } = got {
        assert!(start < end && end <= len, "{header:?} {len}: {got:?}");
    }
    // The reference for the plain first-last form.
    if let Some((a, b)) = header
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        && let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>())
        && a <= b
        && !header.contains([',', '+'])
    {
        let want = if a >= len {
            RangeSpec::Unsatisfiable
        } else {
            RangeSpec::Partial {
                start: a,
                end: b.saturating_add(1).min(len),
            }
        };
        assert_eq!(got, want, "{header:?} {len}");
    }
    assert_eq!(range::parse(None, len), RangeSpec::Full);
}

/// A whole-body reference for [`PktStream`]: packets with a four-hex-digit
/// length, the last one a flush, no `ERR ` packet and no sideband-3
/// packet.
fn pkt_reference(mut b: &[u8]) -> bool {
    let mut last_flush = false;
    let mut any = false;
    while !b.is_empty() {
        let Some(prefix) = b.get(..4) else {
            return false;
        };
        let Some(len) = std::str::from_utf8(prefix)
            .ok()
            .filter(|p| p.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|p| usize::from_str_radix(p, 16).ok())
        else {
            return false;
        };
        any = true;
        match len {
            0 => last_flush = true,
            1 | 2 => last_flush = false,
            3 => return false,
            n if n > 65520 => return false,
            n => {
                let Some(payload) = b.get(4..n) else {
                    return false;
                };
                if payload.starts_with(b"ERR ") || payload.first() == Some(&3) {
                    return false;
                }
                last_flush = false;
                b = &b[n..];
                continue;
            }
        }
        b = &b[4..];
    }
    any && last_flush
}

/// `gateway_pktcheck`: the input is a git smart-HTTP response body. The
/// verdict does not depend on how the body is chunked (whole, split in
/// two at every place the input's first byte picks, byte by byte) and
/// agrees with a whole-body reference.
pub fn pktcheck(data: &[u8]) {
    let mut whole = PktStream::default();
    whole.feed(data);
    let verdict = whole.finish();
    assert_eq!(verdict.is_ok(), pkt_reference(data), "{verdict:?}");
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut chunked = PktStream::default();
    for c in data.chunks(step) {
        chunked.feed(c);
    }
    assert_eq!(chunked.finish(), verdict, "chunks of {step}");
    if data.len() <= 4096 {
        let mut bytes = PktStream::default();
        for b in data {
            bytes.feed(std::slice::from_ref(b));
        }
        assert_eq!(bytes.finish(), verdict, "byte by byte");
    }
}
