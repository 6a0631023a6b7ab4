//! Store hygiene: what a long-running gateway must not pile up. Cached
//! upstream 404s leave the index when they expire and count toward
//! `storage.max_size` (evicted before any content); orphan blob files (a
//! commit whose index insert failed or was cut by a crash) are deleted in
//! the background after a start and counted in `/metrics`, and `fsck`
//! reports them as leftovers with exit status 0 (only damage exits 1).

use crate::support::child::{
    ChildGateway, fsck, write_config, write_config_with_storage, write_hosted_and_pull_config,
};
use crate::support::gateway::generic_remote;
use crate::support::http::{client, drain};
use crate::support::upstream::Upstream;
use crate::support::{KIB, sha256_hex};
use crate::support::{bytes, metric};
use std::time::{Duration, Instant};

const TIMEOUTS: &str =
    "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"5s\"";

/// The gateway's `/metrics` text.
async fn metrics(c: &reqwest::Client, gw: &ChildGateway) -> String {
    c.get(gw.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Poll `/metrics` (every 100 ms, at most `limit`) until `done` holds;
/// returns the last text.
async fn wait_metrics(
    c: &reqwest::Client,
    gw: &ChildGateway,
    what: &str,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let m = metrics(c, gw).await;
        if done(&m) {
            return m;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}; metrics:\n{}\nlog:\n{}",
            m.lines()
                .filter(|l| l.starts_with("artgate_store"))
                .collect::<Vec<_>>()
                .join("\n"),
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET `n` distinct missing paths (404 upstream); all must answer 404.
async fn ask_for_missing(c: &reqwest::Client, gw: &ChildGateway, n: usize) {
    for i in 0..n {
        let r = c
            .get(gw.url(&format!("/api/v1/remote/r/missing/{i:05}.bin")))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 404, "missing/{i:05}.bin");
    }
}

/// Every distinct missing path leaves a negative entry; once
/// `negative_ttl` has passed, the upkeep removes it from the index, so the
/// index does not grow with every 404 a client ever asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_upstream_404s_leave_the_index() {
    const N: usize = 300;
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        &dir.path().join("data"),
        TIMEOUTS,
        &generic_remote("r", &up.url(), "negative_ttl = \"1s\""),
    );
    let mut gw = ChildGateway::start(&cfg).await;
    let c = client();
    let started = Instant::now();
    ask_for_missing(&c, &gw, N).await;
    eprintln!("{N} distinct 404s in {:.1?}", started.elapsed());
    let removed = "artgate_store_negatives_removed_total";
    wait_metrics(
        &c,
        &gw,
        "expired 404s removed",
        Duration::from_secs(20),
        |m| metric(m, removed, &[]) >= N as f64,
    )
    .await;
    eprintln!(
        "all {N} negative entries removed {:.1?} after the first request",
        started.elapsed()
    );
    // A 404 asked for again is fetched again and remembered again.
    ask_for_missing(&c, &gw, 1).await;
    assert_eq!(up.seen("/missing/00000.bin").gets, 2);
    gw.terminate().await;
    let (code, report) = fsck(&cfg, &[]).await;
    assert_eq!(code, 0, "{report:#}");
    // (The 404 asked for again may have expired and gone too.)
    let entries = report["entries"].as_u64().expect("entries");
    assert!(entries <= 1, "expired 404s left in the index: {report:#}");
}

