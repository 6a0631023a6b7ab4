//! A hostile upstream, for the faults `core_faults.rs`, `core_cache.rs`
//! and the single-fill `kill -9` in `crash.rs` do not cover: connection resets before the headers and
//! in the middle of a body, a chunked body without its last chunk, a body
//! that stops short and closes cleanly, wrong bytes of the right length for
//! a digest-named object, a 1 KiB/s drip that hits the idle timeout, an
//! upstream that stops answering while a stale copy exists, redirects to
//! loopback / link-local / `file:` / unlisted hosts, and a gzip body.
//!
//! Expected (RELIABILITY.md, "Upstream faults"; ARCHITECTURE.md,
//! invariant 4): a clean 502/504 before the headers, an aborted
//! transfer after them, never a clean end on bad data; nothing bad cached;
//! the stale copy served when the upstream is unreachable or times out.

use crate::support::bytes;
use crate::support::child::{ChildGateway, write_config};
use crate::support::gateway::generic_remote;
use crate::support::http::{client, drain};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{KIB, MIB, sha256_hex};
use bytes::Bytes;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the raw upstream does with the next request.
#[derive(Clone)]
enum Script {
    /// `200` with `Content-Length` and the body.
    Ok(Bytes),
    /// Read the request, then reset the connection (RST, no response).
    ResetBeforeHeaders,
    /// Announce `total` bytes, send `sent` of them, then reset (RST).
    ResetMidBody { total: usize, sent: usize },
    /// `Transfer-Encoding: chunked`, `chunks` chunks of `size` bytes, then
    /// a clean close (FIN) without the terminating zero-length chunk.
    ChunkedWithoutLastChunk { chunks: usize, size: usize },
    /// Announce `total` bytes, send `sent`, then close cleanly (FIN).
    ShortThenClose { total: usize, sent: usize },
    /// Neither `Content-Length` nor `chunked` (the body ends with the
    /// connection, HTTP/1.0 style): send `sent` bytes of a `total`-byte
    /// object, then close cleanly (FIN).
    CloseDelimited { total: usize, sent: usize },
}

/// An upstream on 127.0.0.1 that speaks HTTP/1.1 by hand, so it can break
/// the protocol where a real server would not.
struct RawUpstream {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The deterministic body of the raw upstream's scripts.
fn raw_body(n: usize) -> Vec<u8> {
    bytes(n, 4242)
}

impl RawUpstream {
    async fn start(script: Script) -> RawUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(script));
        let requests = Arc::new(AtomicU64::new(0));
        let (s2, r2) = (script.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s3, r3) = (s2.clone(), r2.clone());
                tokio::spawn(async move {
                    let _ = serve_raw(stream, s3, r3).await;
                });
            }
        });
        RawUpstream {
            addr,
            script,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, s: Script) {
        *self.script.lock().unwrap() = s;
    }

    fn requests(&self) -> u64 {
        self.requests.load(SeqCst)
    }
}

async fn serve_raw(
    mut s: tokio::net::TcpStream,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    requests.fetch_add(1, SeqCst);
    let script = script.lock().unwrap().clone();
    let pause = || tokio::time::sleep(Duration::from_millis(100));
    match script {
        Script::Ok(body) => {
            let h = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\netag: \"{}\"\r\nconnection: close\r\n\r\n",
                body.len(),
                &sha256_hex(&body)[..16]
            );
            s.write_all(h.as_bytes()).await?;
            s.write_all(&body).await?;
            s.shutdown().await?;
        }
        Script::ResetBeforeHeaders => {
            s.set_zero_linger()?;
            drop(s);
        }
        Script::ResetMidBody { total, sent } => {
            let body = raw_body(total);
            let h = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
            s.write_all(h.as_bytes()).await?;
            s.write_all(&body[..sent]).await?;
            s.flush().await?;
            pause().await;
            s.set_zero_linger()?;
            drop(s);
        }
        Script::ChunkedWithoutLastChunk { chunks, size } => {
            let body = raw_body(chunks * size);
            s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            for c in body.chunks(size) {
                s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await?;
                s.write_all(c).await?;
                s.write_all(b"\r\n").await?;
                s.flush().await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            pause().await;
            s.shutdown().await?;
        }
        Script::ShortThenClose { total, sent } => {
            let body = raw_body(total);
            let h = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
            s.write_all(h.as_bytes()).await?;
            s.write_all(&body[..sent]).await?;
            s.flush().await?;
            pause().await;
            s.shutdown().await?;
        }
        Script::CloseDelimited { total, sent } => {
            let body = raw_body(total);
            s.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
                .await?;
            s.write_all(&body[..sent]).await?;
            s.flush().await?;
            pause().await;
            s.shutdown().await?;
        }
    }
    Ok(())
}

