//! Host-target tests of the docker adapter's decisions, with a fake host.

use super::*;
use accept::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use artgate_sdk::testing::FakeHost;

const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const HEX2: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn remote(upstream: &str) -> RemoteInfo {
    RemoteInfo::test()
        .with_name("hub")
        .with_package("docker")
        .with_upstreams([upstream])
        .with_check_mutable_updates(true)
}

fn local() -> RemoteInfo {
    remote("http://127.0.0.1:5000")
}

fn request(method: &str, path: &str, accept: &[&str]) -> Request {
    let mut r = Request::test(method, path)
        .with_id("r1")
        .with_kind(RouteKind::Registry);
    for a in accept {
        r = r.with_header("accept", a);
    }
    r
}

fn forward(d: Decision) -> Forward {
    d.expect_forward()
}

fn rejection(d: Decision) -> Rejection {
    d.expect_reject()
}

fn failure(a: AfterHeaders) -> Rejection {
    a.expect_fail()
}

fn update(a: AfterHeaders) -> PlanUpdate {
    a.expect_update()
}

fn response(status: u16, headers: &[(&str, &str)]) -> UpstreamResponse {
    UpstreamResponse::test(status, headers)
}

fn header<'a>(h: &'a [Header], name: &str) -> Option<&'a str> {
    http::header(h, name)
}

#[test]
fn describe() {
    let info = Docker::describe();
    assert_eq!(info.name, "docker");
    assert_eq!(info.package_types, ["docker"]);
}

#[test]
fn manifest_by_tag() {
    let h = FakeHost::default();
    let f = forward(plan_with(
        &h,
        &local(),
        &request(
            "GET",
            "team/app/manifests/v1",
            &[OCI_MANIFEST, &format!("{DOCKER_MANIFEST}, {OCI_MANIFEST}")],
        ),
    ));
    assert_eq!(
        f.plan.key,
        format!("manifests/team/app/tags/v1?accept={DOCKER_MANIFEST},{OCI_MANIFEST}")
    );
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(f.plan.ttl_secs, None);
    assert_eq!(
        f.plan.validator,
        Some(Validator::HeadCompare("docker-content-digest".into()))
    );
    assert_eq!(f.plan.vary, ["accept"]);
    assert_eq!(f.plan.inspect_limit, Some(MAX_MANIFEST_BYTES));
    assert_eq!(f.plan.expected_digest, None);
    assert_eq!(f.upstream.method, "GET");
    assert_eq!(f.upstream.target, "/v2/team/app/manifests/v1");
    assert!(f.upstream.use_credentials);
    assert_eq!(
        header(&f.upstream.headers, "accept"),
        Some(format!("{DOCKER_MANIFEST}, {OCI_MANIFEST}").as_str())
    );
    // HEAD plans the same (the core answers HEAD from the fill).
    let g = forward(plan_with(
        &h,
        &local(),
        &request(
            "HEAD",
            "team/app/manifests/v1",
            &[OCI_MANIFEST, DOCKER_MANIFEST],
        ),
    ));
    assert_eq!(g.plan.key, f.plan.key);
    assert_eq!(g.upstream.method, "GET");
}

#[test]
fn accept_sets_never_share_a_key() {
    let h = FakeHost::default();
    let key = |accept: &[&str]| {
        forward(plan_with(
            &h,
            &local(),
            &request("GET", "a/manifests/1", accept),
        ))
        .plan
        .key
    };
    let index = key(&[OCI_INDEX]);
    let single = key(&[OCI_MANIFEST]);
    let none = key(&[]);
    assert_ne!(index, single);
    assert_ne!(none, index);
    assert!(none.ends_with("?accept=any"), "{none}");
    assert_eq!(
        key(&[OCI_MANIFEST, OCI_INDEX]),
        key(&[OCI_INDEX, OCI_MANIFEST])
    );
    // No Accept: every current type is asked for.
    let f = forward(plan_with(
        &h,
        &local(),
        &request("GET", "a/manifests/1", &[]),
    ));
    let sent = header(&f.upstream.headers, "accept").unwrap();
    for t in [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST] {
        assert!(sent.contains(t), "{sent}");
    }
}

