//! Host-target tests of the git adapter's decisions.

use super::*;
use artgate_sdk::testing::FakeHost;

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";

fn remote(options: &[(&str, &str)]) -> RemoteInfo {
    let mut r = RemoteInfo::test()
        .with_name("gh")
        .with_package("git")
        .with_upstreams(["https://example.org"])
        .with_credentials(true);
    for (k, v) in options {
        r = r.with_option(k, v);
    }
    r
}

fn request(method: &str, path: &str, query: Option<&str>, headers: &[(&str, &str)]) -> Request {
    Request::test(method, path)
        .with_id("req-1")
        .with_query(query)
        .with_headers(headers)
}

fn pkt(s: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", s.len() + 5).into_bytes();
    v.extend_from_slice(s.as_bytes());
    v.push(b'\n');
    v
}

fn post(body: Option<Vec<u8>>, too_large: bool) -> Request {
    request(
        "POST",
        "acme/data.git/git-upload-pack",
        None,
        &[
            ("content-type", "application/x-git-upload-pack-request"),
            ("content-encoding", "gzip"),
            ("git-protocol", "version=2"),
            ("accept", "application/x-git-upload-pack-result"),
            ("user-agent", "git/2.47.3"),
        ],
    )
    .with_body(body)
    .with_body_too_large(too_large)
}

fn forward(d: Decision) -> Forward {
    d.expect_forward()
}

