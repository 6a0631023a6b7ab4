//! Host-target tests of the generic adapter's decisions.

use super::*;

fn remote(mode: RemoteMode) -> RemoteInfo {
    RemoteInfo::test()
        .with_name("files")
        .with_package("generic")
        .with_mode(mode)
        .with_upstreams(["https://example.org/base"])
        .with_credentials(true)
}

fn request(method: &str, path: &str, query: Option<&str>) -> Request {
    Request::test(method, path)
        .with_id("req-1")
        .with_query(query)
}

fn forward(d: Decision) -> Forward {
    d.expect_forward()
}

fn hosted_op(d: Decision) -> HostedOp {
    d.expect_hosted()
}

fn rejection(d: Decision) -> Rejection {
    d.expect_reject()
}

fn variant_headers() -> Vec<Header> {
    VARIANT_HEADER
        .map(|(n, v)| Header::new(n, v))
        .into_iter()
        .collect()
}

#[test]
fn describe() {
    let info = Generic::describe();
    assert_eq!(info.name, "generic");
    assert_eq!(info.package_types, ["generic", "local"]);
    if cfg!(feature = "variant") {
        assert_eq!(info.version, "9.9.9-test");
    } else {
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn pull_through_get_is_forwarded_and_cached_immutable() {
    let f = forward(Generic::plan(
        remote(RemoteMode::PullThrough),
        request("GET", "dists/a b/pkg-1.0.tar.gz", None),
    ));
    assert_eq!(
        f.upstream,
        UpstreamRequest {
            method: "GET".into(),
            target: "/dists/a%20b/pkg-1.0.tar.gz".into(),
            headers: vec![],
            forward_body: false,
            use_credentials: true,
        }
    );
    let mut headers = vec![Header::new(
        "content-disposition",
        "attachment; filename=\"pkg-1.0.tar.gz\"",
    )];
    headers.extend(variant_headers());
    assert_eq!(
        f.plan,
        CachePlan {
            key: "dists/a b/pkg-1.0.tar.gz".into(),
            class: CacheClass::Immutable,
            ttl_secs: None,
            validator: None,
            content_type: Some("application/gzip".into()),
            expected_digest: None,
            response_headers: headers,
            inspect_limit: None,
            cache_not_found: true,
            vary: vec![],
        }
    );
}

#[test]
fn head_forwards_get_and_query_is_part_of_key_and_target() {
    let f = forward(Generic::plan(
        remote(RemoteMode::PullThrough),
        request("HEAD", "a/file.json", Some("v=2&x=%20")),
    ));
    assert_eq!(f.upstream.method, "GET");
    assert_eq!(f.upstream.target, "/a/file.json?v=2&x=%20");
    assert_eq!(f.plan.key, "a/file.json?v=2&x=%20");
    assert_eq!(f.plan.content_type.as_deref(), Some("application/json"));
}

#[test]
fn mutable_patterns_win_and_default_is_immutable() {
    let mut r = remote(RemoteMode::PullThrough);
    r.immutable_patterns = vec![r"\.xml$".into()];
    r.mutable_patterns = vec![r"(^|/)repomd\.xml$".into(), "^latest/".into()];
    let class = |path: &str| {
        forward(Generic::plan(r.clone(), request("GET", path, None)))
            .plan
            .class
    };
    assert_eq!(class("repodata/repomd.xml"), CacheClass::Mutable);
    assert_eq!(class("latest/x.bin"), CacheClass::Mutable);
    assert_eq!(class("repodata/primary.xml"), CacheClass::Immutable);
    assert_eq!(class("other.bin"), CacheClass::Immutable);
}

#[test]
fn invalid_pattern_is_a_500() {
    let mut r = remote(RemoteMode::PullThrough);
    r.mutable_patterns = vec!["(".into()];
    let rej = rejection(Generic::plan(r, request("GET", "a", None)));
    assert_eq!(rej.status, 500);
    assert!(
        rej.message.contains("invalid pattern \"(\""),
        "{}",
        rej.message
    );
}

#[test]
fn directory_keeps_upstream_content_type() {
    let f = forward(Generic::plan(
        remote(RemoteMode::PullThrough),
        request("GET", "dists/", None),
    ));
    assert_eq!(f.plan.content_type, None);
    assert_eq!(f.plan.response_headers, variant_headers());
    assert_eq!(f.upstream.target, "/dists/");
}

#[test]
fn non_ascii_file_name_gets_rfc6266_header() {
    let f = forward(Generic::plan(
        remote(RemoteMode::PullThrough),
        request("GET", "docs/résumé \"final\".txt", None),
    ));
    assert_eq!(
        f.plan.response_headers[0],
        Header::new(
            "content-disposition",
            "attachment; filename=\"r_sum_ \\\"final\\\".txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt"
        )
    );
    assert_eq!(
        f.plan.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn writes_on_pull_through_are_refused() {
    for m in ["PUT", "POST", "DELETE", "PATCH"] {
        let rej = rejection(Generic::plan(
            remote(RemoteMode::PullThrough),
            request(m, "a.bin", None),
        ));
        assert_eq!(rej.status, 400);
        assert!(
            rej.message.contains("pull-through cache"),
            "{}",
            rej.message
        );
        assert!(rej.message.contains("PUT /cache/flush"), "{}", rej.message);
        assert!(rej.message.ends_with('.'));
    }
}

#[test]
fn hosted_read_and_list() {
    let op = hosted_op(Generic::plan(
        remote(RemoteMode::Hosted),
        request("GET", "builds/app.zip", None),
    ));
    let mut headers = vec![Header::new(
        "content-disposition",
        "attachment; filename=\"app.zip\"",
    )];
    headers.extend(variant_headers());
    assert_eq!(
        op,
        HostedOp::Read(HostedRead {
            key: "builds/app.zip".into(),
            content_type: None,
            response_headers: headers,
        })
    );

    let op = hosted_op(Generic::plan(
        remote(RemoteMode::Hosted),
        request("HEAD", "builds/", Some("list&after=builds%2Fa&limit=20")),
    ));
    assert_eq!(
        op,
        HostedOp::List(HostedList {
            prefix: "builds/".into(),
            after: Some("builds/a".into()),
            limit: 20,
        })
    );

    let list = |path: &str, q: Option<&str>| {
        hosted_op(Generic::plan(
            remote(RemoteMode::Hosted),
            request("GET", path, q),
        ))
    };
    assert_eq!(
        list("", None),
        HostedOp::List(HostedList::new("", DEFAULT_LIST_LIMIT))
    );
    assert_eq!(
        list("x", Some("list")),
        HostedOp::List(HostedList::new("x", DEFAULT_LIST_LIMIT))
    );
    assert_eq!(
        list("x/", Some("limit=999999999999")),
        HostedOp::List(HostedList::new("x/", MAX_LIST_LIMIT))
    );
    for bad in ["0", "-1", "ten"] {
        let rej = rejection(Generic::plan(
            remote(RemoteMode::Hosted),
            request("GET", "x/", Some(&format!("list&limit={bad}"))),
        ));
        assert_eq!(rej.status, 400, "{bad}");
    }
}

#[test]
fn hosted_write() {
    let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    let mut req = request("PUT", "builds/app.rpm", None);
    req.headers = vec![Header::new("X-Checksum-Sha256", hex)];
    let op = hosted_op(Generic::plan(remote(RemoteMode::Hosted), req.clone()));
    assert_eq!(
        op,
        HostedOp::Write(HostedWrite {
            key: "builds/app.rpm".into(),
            content_type: Some("application/x-rpm".into()),
            expected_digest: Some(format!("sha256:{}", hex.to_lowercase())),
            refuse_overwrite: false,
            inspect_limit: None,
        })
    );

    let mut r = remote(RemoteMode::Hosted);
    r.options = vec![("overwrite".into(), "false".into())];
    req.method = "POST".into();
    req.headers.clear();
    match hosted_op(Generic::plan(r, req.clone())) {
        HostedOp::Write(w) => {
            assert!(w.refuse_overwrite);
            assert_eq!(w.expected_digest, None);
        }
        other => panic!("{other:?}"),
    }

    req.headers = vec![Header::new("x-checksum-sha256", "abc")];
    let rej = rejection(Generic::plan(remote(RemoteMode::Hosted), req));
    assert_eq!(rej.status, 400);
    assert!(
        rej.message
            .starts_with("Header x-checksum-sha256 is invalid")
    );
}

#[test]
fn hosted_delete_and_directories() {
    assert_eq!(
        hosted_op(Generic::plan(
            remote(RemoteMode::Hosted),
            request("DELETE", "a/b", None)
        )),
        HostedOp::Delete("a/b".into())
    );
    for m in ["PUT", "POST", "DELETE"] {
        for p in ["", "a/"] {
            let rej = rejection(Generic::plan(
                remote(RemoteMode::Hosted),
                request(m, p, None),
            ));
            assert_eq!(rej.status, 400, "{m} {p}");
        }
    }
    let rej = rejection(Generic::plan(
        remote(RemoteMode::Hosted),
        request("PATCH", "a", None),
    ));
    assert_eq!(rej.status, 405);
}

#[test]
fn hooks_use_defaults() {
    let r = remote(RemoteMode::PullThrough);
    let req = request("GET", "a", None);
    let resp = UpstreamResponse {
        status: 200,
        headers: vec![],
    };
    assert_eq!(
        <Generic as Adapter>::on_response(
            r.clone(),
            req.clone(),
            UpstreamRequest::get("/a"),
            resp.clone(),
            0
        ),
        AfterHeaders::Accept
    );
    assert_eq!(
        <Generic as Adapter>::inspect_body(r, req, resp, b"x".to_vec()),
        BodyVerdict::default()
    );
}
