use super::*;
use artgate_sdk::testing::FakeHost;
use serde_json::Value;

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
    let mut digests = Digests::default();
    for i in (0..2000).rev() {
        let hex = format!("{i:064X}");
        digests.push(
            &format!("r/packages/file-{i:05}-with-a-long-name.whl"),
            "",
            &hex,
            hex_digest(&hex) == Some(true),
        );
    }
    store_digests(&h, "big", &digests.sorted());
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
    for (a, b, n) in [
        ("", "", 0),
        ("abc", "abd", 2),
        ("abcdefgh", "abcdefgh", 8),
        ("abcdefghijk", "abcdefghijx", 10),
        ("abcdefghij", "abcdefgh", 8),
        ("xbcdefghij", "abcdefghij", 0),
        ("abcdefghijklmnopq", "abcdefghijklmnoqq", 15),
    ] {
        assert_eq!(common_prefix(a.as_bytes(), b.as_bytes()), n, "{a} {b}");
    }
    for b in 0..=255u8 {
        let word = u64::from_le_bytes([b'a', b'0', b, b'9', b'f', b'F', b'A', b'c']);
        let expect = b.is_ascii_hexdigit().then_some(true);
        assert_eq!(hex_word(word), expect, "{b}");
        let word = u64::from_le_bytes([b; 8]);
        let expect = b.is_ascii_hexdigit().then_some(b.is_ascii_uppercase());
        assert_eq!(hex_word(word), expect, "{b}");
    }
    assert_eq!(hex_digest(&format!(" {A}\n")), Some(false));
    assert_eq!(hex_digest(&A.to_uppercase()), Some(true));
    assert_eq!(hex_digest(&A[1..]), None);
    assert_eq!(hex_digest(&format!("{}g", &A[1..])), None);
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

mod reference;

/// The page the rewriting is compared on: a remote of two upstreams, the
/// first with a path.
fn diff_page() -> Page {
    let remote = RemoteInfo::test().with_upstreams(["https://index.example/pypi", FILES]);
    Page::new(&remote, "demo", 2)
}

/// A rewritten page and its digests in path order.
type Rewrite<T> = (T, Vec<(String, String)>);

/// The HTML rewrite and its digests, now and as it was.
fn both_html(text: &str) -> (Rewrite<String>, Rewrite<String>) {
    let page = diff_page();
    let mut digests = Digests::default();
    let new = page.rewrite_html("demo", text, &mut digests);
    let new_digests = owned(&digests.sorted());
    let (old, old_digests) = reference::rewrite_html(&page, "demo", text);
    ((new, new_digests), (old, old_digests.into_iter().collect()))
}

/// A JSON rewrite, `None` for a refused page.
type JsonRewrite = Option<Rewrite<Vec<u8>>>;