#[test]
fn manifest_by_digest() {
    let h = FakeHost::default();
    let d = format!("sha256:{HEX}");
    let f = forward(plan_with(
        &h,
        &local(),
        &request("GET", &format!("a/b/manifests/{d}"), &[OCI_MANIFEST]),
    ));
    assert_eq!(f.plan.key, format!("manifests/a/b/{d}"));
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert_eq!(f.plan.expected_digest.as_deref(), Some(d.as_str()));
    assert_eq!(
        header(&f.plan.response_headers, "docker-content-digest"),
        Some(d.as_str())
    );
    assert_eq!(f.upstream.target, format!("/v2/a/b/manifests/{d}"));
    assert_eq!(header(&f.upstream.headers, "accept"), Some(OCI_MANIFEST));

    // Once its media type is known, a client that does not accept it is
    // refused even though the entry may be cached.
    h.kv_set(&format!("media/{d}"), OCI_INDEX.as_bytes(), 0);
    let r = rejection(plan_with(
        &h,
        &local(),
        &request("GET", &format!("a/b/manifests/{d}"), &[OCI_MANIFEST]),
    ));
    assert_eq!(
        (r.status, r.code.as_deref()),
        (404, Some("MANIFEST_UNKNOWN"))
    );
    // ... but not one that accepts it, or one without Accept; the known
    // type is planned (the core may serve a stored copy without a fetch).
    let f = forward(plan_with(
        &h,
        &local(),
        &request("GET", &format!("a/b/manifests/{d}"), &[OCI_INDEX]),
    ));
    assert_eq!(f.plan.content_type.as_deref(), Some(OCI_INDEX));
    forward(plan_with(
        &h,
        &local(),
        &request("GET", &format!("a/b/manifests/{d}"), &[]),
    ));
}