/// Cached 404s count toward `storage.max_size` and are evicted before any
/// content: 1000 distinct 404s against a 64 KiB store leave the index
/// bounded, and the one real object stays cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_404s_count_toward_max_size_and_go_before_content() {
    const N: usize = 1000;
    let up = Upstream::start().await;
    let real = bytes(16 * KIB, 77);
    up.put_body("/real.bin", real.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config_with_storage(
        dir.path(),
        &dir.path().join("data"),
        "max_size = \"64KiB\"",
        TIMEOUTS,
        &generic_remote("r", &up.url(), "negative_ttl = \"1h\""),
    );
    let mut gw = ChildGateway::start(&cfg).await;
    let c = client();
    let real_url = gw.url("/api/v1/remote/r/real.bin");
    let got = drain(c.get(&real_url).send().await.expect("real")).await;
    assert_eq!(got.sha256, sha256_hex(&real));
    ask_for_missing(&c, &gw, N).await;
    let m = wait_metrics(
        &c,
        &gw,
        "404s evicted under max_size",
        Duration::from_secs(20),
        |m| {
            metric(m, "artgate_store_negatives_removed_total", &[]) > 0.0
                && metric(m, "artgate_store_bytes", &[]) <= (64 * KIB) as f64
        },
    )
    .await;
    let evicted_negatives = metric(&m, "artgate_store_negatives_removed_total", &[]);
    assert_eq!(
        metric(&m, "artgate_store_evictions_total", &[]),
        0.0,
        "content was evicted before the cached 404s"
    );
    let r = c.get(&real_url).send().await.expect("real again");
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    drain(r).await;
    assert_eq!(up.seen("/real.bin").gets, 1);
    gw.terminate().await;
    let (code, report) = fsck(&cfg, &[]).await;
    assert_eq!(code, 0, "{report:#}");
    let entries = report["entries"].as_u64().expect("entries");
    eprintln!(
        "{N} distinct 404s against max_size 64 KiB: {evicted_negatives} evicted, {entries} entries left"
    );
    assert!(
        entries < 300,
        "{entries} entries left of {} (the 404s were not bounded): {report:#}",
        N + 1
    );
}

/// A commit whose index insert fails leaves its blob file behind (an
/// orphan, as a crash between the two steps does): `fsck` reports it as a
/// leftover and exits 0; the next start deletes every orphan in the
/// background and counts them, and everything acknowledged is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_blob_files_are_reclaimed_after_a_start() {
    const KEPT: usize = 5;
    const ORPHANS: usize = 20;
    const SIZE: usize = 32 * KIB;
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = write_hosted_and_pull_config(dir.path(), &data, &up.url());
    // The first KEPT index inserts succeed, every later one fails.
    let fp = format!("index-put={KEPT}*off->return(eio)");
    let mut gw = ChildGateway::start_env(&cfg, &[("FAILPOINTS", fp.as_str())]).await;
    let c = client();
    let mut kept = Vec::new();
    for i in 0..KEPT + ORPHANS {
        let body = bytes(SIZE, 500 + i as u64);
        let url = gw.url(&format!("/api/v1/remote/hosted/u{i}.bin"));
        let status = c
            .put(&url)
            .body(body.clone())
            .send()
            .await
            .expect("upload")
            .status()
            .as_u16();
        if i < KEPT {
            assert_eq!(status, 201, "upload {i}");
            kept.push((i, sha256_hex(&body)));
        } else {
            assert_eq!(status, 500, "upload {i} with the index failing");
        }
    }
    gw.terminate().await;

    let (code, report) = fsck(&cfg, &[]).await;
    eprintln!(
        "fsck after {ORPHANS} failed index inserts: exit {code}, verdict {}, orphan_blobs {}",
        report["verdict"], report["orphan_blobs"]
    );
    assert_eq!(report["orphan_blobs"], ORPHANS, "{report:#}");
    assert_eq!(report["verdict"], "leftovers", "{report:#}");
    assert_eq!(code, 0, "leftovers are not damage: {report:#}");

    let mut gw = ChildGateway::start(&cfg).await;
    let m = wait_metrics(&c, &gw, "orphans reclaimed", Duration::from_secs(20), |m| {
        metric(m, "artgate_store_orphans_reclaimed_total", &[]) >= ORPHANS as f64
    })
    .await;
    assert_eq!(
        metric(&m, "artgate_store_orphans_reclaimed_total", &[]),
        ORPHANS as f64
    );
    assert_eq!(
        metric(&m, "artgate_store_orphan_bytes_reclaimed_total", &[]),
        (ORPHANS * SIZE) as f64
    );
    for (i, sha) in &kept {
        let r = c
            .get(gw.url(&format!("/api/v1/remote/hosted/u{i}.bin")))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "u{i}.bin");
        let got = drain(r).await;
        assert_eq!((got.error, &got.sha256), (None, sha), "u{i}.bin");
    }
    gw.terminate().await;
    let (code, report) = fsck(&cfg, &["--verify"]).await;
    assert_eq!(
        (code, &report["verdict"]),
        (0, &"clean".into()),
        "{report:#}"
    );
    assert_eq!(report["blob_files"], KEPT, "{report:#}");
}
