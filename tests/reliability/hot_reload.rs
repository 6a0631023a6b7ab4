//! Hot reload under load: the `generic` adapter in the plugin directory is
//! swapped 100 times (or for `ARTGATE_RELOAD_SECS` seconds, whichever is
//! longer) between two builds that differ observably — the plain build and
//! the `variant` build, which reports version `9.9.9-test` and adds
//! `x-adapter-variant: v2` to every plan — while clients send mixed traffic
//! (fresh hits, misses through the adapter, HEADs, ranges, conditional
//! requests). Swaps alternate between an atomic rename and a torn in-place
//! write (truncate, then four chunks with pauses longer than the reload
//! debounce, so the watcher sees partial files).
//!
//! Asserted: no request fails (every response the expected 200/206/304,
//! bodies whole and correct); every adapter-planned response comes wholly
//! from one of the two versions; partial files are rejected while the
//! previous version keeps serving; after each swap the new version serves
//! within a bound. Reload latency (file landed → `/plugins` reports the new
//! version active) is printed for RELIABILITY.md.
//!
//! Below it, one reload at a time: a `generic.wasm` dropped in replaces the
//! built-in while cached entries keep serving; garbage or a truncated
//! component keeps the previous version serving; removing the file brings
//! the built-in back.

use super::harness::{Rng, seed};
use crate::support::clients::run_ok;
use crate::support::gateway::{Gateway, adapters_dir, by_source, config_head, generic_remote};
use crate::support::http::get_header_body;
use crate::support::kit::artgate;
use crate::support::upstream::Upstream;
use crate::support::{bytes, eventually};
use crate::support::{sha256_hex, with_custom_section};
use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Swaps made at least.
const SWAPS: usize = 100;
/// Client tasks sending traffic during the swaps.
const CLIENTS: usize = 4;
/// Cached objects (hits, HEADs, ranges, conditional requests).
const HITS: usize = 16;
/// Size of a cached object.
const HIT_SIZE: usize = 64 * 1024;
/// Objects for misses in the short mode (a long mode adds 250 a second).
const MISS_OBJECTS: usize = 20_000;
/// A new version must serve within this after its file landed.
const RELOAD_BOUND: Duration = Duration::from_secs(5);

/// Counts of what the clients saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    hits: AtomicU64,
    heads: AtomicU64,
    ranges: AtomicU64,
    not_modified: AtomicU64,
    misses_old: AtomicU64,
    misses_new: AtomicU64,
}

/// The plugin-dir `generic` entry of `/plugins`: (status, sha256).
async fn dir_entry(client: &reqwest::Client, gw: &Gateway) -> Option<(String, String)> {
    let text = client
        .get(gw.url("/plugins"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let p = v["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "generic" && p["source"] != "built-in")?;
    Some((
        p["status"].as_str()?.to_owned(),
        p["sha256"].as_str()?.to_owned(),
    ))
}

/// Write `bytes` to `dst` in place: truncate, then four chunks with pauses
/// (longer than the 50 ms reload debounce of the test config).
fn torn_write(dst: &Path, bytes: &[u8], rng: &mut Rng) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .open(dst)
        .expect("open in place");
    let chunk = bytes.len().div_ceil(4);
    for (i, part) in bytes.chunks(chunk).enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(rng.range(60, 140)));
        }
        f.write_all(part).expect("write chunk");
        f.flush().expect("flush");
    }
}

/// Write `bytes` to a temporary name and rename it over `dst`.
fn atomic_write(dst: &Path, bytes: &[u8]) {
    let tmp = dst.with_file_name(".generic.wasm.part");
    std::fs::write(&tmp, bytes).expect("write temp");
    std::fs::rename(&tmp, dst).expect("rename");
}

