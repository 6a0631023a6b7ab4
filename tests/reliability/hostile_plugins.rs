//! Hostile adapters under load: while N clients keep one hostile remote
//! busy (an endless loop, unbounded memory, unbounded recursion, traps, huge
//! or invalid output, host-call floods), a steady load on a healthy remote
//! (fresh hits and misses through the `generic` adapter's `plan`) keeps
//! succeeding and its latency barely moves.
//!
//! The test asserts correctness (every hostile request a 502 within the
//! time budget, every healthy request a 200 with the right bytes, the
//! gateway alive) and latency bounds meant not to flake on a loaded 2-core
//! machine shared with compilers:
//!
//! - the p99 of fresh hits (no wasm, no disk writes) under attack is at
//!   most `max(5 × baseline hit p99, 50 ms)`;
//! - the p99 of all healthy requests (misses commit to the store; it is
//!   put on tmpfs where `/dev/shm` exists, so fsync does not measure the
//!   disk) is at most `max(5 × baseline p99, 250 ms)`.
//!
//! Before adapters ran on their own lanes, a looping adapter pushed both
//! past 290 ms (hits) and 400 ms (all). The precise figures are printed
//! for RELIABILITY.md; speed is measured, not asserted.
//!
//! `ARTGATE_HOSTILE_SECS=N` makes each phase N seconds (default 2).
//!
//! Below it, one hostile behaviour at a time: each fails only its own
//! request (a 502 naming the adapter) and is counted by kind, a looping
//! adapter does not stall other remotes, and a busy adapter answers 503
//! once its call cap is reached while other adapters keep their slots.

use super::harness::{Rng, seed};
use crate::support::gateway::{Gateway, generic_remote, install_adapter};
use crate::support::http::get_header_body;
use crate::support::upstream::Upstream;
use crate::support::{bytes, eventually};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Hostile modes, each of which must give its request a 502.
const MODES: [&str; 10] = [
    "loop",
    "grow",
    "recurse",
    "trap",
    "huge",
    "bad-status",
    "bad-header",
    "log-flood",
    "kv-flood",
    "http-flood",
];

/// Concurrent clients hammering the hostile remote.
const HOSTILE_CLIENTS: usize = 8;
/// Pause between two requests of one hostile client, so that modes that
/// fail in microseconds measure the adapter, not a flood of cheap requests
/// saturating both cores (at most 8 × 50 = 400 hostile requests/s; the
/// slow modes keep all 8 in flight all the time).
const HOSTILE_PACE: Duration = Duration::from_millis(20);
/// Concurrent clients of the healthy remote.
const HEALTHY_CLIENTS: usize = 4;
/// Pause between two requests of one healthy client.
const HEALTHY_PACE: Duration = Duration::from_millis(8);
/// Cached objects the healthy load hits.
const HITS: usize = 32;
/// Objects available for misses.
const MISS_OBJECTS: usize = 6000;
/// A hostile request must be answered within this.
const HOSTILE_BUDGET: Duration = Duration::from_secs(2);

/// Latency figures of one phase, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Figures {
    requests: usize,
    p50: f64,
    p99: f64,
    miss_p99: f64,
    hit_p99: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn figures(mut hits: Vec<f64>, mut misses: Vec<f64>) -> Figures {
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    hits.sort_by(cmp);
    misses.sort_by(cmp);
    let mut all: Vec<f64> = hits.iter().chain(&misses).copied().collect();
    all.sort_by(cmp);
    Figures {
        requests: all.len(),
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        miss_p99: percentile(&misses, 0.99),
        hit_p99: percentile(&hits, 0.99),
    }
}

/// Steady load on the healthy remote for `secs`: 3 in 4 requests a fresh
/// hit, 1 in 4 a miss on a new object (so `plan` runs). Every response
/// must be a 200 with exactly the object's bytes.
async fn healthy_load(
    gw: &Gateway,
    next_miss: &Arc<AtomicU64>,
    seed: u64,
    secs: Duration,
) -> Figures {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let end = Instant::now() + secs;
    let mut tasks = Vec::new();
    for c in 0..HEALTHY_CLIENTS {
        let (client, base, next_miss) = (
            client.clone(),
            gw.url("/api/v1/remote/good/"),
            next_miss.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ (c as u64).wrapping_mul(0x9E37_79B9));
            let (mut hits, mut misses) = (Vec::new(), Vec::new());
            while Instant::now() < end {
                let miss = rng.range(0, 4) == 0;
                let (path, want) = if miss {
                    let i = next_miss.fetch_add(1, SeqCst) as usize;
                    assert!(i < MISS_OBJECTS, "ran out of miss objects");
                    (format!("m{i}.bin"), bytes(1024, 10_000 + i as u64))
                } else {
                    let i = rng.range(0, HITS as u64) as usize;
                    (format!("h{i}.bin"), bytes(4096, i as u64))
                };
                let started = Instant::now();
                let r = client
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{path}: no response: {e}"));
                let status = r.status().as_u16();
                let body = r.bytes().await.expect("healthy body");
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
                assert!(body == want, "{path}: wrong bytes");
                if miss { &mut misses } else { &mut hits }.push(ms);
                tokio::time::sleep(HEALTHY_PACE).await;
            }
            (hits, misses)
        }));
    }
    let (mut hits, mut misses) = (Vec::new(), Vec::new());
    for t in tasks {
        let (h, m) = t.await.expect("healthy client");
        hits.extend(h);
        misses.extend(m);
    }
    figures(hits, misses)
}

