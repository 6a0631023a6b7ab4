//! Failpoints at every step of the commit protocol (the `failpoints`
//! feature; `gateway/src/store/failpoint.rs` lists the steps), set in the
//! `artgate` child through `FAILPOINTS`:
//!
//! - **crashes**: for each step, the crash cycles of `crash.rs` (smaller
//!   workload) with the gateway aborted exactly at that step instead of a
//!   `kill -9` at a random moment; at least 20 injected aborts per step
//!   (`ARTGATE_FAILPOINT_INJECTIONS=N` for more), each followed by
//!   `artgate fsck --verify`, a restart and the read-back of everything;
//! - **injected I/O errors**: `EIO` (and `ENOSPC` where a disk returns it)
//!   at write, fsync, rename, directory fsync and the index steps: uploads
//!   get a 5xx with a one-sentence JSON body (507 for `ENOSPC`), fills end
//!   in a 5xx or an aborted transfer — or whole, when the fault is in the
//!   commit, which comes after the verified body was released — and are
//!   not cached, nothing corrupt is committed, and once the fault is spent
//!   a retry succeeds and `fsck --verify` finds nothing at all;
//! - **a commit held** (`sleep` at a commit step): the client has the
//!   whole body before the commit ends, a request during the commit joins
//!   the fill (one upstream `GET`), and a `kill -9` then leaves the entry
//!   absent.

use super::crash::{Crash, Params, Summary, run};
use super::harness::seed;
use crate::support::bytes;
use crate::support::child::{ChildGateway, fsck, write_hosted_and_pull_config};
use crate::support::http::{Received, client, drain};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{KIB, sha256_hex};
use std::time::Duration;

/// Injected aborts per step in CI.
const INJECTIONS: u64 = 20;

/// Fail (not skip) when the binary cannot have failpoints.
fn require_feature() {
    if !cfg!(feature = "failpoints") {
        panic!(
            "the failpoint tests need the failpoints feature: \
             cargo test --workspace --locked --features artgate/failpoints"
        );
    }
}

/// Crash cycles aborting at `step`, letting up to `max_skip - 1` hits
/// pass first. The gateway starts with the failpoint armed, so the
/// read-back's fills (up to 32 commits) count too: the ranges reach past
/// them into the workload. For `blob-remove`, the flush (whose gc deletes
/// the pull-through remote's blob files) comes after 200 ms of workload
/// (whose fills the read-back's cache serves).
async fn crash_at(step: &'static str, max_skip: u64) -> Summary {
    require_feature();
    let injections = std::env::var("ARTGATE_FAILPOINT_INJECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(INJECTIONS);
    let p = Params {
        // A cycle the step is not reached in (kill -9 after the limit)
        // does not count; give each injection two tries.
        cycles: 2 * injections as usize + 2,
        injections: Some(injections),
        uploaders: 8,
        fillers: 8,
        hosted_keys: 32,
        objects: 32,
        max_object: 256 * KIB,
        max_upload: 128 * KIB,
        crash: Crash::Failpoint {
            step,
            max_skip,
            limit: Duration::from_secs(5),
        },
        flush_after: (step == "blob-remove").then_some(Duration::from_millis(200)),
    };
    let name = format!("failpoint {step}");
    let s = run(&p, seed(&name), &name).await;
    assert!(
        s.injections >= injections,
        "failpoint {step}: {} injected aborts in {} cycles, want {injections} \
         (is the binary built with the failpoints feature?)",
        s.injections,
        s.cycles
    );
    s
}

macro_rules! crash_tests {
    ($($test:ident: $step:literal, $max_skip:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            crash_at($step, $max_skip).await;
        }
    )*};
}

crash_tests! {
    abort_at_spool_create_loses_nothing: "spool-create", 100;
    abort_at_spool_write_loses_nothing: "spool-write", 600;
    abort_at_spool_fsync_loses_nothing: "spool-fsync", 100;
    abort_at_commit_verify_loses_nothing: "commit-verify", 100;
    abort_at_commit_rename_loses_nothing: "commit-rename", 100;
    abort_at_commit_fsync_dir_loses_nothing: "commit-fsync-dir", 100;
    abort_at_index_put_loses_nothing: "index-put", 100;
    abort_at_index_flush_loses_nothing: "index-flush", 24;
    abort_at_blob_remove_loses_nothing: "blob-remove", 8;
}