/// One client: random mixed requests until `stop`; panics on any failure.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    gw_url: String,
    c: u64,
    seed: u64,
    etags: Arc<Vec<String>>,
    next_miss: Arc<AtomicU64>,
    miss_objects: usize,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rng = Rng::new(seed ^ c.wrapping_mul(0x9E37_79B9));
    while !stop.load(SeqCst) {
        let i = rng.range(0, HITS as u64) as usize;
        let url = format!("{gw_url}/api/v1/remote/r/h{i}.bin");
        let want = bytes(HIT_SIZE, i as u64);
        seen.requests.fetch_add(1, SeqCst);
        match rng.range(0, 5) {
            0 => {
                let r = client.get(&url).send().await.expect("hit");
                assert_eq!(r.status(), 200, "hit {url}");
                let body = r.bytes().await.expect("hit body");
                assert!(body == want, "hit {url}: wrong bytes");
                seen.hits.fetch_add(1, SeqCst);
            }
            1 => {
                let r = client.head(&url).send().await.expect("head");
                assert_eq!(r.status(), 200, "HEAD {url}");
                assert_eq!(
                    r.headers()["content-length"],
                    HIT_SIZE.to_string().as_str(),
                    "HEAD {url}"
                );
                assert!(r.bytes().await.expect("head body").is_empty());
                seen.heads.fetch_add(1, SeqCst);
            }
            2 => {
                let a = rng.range(0, HIT_SIZE as u64 - 1) as usize;
                let b = rng.range(a as u64, HIT_SIZE as u64) as usize;
                let r = client
                    .get(&url)
                    .header("range", format!("bytes={a}-{b}"))
                    .send()
                    .await
                    .expect("range");
                assert_eq!(r.status(), 206, "range {a}-{b} of {url}");
                let body = r.bytes().await.expect("range body");
                assert!(body == want[a..=b], "range {a}-{b} of {url}: wrong bytes");
                seen.ranges.fetch_add(1, SeqCst);
            }
            3 => {
                let r = client
                    .get(&url)
                    .header("if-none-match", &etags[i])
                    .send()
                    .await
                    .expect("conditional");
                assert_eq!(r.status(), 304, "If-None-Match on {url}");
                seen.not_modified.fetch_add(1, SeqCst);
            }
            _ => {
                let k = next_miss.fetch_add(1, SeqCst) as usize;
                assert!(k < miss_objects, "ran out of miss objects");
                let url = format!("{gw_url}/api/v1/remote/r/m{k}.bin");
                let r = client.get(&url).send().await.expect("miss");
                let status = r.status().as_u16();
                let variant = r
                    .headers()
                    .get("x-adapter-variant")
                    .map(|v| v.to_str().unwrap_or("?").to_owned());
                let body = r.bytes().await.expect("miss body");
                assert_eq!(
                    status,
                    200,
                    "miss {url}: {}",
                    String::from_utf8_lossy(&body)
                );
                assert!(
                    body == bytes(1024, 100_000 + k as u64),
                    "miss {url}: wrong bytes"
                );
                match variant.as_deref() {
                    None => seen.misses_old.fetch_add(1, SeqCst),
                    Some("v2") => seen.misses_new.fetch_add(1, SeqCst),
                    Some(other) => panic!("miss {url}: x-adapter-variant {other:?}"),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.range(1, 6))).await;
    }
}

