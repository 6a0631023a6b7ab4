//! Cluster mode: several gateways sharing one bucket (`[shared]`) on a
//! real S3 server, SeaweedFS (`support/seaweed.rs`), each node with its
//! own disk, in front of the in-process upstream.

use crate::support::child::ChildGateway;
use crate::support::gateway::{Gateway, generic_remote};
use crate::support::http::{Got, drain_progress, send};
use crate::support::nginx::Nginx;
use crate::support::seaweed::Seaweed;
use crate::support::upstream::{Resource, Upstream};
use crate::support::{KIB, MIB, bytes, eventually, sha256_hex};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// A node named `node` sharing `prefix` of `sw`'s bucket, with `remotes`.
async fn node(sw: &Seaweed, prefix: &str, node: &str, remotes: &str) -> Gateway {
    Gateway::start(&format!("{}\n{remotes}", sw.shared_table(prefix, node))).await
}

/// `GET` through `gw`, and after an upstream answer wait until its fill
/// has settled.
async fn get(gw: &Gateway, path: &str) -> Got {
    let g = send("GET", &gw.url(path), &[]).await;
    if g.headers
        .get("x-artifact-source")
        .is_some_and(|v| v == "remote")
    {
        gw.fills_settled().await;
    }
    g
}

/// Wait (at most 10 s) until the bucket holds `n` objects under `prefix`.
async fn wait_for_objects(sw: &Seaweed, prefix: &str, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let keys = sw.list(prefix).await.unwrap_or_default();
        if keys.len() >= n {
            return keys;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bucket holds {keys:?} under {prefix:?}, not {n} objects"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one node fetched, the others serve from the bucket without asking
/// the upstream: a node that never saw it, and a node started with an
/// empty disk while the upstream is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_node_fetched_the_others_serve_from_the_bucket() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    let big = bytes(20 * 1024 * 1024 + 3, 7);
    let small = bytes(1000, 8);
    up.put_body("/big.bin", big.clone());
    up.put_body("/small.bin", small.clone());
    let remote = generic_remote("r", &up.url(), "");
    let a = node(&sw, "c1", "a", &remote).await;
    let b = node(&sw, "c1", "b", &remote).await;

    for (path, body) in [("/big.bin", &big), ("/small.bin", &small)] {
        let g = get(&a, &format!("/api/v1/remote/r{path}")).await;
        assert_eq!((g.status, g.source()), (200, "remote"), "{path} through a");
        assert!(g.body() == body.as_slice(), "{path}: body differs");
    }
    // Written through in the background: two blobs and two records.
    let blobs = wait_for_objects(&sw, "c1/blobs/sha256/", 2).await;
    wait_for_objects(&sw, "c1/index/r/", 2).await;
    let big_hex = crate::support::sha256_hex(&big);
    assert!(
        blobs.contains(&format!("c1/blobs/sha256/{}/{big_hex}", &big_hex[..2])),
        "the blob is under its digest: {blobs:?}"
    );
    assert_eq!(sw.multipart_uploads().await, Some(0), "no upload left open");

    for (path, body) in [("/big.bin", &big), ("/small.bin", &small)] {
        let g = get(&b, &format!("/api/v1/remote/r{path}")).await;
        assert_eq!((g.status, g.source()), (200, "cache"), "{path} through b");
        assert!(
            g.body() == body.as_slice(),
            "{path}: body differs through b"
        );
    }
    assert_eq!(up.seen("/big.bin").total + up.seen("/small.bin").total, 2);
    assert_eq!(
        b.metric("artgate_shared_blob_downloads_total", &[]).await,
        2.0
    );
    assert!(b.metric("artgate_shared_record_hits_total", &[]).await >= 2.0);
    let hits = "artgate_shared_tier_hits_total";
    let shared_hits = b.metric(hits, &["tier=\"shared\""]).await;
    assert_eq!(shared_hits, 2.0, "both adopted from the bucket");
    assert_eq!(
        get(&b, "/api/v1/remote/r/small.bin").await.source(),
        "cache"
    );
    let held =
        b.metric(hits, &["tier=\"memory\""]).await + b.metric(hits, &["tier=\"local\""]).await;
    assert_eq!(held, 1.0, "then held by b");
    assert_eq!(a.metric("artgate_shared_degraded", &[]).await, 0.0);

    up.set_down(true);
    let c = node(&sw, "c1", "c", &remote).await;
    for (path, body) in [("/big.bin", &big), ("/small.bin", &small)] {
        let g = get(&c, &format!("/api/v1/remote/r{path}")).await;
        assert_eq!(
            (g.status, g.source()),
            (200, "cache"),
            "{path} through a new node"
        );
        assert!(
            g.body() == body.as_slice(),
            "{path}: body differs through c"
        );
    }
    assert_eq!(
        up.seen("/big.bin").total + up.seen("/small.bin").total,
        2,
        "the upstream saw nothing more"
    );
}

/// A mutable entry one node revalidated is fresh for every node until it
/// expires: the second node neither fetches nor revalidates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_is_revalidated_once_for_the_whole_cluster() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    let p = "/repodata/repomd.xml";
    up.put(
        p,
        Resource {
            body: "version one".into(),
            etag: Some("\"v1\"".into()),
            ..Default::default()
        },
    );
    let remote = generic_remote(
        "r",
        &up.url(),
        "mutable_patterns = ['repomd\\.xml$']\nmutable_ttl = \"4s\"\ncheck_mutable_updates = true",
    );
    let a = node(&sw, "c2", "a", &remote).await;
    let b = node(&sw, "c2", "b", &remote).await;
    let url = "/api/v1/remote/r/repodata/repomd.xml";

    assert_eq!(get(&a, url).await.source(), "remote");
    let key = wait_for_objects(&sw, "c2/index/r/", 1).await.remove(0);
    let first = sw.get(&key).await.expect("the record");
    let g = get(&b, url).await;
    assert_eq!((g.source(), g.body()), ("cache", &b"version one"[..]));
    assert_eq!(up.seen(p).total, 1, "b took a's copy");

    tokio::time::sleep(Duration::from_millis(4100)).await;
    let g = get(&a, url).await;
    assert_eq!((g.status, g.source()), (200, "cache"), "a revalidated");
    let s = up.seen(p);
    assert_eq!((s.total, s.conditional, s.not_modified), (2, 1, 1));
    // The refreshed record reaches the bucket in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sw.get(&key).await.as_deref() == Some(first.as_str()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the record was never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let g = get(&b, url).await;
    assert_eq!((g.source(), g.body()), ("cache", &b"version one"[..]));
    assert_eq!(up.seen(p).total, 2, "b trusted a's revalidation");
}

