//! Host-target tests of the cas adapter's decisions.

use super::*;

fn remote(mode: RemoteMode) -> RemoteInfo {
    RemoteInfo::test()
        .with_name("cache")
        .with_package("cas")
        .with_mode(mode)
        .with_upstreams::<&str>([])
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    Request::test(method, path)
        .with_id("req-1")
        .with_headers(headers)
}

fn plan(method: &str, path: &str) -> Decision {
    Cas::plan(remote(RemoteMode::Hosted), request(method, path, &[]))
}

fn status(d: &Decision) -> u16 {
    match d {
        Decision::Reject(r) => r.status,
        Decision::Respond(r) => r.status,
        other => panic!("expected a reject or respond, got {other:?}"),
    }
}

#[test]
fn reads_and_writes_map_to_hosted_keys() {
    let h = "A".repeat(64);
    let lower = "a".repeat(64);
    match plan("GET", &format!("cas/{h}")) {
        Decision::Hosted(HostedOp::Read(r)) => {
            assert_eq!(r.key, format!("cas/{lower}"));
            assert_eq!(r.content_type.as_deref(), Some("application/octet-stream"));
        }
        other => panic!("{other:?}"),
    }
    match plan("PUT", &format!("cas/{h}")) {
        Decision::Hosted(HostedOp::Write(w)) => {
            assert_eq!(w.key, format!("cas/{lower}"));
            assert_eq!(w.expected_digest, Some(format!("sha256:{lower}")));
            assert_eq!(w.inspect_limit, None);
        }
        other => panic!("{other:?}"),
    }
    match plan("PUT", &format!("ac/{lower}")) {
        Decision::Hosted(HostedOp::Write(w)) => {
            assert_eq!(w.key, format!("ac/{lower}"));
            assert_eq!(w.expected_digest, None);
            assert_eq!(w.inspect_limit, Some(AC_INSPECT_LIMIT));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan("DELETE", &format!("ac/{lower}")),
        Decision::Hosted(HostedOp::Delete(format!("ac/{lower}")))
    );
}

#[test]
fn ccache_uploads_are_not_inspected() {
    let d = Cas::plan(
        remote(RemoteMode::Hosted),
        request(
            "PUT",
            &format!("ac/{}", "b".repeat(64)),
            &[("User-Agent", "ccache/4.7.5")],
        ),
    );
    match d {
        Decision::Hosted(HostedOp::Write(w)) => assert_eq!(w.inspect_limit, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_empty_blob_always_exists() {
    for m in ["GET", "HEAD"] {
        match plan(m, &format!("cas/{EMPTY_SHA256}")) {
            Decision::Respond(r) => {
                assert_eq!(r.status, 200);
                assert!(r.body.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bad_paths_methods_and_modes() {
    assert_eq!(status(&plan("GET", "")), 404);
    assert_eq!(status(&plan("GET", "cas/")), 404);
    assert_eq!(status(&plan("GET", "other/x")), 404);
    assert_eq!(
        status(&plan("GET", &format!("cas/{}/x", "a".repeat(64)))),
        404
    );
    assert_eq!(status(&plan("GET", "cas/abc")), 400);
    assert_eq!(status(&plan("PUT", &format!("ac/{}", "g".repeat(64)))), 400);
    assert_eq!(
        status(&plan("POST", &format!("ac/{}", "a".repeat(64)))),
        405
    );
    let d = Cas::plan(
        remote(RemoteMode::PullThrough),
        request("GET", &format!("cas/{}", "a".repeat(64)), &[]),
    );
    assert_eq!(status(&d), 400);
}

#[test]
fn references_skip_the_empty_blob_and_opaque_entries() {
    // ActionResult { stdout_digest = Digest { hash = e3b0… }, stderr_digest = Digest { hash = aa… } }
    let mut ar = Vec::new();
    for (field, hash) in [(6u8, EMPTY_SHA256.to_owned()), (8u8, "a".repeat(64))] {
        let mut d = vec![0x0a, 64];
        d.extend_from_slice(hash.as_bytes());
        ar.push(field << 3 | 2);
        ar.push(d.len() as u8);
        ar.extend(d);
    }
    assert_eq!(
        references("ac/x", &ar),
        vec![format!("cas/{}", "a".repeat(64))]
    );
    assert!(references("ac/x", &[0xcc, 0xac, 1, 0, 1]).is_empty());
    assert!(references("ac/x", b"\xff\xff garbage").is_empty());
}

/// A tiny protobuf encoder for the REAPI tests.
mod enc {
    /// Appends `v` as a varint.
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
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

    /// A length-delimited field (string, bytes or message).
    pub fn field(n: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(n) << 3 | 2, &mut out);
        varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }

    /// A varint field.
    pub fn uint(n: u32, v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(n) << 3, &mut out);
        varint(v, &mut out);
        out
    }

    /// A `Digest { hash = 1; size_bytes = 2; }` message.
    pub fn digest(hash: &str, size: u64) -> Vec<u8> {
        let mut d = field(1, hash.as_bytes());
        d.extend(uint(2, size));
        d
    }

    /// A message field holding a `Digest`.
    pub fn digest_field(n: u32, hash: &str) -> Vec<u8> {
        field(n, &digest(hash, 7))
    }

    /// The concatenation of encoded fields.
    pub fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }
}

fn h(c: char) -> String {
    c.to_string().repeat(64)
}

/// `inspect-body` as the gRPC front calls it.
fn inspect(path: &str, headers: &[(&str, &str)], body: &[u8]) -> BodyVerdict {
    Cas::inspect_body(
        remote(RemoteMode::Hosted),
        request("GET", path, headers),
        UpstreamResponse::test(0, &[]),
        body.to_vec(),
    )
}

/// The references of a verdict that must not fail.
#[track_caller]
fn refs(v: BodyVerdict) -> Vec<String> {
    assert_eq!(v.fail, None, "{v:?}");
    v.references
}

/// The 400 of a failing verdict, with its one-sentence message.
#[track_caller]
fn refused(v: BodyVerdict) -> String {
    assert!(v.references.is_empty(), "{v:?}");
    let r = v.expect_fail();
    assert_eq!(r.status, 400);
    assert!(
        r.message.ends_with('.') && !r.message.contains('\n'),
        "{r:?}"
    );
    r.message
}

fn keys(list: &[(&str, &str)]) -> Vec<String> {
    list.iter().map(|(s, h)| format!("{s}/{h}")).collect()
}

/// `Directory { files: a (twice), B (upper case), the empty blob;
/// directories: c, the empty Directory; symlinks; node_properties }`.
fn sample_directory() -> Vec<u8> {
    use enc::*;
    let props = field(
        6,
        &cat(&[
            field(1, &cat(&[field(1, b"mtime"), field(2, b"x")])),
            field(2, &uint(1, 1_700_000_000)),
            field(3, &uint(1, 0o755)),
        ]),
    );
    let file = |name: &[u8], hash: &str, exec: bool| {
        let mut f = cat(&[field(1, name), digest_field(2, hash)]);
        if exec {
            f.extend(uint(4, 1));
            f.extend(props.clone());
        }
        field(1, &f)
    };
    let dir = |name: &[u8], hash: &str| field(2, &cat(&[field(1, name), digest_field(2, hash)]));
    cat(&[
        file(b"a.txt", &h('a'), false),
        file(b"b.sh", &h('B'), true),
        file(b"copy-of-a.txt", &h('a'), false),
        file(b"empty", EMPTY_SHA256, false),
        dir(b"sub", &h('c')),
        dir(b"void", EMPTY_SHA256),
        field(
            3,
            &cat(&[field(1, b"link"), field(2, b"a.txt"), field(4, &[])]),
        ),
        field(5, &field(3, &uint(1, 0o644))),
        // An unknown field is skipped.
        uint(99, 1),
    ])
}

#[test]
fn directories_reference_their_files_and_child_trees() {
    let d = sample_directory();
    let path = format!("reapi/directory/{}", h('D'));
    assert_eq!(
        refs(inspect(&path, &[], &d)),
        keys(&[("cas", &h('a')), ("cas", &h('b')), ("tree", &h('c'))])
    );
    // The empty Directory references nothing.
    assert!(
        refs(inspect(
            &format!("reapi/directory/{EMPTY_SHA256}"),
            &[],
            &[]
        ))
        .is_empty()
    );
}

#[test]
fn malformed_directories_are_refused() {
    use enc::*;
    let path = format!("reapi/directory/{}", h('d'));
    let sample = sample_directory();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", sample[..sample.len() - 5].to_vec()),
        ("file without digest", field(1, &field(1, b"a"))),
        (
            "directory with an unset digest",
            field(2, &cat(&[field(1, b"d"), field(2, &[])])),
        ),
        ("bad hash", field(1, &digest_field(2, "abc"))),
        ("files as a varint", uint(1, 3)),
        ("digest as a varint", field(2, &uint(2, 3))),
        (
            "name not UTF-8",
            field(1, &cat(&[field(1, b"\xff"), digest_field(2, &h('a'))])),
        ),
        ("symlink target not UTF-8", field(3, &field(2, b"\xc3"))),
        ("node properties not a message", field(5, &[0xff])),
        ("ccache entry", vec![0xcc, 0xac, 0x01, 0x00, 0x01, 0x01]),
        ("group", vec![0x0b, 0x0c]),
    ];
    for (what, body) in cases {
        let m = refused(inspect(&path, &[], &body));
        assert!(
            m.starts_with("The body is not a well-formed REAPI Directory"),
            "{what}: {m}"
        );
    }
}

#[test]
fn malformed_inspection_paths_are_refused() {
    for p in [
        "reapi/".to_owned(),
        "reapi/directory".to_owned(),
        "reapi/directory/abc".to_owned(),
        format!("reapi/tree/{}", h('a')),
        format!("reapi/asset/{}/x", h('a')),
        format!("reapi/asset/{}", "g".repeat(64)),
    ] {
        let m = refused(inspect(&p, &[("x-reapi-uri", "u")], &[]));
        assert!(m.contains("is not a REAPI inspection path"), "{p}: {m}");
    }
}

#[test]
fn clients_cannot_reach_the_inspection_paths() {
    for m in ["GET", "PUT"] {
        for p in [
            format!("reapi/directory/{}", h('a')),
            format!("reapi/asset/{}", h('a')),
        ] {
            assert_eq!(status(&plan(m, &p)), 404, "{m} {p}");
        }
    }
}

#[test]
fn action_results_are_still_inspected_under_ac() {
    use enc::*;
    let ar = cat(&[digest_field(6, &h('a')), digest_field(8, EMPTY_SHA256)]);
    assert_eq!(
        refs(inspect(&format!("ac/{}", h('f')), &[], &ar)),
        keys(&[("cas", &h('a'))])
    );
}

/// A BuildStream `Artifact` whose every digest field is set: files `1`,
/// public_data `2`, logs `3` and `4`, buildtree `5`, sources `6`, low and
/// high diversity metadata `7` and `8`, buildroot `9`, a subsandbox `0`.
fn sample_artifact() -> Vec<u8> {
    use enc::*;
    cat(&[
        uint(1, 1),
        uint(2, 1),
        field(3, b""),
        field(5, h('e').as_bytes()),
        field(6, h('f').as_bytes()),
        uint(7, 0),
        digest_field(8, &h('1')),
        field(
            9,
            &cat(&[
                field(1, b"proj"),
                field(2, b"base.bst"),
                field(3, h('e').as_bytes()),
                uint(4, 0),
            ]),
        ),
        digest_field(10, &h('2')),
        field(
            11,
            &cat(&[field(1, b"build.log"), digest_field(2, &h('3'))]),
        ),
        field(
            11,
            &cat(&[field(1, b"install.log"), digest_field(2, &h('4'))]),
        ),
        field(
            11,
            &cat(&[field(1, b"empty.log"), digest_field(2, EMPTY_SHA256)]),
        ),
        digest_field(12, &h('5')),
        digest_field(13, &h('6')),
        digest_field(14, &h('7')),
        digest_field(15, &h('8')),
        field(16, h('e').as_bytes()),
        digest_field(17, &h('9')),
        field(
            18,
            &cat(&[
                field(1, &cat(&[field(1, b"PATH"), field(2, b"/usr/bin")])),
                field(2, b"/buildstream"),
                digest_field(3, &h('0')),
                field(4, b"/"),
            ]),
        ),
    ])
}

/// The headers of BuildStream's artifact `PushBlob`: both URNs, the
/// blobs, and every directory including the optional ones.
fn artifact_push_headers() -> Vec<(&'static str, String)> {
    let urn = "urn:fdc:buildstream.build:2020:artifact:proj/base/";
    let mut hs = vec![
        ("x-reapi-uri", format!("{urn}{}", h('e'))),
        ("x-reapi-uri", format!("{urn}{}", h('f'))),
    ];
    for c in ['7', '8', '3', '4', '2'] {
        hs.push(("x-reapi-blob", format!("{}/12", h(c))));
    }
    for c in ['1', '5', '6', '9'] {
        hs.push(("x-reapi-directory", format!("{}/186", h(c))));
    }
    hs
}

fn borrow<'a>(hs: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    hs.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[test]
fn artifacts_require_exactly_the_fields_a_pull_needs() {
    let asset = h('A');
    let hs = artifact_push_headers();
    let got = refs(inspect(
        &format!("reapi/asset/{asset}"),
        &borrow(&hs),
        &sample_artifact(),
    ));
    assert_eq!(
        got,
        keys(&[
            ("cas", &h('a')),
            ("cas", &h('2')),
            ("cas", &h('3')),
            ("cas", &h('4')),
            ("cas", &h('7')),
            ("cas", &h('8')),
            ("tree", &h('1')),
        ])
    );
    // Not the build tree, sources, build root or subsandboxes, even though
    // the push lists them.
    for c in ['5', '6', '9', '0'] {
        assert!(!got.iter().any(|k| k.ends_with(&h(c))), "{c}: {got:?}");
    }
}

#[test]
fn artifacts_that_cannot_be_read_need_every_pushed_reference() {
    let asset = h('a');
    let path = format!("reapi/asset/{asset}");
    let generic = keys(&[
        ("cas", &h('a')),
        ("cas", &h('7')),
        ("cas", &h('8')),
        ("cas", &h('3')),
        ("cas", &h('4')),
        ("cas", &h('2')),
        ("tree", &h('1')),
        ("tree", &h('5')),
        ("tree", &h('6')),
        ("tree", &h('9')),
    ]);
    // Too large to send.
    let mut hs = artifact_push_headers();
    hs.push(("x-reapi-body", "omitted".to_owned()));
    assert_eq!(refs(inspect(&path, &borrow(&hs), &[])), generic);
    // Not an Artifact.
    let hs = artifact_push_headers();
    let mut broken = sample_artifact();
    broken.truncate(broken.len() - 3);
    assert_eq!(refs(inspect(&path, &borrow(&hs), &broken)), generic);
    assert_eq!(
        refs(inspect(&path, &borrow(&hs), b"\xcc\xac junk")),
        generic
    );
    // An empty body is the empty blob, not an Artifact.
    assert_eq!(refs(inspect(&path, &borrow(&hs), &[])), generic);
    // An optional tree with a malformed digest makes it no Artifact either.
    let mut bad_optional = sample_artifact();
    bad_optional.extend(enc::digest_field(12, "xyz"));
    assert_eq!(refs(inspect(&path, &borrow(&hs), &bad_optional)), generic);
}

#[test]
fn element_sources_require_their_files_tree() {
    use enc::*;
    let urn = format!("urn:fdc:buildstream.build:2020:source:{}", h('9'));
    let dir = format!("{}/100", h('1'));
    let hs = [
        ("x-reapi-uri", urn.as_str()),
        ("x-reapi-directory", dir.as_str()),
    ];
    let source = cat(&[uint(1, 1), digest_field(2, &h('F'))]);
    // The files tree of the Source, not the pushed reference.
    assert_eq!(
        refs(inspect(&format!("reapi/asset/{}", h('b')), &hs, &source)),
        keys(&[("cas", &h('b')), ("tree", &h('f'))])
    );
    // Not a Source: the pushed references.
    assert_eq!(
        refs(inspect(
            &format!("reapi/asset/{}", h('b')),
            &hs,
            &uint(2, 1)
        )),
        keys(&[("cas", &h('b')), ("tree", &h('1'))])
    );
    // A per-source URN (`{kind}/{key}`) pushed as a blob is not an element's
    // sources: the pushed references.
    let kind = format!("urn:fdc:buildstream.build:2020:source:local/{}", h('9'));
    let hs = [
        ("x-reapi-uri", kind.as_str()),
        ("x-reapi-directory", dir.as_str()),
    ];
    assert_eq!(
        refs(inspect(&format!("reapi/asset/{}", h('b')), &hs, &source)),
        keys(&[("cas", &h('b')), ("tree", &h('1'))])
    );
}

#[test]
fn directory_assets_require_their_root_tree() {
    let path = format!("reapi/asset-directory/{}", h('C'));
    let bst = format!("urn:fdc:buildstream.build:2020:source:local/{}", h('9'));
    let blob = format!("{}/1", h('b'));
    let dir = format!("{}/2", h('d'));
    // BuildStream's PushDirectory: no references.
    assert_eq!(
        refs(inspect(&path, &[("x-reapi-uri", &bst)], &[])),
        keys(&[("tree", &h('c'))])
    );
    // A BuildStream URN: pushed references are not required.
    assert_eq!(
        refs(inspect(
            &path,
            &[
                ("x-reapi-uri", &bst),
                ("x-reapi-blob", &blob),
                ("x-reapi-directory", &dir)
            ],
            &[]
        )),
        keys(&[("tree", &h('c'))])
    );
    // Another client's URI: they are.
    assert_eq!(
        refs(inspect(
            &path,
            &[
                ("x-reapi-uri", "https://example.com/src.tar.gz"),
                ("x-reapi-blob", &blob),
                ("x-reapi-directory", &dir)
            ],
            &[]
        )),
        keys(&[("tree", &h('c')), ("cas", &h('b')), ("tree", &h('d'))])
    );
    // The empty Directory as the root references nothing.
    assert!(
        refs(inspect(
            &format!("reapi/asset-directory/{EMPTY_SHA256}"),
            &[("x-reapi-uri", &bst)],
            &[]
        ))
        .is_empty()
    );
}

#[test]
fn generic_uris_require_every_pushed_reference() {
    let path = format!("reapi/asset/{}", h('a'));
    let two = format!("{}/10, {}/0", h('B'), EMPTY_SHA256);
    let b1 = format!("{}/5", h('c'));
    let d1 = format!("{}/186", h('d'));
    let hs = [
        ("x-reapi-uri", "https://github.com/o/r/archive/v1.tar.gz"),
        ("X-Reapi-Blob", b1.as_str()),
        ("x-reapi-blob", two.as_str()),
        ("x-reapi-blob", b1.as_str()),
        ("x-reapi-directory", d1.as_str()),
    ];
    let want = keys(&[
        ("cas", &h('a')),
        ("cas", &h('c')),
        ("cas", &h('b')),
        ("tree", &h('d')),
    ]);
    // Whatever the body is.
    assert_eq!(refs(inspect(&path, &hs, &sample_artifact())), want);
    assert_eq!(refs(inspect(&path, &hs, b"plain text")), want);
    // With a BuildStream artifact URN as well, the union of both rules.
    let art = format!("urn:fdc:buildstream.build:2020:artifact:p/e/{}", h('e'));
    let hs = [
        ("x-reapi-uri", art.as_str()),
        ("x-reapi-uri", "https://example.com/x"),
        ("x-reapi-directory", d1.as_str()),
    ];
    let got = refs(inspect(&path, &hs, &sample_artifact()));
    assert_eq!(got.len(), 8, "{got:?}");
    for k in [
        "tree/1", "cas/2", "cas/3", "cas/4", "cas/7", "cas/8", "tree/d",
    ] {
        let (s, c) = k.split_once('/').unwrap();
        assert!(
            got.contains(&format!("{s}/{}", c.repeat(64))),
            "{k}: {got:?}"
        );
    }
}

#[test]
fn malformed_push_headers_are_refused() {
    let path = format!("reapi/asset/{}", h('a'));
    let uri = ("x-reapi-uri", "https://example.com/x");
    let size = |s: &str| format!("{}/{s}", h('b'));
    for (name, value) in [
        ("x-reapi-blob", "zz/1".to_owned()),
        ("x-reapi-blob", h('b')),
        ("x-reapi-blob", size("")),
        ("x-reapi-blob", size("-1")),
        ("x-reapi-blob", size("+1")),
        ("x-reapi-blob", size("1.5")),
        ("x-reapi-blob", size("9223372036854775808")),
        ("x-reapi-blob", format!("{}/1", "a".repeat(63))),
        ("x-reapi-blob", format!("{},", size("1"))),
        ("x-reapi-directory", format!("sha256:{}", size("1"))),
        ("x-reapi-directory", format!("{}/1/2", h('b'))),
    ] {
        let m = refused(inspect(&path, &[uri, (name, &value)], &[]));
        assert!(
            m.starts_with(&format!("Header {name} value")),
            "{value}: {m}"
        );
        let dpath = format!("reapi/asset-directory/{}", h('a'));
        refused(inspect(&dpath, &[uri, (name, &value)], &[]));
    }
    // The largest int64 size is fine.
    assert_eq!(
        refs(inspect(
            &path,
            &[uri, ("x-reapi-blob", &size("9223372036854775807"))],
            &[]
        )),
        keys(&[("cas", &h('a')), ("cas", &h('b'))])
    );
    let m = refused(inspect(&path, &[("x-reapi-blob", &size("1"))], &[]));
    assert!(m.contains("names no URI"), "{m}");
    let m = refused(inspect(
        &format!("reapi/asset-directory/{}", h('a')),
        &[],
        &[],
    ));
    assert!(m.contains("names no URI"), "{m}");
    let m = refused(inspect(&path, &[uri, ("x-reapi-body", "dropped")], &[]));
    assert!(m.contains("x-reapi-body"), "{m}");
}

/// Messages serialized by the protobuf classes of BuildStream 2.8.1's wheel
/// (`buildstream._protos`, protobuf 7.36), not by the test encoder: the
/// sample artifact (digests `1`-`9`, `0` as in [`sample_artifact`], without
/// its empty log), a
/// `Source` with files `f`, and a `Directory` with files `a`, `b`
/// (executable, mtime and mode), the empty blob, directory `c`, a symlink.
const BST_ARTIFACT: &str = "080110012a406565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656532406666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666642450a403131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313131313110ba014a520a0470726f6a1208626173652e6273741a406565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656552440a403232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323210075a510a096275696c642e6c6f6712440a403333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333310075a530a0b696e7374616c6c2e6c6f6712440a4034343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434343434100762440a403535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353535353510076a440a4036363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636100772440a403737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373737373710077a440a40383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838383838381007820140656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565656565658a01440a403939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393939393910079201660a100a045041544812082f7573722f62696e120c2f6275696c6473747265616d1a440a40303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030301007";
const BST_SOURCE: &str = "080112440a40666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666666661064";
const BST_DIRECTORY: &str = "0a4d0a05612e74787412440a406161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616110030a5d0a04622e736812440a406262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626262626210052001320d12060880e2cfaa061a0308ed030a4b0a05656d70747912420a4065336230633434323938666331633134396166626634633839393666623932343237616534316534363439623933346361343935393931623738353262383535124b0a0373756212440a406363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636310501a0d0a046c696e6b1205612e747874";

#[test]
fn messages_serialized_by_buildstream_parse() {
    let hex = |s: &str| artgate_sdk::digest::decode_hex(s).expect("hex");
    let art = proto::artifact(&hex(BST_ARTIFACT)).expect("an Artifact");
    assert_eq!(art.trees, vec![h('1')]);
    assert_eq!(art.blobs, ['2', '3', '4', '7', '8'].map(h).to_vec());
    assert_eq!(
        proto::source(&hex(BST_SOURCE)),
        Ok(proto::References {
            blobs: Vec::new(),
            trees: vec![h('f')],
        })
    );
    assert_eq!(
        proto::directory(&hex(BST_DIRECTORY)),
        Ok(proto::References {
            blobs: vec![h('a'), h('b'), EMPTY_SHA256.to_owned()],
            trees: vec![h('c')],
        })
    );
}
