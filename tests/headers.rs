//! The representation headers clients rely on (issue 13 item 4):
//! `X-Artifact-Source: stale` for as long as a stale copy stands in for
//! the upstream, and `Content-Encoding` stored and replayed.

use crate::support::gateway::{Gateway, generic_remote};
use crate::support::http::{Got, send_with};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{bytes, metric};
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn send(method: &str, url: &str, headers: &[(&str, &str)]) -> Got {
    send_with(&client(), method.parse().unwrap(), url, headers).await
}

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
    assert!(first.body == body, "stale body differs");
    for i in 0..3 {
        let g = send("GET", &url, &[]).await;
        assert_eq!((g.status, g.source()), (200, "stale"), "answer {i} after");
        assert!(g.body == body, "answer {i}: body differs");
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
    assert!(g.body == body);
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
    assert_eq!(g.body, b"index one");
    assert_eq!(up.seen("/i.xml").total, 2, "served from the stored copy");

    up.put_body("/i.xml", "index two");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let g = send("GET", &gw.url(path), &[]).await;
    assert_eq!(
        (g.source(), g.body.as_slice()),
        ("remote", &b"index two"[..])
    );
    let g = send("GET", &gw.url(path), &[]).await;
    assert_eq!(
        (g.source(), g.body.as_slice()),
        ("cache", &b"index two"[..])
    );
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
            let g = send("GET", &url, &[]).await;
            let what = format!("{path} from {source} (no length: {no_length})");
            assert_eq!((g.status, g.source()), (200, source), "{what}");
            assert_eq!(g.h("content-encoding"), "gzip", "{what}");
            assert_eq!(g.h("content-language"), "en", "{what}");
            assert_eq!(g.h("content-type"), "application/json", "{what}");
            assert!(g.body == gz, "{what}: not the bytes the upstream sent");
            assert!(gunzip(&g.body) == plain, "{what}: does not decode");
        }
        let head = send("HEAD", &url, &[]).await;
        assert_eq!(head.h("content-encoding"), "gzip");
        let part = send("GET", &url, &[("range", "bytes=0-9")]).await;
        assert_eq!((part.status, part.h("content-encoding")), (206, "gzip"));
        assert!(part.body == gz[..10], "a range of the encoded bytes");
        assert_eq!(up.seen(path).gets, 1);
    }
    let dir = gw.stop().await;
    let gw = Gateway::start_in(dir, &remote).await;
    let g = send("GET", &gw.url("/api/v1/remote/r/data/a.json"), &[]).await;
    assert_eq!((g.source(), g.h("content-encoding")), ("cache", "gzip"));
    assert!(gunzip(&g.body) == plain);
}
