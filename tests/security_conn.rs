//! Hostile clients at the connection and protocol level: sockets that send
//! nothing, idle and stalled connections, oversized request heads, ambiguous
//! framing, duplicate credentials, and label values chosen by clients.

use crate::support::gateway::{Gateway, generic_remote};
use crate::support::http::json_error;
use crate::support::upstream::Upstream;
use crate::support::{metric, raw_request};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short timeouts so the tests stay fast: a new connection has 1 s for its
/// first request, an idle one 3 s, a stalled body 1 s.
const FAST: &str =
    "header_read_timeout = \"1s\"\nidle_timeout = \"3s\"\nbody_read_timeout = \"1s\"\n";

/// Read from `s` until the peer closes it or `limit` passes; the time the
/// close came after, and everything read.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match tokio::time::timeout(limit - started.elapsed(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(started.elapsed()), out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (None, out)
}

/// Read one HTTP/1.1 response with a `content-length` from `s`.
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("response within 5 s")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {text}");
        out.extend_from_slice(&buf[..n]);
    }
}

/// The JSON body of a raw HTTP/1.1 response, asserting it has one
/// sentence in `error`.
fn error_sentence(resp: &str) -> String {
    json_error(&resp[resp.find("\r\n\r\n").expect("a whole head") + 4..])
}

/// Silent sockets up to `max_connections` do not make the gateway
/// unreachable: each is closed after `header_read_timeout`, and `/health`
/// (queued behind them) answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_are_closed_and_health_still_answers() {
    let gw = Gateway::start_with_server_extra(&format!("{FAST}max_connections = 4\n"), "").await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    // The gateway's readiness probes used pooled connections; give the
    // silent sockets time to take every slot.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = client
        .get(gw.url("/health"))
        .send()
        .await
        .expect("/health answers while silent sockets hold every slot");
    assert_eq!(r.status(), 200);
    for s in &mut silent {
        let (closed, got) = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "a silent socket stayed open");
        assert!(got.is_empty(), "a silent socket got an answer: {got:?}");
    }
}

/// An HTTP/2 connection that sends its preface and SETTINGS and then
/// nothing is closed after `header_read_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_preface_only_connection_is_closed() {
    let gw = Gateway::start_with_server_extra(FAST, "").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let (closed, _) = read_until_closed(&mut s, Duration::from_secs(8)).await;
    let after = closed.expect("the HTTP/2 connection was never closed");
    eprintln!("h2 preface-only connection closed after {after:?}");
}

/// A keep-alive connection may stay idle up to `idle_timeout` (longer
/// than `header_read_timeout`) and is then closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_lasts_idle_timeout_then_closes() {
    let gw = Gateway::start_with_server_extra(FAST, "").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let get = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
    s.write_all(get).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Idle for twice header_read_timeout, still within idle_timeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.write_all(get).await.unwrap();
    let second = read_response(&mut s).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let (closed, _) = read_until_closed(&mut s, Duration::from_secs(8)).await;
    let after = closed.expect("the idle connection was never closed");
    eprintln!("idle keep-alive connection closed after {after:?} (idle_timeout 3s)");
    assert!(
        after >= Duration::from_secs(2),
        "closed after {after:?}, before idle_timeout"
    );
}

/// An upload that stops sending is cut with 408 after
/// `body_read_timeout`, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_upload_gets_408_and_stores_nothing() {
    let gw =
        Gateway::start_with_server_extra(FAST, "[[remote]]\nname = \"h\"\npackage = \"local\"\n")
            .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"PUT /api/v1/remote/h/stalled.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    // Then one byte every 1.5 s: each pause is longer than the timeout.
    let started = Instant::now();
    let mut resp = String::new();
    for _ in 0..8 {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                resp = String::from_utf8_lossy(&buf[..n]).into_owned();
                break;
            }
            Ok(_) => break,
            Err(_) => {
                let _ = s.write_all(b"x").await;
            }
        }
    }
    eprintln!("stalled upload answered after {:?}", started.elapsed());
    assert!(resp.starts_with("HTTP/1.1 408"), "got: {resp:?}");
    assert!(
        error_sentence(&resp).contains("body_read_timeout"),
        "{resp}"
    );
    let r = reqwest::get(gw.url("/api/v1/remote/h/stalled.bin"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let tmp = gw.dir.path().join("data").join("tmp");
    let spools: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(spools.is_empty(), "left in tmp/: {spools:?}");
}

/// Every request-size limit answers its documented status with a JSON
/// body, and paths up to `max_uri_bytes` are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_answer_their_status_with_json() {
    let up = Upstream::start().await;
    let long = format!("/{}.txt", "p".repeat(6000));
    up.put_body(&long, "long path");
    let gw = Gateway::start(&generic_remote("g", &up.url(), "")).await;
    // A 6 KB path is within max_uri_bytes (8 KiB): served.
    let r = reqwest::get(gw.url(&format!("/api/v1/remote/g{long}")))
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, "long path");
    let cases: Vec<(String, &str)> = vec![
        // 9 KiB: over max_uri_bytes.
        (
            format!(
                "GET /api/v1/remote/g/{} HTTP/1.1\r\nHost: a\r\n\r\n",
                "a".repeat(9 * 1024)
            ),
            "HTTP/1.1 414",
        ),
        // 70 KB: over hyper's buffer too.
        (
            format!(
                "GET /api/v1/remote/g/{} HTTP/1.1\r\nHost: a\r\n\r\n",
                "a".repeat(70_000)
            ),
            "HTTP/1.1 414",
        ),
        // 101 headers.
        (
            format!(
                "GET /health HTTP/1.1\r\nHost: a\r\n{}\r\n",
                (0..100)
                    .map(|i| format!("x-h{i}: v\r\n"))
                    .collect::<String>()
            ),
            "HTTP/1.1 431",
        ),
        // 20 KiB of headers.
        (
            format!(
                "GET /health HTTP/1.1\r\nHost: a\r\nx-big: {}\r\n\r\n",
                "b".repeat(20 * 1024)
            ),
            "HTTP/1.1 431",
        ),
    ];
    for (req, want) in cases {
        let resp = raw_request(gw.addr, req.as_bytes()).await;
        let head = resp.lines().next().unwrap_or_default().to_owned();
        assert!(
            resp.starts_with(want),
            "{} bytes: want {want}, got {head}",
            req.len()
        );
        let e = error_sentence(&resp);
        eprintln!("{} bytes → {head}: {e}", req.len());
    }
}

