//! Fuzz entry points for the cas adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz targets in `fuzz/` call these, and the tests below replay the
//! committed corpora through them on stable.

use crate::{Cas, EMPTY_SHA256, parse_path, proto, reapi, references};
use artgate_sdk::fuzz::{check_decision, gateway_clean, remote, request, text};
use artgate_sdk::prelude::*;

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hashes a parser returned: lower-case sha256, each once.
fn check_hashes(hashes: &[String]) {
    for (i, d) in hashes.iter().enumerate() {
        assert!(is_sha256_hex(d), "{d:?}");
        assert!(!hashes[..i].contains(d), "duplicate {d}");
    }
}

/// Keys a `reapi/` inspection returned: `cas/` or `tree/` and a
/// lower-case sha256 other than the empty blob's, each once.
fn check_keys(keys: &[String]) {
    for (i, k) in keys.iter().enumerate() {
        let hash = k
            .strip_prefix("cas/")
            .or_else(|| k.strip_prefix("tree/"))
            .unwrap_or_else(|| panic!("not a cas/ or tree/ key: {k:?}"));
        assert!(is_sha256_hex(hash) && hash != EMPTY_SHA256, "{k:?}");
        assert!(!keys[..i].contains(k), "duplicate {k}");
    }
}

/// The push headers [`proto`] inspects its input with: two blobs and a
/// directory.
const PUSHED: [(&str, &str); 3] = [
    (
        "x-reapi-blob",
        "1111111111111111111111111111111111111111111111111111111111111111/1",
    ),
    (
        "x-reapi-blob",
        "2222222222222222222222222222222222222222222222222222222222222222/2",
    ),
    (
        "x-reapi-directory",
        "3333333333333333333333333333333333333333333333333333333333333333/3",
    ),
];

/// `cas_proto`: the input is an `/ac/` upload, a `Directory`, a
/// BuildStream `Artifact` or `Source`, the body of each `reapi/`
/// inspection. A message that parses gives unique lower-case sha256
/// hashes; the references are `cas/{hash}` (and `tree/{hash}`) keys
/// without the empty blob; a `Directory` inspection fails exactly when the
/// parser refuses the body; an asset inspection with well-formed headers
/// never fails, and needs every pushed reference whenever its body does
/// not parse; anything else is an error, never a panic.
pub fn proto(data: &[u8]) {
    action_result(data);
    reapi_messages(data);
}

/// The `/ac/` part of [`proto`].
fn action_result(data: &[u8]) {
    if let Ok(digests) = proto::action_result_digests(data) {
        check_hashes(&digests);
    }
    for r in references("ac/fuzz", data) {
        let hash = r.strip_prefix("cas/").expect("a cas/ key");
        assert!(is_sha256_hex(hash) && hash != EMPTY_SHA256, "{r:?}");
    }
}

