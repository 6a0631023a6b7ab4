use super::*;
use artgate_sdk::testing::{Call, FakeHost};
use base64::Engine as _;

const UP: &str = "http://registry.example:4873";
const GW: &str = "http://gw.example:8080";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("npm")
        .with_package("npm")
        .with_upstreams([UP, "https://files.example"])
}

fn host() -> FakeHost {
    let h = FakeHost::new();
    h.with_gateway_url(GW);
    h
}

fn sha512_b64(seed: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([seed; 64])
}

/// A packument of `@acme/left-pad` with a version at the conventional
/// place, one on a file host, one with a `file:` URL and one without
/// `dist`.
fn packument() -> String {
    format!(
        r#"{{"name":"@acme/left-pad","dist-tags":{{"latest":"1.1.0"}},
 "versions":{{
  "1.0.0":{{"name":"@acme/left-pad","version":"1.0.0","dist":{{"integrity":"sha512-{a}","shasum":"{s}","tarball":"{UP}/@acme/left-pad/-/left-pad-1.0.0.tgz"}}}},
  "1.1.0":{{"dist":{{"tarball" : "https://FILES.example/blobs/x%20y.tgz","shasum":"{s}"}},"x":[1,{{"tarball":"keep"}}]}},
  "1.2.0":{{"dist":{{"tarball":"file:///etc/passwd","integrity":"sha512-{b}"}}}},
  "1.3.0":{{"name":"no dist"}}
 }},
 "readme":"see {UP}/elsewhere"}}"#,
        a = sha512_b64(1),
        b = sha512_b64(2),
        s = "ab".repeat(20),
    )
}

fn inspect(h: &FakeHost, body: &str) -> BodyVerdict {
    inspect_with(
        h,
        &remote(),
        &Request::test("GET", "@acme/left-pad"),
        &UpstreamResponse::test(200, &[("content-type", "application/json")]),
        body.as_bytes().to_vec(),
    )
}