/// A gateway (child process) with `remotes`, the `[upstream]` timeouts
/// given; returns it with its directory.
async fn gateway(upstream: &str, remotes: &str) -> (ChildGateway, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &dir.path().join("data"), upstream, remotes);
    (ChildGateway::start(&cfg).await, dir, cfg)
}

const TIMEOUTS: &str =
    "first_byte_timeout = \"1s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"2s\"\nretries = 1";

/// What a client got for one GET.
#[derive(Debug)]
enum Outcome {
    /// A status before any body (an error response), with its body.
    Error(u16, String),
    /// `200` whose body broke off after this many bytes.
    Aborted(u64),
    /// `200` whose body ended cleanly: length, sha256, source.
    Complete(u64, String, String),
}

async fn fetch(c: &reqwest::Client, url: &str) -> Outcome {
    let r = c.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    if status != 200 {
        return Outcome::Error(status, r.text().await.unwrap_or_default());
    }
    let source = r
        .headers()
        .get("x-artifact-source")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let got = drain(r).await;
    match got.error {
        Some(_) => Outcome::Aborted(got.len),
        None => Outcome::Complete(got.len, got.sha256, source),
    }
}

/// Bad data must reach the client as a 502/504 before the headers or an
/// aborted body after them — never a clean end.
fn assert_failed_cleanly(what: &str, got: &Outcome) {
    match got {
        Outcome::Error(s, body) => assert!(
            matches!(s, 502 | 504) && body.contains("\"error\""),
            "{what}: {s} {body}"
        ),
        Outcome::Aborted(_) => {}
        Outcome::Complete(len, ..) => panic!("{what}: the body ended cleanly after {len} bytes"),
    }
}