#[test]
fn blobs_and_tags() {
    let h = FakeHost::default();
    let d = format!("sha256:{HEX}");
    let f = forward(plan_with(
        &h,
        &local(),
        &request("GET", &format!("x/blobs/{d}"), &[]),
    ));
    assert_eq!(f.plan.key, format!("blobs/{d}"));
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert_eq!(f.plan.expected_digest.as_deref(), Some(d.as_str()));
    assert_eq!(
        f.plan.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(f.plan.inspect_limit, None);
    assert_eq!(f.upstream.target, format!("/v2/x/blobs/{d}"));

    let mut req = request("GET", "x/tags/list", &[]);
    req.query = Some("last=a%2Bb&junk=1&n=10".into());
    let f = forward(plan_with(&h, &local(), &req));
    assert_eq!(f.plan.key, "tags/x/list?n=10&last=a%2Bb");
    assert_eq!(f.upstream.target, "/v2/x/tags/list?n=10&last=a%2Bb");
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(f.plan.ttl_secs, Some(DEFAULT_TAGS_TTL));
    let f = forward(plan_with(&h, &local(), &request("GET", "x/tags/list", &[])));
    assert_eq!(f.plan.key, "tags/x/list");

    let mut r = local();
    r.options = vec![("tags_ttl".into(), "5m".into())];
    let f = forward(plan_with(&h, &r, &request("GET", "x/tags/list", &[])));
    assert_eq!(f.plan.ttl_secs, Some(300));
    r.options = vec![("tags_ttl".into(), "soon".into())];
    assert_eq!(
        rejection(plan_with(&h, &r, &request("GET", "x/tags/list", &[]))).status,
        500
    );
}

#[test]
fn library_prefix() {
    let h = FakeHost::default();
    let hub = remote("https://registry-1.docker.io");
    let f = forward(plan_with(
        &h,
        &hub,
        &request("GET", "alpine/manifests/3.20", &[]),
    ));
    assert_eq!(f.upstream.target, "/v2/library/alpine/manifests/3.20");
    assert!(f.plan.key.starts_with("manifests/library/alpine/tags/3.20"));
    // Multi-segment names are kept.
    let f = forward(plan_with(
        &h,
        &hub,
        &request("GET", "bitnami/redis/manifests/7", &[]),
    ));
    assert_eq!(f.upstream.target, "/v2/bitnami/redis/manifests/7");
    // Other registries: off by default, on by option.
    let f = forward(plan_with(
        &h,
        &local(),
        &request("GET", "alpine/manifests/3.20", &[]),
    ));
    assert_eq!(f.upstream.target, "/v2/alpine/manifests/3.20");
    let mut r = local();
    r.options = vec![("library_prefix".into(), "true".into())];
    let f = forward(plan_with(&h, &r, &request("GET", "alpine/tags/list", &[])));
    assert_eq!(f.upstream.target, "/v2/library/alpine/tags/list");
    let mut r = hub.clone();
    r.options = vec![("library_prefix".into(), "false".into())];
    let f = forward(plan_with(&h, &r, &request("GET", "alpine/tags/list", &[])));
    assert_eq!(f.upstream.target, "/v2/alpine/tags/list");
    r.options = vec![("library_prefix".into(), "yes".into())];
    assert_eq!(
        rejection(plan_with(&h, &r, &request("GET", "alpine/tags/list", &[]))).status,
        500
    );
    assert!(is_docker_hub("https://REGISTRY-1.docker.io:443"));
    assert!(!is_docker_hub("https://registry-1.docker.io.evil.example"));
}

#[test]
fn refusals() {
    let h = FakeHost::default();
    let mut req = request("GET", "a/manifests/1", &[]);
    req.kind = RouteKind::RemoteApi;
    let r = rejection(plan_with(&h, &local(), &req));
    assert_eq!((r.status, r.code.as_deref()), (400, Some("UNSUPPORTED")));
    for m in ["PUT", "POST", "DELETE", "PATCH"] {
        let r = rejection(plan_with(&h, &local(), &request(m, "a/manifests/1", &[])));
        assert_eq!(
            (r.status, r.code.as_deref()),
            (400, Some("UNSUPPORTED")),
            "{m}"
        );
    }
    let mut hosted = local();
    hosted.mode = RemoteMode::Hosted;
    assert_eq!(
        rejection(plan_with(
            &h,
            &hosted,
            &request("GET", "a/manifests/1", &[])
        ))
        .status,
        400
    );
    let r = rejection(plan_with(
        &h,
        &local(),
        &request("GET", "A/manifests/1", &[]),
    ));
    assert_eq!(r.code.as_deref(), Some("NAME_INVALID"));
    let r = rejection(plan_with(
        &h,
        &local(),
        &request("GET", &format!("a/blobs/sha512:{HEX}"), &[]),
    ));
    assert_eq!(r.code.as_deref(), Some("DIGEST_INVALID"));
    let r = rejection(plan_with(&h, &local(), &request("GET", "a/_catalog", &[])));
    assert_eq!(r.code.as_deref(), Some("UNSUPPORTED"));
}

#[test]
fn tag_response_is_verified_and_labelled() {
    let h = FakeHost::default();
    let req = request("GET", "a/manifests/1", &[OCI_MANIFEST, OCI_INDEX]);
    let sent = forward(plan_with(&h, &local(), &req)).upstream;
    let d = format!("sha256:{HEX}");
    let u = update(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(
            200,
            &[
                ("content-type", OCI_INDEX),
                ("docker-content-digest", &d),
                ("content-length", "512"),
            ],
        ),
        0,
    ));
    assert_eq!(u.expected_digest.as_deref(), Some(d.as_str()));
    assert_eq!(u.content_type.as_deref(), Some(OCI_INDEX));
    assert_eq!(
        header(&u.add_headers, "docker-content-digest"),
        Some(d.as_str())
    );
    // The media type is remembered for digest requests.
    assert_eq!(
        h.kv_get(&format!("media/{d}")).as_deref(),
        Some(OCI_INDEX.as_bytes())
    );
}

