//! Faults of the core: coalescing with a streaming tee, truncated upstream
//! bodies, `kill -9` during a fill, hot reload of adapters, hostile adapters
//! and invalid plugin files.

use crate::reliability::harness::{DAMAGE, KIB, MIB, Proc, drain_progress, fsck, sha256_hex};
use crate::support::gateway::{Gateway, adapters_dir, generic_remote, shared_plugin_cache};
use crate::support::mirror::metric;
use crate::support::upstream::{Resource, Upstream};
use crate::support::{bytes, eventually};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// `GET /plugins` → the `plugins` array.
async fn plugin_list(gw: &Gateway) -> Vec<Value> {
    let text = reqwest::get(gw.url("/plugins"))
        .await
        .expect("GET /plugins")
        .text()
        .await
        .expect("plugins body");
    let v: Value = serde_json::from_str(&text).expect("plugins JSON");
    v["plugins"].as_array().expect("plugins array").clone()
}

/// The entry of `/plugins` whose source is `source` (`built-in` or a path).
fn by_source<'a>(list: &'a [Value], name: &str, source: &str) -> Option<&'a Value> {
    list.iter()
        .find(|p| p["name"] == name && p["source"] == source)
}

/// GET `url`: status, one header (or ""), body.
async fn get(client: &reqwest::Client, url: &str, header: &str) -> (u16, String, Vec<u8>) {
    let r = client.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    let h = r
        .headers()
        .get(header)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.bytes().await.expect("body").to_vec();
    (status, h, body)
}

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
        metric(&gw, "artgate_coalesced_waiters_total", &["remote=\"r\""]).await,
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
            (metric(gw_ref, "artgate_served_bytes_total", &["remote=\"r\""]).await > 0.0)
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
    let (status, source, again) = get(&client, &url, "x-artifact-source").await;
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
        let (status, source, again) = get(&client, &url, "x-artifact-source").await;
        assert_eq!((status, source.as_str()), (200, "remote"), "cut at {cut}");
        assert_eq!(sha256_hex(&again), want, "cut at {cut}");
        assert_eq!(up.seen(&path).gets, 2, "cut at {cut}: something was cached");
    }
}