/// Start `HOSTILE_CLIENTS` clients looping on remote `h-MODE`; each
/// response must be a 502 JSON error naming the adapter, within
/// [`HOSTILE_BUDGET`]. Returns the stop flag, the answered count and the
/// slowest answer (µs).
#[allow(clippy::type_complexity)]
fn hostile_clients(
    gw: &Gateway,
    mode: &'static str,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let url = gw.url(&format!("/api/v1/remote/h-{mode}/x"));
    let tasks = (0..HOSTILE_CLIENTS)
        .map(|_| {
            let (client, url, stop, answered, slowest) = (
                client.clone(),
                url.clone(),
                stop.clone(),
                answered.clone(),
                slowest.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(SeqCst) {
                    let started = Instant::now();
                    let r = client
                        .get(&url)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{mode}: no HTTP response: {e}"));
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    let took = started.elapsed();
                    assert_eq!(status, 502, "{mode}: {text}");
                    assert!(text.contains("hostile adapter"), "{mode}: {text}");
                    assert!(took < HOSTILE_BUDGET, "{mode}: answered after {took:?}");
                    slowest.fetch_max(took.as_micros() as u64, SeqCst);
                    answered.fetch_add(1, SeqCst);
                    tokio::time::sleep(HOSTILE_PACE).await;
                }
            })
        })
        .collect();
    (stop, answered, slowest, tasks)
}

/// Each hostile mode under concurrent load leaves a healthy remote's
/// requests whole and its p99 within a generous bound; prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_adapters_under_load_leave_other_remotes_latency_alone() {
    let phase = Duration::from_secs(
        std::env::var("ARTGATE_HOSTILE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2),
    );
    let up = Upstream::start().await;
    for i in 0..HITS {
        up.put_body(&format!("/h{i}.bin"), bytes(4096, i as u64));
    }
    for i in 0..MISS_OBJECTS {
        up.put_body(&format!("/m{i}.bin"), bytes(1024, 10_000 + i as u64));
    }
    // The store on tmpfs where there is one: misses commit with fsync, and
    // on a disk shared with other work their tail latency measures the
    // disk, not the adapters (the attacked resource here is the CPU).
    let shm = std::path::Path::new("/dev/shm");
    let dir = Arc::new(if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir in /dev/shm")
    } else {
        tempfile::tempdir().expect("tempdir")
    });
    install_adapter(dir.path(), "hostile.wasm");
    let mut remotes = String::new();
    for m in MODES {
        remotes += &format!(
            "[[remote]]\nname = \"h-{m}\"\npackage = \"hostile\"\nupstream = {:?}\n[remote.options]\nmode = {m:?}\n\n",
            up.url()
        );
    }
    remotes += &generic_remote("good", &up.url(), "");
    let gw = Gateway::start_in(dir, &remotes).await;

    // Prime the hits and warm up (connections, compiled code, the store).
    let client = reqwest::Client::new();
    for i in 0..HITS {
        let r = client
            .get(gw.url(&format!("/api/v1/remote/good/h{i}.bin")))
            .send()
            .await
            .expect("prime");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("prime body");
    }
    let next_miss = Arc::new(AtomicU64::new(0));
    let seed = seed("hostile_plugins");
    healthy_load(&gw, &next_miss, seed, Duration::from_millis(500)).await;

    let baseline = healthy_load(&gw, &next_miss, seed, phase).await;
    let bound = (baseline.p99 * 5.0).max(250.0);
    let hit_bound = (baseline.hit_p99 * 5.0).max(50.0);
    println!(
        "hostile-load baseline: {} healthy requests, p50 {:.2} ms, p99 {:.2} ms (hits {:.2}, misses {:.2}); bounds: all {bound:.1} ms, hits {hit_bound:.1} ms",
        baseline.requests, baseline.p50, baseline.p99, baseline.hit_p99, baseline.miss_p99
    );
    let mut rows = Vec::new();
    for mode in MODES {
        let (stop, answered, slowest, tasks) = hostile_clients(&gw, mode);
        // Let the attack get under way before measuring.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let under = healthy_load(&gw, &next_miss, seed, phase).await;
        stop.store(true, SeqCst);
        for t in tasks {
            t.await.expect("hostile client");
        }
        let n = answered.load(SeqCst);
        let slowest_ms = slowest.load(SeqCst) as f64 / 1000.0;
        println!(
            "hostile-load {mode}: {n} hostile 502s (slowest {slowest_ms:.0} ms); {} healthy requests, p50 {:.2} ms, p99 {:.2} ms ({:+.0}%; hits {:.2}, misses {:.2})",
            under.requests,
            under.p50,
            under.p99,
            (under.p99 / baseline.p99 - 1.0) * 100.0,
            under.hit_p99,
            under.miss_p99
        );
        assert!(n >= HOSTILE_CLIENTS as u64, "{mode}: only {n} answers");
        rows.push((mode, under));
        // The gateway is still whole.
        let r = client.get(gw.url("/health")).send().await.expect("health");
        assert_eq!(r.status(), 200, "after {mode}");
    }
    for (mode, f) in &rows {
        assert!(
            f.hit_p99 <= hit_bound,
            "{mode}: fresh-hit p99 {:.1} ms under attack, baseline {:.1} ms, bound {hit_bound:.1} ms",
            f.hit_p99,
            baseline.hit_p99
        );
        assert!(
            f.p99 <= bound,
            "{mode}: healthy p99 {:.1} ms under attack, baseline {:.1} ms, bound {bound:.1} ms",
            f.p99,
            baseline.p99
        );
    }
}