/// Resets, a chunked body without its last chunk and a body that stops
/// short with a clean close: each is a clean 502 or an aborted transfer,
/// nothing is cached (the next request goes upstream again), and the
/// complete object is cached once the upstream behaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_upstream_bodies_are_aborted_and_never_cached() {
    let raw = RawUpstream::start(Script::ResetBeforeHeaders).await;
    let (gw, _dir, _) = gateway(TIMEOUTS, &generic_remote("r", &raw.url(), "")).await;
    let c = client();
    let cases = [
        ("reset before the headers", Script::ResetBeforeHeaders),
        (
            "reset in the middle of the body",
            Script::ResetMidBody {
                total: MIB,
                sent: 300 * KIB,
            },
        ),
        (
            "reset one byte before the end",
            Script::ResetMidBody {
                total: 256 * KIB,
                sent: 256 * KIB - 1,
            },
        ),
        (
            "chunked body without its last chunk",
            Script::ChunkedWithoutLastChunk {
                chunks: 16,
                size: 16 * KIB,
            },
        ),
        (
            "short body, then a clean close",
            Script::ShortThenClose {
                total: 512 * KIB,
                sent: 200 * KIB,
            },
        ),
    ];
    for (i, (what, script)) in cases.into_iter().enumerate() {
        let sent = match &script {
            Script::ResetMidBody { sent, .. } | Script::ShortThenClose { sent, .. } => Some(*sent),
            Script::ChunkedWithoutLastChunk { chunks, size } => Some(chunks * size),
            _ => None,
        };
        let url = gw.url(&format!("/api/v1/remote/r/case{i}.bin"));
        raw.set(script);
        let before = raw.requests();
        let got = fetch(&c, &url).await;
        eprintln!("{what}: {got:?}");
        assert_failed_cleanly(what, &got);
        if let (Outcome::Aborted(n), Some(sent)) = (&got, sent) {
            assert!(
                *n <= sent as u64,
                "{what}: {n} bytes, but only {sent} were sent"
            );
        }
        assert!(
            raw.requests() > before,
            "{what}: the upstream was not asked"
        );
        // Still broken: asked again, so nothing was cached.
        let before = raw.requests();
        let got = fetch(&c, &url).await;
        assert_failed_cleanly(what, &got);
        assert!(raw.requests() > before, "{what}: a broken body was cached");
        // Fixed: the whole object, then from the cache.
        let good = Bytes::from(bytes(100 * KIB, i as u64));
        raw.set(Script::Ok(good.clone()));
        match fetch(&c, &url).await {
            Outcome::Complete(len, sha, src) => {
                assert_eq!(
                    (len, sha, src.as_str()),
                    (good.len() as u64, sha256_hex(&good), "remote"),
                    "{what}"
                )
            }
            other => panic!("{what}: after the fix: {other:?}"),
        }
        // The body is released before its commit: wait for the commit.
        gw.fills_settled().await;
        let before = raw.requests();
        match fetch(&c, &url).await {
            Outcome::Complete(_, sha, src) => {
                assert_eq!((sha, src.as_str()), (sha256_hex(&good), "cache"))
            }
            other => panic!("{what}: from the cache: {other:?}"),
        }
        assert_eq!(raw.requests(), before, "{what}");
    }
}

/// A body without `Content-Length` or `chunked` framing ends with the
/// connection, so a cut one ends as cleanly as a whole one: the gateway
/// delivers what came (it cannot tell) but stores neither, so a cut body
/// never becomes a permanent entry; the next request asks the upstream
/// again and gets the whole object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_delimited_bodies_are_delivered_but_never_stored() {
    let total = 300 * KIB;
    let raw = RawUpstream::start(Script::CloseDelimited {
        total,
        sent: 100 * KIB,
    })
    .await;
    let (gw, _dir, _) = gateway(TIMEOUTS, &generic_remote("r", &raw.url(), "")).await;
    let c = client();
    let url = gw.url("/api/v1/remote/r/pkg.tar.gz");
    let whole = raw_body(total);
    // Cut after 100 KiB: served as it came, not stored.
    match fetch(&c, &url).await {
        Outcome::Complete(len, sha, src) => {
            assert_eq!((len, src.as_str()), (100 * KIB as u64, "remote"));
            assert_eq!(sha, sha256_hex(&whole[..100 * KIB]));
        }
        other => panic!("cut close-delimited body: {other:?}"),
    }
    // Whole this time: asked again (nothing was cached), still not stored.
    raw.set(Script::CloseDelimited { total, sent: total });
    for attempt in 1..=2 {
        let before = raw.requests();
        match fetch(&c, &url).await {
            Outcome::Complete(len, sha, src) => assert_eq!(
                (len, sha, src.as_str()),
                (total as u64, sha256_hex(&whole), "remote"),
                "attempt {attempt}"
            ),
            other => panic!("attempt {attempt}: {other:?}"),
        }
        assert_eq!(
            raw.requests(),
            before + 1,
            "attempt {attempt}: a close-delimited body was served from the cache"
        );
    }
    assert!(
        gw.log_text().contains("delivered, not stored"),
        "the log does not say why: {}",
        gw.log_text()
    );
    // Framed, the same object is stored.
    let good = Bytes::from(whole);
    raw.set(Script::Ok(good.clone()));
    assert!(matches!(fetch(&c, &url).await, Outcome::Complete(_, _, s) if s == "remote"));
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let before = raw.requests();
    assert!(matches!(fetch(&c, &url).await, Outcome::Complete(_, _, s) if s == "cache"));
    assert_eq!(raw.requests(), before);
}