/// The `reapi/` part of [`proto`].
fn reapi_messages(data: &[u8]) {
    let directory = proto::directory(data);
    let parsed = [&directory, &proto::artifact(data), &proto::source(data)];
    for r in parsed.into_iter().flatten() {
        check_hashes(&r.blobs);
        check_hashes(&r.trees);
    }
    let dir_path = format!("reapi/directory/{}", "d".repeat(64));
    let keys = reapi::references(&dir_path, &[], data);
    assert_eq!(keys.is_ok(), directory.is_ok(), "{keys:?}");
    if let Ok(keys) = keys {
        check_keys(&keys);
    }
    // One push under an artifact and an element-sources URN: the union
    // of what each needs.
    let asset = "a".repeat(64);
    let mut headers = vec![
        Header::new(
            reapi::URI_HEADER,
            format!("{}p/e/{asset}", reapi::ARTIFACT_URN),
        ),
        Header::new(reapi::URI_HEADER, format!("{}{asset}", reapi::SOURCE_URN)),
    ];
    headers.extend(PUSHED.map(|(n, v)| Header::new(n, v)));
    let keys = reapi::references(&format!("reapi/asset/{asset}"), &headers, data)
        .expect("well-formed headers");
    check_keys(&keys);
    assert_eq!(keys.first(), Some(&format!("cas/{asset}")));
    let mut parsed = 0;
    for r in [proto::artifact(data), proto::source(data)] {
        if let Ok(r) = r
            && !data.is_empty()
        {
            parsed += 1;
            let blobs = r.blobs.iter().map(|h| ("cas", h.as_str()));
            for (store, h) in blobs.chain(r.trees.iter().map(|h| ("tree", h.as_str()))) {
                let key = format!("{store}/{h}");
                assert!(
                    h == EMPTY_SHA256 || keys.contains(&key),
                    "{key} missing from {keys:?}"
                );
            }
        }
    }
    if parsed < 2 {
        // At least one URI falls back to the pushed references.
        for (n, v) in PUSHED {
            let store = if n == "x-reapi-blob" { "cas" } else { "tree" };
            let key = format!("{store}/{}", &v[..64]);
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }
}

/// `cas_reapi`: the input is an inspection as the
/// gRPC front sends it: the path on the first line, then `name: value`
/// header lines up to an empty line, then the body. The verdict either
/// fails with 400 and a one-line sentence, or references well-formed
/// keys only; never a panic.
pub fn reapi(data: &[u8]) {
    let data = &data[..data.len().min(artgate_sdk::fuzz::MAX_INPUT)];
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (text(&data[..i]), data.get(i + 2..).unwrap_or_default()),
        None => (text(data), &[][..]),
    };
    let mut lines = head.split('\n');
    let path = lines.next().unwrap_or("");
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    let req = Request::test("GET", path)
        .with_id("fuzz")
        .with_headers(&headers);
    let verdict = <Cas as Adapter>::inspect_body(
        remote("cas", RemoteMode::Hosted),
        req,
        UpstreamResponse::test(0, &[]),
        body.to_vec(),
    );
    match verdict.fail {
        Some(r) => {
            assert_eq!(r.status, 400);
            assert!(
                r.message.ends_with('.') && !r.message.contains('\n'),
                "{r:?}"
            );
            assert!(verdict.references.is_empty());
        }
        None if reapi::is_reapi(path) => check_keys(&verdict.references),
        None => {}
    }
}