/// A hosted upload is in the bucket before its 201: another node reads it
/// at once; a delete through a third node is seen by all of them; a
/// write-once key refuses a second upload through another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_uploads_are_shared_before_they_are_acknowledged() {
    let sw = Seaweed::start().await;
    let remotes = "[[remote]]\nname = \"h\"\npackage = \"local\"\n[[remote]]\nname = \"once\"\npackage = \"local\"\n[remote.options]\noverwrite = \"false\"\n";
    let a = node(&sw, "c3", "a", remotes).await;
    let b = node(&sw, "c3", "b", remotes).await;
    let c = node(&sw, "c3", "c", remotes).await;
    let http = reqwest::Client::new();
    let data = bytes(9 * 1024 * 1024 + 11, 3);

    let r = http
        .put(a.url("/api/v1/remote/h/app/1.0/app.bin"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for gw in [&b, &a] {
        let g = get(gw, "/api/v1/remote/h/app/1.0/app.bin").await;
        assert_eq!(g.status, 200, "read after a's 201");
        assert!(g.body() == data.as_slice(), "the body differs");
    }
    assert_eq!(sw.multipart_uploads().await, Some(0), "no upload left open");

    let r = http
        .delete(c.url("/api/v1/remote/h/app/1.0/app.bin"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "delete through c: {}", r.status());
    for (name, gw) in [("a", &a), ("b", &b), ("c", &c)] {
        let g = get(gw, "/api/v1/remote/h/app/1.0/app.bin").await;
        assert_eq!(g.status, 404, "read through {name} after the delete");
    }
    let tomb = sw.list("c3/index/h/").await.unwrap();
    assert_eq!(tomb.len(), 1, "one record: {tomb:?}");
    let text = sw.get(&tomb[0]).await.unwrap();
    assert!(text.contains("\"entry\":null"), "a tombstone: {text}");

    let put = |gw: &Gateway, body: &'static str| {
        http.put(gw.url("/api/v1/remote/once/v1.txt"))
            .body(body)
            .send()
    };
    assert_eq!(put(&a, "first").await.unwrap().status(), 201);
    assert_eq!(
        put(&b, "second").await.unwrap().status(),
        409,
        "write-once across nodes"
    );
    assert_eq!(get(&c, "/api/v1/remote/once/v1.txt").await.body(), b"first");
    assert_eq!(get(&b, "/api/v1/remote/once/v1.txt").await.body(), b"first");
    // Deleted through c, the key takes a new upload through b, and a (which
    // holds "first") serves the new one.
    let r = http
        .delete(c.url("/api/v1/remote/once/v1.txt"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "delete through c: {}", r.status());
    assert_eq!(
        put(&b, "third").await.unwrap().status(),
        201,
        "over the tombstone"
    );
    assert_eq!(get(&a, "/api/v1/remote/once/v1.txt").await.body(), b"third");
    assert_eq!(put(&c, "fourth").await.unwrap().status(), 409);
}

/// With the bucket stopped, a node serves what it holds, fetches misses
/// without sharing them, refuses uploads with 503 and says it is
/// degraded; when the bucket is back, uploads are shared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_its_bucket_serves_what_it_holds_and_refuses_uploads() {
    let mut sw = Seaweed::start().await;
    let up = Upstream::start().await;
    up.put_body("/held.bin", bytes(5000, 1));
    up.put_body("/later.bin", bytes(6000, 2));
    let remotes = format!(
        "{}[[remote]]\nname = \"h\"\npackage = \"local\"\n",
        generic_remote("r", &up.url(), "")
    );
    let a = node(&sw, "c4", "a", &remotes).await;
    let http = reqwest::Client::new();
    assert_eq!(
        get(&a, "/api/v1/remote/r/held.bin").await.source(),
        "remote"
    );
    let r = http
        .put(a.url("/api/v1/remote/h/kept.txt"))
        .body("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_for_objects(&sw, "c4/index/r/", 1).await;

    sw.stop().await;
    let g = get(&a, "/api/v1/remote/r/held.bin").await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert!(g.body() == bytes(5000, 1).as_slice());
    assert_eq!(get(&a, "/api/v1/remote/h/kept.txt").await.body(), b"kept");
    let g = get(&a, "/api/v1/remote/r/later.bin").await;
    assert_eq!(g.status, 200, "{}", String::from_utf8_lossy(g.body()));
    assert_eq!(
        (g.status, g.source()),
        (200, "remote"),
        "a miss is fetched unshared"
    );
    assert!(g.body() == bytes(6000, 2).as_slice());
    let r = http
        .put(a.url("/api/v1/remote/h/new.txt"))
        .body("new")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "an upload the bucket cannot take");
    let text = r.text().await.unwrap();
    assert!(text.contains("shared store is unavailable"), "{text}");
    // A hosted key this node lacks is unknown while the bucket is down
    // (another node may hold it): 503, not 404.
    assert_eq!(
        get(&a, "/api/v1/remote/h/new.txt").await.status,
        503,
        "nothing half-stored, and no false 404"
    );
    let health: serde_json::Value =
        serde_json::from_slice(get(&a, "/health").await.body()).unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["shared"]["state"], "degraded", "{health}");
    assert_eq!(health["node"], "a");
    assert_eq!(a.metric("artgate_shared_degraded", &[]).await, 1.0);
    eventually(
        "later.bin to be counted as kept on this node only",
        Duration::from_secs(10),
        || async { (a.metric("artgate_shared_unshared_total", &[]).await >= 1.0).then_some(()) },
    )
    .await;

    sw.resume().await;
    // While degraded a node asks the bucket at most once a second: the
    // first requests after the bucket is back may still be refused.
    let a2 = &a;
    let status = eventually(
        "the bucket to answer again",
        Duration::from_secs(30),
        || async move {
            let s = get(a2, "/api/v1/remote/h/new.txt").await.status;
            (s != 503).then_some(s)
        },
    )
    .await;
    assert_eq!(status, 404, "the refused upload left nothing");
    let http2 = &http;
    eventually(
        "uploads to work again",
        Duration::from_secs(30),
        || async move {
            let r = http2
                .put(a2.url("/api/v1/remote/h/new.txt"))
                .body("new")
                .send()
                .await
                .unwrap();
            (r.status() == 201).then_some(())
        },
    )
    .await;
    let health: serde_json::Value =
        serde_json::from_slice(get(&a, "/health").await.body()).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");
    let b = node(&sw, "c4", "b", &remotes).await;
    assert_eq!(get(&b, "/api/v1/remote/h/new.txt").await.body(), b"new");
    assert_eq!(get(&b, "/api/v1/remote/h/kept.txt").await.body(), b"kept");
    // What a kept on its own during the outage reaches the bucket in a
    // later upkeep round, and b serves it without the upstream.
    wait_for_objects(&sw, "c4/index/r/", 2).await;
    let g = get(&b, "/api/v1/remote/r/later.bin").await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert!(g.body() == bytes(6000, 2).as_slice());
    assert_eq!(up.seen("/later.bin").total, 1);
}

