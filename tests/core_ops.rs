//! Operator-facing behaviour: TLS, `artgate check`, LRU eviction under
//! `storage.max_size`, the request limits, the redirect policy and JSON
//! logs. (Hosted uploads are in `hosted.rs`.)

use crate::support::gateway::{Gateway, config_head, install_adapter};
use crate::support::upstream::Upstream;
use crate::support::{bytes, metric, metric_opt, raw_request};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn artgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_artgate"))
}

/// `artgate check` accepts a valid file, rejects an unknown key naming it,
/// and validates the built-in default when no file is given.
#[test]
fn check_command_validates_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, format!("{}\n[[remote]]\nname = \"a\"\npackage = \"generic\"\nupstream = \"http://127.0.0.1:9\"\n", config_head(dir.path()))).unwrap();
    let out = artgate()
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK: 1 remote"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[remote]]\nname = \"a\"\npackage = \"generic\"\nupstrem = \"http://x\"\n",
    )
    .unwrap();
    let out = artgate()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("upstrem"), "error must name the key: {err}");

    let out = artgate()
        .arg("check")
        .env_remove("ARTGATE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "default config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A configuration error is the user's to fix: with `RUST_BACKTRACE` set
/// (as many shells and CI images do) it still prints one `error:` line
/// naming the problem, never a stack backtrace, and exits 1. Backtraces
/// are for panics.
#[test]
fn config_error_prints_no_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"not an address\"\n").unwrap();
    for (cmd, backtrace) in [("check", "1"), ("check", "full"), ("serve", "1")] {
        let out = artgate()
            .args([cmd, "--config"])
            .arg(&bad)
            .env("RUST_BACKTRACE", backtrace)
            .env("RUST_LIB_BACKTRACE", backtrace)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("listen"),
            "{cmd}: the message names the key: {err}"
        );
        assert!(
            !err.to_lowercase().contains("backtrace") && !err.contains("main.rs"),
            "{cmd} with RUST_BACKTRACE={backtrace}: no backtrace for a user error: {err}"
        );
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{cmd}: one line: {err}");
        assert!(lines[0].starts_with("error: "), "{cmd}: {err}");
    }
}

/// HTTPS with a PEM certificate: TLS 1.2+ works, TLS 1.1 is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_and_refuses_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let gw = Gateway::start_with_server_extra(
        &format!("tls_cert = {:?}\ntls_key = {:?}\n", cert, key),
        "",
    )
    .await;
    let url = format!("https://127.0.0.1:{}/health", gw.addr.port());
    let curl = move |extra: &'static [&'static str]| {
        let (cert, url) = (cert.clone(), url.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new("curl")
                    .args(["-sS", "--max-time", "5", "--cacert"])
                    .arg(&cert)
                    .args(extra)
                    .arg(&url)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let ok = curl(&[]).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Adapters may still be compiling ("loading"): health answers anyway.
    let health: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("health JSON");
    assert_eq!(health["status"], "healthy", "{health}");
    let old = curl(&["--tlsv1.0", "--tls-max", "1.1"]).await;
    assert!(!old.status.success(), "TLS 1.1 must be refused");
}

/// Beyond `max_size`, least-recently-used blobs are evicted; recently read
/// ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_eviction_keeps_the_store_under_max_size() {
    let up = Upstream::start().await;
    for i in 0..6 {
        up.put_body(&format!("/f{i}"), bytes(100_000, i));
    }
    let gw = Gateway::start_with_storage_extra(
        "max_size = \"350KB\"\n",
        &format!(
            "[[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = \"{}\"\n",
            up.url()
        ),
    )
    .await;
    let c = reqwest::Client::new();
    for i in 0..6 {
        let r = c
            .get(gw.url(&format!("/api/v1/remote/r/f{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().len(), 100_000);
        // The body is released before its commit: wait for the commit, so
        // the read below is a hit that keeps f0 hot.
        gw.fills_settled().await;
        // Keep f0 hot: read it again after every other fill.
        let r = c.get(gw.url("/api/v1/remote/r/f0")).send().await.unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), 100_000);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Maintenance runs every few seconds. The size drops while the pass
    // runs; its eviction count is published when it ends.
    let (mut size, mut evictions, mut m) = (u64::MAX, 0.0, String::new());
    for _ in 0..80 {
        m = gw.metrics().await;
        size = metric_opt(&m, "artgate_store_bytes", &[]).map_or(u64::MAX, |v| v as u64);
        evictions = metric(&m, "artgate_store_evictions_total", &[]);
        if size <= 350_000 && evictions >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(size <= 350_000, "store is {size} bytes, over max_size");
    assert!(evictions >= 3.0, "{m}");
    // The hot object is still served from cache, an old one is refetched.
    let r = c.get(gw.url("/api/v1/remote/r/f0")).send().await.unwrap();
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    let before = up.seen("/f1").gets;
    let r = c.get(gw.url("/api/v1/remote/r/f1")).send().await.unwrap();
    assert_eq!(r.headers()["x-artifact-source"], "remote");
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        bytes(100_000, 1).as_slice()
    );
    assert_eq!(up.seen("/f1").gets, before + 1);
}

/// Request limits answer with their status codes: URI > 8 KiB → 414,
/// more than 100 headers → 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limits_have_status_codes() {
    let gw = Gateway::start("").await;
    let long = format!(
        "GET /api/v1/remote/x/{} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    let resp = raw_request(gw.addr, long.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 414"), "{resp}");
    let mut many = String::from("GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n");
    for i in 0..120 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let resp = raw_request(gw.addr, many.as_bytes()).await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");
}