/// The JSON rewrite and its digests, now and as it was.
fn both_json(body: &[u8]) -> (JsonRewrite, JsonRewrite) {
    let page = diff_page();
    let mut digests = Digests::default();
    let new = page
        .rewrite_json(body, &mut digests)
        .map(|out| (out, owned(&digests.sorted())));
    let old = reference::rewrite_json(&page, body).map(|(out, d)| (out, d.into_iter().collect()));
    (new, old)
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Asserts the JSON rewrite of `body` is the old one, byte for byte.
fn assert_json_same(body: &str) {
    let (new, old) = both_json(body.as_bytes());
    let show = |r: &JsonRewrite| {
        r.as_ref()
            .map(|(o, d)| (String::from_utf8_lossy(o).into_owned(), d.clone()))
    };
    assert_eq!(show(&new), show(&old), "{body}");
}

/// The test pages, the 2 MB benchmark pages and odd corners are rewritten
/// byte for byte as before, digests included.
#[test]
fn rewrites_are_unchanged() {
    let (new, old) = both_html(&page());
    assert_eq!(new, old);
    assert_eq!(new.1.len(), 4, "{:?}", new.1);
    let (html, json, n) = big_pages();
    let (new, old) = both_html(&html);
    assert_eq!(new, old);
    assert_eq!(new.1.len(), n);
    let (new, old) = both_json(json.as_bytes());
    assert_eq!(new, old);
    assert_eq!(new.map(|(_, d)| d.len()), Some(n));
    for body in [
        r#"{"files":[]}"#,
        r#"{"files":{}}"#,
        r#"{"files":[1,"x",null,[],{},{"url":5},{"url":"mailto:x"}]}"#,
        r#"[{"files":[]}]"#,
        r#"{"meta":{"api-version":"1.1"}}"#,
        r#"{"files":[{"url":"/a.whl"}],"files":[{"url":"/b.whl"}]}"#,
        r#"{"fil\u0065s":[{"\u0075rl":"\/a.whl#x","hashes":{"sha256":" 4A3D9216E57F7676411FAE31CEEA965B5771D62B9E17FCE7C8DCA429D1F32338 "}}]}"#,
        r#"{ "files" : [ { "url" : "../../a.whl" , "size" : 12345678901234567890, "n": -0, "f": 1.50, "e": 1e2, "big": 1e400 } ] }"#,
        r#"{"files":[{"url":"/a.whl","size":18446744073709551615,"x":-12,"y":0.1,"z":[1,{"b":2,"a":[true,false,null]}]}]}"#,
        r#"{"files":[{"url":"/a.whl","s":"\ud83d\ude00 \u00e9 \t \" \\ é \u0000"}],"name":"\u0041"}"#,
        r#"{"files":[{"url":"/a.whl","s":"\ud800"}]}"#,
        r#"{"files":[{"url":"mailto:a","s":"\ud800"}]}"#,
        r#"{"files":[{"url":"mailto:a","n":1e400}]}"#,
        r#"{"files":[{"url":"/a.whl","core-metadata":true,"dist-info-metadata":{"sha256":"3333333333333333333333333333333333333333333333333333333333333333"}}]}"#,
        r#"{"files":[{"url":"/a.whl","dist-info-metadata":{"sha256":"3333333333333333333333333333333333333333333333333333333333333333"},"hashes":{"sha256":"x","sha256":"4a3d9216e57f7676411fae31ceea965b5771d62b9e17fce7c8dca429d1f32338"}}]}"#,
        r#"{"files":[{"url":"https://index.example/pypi/p/%41%2F b.whl?x#y"},{"url":"HTTP://U@Other.Example:8080/q/r.whl"},{"url":"https:///x"},{"url":"//cdn.example/z.whl"}]}"#,
        r#"{"files":[{"url":"/a.whl","x":[[[[[[[[[[{"b":1.50,"a":"\u00e9","b":[{"z":1,"y":-0}]}]]]]]]]]]]}]}"#,
        r#"{"files":[{"url":"/a.whl","x":[[[[[[[{"b":1,"a":2,"b":[{"z":1,"y":1e400}]}]]]]]]]}]}"#,
        "{\"files\":[{\"url\":\"/a.whl\"}]} \n",
        "{\"files\":[{\"url\":\"/a.whl\"}]} x",
        "{\"files\":[{\"url\":\"/a.whl\",}]}",
        "{\"files\":[{\"url\":\"/a\u{7f}.whl\"}]}",
        "\u{feff}{\"files\":[]}",
        "",
    ] {
        assert_json_same(body);
    }
}

/// serde_json's nesting limit holds as it did: a page nested one level
/// deeper than it reads is refused, one level less is not.
#[test]
fn json_nesting_limit_is_unchanged() {
    for depth in [120, 124, 125, 126, 127, 128, 130] {
        let nested =
            |open: &str, close: &str| format!("{}1{}", open.repeat(depth), close.repeat(depth));
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let inner = nested(open, close);
            assert_json_same(&format!(r#"{{"files":[{{"url":"/a.whl","x":{inner}}}]}}"#));
            assert_json_same(&format!(
                r#"{{"files":[{{"url":"mailto:x","x":{inner}}}]}}"#
            ));
            assert_json_same(&format!(r#"{{"files":[],"meta":{inner}}}"#));
            assert_json_same(&format!(r#"{{"files":[{inner}]}}"#));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    /// Pages of HTML-ish fragments are rewritten byte for byte as before.
    #[test]
    fn html_rewrites_match_the_old_ones(
        parts in proptest::collection::vec(
            "(<a |<A |<a\t|<a/|<ab |</a>|</A >|<b>|</b>|<br>|<!--|-->|<base href=x>| |\n|>|\"|'|=|/|\
              href=|HREF = |data-requires-python=|DATA-YANKED|data-core-metadata=|data-dist-info-metadata=|data-gpg-sig=|title=|\
              \"https://index.example/pypi/p/a.whl|https://INDEX.example/x|https://files.pythonhosted.org/p/b.tar.gz|\
              ../../packages/c.whl|/packages/d.whl|//cdn.example/e.whl|e.whl\\?x=1|mailto:x|javascript:y|HTTPS://U@H.Example/q|\
              http:///z|%41%2f%zz|ü|€|#sha256=|#SHA256 = |#md5=00|\
              4a3d9216e57f7676411fae31ceea965b5771d62b9e17fce7c8dca429d1f32338|4A3D9216E57F7676411FAE31CEEA965B5771D62B9E17FCE7C8DCA429D1F32338|\
              sha256=3333333333333333333333333333333333333333333333333333333333333333|\
              &amp;|&gt;=3\\.8|&#x41;|&#65;|&bogus;|&|text|\\.\\./)",
            0..60,
        )
    ) {
        let text = parts.concat();
        let (new, old) = both_html(&text);
        proptest::prop_assert_eq!(new, old, "{}", text);
    }

    /// PEP 691 pages (and pages that are not quite) are rewritten byte
    /// for byte as before, or refused as before.
    #[test]
    fn json_rewrites_match_the_old_ones(
        files in proptest::collection::vec(
            proptest::collection::vec(
                (
                    "(url|hashes|core-metadata|dist-info-metadata|filename|size|yanked|requires-python|\\\\u0075rl|sha256)",
                    "(\"https://index.example/pypi/p/a.whl\"|\"../../x/b.whl#sha256=1\"|\"HTTPS://files.pythonhosted.org/c.whl\"|\
                      \"mailto:x\"|\"/d%20e.whl\"|\"\\\\/f.whl\"|\"\\\\u00e9\"|\"ü\"|\"\\\\ud800\"|\
                      \\{\"sha256\":\"4a3d9216e57f7676411fae31ceea965b5771d62b9e17fce7c8dca429d1f32338\"\\}|\
                      \\{\"sha256\":\"3333333333333333333333333333333333333333333333333333333333333333\",\"md5\":\"x\"\\}|\
                      \\{\"sha256\":1\\}|true|false|null|0|12345|-1|-0|1\\.5|1e3|1E400|99999999999999999999|\\[\\]|\\[1,\\{\\}\\]|\\{\\})",
                ),
                0..6,
            ),
            0..6,
        ),
        extra in "(|,\"meta\":\\{\"api-version\":\"1\\.1\"\\}|,\"name\":\"demo\"|,\"files\":\\[\\]| |,)",
    ) {
        let files: Vec<String> = files
            .iter()
            .map(|members| {
                let m: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\" : {v}")).collect();
                format!("{{{}}}", m.join(","))
            })
            .collect();
        let body = format!("{{\"files\":[{}]{extra}}}", files.join(", "));
        let (new, old) = both_json(body.as_bytes());
        proptest::prop_assert_eq!(new, old, "{}", body);
    }
}

/// A project page of about 2 MB in both forms, built as
/// `bench/plugin_calls.rs` builds it: `(html, json, files)`.
fn big_pages() -> (String, String, usize) {
    let (mut html, mut files) = (String::new(), Vec::new());
    let mut i = 0;
    while html.len() < 2 << 20 {
        let name = format!("demo-1.{i}-py3-none-any.whl");
        html.push_str(&format!(
            "<a href=\"https://files.example/packages/ab/cd/{name}#sha256={A}\" data-requires-python=\"&gt;=3.8\">{name}</a><br>\n"
        ));
        files.push(serde_json::json!({"filename": name,
            "url": format!("https://files.example/packages/ab/cd/{name}"),
            "hashes": {"sha256": A}, "requires-python": ">=3.8"}));
        i += 1;
    }
    let json = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "demo", "files": files})
        .to_string();
    (html, json, i)
}