/// 100+ swaps of the `generic` adapter under mixed traffic: no request
/// fails, torn files are rejected, each new version serves within a bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_fails_no_request() {
    let min_secs = std::env::var("ARTGATE_RELOAD_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let seed = seed("hot_reload");
    let mut rng = Rng::new(seed);
    let up = Upstream::start().await;
    for i in 0..HITS {
        up.put_body(&format!("/h{i}.bin"), bytes(HIT_SIZE, i as u64));
    }
    let miss_objects = MISS_OBJECTS + min_secs as usize * 250;
    for k in 0..miss_objects {
        up.put_body(&format!("/m{k}.bin"), bytes(1024, 100_000 + k as u64));
    }
    let plain = std::fs::read(adapters_dir().join("generic.wasm")).expect("generic.wasm");
    let variant =
        std::fs::read(adapters_dir().join("generic-variant.wasm")).expect("generic-variant.wasm");
    let versions = [
        (&plain, sha256_hex(&plain)),
        (&variant, sha256_hex(&variant)),
    ];

    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let dst = plugins.join("generic.wasm");
    std::fs::write(&dst, &plain).unwrap();
    let gw = Gateway::start_in(dir, &generic_remote("r", &up.url(), "")).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        dir_entry(&client, &gw).await,
        Some(("active".into(), versions[0].1.clone()))
    );

    // Prime the cached objects and remember their ETags.
    let mut etags = Vec::new();
    for i in 0..HITS {
        let r = client
            .get(gw.url(&format!("/api/v1/remote/r/h{i}.bin")))
            .send()
            .await
            .expect("prime");
        assert_eq!(r.status(), 200);
        etags.push(
            r.headers()
                .get("etag")
                .expect("an ETag")
                .to_str()
                .unwrap()
                .to_owned(),
        );
        r.bytes().await.expect("prime body");
    }
    let rejected_before = gw
        .metric("artgate_plugin_reloads_total", &["result=\"error\""])
        .await;

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next_miss = Arc::new(AtomicU64::new(0));
    let etags = Arc::new(etags);
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|c| {
            tokio::spawn(client_loop(
                gw.url(""),
                c,
                seed,
                etags.clone(),
                next_miss.clone(),
                miss_objects,
                seen.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    let mut latencies = Vec::new();
    let (mut atomic, mut torn) = (0, 0);
    let mut current = 0usize;
    while latencies.len() < SWAPS || started.elapsed() < Duration::from_secs(min_secs) {
        let next = 1 - current;
        let (bytes_next, sha_next) = (versions[next].0.clone(), versions[next].1.clone());
        let in_place = latencies.len() % 2 == 1;
        let dst2 = dst.clone();
        let mut wrng = rng.clone();
        rng.next();
        tokio::task::spawn_blocking(move || {
            if in_place {
                torn_write(&dst2, &bytes_next, &mut wrng);
            } else {
                atomic_write(&dst2, &bytes_next);
            }
        })
        .await
        .expect("writer");
        if in_place {
            torn += 1;
        } else {
            atomic += 1;
        }
        let landed = Instant::now();
        loop {
            if let Some((status, sha)) = dir_entry(&client, &gw).await
                && status == "active"
                && sha == sha_next
            {
                break;
            }
            assert!(
                landed.elapsed() < RELOAD_BOUND,
                "swap {}: the new version did not serve within {RELOAD_BOUND:?}",
                latencies.len() + 1
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(landed.elapsed().as_secs_f64() * 1000.0);
        current = next;
        tokio::time::sleep(Duration::from_millis(rng.range(20, 120))).await;
        for c in &clients {
            assert!(!c.is_finished(), "a client failed (see its panic)");
        }
    }
    let elapsed = started.elapsed();
    // The last version serves new misses.
    let k = next_miss.fetch_add(1, SeqCst);
    let r = client
        .get(gw.url(&format!("/api/v1/remote/r/m{k}.bin")))
        .send()
        .await
        .expect("final miss");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-adapter-variant").is_some(),
        current == 1,
        "the last version serves"
    );
    stop.store(true, SeqCst);
    for c in clients {
        c.await.expect("a client failed");
    }
    let rejected = gw
        .metric("artgate_plugin_reloads_total", &["result=\"error\""])
        .await
        - rejected_before;

    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((p * latencies.len() as f64).ceil() as usize).max(1) - 1];
    let s = &seen;
    println!(
        "hot-reload: {} swaps ({atomic} atomic renames, {torn} torn in-place writes) in {:.1} s; \
         {rejected} partial files rejected; {} requests ({} hits, {} HEADs, {} ranges, {} 304s, \
         {} misses on the old-style version, {} on the variant), 0 failed; reload latency \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        s.requests.load(SeqCst),
        s.hits.load(SeqCst),
        s.heads.load(SeqCst),
        s.ranges.load(SeqCst),
        s.not_modified.load(SeqCst),
        s.misses_old.load(SeqCst),
        s.misses_new.load(SeqCst),
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1],
    );
    assert!(
        rejected >= 1.0,
        "no partial file was ever seen and rejected; the torn writes did not test anything"
    );
    assert!(s.misses_old.load(SeqCst) > 0 && s.misses_new.load(SeqCst) > 0);
}

// ---------------------------------------------------------------------------
// One reload at a time: a new version, a broken file, a removed file.

/// Copy `generic-variant.wasm` into the plugin dir as `generic.wasm` (temp
/// name, then rename) and wait until it replaces the built-in.
async fn install_variant(gw: &Gateway) -> PathBuf {
    install_variant_within(gw, Duration::from_secs(15)).await
}

/// [`install_variant`], waiting at most `within` for it to serve.
async fn install_variant_within(gw: &Gateway, within: Duration) -> PathBuf {
    let dst = gw.plugin_dir().join("generic.wasm");
    let tmp = gw.plugin_dir().join(".generic.wasm.part");
    std::fs::copy(adapters_dir().join("generic-variant.wasm"), &tmp).expect("copy variant");
    std::fs::rename(&tmp, &dst).expect("rename");
    let src = dst.display().to_string();
    let src = &src;
    eventually(
        "the variant to replace the built-in generic adapter",
        within,
        || async move {
            let list = gw.plugin_list().await;
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
    let list = gw.plugin_list().await;
    let builtin = by_source(&list, "generic", "built-in").expect("built-in generic");
    assert_eq!(builtin["status"], "active");
    assert_ne!(builtin["version"], "9.9.9-test");

    let a = gw.url("/api/v1/remote/r/a.bin");
    let (status, variant, body) = get_header_body(&a, "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, ""));
    assert_eq!(body, bytes(10_000, 5));
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;

    install_variant(&gw).await;
    let (status, variant, body) =
        get_header_body(&gw.url("/api/v1/remote/r/b.bin"), "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, "v2"));
    assert_eq!(body, bytes(10_000, 6));

    let r = client.get(&a).send().await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    assert!(r.headers().get("x-adapter-variant").is_none());
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes(10_000, 5));
    assert_eq!(up.seen("/a.bin").gets, 1);
}

/// `artgate plugin compile` puts Cranelift code into the gateway's
/// compiled-code cache, so a component compiled that way runs optimised
/// code from the moment it is renamed in; a component the gateway compiles
/// itself becomes optimised in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precompiled_component_runs_optimised_code_at_once() {
    let up = Upstream::start().await;
    up.put_body("/b.bin", bytes(1000, 9));
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("artgate.toml");
    let gw_dir = gw
        .plugin_dir()
        .parent()
        .expect("the gateway's dir")
        .to_owned();
    std::fs::write(&config, config_head(&gw_dir)).expect("write config");
    let variant = std::fs::read(adapters_dir().join("generic-variant.wasm")).expect("variant");
    // Sections of their own: sha256s no other test compiled.
    let tag = format!("{}-{}", std::process::id(), line!());
    let wasm = with_custom_section(&variant, "artgate-test-precompiled", tag.as_bytes());
    let file = work.path().join("generic.wasm");
    std::fs::write(&file, &wasm).expect("write component");
    let compile = || {
        artgate(&[
            "--config",
            config.to_str().unwrap(),
            "plugin",
            "compile",
            file.to_str().unwrap(),
        ])
    };
    let out = run_ok(compile()).await;
    assert!(out.contains("compiled into"), "{out}");
    let out = run_ok(compile()).await;
    assert!(out.contains("already in"), "{out}");

    let active = rename_in(&gw, &wasm).await;
    assert_eq!(active["code"], "optimized", "{active:#}");
    let (status, v, _) =
        get_header_body(&gw.url("/api/v1/remote/r/b.bin"), "x-adapter-variant").await;
    assert_eq!((status, v.as_str()), (200, "v2"));

    // Not precompiled: optimised after a while, and cached then.
    let other = with_custom_section(&variant, "artgate-test-compiled-here", tag.as_bytes());
    rename_in(&gw, &other).await;
    entry_when(&gw, &other, ("code", "optimized"), Duration::from_secs(120)).await;
    std::fs::write(&file, &other).expect("write component");
    let out = run_ok(compile()).await;
    assert!(out.contains("already in"), "the gateway cached it: {out}");
}

/// Rename `wasm` into the plugin directory as `generic.wasm` and return its
/// `/plugins` entry once it is active.
async fn rename_in(gw: &Gateway, wasm: &[u8]) -> Value {
    let tmp = gw.plugin_dir().join(".generic.wasm.part");
    std::fs::write(&tmp, wasm).expect("write");
    std::fs::rename(&tmp, gw.plugin_dir().join("generic.wasm")).expect("rename");
    entry_when(gw, wasm, ("status", "active"), Duration::from_secs(60)).await
}

/// The `/plugins` entry of the component `wasm` once its field `key` is
/// `value` (waiting at most `within`).
async fn entry_when(
    gw: &Gateway,
    wasm: &[u8],
    (key, value): (&str, &str),
    within: Duration,
) -> Value {
    let sha = sha256_hex(wasm);
    let what = format!("the component's {key} to be {value}");
    eventually(&what, within, || async {
        let list = gw.plugin_list().await;
        list.into_iter()
            .find(|p| p["sha256"] == sha.as_str() && p[key] == value)
    })
    .await
}

/// A component renamed into the plugin directory is loaded at once, not
/// after `reload_debounce`: with the debounce at an hour (and the periodic
/// rescan every 10 s), the renamed-in variant serves within 8 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_renamed_in_is_loaded_without_waiting_for_the_debounce() {
    let up = Upstream::start().await;
    up.put_body("/b.bin", bytes(1000, 9));
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
    let gw = Gateway::start_with_plugins_extra(
        dir,
        "reload_debounce = \"1h\"",
        &generic_remote("r", &up.url(), ""),
    )
    .await;
    install_variant_within(&gw, Duration::from_secs(8)).await;
    let (status, variant, body) =
        get_header_body(&gw.url("/api/v1/remote/r/b.bin"), "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, "v2"));
    assert_eq!(body, bytes(1000, 9));
}

/// Overwrite the installed variant in place with `bad` and check that it is
/// rejected (`failed-previous-serving`, an error in `/plugins`) while the
/// previous version keeps serving new misses; returns the error text.
async fn corrupt_variant_keeps_previous_serving(bad: &[u8]) -> String {
    let up = Upstream::start().await;
    up.put_body("/a.bin", bytes(1000, 7));
    up.put_body("/b.bin", bytes(1000, 8));
    let gw = Gateway::start(&generic_remote("r", &up.url(), "")).await;
    let dst = install_variant(&gw).await;
    let (status, variant, _) =
        get_header_body(&gw.url("/api/v1/remote/r/a.bin"), "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, "v2"));

    std::fs::write(&dst, bad).expect("overwrite in place");
    let (src, sha) = (dst.display().to_string(), sha256_hex(bad));
    let (src, sha, gw_ref) = (&src, &sha, &gw);
    let entry = eventually(
        "/plugins to report the broken file",
        Duration::from_secs(15),
        || async move {
            let list = gw_ref.plugin_list().await;
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
    let list = gw.plugin_list().await;
    assert_eq!(
        by_source(&list, "generic", "built-in").unwrap()["status"],
        "replaced"
    );
    let (status, variant, body) =
        get_header_body(&gw.url("/api/v1/remote/r/b.bin"), "x-adapter-variant").await;
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
    let dst = install_variant(&gw).await;
    let (status, variant, _) =
        get_header_body(&gw.url("/api/v1/remote/r/a.bin"), "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, "v2"));

    std::fs::remove_file(&dst).expect("remove");
    let gw_ref = &gw;
    eventually(
        "the built-in to serve again",
        Duration::from_secs(15),
        || async move {
            let list = gw_ref.plugin_list().await;
            let gone = !list
                .iter()
                .any(|p| p["source"] != "built-in" && p["name"] == "generic");
            let active = by_source(&list, "generic", "built-in")?["status"] == "active";
            (gone && active).then_some(())
        },
    )
    .await;
    let (status, variant, body) =
        get_header_body(&gw.url("/api/v1/remote/r/b.bin"), "x-adapter-variant").await;
    assert_eq!((status, variant.as_str()), (200, ""));
    assert_eq!(body, bytes(1000, 10));
}
