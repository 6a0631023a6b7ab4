//! Hostile input at the HTTP layer: request smuggling and slowloris.

use crate::support::gateway::Gateway;
use crate::support::raw_request;
use crate::support::upstream::Upstream;
use std::time::{Duration, Instant};

/// Ambiguous framing (CL+TE, duplicate or malformed Content-Length,
/// obfuscated Transfer-Encoding) is refused with 400 and the connection
/// closed. In every case nothing after the first request is ever parsed as
/// a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_smuggling_corpus_is_refused() {
    let up = Upstream::start().await;
    up.put_body("/ok", "fine");
    let gw = Gateway::start("[[remote]]\nname = \"b\"\npackage = \"local\"\n").await;
    let smuggled = "GET /api/v1/remote/b/secret HTTP/1.1\r\nHost: a\r\n\r\n";
    let cases = [
        format!(
            "POST /api/v1/remote/b/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
        ),
        format!(
            "POST /api/v1/remote/b/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd{smuggled}"
        ),
        format!(
            "POST /api/v1/remote/b/x HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd{smuggled}"
        ),
        format!(
            "POST /api/v1/remote/b/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}"
        ),
        format!(
            "POST /api/v1/remote/b/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{smuggled}"
        ),
        format!(
            "POST /api/v1/remote/b/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\nabcd{smuggled}"
        ),
    ];
    for (i, case) in cases.iter().enumerate() {
        let resp = raw_request(gw.addr, case.as_bytes()).await;
        assert!(
            resp.starts_with("HTTP/1.1 400"),
            "case {i}: expected 400, got: {resp}"
        );
        assert!(
            resp.to_ascii_lowercase().contains("connection: close"),
            "case {i}: {resp}"
        );
        assert_eq!(
            resp.matches("HTTP/1.1").count(),
            1,
            "case {i}: a second response means a smuggled request was parsed: {resp}"
        );
    }
}

/// A client that sends headers slower than `header_read_timeout` is cut
/// off, and other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_by_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start_with_server_extra("header_read_timeout = \"1s\"\n", "").await;
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Keep dribbling a header byte every 200 ms; the server must close the
    // connection around the 1 s mark regardless.
    let mut closed_after = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(b"X").await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => {
                // A 408 before closing is fine too.
                closed_after = Some(started.elapsed());
                break;
            }
            Err(_) => {}
        }
        // Meanwhile the gateway keeps serving others.
        let r = reqwest::get(gw.url("/health")).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let after = closed_after.expect("the slow connection was never closed");
    assert!(
        after < Duration::from_secs(6),
        "closed only after {after:?}"
    );
}
