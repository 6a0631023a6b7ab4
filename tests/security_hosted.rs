//! Hosted remotes under attack (issue 14): concurrent uploads against
//! write-once and quotas.

use crate::support::bytes;
use crate::support::gateway::Gateway;
use sha2::Digest as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

/// A chunked upload body that sends its first byte, then waits until every
/// upload sharing `gate` has started (and a moment more, so that the
/// gateway has checked all of them before any is committed), then sends
/// the rest. It makes the uploads truly concurrent.
fn held_body(data: Vec<u8>, gate: Arc<Barrier>) -> reqwest::Body {
    let split = 1.min(data.len());
    let parts = vec![
        bytes::Bytes::copy_from_slice(&data[..split]),
        bytes::Bytes::copy_from_slice(&data[split..]),
    ];
    let stream =
        futures_util::stream::unfold((0usize, parts, gate), |(i, parts, gate)| async move {
            let part = parts.get(i)?.clone();
            if i == 1 {
                gate.wait().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Some((Ok::<_, std::io::Error>(part), (i + 1, parts, gate)))
        });
    reqwest::Body::wrap_stream(stream)
}

/// Concurrent PUTs of `size` bytes each (different content) to `urls`,
/// held together by [`held_body`]; returns each upload's content with its
/// status and response body.
async fn race(urls: Vec<String>, size: usize) -> Vec<(Vec<u8>, u16, serde_json::Value)> {
    let client = reqwest::Client::new();
    let gate = Arc::new(Barrier::new(urls.len()));
    let tasks: Vec<_> = urls
        .into_iter()
        .enumerate()
        .map(|(i, url)| {
            let (client, gate) = (client.clone(), gate.clone());
            let data = bytes(size, 1000 + i as u64);
            tokio::spawn(async move {
                let r = client
                    .put(&url)
                    .body(held_body(data.clone(), gate))
                    .send()
                    .await
                    .expect("PUT");
                let status = r.status().as_u16();
                let body = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
                (data, status, body)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        let done = tokio::time::timeout(Duration::from_secs(60), t).await;
        out.push(done.expect("upload timed out").expect("upload task"));
    }
    out
}

fn count(results: &[(Vec<u8>, u16, serde_json::Value)], status: u16) -> usize {
    results.iter().filter(|(_, s, _)| *s == status).count()
}

/// Blob files in the store under `data`.
fn blob_files(data: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(data.join("blobs/sha256")) else {
        return 0;
    };
    dirs.filter_map(|d| d.ok())
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .map(|files| files.count())
        .sum()
}

/// Item 2: of 12 concurrent uploads to one new path of a write-once remote,
/// exactly one is acknowledged (201) and kept; the others are refused with
/// 409 (before the fix all 12 got 201 and 11 were silently lost). The
/// losers' blobs do not leak: garbage collection deletes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_once_race_acknowledges_exactly_one_upload() {
    let gw = Gateway::start(
        "[[remote]]\nname = \"frozen\"\npackage = \"local\"\n[remote.options]\noverwrite = \"false\"\n",
    )
    .await;
    let url = gw.url("/api/v1/remote/frozen/release.bin");
    let results = race(vec![url.clone(); 12], 64 * 1024).await;
    let statuses: Vec<u16> = results.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(count(&results, 201), 1, "statuses: {statuses:?}");
    assert_eq!(count(&results, 409), 11, "statuses: {statuses:?}");
    for (_, s, body) in &results {
        if *s == 409 {
            assert!(
                body["error"].as_str().unwrap().contains("already exists"),
                "{body}"
            );
        }
    }
    let (winner, _, _) = results.iter().find(|(_, s, _)| *s == 201).unwrap();
    let got = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert!(
        got.as_ref() == winner.as_slice(),
        "the acknowledged upload was not kept"
    );
    // The refused uploads' blobs are collected (upkeep runs every 5 s):
    // only the winner's file stays.
    let data = gw.dir.path().join("data");
    let mut files = blob_files(&data);
    for _ in 0..60 {
        if files == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        files = blob_files(&data);
    }
    assert_eq!(files, 1, "blob files of refused uploads were left behind");
}

/// Item 2, overwrites allowed: every upload is stored when it commits and
/// the last one wins; exactly one of them created the path (201), the
/// others replaced an entry (200). Before the fix all 12 said 201.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_race_reports_what_each_commit_did() {
    let gw = Gateway::start("[[remote]]\nname = \"builds\"\npackage = \"local\"\n").await;
    let url = gw.url("/api/v1/remote/builds/latest.bin");
    let results = race(vec![url.clone(); 12], 64 * 1024).await;
    let statuses: Vec<u16> = results.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(count(&results, 201), 1, "statuses: {statuses:?}");
    assert_eq!(count(&results, 200), 11, "statuses: {statuses:?}");
    let got = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    let kept = hex::encode(sha2::Sha256::digest(&got));
    assert!(
        results.iter().any(|(_, _, b)| b["sha256"] == kept.as_str()),
        "the stored content is none of the acknowledged uploads"
    );
}

/// Item 3: 8 concurrent uploads of 1000 KiB against a 1 MiB quota: one is
/// stored, seven are refused with 507 (before the fix all 8 were stored,
/// 7.8 times the quota). The usage counter is in the index, so after a
/// restart the remote is still full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_race_never_overshoots_and_survives_a_restart() {
    let remotes = "[[remote]]\nname = \"q\"\npackage = \"local\"\nmax_size = \"1MiB\"\n";
    let gw = Gateway::start(remotes).await;
    let url = |p: &str| gw.url(&format!("/api/v1/remote/q/{p}"));
    let results = race(
        (0..8).map(|i| url(&format!("f{i}.bin"))).collect(),
        1000 * 1024,
    )
    .await;
    let statuses: Vec<u16> = results.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(count(&results, 201), 1, "statuses: {statuses:?}");
    assert_eq!(count(&results, 507), 7, "statuses: {statuses:?}");
    let list: serde_json::Value = serde_json::from_slice(
        &reqwest::get(url("?list"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let stored: u64 = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["size"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, 1000 * 1024, "{list}");

    // After a restart the counter still says 1000 KiB are used.
    let dir = gw.stop().await;
    let gw = Gateway::start_in(dir, remotes).await;
    let c = reqwest::Client::new();
    let put = |p: &str, n: usize| {
        c.put(gw.url(&format!("/api/v1/remote/q/{p}")))
            .body(bytes(n, 7))
            .send()
    };
    assert_eq!(put("more.bin", 100 * 1024).await.unwrap().status(), 507);
    assert_eq!(put("fits.bin", 24 * 1024).await.unwrap().status(), 201);
}