/// Thirty clients on each of three nodes miss one 50 MiB object at once:
/// one node fetches it from the upstream, the other two stream its fill
/// (every node's clients have bytes while the upstream still holds the
/// body back), and all ninety bodies are the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_upstream_fetch_of_a_herd_miss() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    let body = bytes(50 * MIB, 11);
    let want = sha256_hex(&body);
    // Sent slowly (about 12 s for the whole body) rather than held: a
    // hold longer than the test head's 2 s idle timeout, which a loaded
    // machine may need before every node's clients have bytes, would cut
    // the fill.
    up.put(
        "/herd.bin",
        Resource {
            body: body.into(),
            chunk: Some(256 * KIB),
            chunk_delay: Some(Duration::from_millis(60)),
            ..Default::default()
        },
    );
    let remote = generic_remote("r", &up.url(), "");
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(node(&sw, "c5", name, &remote).await);
    }
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    let mut progress: Vec<Vec<Arc<AtomicU64>>> = Vec::new();
    for gw in &nodes {
        let mut mine = Vec::new();
        for _ in 0..30 {
            let p = Arc::new(AtomicU64::new(0));
            mine.push(p.clone());
            let (c, u) = (client.clone(), gw.url("/api/v1/remote/r/herd.bin"));
            tasks.push(tokio::spawn(async move {
                let resp = c.get(u).send().await.expect("request");
                assert_eq!(resp.status(), 200);
                drain_progress(resp, p).await
            }));
        }
        progress.push(mine);
    }
    let progress = &progress;
    eventually(
        "every node's clients to have bytes while the upstream holds the body",
        Duration::from_secs(30),
        || async move {
            progress
                .iter()
                .all(|node| node.iter().any(|p| p.load(SeqCst) > 0))
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        up.bodies_completed(),
        0,
        "the upstream must still be sending"
    );
    for t in tasks {
        let r = t.await.expect("client task");
        assert_eq!(r.error, None);
        assert_eq!((r.len, r.sha256.as_str()), (50 * MIB as u64, want.as_str()));
    }
    let mut streamed = Vec::new();
    for gw in &nodes {
        streamed.push((
            gw.metric("artgate_shared_peer_fills_total", &[]).await,
            gw.metric("artgate_shared_lease_takeovers_total", &[]).await,
            gw.metric("artgate_shared_errors_total", &[]).await,
            String::from_utf8_lossy(get(gw, "/health").await.body()).into_owned(),
        ));
    }
    assert_eq!(
        up.seen("/herd.bin").gets,
        1,
        "one upstream fetch for the cluster; per node (streamed, takeovers, bucket errors, health): {streamed:?}"
    );
    let followers: f64 = streamed.iter().map(|s| s.0).sum();
    assert_eq!(followers, 2.0, "two nodes streamed the third's fill");
    for gw in &nodes {
        gw.fills_settled().await;
    }
    // The lease is given up once the entry is in the bucket.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sw.list("c5/leases/").await.unwrap_or_default().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease was never given up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sw.multipart_uploads().await, Some(0), "no upload left open");
    let g = get(&nodes[2], "/api/v1/remote/r/herd.bin").await;
    assert_eq!((g.status, g.source()), (200, "cache"));
}