/// A config file for the child process in `dir`, one generic remote `r`.
fn child_config(dir: &Path, up: &Upstream) -> PathBuf {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n[storage]\ndir = {:?}\n[plugins]\ndir = {:?}\ncache_dir = {:?}\n[upstream]\nfirst_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"30s\"\n\n{}",
        dir.join("data"),
        dir.join("plugins"),
        shared_plugin_cache(),
        generic_remote("r", &up.url(), "")
    );
    let path = dir.join("artgate.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Bytes in the spool files under `data/tmp`, if any.
fn spooled(dir: &Path) -> Option<u64> {
    let rd = std::fs::read_dir(dir.join("data/tmp")).ok()?;
    let sizes: Vec<u64> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("spool-"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .collect();
    sizes.into_iter().max()
}

/// `kill -9` of the real binary during a fill — after 128 KiB, in the
/// middle, one byte before the end (the upstream holds there, so the point
/// is exact), and at an arbitrary point of a fast fill — never leaves a
/// partial object: the client sees an aborted transfer, `fsck --verify`
/// finds no damage (only crash leftovers) and no entry, the restarted
/// gateway serves the complete object (fetched again), and after a clean
/// shutdown `fsck` reports a clean store with the one entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_during_a_fill_never_leaves_a_partial_object() {
    let size = 8 * MIB;
    let body = bytes(size, 4);
    let want = sha256_hex(&body);
    let points: [(&str, Option<usize>); 4] = [
        ("early", Some(128 * KIB)),
        ("middle", Some(size / 2)),
        ("one byte before the end", Some(size - 1)),
        ("anywhere in a fast fill", None),
    ];
    for (label, hold) in points {
        let up = Upstream::start().await;
        up.put(
            "/obj.bin",
            Resource {
                body: body.clone().into(),
                chunk: Some(64 * KIB),
                hold_after_bytes: hold,
                ..Default::default()
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = child_config(dir.path(), &up);
        let mut gw = Proc::start(&cfg).await;
        let client = reqwest::Client::new();
        let url = gw.url("/api/v1/remote/r/obj.bin");
        let resp = client.get(&url).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{label}");
        let progress = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(drain_progress(resp, progress.clone()));
        if let Some(h) = hold {
            let (d, p) = (dir.path(), &progress);
            eventually(
                &format!("{label}: the gateway to spool {h} bytes"),
                Duration::from_secs(10),
                || async move {
                    let spooled_all = spooled(d) == Some(h as u64);
                    let streamed = h < MIB || p.load(SeqCst) > 0;
                    (spooled_all && streamed).then_some(())
                },
            )
            .await;
        }
        gw.kill9();
        let r = reader.await.expect("reader task");
        if hold.is_some() {
            assert!(
                r.error.is_some(),
                "{label}: clean end after {} bytes",
                r.len
            );
            assert!(r.len < size as u64, "{label}");
        } else {
            assert!(
                r.error.is_some() || (r.len == size as u64 && r.sha256 == want),
                "{label}: clean end with a wrong body ({} bytes)",
                r.len
            );
        }

        let (code, report) = fsck(&cfg, &["--verify"]).await;
        for k in DAMAGE {
            assert_eq!(report[k], 0, "{label}: fsck after kill -9: {report:#}");
        }
        if hold.is_some() {
            assert_eq!(report["entries"], 0, "{label}: {report:#}");
            assert_eq!(report["orphan_blobs"], 0, "{label}: {report:#}");
        }
        // Leftovers (spools, orphans) are harmless: reported, exit 0.
        let leftovers =
            report["spools"].as_u64().unwrap() + report["orphan_blobs"].as_u64().unwrap();
        assert_eq!(code, 0, "{label}: exit {code}: {report:#}");
        let verdict = if leftovers == 0 { "clean" } else { "leftovers" };
        assert_eq!(report["verdict"], verdict, "{label}: {report:#}");

        up.edit("/obj.bin", |r| r.hold_after_bytes = None);
        let mut gw = Proc::start(&cfg).await;
        let url = gw.url("/api/v1/remote/r/obj.bin");
        let client = reqwest::Client::new();
        let (status, source, got) = get(&client, &url, "x-artifact-source").await;
        assert_eq!(status, 200, "{label}");
        assert_eq!(
            (got.len(), sha256_hex(&got)),
            (size, want.clone()),
            "{label}"
        );
        if hold.is_some() {
            assert_eq!(source, "remote", "{label}");
            assert_eq!(up.seen("/obj.bin").gets, 2, "{label}");
        }
        let (status, source, got) = get(&client, &url, "x-artifact-source").await;
        assert_eq!((status, source.as_str()), (200, "cache"), "{label}");
        assert_eq!(sha256_hex(&got), want, "{label}");
        drop(client);
        gw.terminate_within(Duration::from_secs(10)).await;

        let (code, report) = fsck(&cfg, &["--verify"]).await;
        assert_eq!(code, 0, "{label}: fsck after restart: {report:#}");
        for k in DAMAGE.iter().chain(&["spools", "orphan_blobs"]) {
            assert_eq!(report[*k], 0, "{label}: {report:#}");
        }
        assert_eq!(report["entries"], 1, "{label}: {report:#}");
        up.release();
    }
}

/// Copy `generic-variant.wasm` into the plugin dir as `generic.wasm` (temp
/// name, then rename) and wait until it replaces the built-in.
async fn install_variant(gw: &Gateway) -> PathBuf {
    let dst = gw.plugin_dir().join("generic.wasm");
    let tmp = gw.plugin_dir().join(".generic.wasm.part");
    std::fs::copy(adapters_dir().join("generic-variant.wasm"), &tmp).expect("copy variant");
    std::fs::rename(&tmp, &dst).expect("rename");
    let src = dst.display().to_string();
    let src = &src;
    eventually(
        "the variant to replace the built-in generic adapter",
        Duration::from_secs(15),
        || async move {
            let list = plugin_list(gw).await;
            let d = by_source(&list, "generic", src)?;
            let b = by_source(&list, "generic", "built-in")?;
            (d["status"] == "active" && d["version"] == "9.9.9-test" && b["status"] == "replaced")
                .then_some(())
        },
    )
    .await;
    dst
}

/// Hot reload: a `generic.wasm` dropped into the plugin dir replaces the
/// built-in without a restart (`/plugins` shows it active and the built-in
/// `replaced`), new misses get the new version's behaviour, and an entry
/// cached under the old version is still served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_replaces_the_builtin_and_cached_entries_keep_serving() {
    let up = Upstream::start().await;
    up.put_body("/a.bin", bytes(10_000, 5));
    up.put_body("/b.bin", bytes(10_000, 6));
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::new();
    let list = plugin_list(&gw).await;
    let builtin = by_source(&list, "generic", "built-in").expect("built-in generic");
    assert_eq!(builtin["status"], "active");
    assert_ne!(builtin["version"], "9.9.9-test");

    let a = gw.url("/api/v1/remote/r/a.bin");
    let (status, variant, body) = get(&client, &a, "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, ""));
    assert_eq!(body, bytes(10_000, 5));

    install_variant(&gw).await;
    let (status, variant, body) = get(
        &client,
        &gw.url("/api/v1/remote/r/b.bin"),
        "x-adapter-variant",
    )
    .await;
    assert_eq!((status, variant.as_str()), (200, "v2"));
    assert_eq!(body, bytes(10_000, 6));

    let r = client.get(&a).send().await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    assert!(r.headers().get("x-adapter-variant").is_none());
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes(10_000, 5));
    assert_eq!(up.seen("/a.bin").gets, 1);
}

/// Overwrite the installed variant in place with `bad` and check that it is
/// rejected (`failed-previous-serving`, an error in `/plugins`) while the
/// previous version keeps serving new misses; returns the error text.
async fn corrupt_variant_keeps_previous_serving(bad: &[u8]) -> String {
    let up = Upstream::start().await;
    up.put_body("/a.bin", bytes(1000, 7));
    up.put_body("/b.bin", bytes(1000, 8));
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::new();
    let dst = install_variant(&gw).await;
    let (status, variant, _) = get(
        &client,
        &gw.url("/api/v1/remote/r/a.bin"),
        "x-adapter-variant",
    )
    .await;
    assert_eq!((status, variant.as_str()), (200, "v2"));

    std::fs::write(&dst, bad).expect("overwrite in place");
    let (src, sha) = (dst.display().to_string(), sha256_hex(bad));
    let (src, sha, gw_ref) = (&src, &sha, &gw);
    let entry = eventually(
        "/plugins to report the broken file",
        Duration::from_secs(15),
        || async move {
            let list = plugin_list(gw_ref).await;
            by_source(&list, "generic", src)
                .filter(|p| p["sha256"] == sha.as_str())
                .cloned()
        },
    )
    .await;
    assert_eq!(entry["status"], "failed-previous-serving", "{entry:#}");
    assert_eq!(entry["version"], "9.9.9-test", "{entry:#}");
    let error = entry["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(!error.is_empty(), "{entry:#}");
    let list = plugin_list(&gw).await;
    assert_eq!(
        by_source(&list, "generic", "built-in").unwrap()["status"],
        "replaced"
    );
    let (status, variant, body) = get(
        &client,
        &gw.url("/api/v1/remote/r/b.bin"),
        "x-adapter-variant",
    )
    .await;
    assert_eq!((status, variant.as_str()), (200, "v2"));
    assert_eq!(body, bytes(1000, 8));
    error
}

/// A plugin file overwritten in place with garbage is rejected and the
/// previous version keeps serving; `/plugins` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_of_garbage_keeps_the_previous_version_serving() {
    let error = corrupt_variant_keeps_previous_serving(&b"not wasm at all\n".repeat(64)).await;
    assert!(error.contains("not a WebAssembly component"), "{error}");
}

/// A plugin file overwritten in place with a truncated copy of a valid
/// component is rejected and the previous version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_of_a_truncated_component_keeps_the_previous_version_serving() {
    let wasm = std::fs::read(adapters_dir().join("generic-variant.wasm")).expect("variant");
    let error = corrupt_variant_keeps_previous_serving(&wasm[..wasm.len() / 2]).await;
    assert!(error.contains("compile"), "{error}");
}

/// Deleting the plugin file that replaced a built-in brings the built-in
/// back: `/plugins` lists it `active` and new misses lose the variant's
/// header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_plugin_file_falls_back_to_the_builtin() {
    let up = Upstream::start().await;
    up.put_body("/a.bin", bytes(1000, 9));
    up.put_body("/b.bin", bytes(1000, 10));
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::new();
    let dst = install_variant(&gw).await;
    let (status, variant, _) = get(
        &client,
        &gw.url("/api/v1/remote/r/a.bin"),
        "x-adapter-variant",
    )
    .await;
    assert_eq!((status, variant.as_str()), (200, "v2"));

    std::fs::remove_file(&dst).expect("remove");
    let gw_ref = &gw;
    eventually(
        "the built-in to serve again",
        Duration::from_secs(15),
        || async move {
            let list = plugin_list(gw_ref).await;
            let gone = !list
                .iter()
                .any(|p| p["source"] != "built-in" && p["name"] == "generic");
            let active = by_source(&list, "generic", "built-in")?["status"] == "active";
            (gone && active).then_some(())
        },
    )
    .await;
    let (status, variant, body) = get(
        &client,
        &gw.url("/api/v1/remote/r/b.bin"),
        "x-adapter-variant",
    )
    .await;
    assert_eq!((status, variant.as_str()), (200, ""));
    assert_eq!(body, bytes(1000, 10));
}

/// Modes of the hostile adapter that must fail.
const HOSTILE: [&str; 10] = [
    "loop",
    "grow",
    "trap",
    "recurse",
    "huge",
    "bad-status",
    "bad-header",
    "log-flood",
    "kv-flood",
    "http-flood",
];

/// A gateway with `hostile.wasm` in its plugin dir, a remote `h-MODE` per
/// mode (and `h-ok`), and a generic remote `good` in front of `up`.
async fn hostile_gateway(up: &Upstream) -> Gateway {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        adapters_dir().join("hostile.wasm"),
        dir.path().join("plugins/hostile.wasm"),
    )
    .expect("copy hostile.wasm");
    let mut remotes = String::new();
    for m in HOSTILE.iter().chain(&["ok"]) {
        remotes += &format!(
            "[[remote]]\nname = \"h-{m}\"\npackage = \"hostile\"\nupstream = {:?}\n[remote.options]\nmode = {m:?}\n\n",
            up.url()
        );
    }
    remotes += &generic_remote("good", &up.url(), "");
    Gateway::start_in(dir, &remotes).await
}

