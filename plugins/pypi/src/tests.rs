use super::*;
use artgate_sdk::testing::FakeHost;

const UP: &str = "https://upstream.example";
const FILES: &str = "https://files.pythonhosted.org";
const A: &str = "4a3d9216e57f7676411fae31ceea965b5771d62b9e17fce7c8dca429d1f32338";

fn remote() -> RemoteInfo {
    RemoteInfo::test()
        .with_name("pypi")
        .with_package("pypi")
        .with_upstreams([UP, FILES])
}

fn page() -> String {
    format!(
        "<html><body>\n\
         <a href=\"/packages/demo-1.0-py3-none-any.whl#sha256={A}\">demo-1.0-py3-none-any.whl</a>\n\
         <a href='../../packages/demo-1.0.tar.gz#sha256={}' data-requires-python=\"&gt;=3.8\">demo-1.0.tar.gz</a>\n\
         <a href=\"{FILES}/packages/ab/demo-0.9-py3-none-any.whl#sha256={}\" data-core-metadata=\"sha256={}\">old</a>\n\
         <a href=\"mailto:someone@example.org\">not a file</a>\n\
         </body></html>",
        "1".repeat(64),
        "2".repeat(64),
        "3".repeat(64)
    )
}

fn inspect(h: &FakeHost, path: &str, content_type: &str, body: &[u8]) -> BodyVerdict {
    inspect_with(
        h,
        &remote(),
        &Request::test("GET", path),
        &UpstreamResponse::test(200, &[("content-type", content_type)]),
        body.to_vec(),
    )
}

/// A project page is fetched in the form the client prefers, normalised,
/// mutable and inspected, each form its own entry.
#[test]
fn project_pages_by_form() {
    let h = FakeHost::new();
    let html = plan_with(&h, &remote(), &Request::test("GET", "simple/Demo_Pkg/")).expect_forward();
    assert_eq!(html.upstream.target, format!("{UP}/simple/demo-pkg/"));
    assert_eq!(html.plan.key, "simple/demo-pkg/");
    assert_eq!(html.plan.class, CacheClass::Mutable);
    assert_eq!(html.plan.inspect_limit, Some(INSPECT_LIMIT));
    assert_eq!(html.plan.vary, ["accept"]);
    let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    let json = plan_with(
        &h,
        &remote(),
        &Request::test("GET", "simple/demo-pkg/").with_header("accept", pip),
    )
    .expect_forward();
    assert_eq!(json.plan.key, "simple/demo-pkg/.json");
    assert!(
        json.upstream
            .headers
            .iter()
            .any(|x| x.name == "accept"
                && x.value.starts_with("application/vnd.pypi.simple.v1+json"))
    );
    let d = plan_with(&h, &remote(), &Request::test("GET", "simple/demo")).expect_respond();
    assert_eq!(d.status, 301);
    let location = d.headers.iter().find(|x| x.name == "location").unwrap();
    assert_eq!(location.value, "demo/");
    assert!(
        html.plan
            .response_headers
            .iter()
            .any(|x| x.name == "vary" && x.value == "Accept")
    );
    for (accept, json) in [
        ("text/html", false),
        ("*/*", false),
        ("application/vnd.pypi.simple.v1+json", true),
        ("application/vnd.pypi.simple.v1+json;q=0, text/html", false),
        (
            "application/vnd.pypi.simple.v1+json;q=0.5, text/html;q=0.5",
            true,
        ),
    ] {
        assert_eq!(
            wants_json(&Request::test("GET", "simple/x/").with_header("accept", accept)),
            json,
            "{accept}"
        );
    }
    let list = plan_with(&h, &remote(), &Request::test("GET", "simple/")).expect_forward();
    assert_eq!(list.plan.key, "simple/");
    // One upstream: failover-relative, as every other path.
    let one = remote().with_upstreams([UP]);
    let f = plan_with(&h, &one, &Request::test("GET", "simple/demo/")).expect_forward();
    assert_eq!(f.upstream.target, "/simple/demo/");
}