/// Paths split into what they ask for; anything else is no npm path.
#[test]
fn paths_parse_as_npm_names() {
    assert_eq!(parse("left-pad"), Some(Ask::Packument(Name("left-pad"))));
    assert_eq!(
        parse("@acme/left-pad"),
        Some(Ask::Packument(Name("@acme/left-pad")))
    );
    assert_eq!(
        parse("@acme/left-pad/-/left-pad-1.0.0.tgz"),
        Some(Ask::Tarball(Name("@acme/left-pad"), "left-pad-1.0.0.tgz"))
    );
    assert_eq!(
        parse("JSONStream/-/u/https/files.example/a b/c.tgz"),
        Some(Ask::Elsewhere(
            Name("JSONStream"),
            "https://files.example/a%20b/c.tgz".into()
        ))
    );
    assert_eq!(parse("-/v1/search"), Some(Ask::Endpoint("v1/search")));
    for bad in [
        "",
        ".hidden",
        "_private",
        "@acme",
        "@/x",
        "a b",
        "left-pad/1.0.0",
        "left-pad/-/",
        "left-pad/-/a/b",
        "x/-/u/ftp/h/p",
        "x/-/u/http/user@h/p",
        "x/-/u/http/h",
    ] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

/// A packument is forwarded with the scope's slash encoded as npm sends
/// it, per form and per gateway URL, varying on Accept and Host.
#[test]
fn packuments_are_keyed_by_form_and_gateway() {
    let h = host();
    let corgi = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
    let f = plan_with(
        &h,
        &remote(),
        &Request::test("GET", "@acme/left-pad").with_header("accept", corgi),
    )
    .expect_forward();
    assert_eq!(f.upstream.target, "/@acme%2fleft-pad");
    assert!(
        http::header(&f.upstream.headers, "accept")
            .unwrap()
            .starts_with(CORGI)
    );
    assert_eq!(f.plan.key, format!("@acme/left-pad/.packument/corgi/{GW}"));
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(f.plan.inspect_limit, Some(INSPECT_LIMIT));
    assert_eq!(f.plan.vary, ["accept", "host"]);

    let full = plan_with(&h, &remote(), &Request::test("GET", "left-pad")).expect_forward();
    assert_eq!(full.upstream.target, "/left-pad");
    assert_eq!(full.plan.key, format!("left-pad/.packument/full/{GW}"));
    let refused = Request::test("GET", "left-pad").with_header("accept", &format!("{CORGI};q=0"));
    let f = plan_with(&h, &remote(), &refused).expect_forward();
    assert!(f.plan.key.contains("/full/"), "q=0 refuses the form");

    h.with_gateway_url("");
    plan_with(&h, &remote(), &Request::test("GET", "left-pad"))
        .expect_reject_with(400, "set server.public_url");
}

/// Every tarball link points at the gateway (a file host's as `u/`, a
/// link it cannot serve emptied); everything else is kept byte for byte,
/// and the checksums are remembered by tarball path.
#[test]
fn packuments_are_rewritten_in_place() {
    let h = host();
    let body = packument();
    let v = inspect(&h, &body);
    assert!(v.fail.is_none(), "{:?}", v.fail);
    let out = String::from_utf8(v.replace.expect("rewritten")).unwrap();
    let base = format!("{GW}/api/v1/remote/npm/");
    let expected = body
        .replace(
            &format!("{UP}/@acme/left-pad/-/left-pad-1.0.0.tgz"),
            &format!("{base}@acme/left-pad/-/left-pad-1.0.0.tgz"),
        )
        .replace(
            "https://FILES.example/blobs/x%20y.tgz",
            &format!("{base}@acme/left-pad/-/u/https/files.example/blobs/x%20y.tgz"),
        )
        .replace("file:///etc/passwd", "");
    assert_eq!(out, expected);
    // Still the JSON npm reads.
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["versions"]["1.1.0"]["x"][1]["tarball"], "keep");
    let sum = |rel: &str| kvmap::lookup(&h, "sums/@acme/left-pad", rel);
    assert_eq!(
        sum("left-pad-1.0.0.tgz"),
        Some(format!("sha512-{}", sha512_b64(1)))
    );
    let sha1 = Checksum::from_text(&sum("u/https/files.example/blobs/x y.tgz").unwrap()).unwrap();
    assert_eq!((sha1.algorithm, sha1.digest), ("sha1", vec![0xab; 20]));
    assert_eq!(sum("file:///etc/passwd"), None);
    assert_eq!(
        h.kv_keys(),
        ["sums/@acme/left-pad", "sums/@acme/left-pad/0"]
    );
    let update = v.update.unwrap();
    assert_eq!(update.content_type.as_deref(), Some("application/json"));
}

/// A packument the gateway could rewrite wrongly is refused: not JSON, a
/// duplicate key a client might read instead, a version that is no
/// object.
#[test]
fn malformed_packuments_are_502() {
    let h = host();
    let dup_tarball = format!(
        r#"{{"versions":{{"1.0.0":{{"dist":{{"tarball":"{UP}/a/-/a-1.tgz","tarball":"https://evil.example/a.tgz"}}}}}}}}"#
    );
    let dup_dist = format!(
        r#"{{"versions":{{"1.0.0":{{"dist":{{"tarball":"{UP}/a/-/a-1.tgz"}},"dist":{{"tarball":"https://evil.example/a.tgz"}}}}}}}}"#
    );
    let dup_versions =
        r#"{"versions":{},"versions":{"1":{"dist":{"tarball":"https://evil.example/a.tgz"}}}}"#;
    // An escaped key is the same key to a client's parser.
    let escaped = format!(
        r#"{{"versions":{{"1.0.0":{{"dist":{{"tarball":"{UP}/a/-/a-1.tgz","tarb\u0061ll":"https://evil.example/a.tgz"}}}}}}}}"#
    );
    let array = r#"{"versions":{"1.0.0":[{"tarball":"x"}]}}"#;
    for body in [
        "<html>",
        "{\"versions\":[]}",
        "{\"versions\":{\"1\":null}}",
        &dup_tarball,
        &dup_dist,
        dup_versions,
        &escaped,
        array,
    ] {
        let v = inspect(&h, body);
        let fail = v.fail.unwrap_or_else(|| panic!("accepted {body}"));
        assert_eq!(fail.status, 502);
        assert!(fail.message.contains("malformed"), "{}", fail.message);
    }
    assert!(h.kv_keys().is_empty());
    // Not a 200: kept as it is (a 404 is cached as such).
    let v = inspect_with(
        &h,
        &remote(),
        &Request::test("GET", "nope"),
        &UpstreamResponse::test(404, &[]),
        b"{}".to_vec(),
    );
    assert!(v.replace.is_none() && v.fail.is_none());
}