/// A remembered media type is a fact an upstream asserted: it expires
/// (issue 14 item 4), so a wrong one does not outlive a day.
#[test]
fn remembered_media_types_expire() {
    let h = FakeHost::default();
    for (path, digest_header) in [
        ("a/manifests/1", true),
        (&*format!("a/manifests/sha256:{HEX2}"), false),
    ] {
        let req = request("GET", path, &[OCI_MANIFEST]);
        let sent = forward(plan_with(&h, &local(), &req)).upstream;
        let d = if digest_header {
            format!("sha256:{HEX}")
        } else {
            format!("sha256:{HEX2}")
        };
        let mut headers = vec![("content-type", OCI_MANIFEST)];
        if digest_header {
            headers.push(("docker-content-digest", d.as_str()));
        }
        update(on_response_with(
            &h,
            &local(),
            &req,
            &sent,
            &response(200, &headers),
            0,
        ));
        let key = format!("media/{d}");
        let (value, ttl) = (h.kv_value(&key).unwrap(), h.kv_ttl(&key).unwrap());
        assert_eq!(value, OCI_MANIFEST.as_bytes());
        assert_eq!(ttl, MEDIA_TYPE_TTL, "{path}");
        assert!(ttl > 0 && ttl <= 7 * 24 * 3600);
    }
}

#[test]
fn unaccepted_media_type_is_refused() {
    let h = FakeHost::default();
    let req = request("GET", "a/manifests/1", &[OCI_MANIFEST]);
    let sent = forward(plan_with(&h, &local(), &req)).upstream;
    let r = failure(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(200, &[("content-type", DOCKER_LIST)]),
        0,
    ));
    assert_eq!(
        (r.status, r.code.as_deref()),
        (404, Some("MANIFEST_UNKNOWN"))
    );
    // Without Accept, anything goes.
    let req = request("GET", "a/manifests/1", &[]);
    update(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(200, &[("content-type", DOCKER_LIST)]),
        0,
    ));
    // */* accepts everything.
    let req = request("GET", "a/manifests/1", &["*/*"]);
    update(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(200, &[("content-type", DOCKER_LIST)]),
        0,
    ));
}

#[test]
fn oversized_manifests_are_refused() {
    let h = FakeHost::default();
    let req = request("GET", "a/manifests/1", &[]);
    let sent = forward(plan_with(&h, &local(), &req)).upstream;
    let r = failure(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(
            200,
            &[
                ("content-type", OCI_MANIFEST),
                ("content-length", "4194305"),
            ],
        ),
        0,
    ));
    assert_eq!(
        (r.status, r.code.as_deref()),
        (502, Some("MANIFEST_INVALID"))
    );
}

#[test]
fn upstream_statuses() {
    let h = FakeHost::default();
    let d = format!("sha256:{HEX}");
    let cases = [
        (
            "a/manifests/1".to_owned(),
            404,
            Some((404, "MANIFEST_UNKNOWN")),
        ),
        (format!("a/blobs/{d}"), 404, Some((404, "BLOB_UNKNOWN"))),
        ("a/tags/list".to_owned(), 404, Some((404, "NAME_UNKNOWN"))),
        ("a/manifests/1".to_owned(), 403, Some((403, "DENIED"))),
        ("a/manifests/1".to_owned(), 400, Some((502, "UNAVAILABLE"))),
        ("a/manifests/1".to_owned(), 429, None),
        ("a/manifests/1".to_owned(), 500, None),
        ("a/manifests/1".to_owned(), 503, None),
        ("a/manifests/1".to_owned(), 304, None),
        (format!("a/blobs/{d}"), 200, None),
    ];
    for (path, status, want) in cases {
        let req = request("GET", &path, &[]);
        let sent = forward(plan_with(&h, &local(), &req)).upstream;
        let got = on_response_with(&h, &local(), &req, &sent, &response(status, &[]), 0);
        match want {
            None => assert_eq!(got, AfterHeaders::Accept, "{path} {status}"),
            Some((s, c)) => {
                let r = failure(got);
                assert_eq!(
                    (r.status, r.code.as_deref()),
                    (s, Some(c)),
                    "{path} {status}"
                );
            }
        }
    }
}

