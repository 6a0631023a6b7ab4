use super::*;
use artgate_sdk::prelude::RemoteMode;

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("golang")
        .with_package("go")
        .with_upstreams(["https://proxy.example"])
}

fn forward(path: &str) -> Forward {
    plan(&remote(), &Request::test("GET", path)).expect_forward()
}

/// Every file of the protocol is fetched from the same path, keyed by it,
/// with its class and content type.
#[test]
fn protocol_paths_plan_their_class_and_type() {
    let cases: &[(&str, CacheClass, Option<&str>)] = &[
        (
            "example.com/m/@v/list",
            CacheClass::Mutable,
            Some("text/plain; charset=utf-8"),
        ),
        (
            "example.com/m/@latest",
            CacheClass::Mutable,
            Some("application/json"),
        ),
        (
            "example.com/m/@v/v1.2.3.info",
            CacheClass::Immutable,
            Some("application/json"),
        ),
        (
            "example.com/m/@v/v1.2.3.mod",
            CacheClass::Immutable,
            Some("text/plain; charset=utf-8"),
        ),
        (
            "example.com/m/@v/v1.2.3.zip",
            CacheClass::Immutable,
            Some("application/zip"),
        ),
        (
            "github.com/!azure/azure-sdk-for-go/@v/v68.0.0+incompatible.zip",
            CacheClass::Immutable,
            Some("application/zip"),
        ),
        (
            "example.com/m/@v/v0.0.0-20240101120000-abcdef123456.info",
            CacheClass::Immutable,
            Some("application/json"),
        ),
        // A branch name is a query: its answer moves.
        (
            "example.com/m/@v/master.info",
            CacheClass::Mutable,
            Some("application/json"),
        ),
        ("sumdb/sum.golang.org/supported", CacheClass::Mutable, None),
        ("sumdb/sum.golang.org/latest", CacheClass::Mutable, None),
        (
            "sumdb/sum.golang.org/lookup/example.com/m@v1.2.3",
            CacheClass::Mutable,
            None,
        ),
        (
            "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
            CacheClass::Immutable,
            None,
        ),
    ];
    for (path, class, content_type) in cases {
        let f = forward(path);
        assert_eq!(f.upstream.method, "GET", "{path}");
        assert_eq!(f.upstream.target, format!("/{path}"), "{path}");
        assert_eq!(f.plan.key, *path);
        assert_eq!(f.plan.class, *class, "{path}");
        assert_eq!(f.plan.content_type.as_deref(), *content_type, "{path}");
        assert!(f.plan.cache_not_found, "{path}: 404s are cached");
    }
}

/// The protocol has no queries: one is neither sent upstream nor part of
/// the key.
#[test]
fn a_query_neither_splits_nor_busts_the_cache() {
    let f = plan(
        &remote(),
        &Request::test("GET", "example.com/m/@v/list").with_query(Some("x=1")),
    )
    .expect_forward();
    assert_eq!(f.upstream.target, "/example.com/m/@v/list");
    assert_eq!(f.plan.key, "example.com/m/@v/list");
}

/// Paths outside the protocol are 404s (which `go` takes as "no such
/// module"), broken case-encoding a 400, both saying what was expected.
#[test]
fn other_paths_are_not_found_and_bad_encodings_are_refused() {
    for path in [
        "",
        "example.com/m",
        "example.com/m/@v/",
        "example.com/m/@v/v1.0.0.tar.gz",
        "example.com/m/@v/v1.0.0",
        "@latest",
        "/@v/list",
        "example.com/m/@v/sub/v1.0.0.info",
        "sumdb/sum.golang.org/",
        "sumdb/sum.golang.org/other",
        "sumdb/Sum.golang.org/latest",
        "sumdb/sum.golang.org/tile/",
    ] {
        plan(&remote(), &Request::test("GET", path))
            .expect_reject_with(404, "is not a Go module proxy path");
    }
    for (path, text) in [
        ("github.com/Azure/x/@v/list", "not case-encoded"),
        ("github.com/!Azure/x/@v/list", "'!' must come before"),
        ("example.com/m!/@latest", "ends in '!'"),
        ("example.com/m/@v/v1.0.0-RC.info", "not case-encoded"),
        ("example.com/m*/@v/list", "a character outside"),
    ] {
        plan(&remote(), &Request::test("GET", path)).expect_reject_with(400, text);
    }
}

/// Writes and hosted remotes are refused, saying why.
#[test]
fn writes_and_hosted_remotes_are_refused() {
    plan(&remote(), &Request::test("PUT", "example.com/m/@v/list"))
        .expect_reject_with(405, "only answers GET and HEAD");
    plan(
        &remote().with_mode(RemoteMode::Hosted),
        &Request::test("GET", "example.com/m/@v/list"),
    )
    .expect_reject_with(400, "only proxies");
    let head = plan(&remote(), &Request::test("HEAD", "example.com/m/@v/list")).expect_forward();
    assert_eq!(head.plan.class, CacheClass::Mutable);
}

/// A remote's `mutable_patterns` make a path mutable; `immutable_patterns`
/// cannot freeze a list.
#[test]
fn mutable_patterns_win() {
    let r = remote()
        .with_mutable_patterns([r"^example\.com/pinned/"])
        .with_immutable_patterns([r"@v/list$"]);
    let class = |path: &str| {
        plan(&r, &Request::test("GET", path))
            .expect_forward()
            .plan
            .class
    };
    assert_eq!(
        class("example.com/pinned/@v/v1.0.0.zip"),
        CacheClass::Mutable
    );
    assert_eq!(class("example.com/m/@v/list"), CacheClass::Mutable);
    assert_eq!(class("example.com/m/@v/v1.0.0.zip"), CacheClass::Immutable);
}

#[test]
fn case_encoding() {
    assert_eq!(
        unescape("github.com/!azure/!b!c").as_deref(),
        Ok("github.com/Azure/BC")
    );
    assert_eq!(unescape("v1.0.0-!r!c.1").as_deref(), Ok("v1.0.0-RC.1"));
    assert!(unescape("a//b").is_err());
}

#[test]
fn canonical_versions() {
    for v in [
        "v0.0.0",
        "v1.2.3",
        "v10.20.30",
        "v1.2.3-pre",
        "v1.2.3-pre.1",
        "v1.2.3-0.20240101120000-abcdef123456",
        "v2.0.0+incompatible",
        "v1.0.0-RC",
    ] {
        assert!(is_canonical(v), "{v}");
    }
    for v in [
        "master",
        "v1",
        "v1.2",
        "1.2.3",
        "v01.2.3",
        "v1.2.3-",
        "v1.2.3-01",
        "v1.2.3+build",
        "v1.2.3-a..b",
        "latest",
    ] {
        assert!(!is_canonical(v), "{v}");
    }
}