/// An expired mutable entry is served `stale` (the stored bytes) when the
/// upstream resets the connection before the headers or does not answer
/// within `first_byte_timeout`; a reset in the middle of a new body aborts
/// that transfer but leaves the stored copy as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_copy_survives_resets_and_timeouts() {
    let raw = RawUpstream::start(Script::ResetBeforeHeaders).await;
    let up = Upstream::start().await;
    let old = Bytes::from(bytes(40 * KIB, 77));
    raw.set(Script::Ok(old.clone()));
    up.put(
        "/t/index.xml",
        Resource {
            body: old.clone(),
            etag: Some("\"v1\"".into()),
            ..Default::default()
        },
    );
    let remote = |name: &str, url: String| {
        format!(
            "[[remote]]\nname = {name:?}\npackage = \"generic\"\nupstream = {url:?}\nmutable_patterns = ['\\.xml$']\nmutable_ttl = \"300ms\"\n\n"
        )
    };
    let (gw, _dir, _) = gateway(
        "first_byte_timeout = \"500ms\"\nconnect_timeout = \"1s\"\nidle_timeout = \"2s\"\nretries = 1",
        &format!(
            "{}{}",
            remote("raw", raw.url()),
            remote("slow", up.url())
        ),
    )
    .await;
    let c = client();
    let old_sha = sha256_hex(&old);
    for name in ["raw", "slow"] {
        let url = gw.url(&format!("/api/v1/remote/{name}/t/index.xml"));
        match fetch(&c, &url).await {
            Outcome::Complete(_, sha, src) => {
                assert_eq!((sha.as_str(), src.as_str()), (old_sha.as_str(), "remote"))
            }
            other => panic!("{name}: first fetch: {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Reset before the headers: stale.
    let raw_url = gw.url("/api/v1/remote/raw/t/index.xml");
    raw.set(Script::ResetBeforeHeaders);
    match fetch(&c, &raw_url).await {
        Outcome::Complete(_, sha, src) => {
            assert_eq!((sha.as_str(), src.as_str()), (old_sha.as_str(), "stale"))
        }
        other => panic!("reset before headers with a stale copy: {other:?}"),
    }
    // No headers within first_byte_timeout: stale.
    up.edit("/t/index.xml", |r| {
        r.header_delay = Some(Duration::from_secs(3))
    });
    let started = Instant::now();
    match fetch(&c, &gw.url("/api/v1/remote/slow/t/index.xml")).await {
        Outcome::Complete(_, sha, src) => {
            assert_eq!((sha.as_str(), src.as_str()), (old_sha.as_str(), "stale"))
        }
        other => panic!("timeout with a stale copy: {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stale took {:?}",
        started.elapsed()
    );

    // A reset in the middle of a new body: that transfer is aborted, the
    // stored copy is untouched (served stale at the next failure).
    tokio::time::sleep(Duration::from_millis(400)).await;
    raw.set(Script::ResetMidBody {
        total: 200 * KIB,
        sent: 100 * KIB,
    });
    let got = fetch(&c, &raw_url).await;
    assert_failed_cleanly("reset mid-body with a stale copy", &got);
    raw.set(Script::ResetBeforeHeaders);
    match fetch(&c, &raw_url).await {
        Outcome::Complete(len, sha, src) => assert_eq!(
            (len, sha.as_str(), src.as_str()),
            (old.len() as u64, old_sha.as_str(), "stale")
        ),
        other => panic!("after a broken refresh: {other:?}"),
    }
}

/// Checksum-named rpm metadata whose upstream bytes are wrong but exactly
/// as long as the real file: both clients sharing the fetch see an aborted
/// transfer (or a 502), nothing is stored, and the right bytes are cached
/// once the upstream serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_of_the_right_length_are_never_served_complete() {
    let good = bytes(512 * KIB, 8);
    let mut bad = good.clone();
    bad[300 * KIB] ^= 0x01; // one bit, deep in the body
    let name = format!("repo/repodata/{}-primary.xml.gz", sha256_hex(&good));
    let up = Upstream::start().await;
    let path = format!("/mirror/{name}");
    let res = |body: Vec<u8>| Resource {
        body: body.into(),
        chunk: Some(32 * KIB),
        chunk_delay: Some(Duration::from_millis(5)),
        ..Default::default()
    };
    up.put(&path, res(bad));
    let (gw, _dir, _) = gateway(
        TIMEOUTS,
        &format!(
            "[[remote]]\nname = \"el\"\npackage = \"rpm\"\nupstream = \"{}/mirror\"\n",
            up.url()
        ),
    )
    .await;
    let c = client();
    let url = gw.url(&format!("/api/v1/remote/el/{name}"));
    for attempt in 1..=2u64 {
        let (a, b) = tokio::join!(fetch(&c, &url), fetch(&c, &url));
        eprintln!("wrong bytes, attempt {attempt}: {a:?} / {b:?}");
        assert_failed_cleanly("first client", &a);
        assert_failed_cleanly("second client", &b);
        let gets = up.seen(&path).gets;
        assert!(
            (attempt..=2 * attempt).contains(&gets),
            "{gets} upstream requests after {attempt} attempts"
        );
    }
    let before = up.seen(&path).gets;
    up.put(&path, res(good.clone()));
    match fetch(&c, &url).await {
        Outcome::Complete(len, sha, _) => {
            assert_eq!((len, sha), (good.len() as u64, sha256_hex(&good)))
        }
        other => panic!("the right bytes: {other:?}"),
    }
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    match fetch(&c, &url).await {
        Outcome::Complete(_, sha, src) => {
            assert_eq!((sha, src.as_str()), (sha256_hex(&good), "cache"))
        }
        other => panic!("from the cache: {other:?}"),
    }
    assert_eq!(up.seen(&path).gets, before + 1);
}

/// A 1 KiB/s drip with `idle_timeout = 700ms` (every gap is 1 s) is cut
/// off: the client sees an aborted transfer within seconds, nothing is
/// cached. A drip whose gaps stay under the idle timeout completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drip_hits_the_idle_timeout_and_nothing_is_cached() {
    let up = Upstream::start().await;
    let drip = |delay_ms: u64| Resource {
        body: bytes(64 * KIB, 5).into(),
        chunk: Some(KIB),
        chunk_delay: Some(Duration::from_millis(delay_ms)),
        ..Default::default()
    };
    up.put("/drip.bin", drip(1000));
    up.put(
        "/steady.bin",
        Resource {
            body: bytes(4 * KIB, 6).into(),
            ..drip(300)
        },
    );
    let (gw, _dir, _) = gateway(
        "first_byte_timeout = \"1s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"700ms\"",
        &generic_remote("r", &up.url(), ""),
    )
    .await;
    let c = client();
    let url = gw.url("/api/v1/remote/r/drip.bin");
    for attempt in 1..=2 {
        let started = Instant::now();
        let got = fetch(&c, &url).await;
        eprintln!(
            "drip attempt {attempt}: {got:?} after {:?}",
            started.elapsed()
        );
        assert_failed_cleanly("1 KiB/s drip", &got);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the drip was cut only after {:?}",
            started.elapsed()
        );
        assert_eq!(up.seen("/drip.bin").gets, attempt, "the drip was cached");
    }
    match fetch(&c, &gw.url("/api/v1/remote/r/steady.bin")).await {
        Outcome::Complete(len, sha, _) => {
            assert_eq!((len, sha), (4 * KIB as u64, sha256_hex(&bytes(4 * KIB, 6))))
        }
        other => panic!("steady drip: {other:?}"),
    }
}