/// HTML links point back through the gateway (relative), fragments and
/// attributes kept; digests of files and metadata are remembered, and a
/// file's plan then names its digest.
#[test]
fn html_links_are_rewritten_and_digests_remembered() {
    let h = FakeHost::new();
    let v = inspect(&h, "simple/demo/", "text/html", page().as_bytes());
    let new = String::from_utf8(v.replace.expect("a replacement")).unwrap();
    assert!(new.contains(&format!(
        "<a href=\"../../files/demo/r/packages/demo-1.0-py3-none-any.whl#sha256={A}\">demo-1.0-py3-none-any.whl</a>"
    )), "{new}");
    assert!(new.contains(&format!(
        "<a href=\"../../files/demo/r/packages/demo-1.0.tar.gz#sha256={}\" data-requires-python=\"&gt;=3.8\">",
        "1".repeat(64)
    )), "{new}");
    assert!(new.contains(
        "href=\"../../files/demo/u/https/files.pythonhosted.org/packages/ab/demo-0.9-py3-none-any.whl#sha256=2222"
    ), "{new}");
    assert!(
        !new.contains("mailto"),
        "a link the gateway cannot serve is left out: {new}"
    );
    assert_eq!(v.update.unwrap().content_type.as_deref(), Some(HTML));

    let f = plan_with(
        &h,
        &remote(),
        &Request::test("GET", "files/demo/r/packages/demo-1.0-py3-none-any.whl"),
    )
    .expect_forward();
    assert_eq!(f.upstream.target, "/packages/demo-1.0-py3-none-any.whl");
    assert_eq!(f.plan.class, CacheClass::Immutable);
    assert_eq!(f.plan.expected_digest, Some(format!("sha256:{A}")));
    assert_eq!(f.plan.content_type.as_deref(), Some("application/zip"));
    let other = plan_with(
        &h,
        &remote(),
        &Request::test(
            "GET",
            "files/demo/u/https/files.pythonhosted.org/packages/ab/demo-0.9-py3-none-any.whl.metadata",
        ),
    )
    .expect_forward();
    assert_eq!(
        other.upstream.target,
        "https://files.pythonhosted.org/packages/ab/demo-0.9-py3-none-any.whl.metadata"
    );
    assert_eq!(
        other.plan.expected_digest,
        Some(format!("sha256:{}", "3".repeat(64)))
    );
    // A file no page listed is served, not stored.
    let unknown =
        plan_with(&h, &remote(), &Request::test("GET", "files/demo/r/x.whl")).expect_forward();
    assert_eq!(unknown.plan.class, CacheClass::NoStore);
}

/// A hostile page cannot send pip elsewhere: the page is rebuilt from its
/// anchors as a tokenizer reads them, so a `<base>`, an unquoted or
/// hidden `href`, an upper-case scheme or markup in values all end up as
/// escaped links through the gateway (the core then fetches only from the
/// remote's upstreams).
#[test]
fn a_hostile_page_cannot_steer_downloads() {
    let h = FakeHost::new();
    let page = "<base href=\"https://evil.example/\">\n\
        <a href=https://evil.example/x.whl>unquoted</a>\n\
        <a title=\">\" href=\"HTTPS://Evil.Example/y.whl\">gt in a value</a>\n\
        <a title=' href=\"/decoy.whl\"' href=\"/real.whl#sha256=x\">decoy</a>\n\
        <!-- <a href=\"/commented.whl\"> -->\n\
        <a href=\"/q.whl\" data-yanked='\"><script>'>yanked</a>";
    let v = inspect(&h, "simple/demo/", "text/html", page.as_bytes());
    let new = String::from_utf8(v.replace.unwrap()).unwrap();
    assert!(!new.contains("<base"), "{new}");
    assert!(!new.contains("<script"), "{new}");
    assert!(
        new.contains("href=\"../../files/demo/u/https/evil.example/x.whl\""),
        "{new}"
    );
    assert!(
        new.contains("href=\"../../files/demo/u/https/evil.example/y.whl\""),
        "{new}"
    );
    assert!(
        new.contains("href=\"../../files/demo/r/real.whl#sha256=x\""),
        "{new}"
    );
    assert!(!new.contains("decoy.whl"), "{new}");
    assert!(!new.contains("commented"), "{new}");
    assert!(
        new.contains("data-yanked=\"&quot;&gt;&lt;script&gt;\""),
        "{new}"
    );
    for line in new.lines().filter(|l| l.contains("href=")) {
        assert!(line.contains("href=\"../../files/demo/"), "{line}");
    }
}