// ---------------------------------------------------------------------------
// One hostile behaviour at a time, and the per-adapter call cap.

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
    install_adapter(dir.path(), "hostile.wasm");
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

        let (status, _, body) = get_header_body(&gw.url("/api/v1/remote/h-ok/x"), "").await;
        assert_eq!(
            (status, body.as_slice()),
            (200, &b"hostile ok"[..]),
            "after {m}"
        );
        let (status, _, body) = get_header_body(&gw.url("/api/v1/remote/good/fine.txt"), "").await;
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
    for m in HOSTILE {
        let (status, _, _) = get_header_body(&gw.url(&format!("/api/v1/remote/h-{m}/x")), "").await;
        assert_eq!(status, 502, "{m}");
    }
    let mut counts = Vec::new();
    for kind in ["timeout", "memory", "trap", "bad_output"] {
        let n = gw
            .metric(
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
        let (status, _, body) =
            get_header_body(&gw.url(&format!("/api/v1/remote/good/f{i}.txt")), "").await;
        assert_eq!(status, 200, "f{i}");
        assert_eq!(body, format!("file {i}").into_bytes());
    }
    let (status, _, body) = get_header_body(&gw.url("/api/v1/remote/h-ok/x"), "").await;
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

/// The per-adapter call cap (`[plugins] max_concurrent_calls`): with 2
/// slots and a 300 ms `queue_timeout`, 6 concurrent requests to a looping
/// adapter get 502 (their call ran out of time) or 503 naming the limit
/// (no slot freed in time), each within a second, while the generic
/// adapter's calls, on their own lane with their own slots, all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_adapter_answers_503_and_other_adapters_keep_their_slots() {
    let (up, gw) = looping_and_generic("max_concurrent_calls = 2\nqueue_timeout = \"300ms\"").await;
    for i in 0..6 {
        up.put_body(&format!("/f{i}.txt"), format!("file {i}"));
    }
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
        let (status, _, body) =
            get_header_body(&gw.url(&format!("/api/v1/remote/good/f{i}.txt")), "").await;
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
        gw.metric(
            "artgate_plugin_errors_total",
            &["adapter=\"hostile\"", "kind=\"busy\""]
        )
        .await,
        statuses.iter().filter(|&&s| s == 503).count() as f64
    );
}