/// The node fetching for the cluster dies (`kill -9`) mid-fill: the
/// clients another node was streaming that fill to end with an aborted
/// transfer, never a clean short body; that node's next request fetches
/// the object once itself; the bucket holds nothing of it but the dead
/// node's lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetching_node_killed_mid_fill_leaves_nothing_partial() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    let body = bytes(20 * MIB, 12);
    let want = sha256_hex(&body);
    up.put(
        "/cut.bin",
        Resource {
            body: body.into(),
            chunk: Some(256 * KIB),
            hold_after_bytes: Some(2 * MIB),
            ..Default::default()
        },
    );
    let remote = generic_remote("r", &up.url(), "");
    let dir = tempfile::tempdir().unwrap();
    let tail = format!("{}\n{remote}", sw.shared_table("c6", "a"));
    let mut a = ChildGateway::start_in(dir.path(), &tail, "warn,artgate=info").await;
    let b = node(&sw, "c6", "b", &remote).await;
    let client = reqwest::Client::new();

    // a leads: its client is first, and the upstream is sending to it.
    let a_url = a.url("/api/v1/remote/r/cut.bin");
    let first = tokio::spawn({
        let c = client.clone();
        async move { drain_progress(c.get(a_url).send().await.unwrap(), Arc::default()).await }
    });
    eventually("a's fetch to start", Duration::from_secs(15), || async {
        (up.seen("/cut.bin").gets == 1).then_some(())
    })
    .await;
    let mut followers = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..5 {
        let p = Arc::new(AtomicU64::new(0));
        progress.push(p.clone());
        let (c, u) = (client.clone(), b.url("/api/v1/remote/r/cut.bin"));
        followers.push(tokio::spawn(async move {
            let resp = c.get(u).send().await.expect("request");
            assert_eq!(resp.status(), 200);
            drain_progress(resp, p).await
        }));
    }
    let progress = &progress;
    eventually(
        "b's clients to be streamed a's fill",
        Duration::from_secs(15),
        || async move { progress.iter().all(|p| p.load(SeqCst) > 0).then_some(()) },
    )
    .await;
    assert_eq!(up.seen("/cut.bin").gets, 1, "b streams a's fill");

    a.kill9();
    for t in followers {
        let r = t.await.expect("client task");
        assert!(
            r.error.is_some(),
            "a cut fill must abort, not end cleanly short: {} bytes",
            r.len
        );
        assert!(r.len < 20 * MIB as u64);
    }
    let r = first.await.expect("a's client");
    assert!(r.error.is_some() || r.len < 20 * MIB as u64);
    up.release();
    b.fills_settled().await;

    let g = get(&b, "/api/v1/remote/r/cut.bin").await;
    assert_eq!(
        (g.status, g.source()),
        (200, "remote"),
        "b fetches it itself"
    );
    assert!(sha256_hex(g.body()) == want, "the body differs");
    assert_eq!(up.seen("/cut.bin").gets, 2, "once more, by b");
    let g = get(&b, "/api/v1/remote/r/cut.bin").await;
    assert_eq!(g.source(), "cache");
    // b's copy reaches the bucket in the background.
    wait_for_objects(&sw, "c6/index/r/", 1).await;
    assert_eq!(sw.multipart_uploads().await, Some(0), "no upload left open");
    for key in sw.list("c6/").await.unwrap() {
        assert!(
            key.starts_with("c6/leases/")
                || key.starts_with("c6/gc/")
                || key.starts_with("c6/access/")
                || key.starts_with("c6/index/")
                || key.starts_with("c6/blobs/"),
            "{key}"
        );
    }
}