#[test]
fn token_dance() {
    let h = FakeHost::default();
    let mut r = local();
    r.has_credentials = true;
    let req = request("GET", &format!("team/app/blobs/sha256:{HEX2}"), &[]);
    let sent = forward(plan_with(&h, &r, &req)).upstream;
    assert!(sent.use_credentials);
    h.answer_http(Ok(IncomingResponse::test(
        200,
        &[],
        br#"{"token":"sekrit","expires_in":300}"#,
    )));
    let challenge = r#"Bearer realm="http://127.0.0.1:9/token",service="test",scope="repository:team/app:pull""#;
    let next = on_response_with(
        &h,
        &r,
        &req,
        &sent,
        &response(401, &[("www-authenticate", challenge)]),
        0,
    )
    .expect_retry();
    assert_eq!(next.target, sent.target);
    assert!(!next.use_credentials);
    assert_eq!(
        header(&next.headers, "authorization"),
        Some("Bearer sekrit")
    );
    let asked = h.http_sent()[0].clone();
    assert_eq!(
        asked.url,
        "http://127.0.0.1:9/token?service=test&scope=repository%3Ateam%2Fapp%3Apull"
    );
    assert!(asked.use_credentials);
    let key = auth::token_key("hub", &r.upstreams, "repository:team/app:pull");
    assert_eq!(
        (h.kv_value(&key), h.kv_ttl(&key)),
        (Some(b"sekrit".to_vec()), Some(290))
    );

    // Later plans use the cached token up front.
    let f = forward(plan_with(
        &h,
        &r,
        &request("GET", "team/app/manifests/1", &[]),
    ));
    assert!(!f.upstream.use_credentials);
    assert_eq!(
        header(&f.upstream.headers, "authorization"),
        Some("Bearer sekrit")
    );
    // ... but not for another repository or another remote.
    let f = forward(plan_with(&h, &r, &request("GET", "other/manifests/1", &[])));
    assert_eq!(header(&f.upstream.headers, "authorization"), None);
    let mut r2 = r.clone();
    r2.name = "other".into();
    let f = forward(plan_with(
        &h,
        &r2,
        &request("GET", "team/app/manifests/1", &[]),
    ));
    assert_eq!(header(&f.upstream.headers, "authorization"), None);

    // A fresh token without enough scope: denied at once.
    let insufficient = format!("{challenge},error=\"insufficient_scope\"");
    let x = failure(on_response_with(
        &h,
        &r,
        &req,
        &next,
        &response(401, &[("www-authenticate", &insufficient)]),
        1,
    ));
    assert_eq!((x.status, x.code.as_deref()), (403, Some("DENIED")));
    assert_eq!(h.http_sent().len(), 1, "no second token request");
    // Still 401 after two token attempts: denied.
    let x = failure(on_response_with(
        &h,
        &r,
        &req,
        &next,
        &response(401, &[("www-authenticate", challenge)]),
        2,
    ));
    assert_eq!((x.status, x.code.as_deref()), (403, Some("DENIED")));
    assert!(!x.message.contains("sekrit"));
}

