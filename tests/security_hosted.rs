//! Hosted remotes under attack (issue 14): concurrent uploads against
//! write-once and quotas, and reads and writes through a virtual remote
//! that would reach members the client may not use.

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
/// held together by [`held_body`], chunked or (`declared`) with a
/// `Content-Length`; returns each upload's content with its status and
/// response body.
async fn race(
    urls: Vec<String>,
    size: usize,
    declared: bool,
) -> Vec<(Vec<u8>, u16, serde_json::Value)> {
    let client = reqwest::Client::new();
    let gate = Arc::new(Barrier::new(urls.len()));
    let tasks: Vec<_> = urls
        .into_iter()
        .enumerate()
        .map(|(i, url)| {
            let (client, gate) = (client.clone(), gate.clone());
            let data = bytes(size, 1000 + i as u64);
            tokio::spawn(async move {
                let mut req = client.put(&url).body(held_body(data.clone(), gate));
                if declared {
                    req = req.header("content-length", size);
                }
                let r = req.send().await.expect("PUT");
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
    let results = race(vec![url.clone(); 12], 64 * 1024, false).await;
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
    let results = race(vec![url.clone(); 12], 64 * 1024, false).await;
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

/// Item 3: 8 concurrent uploads of 1000 KiB against a 1 MiB quota, streamed
/// and with declared lengths: one is stored, seven are refused with 507
/// (before the fix all 8 were stored, 7.8 times the quota). The usage
/// counter is in the index, so after a restart the remote is still full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_race_never_overshoots_and_survives_a_restart() {
    let remotes = "[[remote]]\nname = \"q\"\npackage = \"local\"\nmax_size = \"1MiB\"\n\
                   [[remote]]\nname = \"d\"\npackage = \"local\"\nmax_size = \"1MiB\"\n";
    let gw = Gateway::start(remotes).await;
    let url = |p: &str| gw.url(&format!("/api/v1/remote/q/{p}"));
    let results = race(
        (0..8).map(|i| url(&format!("f{i}.bin"))).collect(),
        1000 * 1024,
        false,
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

    // Declared lengths are reserved when the uploads start: one fits and
    // the seven others are refused before any body is sent (their bodies
    // are held until then; without reservations nothing is refused before
    // the bodies arrive), and the refused uploads' reservations are
    // released.
    let d = |p: &str| gw.url(&format!("/api/v1/remote/d/{p}"));
    let (refused_early, rest) =
        declared_race((0..8).map(|i| d(&format!("f{i}.bin"))).collect()).await;
    assert_eq!(
        refused_early,
        vec![507; 7],
        "refused before the bodies were sent"
    );
    assert_eq!(rest, vec![201]);
    let r = reqwest::Client::new()
        .put(d("last.bin"))
        .body(bytes(24 * 1024, 8))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "a refused upload's reservation was kept");

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

const READER: &str = "virtual-reader-token-0123456789";
const WIDE: &str = "wide-token-0123456789abcdef";
const WRITER: &str = "virtual-writer-token-0123456789";

fn token(name: &str, token: &str, scopes: &str) -> String {
    format!(
        "[[token]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nscopes = {scopes}\n",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    )
}

/// Item 5: a hosted member with `anonymous_read = false` is not readable
/// anonymously through a virtual remote (before the fix: 401 direct, 200
/// through the virtual), nor with a token scoped to the virtual remote
/// only; writing through `write_to` needs the scope on the member too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_remote_is_never_more_open_than_its_members() {
    let remotes = format!(
        "[[remote]]\nname = \"private\"\npackage = \"local\"\nanonymous_read = false\n\
         [[remote]]\nname = \"public\"\npackage = \"local\"\n\
         [[remote]]\nname = \"all\"\npackage = \"virtual\"\nmembers = [\"private\", \"public\"]\nwrite_to = \"private\"\n\
         {}{}{}",
        token("reader", READER, "{ all = [\"read\"] }"),
        token("wide", WIDE, "{ \"*\" = [\"read\", \"write\"] }"),
        token(
            "writer",
            WRITER,
            "{ all = [\"read\", \"write\"], public = [\"write\"] }"
        ),
    );
    let gw = Gateway::start(&remotes).await;
    let c = reqwest::Client::new();
    let bearer = |t: &str| format!("Bearer {t}");
    let r = c
        .put(gw.url("/api/v1/remote/private/secret.txt"))
        .header("authorization", bearer(WIDE))
        .body("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let direct = c
        .get(gw.url("/api/v1/remote/private/secret.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 401);
    // Anonymous through the virtual remote: refused like the member.
    let r = c
        .get(gw.url("/api/v1/remote/all/secret.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the private member leaked through the virtual remote"
    );
    assert!(r.headers().contains_key("www-authenticate"));
    let body = r.text().await.unwrap();
    assert!(!body.contains("secret"), "{body}");
    // A token scoped to the virtual remote only: 403 naming the member.
    let r = c
        .get(gw.url("/api/v1/remote/all/secret.txt"))
        .header("authorization", bearer(READER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let msg = r.text().await.unwrap();
    assert!(
        msg.contains("\\\"private\\\"") && msg.contains("\\\"all\\\""),
        "{msg}"
    );
    // A token that may read every member reads through it.
    let r = c
        .get(gw.url("/api/v1/remote/all/secret.txt"))
        .header("authorization", bearer(WIDE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-member"], "private");
    assert_eq!(r.text().await.unwrap(), "secret");

    // Writing through write_to needs the write scope on the member too.
    let r = c
        .put(gw.url("/api/v1/remote/all/planted.txt"))
        .header("authorization", bearer(WRITER))
        .body("planted")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a token without write on the member wrote into it"
    );
    let r = c
        .get(gw.url("/api/v1/remote/private/planted.txt"))
        .header("authorization", bearer(WIDE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .put(gw.url("/api/v1/remote/all/allowed.txt"))
        .header("authorization", bearer(WIDE))
        .body("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// Concurrent PUTs of 1000 KiB with `Content-Length` (and `Expect:
/// 100-continue`, so that a refusal is answered without reading the body)
/// to `urls`, whose bodies send one byte and then wait until all but one
/// upload have been answered (at most 30 s). Returns the statuses of the
/// uploads answered while the bodies were held, and of the others.
async fn declared_race(urls: Vec<String>) -> (Vec<u16>, Vec<u16>) {
    let size = 1000 * 1024;
    let client = reqwest::Client::new();
    let (gate, _) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let n = urls.len();
    for (i, url) in urls.into_iter().enumerate() {
        let (client, done_tx) = (client.clone(), done_tx.clone());
        let open = gate.subscribe();
        let data = bytes(size, 3000 + i as u64);
        tokio::spawn(async move {
            let parts = [
                bytes::Bytes::copy_from_slice(&data[..1]),
                bytes::Bytes::copy_from_slice(&data[1..]),
            ];
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let part = parts.get(i).cloned();
                let mut open = open.clone();
                async move {
                    let part = part?;
                    if i == 1 {
                        let _ = open.wait_for(|o| *o).await;
                    }
                    Some((Ok::<_, std::io::Error>(part), i + 1))
                }
            });
            let r = client
                .put(&url)
                .header("content-length", size)
                .header("expect", "100-continue")
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await;
            let _ = done_tx.send(r.map(|r| r.status().as_u16()).unwrap_or(0));
        });
    }
    drop(done_tx);
    let mut early = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while early.len() < n - 1 {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(status)) => early.push(status),
            _ => break,
        }
    }
    gate.send_replace(true);
    let mut rest = Vec::new();
    while let Some(status) = tokio::time::timeout(Duration::from_secs(60), done_rx.recv())
        .await
        .expect("an upload never finished")
    {
        rest.push(status);
    }
    (early, rest)
}