/// Under the default policy (`same-host`) a redirect anywhere else is
/// refused with a 502 saying so, and no request reaches the target: another
/// port on 127.0.0.1, the cloud metadata address, `file:` URLs (with and
/// without `//`), a scheme-relative URL, an unlisted host, userinfo
/// tricks. Nothing is cached: the next request asks the origin again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_off_the_upstream_are_refused_and_reach_nothing() {
    let origin = Upstream::start().await;
    let other = Upstream::start().await;
    other.put_body("/x", "secret");
    let o = origin.addr;
    let targets = [
        format!("http://{}/x", other.addr),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "file:///etc/passwd".to_owned(),
        "file:/etc/passwd".to_owned(),
        format!("//{}/x", other.addr),
        "http://unlisted.invalid/x".to_owned(),
        format!("http://{o}@{}/x", other.addr),
        format!("HTTP://{}/x", other.addr),
    ];
    for (i, t) in targets.iter().enumerate() {
        origin.put(
            &format!("/r{i}"),
            Resource {
                status: Some(302),
                headers: vec![("location".into(), t.clone())],
                ..Default::default()
            },
        );
    }
    // Long connect and first-byte timeouts: a refusal that came only after
    // trying the target would take seconds.
    let (gw, _dir, _) = gateway(
        "first_byte_timeout = \"10s\"\nconnect_timeout = \"10s\"\nidle_timeout = \"10s\"",
        &format!(
            "[[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = {:?}\nusername = \"u\"\npassword = \"sekrit\"\n",
            origin.url()
        ),
    )
    .await;
    let c = client();
    for (i, t) in targets.iter().enumerate() {
        let url = gw.url(&format!("/api/v1/remote/r/r{i}"));
        for attempt in 1..=2 {
            let started = Instant::now();
            let got = fetch(&c, &url).await;
            match &got {
                Outcome::Error(502, body) if body.contains("follow_redirects") => {}
                other => panic!("redirect to {t}: {other:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "redirect to {t}: refused only after {:?} (was it tried?)",
                started.elapsed()
            );
            assert_eq!(origin.seen(&format!("/r{i}")).gets, attempt, "{t}");
        }
    }
    assert_eq!(other.requests(), 0, "a refused redirect reached its target");
    let stray: Vec<String> = (0..targets.len())
        .map(|i| format!("/r{i}"))
        .chain([
            "/etc/passwd".into(),
            "/file:/etc/passwd".into(),
            "/x".into(),
        ])
        .collect();
    assert_eq!(
        origin.requests(),
        2 * targets.len() as u64,
        "the origin got requests other than the redirecting ones: {stray:?}"
    );
}