/// `Content-Length` next to `Transfer-Encoding` is refused with 400 and
/// nothing is stored, alone or pipelined behind an innocent request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_is_refused() {
    let gw = Gateway::start("[[remote]]\nname = \"h\"\npackage = \"local\"\n").await;
    let upload = "PUT /api/v1/remote/h/smuggled.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let resp = raw_request(gw.addr, upload.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(error_sentence(&resp).contains("Transfer-Encoding and Content-Length"));
    // Pipelined behind a GET with a body and a chunked upload.
    let pipelined = format!(
        "PUT /api/v1/remote/h/first.bin HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n{upload}"
    );
    let resp = raw_request(gw.addr, pipelined.as_bytes()).await;
    assert_eq!(resp.matches("HTTP/1.1 ").count(), 2, "{resp}");
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    assert!(resp.contains("HTTP/1.1 400"), "{resp}");
    // Pipelined behind a request asking for an upgrade the gateway never
    // grants: the connection stays HTTP/1.1, so the next head is checked.
    let pipelined = format!(
        "GET /health HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n{upload}"
    );
    let resp = raw_request(gw.addr, pipelined.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("HTTP/1.1 400"), "{resp}");
    let get = |p: &str| reqwest::get(gw.url(&format!("/api/v1/remote/h/{p}")));
    assert_eq!(get("smuggled.bin").await.unwrap().status(), 404);
    assert_eq!(get("first.bin").await.unwrap().text().await.unwrap(), "abc");
}

/// HTTP/2 requests are held to `max_headers` like HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_requests_are_held_to_max_headers() {
    let gw = Gateway::start("").await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut rb = client.get(gw.url("/health"));
    for i in 0..150 {
        rb = rb.header(format!("x-h{i}"), "v");
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 431);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(v["error"].as_str().unwrap().contains("100 headers"), "{v}");
    let r = client.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Two `Authorization` headers are refused with 400 rather than one of
/// them silently winning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_authorization_headers_are_refused() {
    use sha2::Digest as _;
    let token = "writer-token-0123456789abcdef";
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"h\"\npackage = \"local\"\n[[token]]\nname = \"w\"\ntoken_sha256 = \"{}\"\nscopes = {{ h = [\"read\", \"write\"] }}\n",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    ))
    .await;
    let c = reqwest::Client::new();
    let url = gw.url("/api/v1/remote/h/two.bin");
    let r = c
        .put(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer someone-else")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("Authorization"),
        "{v}"
    );
    assert_eq!(c.get(&url).send().await.unwrap().status(), 404);
}

/// Remote names and methods invented by clients do not become metric
/// series: `/metrics` stays the same size however many are sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_remotes_and_methods_do_not_grow_metrics() {
    let gw = Gateway::start("[[remote]]\nname = \"h\"\npackage = \"local\"\n").await;
    let c = reqwest::Client::new();
    let send = |i: usize| {
        let c = c.clone();
        let unknown = gw.url(&format!("/api/v1/remote/nope{i}/x"));
        let health = gw.url("/health");
        async move {
            c.get(unknown).send().await.unwrap();
            let m = reqwest::Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
            c.request(m, health).send().await.unwrap();
        }
    };
    send(0).await;
    let before = gw.metrics().await;
    for i in 1..200 {
        send(i).await;
    }
    let after = gw.metrics().await;
    let series = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("artgate_requests_total{"))
            .count()
    };
    assert!(!after.contains("nope1"), "an unknown remote became a label");
    assert!(
        !after.contains("INVENTED1"),
        "an invented method became a label"
    );
    assert_eq!(series(&after), series(&before), "{after}");
    assert!(metric(&after, "artgate_requests_total", &["remote=\"other\""]) >= 200.0);
    eprintln!(
        "/metrics: {} bytes after 2 requests, {} bytes after 400",
        before.len(),
        after.len()
    );
}