/// A tarball whose checksum is remembered is stored only when it matches.
#[test]
fn tarballs_are_verified_against_remembered_checksums() {
    let h = host();
    inspect(&h, &packument());
    let f = plan_with(
        &h,
        &remote(),
        &Request::test("GET", "@acme/left-pad/-/left-pad-1.0.0.tgz"),
    )
    .expect_forward();
    assert_eq!(f.upstream.target, "/@acme/left-pad/-/left-pad-1.0.0.tgz");
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert_eq!(f.plan.key, "@acme/left-pad/-/left-pad-1.0.0.tgz");
    assert_eq!(
        f.plan.expected_digest.as_deref(),
        Some(format!("sha512:{}", "01".repeat(64)).as_str())
    );
    let f = plan_with(
        &h,
        &remote(),
        &Request::test(
            "GET",
            "@acme/left-pad/-/u/https/files.example/blobs/x y.tgz",
        ),
    )
    .expect_forward();
    assert_eq!(f.upstream.target, "https://files.example/blobs/x%20y.tgz");
    assert!(f.plan.expected_digest.unwrap().starts_with("sha1:"));
    assert!(h.cache_sent().is_empty(), "no packument read");
}

/// A tarball asked for before its packument (a lockfile on a fresh
/// gateway): the abbreviated packument is read through the cache, every
/// checksum remembered; a version missing there expires it and reads it
/// once more; a tarball no packument lists is a 404.
#[test]
fn tarballs_before_their_packument_look_it_up() {
    let h = host();
    h.answer_cache_for(
        "/@acme%2fleft-pad",
        Ok(IncomingResponse::test(
            200,
            &[("x-artifact-source", "cache")],
            packument(),
        )),
    );
    let f = plan_with(
        &h,
        &remote(),
        &Request::test("GET", "@acme/left-pad/-/left-pad-1.0.0.tgz"),
    )
    .expect_forward();
    assert!(f.plan.expected_digest.unwrap().starts_with("sha512:"));
    let (req, plan, limit) = h.cache_sent().remove(0);
    assert_eq!(plan.key, "@acme/left-pad/.packument/lookup");
    assert!(plan.inspect_limit.is_none());
    assert_eq!(limit, INSPECT_LIMIT);
    assert!(
        http::header(&req.headers, "accept")
            .unwrap()
            .starts_with(CORGI)
    );
    assert!(
        kvmap::lookup(
            &h,
            "sums/@acme/left-pad",
            "u/https/files.example/blobs/x y.tgz"
        )
        .is_some(),
        "every checksum remembered"
    );

    plan_with(
        &h,
        &remote(),
        &Request::test("GET", "@acme/left-pad/-/left-pad-9.9.9.tgz"),
    )
    .expect_reject_with(404, "lists no tarball");
    assert_eq!(h.expired(), ["@acme/left-pad/.packument/lookup"]);
    // Asked again at once: no second refetch of the packument.
    plan_with(
        &h,
        &remote(),
        &Request::test("GET", "@acme/left-pad/-/left-pad-9.9.9.tgz"),
    )
    .expect_reject_with(404, "lists no tarball");
    assert_eq!(h.expired().len(), 1, "expired at most once a minute");

    h.answer_cache_for("/gone", Ok(IncomingResponse::test(404, &[], "")));
    plan_with(
        &h,
        &remote(),
        &Request::test("GET", "gone/-/gone-1.0.0.tgz"),
    )
    .expect_reject_with(404, "not in the registry");
}

/// A tarball on a host that is none of the upstreams is refused.
#[test]
fn tarballs_elsewhere_must_be_on_an_upstream() {
    plan_with(
        &host(),
        &remote(),
        &Request::test("GET", "a/-/u/https/evil.example/a.tgz"),
    )
    .expect_reject_with(502, "not one of remote 'npm''s upstreams");
}