/// `[plugins.adapter.NAME]` limits one adapter only: the looping adapter
/// gets one call slot, no queue and its own time budget, so while its one
/// call runs the other requests to it are refused at once (503 naming the
/// limit); the generic adapter keeps the `[plugins]` defaults, and
/// `GET /plugins` shows each adapter's limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_table_sets_the_limits_of_that_adapter_only() {
    let (up, gw) = looping_and_generic(
        "[plugins.adapter.hostile]\nmax_concurrent_calls = 1\nqueue_timeout = \"0s\"\ncall_timeout = \"300ms\"\nlane_threads = 2",
    )
    .await;
    up.put_body("/f.txt", "file");
    let text = reqwest::get(gw.url("/plugins"))
        .await
        .expect("/plugins")
        .text()
        .await
        .expect("/plugins body");
    let plugins: Value = serde_json::from_str(&text).expect("/plugins is JSON");
    let limits = |name: &str| {
        plugins["plugins"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|p| p["name"] == name && p["status"] == "active")
            })
            .map(|p| p["limits"].clone())
            .unwrap_or_else(|| panic!("{name} is not active: {plugins}"))
    };
    let hostile = limits("hostile");
    assert_eq!(hostile["max_concurrent_calls"], 1, "{hostile}");
    assert_eq!(hostile["queue_timeout_ms"], 0, "{hostile}");
    assert_eq!(hostile["call_timeout_ms"], 300, "{hostile}");
    assert_eq!(hostile["lane_threads"], 2, "{hostile}");
    let generic = limits("generic");
    assert_eq!(generic["max_concurrent_calls"], 16, "{generic}");
    assert_eq!(generic["call_timeout_ms"], 200, "{generic}");
    assert_eq!(generic["lane_threads"], 1, "{generic}");

    let client = reqwest::Client::new();
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (c, url) = (client.clone(), gw.url("/api/v1/remote/h-loop/x"));
            tokio::spawn(async move {
                let r = c.get(&url).send().await.expect("loop request");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            })
        })
        .collect();
    let (status, _, body) = get_header_body(&gw.url("/api/v1/remote/good/f.txt"), "").await;
    assert_eq!((status, body.as_slice()), (200, &b"file"[..]));
    let mut statuses = Vec::new();
    for l in loops {
        let (status, text) = l.await.expect("loop task");
        match status {
            502 => assert!(text.contains("time budget"), "{text}"),
            503 => assert!(text.contains("max_concurrent_calls"), "{text}"),
            other => panic!("{other}: {text}"),
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&502) && statuses.contains(&503),
        "{statuses:?}"
    );
    // Every call has ended: nothing holds or waits for the lane's slot.
    let metrics = gw.metrics().await;
    for gauge in [
        "artgate_plugin_calls_in_flight",
        "artgate_plugin_calls_queued",
    ] {
        let line = format!("{gauge}{{adapter=\"hostile\"}} 0");
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in {metrics}"
        );
    }
}

/// A gateway with `plugins_extra` in `[plugins]`, the hostile adapter
/// installed, and two remotes on one upstream: `h-loop` (the hostile
/// adapter, looping in `plan`) and `good` (generic).
async fn looping_and_generic(plugins_extra: &str) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    install_adapter(dir.path(), "hostile.wasm");
    let remotes = format!(
        "[[remote]]\nname = \"h-loop\"\npackage = \"hostile\"\nupstream = {:?}\n[remote.options]\nmode = \"loop\"\n\n{}",
        up.url(),
        generic_remote("good", &up.url(), "")
    );
    let gw = Gateway::start_with_plugins_extra(dir, plugins_extra, &remotes).await;
    (up, gw)
}

/// An adapter's `memory_limit` from its `[plugins.adapter.NAME]` table is
/// the cap its calls run under: with `[plugins]` at the default 64 MiB, a
/// call that allocates 24 MiB is served, and the same call is stopped at
/// the cap (502, counted as `memory`) once the adapter's own table sets
/// 16 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_table_sets_the_memory_cap_of_its_calls() {
    let remote = "[[remote]]\nname = \"h-alloc\"\npackage = \"hostile\"\nupstream = \"http://127.0.0.1:9\"\n[remote.options]\nmode = \"alloc\"\nmib = \"24\"\n";
    for (extra, capped) in [
        ("", false),
        ("[plugins.adapter.hostile]\nmemory_limit = \"16MiB\"", true),
    ] {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        install_adapter(dir.path(), "hostile.wasm");
        let gw = Gateway::start_with_plugins_extra(dir, extra, remote).await;
        let (status, _, body) = get_header_body(&gw.url("/api/v1/remote/h-alloc/x"), "").await;
        let text = String::from_utf8_lossy(&body).into_owned();
        if capped {
            assert_eq!(status, 502, "{text}");
            assert!(text.contains("memory cap"), "{text}");
            let counted = gw
                .metric(
                    "artgate_plugin_errors_total",
                    &["adapter=\"hostile\"", "kind=\"memory\""],
                )
                .await;
            assert_eq!(counted, 1.0);
        } else {
            assert_eq!((status, text.as_str()), (200, "allocated 24 MiB"));
        }
    }
}