#[test]
fn token_dance_failures() {
    let h = FakeHost::default();
    let req = request("GET", "a/manifests/1", &[]);
    let sent = forward(plan_with(&h, &local(), &req)).upstream;
    let challenge = r#"Bearer realm="http://auth.example/token",service="s""#;
    let run = |answer: Result<IncomingResponse, String>| {
        h.answer_http(answer);
        failure(on_response_with(
            &h,
            &local(),
            &req,
            &sent,
            &response(401, &[("www-authenticate", challenge)]),
            0,
        ))
    };
    let ok = |status: u16, body: &[u8]| Ok(IncomingResponse::test(status, &[], body));
    let r = run(ok(401, b""));
    assert_eq!((r.status, r.code.as_deref()), (403, Some("DENIED")));
    assert!(r.message.contains("anonymous"), "{}", r.message);
    assert_eq!(run(ok(500, b"")).status, 502);
    assert_eq!(run(ok(200, b"{}")).status, 502);
    assert_eq!(run(Err("refused".into())).status, 502);
    // The default scope is the repository's pull scope.
    assert!(
        h.http_sent()[0]
            .url
            .ends_with("scope=repository%3Aa%3Apull")
    );
    assert!(!h.http_sent()[0].use_credentials);
    // Basic challenge without credentials: a clear refusal.
    let r = failure(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(401, &[("www-authenticate", r#"Basic realm="registry""#)]),
        0,
    ));
    assert_eq!((r.status, r.code.as_deref()), (403, Some("DENIED")));
    assert!(r.message.contains("configure username"), "{}", r.message);
}

#[test]
fn tag_list_links_point_through_the_gateway() {
    assert_eq!(
        rewrite_link(
            r#"</v2/library/alpine/tags/list?last=3.20&n=2>; rel="next""#,
            "hub",
            "alpine"
        )
        .as_deref(),
        Some(r#"</v2/hub/alpine/tags/list?last=3.20&n=2>; rel="next""#)
    );
    assert_eq!(
        rewrite_link(
            "<https://r.example/v2/a/tags/list>; rel=\"next\"",
            "hub",
            "a"
        )
        .as_deref(),
        Some("</v2/hub/a/tags/list>; rel=\"next\"")
    );
    assert_eq!(rewrite_link("garbage", "hub", "a"), None);
    let h = FakeHost::default();
    let req = request("GET", "a/tags/list", &[]);
    let sent = forward(plan_with(&h, &local(), &req)).upstream;
    let u = update(on_response_with(
        &h,
        &local(),
        &req,
        &sent,
        &response(
            200,
            &[("link", "</v2/a/tags/list?n=1&last=x>; rel=\"next\"")],
        ),
        0,
    ));
    assert_eq!(
        header(&u.add_headers, "link"),
        Some("</v2/hub/a/tags/list?n=1&last=x>; rel=\"next\"")
    );
}

#[test]
fn media_type_from_the_body_when_the_upstream_sent_none() {
    let body = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}"}}"#);
    let v = inspect_manifest(
        &response(200, &[("content-type", "application/octet-stream")]),
        body.as_bytes(),
    );
    assert_eq!(
        v.update.and_then(|u| u.content_type).as_deref(),
        Some(OCI_MANIFEST)
    );
    let v = inspect_manifest(
        &response(200, &[("content-type", OCI_INDEX)]),
        body.as_bytes(),
    );
    assert_eq!(v, BodyVerdict::default());
    let v = inspect_manifest(&response(200, &[]), b"not json");
    assert_eq!(v, BodyVerdict::default());
}

#[test]
fn options_parse() {
    // `tags_ttl` is an SDK duration (the gateway config's grammar); the
    // forms this adapter documented keep their meaning.
    let parse_secs = |s: &str| artgate_sdk::duration::parse_secs(s).ok();
    assert_eq!(parse_secs("60"), Some(60));
    assert_eq!(parse_secs("2m"), Some(120));
    assert_eq!(parse_secs(" 1h "), Some(3600));
    assert_eq!(parse_secs("1d"), Some(86_400));
    assert_eq!(parse_secs("m"), None);
    assert_eq!(parse_secs("-1"), None);
    assert_eq!(parse_secs("1.5"), None);
    let tags_ttl = |v: &str| Options::of(&local().with_option("tags_ttl", v)).map(|o| o.tags_ttl);
    assert_eq!(tags_ttl("90"), Ok(90));
    assert_eq!(tags_ttl("1h30m"), Ok(5400));
    let e = tags_ttl("soon").unwrap_err();
    assert!(
        e.starts_with("Remote 'hub' has an invalid option tags_ttl \"soon\""),
        "{e}"
    );
    assert_eq!(fnv64(b""), 0xcbf2_9ce4_8422_2325);
}