/// The deployment guide's nginx (`docs/cluster/nginx.conf`, as written)
/// in front of three nodes: reads through it are served by whichever node
/// it picks, with one upstream fetch for all; an upload through it is read
/// back through it; with a node killed, everything is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_nginx_in_front_of_three_nodes() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    let body = bytes(300_000, 21);
    up.put_body("/n.bin", body.clone());
    let remotes = format!(
        "{}[[remote]]\nname = \"h\"\npackage = \"local\"\n",
        generic_remote("r", &up.url(), "")
    );
    let a = node(&sw, "c7", "a", &remotes).await;
    let b = node(&sw, "c7", "b", &remotes).await;
    let dir = tempfile::tempdir().unwrap();
    let tail = format!("{}\n{remotes}", sw.shared_table("c7", "c"));
    let mut c = ChildGateway::start_in(dir.path(), &tail, "warn,artgate=info").await;
    let nginx = Nginx::start_guide(&[a.addr, b.addr, c.addr]).await;
    let http = reqwest::Client::new();

    let mut sources = Vec::new();
    for i in 0..9 {
        let g = get_url(&nginx.url("/api/v1/remote/r/n.bin")).await;
        assert_eq!(g.status, 200, "request {i}: {}", nginx.errors());
        assert!(g.body() == body.as_slice(), "request {i}: the body differs");
        sources.push(g.source().to_owned());
        // Each node finishes its fill before the next request.
        for gw in [&a, &b] {
            gw.fills_settled().await;
        }
        c.fills_settled().await;
    }
    assert_eq!(
        up.seen("/n.bin").gets,
        1,
        "one fetch behind nginx: {sources:?}"
    );
    let served = [
        a.metric("artgate_requests_total", &[]).await,
        b.metric("artgate_requests_total", &[]).await,
        c.metric("artgate_requests_total").await,
    ];
    assert!(
        served.iter().all(|n| *n >= 1.0),
        "nginx spreads the requests: {served:?}"
    );
    assert!(
        sources.iter().filter(|s| *s == "cache").count() >= 8,
        "{sources:?}"
    );
    let r = http
        .put(nginx.url("/api/v1/remote/h/up.txt"))
        .body("through nginx")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for _ in 0..3 {
        assert_eq!(
            get_url(&nginx.url("/api/v1/remote/h/up.txt")).await.body(),
            b"through nginx"
        );
    }

    c.kill9();
    for i in 0..6 {
        let g = get_url(&nginx.url("/api/v1/remote/r/n.bin")).await;
        assert_eq!(g.status, 200, "request {i} with c down: {}", nginx.errors());
        assert!(g.body() == body.as_slice());
        let g = get_url(&nginx.url("/api/v1/remote/h/up.txt")).await;
        assert_eq!(g.body(), b"through nginx");
    }
    assert_eq!(up.seen("/n.bin").gets, 1);
}

