use super::*;
use artgate_sdk::testing::FakeHost;

const UP: &str = "https://registry.example/index";
const CKSUM: &str = "a0c3e1e2c5d4a8b1f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("crates")
        .with_package("cargo")
        .with_upstreams([UP])
}

fn ok(body: &str) -> Result<IncomingResponse, String> {
    Ok(IncomingResponse::test(200, &[], body))
}

/// A host whose cache holds the upstream's `config.json` with `dl` and
/// the index file of `serde` with two versions.
fn host(dl: &str) -> FakeHost {
    let h = FakeHost::new();
    h.answer_cache_for(
        &format!("{UP}/config.json"),
        ok(&format!(
            "{{\"dl\":\"{dl}\",\"api\":\"https://registry.example\"}}"
        )),
    );
    let line = |v: &str, c: &str| {
        format!(
            "{{\"name\":\"serde\",\"vers\":\"{v}\",\"deps\":[],\"cksum\":\"{c}\",\"features\":{{}},\"yanked\":false}}\n"
        )
    };
    h.answer_cache_for(
        "/se/rd/serde",
        ok(&format!(
            "{}{}",
            line("1.0.0", &"0".repeat(64)),
            line("1.0.1", CKSUM)
        )),
    );
    h
}

fn plan(h: &FakeHost, path: &str) -> Decision {
    plan_with(h, &remote(), &Request::test("GET", path))
}

/// `config.json` is the upstream's with `dl` at the gateway, as this
/// client reached it: kept per gateway URL (varying on host), so fresh
/// hits need no adapter call.
#[test]
fn config_points_downloads_at_the_gateway() {
    let h = host("https://registry.example/files");
    h.with_gateway_url("http://gw.example:8080");
    let f = plan(&h, "config.json").expect_forward();
    assert_eq!(f.upstream.target, format!("{UP}/config.json"));
    assert_eq!(f.plan.key, "config.json/http://gw.example:8080");
    assert_eq!(f.plan.class, CacheClass::Mutable);
    assert_eq!(f.plan.inspect_limit, Some(CONFIG_LIMIT));
    assert_eq!(f.plan.vary, ["host"]);
    let v = inspect_with(
        &h,
        &remote(),
        &Request::test("GET", "config.json"),
        &UpstreamResponse::test(200, &[]),
        br#"{"dl":"https://registry.example/files","api":"https://registry.example"}"#.to_vec(),
    );
    let doc: Value = serde_json::from_slice(&v.replace.expect("rewritten")).unwrap();
    assert_eq!(
        doc["dl"],
        "http://gw.example:8080/api/v1/remote/crates/-/dl/{crate}/{version}"
    );
    assert!(doc.get("api").is_none(), "no publishing through a mirror");

    h.with_gateway_url("");
    plan_with(&h, &remote(), &Request::test("GET", "config.json"))
        .expect_reject_with(400, "set server.public_url");
}

/// An upstream that is no sparse registry makes `config.json` a 502
/// saying what was wrong, and nothing is stored.
#[test]
fn a_broken_upstream_config_is_a_502() {
    for (status, body, text) in [
        (404, "", "answered 404"),
        (200, "<html>", "not JSON"),
        (200, "{\"api\":\"x\"}", "no \"dl\""),
    ] {
        let v = inspect_with(
            &FakeHost::new(),
            &remote(),
            &Request::test("GET", "config.json"),
            &UpstreamResponse::test(status, &[]),
            body.as_bytes().to_vec(),
        );
        let fail = v.fail.expect("refused");
        assert_eq!(fail.status, 502);
        assert!(fail.message.contains(text), "{}", fail.message);
        assert!(v.replace.is_none());
    }
    // A download's lookup of the template says the same.
    let h = FakeHost::new();
    h.answer_cache(Err("unreachable".to_owned()));
    plan(&h, "-/dl/serde/1.0.1").expect_reject_with(502, "could not be read");
}

