//! Faults of the core: coalescing with a streaming tee, truncated upstream
//! bodies, and invalid plugin files at startup. (`kill -9`, hot reload and
//! hostile adapters are in `reliability/`.)

use crate::support::gateway::{Gateway, by_source, generic_remote};
use crate::support::http::{drain_progress, get_header_body};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{KIB, MIB, bytes, eventually, sha256_hex};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// Fifty concurrent misses for one uncached 50 MiB object make exactly one
/// upstream request; while the upstream holds the body after 4 MiB, every
/// client has already been streamed bytes (the tee streams, it does not wait
/// for the download); all fifty bodies match the source, and 49 requests are
/// counted as coalesced waiters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_misses_share_one_streamed_fetch() {
    let up = Upstream::start().await;
    let body = bytes(50 * MIB, 1);
    let want = sha256_hex(&body);
    up.put(
        "/big.bin",
        Resource {
            body: body.into(),
            chunk: Some(256 * KIB),
            hold_after_bytes: Some(4 * MIB),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::new();
    let url = gw.url("/api/v1/remote/r/big.bin");
    let mut tasks = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..50 {
        let p = Arc::new(AtomicU64::new(0));
        progress.push(p.clone());
        let (c, u) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let resp = c.get(u).send().await.expect("request");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-artifact-source"], "remote");
            assert_eq!(resp.headers()["content-length"], (50 * MIB).to_string());
            drain_progress(resp, p).await
        }));
    }
    let progress = &progress;
    eventually(
        "all 50 clients to receive 1 MiB while the upstream holds",
        Duration::from_secs(15),
        || async move {
            progress
                .iter()
                .all(|p| p.load(SeqCst) >= MIB as u64)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        up.bodies_completed(),
        0,
        "the upstream must still be sending"
    );
    assert_eq!(up.seen("/big.bin").gets, 1);
    for p in progress {
        assert!(
            p.load(SeqCst) <= 4 * MIB as u64,
            "more than the upstream sent"
        );
    }
    up.release();
    for t in tasks {
        let r = t.await.expect("client task");
        assert_eq!(r.error, None);
        assert_eq!(r.len, 50 * MIB as u64);
        assert_eq!(r.sha256, want);
    }
    assert_eq!(up.seen("/big.bin").gets, 1);
    assert_eq!(up.bodies_completed(), 1);
    assert_eq!(
        gw.metric("artgate_coalesced_waiters_total", &["remote=\"r\""])
            .await,
        49.0
    );
}

/// Requests that arrive while an identical request's fetch is in progress
/// join it without calling the adapter: a burst of 40 clients on one
/// uncached object costs one `plan`, one upstream GET, and every client
/// gets the whole object. (Each used to plan first; with the adapter's cap
/// on calls in flight a large burst then got 503s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_join_an_identical_fetch_without_planning() {
    let up = Upstream::start().await;
    let body = bytes(4 * MIB, 9);
    let want = sha256_hex(&body);
    up.put(
        "/burst.bin",
        Resource {
            body: body.into(),
            chunk: Some(64 * KIB),
            hold_after_bytes: Some(MIB),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::new();
    let url = gw.url("/api/v1/remote/r/burst.bin");
    let first = {
        let (c, u) = (client.clone(), url.clone());
        let p = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move { drain_progress(c.get(u).send().await.unwrap(), p).await })
    };
    eventually(
        "the first fetch to start",
        Duration::from_secs(10),
        || async { (up.seen("/burst.bin").gets == 1).then_some(()) },
    )
    .await;
    let plans = |m: String| {
        crate::support::metric(
            &m,
            "artgate_plugin_calls_total",
            &["adapter=\"generic\"", "function=\"plan\""],
        )
    };
    assert_eq!(plans(gw.metrics().await), 1.0);
    let burst: Vec<_> = (0..40)
        .map(|_| {
            let (c, u) = (client.clone(), url.clone());
            let p = Arc::new(AtomicU64::new(0));
            tokio::spawn(async move {
                let r = c.get(u).send().await.unwrap();
                assert_eq!(r.status(), 200);
                drain_progress(r, p).await
            })
        })
        .collect();
    eventually(
        "the burst to join the fill",
        Duration::from_secs(10),
        || async {
            let m = gw.metrics().await;
            (crate::support::metric(&m, "artgate_coalesced_waiters_total", &["remote=\"r\""])
                >= 40.0)
                .then_some(())
        },
    )
    .await;
    up.release();
    for t in std::iter::once(first).chain(burst) {
        let r = t.await.expect("client task");
        assert_eq!(r.error, None);
        assert_eq!(r.sha256, want);
    }
    assert_eq!(
        plans(gw.metrics().await),
        1.0,
        "a waiter called the adapter"
    );
    assert_eq!(up.seen("/burst.bin").gets, 1);
}