/// Every hostile behaviour (infinite loop, unbounded memory, trap, unbounded
/// recursion, a 64 MiB answer, an invalid status, an invalid header, floods
/// of `log`, `kv-set` and `http-send` host calls) gives
/// its request a 502 with a JSON error naming the adapter, within seconds,
/// and the gateway keeps serving the adapter's harmless remote and other
/// remotes after each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_adapters_fail_only_their_own_request() {
    let up = Upstream::start().await;
    up.put_body("/fine.txt", "fine");
    let gw = hostile_gateway(&up).await;
    let client = reqwest::Client::new();
    for m in HOSTILE {
        let started = Instant::now();
        let r = client
            .get(gw.url(&format!("/api/v1/remote/h-{m}/x")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{m}: no HTTP response: {e}"));
        assert!(started.elapsed() < Duration::from_secs(5), "{m}: too slow");
        assert_eq!(r.status(), 502, "{m}");
        assert_eq!(r.headers()["content-type"], "application/json", "{m}");
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).expect("JSON error");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains("hostile adapter"), "{m}: {v}");

        let (status, _, body) = get(&client, &gw.url("/api/v1/remote/h-ok/x"), "").await;
        assert_eq!(
            (status, body.as_slice()),
            (200, &b"hostile ok"[..]),
            "after {m}"
        );
        let (status, _, body) = get(&client, &gw.url("/api/v1/remote/good/fine.txt"), "").await;
        assert_eq!((status, body.as_slice()), (200, &b"fine"[..]), "after {m}");
    }
}