/// The registry's endpoints: search and ping pass, audits pass with
/// their body, logins and changes are 501; publishing is 405.
#[test]
fn endpoints_methods_and_modes() {
    let h = host();
    let f = plan_with(
        &h,
        &remote(),
        &Request::test("GET", "-/v1/search").with_query(Some("text=pad")),
    )
    .expect_forward();
    assert_eq!(f.upstream.target, "/-/v1/search?text=pad");
    assert_eq!(f.plan.class, CacheClass::NoStore);
    let f = plan_with(
        &h,
        &remote(),
        &Request::test("POST", "-/npm/v1/security/advisories/bulk")
            .with_header("content-encoding", "gzip"),
    )
    .expect_forward();
    assert!(f.upstream.forward_body);
    assert_eq!(
        http::header(&f.upstream.headers, "content-encoding"),
        Some("gzip")
    );
    plan_with(
        &h,
        &remote(),
        &Request::test("PUT", "-/user/org.couchdb.user:alice"),
    )
    .expect_reject_with(501, "pull-through mirror");
    plan_with(&h, &remote(), &Request::test("PUT", "@acme/left-pad"))
        .expect_reject_with(405, "hosted npm remote");
    plan_with(&h, &remote(), &Request::test("GET", "a/b/c"))
        .expect_reject_with(404, "not an npm registry path");
}

/// `dist.integrity` is read as Subresource Integrity, sha512 first; the
/// sha1 `shasum` stands in.
#[test]
fn checksums_from_integrity_or_shasum() {
    let s512 = format!("sha512-{}", sha512_b64(7));
    let sha1 = "cd".repeat(20);
    let c = Checksum::from_dist(Some(&format!("sha1-AAAA {s512}")), Some(&sha1)).unwrap();
    assert_eq!(
        (c.algorithm, c.digest.as_slice()),
        ("sha512", &[7u8; 64][..])
    );
    let c = Checksum::from_dist(Some("sha512-!!!"), Some(&sha1)).unwrap();
    assert_eq!(c.algorithm, "sha1");
    assert_eq!(Checksum::from_text(&c.to_text()), Some(c));
    assert!(Checksum::from_dist(None, Some("xyz")).is_none());
    assert!(Checksum::from_text("md5:00").is_none());
}

/// A package with thousands of versions is remembered in a few key-value
/// operations (the host allows 1024 per call), and a tarball URL of any
/// length is fine.
#[test]
fn large_packuments_stay_within_the_call_budget() {
    let h = host();
    let long = "d/".repeat(400);
    let versions: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#""1.0.{i}":{{"dist":{{"integrity":"sha512-{}","tarball":"{UP}/big/-/big-1.0.{i}.tgz"}}}}"#,
                sha512_b64(3)
            )
        })
        .chain([format!(
            r#""2.0.0":{{"dist":{{"shasum":"{}","tarball":"https://files.example/{long}big.tgz"}}}}"#,
            "cd".repeat(20)
        )])
        .collect();
    let body = format!(r#"{{"name":"big","versions":{{{}}}}}"#, versions.join(","));
    let v = inspect_with(
        &h,
        &remote(),
        &Request::test("GET", "big"),
        &UpstreamResponse::test(200, &[]),
        body.into_bytes(),
    );
    assert!(v.fail.is_none(), "{:?}", v.fail);
    let ops = h
        .calls()
        .iter()
        .filter(|c| !matches!(c, Call::Log(..)))
        .count();
    assert!(ops < 40, "{ops} key-value operations");
    for path in [
        "big/-/big-1.0.0.tgz".to_owned(),
        "big/-/big-1.0.2999.tgz".to_owned(),
        format!("big/-/u/https/files.example/{long}big.tgz"),
    ] {
        let f = plan_with(&h, &remote(), &Request::test("GET", &path)).expect_forward();
        assert!(f.plan.expected_digest.is_some(), "{path}");
    }
    assert!(
        h.cache_sent().is_empty(),
        "found in the map, no packument read"
    );
}