/// A gzip-encoded upstream body (a 64 MiB zip bomb, 64 KiB on the wire)
/// is stored and served exactly as sent: the gateway never decompresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_stored_as_sent_and_never_decompressed() {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; MIB];
    for _ in 0..64 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 256 * KIB, "{}", bomb.len());
    let up = Upstream::start().await;
    up.put(
        "/bomb.json",
        Resource {
            body: bomb.clone().into(),
            content_type: Some("application/json".into()),
            headers: vec![("content-encoding".into(), "gzip".into())],
            ..Default::default()
        },
    );
    let (gw, _dir, _) = gateway(TIMEOUTS, &generic_remote("r", &up.url(), "")).await;
    let c = client();
    let url = gw.url("/api/v1/remote/r/bomb.json");
    for source in ["remote", "cache"] {
        // The body is released before its commit: wait for the commit.
        gw.fills_settled().await;
        let r = c
            .get(&url)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-artifact-source"], source);
        assert_eq!(
            r.headers()["x-artifact-size"],
            bomb.len().to_string().as_str()
        );
        let got = drain(r).await;
        assert_eq!(got.error, None);
        assert_eq!(
            (got.len, got.sha256),
            (bomb.len() as u64, sha256_hex(&bomb)),
            "{source}: not the bytes the upstream sent"
        );
    }
    assert_eq!(up.seen("/bomb.json").gets, 1);
}
