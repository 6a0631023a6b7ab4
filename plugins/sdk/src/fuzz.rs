//! Fuzz entry points for the SDK's parsers, and the corpus replay helper.
//!
//! Each `fn(&[u8])` here is what one cargo-fuzz target in the repository's
//! `fuzz/` directory calls, and what the stable replay tests feed every
//! file of `fuzz/corpus/<target>/` to, so the seeds run on every
//! `cargo test`. An entry must not panic for any input; where a property
//! holds (round trips, idempotence, "never leaves the root") it asserts it,
//! so a violation is a crash the fuzzer reports.
//!
//! Not part of the SDK's API for adapter authors.

use crate::digest::Digest;
use crate::types::{Decision, Header, HostedOp, RemoteInfo, RemoteMode, Request};
use crate::{http, media, path, pattern};

/// Inputs longer than this are cut: the parsers' work is linear in the
/// input, and longer inputs only slow the fuzzer down.
pub const MAX_INPUT: usize = 64 * 1024;

/// The input as text (lossy), at most [`MAX_INPUT`] bytes of it.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(MAX_INPUT)]).into_owned()
}

/// `digest`: [`Digest::parse`] and [`Digest::from_hex`]. What parses prints
/// back as `sha256:` + 64 lowercase hex digits and parses again to itself.
pub fn digest(data: &[u8]) {
    let s = text(data);
    if let Ok(d) = Digest::parse(&s) {
        assert_eq!(d.to_string(), s, "the strict form is canonical");
        assert_eq!(Digest::parse(&d.to_string()), Ok(d.clone()));
    }
    if let Ok(d) = Digest::from_hex(&s) {
        let printed = d.to_string();
        assert_eq!(printed.len(), 71);
        assert!(
            printed[7..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_eq!(Digest::parse(&printed), Ok(d.clone()));
        assert_eq!(Digest::from_hex(d.hex()), Ok(d));
    }
}

/// `http`: query parsing, percent decoding and encoding,
/// `content-disposition`. Encoding then decoding gives the input back;
/// encoded paths and components are printable ASCII without the characters
/// each encoder escapes; a disposition value has no control characters
/// (no header injection).
pub fn http(data: &[u8]) {
    let s = text(data);
    let pairs = http::parse_query(&s);
    assert!(pairs.len() <= s.matches('&').count() + 1);
    for (name, _) in &pairs {
        // `+` is a space in a query; a literal one comes only from `%2B`.
        assert!(!name.contains('+') || s.contains("%2B") || s.contains("%2b"));
    }
    let _ = http::query_param(Some(&s), "n");
    let _ = http::has_query_param(Some(&s), "list");
    let decoded = http::percent_decode(&s);
    assert!(decoded.len() <= s.len() * 3, "decoding never grows much");
    let path = http::encode_path(&s);
    assert!(
        path.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"#<>?\\^`{|}".contains(&b)),
        "{path:?}"
    );
    if !s.contains('%') {
        assert_eq!(http::percent_decode(&path), s, "encode_path round trip");
    }
    let component = http::encode_component(&s);
    assert!(
        component
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    );
    assert_eq!(
        http::percent_decode(&component),
        s,
        "encode_component round trip"
    );
    let cd = http::content_disposition(&s);
    assert!(
        !cd.chars().any(char::is_control),
        "content-disposition {cd:?}"
    );
}

/// `path`: segment helpers, [`path::match_segments`] with a pattern taken
/// from the input (after the first newline), and [`media::content_type`].
/// Captures are slices of the path made of whole segments.
pub fn path(data: &[u8]) {
    let s = text(data);
    let (p, pattern) = s.split_once('\n').unwrap_or((&s, "**/manifests/*"));
    for seg in path::segments(p) {
        assert!(!seg.is_empty() && !seg.contains('/'));
    }
    if let Some(name) = path::file_name(p) {
        assert!(!name.is_empty() && !name.contains('/'));
        assert!(p.ends_with(name));
    }
    if let Some(ext) = path::extension(p) {
        assert!(!ext.is_empty() && !ext.contains('.') && !ext.contains('/'));
    }
    assert!(path::starts_with_segments(p, ""));
    assert!(path::starts_with_segments(p, p));
    let _ = path::is_dir(p);
    if let Some(caps) = path::match_segments(p, pattern) {
        let stars = path::segments(pattern)
            .filter(|x| *x == "*" || *x == "**")
            .count();
        assert_eq!(caps.len(), stars, "one capture per placeholder");
        for c in caps {
            assert!(!c.is_empty() && !c.starts_with('/') && !c.ends_with('/'));
            assert!(p.contains(c));
        }
    }
    let ct = media::content_type(p);
    assert!(!ct.is_empty() && !ct.chars().any(char::is_control));
}

/// `pattern`: the first line is a path, the other lines are patterns
/// (every second one mutable). Compilation errors are errors, never panics,
/// and classification agrees with the regexes' own matching.
pub fn pattern(data: &[u8]) {
    let s = text(&data[..data.len().min(4096)]);
    let mut lines = s.lines();
    let p = lines.next().unwrap_or("");
    let (mut immutable, mut mutable) = (Vec::new(), Vec::new());
    for (i, l) in lines.take(8).enumerate() {
        if i % 2 == 0 {
            immutable.push(l.to_owned());
        } else {
            mutable.push(l.to_owned());
        }
    }
    match pattern::Patterns::compile(&immutable, &mutable) {
        Ok(pats) => {
            let class = pats.classify(p);
            assert_eq!(
                class == pattern::PathClass::Mutable,
                pats.is_mutable(p),
                "classify and is_mutable agree"
            );
            if class == pattern::PathClass::Immutable {
                assert!(pats.is_immutable(p));
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Whether `p` is a path the gateway hands to adapters: what its path
/// normaliser (`gateway/src/routes.rs`) lets through. No control
/// characters, `\`, `?`, `%XX` escapes or leading `/`; no empty segments
/// but a trailing `/`; no `.`/`..` segments, also not as `..;x` or with
/// trailing dots and spaces.
pub fn gateway_clean(p: &str) -> bool {
    let b = p.as_bytes();
    let escaped = b
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    let body = p.strip_suffix('/').unwrap_or(p);
    !(p.chars().any(char::is_control)
        || p.contains(['\\', '?'])
        || escaped
        || p.starts_with('/')
        || (!p.is_empty() && body.is_empty())
        || body.split('/').any(|seg| {
            let base = seg.split_once(';').map_or(seg, |(b, _)| b);
            seg.is_empty() || (base.contains('.') && base.chars().all(|c| c == '.' || c == ' '))
        }))
}

/// Whether a header could be sent as written: a token name and a value
/// without CR, LF or NUL.
pub fn header_ok(h: &Header) -> bool {
    !h.name.is_empty()
        && h.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !h.value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// The properties every decision has, whatever the request: headers that
/// can be sent, keys that are not empty, expected digests in canonical
/// form, statuses that exist. When the request path was `clean` (see
/// [`gateway_clean`]), an upstream target starts with `/` and its path,
/// percent-decoded, has no `.` or `..` segment: nothing an adapter plans
/// leaves the remote's root.
pub fn check_decision(d: &Decision, clean: bool) {
    match d {
        Decision::Forward(f) => {
            let t = &f.upstream.target;
            assert!(t.starts_with('/'), "target {t:?}");
            assert!(
                !t.bytes().any(|b| b.is_ascii_control() || b == b' '),
                "target {t:?}"
            );
            if clean {
                let path = t.split('?').next().unwrap_or("");
                let decoded = http::percent_decode(path);
                assert!(
                    decoded.split('/').all(|s| s != "." && s != ".."),
                    "target {t:?} leaves the root"
                );
            }
            assert!(f.upstream.headers.iter().all(header_ok));
            assert!(!f.plan.key.is_empty());
            assert!(f.plan.response_headers.iter().all(header_ok));
            if let Some(e) = &f.plan.expected_digest {
                assert!(Digest::is_valid_expected(e), "expected digest {e:?}");
            }
        }
        Decision::Respond(r) => {
            assert!((100..600).contains(&r.status));
            assert!(r.headers.iter().all(header_ok));
        }
        Decision::Reject(r) => {
            assert!((400..600).contains(&r.status), "status {}", r.status);
            assert!(!r.message.is_empty());
        }
        Decision::ReadBody(_) => {}
        Decision::Hosted(op) => {
            let key = match op {
                HostedOp::Read(r) => {
                    assert!(r.response_headers.iter().all(header_ok));
                    &r.key
                }
                HostedOp::Write(w) => {
                    if let Some(e) = &w.expected_digest {
                        assert!(Digest::is_valid(e), "expected digest {e:?}");
                    }
                    &w.key
                }
                HostedOp::Delete(k) => k,
                HostedOp::List(_) => return,
            };
            assert!(!key.is_empty());
            if clean {
                assert!(key.split('/').all(|s| s != "." && s != ".."), "{key:?}");
            }
        }
    }
}

/// A remote of `package` for the entries to plan against.
pub fn remote(package: &str, mode: RemoteMode) -> RemoteInfo {
    RemoteInfo::test()
        .with_name("fuzz")
        .with_package(package)
        .with_mode(mode)
        .with_upstreams(["https://upstream.example/base"])
        .with_check_mutable_updates(true)
        .with_mutable_patterns(["latest"])
}

/// A request on the `/api/v1/remote/` route family.
pub fn request(method: &str, path: &str, query: Option<&str>, body: Option<Vec<u8>>) -> Request {
    Request::test(method, path)
        .with_id("fuzz")
        .with_query(query)
        .with_body(body)
}

/// A query string as the gateway passes it on: the characters a request
/// target may hold (hyper refuses others), so `None` for anything else.
pub fn uri_query(q: &str) -> Option<&str> {
    q.bytes()
        .all(|b| b.is_ascii_graphic() && b != b'#')
        .then_some(q)
}

/// Where the committed corpora live: `fuzz/corpus/` at the repository
/// root, seen from a crate directory `manifest_dir` (`plugins/<crate>` or
/// `plugins/testing/<crate>`).
pub fn corpus_dir(manifest_dir: &str, target: &str) -> std::path::PathBuf {
    let mut dir = std::path::PathBuf::from(manifest_dir);
    while !dir.join("fuzz").join("corpus").is_dir() {
        assert!(
            dir.pop(),
            "no fuzz/corpus/ above {manifest_dir}; the corpora are committed with the repository"
        );
    }
    dir.join("fuzz").join("corpus").join(target)
}

/// Feeds every file of the corpus of `target` to `entry` and returns how
/// many there were. Fails when the directory is missing or has fewer than
/// `min` files (a corpus that silently vanished tests nothing).
pub fn replay(manifest_dir: &str, target: &str, min: usize, entry: fn(&[u8])) -> usize {
    let dir = corpus_dir(manifest_dir, target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "corpus {} has {} files, expected at least {min}",
        dir.display(),
        files.len()
    );
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let run = std::panic::catch_unwind(|| entry(&data));
        if let Err(panic) = run {
            eprintln!("corpus file {} fails", f.display());
            std::panic::resume_unwind(panic);
        }
    }
    files.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    #[test]
    fn corpora_replay() {
        assert!(replay(DIR, "sdk_digest", 5, digest) >= 5);
        assert!(replay(DIR, "sdk_http", 5, http) >= 5);
        assert!(replay(DIR, "sdk_path", 5, path) >= 5);
        assert!(replay(DIR, "sdk_pattern", 5, pattern) >= 5);
    }

    #[test]
    #[should_panic(expected = "corpus")]
    fn a_missing_corpus_fails() {
        replay(DIR, "no-such-target", 1, digest);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        #[test]
        fn digest_never_panics(s in "(sha256:)?[0-9a-fA-F:é ]{0,70}|.{0,80}") {
            digest(s.as_bytes());
        }

        #[test]
        fn digest_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 32)) {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
            proptest::prop_assert_eq!(d.hex(), hex.as_str());
            proptest::prop_assert_eq!(Digest::from_hex(&format!(" {} ", hex.to_uppercase())), Ok(d));
        }

        #[test]
        fn http_never_panics(s in "([a-z%+&=;/?#\"\\\\ é]|%[0-9a-fA-F]{2}|%[0-9A-F]?)*|.{0,80}") {
            http(s.as_bytes());
        }

        #[test]
        fn http_bytes_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            http(&b);
        }

        #[test]
        fn path_never_panics(s in "([a-z/.]|\\*|\\*\\*|/\\*\\*/|\n|é)*|.{0,80}") {
            path(s.as_bytes());
        }

        #[test]
        fn pattern_never_panics(s in "[a-z/.]{0,20}(\n([a-z.^$*+?()\\[\\]{}|\\\\/]|\\{[0-9]{1,4}(,[0-9]{0,4})?\\}){0,20}){0,6}") {
            pattern(s.as_bytes());
        }
    }
}