/// The steps a fill reaches only after its verified body was released to
/// the clients (its commit).
const RELEASED_BEFORE: [&str; 4] = [
    "spool-fsync",
    "commit-rename",
    "commit-fsync-dir",
    "index-put",
];

/// One injected-error case: `step` fails with `errno` (`eio`/`enospc`)
/// for its first `uses` hits (an upload, then a fill when `fill`).
struct Fault {
    step: &'static str,
    errno: &'static str,
    fill: bool,
}

const FAULTS: [Fault; 10] = [
    Fault {
        step: "spool-create",
        errno: "eio",
        fill: true,
    },
    Fault {
        step: "spool-write",
        errno: "eio",
        fill: true,
    },
    Fault {
        step: "spool-write",
        errno: "enospc",
        fill: true,
    },
    Fault {
        step: "spool-fsync",
        errno: "eio",
        fill: true,
    },
    Fault {
        step: "spool-fsync",
        errno: "enospc",
        fill: true,
    },
    Fault {
        step: "commit-rename",
        errno: "eio",
        fill: true,
    },
    Fault {
        step: "commit-fsync-dir",
        errno: "eio",
        fill: true,
    },
    Fault {
        step: "index-put",
        errno: "eio",
        fill: true,
    },
    Fault {
        step: "index-put",
        errno: "enospc",
        fill: false,
    },
    Fault {
        step: "index-flush",
        errno: "eio",
        fill: false,
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_io_errors_fail_cleanly_and_commit_nothing_corrupt() {
    require_feature();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = write_hosted_and_pull_config(dir.path(), &data, &up.url());
    let c = client();
    let mut summary = Vec::new();
    for (i, f) in FAULTS.iter().enumerate() {
        let what = format!("{} {}", f.step, f.errno);
        let uses = if f.fill { 2 } else { 1 };
        let fp = format!("{}={uses}*return({})", f.step, f.errno);
        let mut gw = ChildGateway::start_env(&cfg, &[("FAILPOINTS", fp.as_str())]).await;

        // An upload meets the fault: a 5xx with one sentence, nothing
        // served, and the retry stores it.
        let body = bytes(200 * KIB + i, i as u64 + 1);
        let url = gw.url(&format!("/api/v1/remote/hosted/u{i}.bin"));
        let r = c.put(&url).body(body.clone()).send().await.expect("upload");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let want = if f.errno == "enospc" { 507 } else { 500 };
        assert_eq!(status, want, "{what}: upload answered {status}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: the error body is not JSON ({e}): {text}"));
        let msg = v["error"].as_str().unwrap_or_default();
        let errtext = if f.errno == "enospc" {
            "No space left on device"
        } else {
            "Input/output error"
        };
        assert!(
            msg.contains(errtext) && !msg.contains('\n'),
            "{what}: the error body names the cause in one line: {text}"
        );
        let r = c.get(&url).send().await.expect("get");
        match r.status().as_u16() {
            404 => {}
            // The index took the entry and only its flush failed.
            200 if f.step == "index-flush" => {
                let got = drain(r).await;
                assert!(
                    got.error.is_none() && got.sha256 == sha256_hex(&body),
                    "{what}: a failed upload is served, but not whole"
                );
            }
            s => panic!("{what}: a refused upload answers {s}"),
        }

        // A fill meets the fault: a 5xx or an aborted body, never a clean
        // end with other bytes (whole when the fault is in the commit);
        // not cached.
        let mut fill_outcome = String::from("-");
        if f.fill {
            let obj = bytes(512 * KIB + i, 1000 + i as u64);
            let path = format!("/f{i}.bin");
            up.put(
                &path,
                Resource {
                    body: obj.clone().into(),
                    chunk: Some(32 * KIB),
                    chunk_delay: Some(Duration::from_millis(1)),
                    ..Default::default()
                },
            );
            let furl = gw.url(&format!("/api/v1/remote/pull/f{i}.bin"));
            // A fill whose first write fails may have its connection cut
            // before the status line went out: an aborted transfer too.
            fill_outcome = match c.get(&furl).send().await {
                Err(e) => format!("aborted before the status line ({e})"),
                Ok(r) if r.status() == 200 => {
                    let got = drain(r).await;
                    match got.error {
                        Some(_) => format!("200, aborted after {} bytes", got.len),
                        None => {
                            assert!(
                                got.sha256 == sha256_hex(&obj),
                                "{what}: a fill ended cleanly with other bytes"
                            );
                            "200, whole".into()
                        }
                    }
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    assert!(status >= 500, "{what}: fill answered {status}");
                    format!("{status}")
                }
            };
            // A fault in the commit comes after the verified body was
            // released: the client has it whole, and only the store lost it.
            if RELEASED_BEFORE.contains(&f.step) {
                assert_eq!(
                    fill_outcome, "200, whole",
                    "{what}: a commit that failed after the release"
                );
            }
            gw.fills_settled().await;
            let before = up.seen(&path).gets;
            for source in ["remote", "cache"] {
                // The refetch's commit ends before the next request.
                gw.fills_settled().await;
                let (src, got) = get_whole(&c, &furl, "fill again").await;
                assert!(
                    got.error.is_none() && got.sha256 == sha256_hex(&obj),
                    "{what}: the fill after the fault is not whole"
                );
                assert_eq!(src, source, "{what}: the failed fill was cached");
            }
            assert_eq!(up.seen(&path).gets, before + 1, "{what}: upstream GETs");
        }

        // The fault is spent: the upload is retried and stored whole.
        let r = c.put(&url).body(body.clone()).send().await.expect("retry");
        assert!(
            r.status().is_success(),
            "{what}: retry answered {}",
            r.status()
        );
        let got = drain(c.get(&url).send().await.expect("get")).await;
        assert!(
            got.error.is_none() && got.sha256 == sha256_hex(&body),
            "{what}: the retried upload is not served whole"
        );
        gw.terminate().await;

        // Nothing corrupt, nothing left over.
        let (code, report) = fsck(&cfg, &["--verify"]).await;
        assert_eq!(code, 0, "{what}: fsck --verify after the fault: {report:#}");
        summary.push(format!("{what}: upload {status}, fill {fill_outcome}"));
    }
    eprintln!(
        "injected I/O errors: {} cases; {}; fsck --verify clean after each",
        FAULTS.len(),
        summary.join("; ")
    );
}

/// GET `url` expecting 200: its `X-Artifact-Source` and its body read to
/// the end (`what` names the request in failures).
async fn get_whole(c: &reqwest::Client, url: &str, what: &str) -> (String, Received) {
    let r = c.get(url).send().await.expect(what);
    assert_eq!(r.status(), 200, "{what}");
    let src = r
        .headers()
        .get("x-artifact-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (src, drain(r).await)
}

/// A graceful stop (SIGTERM) while a fill's commit is still running, its
/// client served already: the gateway lets the commit finish before it
/// flushes the index and exits, so the object is stored and the restarted
/// gateway serves it from the cache without asking the upstream again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_lets_a_running_commit_finish() {
    require_feature();
    let up = Upstream::start().await;
    let obj = bytes(1024 * KIB, 78);
    up.put_body("/late.bin", obj.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = write_hosted_and_pull_config(dir.path(), &data, &up.url());
    // The commit's fsync takes 1.5 s (less than the test config's 2 s `shutdown_grace`): the client has its bytes first.
    let mut gw =
        ChildGateway::start_env(&cfg, &[("FAILPOINTS", "spool-fsync=1*sleep(1500)")]).await;
    let c = client();
    let url = gw.url("/api/v1/remote/pull/late.bin");
    let (src, got) = get_whole(&c, &url, "GET").await;
    assert_eq!(src, "remote");
    assert_eq!((got.error, got.sha256), (None, sha256_hex(&obj)));
    assert_eq!(
        gw.metric("artgate_fills_inflight").await,
        1.0,
        "still committing"
    );
    gw.terminate().await;
    let (code, report) = fsck(&cfg, &["--verify"]).await;
    assert_eq!(code, 0, "fsck after the stop: {report:#}");
    assert_eq!(
        report["entries"],
        1,
        "the commit finished: {report:#}\n{}",
        gw.log_text()
    );
    let gw = ChildGateway::start(&cfg).await;
    let url = gw.url("/api/v1/remote/pull/late.bin");
    let (src, _) = get_whole(&c, &url, "GET after the restart").await;
    assert_eq!(src, "cache");
    assert_eq!(up.seen("/late.bin").gets, 1, "fetched once");
}

/// A fill whose commit is held (the failpoint sleeps a minute at `step`,
/// before the spool's fsync or before the index write): the client gets
/// the whole verified body while the commit is still running; a request
/// during the commit joins the fill (one upstream `GET`, the same whole
/// body); a `kill -9` during the commit leaves no entry and no damage,
/// and the restarted gateway fetches the object again and then serves it
/// from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_is_served_whole_while_its_commit_runs_and_a_crash_then_stores_nothing() {
    require_feature();
    for step in ["spool-fsync", "index-put"] {
        let up = Upstream::start().await;
        let obj = bytes(4 * 1024 * KIB, 77);
        let want = sha256_hex(&obj);
        up.put(
            "/held.bin",
            Resource {
                body: obj.clone().into(),
                chunk: Some(64 * KIB),
                ..Default::default()
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let cfg = write_hosted_and_pull_config(dir.path(), &data, &up.url());
        let fp = format!("{step}=1*sleep(60000)");
        let mut gw = ChildGateway::start_env(&cfg, &[("FAILPOINTS", fp.as_str())]).await;
        let c = client();
        let url = gw.url("/api/v1/remote/pull/held.bin");

        // The leader's client: the whole body, well before the commit's
        // minute is over.
        for (who, gets) in [("the first client", 1), ("a client during the commit", 1)] {
            let what = format!("{step}: {who}");
            let got =
                tokio::time::timeout(Duration::from_secs(30), get_whole(&c, &url, &what)).await;
            let (src, got) = got.unwrap_or_else(|_| {
                panic!("{step}: {who} did not get the body while the commit was held")
            });
            assert_eq!(got.error, None, "{step}: {who}: the body broke off");
            assert_eq!(got.sha256, want, "{step}: {who}: not the object");
            assert_eq!(src, "remote", "{step}: {who} is served by the fill");
            assert_eq!(
                up.seen("/held.bin").gets,
                gets,
                "{step}: {who}: upstream GETs"
            );
            assert_eq!(
                gw.metric("artgate_fills_inflight").await,
                1.0,
                "{step}: {who}: the commit is still running"
            );
        }
        assert_eq!(
            gw.metric("artgate_coalesced_waiters_total").await,
            1.0,
            "{step}: the second client joined the fill"
        );

        // A crash during the commit: the entry is absent, nothing damaged.
        gw.kill9();
        let (code, report) = fsck(&cfg, &["--verify"]).await;
        assert_eq!(code, 0, "{step}: fsck after the crash: {report:#}");
        assert_eq!(report["entries"], 0, "{step}: {report:#}");

        // Restarted: fetched again, then served from the cache.
        let gw = ChildGateway::start(&cfg).await;
        let url = gw.url("/api/v1/remote/pull/held.bin");
        for (source, gets) in [("remote", 2), ("cache", 2)] {
            let (src, got) = get_whole(&c, &url, "GET after the restart").await;
            assert_eq!(
                (got.error, got.sha256.as_str()),
                (None, want.as_str()),
                "{step}"
            );
            assert_eq!(src, source, "{step}: after the restart");
            assert_eq!(up.seen("/held.bin").gets, gets, "{step}: upstream GETs");
            gw.fills_settled().await;
        }
    }
}