/// Index files are mutable, fetched from the same path (failover over the
/// upstreams), 404s cached; other paths are 404s.
#[test]
fn index_files_are_mutable_and_other_paths_not_found() {
    let h = host("https://registry.example/files");
    for path in ["1/a", "2/ab", "3/a/abc", "se/rd/serde", "ca/rg/cargo-util"] {
        let f = plan(&h, path).expect_forward();
        assert_eq!(f.upstream.target, format!("/{path}"));
        assert_eq!(f.plan.key, path);
        assert_eq!(f.plan.class, CacheClass::Mutable);
        assert!(f.plan.cache_not_found);
    }
    for path in [
        "",
        "serde",
        "se/rd/Serde",
        "se/rx/serde",
        "1/ab",
        "3/b/abc",
        "se/rd/",
        "index/se/rd/serde",
        "é/rd/serde",
    ] {
        plan(&h, path).expect_reject_with(404, "not part of a cargo sparse registry");
    }
    for path in [
        "-/dl/serde",
        "-/dl/ser de/1.0.0",
        "-/dl/serde/1.0.0/x",
        "-/dl/é/1",
    ] {
        plan(&h, path).expect_reject_with(404, "is not a download");
    }
}

/// A download is fetched by the upstream's template, verified against the
/// index's `cksum` of that version and stored for good under its own key.
#[test]
fn downloads_are_verified_against_the_index() {
    let cases: [(&str, String); 3] = [
        (
            "https://registry.example/files",
            "https://registry.example/files/serde/1.0.1/download".into(),
        ),
        (
            "https://registry.example/files/{prefix}/{crate}/{crate}-{version}.crate",
            "https://registry.example/files/se/rd/serde/serde-1.0.1.crate".into(),
        ),
        (
            "https://registry.example/by-sum/{sha256-checksum}",
            format!("https://registry.example/by-sum/{CKSUM}"),
        ),
    ];
    for (dl, url) in cases {
        let h = host(dl);
        let f = plan(&h, "-/dl/serde/1.0.1").expect_forward();
        assert_eq!(f.upstream.target, url);
        assert_eq!(f.plan.key, "-/dl/serde/1.0.1");
        assert_eq!(f.plan.class, CacheClass::Immutable);
        assert_eq!(
            f.plan.expected_digest.as_deref(),
            Some(format!("sha256:{CKSUM}").as_str())
        );
        // The index is read under the plan a client's request for it has,
        // so both share one entry.
        let (req, plan, _) = h
            .cache_sent()
            .into_iter()
            .find(|(r, _, _)| r.url.ends_with("/se/rd/serde"))
            .expect("the index was read");
        assert_eq!(req.url, "/se/rd/serde");
        assert_eq!(plan.key, "se/rd/serde");
        assert_eq!(plan.class, CacheClass::Mutable);
    }
}

/// A version or crate the index lacks is a 404; a download host that is
/// no upstream a 502 that says which.
#[test]
fn unknown_versions_and_foreign_hosts_are_refused() {
    let h = host("https://registry.example/files");
    plan(&h, "-/dl/serde/9.9.9").expect_reject_with(404, "has no version 9.9.9");
    h.answer_cache_for("/ra/nd/rand", Ok(IncomingResponse::test(404, &[], "")));
    plan(&h, "-/dl/rand/1.0.0").expect_reject_with(404, "is not in the registry");
    let h = host("https://cdn.example/crates");
    plan(&h, "-/dl/serde/1.0.1").expect_reject_with(502, "https://cdn.example");
}

