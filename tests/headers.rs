//! The representation headers clients rely on (issue 13 item 4):
//! `X-Artifact-Source: stale` for as long as a stale copy stands in for
//! the upstream, `X-Artifact-Size` before the body when the size is known,
//! `Content-Encoding` stored and replayed, and `HEAD` on a miss answered
//! from an upstream `HEAD` instead of a download.

use crate::support::gateway::{Gateway, generic_remote, install_adapter};
use crate::support::http::{client, drain, send};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{bytes, metric, sha256_hex};
use std::sync::Arc;
use std::time::Duration;

/// Requests of `remote` counted with `outcome` (any method).
fn outcomes(metrics: &str, remote: &str, outcome: &str) -> f64 {
    metric(
        metrics,
        "artgate_requests_total",
        &[
            &format!("remote=\"{remote}\""),
            &format!("outcome=\"{outcome}\""),
        ],
    )
}

/// Once the upstream fails and the expired copy is served stale, every
/// later answer from that copy (GET and HEAD, inside its refreshed TTL)
/// still says `stale`, and counts as stale, until the upstream confirms
/// it (a 304); from then on it says `cache`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_says_stale_until_the_upstream_confirms_it() {
    let up = Upstream::start().await;
    let body = bytes(5000, 31);
    up.put(
        "/m.xml",
        Resource {
            body: body.clone().into(),
            etag: Some("\"m1\"".into()),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['\\.xml$']\nmutable_ttl = \"1s\"\ncheck_mutable_updates = true",
    ))
    .await;
    let url = gw.url("/api/v1/remote/r/m.xml");
    assert_eq!(send("GET", &url, &[]).await.source(), "remote");

    up.set_down(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let first = send("GET", &url, &[]).await;
    assert_eq!((first.status, first.source()), (200, "stale"));
    assert!(first.body() == body, "stale body differs");
    for i in 0..3 {
        let g = send("GET", &url, &[]).await;
        assert_eq!((g.status, g.source()), (200, "stale"), "answer {i} after");
        assert!(g.body() == body, "answer {i}: body differs");
        assert_eq!(g.h("x-artifact-size"), "5000");
    }
    let head = send("HEAD", &url, &[]).await;
    assert_eq!((head.status, head.source()), (200, "stale"));
    let m = gw.metrics().await;
    assert_eq!(outcomes(&m, "r", "stale"), 5.0, "{m}");
    assert_eq!(
        metric(&m, "artgate_stale_served_total", &["remote=\"r\""]),
        1.0,
        "one upstream failure, one stale fallback"
    );
    assert_eq!(up.seen("/m.xml").total, 1, "a down upstream sees nothing");

    // The upstream is back: the next revalidation (304) clears the mark.
    up.set_down(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let g = send("GET", &url, &[]).await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert!(g.body() == body);
    let s = up.seen("/m.xml");
    assert_eq!((s.conditional, s.not_modified), (1, 1));
    for i in 0..2 {
        let g = send("GET", &url, &[]).await;
        assert_eq!(
            (g.status, g.source()),
            (200, "cache"),
            "hit {i} after the 304"
        );
    }
    assert_eq!(up.seen("/m.xml").total, 2);
}

/// The stale mark is kept in the index: it survives a restart, and a
/// refetch of changed content clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stale_mark_survives_a_restart_and_a_refetch_clears_it() {
    let up = Upstream::start().await;
    up.put_body("/i.xml", "index one");
    let remote = generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['\\.xml$']\nmutable_ttl = \"2s\"",
    );
    let gw = Gateway::start(&remote).await;
    let path = "/api/v1/remote/r/i.xml";
    assert_eq!(send("GET", &gw.url(path), &[]).await.source(), "remote");
    up.edit("/i.xml", |r| r.status = Some(503));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(send("GET", &gw.url(path), &[]).await.source(), "stale");

    let dir = gw.stop().await;
    let gw = Gateway::start_in(dir, &remote).await;
    let g = send("GET", &gw.url(path), &[]).await;
    assert_eq!((g.status, g.source()), (200, "stale"), "after a restart");
    assert_eq!(g.body(), b"index one");
    assert_eq!(up.seen("/i.xml").total, 2, "served from the stored copy");

    up.put_body("/i.xml", "index two");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let g = send("GET", &gw.url(path), &[]).await;
    assert_eq!((g.source(), g.body()), ("remote", &b"index two"[..]));
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let g = send("GET", &gw.url(path), &[]).await;
    assert_eq!((g.source(), g.body()), ("cache", &b"index two"[..]));
}

/// `s`, gzip-compressed.
fn gzipped(s: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(s).unwrap();
    enc.finish().unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("the body is gzip");
    out
}