/// Status and text of a direct (refusal) response.
fn refusal(d: Decision) -> (u16, String) {
    let r = d.expect_respond();
    assert_eq!(
        http::header(&r.headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    (r.status, String::from_utf8(r.body).unwrap())
}

#[test]
fn describes_itself() {
    let info = Git::describe();
    assert_eq!(info.name, "git");
    assert_eq!(info.package_types, ["git"]);
}

#[test]
fn paths() {
    assert_eq!(
        parse_path("a/b.git/info/refs"),
        GitPath::InfoRefs("a/b.git")
    );
    assert_eq!(parse_path("b/info/refs"), GitPath::InfoRefs("b"));
    assert_eq!(
        parse_path("a/b.git/git-upload-pack"),
        GitPath::UploadPack("a/b.git")
    );
    assert_eq!(
        parse_path("a/b.git/git-receive-pack"),
        GitPath::ReceivePack("a/b.git")
    );
    for other in [
        "info/refs",
        "/info/refs",
        "a//info/refs",
        "a/b.git/HEAD",
        "a/b.git/objects/info/packs",
        "a/b.git/objects/12/3456",
        "a/b.git",
        "",
    ] {
        assert_eq!(parse_path(other), GitPath::Other, "{other}");
    }
}

#[test]
fn info_refs_is_mutable_and_varies_on_the_protocol() {
    let req = request(
        "GET",
        "acme/data.git/info/refs",
        Some("service=git-upload-pack"),
        &[("git-protocol", "version=2"), ("accept", "*/*")],
    );
    let f = forward(plan(&remote(&[]), &req));
    assert_eq!(f.upstream.method, "GET");
    assert_eq!(
        f.upstream.target,
        "/acme/data.git/info/refs?service=git-upload-pack"
    );
    assert!(f.upstream.use_credentials && !f.upstream.forward_body);
    assert_eq!(
        f.upstream.headers,
        [Header::new("git-protocol", "version=2")]
    );
    assert_eq!(f.plan.key, "refs/acme/data.git/version=2");
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(f.plan.ttl_secs, Some(60));
    assert_eq!(f.plan.vary, ["git-protocol"]);
    assert_eq!(f.plan.content_type.as_deref(), Some(ADVERTISEMENT));

    // v0 clients send no git-protocol header.
    let req = request(
        "HEAD",
        "acme/data.git/info/refs",
        Some("service=git-upload-pack"),
        &[],
    );
    let f = forward(plan(&remote(&[("refs_ttl", "5s")]), &req));
    assert_eq!(f.plan.key, "refs/acme/data.git/v0");
    assert_eq!(f.plan.ttl_secs, Some(5));
    assert!(f.upstream.headers.is_empty());

    // Odd protocol values are hashed into the key.
    let req = request(
        "GET",
        "r/info/refs",
        Some("service=git-upload-pack"),
        &[("git-protocol", "version=2/../x")],
    );
    let key = forward(plan(&remote(&[]), &req)).plan.key;
    assert!(key.starts_with("refs/r/sha256-") && key.len() == "refs/r/sha256-".len() + 64);
}

#[test]
fn info_refs_refusals() {
    let r = remote(&[]);
    let (status, text) = refusal(plan(
        &r,
        &request(
            "GET",
            "a.git/info/refs",
            Some("service=git-receive-pack"),
            &[],
        ),
    ));
    assert_eq!(status, 403);
    assert!(text.contains("Pushing through the gateway is not supported"));
    assert!(text.ends_with(".\n"));
    let (status, text) = refusal(plan(&r, &request("GET", "a.git/info/refs", None, &[])));
    assert_eq!(status, 404);
    assert!(text.contains("dumb HTTP"));
    let (status, _) = refusal(plan(
        &r,
        &request("GET", "a.git/info/refs", Some("service=git-archive"), &[]),
    ));
    assert_eq!(status, 400);
    let (status, _) = refusal(plan(
        &r,
        &request(
            "POST",
            "a.git/info/refs",
            Some("service=git-upload-pack"),
            &[],
        ),
    ));
    assert_eq!(status, 405);
}

#[test]
fn other_paths_are_refused() {
    let r = remote(&[]);
    let (status, text) = refusal(plan(
        &r,
        &request("POST", "a.git/git-receive-pack", None, &[]),
    ));
    assert_eq!(status, 403);
    assert!(text.contains("push"));
    for path in ["a.git/HEAD", "a.git/objects/info/packs", "README"] {
        let (status, text) = refusal(plan(&r, &request("GET", path, None, &[])));
        assert_eq!(status, 404, "{path}");
        assert!(text.contains("smart-HTTP"), "{text}");
    }
    let (status, _) = refusal(plan(
        &r,
        &request("GET", "a.git/git-upload-pack", None, &[]),
    ));
    assert_eq!(status, 405);
    let mut hosted = remote(&[]);
    hosted.mode = RemoteMode::Hosted;
    let (status, _) = refusal(plan(
        &hosted,
        &request(
            "GET",
            "a.git/info/refs",
            Some("service=git-upload-pack"),
            &[],
        ),
    ));
    assert_eq!(status, 400);
    let long = format!("{}/info/refs", "x".repeat(2000));
    let (status, _) = refusal(plan(
        &r,
        &request("GET", &long, Some("service=git-upload-pack"), &[]),
    ));
    assert_eq!(status, 414);
    let (status, text) = refusal(plan(
        &remote(&[("refs_ttl", "soon")]),
        &request(
            "GET",
            "a.git/info/refs",
            Some("service=git-upload-pack"),
            &[],
        ),
    ));
    assert_eq!(status, 500);
    assert!(text.contains("refs_ttl"));
}

#[test]
fn upload_pack_reads_the_body_first() {
    assert_eq!(
        plan(&remote(&[]), &post(None, false)),
        Decision::ReadBody(BODY_LIMIT)
    );
}

fn fetch_body(extra: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    for l in ["command=fetch", "agent=git/2.47.3", "object-format=sha1"] {
        b.extend(pkt(l));
    }
    b.extend_from_slice(b"0001");
    for l in ["thin-pack", "ofs-delta", &format!("want {A}"), "done"] {
        b.extend(pkt(l));
    }
    for l in extra {
        b.extend(pkt(l));
    }
    b.extend_from_slice(b"0000");
    b
}

#[test]
fn want_only_fetches_are_immutable_packs() {
    let f = forward(plan(&remote(&[]), &post(Some(fetch_body(&[])), false)));
    assert_eq!(f.upstream.method, "POST");
    assert_eq!(f.upstream.target, "/acme/data.git/git-upload-pack");
    assert!(f.upstream.forward_body && f.upstream.use_credentials);
    let names: Vec<&str> = f.upstream.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["content-type", "content-encoding", "git-protocol", "accept"]
    );
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert!(f.plan.key.starts_with("pack/acme/data.git/"));
    assert_eq!(f.plan.key.len(), "pack/acme/data.git/".len() + 64);
    assert_eq!(f.plan.content_type.as_deref(), Some(RESULT));
    // The same request gets the same key; a different one another key.
    let again = forward(plan(&remote(&[]), &post(Some(fetch_body(&[])), false)));
    assert_eq!(f.plan.key, again.plan.key);
    let deeper = forward(plan(
        &remote(&[]),
        &post(Some(fetch_body(&["deepen 1"])), false),
    ));
    assert_ne!(f.plan.key, deeper.plan.key);
    let more = forward(plan(
        &remote(&[]),
        &post(Some(fetch_body(&[&format!("want {B}")])), false),
    ));
    assert_ne!(f.plan.key, more.plan.key);
    // The protocol header is part of the key.
    let mut v1 = post(Some(fetch_body(&[])), false);
    v1.headers.retain(|h| h.name != "git-protocol");
    assert_ne!(f.plan.key, forward(plan(&remote(&[]), &v1)).plan.key);
}

/// A host whose cache answers with one listing (or fails), recording calls.
fn fake_cache(listing: Result<(Vec<u8>, &'static str), String>) -> FakeHost {
    let host = FakeHost::new();
    host.answer_cache(
        listing.map(|(body, source)| {
            IncomingResponse::test(200, &[("x-artifact-source", source)], body)
        }),
    );
    host
}

fn ls_refs_body(args: &[&str]) -> Vec<u8> {
    let mut b = pkt("command=ls-refs");
    b.extend(pkt("agent=git/2.47.3"));
    b.extend(pkt("object-format=sha1"));
    b.extend_from_slice(b"0001");
    for a in args {
        b.extend(pkt(a));
    }
    b.extend_from_slice(b"0000");
    b
}

fn listing() -> Vec<u8> {
    let mut l = pkt(&format!("{A} HEAD symref-target:refs/heads/main"));
    l.extend(pkt(&format!("{A} refs/heads/main")));
    l.extend(pkt(&format!("{B} refs/tags/v1 peeled:{A}")));
    l.extend_from_slice(b"0000");
    l
}

fn direct(d: Decision) -> DirectResponse {
    d.expect_respond()
}

#[test]
fn every_ls_refs_shape_is_answered_from_one_listing() {
    let cache = fake_cache(Ok((listing(), "cache")));
    let r = remote(&[("refs_ttl", "2")]);
    let fetch = ls_refs_body(&["peel", "symrefs", "ref-prefix refs/heads/"]);
    let clone = ls_refs_body(&[
        "peel",
        "symrefs",
        "ref-prefix HEAD",
        "ref-prefix refs/tags/",
    ]);
    let a = direct(plan_with(&cache, &r, &post(Some(fetch), false)));
    let b = direct(plan_with(&cache, &r, &post(Some(clone), false)));
    assert_eq!(a.status, 200);
    let mut want = pkt(&format!("{A} refs/heads/main"));
    want.extend_from_slice(b"0000");
    assert_eq!(a.body, want);
    let mut want = pkt(&format!("{A} HEAD symref-target:refs/heads/main"));
    want.extend(pkt(&format!("{B} refs/tags/v1 peeled:{A}")));
    want.extend_from_slice(b"0000");
    assert_eq!(b.body, want);
    for resp in [&a, &b] {
        let h = |n: &str| {
            resp.headers
                .iter()
                .find(|h| h.name == n)
                .map(|h| h.value.as_str())
        };
        assert_eq!(h("content-type"), Some(RESULT));
        assert_eq!(h("x-artifact-source"), Some("cache"));
    }
    let sent = cache.cache_sent();
    assert_eq!(sent.len(), 2);
    // One key, one request: the full listing.
    assert_eq!(sent[0], sent[1]);
    let (req, plan, limit) = &sent[0];
    assert_eq!(plan.key, "lsrefs/acme/data.git/sha1");
    assert_eq!(plan.class, CacheClass::Mutable);
    assert_eq!(plan.ttl_secs, Some(2));
    assert_eq!(*limit, LISTING_LIMIT);
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "/acme/data.git/git-upload-pack");
    assert!(req.use_credentials);
    assert!(
        req.headers
            .iter()
            .any(|h| h.name == "git-protocol" && h.value == "version=2")
    );
    assert_eq!(
        req.body,
        refs::full_request(&refs::parse(&["object-format=sha1".into()], &[]).unwrap())
    );
    // Served from the store: the v0 advertisements are left alone.
    assert!(cache.expired().is_empty());
}

#[test]
fn a_listing_fetched_from_the_upstream_expires_the_v0_advertisements() {
    let cache = fake_cache(Ok((listing(), "remote")));
    direct(plan_with(
        &cache,
        &remote(&[]),
        &post(Some(ls_refs_body(&["peel"])), false),
    ));
    assert_eq!(
        cache.expired(),
        ["refs/acme/data.git/v0", "refs/acme/data.git/version=1"]
    );
}

#[test]
fn a_v0_advertisement_from_the_upstream_expires_the_listings() {
    let v0 = request(
        "GET",
        "acme/data.git/info/refs",
        Some("service=git-upload-pack"),
        &[],
    );
    assert_eq!(
        listings_behind(&v0),
        ["lsrefs/acme/data.git/sha1", "lsrefs/acme/data.git/sha256"]
    );
    let v2 = request(
        "GET",
        "acme/data.git/info/refs",
        Some("service=git-upload-pack"),
        &[("git-protocol", "version=2")],
    );
    assert!(listings_behind(&v2).is_empty());
    assert!(listings_behind(&post(None, false)).is_empty());
}

#[test]
fn ls_refs_streams_when_the_listing_is_unavailable_or_unshareable() {
    let failing = fake_cache(Err("the upstream fetch failed".into()));
    let body = ls_refs_body(&["peel"]);
    let f = forward(plan_with(
        &failing,
        &remote(&[]),
        &post(Some(body.clone()), false),
    ));
    assert_eq!(f.plan.class, CacheClass::NoStore);
    assert!(f.upstream.forward_body);
    // Without protocol v2, or with a server option: not shared, not asked.
    let cache = fake_cache(Ok((listing(), "cache")));
    let mut v0 = post(Some(body), false);
    v0.headers.retain(|h| h.name != "git-protocol");
    let f = forward(plan_with(&cache, &remote(&[]), &v0));
    assert_eq!(f.plan.class, CacheClass::NoStore);
    let mut opt = pkt("command=ls-refs");
    opt.extend(pkt("server-option=x"));
    opt.extend_from_slice(b"0000");
    let f = forward(plan_with(&cache, &remote(&[]), &post(Some(opt), false)));
    assert_eq!(f.plan.class, CacheClass::NoStore);
    assert!(cache.cache_sent().is_empty());
}

#[test]
fn an_error_answer_is_passed_on_unfiltered() {
    let mut err = pkt("ERR upload-pack: something broke");
    err.extend_from_slice(b"0000");
    let cache = fake_cache(Ok((err.clone(), "remote")));
    let d = direct(plan_with(
        &cache,
        &remote(&[]),
        &post(Some(ls_refs_body(&["ref-prefix refs/heads/"])), false),
    ));
    assert_eq!(d.body, err);
}

#[test]
fn everything_else_streams() {
    let with_have = fetch_body(&[&format!("have {B}")]);
    for (body, too_large) in [
        (Some(with_have), false),
        (Some(b"garbage".to_vec()), false),
        (Some(Vec::new()), false),
        (None, true),
    ] {
        let f = forward(plan(&remote(&[]), &post(body.clone(), too_large)));
        assert_eq!(f.plan.class, CacheClass::NoStore, "{body:?}");
        assert!(f.upstream.forward_body);
        assert_eq!(f.plan.content_type.as_deref(), Some(RESULT));
    }
}

#[test]
fn refs_ttl_option() {
    assert_eq!(refs_ttl(&remote(&[])), Ok(60));
    let mut short = remote(&[]);
    short.mutable_ttl_secs = 10;
    assert_eq!(refs_ttl(&short), Ok(10));
    assert_eq!(refs_ttl(&remote(&[("refs_ttl", "90")])), Ok(90));
    assert_eq!(refs_ttl(&remote(&[("refs_ttl", "1h30m")])), Ok(5400));
    assert!(refs_ttl(&remote(&[("refs_ttl", "")])).is_err());
}

#[test]
fn durations() {
    // `refs_ttl` is an SDK duration: the gateway config's grammar, which
    // also takes a space before the unit and fractions.
    let parse_duration_secs = |s: &str| artgate_sdk::duration::parse_secs(s).ok();
    for (s, secs) in [
        ("0", 0),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("500ms", 1),
        ("1m30s", 90),
        (" 7 ", 7),
        ("5 m", 300),
        ("1.5s", 2),
    ] {
        assert_eq!(parse_duration_secs(s), Some(secs), "{s}");
    }
    for s in ["", "s", "5x", "-1", "99999999999999999999"] {
        assert_eq!(parse_duration_secs(s), None, "{s}");
    }
}