/// Redirect policy: `same-host` (default) follows a redirect on the same
/// origin and refuses one to another host (502, nothing requested there);
/// `any` follows it but never sends the remote's credentials to the other
/// host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_follow_the_policy_and_never_carry_credentials_elsewhere() {
    use crate::support::upstream::Resource;
    let origin = Upstream::start().await;
    let other = Upstream::start().await;
    other.put_body("/elsewhere.bin", bytes(1000, 7));
    origin.put_body("/here.bin", bytes(1000, 8));
    let redirect = |to: String| Resource {
        status: Some(302),
        headers: vec![("location".into(), to)],
        ..Default::default()
    };
    origin.put("/same", redirect("/here.bin".into()));
    origin.put("/cross", redirect(format!("{}/elsewhere.bin", other.url())));
    let remotes = format!(
        "[[remote]]\nname = \"strict\"\npackage = \"generic\"\nupstream = \"{0}\"\nusername = \"u\"\npassword = \"sekrit-pass\"\n\
         [[remote]]\nname = \"loose\"\npackage = \"generic\"\nupstream = \"{0}\"\nfollow_redirects = \"any\"\nusername = \"u\"\npassword = \"sekrit-pass\"\n",
        origin.url()
    );
    let gw = Gateway::start(&remotes).await;
    let c = reqwest::Client::new();
    let r = c
        .get(gw.url("/api/v1/remote/strict/same"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes(1000, 8).as_slice());
    // Credentials went to the origin, which is the remote's own host.
    assert!(
        origin
            .seen("/here.bin")
            .last_headers
            .contains_key("authorization")
    );

    let r = c
        .get(gw.url("/api/v1/remote/strict/cross"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("follow_redirects"));
    assert_eq!(
        other.seen("/elsewhere.bin").total,
        0,
        "a refused redirect must not reach the other host"
    );

    let r = c
        .get(gw.url("/api/v1/remote/loose/cross"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes(1000, 7).as_slice());
    let seen = other.seen("/elsewhere.bin");
    assert_eq!(seen.gets, 1);
    assert!(
        !seen.last_headers.contains_key("authorization"),
        "credentials must not follow a redirect to another host"
    );
}

/// `--log-format json` writes one JSON object per line, with the request
/// span (id) on request lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let cfg = dir.path().join("c.toml");
    let head = config_head(dir.path()).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&cfg, head).unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut child = artgate()
        .args(["--log-format", "json", "--config"])
        .arg(&cfg)
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let mut ok = false;
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(&url).await
            && r.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "gateway did not start");
    // Lines are written by a background thread: wait (bounded) for the
    // request's line before the kill.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        if text.contains("\"served\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "artgate listening"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "served" && l["span"]["id"].is_string()),
        "{text}"
    );
}

/// What an adapter's `gateway-url` answers (the hostile test adapter's
/// mode `gateway-url` serves it): the listener's scheme and the request's
/// `Host`; nothing for a `Host` with credentials in it; and
/// `server.public_url`, whatever the request says, when it is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_get_the_gateway_url_clients_reach_it_by() {
    let remote = "[[remote]]\nname = \"u\"\npackage = \"hostile\"\nupstream = \"http://127.0.0.1:9\"\n[remote.options]\nmode = \"gateway-url\"\n";
    let ask = |gw: &Gateway, host: &str| {
        let addr = gw.addr;
        let request =
            format!("GET /api/v1/remote/u/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        async move {
            let answer = raw_request(addr, request.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            answer
                .split_once("\r\n\r\n")
                .map(|(_, body)| body.to_owned())
                .unwrap_or_default()
        }
    };
    for (server_extra, host, want) in [
        (
            "",
            "Artifacts.Example:8080",
            "http://artifacts.example:8080",
        ),
        ("", "user:pw@evil.example", ""),
        (
            "public_url = \"https://artifacts.example.com/gw/\"",
            "other.example",
            "https://artifacts.example.com/gw",
        ),
    ] {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        install_adapter(dir.path(), "hostile.wasm");
        let gw = Gateway::start_full_with(dir, server_extra, "", "", remote).await;
        assert_eq!(ask(&gw, host).await, want, "{server_extra} / Host: {host}");
    }
}