/// An upstream that gzips a file unasked (artgate sends no
/// `Accept-Encoding`) and labels it: the bytes are stored as sent and every
/// answer — the miss, hits, HEAD, a range, after a restart — carries
/// `Content-Encoding: gzip` (and `Content-Language`), so a client can
/// decode what it gets. With and without an upstream `Content-Length`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_encoding_from_the_upstream_is_stored_and_replayed() {
    let plain = bytes(200_000, 32);
    let gz = gzipped(&plain);
    let up = Upstream::start().await;
    for (path, no_length) in [("/data/a.json", false), ("/data/b.json", true)] {
        up.put(
            path,
            Resource {
                body: gz.clone().into(),
                content_type: Some("application/json".into()),
                headers: vec![
                    ("content-encoding".into(), "gzip".into()),
                    ("content-language".into(), "en".into()),
                ],
                no_length,
                ..Default::default()
            },
        );
    }
    let remote = generic_remote("r", &up.url(), "");
    let gw = Gateway::start(&remote).await;
    for (path, no_length) in [("/data/a.json", false), ("/data/b.json", true)] {
        let url = gw.url(&format!("/api/v1/remote/r{path}"));
        for source in ["remote", "cache"] {
            // The body is released before its commit: wait for the commit.
            gw.fills_settled().await;
            let g = send("GET", &url, &[]).await;
            let what = format!("{path} from {source} (no length: {no_length})");
            assert_eq!((g.status, g.source()), (200, source), "{what}");
            assert_eq!(g.h("content-encoding"), "gzip", "{what}");
            assert_eq!(g.h("content-language"), "en", "{what}");
            assert_eq!(g.h("content-type"), "application/json", "{what}");
            assert!(g.body() == gz, "{what}: not the bytes the upstream sent");
            assert!(gunzip(g.body()) == plain, "{what}: does not decode");
        }
        let head = send("HEAD", &url, &[]).await;
        assert_eq!(head.h("content-encoding"), "gzip");
        let part = send("GET", &url, &[("range", "bytes=0-9")]).await;
        assert_eq!((part.status, part.h("content-encoding")), (206, "gzip"));
        assert!(*part.body() == gz[..10], "a range of the encoded bytes");
        assert_eq!(up.seen(path).gets, 1);
    }
    let dir = gw.stop().await;
    let gw = Gateway::start_in(dir, &remote).await;
    let g = send("GET", &gw.url("/api/v1/remote/r/data/a.json"), &[]).await;
    assert_eq!((g.source(), g.h("content-encoding")), ("cache", "gzip"));
    assert!(gunzip(g.body()) == plain);
}

/// A gateway with `hostile.wasm` and a remote `sized` whose adapter names
/// the body size `size`.
async fn sized_gateway(up: &Upstream, size: &str) -> Gateway {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    install_adapter(dir.path(), "hostile.wasm");
    let remote = format!(
        "[[remote]]\nname = \"sized\"\npackage = \"hostile\"\nupstream = {:?}\n[remote.options]\nmode = \"sized\"\nsize = {size:?}\n",
        up.url()
    );
    Gateway::start_in(dir, &remote).await
}

/// An upstream that streams without `Content-Length`: the size the adapter
/// names reaches the client before the body (`X-Artifact-Size` and
/// `Content-Length`) on the miss and on a `HEAD`; a body of another size is
/// cut off and not stored; a size that is not a number is a clear 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_size_is_sent_before_an_unframed_body() {
    let up = Upstream::start().await;
    let body = bytes(300_000, 35);
    for (path, hold) in [("/a.bin", None), ("/b.bin", Some(100_000))] {
        up.put(
            path,
            Resource {
                body: body.clone().into(),
                no_length: true,
                chunk: Some(16 * 1024),
                hold_after_bytes: hold,
                ..Default::default()
            },
        );
    }
    let gw = sized_gateway(&up, "300000").await;
    let head = send("HEAD", &gw.url("/api/v1/remote/sized/a.bin"), &[]).await;
    assert_eq!((head.status, head.h("x-artifact-size")), (200, "300000"));
    assert_eq!(head.h("content-length"), "300000");
    let r = client()
        .get(gw.url("/api/v1/remote/sized/a.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-artifact-source"], "remote");
    assert_eq!(r.headers()["x-artifact-size"], "300000");
    assert_eq!(r.headers()["content-length"], "300000");
    let got = drain(r).await;
    assert_eq!(got.error, None);
    assert_eq!(got.sha256, sha256_hex(&body));
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let g = send("GET", &gw.url("/api/v1/remote/sized/a.bin"), &[]).await;
    assert_eq!((g.source(), g.h("x-artifact-size")), ("cache", "300000"));
    drop(gw);

    // The adapter is wrong: the transfer is cut, nothing is stored. The
    // upstream holds the body after its first bytes until the client has
    // the head, so the cut comes after the head.
    let gw = sized_gateway(&up, "200000").await;
    let url = gw.url("/api/v1/remote/sized/b.bin");
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.headers()["x-artifact-size"], "200000");
    up.release();
    let got = drain(r).await;
    assert!(
        got.error.is_some(),
        "a body longer than named ended cleanly"
    );
    // Unheld, the fill may fail before or after the first byte reaches
    // this client: a 502 or a cut body, never a stored one.
    let again = client().get(&url).send().await.unwrap();
    if again.status() == 502 {
        let msg = again.text().await.unwrap();
        assert!(msg.contains("more bytes"), "{msg}");
    } else {
        assert_eq!(again.headers()["x-artifact-source"], "remote");
        assert!(
            drain(again).await.error.is_some(),
            "a cut body ended cleanly"
        );
    }
    assert_eq!(up.seen("/b.bin").gets, 2, "the wrong body was stored");
    drop(gw);

    let gw = sized_gateway(&up, "lots").await;
    let g = send("GET", &gw.url("/api/v1/remote/sized/a.bin"), &[]).await;
    assert_eq!(g.status, 502);
    let msg = g.json()["error"].as_str().unwrap().to_owned();
    assert!(msg.contains("x-artifact-size"), "{msg}");
}