/// `GET url`, read to the end.
async fn get_url(url: &str) -> Got {
    send("GET", url, &[]).await
}

/// `PUT /cache/flush` through one node flushes the cluster: the records
/// leave the bucket at once, and the other nodes drop their own copies
/// within an upkeep round, so every node then serves the upstream's new
/// content, fetched once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_through_one_node_flushes_the_cluster() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    up.put_body("/f.bin", "old content");
    let remote = generic_remote("r", &up.url(), "");
    let a = node(&sw, "c8", "a", &remote).await;
    let b = node(&sw, "c8", "b", &remote).await;
    assert_eq!(
        get(&a, "/api/v1/remote/r/f.bin").await.body(),
        b"old content"
    );
    wait_for_objects(&sw, "c8/index/r/", 1).await;
    assert_eq!(
        get(&b, "/api/v1/remote/r/f.bin").await.body(),
        b"old content"
    );

    up.put_body("/f.bin", "new content");
    let r = reqwest::Client::new()
        .put(a.url("/cache/flush?remote=r"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(
        sw.list("c8/index/r/").await.unwrap().is_empty(),
        "the records are gone"
    );
    assert_eq!(sw.list("c8/flushes/").await.unwrap().len(), 1, "one marker");
    let g = get(&a, "/api/v1/remote/r/f.bin").await;
    assert_eq!((g.source(), g.body()), ("remote", &b"new content"[..]));
    wait_for_objects(&sw, "c8/index/r/", 1).await;
    eventually("b to drop its copy", Duration::from_secs(15), || async {
        (get(&b, "/api/v1/remote/r/f.bin").await.body() == b"new content").then_some(())
    })
    .await;
    assert_eq!(
        up.seen("/f.bin").gets,
        2,
        "b took a's new copy from the bucket"
    );
}

/// A hosted remote's quota holds for the whole cluster: two nodes cannot
/// both take the last bytes, a node that holds none of the remote's
/// entries still refuses what would pass it, and a delete through a third
/// node frees room for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_holds_across_the_cluster() {
    let sw = Seaweed::start().await;
    let remotes = "[[remote]]\nname = \"q\"\npackage = \"local\"\nmax_size = \"1MiB\"\n";
    let a = node(&sw, "c9", "a", remotes).await;
    let b = node(&sw, "c9", "b", remotes).await;
    let c = node(&sw, "c9", "c", remotes).await;
    let http = reqwest::Client::new();
    let put = |gw: &Gateway, key: &str, body: Vec<u8>| {
        http.put(gw.url(&format!("/api/v1/remote/q/{key}")))
            .body(body)
            .send()
    };

    // Two uploads at once through two nodes, each alone within the quota.
    let (x, y) = tokio::join!(
        put(&a, "x.bin", bytes(600 * KIB, 1)),
        put(&b, "y.bin", bytes(600 * KIB, 2))
    );
    let statuses = [x.unwrap().status().as_u16(), y.unwrap().status().as_u16()];
    assert!(
        statuses == [201, 507] || statuses == [507, 201],
        "exactly one fits: {statuses:?}"
    );
    let kept = if statuses[0] == 201 { "x.bin" } else { "y.bin" };
    assert_eq!(
        sw.list("c9/index/q/").await.unwrap().len(),
        1,
        "the refused upload left no record"
    );

    // c holds neither, and still refuses what would pass the quota.
    let r = put(&c, "z.bin", bytes(600 * KIB, 3)).await.unwrap();
    assert_eq!(r.status(), 507);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("quota"),
        "one sentence naming the quota: {text}"
    );
    // A replacement through c counts only what it adds.
    let x_or_y = if kept == "x.bin" { &a } else { &b };
    let r = put(&c, kept, bytes(900 * KIB, 4)).await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "a larger copy within the quota: {} (the bucket's counter: {:?})",
        r.text().await.unwrap_or_default(),
        sw.get("c9/usage/q").await
    );
    assert_eq!(
        get(x_or_y, &format!("/api/v1/remote/q/{kept}"))
            .await
            .body(),
        bytes(900 * KIB, 4).as_slice(),
        "the node that took the first upload serves the replacement"
    );
    let usage = sw.get("c9/usage/q").await.unwrap_or_default();
    assert!(
        usage.contains(&format!("\"bytes\":{}", 900 * KIB)),
        "the bucket's counter: {usage}"
    );

    let r = http
        .delete(c.url(&format!("/api/v1/remote/q/{kept}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "delete through c: {}", r.status());
    assert_eq!(
        put(&b, "z.bin", bytes(600 * KIB, 3))
            .await
            .unwrap()
            .status(),
        201,
        "the delete freed room on every node"
    );
    let usage = sw.get("c9/usage/q").await.unwrap_or_default();
    assert!(
        usage.contains(&format!("\"bytes\":{}", 600 * KIB)),
        "the bucket's counter: {usage}"
    );
}

/// The cluster's collection: beyond `max_size` the least recently used
/// cached blobs leave the bucket with their records (hosted ones stay),
/// unreferenced blobs go once older than `gc_grace`, and the hosted usage
/// is recounted; a fresh node then fetches what was evicted and adopts
/// what was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collection_evicts_the_least_recently_used_beyond_max_size() {
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    for i in 1..=4 {
        up.put_body(&format!("/o{i}.bin"), bytes(MIB, i));
    }
    let remotes = format!(
        "{}[[remote]]\nname = \"h\"\npackage = \"local\"\n",
        generic_remote("pull", &up.url(), "")
    );
    // a and b collect without a size limit (unreferenced blobs, usage);
    // c, with one, starts once every blob is older than gc_grace, so that
    // its eviction sees them all.
    let gc = "gc_every = \"1s\"\ngc_grace = \"10s\"\n";
    let start = |name: &'static str, extra: &'static str| {
        let table = format!("{}{gc}{extra}\n{remotes}", sw.shared_table("g", name));
        async move { Gateway::start(&table).await }
    };
    let a = start("a", "").await;
    let b = start("b", "").await;
    let http = reqwest::Client::new();
    let r = http
        .put(a.url("/api/v1/remote/h/keep.bin"))
        .body(bytes(MIB, 9))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(a.url("/api/v1/remote/h/tmp.bin"))
        .body(bytes(512 * KIB, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .delete(a.url("/api/v1/remote/h/tmp.bin"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for i in 1..=4 {
        let g = get(&a, &format!("/api/v1/remote/pull/o{i}.bin")).await;
        assert_eq!(g.status, 200);
    }
    wait_for_objects(&sw, "g/index/pull/", 4).await;
    assert_eq!(sw.list("g/blobs/").await.unwrap().len(), 6);
    // o1 is used again: it is the most recently used cached blob now.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get(&a, "/api/v1/remote/pull/o1.bin").await.source(),
        "cache"
    );

    tokio::time::sleep(Duration::from_secs(11)).await;
    let c = start("c", "max_size = \"3MiB\"\n").await;
    // 5 MiB of referenced blobs over 3 MiB: o2, o3, o4 go (down to 90 %),
    // and tmp.bin's blob, which nothing references.
    eventually(
        "the collection to evict",
        Duration::from_secs(45),
        || async { (sw.list("g/blobs/").await.unwrap_or_default().len() == 2).then_some(()) },
    )
    .await;
    assert_eq!(sw.list("g/index/pull/").await.unwrap().len(), 1);
    assert_eq!(
        sw.list("g/index/h/").await.unwrap().len(),
        2,
        "the hosted record and the tombstone stay"
    );
    let (mut evicted, mut deleted) = (0.0, 0.0);
    for gw in [&a, &b, &c] {
        evicted += gw
            .metric("artgate_shared_gc_records_evicted_total", &[])
            .await;
        deleted += gw
            .metric("artgate_shared_gc_blobs_deleted_total", &[])
            .await;
    }
    assert_eq!(
        (evicted, deleted),
        (3.0, 4.0),
        "o2, o3 and o4 evicted, and tmp.bin's blob deleted"
    );
    let usage = sw.get("g/usage/h").await.unwrap_or_default();
    assert!(
        usage.contains(&format!("\"bytes\":{MIB}")),
        "the recounted hosted usage: {usage}"
    );

    // A node with an empty disk: o1 and keep.bin from the bucket, o2 from
    // the upstream again.
    let d = start("d", "").await;
    let g = get(&d, "/api/v1/remote/pull/o1.bin").await;
    assert_eq!((g.status, g.source()), (200, "cache"));
    assert!(g.body() == bytes(MIB, 1).as_slice());
    let g = get(&d, "/api/v1/remote/h/keep.bin").await;
    assert!(g.status == 200 && g.body() == bytes(MIB, 9).as_slice());
    let g = get(&d, "/api/v1/remote/pull/o2.bin").await;
    assert_eq!((g.status, g.source()), (200, "remote"));
    assert_eq!(up.seen("/o1.bin").gets, 1);
    assert_eq!(up.seen("/o2.bin").gets, 2);
}

/// `artgate fsck --shared` finds a record whose blob left the bucket,
/// `--repair` writes the blob back from the node's own files, and what
/// no node holds stays reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_shared_finds_and_repairs_lost_blobs() {
    use crate::support::child::fsck;
    use crate::support::gateway::config_head;
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    up.put_body("/o.bin", bytes(300 * KIB, 1));
    let remotes = format!(
        "{}[[remote]]\nname = \"h\"\npackage = \"local\"\n",
        generic_remote("pull", &up.url(), "")
    );
    let a = node(&sw, "f", "a", &remotes).await;
    assert_eq!(get(&a, "/api/v1/remote/pull/o.bin").await.status, 200);
    let r = reqwest::Client::new()
        .put(a.url("/api/v1/remote/h/k.bin"))
        .body(bytes(200 * KIB, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    wait_for_objects(&sw, "f/index/", 2).await;
    wait_for_objects(&sw, "f/blobs/", 2).await;

    // Configurations of fsck: one on a's storage dir, one on an empty one.
    let write_config = |dir: &std::path::Path| {
        let text = format!(
            "{}\n{}\n{remotes}",
            config_head(dir),
            sw.shared_table("f", "fsck")
        );
        let path = dir.join("fsck.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let on_a = write_config(a.dir.path());
    let empty = tempfile::tempdir().unwrap();
    let on_empty = write_config(empty.path());

    let (code, report) = fsck(&on_a, &["--shared"]).await;
    assert_eq!(
        (code, report["verdict"].as_str()),
        (0, Some("clean")),
        "{report}"
    );
    assert_eq!(report["records"], 2, "{report}");

    let blobs = sw.list("f/blobs/").await.unwrap();
    for key in &blobs {
        assert!(sw.delete(key).await, "delete {key}");
    }
    let (code, report) = fsck(&on_empty, &["--shared"]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["verdict"], "damage");
    assert_eq!(report["records_missing_blob"], 2, "{report}");

    // Without local copies: the cached record is dropped (fetched again
    // on use), the hosted one stays damaged.
    let (code, report) = fsck(&on_empty, &["--shared", "--repair"]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        (
            report["records_dropped"].as_u64(),
            report["unrepaired"].as_u64()
        ),
        (Some(1), Some(1)),
        "{report}"
    );
    // From a's files, the hosted blob comes back.
    let (code, report) = fsck(&on_a, &["--shared", "--repair"]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["blobs_restored"], 1, "{report}");
    let (code, report) = fsck(&on_empty, &["--shared"]).await;
    assert_eq!(
        (code, report["verdict"].as_str()),
        (0, Some("clean")),
        "{report}"
    );
    assert_eq!(report["records"], 1, "{report}");
    let b = node(&sw, "f", "b", &remotes).await;
    let g = get(&b, "/api/v1/remote/h/k.bin").await;
    assert!(g.status == 200 && g.body() == bytes(200 * KIB, 2).as_slice());
}

/// A cached entry's record replaces only an older copy (compare-and-swap
/// on its ETag): a node writing an entry it stored before another node
/// revalidated it leaves the later record in place, and of writers racing
/// on one key the latest copy stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_record_replaces_only_an_older_copy() {
    use artgate::store::shared::Written;
    use artgate::store::{Digest, Entry, EntryClass, EntryId, SharedTier};
    let sw = Seaweed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n{}",
        crate::support::gateway::config_head(dir.path()),
        sw.shared_table("cas", "t")
    );
    let config = artgate::config::parse(&text, dir.path()).unwrap();
    let https = artgate::upstream::https_connector(&config.upstream).unwrap();
    let tier = SharedTier::new(config.shared.as_ref().unwrap(), https).unwrap();
    let id = EntryId::new("r", "tag");
    let stored_at = |ms: u64| {
        let mut e = Entry::hosted(Digest::EMPTY, 0, ms, None, vec![]);
        e.class = EntryClass::Mutable;
        e.expires_at_ms = Some(ms + 60_000);
        e
    };
    let write = |e: Entry| {
        let (tier, id) = (&tier, &id);
        async move { tier.put_record_if_newer(id, &e).await.unwrap() }
    };
    let in_bucket = || async {
        tier.record(&id)
            .await
            .unwrap()
            .entry()
            .unwrap()
            .stored_at_ms
    };
    assert_eq!(write(stored_at(200)).await, Written::Stored);
    assert_eq!(
        write(stored_at(100)).await,
        Written::Exists,
        "an older copy"
    );
    assert_eq!(in_bucket().await, 200);
    assert_eq!(write(stored_at(250)).await, Written::Stored, "a newer copy");
    let racing = futures_util::future::join_all((300..304).map(|ms| write(stored_at(ms)))).await;
    assert!(racing.contains(&Written::Stored), "{racing:?}");
    assert_eq!(
        in_bucket().await,
        303,
        "the latest of the racing copies stands"
    );
}