/// Adapter failures are counted in `artgate_plugin_errors_total` by kind:
/// the loop and the endless logging as `timeout`, unbounded memory and the
/// 64 MiB answer as `memory`, `unreachable`, stack exhaustion and the
/// key-value and `http-send` floods (past their per-call limits) as
/// `trap`, the invalid status and header as `bad_output`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_errors_are_counted_by_kind() {
    let up = Upstream::start().await;
    let gw = hostile_gateway(&up).await;
    let client = reqwest::Client::new();
    for m in HOSTILE {
        let (status, _, _) = get(&client, &gw.url(&format!("/api/v1/remote/h-{m}/x")), "").await;
        assert_eq!(status, 502, "{m}");
    }
    let mut counts = Vec::new();
    for kind in ["timeout", "memory", "trap", "bad_output"] {
        let n = metric(
            &gw,
            "artgate_plugin_errors_total",
            &["adapter=\"hostile\"", &format!("kind=\"{kind}\"")],
        )
        .await;
        counts.push((kind, n));
    }
    assert_eq!(
        counts,
        [
            ("timeout", 2.0),
            ("memory", 2.0),
            ("trap", 4.0),
            ("bad_output", 2.0)
        ]
    );
}

/// While four clients keep an infinitely looping adapter busy, every
/// request to another remote (each a miss, so its adapter runs) succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_adapter_does_not_stall_other_remotes() {
    let up = Upstream::start().await;
    for i in 0..10 {
        up.put_body(&format!("/f{i}.txt"), format!("file {i}"));
    }
    let gw = hostile_gateway(&up).await;
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let loops_done = Arc::new(AtomicU64::new(0));
    let mut loopers = Vec::new();
    for _ in 0..4 {
        let (c, url, stop, done) = (
            client.clone(),
            gw.url("/api/v1/remote/h-loop/x"),
            stop.clone(),
            loops_done.clone(),
        );
        loopers.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let r = c.get(&url).send().await.expect("loop request");
                assert_eq!(r.status(), 502);
                done.fetch_add(1, SeqCst);
            }
        }));
    }
    let done = &loops_done;
    eventually(
        "the looping requests to be under way",
        Duration::from_secs(10),
        || async move { (done.load(SeqCst) >= 4).then_some(()) },
    )
    .await;
    let before = loops_done.load(SeqCst);
    for i in 0..10 {
        let (status, _, body) = get(
            &client,
            &gw.url(&format!("/api/v1/remote/good/f{i}.txt")),
            "",
        )
        .await;
        assert_eq!(status, 200, "f{i}");
        assert_eq!(body, format!("file {i}").into_bytes());
    }
    let (status, _, body) = get(&client, &gw.url("/api/v1/remote/h-ok/x"), "").await;
    assert_eq!((status, body.as_slice()), (200, &b"hostile ok"[..]));
    stop.store(true, SeqCst);
    for l in loopers {
        l.await.expect("looper");
    }
    assert!(
        loops_done.load(SeqCst) > before,
        "the loops were not running alongside"
    );
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

    let list = plugin_list(&gw).await;
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
    let (status, source, body) = get(
        &reqwest::Client::new(),
        &gw.url("/api/v1/remote/r/x.txt"),
        "x-artifact-source",
    )
    .await;
    assert_eq!(
        (status, source.as_str(), body.as_slice()),
        (200, "remote", &b"x"[..])
    );
}