/// A client that disconnects mid-body — the one whose request started the
/// fetch — does not cancel the fill: the other waiters get the whole object,
/// the upstream is asked once, and the object is cached afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_leader_does_not_cancel_the_fill() {
    let up = Upstream::start().await;
    let body = bytes(8 * MIB, 2);
    let want = sha256_hex(&body);
    up.put(
        "/o.bin",
        Resource {
            body: body.into(),
            chunk: Some(64 * KIB),
            hold_after_bytes: Some(2 * MIB),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let url = gw.url("/api/v1/remote/r/o.bin");
    let client = reqwest::Client::new();
    let leader = client.get(&url).send().await.expect("leader request");
    assert_eq!(leader.status(), 200);
    let lp = Arc::new(AtomicU64::new(0));
    let leader = tokio::spawn(drain_progress(leader, lp.clone()));
    let mut waiters = Vec::new();
    let mut progress = vec![lp];
    for _ in 0..3 {
        let p = Arc::new(AtomicU64::new(0));
        progress.push(p.clone());
        let resp = client.get(&url).send().await.expect("waiter request");
        assert_eq!(resp.status(), 200);
        waiters.push(tokio::spawn(drain_progress(resp, p)));
    }
    let progress = &progress;
    eventually(
        "every client to receive bytes",
        Duration::from_secs(10),
        || async move { progress.iter().all(|p| p.load(SeqCst) > 0).then_some(()) },
    )
    .await;
    // The leader's client goes away; the gateway drops its body (and counts
    // the bytes it sent) while the upstream is still held.
    leader.abort();
    let _ = leader.await;
    let gw_ref = &gw;
    eventually(
        "the gateway to notice the disconnected client",
        Duration::from_secs(10),
        || async move {
            (gw_ref
                .metric("artgate_served_bytes_total", &["remote=\"r\""])
                .await
                > 0.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(up.bodies_completed(), 0);
    up.release();
    for w in waiters {
        let r = w.await.expect("waiter task");
        assert_eq!(r.error, None);
        assert_eq!((r.len, r.sha256.as_str()), (8 * MIB as u64, want.as_str()));
    }
    assert_eq!(up.seen("/o.bin").gets, 1);
    assert_eq!(up.bodies_completed(), 1);
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let (status, source, again) = get_header_body(&url, "x-artifact-source").await;
    assert_eq!((status, source.as_str()), (200, "cache"));
    assert_eq!(sha256_hex(&again), want);
    assert_eq!(up.seen("/o.bin").gets, 1);
}

/// An upstream body that breaks off before its Content-Length (after one
/// byte, in the middle, one byte short) reaches the client
/// as an aborted transfer — a read error or a 502, never a clean end with
/// fewer bytes — and nothing is cached: the next request goes upstream
/// again and gets the whole object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_upstream_body_aborts_the_client_and_caches_nothing() {
    let up = Upstream::start().await;
    let body = bytes(MIB, 3);
    let want = sha256_hex(&body);
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::new();
    for (i, cut) in [1, 600_000, MIB - 1].into_iter().enumerate() {
        let path = format!("/t{i}.bin");
        up.put(
            &path,
            Resource {
                body: body.clone().into(),
                chunk: Some(64 * KIB),
                chunk_delay: Some(Duration::from_millis(2)),
                truncate_at: Some(cut),
                ..Default::default()
            },
        );
        let url = gw.url(&format!("/api/v1/remote/r{path}"));
        let resp = client.get(&url).send().await.expect("request");
        match resp.status().as_u16() {
            200 => {
                assert_eq!(resp.headers()["content-length"], MIB.to_string());
                let r = drain_progress(resp, Arc::new(AtomicU64::new(0))).await;
                assert!(
                    r.error.is_some(),
                    "cut at {cut}: the body ended cleanly after {} bytes",
                    r.len
                );
                assert!(r.len <= cut as u64, "cut at {cut}: got {} bytes", r.len);
            }
            502 => {}
            s => panic!("cut at {cut}: unexpected status {s}"),
        }
        assert_eq!(up.seen(&path).gets, 1, "cut at {cut}: retried a body");
        up.edit(&path, |r| r.truncate_at = None);
        let (status, source, again) = get_header_body(&url, "x-artifact-source").await;
        assert_eq!((status, source.as_str()), (200, "remote"), "cut at {cut}");
        assert_eq!(sha256_hex(&again), want, "cut at {cut}");
        assert_eq!(up.seen(&path).gets, 2, "cut at {cut}: something was cached");
    }
}

/// A garbage `.wasm`, a core module (not a component) and a component of
/// another world in the plugin dir at startup do not stop the gateway: `/plugins` lists both as `failed`
/// with their sha256 and an error saying what is wrong, and the built-ins
/// serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_plugin_files_at_startup_are_reported_and_builtins_serve() {
    let up = Upstream::start().await;
    up.put_body("/x.txt", "x");
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let garbage = b"\x7fELF garbage, not wasm".to_vec();
    let core = b"\0asm\x01\0\0\0".to_vec();
    // A valid component of another world: it exports nothing.
    let empty = b"\0asm\x0d\0\x01\0".to_vec();
    std::fs::write(plugins.join("garbage.wasm"), &garbage).unwrap();
    std::fs::write(plugins.join("core.wasm"), &core).unwrap();
    std::fs::write(plugins.join("empty.wasm"), &empty).unwrap();
    let gw = Gateway::start_in(dir, &generic_remote("r", &up.url(), "")).await;

    let list = gw.plugin_list().await;
    for (name, bytes, needle) in [
        ("garbage", &garbage, "not a WebAssembly component"),
        ("core", &core, "core wasm module, not a component"),
        (
            "empty",
            &empty,
            "does not export artgate:adapter/handler@0.1.0 (it exports nothing)",
        ),
    ] {
        let src = plugins.join(format!("{name}.wasm")).display().to_string();
        let p = by_source(&list, name, &src).unwrap_or_else(|| panic!("{name} missing: {list:?}"));
        assert_eq!(p["status"], "failed", "{p:#}");
        assert_eq!(p["version"], Value::Null, "{p:#}");
        assert_eq!(p["sha256"], sha256_hex(bytes), "{p:#}");
        let err = p["last_error"].as_str().unwrap_or_default();
        assert!(err.contains(needle), "{name}: {err}");
    }
    assert_eq!(
        by_source(&list, "generic", "built-in").expect("generic")["status"],
        "active"
    );
    let (status, source, body) =
        get_header_body(&gw.url("/api/v1/remote/r/x.txt"), "x-artifact-source").await;
    assert_eq!(
        (status, source.as_str(), body.as_slice()),
        (200, "remote", &b"x"[..])
    );
}