/// PEP 691 JSON pages get the same treatment: `url`s through the gateway,
/// `hashes` and metadata digests remembered, everything else kept.
#[test]
fn json_pages_are_rewritten_too() {
    let h = FakeHost::new();
    let doc = serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {"filename": "demo-1.0-py3-none-any.whl",
             "url": "../../packages/demo-1.0-py3-none-any.whl",
             "hashes": {"sha256": A}, "requires-python": ">=3.8",
             "core-metadata": {"sha256": "3".repeat(64)}, "yanked": "broken"},
            {"filename": "demo-0.9.tar.gz",
             "url": "HTTPS://files.pythonhosted.org/packages/demo-0.9.tar.gz#sha256=0",
             "hashes": {"sha256": "2".repeat(64)},
             "dist-info-metadata": {"sha256": "4".repeat(64)}},
            {"filename": "x", "url": "mailto:someone@example.org", "hashes": {}}
        ]
    });
    let v = inspect(&h, "simple/demo/", JSON, doc.to_string().as_bytes());
    let new: Value = serde_json::from_slice(&v.replace.unwrap()).unwrap();
    let f = &new["files"][0];
    assert_eq!(
        f["url"],
        "../../files/demo/r/packages/demo-1.0-py3-none-any.whl"
    );
    assert_eq!(f["hashes"]["sha256"], A);
    assert_eq!(f["yanked"], "broken");
    let files = new["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "the mailto entry is left out");
    assert_eq!(
        files[1]["url"],
        "../../files/demo/u/https/files.pythonhosted.org/packages/demo-0.9.tar.gz"
    );
    assert_eq!(
        lookup_digest(&h, "demo", "r/packages/demo-1.0-py3-none-any.whl"),
        Some(A.to_owned())
    );
    assert_eq!(
        lookup_digest(
            &h,
            "demo",
            "u/https/files.pythonhosted.org/packages/demo-0.9.tar.gz.metadata"
        ),
        Some("4".repeat(64))
    );
    assert_eq!(new["meta"]["api-version"], "1.1");
    assert_eq!(v.update.unwrap().content_type.as_deref(), Some(JSON));
    assert_eq!(
        lookup_digest(&h, "demo", "r/packages/demo-1.0-py3-none-any.whl.metadata"),
        Some("3".repeat(64))
    );
    let bad = inspect(&h, "simple/demo/", JSON, b"<html>");
    assert_eq!(bad.fail.unwrap().status, 502);
}

/// Many links spread over several key-value chunks and are all found.
#[test]
fn digests_span_chunks() {
    let h = FakeHost::new();
    let mut digests = BTreeMap::new();
    for i in 0..2000 {
        digests.insert(
            format!("r/packages/file-{i:05}-with-a-long-name.whl"),
            format!("{i:064x}"),
        );
    }
    store_digests(&h, "big", &digests);
    assert!(h.kv_keys().len() > 2, "{:?}", h.kv_keys());
    for i in [0, 999, 1999] {
        assert_eq!(
            lookup_digest(
                &h,
                "big",
                &format!("r/packages/file-{i:05}-with-a-long-name.whl")
            ),
            Some(format!("{i:064x}"))
        );
    }
}

/// Writes and other paths are refused, saying why.
#[test]
fn refusals() {
    let h = FakeHost::new();
    plan_with(&h, &remote(), &Request::test("PUT", "files/x/r/y.whl"))
        .expect_reject_with(400, "does not accept PUT");
    for path in [
        "packages/x.whl",
        "files/x",
        "files/x/q/y.whl",
        "files/x/u/ftp/h/y",
    ] {
        plan_with(&h, &remote(), &Request::test("GET", path)).expect_reject_with(404, "");
    }
    plan_with(&h, &remote(), &Request::test("GET", "simple/a/b"))
        .expect_reject_with(404, "PEP 503");
}

#[test]
fn helpers() {
    assert_eq!(normalize("Foo__Bar.baz-"), "foo-bar-baz-");
    assert_eq!(
        join("https://h/simple/p/", "../../x/y.whl"),
        "https://h/x/y.whl"
    );
    assert_eq!(join("https://h/simple/p/", "/x/y.whl"), "https://h/x/y.whl");
    assert_eq!(join("https://h/simple/p/", "//cdn/z"), "https://cdn/z");
    assert_eq!(join("https://h/simple/p/", "mailto:a@b"), "mailto:a@b");
    assert_eq!(
        join("https://h/simple/p/", "z.whl?a=1"),
        "https://h/simple/p/z.whl?a=1"
    );
}