/// A fill that fails after its headers but before a single byte could be
/// released to a client (the upstream's first chunk already overruns the
/// size the adapter named) answers that client with the failure's status
/// and reason, not with a 200 cut short or a connection closed without an
/// answer. (Once bytes were released, a failure can only cut the body.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_that_fails_before_its_first_byte_answers_with_a_status() {
    let up = Upstream::start().await;
    up.put(
        "/c.bin",
        Resource {
            body: bytes(50_000, 36).into(),
            no_length: true,
            chunk: Some(16 * 1024),
            ..Default::default()
        },
    );
    let gw = sized_gateway(&up, "1000").await;
    let g = send("GET", &gw.url("/api/v1/remote/sized/c.bin"), &[]).await;
    assert_eq!(g.status, 502);
    let msg = g.json()["error"].as_str().unwrap().to_owned();
    assert!(msg.contains("more bytes than the announced size"), "{msg}");
    assert_eq!(up.seen("/c.bin").gets, 1);
}

/// A `HEAD` for an object nobody fetched yet is answered from an upstream
/// `HEAD`: the size, type and validators arrive, the body is neither
/// downloaded nor stored. A `GET` then fetches it once; `HEAD`s after that
/// are hits. A missing object gives 404 from the upstream `HEAD` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_on_a_miss_asks_the_upstream_head_and_stores_nothing() {
    let up = Upstream::start().await;
    let big = bytes(4 << 20, 33);
    up.put(
        "/iso/big.iso",
        Resource {
            body: big.clone().into(),
            etag: Some("\"big\"".into()),
            last_modified: Some("Tue, 01 Dec 2026 10:00:00 GMT".into()),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let url = gw.url("/api/v1/remote/r/iso/big.iso");

    let head = send("HEAD", &url, &[]).await;
    assert_eq!((head.status, head.source()), (200, "remote"));
    assert!(head.body().is_empty());
    assert_eq!(head.h("content-length"), (4 << 20).to_string());
    assert_eq!(head.h("x-artifact-size"), (4 << 20).to_string());
    assert_eq!(head.h("etag"), "\"big\"");
    assert_eq!(head.h("last-modified"), "Tue, 01 Dec 2026 10:00:00 GMT");
    assert_eq!(head.h("content-type"), "application/x-iso9660-image");
    assert_eq!(
        head.h("content-disposition"),
        "attachment; filename=\"big.iso\""
    );
    let s = up.seen("/iso/big.iso");
    assert_eq!((s.heads, s.gets), (1, 0), "the HEAD downloaded the object");
    assert!(up.bodies_completed() == 0, "a body was sent upstream");
    let m = gw.metrics().await;
    assert_eq!(metric(&m, "artgate_store_bytes", &[]), 0.0, "{m}");

    // A HEAD does not make it cached: the GET is a miss, then HEAD hits.
    let g = send("GET", &url, &[]).await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert!(g.body() == big);
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let head = send("HEAD", &url, &[]).await;
    assert_eq!((head.status, head.source()), (200, "cache"));
    assert_eq!(head.h("x-artifact-size"), (4 << 20).to_string());
    let s = up.seen("/iso/big.iso");
    assert_eq!((s.heads, s.gets), (1, 1));

    let missing = send("HEAD", &gw.url("/api/v1/remote/r/iso/none.iso"), &[]).await;
    assert_eq!(missing.status, 404);
    let s = up.seen("/iso/none.iso");
    assert_eq!((s.heads, s.gets), (1, 0));
}

/// An upstream whose `HEAD` answer says nothing about `GET` (405 here; a
/// URL signed for `GET` gives 403) does not fail the client's `HEAD`: the
/// object is fetched as for a `GET`, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_on_a_miss_falls_back_to_get_when_the_upstream_refuses_head() {
    let up = Upstream::start().await;
    let body = bytes(10_000, 34);
    up.put(
        "/f.bin",
        Resource {
            body: body.clone().into(),
            head_status: Some(405),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let url = gw.url("/api/v1/remote/r/f.bin");
    let head = send("HEAD", &url, &[]).await;
    assert_eq!((head.status, head.h("content-length")), (200, "10000"));
    assert_eq!(head.h("x-artifact-size"), "10000");
    let s = up.seen("/f.bin");
    assert_eq!((s.heads, s.gets), (1, 1));
    // The GET shares that fetch (or, once it is stored, hits): one download.
    let g = send("GET", &url, &[]).await;
    assert_eq!(g.status, 200);
    assert!(g.body() == body, "wrong bytes after a HEAD fallback");
    assert_eq!(up.seen("/f.bin").gets, 1);
}