/// `cas_path`: the input is a request path; each line after the first is
/// a method to plan it with. A parsed path is `cas/` or `ac/` and a
/// lower-case sha256; every decision is well formed, and hosted keys are
/// the store and the hash only.
pub fn path(data: &[u8]) {
    let s = text(data);
    let mut lines = s.split('\n');
    let p = lines.next().unwrap_or("");
    if let Ok((_, hash)) = parse_path(p) {
        assert!(is_sha256_hex(&hash));
    }
    let mut methods: Vec<&str> = lines.take(4).collect();
    methods.extend(["GET", "PUT", "DELETE"]);
    for m in methods {
        let r = remote("cas", RemoteMode::Hosted);
        let d = <Cas as Adapter>::plan(r, request(m, p, None, None));
        check_decision(&d, gateway_clean(p));
        if let Decision::Hosted(op) = &d {
            let key = match op {
                HostedOp::Read(r) => &r.key,
                HostedOp::Write(w) => &w.key,
                HostedOp::Delete(k) => k,
                HostedOp::List(_) => panic!("cas never lists"),
            };
            let (store, hash) = key.split_once('/').expect("store/hash");
            assert!(
                matches!(store, "cas" | "ac") && is_sha256_hex(hash),
                "{key:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artgate_sdk::fuzz::replay;
    use proptest::prelude::*;

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    #[test]
    fn corpora_replay() {
        replay(DIR, "cas_proto", 5, proto);
        replay(DIR, "cas_path", 5, path);
        replay(DIR, "cas_reapi", 5, reapi);
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u32, payload: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(n) << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn digest_msg(hash: &str, size: u64) -> Vec<u8> {
        let mut m = Vec::new();
        field(1, hash.as_bytes(), &mut m);
        varint(2 << 3, &mut m);
        varint(size, &mut m);
        m
    }

    /// One referencing field of an `ActionResult`: which (2 output file,
    /// 3 output directory, 6 stdout, 8 stderr) and the hash.
    fn reference() -> impl Strategy<Value = (u32, String)> {
        (
            prop::sample::select(vec![2u32, 3, 6, 8]),
            prop_oneof![
                "[0-9a-f]{64}",
                Just(EMPTY_SHA256.to_owned()),
                Just("ab".repeat(32))
            ],
        )
    }

    /// Encodes an `ActionResult` with these references, an exit code and
    /// stdout bytes in between.
    fn encode(refs: &[(u32, String)], upper: bool) -> Vec<u8> {
        let mut out = Vec::new();
        varint(4 << 3, &mut out);
        varint(1, &mut out);
        for (n, h) in refs {
            let h = if upper { h.to_uppercase() } else { h.clone() };
            let d = digest_msg(&h, 42);
            match n {
                2 => {
                    let mut f = Vec::new();
                    field(1, b"out/a.o", &mut f);
                    field(2, &d, &mut f);
                    field(2, &f, &mut out);
                }
                3 => {
                    let mut f = Vec::new();
                    field(1, b"out/dir", &mut f);
                    field(3, &d, &mut f);
                    field(3, &f, &mut out);
                }
                _ => field(*n, &d, &mut out),
            }
            field(5, b"stdout bytes", &mut out);
        }
        out
    }

    /// A digest hash for the REAPI messages: random, repeated, or the
    /// empty blob's.
    fn hash() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9a-f]{64}",
            Just(EMPTY_SHA256.to_owned()),
            Just("ab".repeat(32))
        ]
    }

    /// The keys `reapi/` inspections give for these blobs and trees.
    fn keys(blobs: &[String], trees: &[String]) -> Vec<String> {
        let blobs = blobs.iter().map(|h| format!("cas/{h}"));
        let trees = trees.iter().map(|h| format!("tree/{h}"));
        blobs
            .chain(trees)
            .filter(|k| !k.ends_with(EMPTY_SHA256))
            .collect()
    }

    /// Encodes a `Directory` with these nodes (file or directory, hash),
    /// a symlink and node properties in between.
    fn encode_directory(nodes: &[(bool, String)], upper: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (file, h)) in nodes.iter().enumerate() {
            let h = if upper { h.to_uppercase() } else { h.clone() };
            let mut node = Vec::new();
            field(1, format!("n{i}").as_bytes(), &mut node);
            field(2, &digest_msg(&h, 42), &mut node);
            if *file {
                varint(4 << 3, &mut node);
                varint(1, &mut node);
            }
            field(if *file { 1 } else { 2 }, &node, &mut out);
            let mut link = Vec::new();
            field(1, b"link", &mut link);
            field(2, b"../x", &mut link);
            field(3, &link, &mut out);
        }
        let mut mode = Vec::new();
        varint(1 << 3, &mut mode);
        varint(0o644, &mut mode);
        let mut props = Vec::new();
        field(3, &mode, &mut props);
        field(5, &props, &mut out);
        out
    }

    /// Encodes a BuildStream `Artifact` with these digest fields (a log
    /// for 11), a version and a key in between.
    fn encode_artifact(fields: &[(u32, String)], upper: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, h) in fields {
            let h = if upper { h.to_uppercase() } else { h.clone() };
            let d = digest_msg(&h, 42);
            if *n == 11 {
                let mut log = Vec::new();
                field(1, b"build.log", &mut log);
                field(2, &d, &mut log);
                field(11, &log, &mut out);
            } else {
                field(*n, &d, &mut out);
            }
            varint(1 << 3, &mut out);
            varint(1, &mut out);
            field(5, "e".repeat(64).as_bytes(), &mut out);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn encoded_action_results_round_trip(refs in prop::collection::vec(reference(), 0..8), upper in any::<bool>()) {
            let buf = encode(&refs, upper);
            let mut want: Vec<String> = Vec::new();
            for (_, h) in &refs {
                if !want.contains(h) {
                    want.push(h.clone());
                }
            }
            prop_assert_eq!(proto::action_result_digests(&buf), Ok(want.clone()));
            let refs_want: Vec<String> = want.iter().filter(|h| *h != EMPTY_SHA256).map(|h| format!("cas/{h}")).collect();
            prop_assert_eq!(references("ac/x", &buf), refs_want);
            proto(&buf);
            // Every truncation parses or is refused, never a panic. (Only
            // the `ActionResult` part: the REAPI messages have their own
            // truncation tests, and all of `proto` on every prefix is slow
            // in a debug build.)
            for end in 0..buf.len() {
                action_result(&buf[..end]);
            }
        }

        #[test]
        fn corrupted_action_results_never_panic(refs in prop::collection::vec(reference(), 1..4), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut buf = encode(&refs, false);
            let i = at.index(buf.len());
            buf[i] = byte;
            proto(&buf);
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            proto(&b);
        }

        #[test]
        fn reapi_inspections_never_panic(
            path in "reapi/(directory|asset|asset-directory|x)?/?[0-9a-fA-F]{62,65}",
            headers in prop::collection::vec(("x-reapi-(uri|blob|directory|body|x)", "(urn:fdc:buildstream.build:2020:(artifact|source):)?[0-9a-f]{0,66}(/-?[0-9]{0,20})?(, ?)?|omitted|"), 0..6),
            body in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..100),
                prop::collection::vec((prop::sample::select(vec![8u32, 10, 11, 12, 13, 14, 15, 17]), hash()), 0..6).prop_map(|f| encode_artifact(&f, false)),
            ],
        ) {
            let mut input = path.into_bytes();
            for (n, v) in headers {
                input.extend(format!("\n{n}: {v}").as_bytes());
            }
            input.extend(b"\n\n");
            input.extend(body);
            reapi(&input);
        }

        #[test]
        fn paths_never_panic(p in "(cas|ac|x)?/?([0-9a-fA-F]{0,70}|\\.\\.|/|é)*", m in "(GET|HEAD|PUT|DELETE|POST|get|)") {
            path(format!("{p}\n{m}").as_bytes());
        }
    }

    // The REAPI messages are longer and every prefix goes through all of
    // `proto`: fewer cases.
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn encoded_directories_round_trip(nodes in prop::collection::vec((any::<bool>(), hash()), 0..12), upper in any::<bool>()) {
            let buf = encode_directory(&nodes, upper);
            let (mut blobs, mut trees) = (Vec::new(), Vec::new());
            for (file, h) in &nodes {
                let list = if *file { &mut blobs } else { &mut trees };
                if !list.contains(h) {
                    list.push(h.clone());
                }
            }
            let want_keys = keys(&blobs, &trees);
            prop_assert_eq!(proto::directory(&buf), Ok(proto::References { blobs, trees }));
            let path = format!("reapi/directory/{}", "d".repeat(64));
            prop_assert_eq!(reapi::references(&path, &[], &buf), Ok(want_keys));
            proto(&buf);
            // Every truncation parses or is refused, never a panic.
            for end in (0..buf.len()).step_by(7) {
                proto(&buf[..end]);
            }
        }

        #[test]
        fn encoded_artifacts_require_the_needed_fields(fields in prop::collection::vec((prop::sample::select(vec![8u32, 10, 11, 12, 13, 14, 15, 17]), hash()), 0..10), upper in any::<bool>()) {
            let buf = encode_artifact(&fields, upper);
            let (mut blobs, mut trees) = (Vec::new(), Vec::new());
            for (n, h) in &fields {
                let list = match n {
                    8 => &mut trees,
                    10 | 11 | 14 | 15 => &mut blobs,
                    _ => continue,
                };
                if !list.contains(h) {
                    list.push(h.clone());
                }
            }
            let asset = "a".repeat(64);
            let mut want_keys = vec![format!("cas/{asset}")];
            for k in keys(&blobs, &trees) {
                if !want_keys.contains(&k) {
                    want_keys.push(k);
                }
            }
            prop_assert_eq!(proto::artifact(&buf), Ok(proto::References { blobs, trees }));
            // Every field is pushed as a reference; only the needed ones count.
            let mut headers = vec![Header::new(reapi::URI_HEADER, format!("{}p/e/{asset}", reapi::ARTIFACT_URN))];
            for (n, h) in &fields {
                let name = if matches!(n, 10 | 11 | 14 | 15) { reapi::BLOB_HEADER } else { reapi::DIRECTORY_HEADER };
                headers.push(Header::new(name, format!("{h}/42")));
            }
            let got = reapi::references(&format!("reapi/asset/{asset}"), &headers, &buf);
            if buf.is_empty() {
                // No fields: the empty blob, read by the generic rule.
                prop_assert!(got.is_ok());
            } else {
                prop_assert_eq!(got, Ok(want_keys));
            }
            proto(&buf);
            for end in (0..buf.len()).step_by(7) {
                proto(&buf[..end]);
            }
        }
    }
}
