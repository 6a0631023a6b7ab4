//! Core cache behaviour of the gateway in front of the in-process upstream
//! with the built-in `generic` adapter: hit/miss, revalidation, stale,
//! negative caching, Range/HEAD, flush, status codes, path traversal,
//! admin endpoints and upstream failover.

use crate::support::gateway::{Gateway, by_source, generic_remote};
use crate::support::http::{Got, send};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{bytes, metric};
use reqwest::header::HeaderMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET` of `path`, read to the end ([`get_with`]).
async fn get(gw: &Gateway, path: &str) -> Got {
    get_with(gw, path, &[]).await
}

/// `GET` of `path` with `headers`, read to the end. A fill releases its
/// verified body before it commits it, so after an answer from the
/// upstream (`remote`) this waits until no fill is in flight: the test's
/// next request then finds the entry rather than joining the fill.
async fn get_with(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Got {
    let g = send("GET", &gw.url(path), headers).await;
    if g.headers
        .get("x-artifact-source")
        .is_some_and(|v| v == "remote")
    {
        gw.fills_settled().await;
    }
    g
}

/// Serve `body` at `path` with a fixed ETag.
fn put(up: &Upstream, path: &str, body: &[u8], etag: &str) {
    up.put(
        path,
        Resource {
            body: body.to_vec().into(),
            etag: Some(etag.to_owned()),
            ..Default::default()
        },
    );
}

/// Send a raw request line (no client-side normalisation of the target)
/// and return status and body.
async fn raw_get(gw: &Gateway, target: &str) -> Got {
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        gw.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let mut headers = HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    let mut body = buf[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        body = dechunk(&body);
    }
    Got::new(status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 4 + n..];
    }
}

// ---------------------------------------------------------------------------
// Hit and miss.

/// A miss is fetched once (`remote`), then served from the store (`cache`)
/// with the same bytes and the artifact headers of the contract.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_with_artifact_headers() {
    let up = Upstream::start().await;
    let rpm = bytes(100_000, 1);
    put(&up, "/pkgs/foo-1.0.rpm", &rpm, "\"rpm-v1\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let path = "/api/v1/remote/r/pkgs/foo-1.0.rpm";

    for (i, source) in ["remote", "cache"].into_iter().enumerate() {
        let g = get(&gw, path).await;
        assert_eq!(g.status, 200, "request {i}");
        assert_eq!(g.source(), source, "request {i}");
        assert!(g.body() == rpm, "request {i}: body differs");
        assert_eq!(g.h("content-type"), "application/x-rpm");
        assert_eq!(
            g.h("content-disposition"),
            "attachment; filename=\"foo-1.0.rpm\""
        );
        assert_eq!(g.h("x-artifact-size"), "100000");
        assert_eq!(g.h("content-length"), "100000");
        assert_eq!(g.h("accept-ranges"), "bytes");
        assert_eq!(g.h("etag"), "\"rpm-v1\"");
    }
    assert_eq!(up.seen("/pkgs/foo-1.0.rpm").gets, 1);

    put(&up, "/repodata/repomd.xml", b"<repomd/>", "\"x\"");
    let g = get(&gw, "/api/v1/remote/r/repodata/repomd.xml").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.h("content-type"), "application/xml");
    assert_eq!(
        g.h("content-disposition"),
        "attachment; filename=\"repomd.xml\""
    );
    assert_eq!(g.body(), b"<repomd/>");
}

/// A fresh hit is served without calling the adapter: the `plan` call
/// counter does not move across hits, but does for a new path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_hit_never_enters_wasm() {
    let up = Upstream::start().await;
    put(&up, "/a.bin", &bytes(1000, 2), "\"a\"");
    put(&up, "/b.bin", &bytes(1000, 3), "\"b\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let plan = |m: &str| {
        metric(
            m,
            "artgate_plugin_calls_total",
            &["adapter=\"generic\"", "function=\"plan\""],
        )
    };

    assert_eq!(get(&gw, "/api/v1/remote/r/a.bin").await.source(), "remote");
    let after_miss = plan(&gw.metrics().await);
    assert_eq!(after_miss, 1.0);
    for _ in 0..3 {
        let g = get(&gw, "/api/v1/remote/r/a.bin").await;
        assert_eq!(g.source(), "cache");
    }
    assert_eq!(plan(&gw.metrics().await), after_miss);

    assert_eq!(get(&gw, "/api/v1/remote/r/b.bin").await.source(), "remote");
    assert_eq!(plan(&gw.metrics().await), after_miss + 1.0);
}

/// An adapter that declares it accepts every upstream answer (generic) is
/// called once per miss, for `plan`: its `on-response` is never called,
/// and `/plugins` shows the declaration (docker, which reads answers, does
/// not make it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_calls_an_adapter_that_accepts_every_response_once() {
    let up = Upstream::start().await;
    put(&up, "/a.bin", &bytes(1000, 2), "\"a\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let calls = |m: &str, function: &str| {
        metric(
            m,
            "artgate_plugin_calls_total",
            &["adapter=\"generic\"", &format!("function=\"{function}\"")],
        )
    };
    let g = get(&gw, "/api/v1/remote/r/a.bin").await;
    assert_eq!(g.source(), "remote");
    assert_eq!(g.body(), bytes(1000, 2));
    // A miss of a path the upstream lacks takes the same path.
    assert_eq!(get(&gw, "/api/v1/remote/r/none.bin").await.status, 404);
    let m = gw.metrics().await;
    assert_eq!(calls(&m, "plan"), 2.0);
    assert_eq!(calls(&m, "on_response"), 0.0, "on-response is not called");

    let plugins = gw.plugins_json().await;
    let list = plugins["plugins"].as_array().expect("a list");
    let flag = |name: &str| {
        by_source(list, name, "built-in").expect("a built-in")["accepts_every_response"].clone()
    };
    assert_eq!(flag("generic"), true);
    assert_eq!(flag("docker"), false);
}

// ---------------------------------------------------------------------------
// Expiry, revalidation, stale.

/// With `check_mutable_updates`, an expired entry is revalidated with
/// `If-None-Match`: a 304 refreshes it without a download; a changed
/// upstream is downloaded and served after the next expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entry_revalidates_with_if_none_match() {
    let up = Upstream::start().await;
    let p = "/repodata/repomd.xml";
    put(&up, p, b"version one", "\"v1\"");
    let remote = generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['repomd\\.xml$']\nmutable_ttl = \"800ms\"\ncheck_mutable_updates = true",
    );
    let gw = Gateway::start(&remote).await;
    let url = "/api/v1/remote/r/repodata/repomd.xml";

    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert_eq!(g.body(), b"version one");

    tokio::time::sleep(Duration::from_millis(900)).await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert_eq!(g.body(), b"version one");
    let s = up.seen(p);
    assert_eq!((s.gets, s.conditional, s.not_modified), (2, 1, 1));
    assert_eq!(s.gets - s.not_modified, 1, "no second full download");
    assert_eq!(s.last_headers["if-none-match"], "\"v1\"");

    // The 304 refreshed the TTL: the next request does not reach upstream.
    assert_eq!(get(&gw, url).await.source(), "cache");
    assert_eq!(up.seen(p).total, 2);

    up.edit(p, |r| {
        r.body = "version two".into();
        r.etag = Some("\"v2\"".into());
    });
    tokio::time::sleep(Duration::from_millis(900)).await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert_eq!(g.body(), b"version two");
    assert_eq!(g.h("etag"), "\"v2\"");
    let s = up.seen(p);
    assert_eq!((s.gets, s.conditional, s.not_modified), (3, 2, 1));
    assert_eq!(get(&gw, url).await.body(), b"version two");
}

/// Without `check_mutable_updates`, an expired entry is fetched again with
/// a plain, unconditional GET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entry_refetches_without_check_mutable_updates() {
    let up = Upstream::start().await;
    let p = "/index.xml";
    put(&up, p, b"index", "\"i1\"");
    let remote = generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['^index\\.xml$']\nmutable_ttl = \"500ms\"\ncheck_mutable_updates = false",
    );
    let gw = Gateway::start(&remote).await;
    let url = "/api/v1/remote/r/index.xml";

    assert_eq!(get(&gw, url).await.source(), "remote");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert_eq!(g.body(), b"index");
    let s = up.seen(p);
    assert_eq!((s.gets, s.conditional, s.not_modified), (2, 0, 0));
    assert!(!s.last_headers.contains_key("if-none-match"));
    assert!(!s.last_headers.contains_key("if-modified-since"));
}

/// A mutable remote with a 500 ms TTL, for the stale tests.
fn stale_remote(up: &Upstream) -> String {
    generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['\\.xml$']\nmutable_ttl = \"500ms\"",
    )
}

/// An expired entry is served `stale` (same bytes) when the upstream is
/// down, and the stale counter grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_served_when_upstream_down() {
    let up = Upstream::start().await;
    let body = bytes(5000, 4);
    put(&up, "/m.xml", &body, "\"m\"");
    let gw = Gateway::start(&stale_remote(&up)).await;
    let url = "/api/v1/remote/r/m.xml";

    assert_eq!(get(&gw, url).await.source(), "remote");
    let stale = |m: &str| metric(m, "artgate_stale_served_total", &["remote=\"r\""]);
    assert_eq!(stale(&gw.metrics().await), 0.0);

    up.set_down(true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "stale"));
    assert!(g.body() == body, "stale body differs");
    assert_eq!(g.h("x-artifact-size"), "5000");
    assert_eq!(stale(&gw.metrics().await), 1.0);
    assert_eq!(up.seen("/m.xml").gets, 1, "a down upstream sees nothing");
}

/// An expired entry is served `stale` when the upstream answers 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_served_when_upstream_answers_500() {
    let up = Upstream::start().await;
    let body = bytes(5000, 5);
    put(&up, "/m.xml", &body, "\"m\"");
    let gw = Gateway::start(&stale_remote(&up)).await;
    let url = "/api/v1/remote/r/m.xml";

    assert_eq!(get(&gw, url).await.source(), "remote");
    up.edit("/m.xml", |r| r.status = Some(500));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "stale"));
    assert!(g.body() == body, "stale body differs");
    assert_eq!(up.seen("/m.xml").gets, 2, "the 500 came from the upstream");
    let m = gw.metrics().await;
    assert_eq!(
        metric(&m, "artgate_stale_served_total", &["remote=\"r\""]),
        1.0
    );
}

/// With nothing cached, an unreachable upstream gives 502 with a JSON
/// error sentence, and so does an upstream 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_cached_and_upstream_failing_is_502() {
    let up = Upstream::start().await;
    up.put(
        "/broken.bin",
        Resource {
            status: Some(500),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;

    let g = get(&gw, "/api/v1/remote/r/broken.bin").await;
    assert_eq!(g.status, 502);
    g.sentence();

    up.set_down(true);
    let g = get(&gw, "/api/v1/remote/r/never-cached.bin").await;
    assert_eq!(g.status, 502);
    assert_eq!(g.h("content-type"), "application/json");
    g.sentence();
    assert_eq!(up.seen("/never-cached.bin").total, 0);
}

/// A client's `Cache-Control: no-cache` on a fresh mutable entry makes the
/// gateway revalidate (304 → `cache`); with the upstream down it serves
/// `stale`. Without the header the fresh entry is served untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_no_cache_forces_revalidation() {
    let up = Upstream::start().await;
    let p = "/repodata/repomd.xml";
    put(&up, p, b"repomd", "\"r1\"");
    let remote = generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['\\.xml$']\nmutable_ttl = \"10m\"\ncheck_mutable_updates = true",
    );
    let gw = Gateway::start(&remote).await;
    let url = "/api/v1/remote/r/repodata/repomd.xml";
    let no_cache = [("cache-control", "no-cache")];

    assert_eq!(get(&gw, url).await.source(), "remote");
    assert_eq!(get(&gw, url).await.source(), "cache");
    assert_eq!(up.seen(p).total, 1);

    let g = get_with(&gw, url, &no_cache).await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert_eq!(g.body(), b"repomd");
    let s = up.seen(p);
    assert_eq!((s.total, s.conditional, s.not_modified), (2, 1, 1));

    up.set_down(true);
    let g = get_with(&gw, url, &no_cache).await;
    assert_eq!((g.status, g.source()), (200, "stale"));
    assert_eq!(g.body(), b"repomd");
    assert_eq!(up.seen(p).total, 2);
}

// ---------------------------------------------------------------------------
// Negative caching.

/// An upstream 404 is remembered for `negative_ttl`, then asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_cached_for_negative_ttl() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("r", &up.url(), "negative_ttl = \"1s\"")).await;
    let url = "/api/v1/remote/r/missing.bin";

    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (404, "remote"));
    g.sentence();
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (404, "cache"));
    g.sentence();
    assert_eq!(up.seen("/missing.bin").total, 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&gw, url).await.status, 404);
    assert_eq!(up.seen("/missing.bin").total, 2);

    // Once it exists upstream (and the negative entry expired), it is served.
    put(&up, "/missing.bin", b"here now", "\"h\"");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert_eq!(g.body(), b"here now");
}

/// `negative_ttl = "0s"` disables negative caching: every request for a
/// missing path reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_negative_ttl_disables_negative_cache() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("r", &up.url(), "negative_ttl = \"0s\"")).await;
    for i in 1..=3 {
        let g = get(&gw, "/api/v1/remote/r/missing.bin").await;
        assert_eq!(g.status, 404);
        g.sentence();
        assert_eq!(up.seen("/missing.bin").total, i);
    }
}

// ---------------------------------------------------------------------------
// Range and HEAD.

/// Ranges on a cached object: first bytes, open-ended, suffix, and an
/// unsatisfiable range (416 with `bytes */len`); HEAD has GET's headers
/// and no body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_and_head_from_cache() {
    let up = Upstream::start().await;
    let data = bytes(1000, 6);
    put(&up, "/data/blob.bin", &data, "\"blob\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let url = "/api/v1/remote/r/data/blob.bin";
    let full = get(&gw, url).await;
    assert_eq!((full.status, full.source()), (200, "remote"));

    let cases: [(&str, &str, std::ops::Range<usize>); 3] = [
        ("bytes=0-9", "bytes 0-9/1000", 0..10),
        ("bytes=10-", "bytes 10-999/1000", 10..1000),
        ("bytes=-5", "bytes 995-999/1000", 995..1000),
    ];
    for (range, content_range, want) in cases {
        let g = get_with(&gw, url, &[("range", range)]).await;
        assert_eq!(g.status, 206, "{range}");
        assert_eq!(g.source(), "cache", "{range}");
        assert_eq!(g.h("content-range"), content_range, "{range}");
        assert_eq!(g.h("content-length"), want.len().to_string(), "{range}");
        assert!(*g.body() == data[want.clone()], "{range}: wrong bytes");
    }
    let g = get_with(&gw, url, &[("range", "bytes=1000000-")]).await;
    assert_eq!(g.status, 416);
    assert_eq!(g.h("content-range"), "bytes */1000");

    let hit = get(&gw, url).await;
    let head = send("HEAD", &gw.url(url), &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body().is_empty());
    for name in [
        "content-type",
        "content-disposition",
        "content-length",
        "etag",
        "accept-ranges",
        "x-artifact-size",
        "x-artifact-source",
    ] {
        assert_eq!(head.h(name), hit.h(name), "header {name}");
    }
    assert_eq!(head.h("content-length"), "1000");
    assert_eq!(up.seen("/data/blob.bin").total, 1);
}

/// Small hits come from memory (`storage.memory_cache`): the bytes are
/// kept after the first hit, ranges and HEAD are cut from them, and a
/// change to the index (a flush, then new content upstream) is seen at
/// once. With the memory cache off, hits read the file and nothing is
/// kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_hits_come_from_memory_and_follow_the_index() {
    for (memory, kept) in [("", true), ("memory_cache = \"0\"\n", false)] {
        let up = Upstream::start().await;
        let (v1, v2) = (bytes(3000, 7), bytes(2000, 8));
        put(&up, "/m.bin", &v1, "\"v1\"");
        let gw =
            Gateway::start_with_storage_extra(memory, &generic_remote("r", &up.url(), "")).await;
        let url = "/api/v1/remote/r/m.bin";
        let mem = |m: String| metric(&m, "artgate_memory_cache_bytes", &[]);
        assert_eq!(get(&gw, url).await.source(), "remote");
        for _ in 0..3 {
            let g = get(&gw, url).await;
            assert_eq!((g.status, g.source()), (200, "cache"));
            assert!(g.body() == v1, "wrong bytes from a hit");
        }
        assert_eq!(
            mem(gw.metrics().await) >= 3000.0,
            kept,
            "memory_cache {memory:?}"
        );
        let g = get_with(&gw, url, &[("range", "bytes=100-199")]).await;
        assert_eq!((g.status, g.h("content-length")), (206, "100"));
        assert!(*g.body() == v1[100..200], "wrong range bytes");
        let head = send("HEAD", &gw.url(url), &[]).await;
        assert_eq!((head.status, head.h("content-length")), (200, "3000"));
        assert!(head.body().is_empty());

        put(&up, "/m.bin", &v2, "\"v2\"");
        assert_eq!(
            send("PUT", &gw.url("/cache/flush?remote=r"), &[])
                .await
                .status,
            200
        );
        let g = get(&gw, url).await;
        assert_eq!(
            g.source(),
            "remote",
            "a flushed entry was served from memory"
        );
        assert!(g.body() == v2);
        let g = get(&gw, url).await;
        assert_eq!(g.source(), "cache");
        assert!(
            g.body() == v2,
            "a hit after the refill served the old bytes"
        );
        assert_eq!(up.seen("/m.bin").gets, 2);
    }
}

/// A Range request for an uncached object answers the right bytes and the
/// gateway still caches the whole object (one upstream GET in all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_range_request_caches_whole_object() {
    let up = Upstream::start().await;
    let data = bytes(300_000, 7);
    up.put(
        "/big.bin",
        Resource {
            body: data.clone().into(),
            etag: Some("\"big\"".into()),
            chunk: Some(64 * 1024),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let url = "/api/v1/remote/r/big.bin";

    let g = get_with(&gw, url, &[("range", "bytes=100000-100099")]).await;
    assert_eq!(g.status, 206);
    assert_eq!(g.h("content-range"), "bytes 100000-100099/300000");
    assert!(*g.body() == data[100_000..100_100], "wrong range bytes");

    gw.fills_settled().await;
    let g = get(&gw, url).await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert!(g.body() == data, "cached body differs");
    let s = up.seen("/big.bin");
    assert_eq!((s.gets, s.total), (1, 1));
    assert!(
        !s.last_headers.contains_key("range"),
        "the upstream fetch is the whole object"
    );
}

// ---------------------------------------------------------------------------
// Flush.

/// `PUT /cache/flush?remote=a` drops only `a`'s entries, `PUT /cache/flush`
/// drops everything; flushed entries are fetched again. An unknown remote
/// is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_one_remote_then_all() {
    let up = Upstream::start().await;
    put(&up, "/a.bin", b"aaa", "\"a\"");
    put(&up, "/b.bin", b"bbb", "\"b\"");
    let remotes = format!(
        "{}{}",
        generic_remote("a", &up.url(), ""),
        generic_remote("b", &up.url(), "")
    );
    let gw = Gateway::start(&remotes).await;
    let (ua, ub) = ("/api/v1/remote/a/a.bin", "/api/v1/remote/b/b.bin");
    assert_eq!(get(&gw, ua).await.source(), "remote");
    assert_eq!(get(&gw, ub).await.source(), "remote");

    let f = send("PUT", &gw.url("/cache/flush?remote=a"), &[]).await;
    assert_eq!(f.status, 200);
    let v = f.json();
    assert_eq!(v["remote"], "a");
    assert_eq!(v["flushed"], 1);
    let g = get(&gw, ua).await;
    assert_eq!((g.source(), g.body()), ("remote", &b"aaa"[..]));
    assert_eq!(get(&gw, ub).await.source(), "cache");
    assert_eq!((up.seen("/a.bin").gets, up.seen("/b.bin").gets), (2, 1));

    let f = send("PUT", &gw.url("/cache/flush"), &[]).await;
    assert_eq!(f.status, 200);
    let v = f.json();
    assert_eq!(v["remote"], serde_json::Value::Null);
    assert_eq!(v["flushed"], 2);
    assert_eq!(get(&gw, ua).await.source(), "remote");
    assert_eq!(get(&gw, ub).await.source(), "remote");
    assert_eq!((up.seen("/a.bin").gets, up.seen("/b.bin").gets), (3, 2));

    let f = send("PUT", &gw.url("/cache/flush?remote=nope"), &[]).await;
    assert_eq!(f.status, 404);
    assert!(f.sentence().contains("nope"));
}

// ---------------------------------------------------------------------------
// Status codes.

/// A remote that is not configured is a 404 with a JSON error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_remote_is_404() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let g = get(&gw, "/api/v1/remote/nope/x.bin").await;
    assert_eq!(g.status, 404);
    assert!(g.sentence().contains("nope"));
    assert_eq!(up.requests(), 0);
}

/// A path outside the remote's `allow` patterns is a 403 and never reaches
/// the upstream; an allowed path is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_outside_allow_is_403() {
    let up = Upstream::start().await;
    put(&up, "/ok/x.bin", b"ok", "\"ok\"");
    put(&up, "/no/x.bin", b"no", "\"no\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "allow = [\"^ok/\"]")).await;
    let g = get(&gw, "/api/v1/remote/r/ok/x.bin").await;
    assert_eq!((g.status, g.body()), (200, &b"ok"[..]));
    let g = get(&gw, "/api/v1/remote/r/no/x.bin").await;
    assert_eq!(g.status, 403);
    g.sentence();
    assert_eq!(up.seen("/no/x.bin").total, 0);
}

/// PUT and DELETE on a pull-through remote are 400 and reach no upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_pull_through_remote_are_400() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    for method in ["PUT", "DELETE"] {
        let g = send(method, &gw.url("/api/v1/remote/r/x.bin"), &[]).await;
        assert_eq!(g.status, 400, "{method}");
        assert!(g.sentence().contains("/cache/flush"), "{method}");
    }
    assert_eq!(up.requests(), 0);
}

/// A registry URL (`/v2/...`) naming a generic remote is a 400 (the OCI
/// error format, as registry clients expect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_route_on_generic_remote_is_400() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("g", &up.url(), "")).await;
    let g = get(&gw, "/v2/g/x/manifests/y").await;
    assert_eq!(g.status, 400);
    assert!(g.sentence().contains("generic"));
    assert_eq!(up.requests(), 0);
}

/// An upstream slower than `first_byte_timeout` (2 s in the harness) with
/// nothing cached is a 504 (after the one configured retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_is_504() {
    let up = Upstream::start().await;
    up.put(
        "/slow.bin",
        Resource {
            body: "late".into(),
            header_delay: Some(Duration::from_secs(3)),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let g = get(&gw, "/api/v1/remote/r/slow.bin").await;
    assert_eq!(g.status, 504);
    g.sentence();
    assert_eq!(up.seen("/slow.bin").gets, 2, "one attempt and one retry");
}

/// Traversal attempts (`..`, encoded, double-encoded, backslash, NUL) are
/// 400 and never reach the upstream; on `/v2/` in the OCI error format.
/// Sent raw so no client normalises them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_is_400() {
    let up = Upstream::start().await;
    put(&up, "/etc/passwd", b"root:x:0:0", "\"p\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    for target in [
        "/api/v1/remote/r/../etc/passwd",
        "/api/v1/remote/r/a/../../etc/passwd",
        "/api/v1/remote/r/%2e%2e/etc/passwd",
        "/api/v1/remote/r/%2E%2E%2Fetc/passwd",
        "/api/v1/remote/r/%252e%252e/etc/passwd",
        "/api/v1/remote/r/..%5cetc/passwd",
        "/api/v1/remote/r/etc/passwd%00.bin",
    ] {
        let g = raw_get(&gw, target).await;
        assert_eq!(g.status, 400, "{target}");
        assert!(
            !g.sentence().is_empty() && !g.body().windows(4).any(|w| w == b"root"),
            "{target}"
        );
    }
    // On registry paths the same refusals come in the OCI error format
    // that registry clients read; so does an invalid remote name.
    for (target, status, code) in [
        ("/v2/r/../etc/passwd", 400, "NAME_INVALID"),
        ("/v2/r/%2e%2e/etc/passwd", 400, "NAME_INVALID"),
        ("/v2/no!such/x/manifests/y", 404, "NAME_UNKNOWN"),
    ] {
        let g = raw_get(&gw, target).await;
        assert_eq!(g.status, status, "{target}");
        assert_eq!(g.code(), code, "{target}");
    }
    assert_eq!(up.requests(), 0);
    // The same file by its proper name is served (the check above is not
    // vacuous).
    assert_eq!(
        raw_get(&gw, "/api/v1/remote/r/etc/passwd").await.status,
        200
    );
}

// ---------------------------------------------------------------------------
// Admin endpoints.

/// `GET /` lists name, version and the remotes; `/health` is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_health() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let g = get(&gw, "/").await;
    assert_eq!(g.status, 200);
    let v = g.json();
    assert_eq!(v["name"], "artgate");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let remotes = v["remotes"].as_array().unwrap();
    assert_eq!(remotes.len(), 1);
    assert_eq!(remotes[0]["name"], "r");
    assert_eq!(remotes[0]["package"], "generic");
    assert_eq!(remotes[0]["upstream"], up.url());

    let h = get(&gw, "/health").await;
    assert_eq!(h.status, 200);
    assert_eq!(
        h.json(),
        serde_json::json!({"status": "healthy", "adapters": "ready"})
    );
}

/// `GET /config` never shows an upstream password written in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_redacts_password() {
    let up = Upstream::start().await;
    let secret = "s3cr3t-Pa55-xyzzy";
    let gw = Gateway::start(&generic_remote(
        "r",
        &up.url(),
        &format!("username = \"ci-bot\"\npassword = \"{secret}\""),
    ))
    .await;
    let g = get(&gw, "/config").await;
    assert_eq!(g.status, 200);
    let text = String::from_utf8(g.body().to_vec()).unwrap();
    assert!(!text.contains(secret), "secret leaked: {text}");
    let v = g.json();
    let creds = &v["remote"][0]["credentials"];
    assert_eq!(creds["username"], "ci-bot");
    assert_eq!(creds["password"], "***");
}

/// `/metrics` is Prometheus text with per-remote request counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests() {
    let up = Upstream::start().await;
    put(&up, "/x.bin", b"x", "\"x\"");
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    get(&gw, "/api/v1/remote/r/x.bin").await;
    get(&gw, "/api/v1/remote/r/x.bin").await;
    let m = get(&gw, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.h("content-type").starts_with("text/plain"));
    let text = String::from_utf8(m.body().to_vec()).unwrap();
    assert!(text.contains("# TYPE artgate_requests counter"), "{text}");
    let req = |outcome: &str| {
        metric(
            &text,
            "artgate_requests_total",
            &[
                "remote=\"r\"",
                "method=\"GET\"",
                &format!("outcome=\"{outcome}\""),
            ],
        )
    };
    assert_eq!((req("miss"), req("hit")), (1.0, 1.0));
}

/// `/plugins` lists the built-in generic adapter as active with its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_lists_builtin_generic() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let g = get(&gw, "/plugins").await;
    assert_eq!(g.status, 200);
    let v = g.json();
    let generic = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "generic")
        .unwrap_or_else(|| panic!("no generic adapter in {v}"));
    assert_eq!(generic["source"], "built-in");
    assert_eq!(generic["status"], "active");
    let sha = generic["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64, "{sha}");
    assert!(sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
}

// ---------------------------------------------------------------------------
// Upstream failover.

/// With an unreachable first upstream, the second one serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_second_upstream() {
    let up = Upstream::start().await;
    put(&up, "/f.bin", b"from the mirror", "\"f\"");
    let closed = crate::support::free_port();
    let remote = format!(
        "[[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = [\"http://127.0.0.1:{closed}\", \"{}\"]\n",
        up.url()
    );
    let gw = Gateway::start(&remote).await;
    let g = get(&gw, "/api/v1/remote/r/f.bin").await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert_eq!(g.body(), b"from the mirror");
    assert_eq!(up.seen("/f.bin").gets, 1);
}