/// The per-adapter call cap (`[plugins] max_concurrent_calls`): with 2
/// slots and a 300 ms `queue_timeout`, 6 concurrent requests to a looping
/// adapter get 502 (their call ran out of time) or 503 naming the limit
/// (no slot freed in time), each within a second, while the generic
/// adapter's calls, on their own lane with their own slots, all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_adapter_answers_503_and_other_adapters_keep_their_slots() {
    let up = Upstream::start().await;
    for i in 0..6 {
        up.put_body(&format!("/f{i}.txt"), format!("file {i}"));
    }
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(
        adapters_dir().join("hostile.wasm"),
        dir.path().join("plugins/hostile.wasm"),
    )
    .expect("copy hostile.wasm");
    let remotes = format!(
        "[[remote]]\nname = \"h-loop\"\npackage = \"hostile\"\nupstream = {:?}\n[remote.options]\nmode = \"loop\"\n\n{}",
        up.url(),
        generic_remote("good", &up.url(), "")
    );
    let gw = Gateway::start_with_plugins_extra(
        dir,
        "max_concurrent_calls = 2\nqueue_timeout = \"300ms\"",
        &remotes,
    )
    .await;
    let client = reqwest::Client::new();
    let loops: Vec<_> = (0..6)
        .map(|_| {
            let (c, url) = (client.clone(), gw.url("/api/v1/remote/h-loop/x"));
            tokio::spawn(async move {
                let started = Instant::now();
                let r = c.get(&url).send().await.expect("loop request");
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (status, text, started.elapsed())
            })
        })
        .collect();
    // Other adapters keep their own slots meanwhile.
    for i in 0..6 {
        let (status, _, body) = get(
            &client,
            &gw.url(&format!("/api/v1/remote/good/f{i}.txt")),
            "",
        )
        .await;
        assert_eq!((status, body), (200, format!("file {i}").into_bytes()));
    }
    let mut statuses = Vec::new();
    for l in loops {
        let (status, text, took) = l.await.expect("loop task");
        assert!(took < Duration::from_secs(1), "{status} after {took:?}");
        match status {
            502 => assert!(text.contains("time budget"), "{text}"),
            503 => assert!(text.contains("max_concurrent_calls"), "{text}"),
            other => panic!("{other}: {text}"),
        }
        statuses.push(status);
    }
    statuses.sort();
    assert!(
        statuses.contains(&502) && statuses.contains(&503),
        "{statuses:?}"
    );
    assert_eq!(
        metric(
            &gw,
            "artgate_plugin_errors_total",
            &["adapter=\"hostile\"", "kind=\"busy\""]
        )
        .await,
        statuses.iter().filter(|&&s| s == 503).count() as f64
    );
}