/// With the downloads on a further upstream (crates.io), index files and
/// `config.json` come from the first upstream only (never relative, which
/// would fail over to the file host), downloads from theirs.
#[test]
fn downloads_on_a_further_upstream() {
    let r = remote().with_upstreams([UP, "https://static.example"]);
    let h = FakeHost::new();
    h.answer_cache_for(
        &format!("{UP}/config.json"),
        ok("{\"dl\":\"https://static.example/crates\"}"),
    );
    h.answer_cache_for(&format!("{UP}/se/rd/serde"), serde_index());
    let f = plan_with(&h, &r, &Request::test("GET", "se/rd/serde")).expect_forward();
    assert_eq!(f.upstream.target, format!("{UP}/se/rd/serde"));
    let f = plan_with(&h, &r, &Request::test("GET", "-/dl/serde/1.0.1")).expect_forward();
    assert_eq!(
        f.upstream.target,
        "https://static.example/crates/serde/1.0.1/download"
    );
    let urls: Vec<String> = h.cache_sent().into_iter().map(|(r, _, _)| r.url).collect();
    assert!(urls.contains(&format!("{UP}/se/rd/serde")), "{urls:?}");
    assert!(!urls.iter().any(|u| u.starts_with('/')), "{urls:?}");
}

fn serde_index() -> Result<IncomingResponse, String> {
    ok(&format!(
        "{{\"name\":\"serde\",\"vers\":\"1.0.1\",\"deps\":[],\"cksum\":\"{CKSUM}\",\"features\":{{}},\"yanked\":false}}\n"
    ))
}

/// A version the stored index lacks makes the adapter expire the index
/// and read it once more before it answers 404; one just read from the
/// upstream is not read again.
#[test]
fn a_missing_version_rereads_a_stored_index_once() {
    let h = host("https://registry.example/files");
    h.answer_cache_for(
        "/se/rd/serde",
        Ok(IncomingResponse::test(
            200,
            &[("x-artifact-source", "cache")],
            "{\"name\":\"serde\",\"vers\":\"1.0.0\"}\n",
        )),
    );
    plan(&h, "-/dl/serde/1.0.1").expect_reject_with(404, "has no version 1.0.1");
    assert_eq!(h.expired(), ["se/rd/serde"]);
    let reads = h
        .cache_sent()
        .iter()
        .filter(|(r, _, _)| r.url == "/se/rd/serde")
        .count();
    assert_eq!(reads, 2);

    let h = host("https://registry.example/files");
    h.answer_cache_for(
        "/se/rd/serde",
        Ok(IncomingResponse::test(
            200,
            &[("x-artifact-source", "remote")],
            "{\"name\":\"serde\",\"vers\":\"1.0.0\"}\n",
        )),
    );
    plan(&h, "-/dl/serde/1.0.1").expect_reject_with(404, "has no version 1.0.1");
    assert!(h.expired().is_empty());
}

/// The key and the upstream URL use the name as the index spells it,
/// whatever case the client used; the origin check knows default ports.
#[test]
fn downloads_use_the_index_spelling_and_compare_origins_as_urls() {
    let h = host("https://Registry.Example:443/files");
    let f = plan(&h, "-/dl/SERDE/1.0.1").expect_forward();
    assert_eq!(f.plan.key, "-/dl/serde/1.0.1");
    assert_eq!(
        f.upstream.target,
        "https://Registry.Example:443/files/serde/1.0.1/download"
    );
}

/// A remote's `mutable_patterns` make a download mutable.
#[test]
fn mutable_patterns_apply() {
    let h = host("https://registry.example/files");
    let r = remote().with_mutable_patterns([r"^-/dl/serde/"]);
    let f = plan_with(&h, &r, &Request::test("GET", "-/dl/serde/1.0.1")).expect_forward();
    assert_eq!(f.plan.class, CacheClass::Mutable);
}

/// Writes to a mirror are refused, saying why.
#[test]
fn writes_are_refused() {
    let h = host("https://registry.example/files");
    plan_with(&h, &remote(), &Request::test("PUT", "se/rd/serde"))
        .expect_reject_with(405, "only answers GET and HEAD");
}

#[test]
fn index_paths() {
    assert_eq!(index_path("a"), "1/a");
    assert_eq!(index_path("ab"), "2/ab");
    assert_eq!(index_path("abc"), "3/a/abc");
    assert_eq!(index_path("Serde"), "se/rd/serde");
    assert_eq!(dl_prefix("Serde"), "Se/rd");
    assert_eq!(
        expand("https://x/{lowerprefix}/{crate}", "Serde", "1.0.0", ""),
        "https://x/se/rd/Serde"
    );
}
