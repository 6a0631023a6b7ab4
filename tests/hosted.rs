//! Hosted repositories with access control: uploads, reads, listings and
//! deletes (plain, multipart, `Content-MD5`), DVC and ccache as real
//! clients, the `cas` adapter (Bazel remote-cache layout), virtual
//! remotes, quotas, and the auth matrix. (Uploads under `kill -9` are in
//! `reliability/crash.rs`; attacks on hosted remotes in
//! `security_hosted.rs`.)

use crate::support::child::ChildGateway;
use crate::support::clients::{self, run, run_ok};
use crate::support::gateway::Gateway;
use crate::support::http::send;
use crate::support::upstream::Upstream;
use crate::support::{bytes, sha256_hex, spool_files};
use std::path::Path;
use std::process::Command;

const READ_TOKEN: &str = "read-token-0123456789abcdef";
const WRITE_TOKEN: &str = "write-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
const WRONG_TOKEN: &str = "wrong-token-0123456789abcdef";

/// A `[[token]]` table for `token` with `extra` keys (scopes, admin).
fn token_table(name: &str, token: &str, extra: &str) -> String {
    format!(
        "[[token]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n{extra}\n",
        sha256_hex(token.as_bytes())
    )
}

/// A response body as JSON.
async fn json(r: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---------------------------------------------------------------------------
// Uploads, reads, listings and deletes
// ---------------------------------------------------------------------------

/// Send `rb` and return the response status.
async fn status(rb: reqwest::RequestBuilder) -> reqwest::StatusCode {
    rb.send().await.unwrap().status()
}

/// Hosted remote: upload (raw and chunked), 201 only after commit, read
/// back byte-identical with HEAD/Range, checksum mismatch refused, list,
/// delete, overwrite refusal, and uploads survive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_upload_read_list_delete_and_restart() {
    let remotes = "[[remote]]\nname = \"builds\"\npackage = \"local\"\n[[remote]]\nname = \"frozen\"\npackage = \"local\"\n[remote.options]\noverwrite = \"false\"\n";
    let gw = Gateway::start(remotes).await;
    let c = reqwest::Client::new();
    let data = bytes(3 * 1024 * 1024 + 7, 42);
    let r = c
        .put(gw.url("/api/v1/remote/builds/app/1.0/app.bin"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Chunked upload (no Content-Length), as DVC sends it.
    let stream = futures_util::stream::iter(
        data.chunks(100_000)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = c
        .post(gw.url("/api/v1/remote/builds/app/1.0/chunked.bin"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for p in ["app.bin", "chunked.bin"] {
        let r = c
            .get(gw.url(&format!("/api/v1/remote/builds/app/1.0/{p}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    }
    let r = c
        .head(gw.url("/api/v1/remote/builds/app/1.0/app.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    let r = c
        .get(gw.url("/api/v1/remote/builds/app/1.0/app.bin"))
        .header("range", "bytes=5-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[5..10]);
    // A wrong checksum is refused and nothing is stored.
    let r = c
        .put(gw.url("/api/v1/remote/builds/bad.bin"))
        .header("x-checksum-sha256", "0".repeat(64))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("digest"));
    assert_eq!(
        status(c.get(gw.url("/api/v1/remote/builds/bad.bin"))).await,
        404
    );
    // Listing.
    let list = send("GET", &gw.url("/api/v1/remote/builds/app/1.0/?list"), &[])
        .await
        .json();
    let paths: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["app/1.0/app.bin", "app/1.0/chunked.bin"]);
    // Overwrite policy.
    assert_eq!(
        status(c.put(gw.url("/api/v1/remote/frozen/a")).body("1")).await,
        201
    );
    assert_eq!(
        status(c.put(gw.url("/api/v1/remote/frozen/a")).body("2")).await,
        409
    );
    // A flush never drops hosted files: globally they are skipped, and
    // naming a hosted remote is refused.
    let r = c
        .put(gw.url("/cache/flush?remote=builds"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        c.put(gw.url("/cache/flush")).send().await.unwrap().status(),
        200
    );
    let r = c
        .get(gw.url("/api/v1/remote/builds/app/1.0/app.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
    // Delete.
    assert_eq!(
        status(c.delete(gw.url("/api/v1/remote/builds/app/1.0/chunked.bin"))).await,
        200
    );
    assert_eq!(
        status(c.delete(gw.url("/api/v1/remote/builds/app/1.0/chunked.bin"))).await,
        404
    );
    // Acknowledged uploads survive a restart.
    let dir = gw.stop().await;
    let gw = Gateway::start_in(dir, remotes).await;
    let r = c
        .get(gw.url("/api/v1/remote/builds/app/1.0/app.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());
}

/// Hosted uploads as multipart form field `file` (what browsers and many
/// CI tools send) and with `Content-MD5`, which is verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_multipart_and_content_md5() {
    use base64::Engine as _;
    let gw = Gateway::start("[[remote]]\nname = \"b\"\npackage = \"local\"\n").await;
    let c = reqwest::Client::new();
    let data = bytes(200_000, 9);
    let boundary = "XyZboundary42";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhello\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    form.extend_from_slice(&data);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = c
        .post(gw.url("/api/v1/remote/b/dir/x.bin"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let got = c
        .get(gw.url("/api/v1/remote/b/dir/x.bin"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        got.as_ref(),
        data.as_slice(),
        "the stored content is the file field, not the form"
    );

    // A form without a `file` field is refused.
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--{boundary}--\r\n"
    );
    let r = c
        .post(gw.url("/api/v1/remote/b/dir/y.bin"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("file"));

    // Content-MD5: right → stored; wrong → 400 and nothing stored.
    let md5 = <md5::Md5 as md5::Digest>::digest(&data);
    let good = base64::engine::general_purpose::STANDARD.encode(md5);
    let r = c
        .put(gw.url("/api/v1/remote/b/md5-ok"))
        .header("content-md5", good)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let wrong = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let r = c
        .put(gw.url("/api/v1/remote/b/md5-bad"))
        .header("content-md5", wrong)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Content-MD5"));
    assert_eq!(status(c.get(gw.url("/api/v1/remote/b/md5-bad"))).await, 404);
}

// ---------------------------------------------------------------------------
// DVC
// ---------------------------------------------------------------------------

/// Content whose md5 starts with `00` (DVC stores it under `files/md5/00/`).
const SMALL_00: &str = "artgate dvc test file 1171\n";
const SMALL_00_MD5: &str = "000d8c12ca4c9abb3dc82851330fa19a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dvc_push_status_pull_with_tokens() {
    let dvc = clients::dvc();
    let config = format!(
        "[[remote]]\nname = \"dvc\"\npackage = \"local\"\nanonymous_read = false\n\
         [[remote]]\nname = \"dvcput\"\npackage = \"local\"\nanonymous_read = false\n\
         [[remote]]\nname = \"dvc2\"\npackage = \"local\"\n\
         {}{}",
        token_table(
            "dvc-writer",
            WRITE_TOKEN,
            "scopes = { dvc = [\"read\", \"write\", \"delete\"], dvcput = [\"read\", \"write\"] }",
        ),
        token_table("dvc-reader", READ_TOKEN, "scopes = { \"*\" = [\"read\"] }"),
    );
    let gw = Gateway::start(&config).await;
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(work.path().join("home")).unwrap();
    let d = |args: &[&str]| {
        let mut c = Command::new(&dvc);
        c.args(args)
            .current_dir(&repo)
            .env("HOME", work.path().join("home"))
            .env("DVC_NO_ANALYTICS", "1")
            .env("DVC_SITE_CACHE_DIR", work.path().join("site-cache"));
        c
    };
    let base = format!("http://{}/api/v1/remote", gw.addr);
    run_ok(d(&["init", "--no-scm"])).await;
    for (name, path, method, password) in [
        ("gw", "dvc", None, Some(WRITE_TOKEN)),
        ("gwput", "dvcput", Some("PUT"), Some(WRITE_TOKEN)),
        ("anon", "dvc2", None, None),
        ("ro", "dvc2", None, Some(READ_TOKEN)),
    ] {
        run_ok(d(&["remote", "add", name, &format!("{base}/{path}")])).await;
        if let Some(m) = method {
            run_ok(d(&["remote", "modify", name, "method", m])).await;
        }
        if let Some(p) = password {
            run_ok(d(&["remote", "modify", name, "auth", "basic"])).await;
            run_ok(d(&["remote", "modify", name, "user", "dvc"])).await;
            run_ok(d(&["remote", "modify", "--local", name, "password", p])).await;
        }
    }
    run_ok(d(&["remote", "default", "gw"])).await;

    // A file under files/md5/00/, a directory of several files, and a
    // multi-MiB file.
    std::fs::write(repo.join("small.txt"), SMALL_00).unwrap();
    std::fs::create_dir_all(repo.join("data/sub")).unwrap();
    let mut expected: Vec<(String, Vec<u8>)> = vec![("small.txt".into(), SMALL_00.into())];
    for i in 0..5 {
        let rel = if i < 3 {
            format!("data/part-{i}.bin")
        } else {
            format!("data/sub/part-{i}.bin")
        };
        let content = bytes(10_000 + i * 777, 70 + i as u64);
        std::fs::write(repo.join(&rel), &content).unwrap();
        expected.push((rel, content));
    }
    let big = bytes(5 * 1024 * 1024 + 3, 99);
    std::fs::write(repo.join("big.bin"), &big).unwrap();
    expected.push(("big.bin".into(), big));
    run_ok(d(&["add", "small.txt", "data", "big.bin"])).await;
    let small_dvc = std::fs::read_to_string(repo.join("small.txt.dvc")).unwrap();
    assert!(
        small_dvc.contains(&format!("md5: {SMALL_00_MD5}")),
        "{small_dvc}"
    );

    let status = run_ok(d(&["status", "-c"])).await;
    for name in ["small.txt", "data", "big.bin"] {
        assert!(
            status
                .lines()
                .any(|l| l.contains("new:") && l.contains(name)),
            "{name} is not new:\n{status}"
        );
    }
    // Default method: POST (chunked uploads).
    run_ok(d(&["push"])).await;
    let status = run_ok(d(&["status", "-c"])).await;
    assert!(status.contains("in sync"), "{status}");
    // A second remote uploading with PUT.
    run_ok(d(&["push", "-r", "gwput"])).await;
    let status = run_ok(d(&["status", "-c", "-r", "gwput"])).await;
    assert!(status.contains("in sync"), "{status}");

    // The objects are on the gateway, under DVC's layout.
    let c = reqwest::Client::new();
    // Without a token, and with a read-only token, pushing fails and
    // nothing lands on the gateway.
    for remote in ["anon", "ro"] {
        let r = run(d(&["push", "-r", remote])).await;
        assert!(!r.ok, "push to {remote} succeeded:\n{}", r.output);
    }
    let list = send("GET", &gw.url("/api/v1/remote/dvc2/?list"), &[])
        .await
        .json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");

    let object = format!("files/md5/{}/{}", &SMALL_00_MD5[..2], &SMALL_00_MD5[2..]);
    for remote in ["dvc", "dvcput"] {
        let r = c
            .get(gw.url(&format!("/api/v1/remote/{remote}/{object}")))
            .header("authorization", bearer(READ_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{remote}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), SMALL_00.as_bytes());
    }
    // Reads need a token on these remotes.
    let r = c
        .get(gw.url(&format!("/api/v1/remote/dvc/{object}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // No local cache, no workspace copies: everything is only remote.
    let wipe = |repo: &Path| {
        std::fs::remove_dir_all(repo.join(".dvc/cache")).unwrap();
        for (rel, _) in &expected {
            let _ = std::fs::remove_file(repo.join(rel));
        }
        std::fs::remove_dir_all(repo.join("data")).unwrap();
    };
    wipe(&repo);
    let status = run_ok(d(&["status", "-c"])).await;
    for name in ["small.txt", "data", "big.bin"] {
        assert!(
            status
                .lines()
                .any(|l| l.contains("deleted:") && l.contains(name)),
            "{name} is not deleted:\n{status}"
        );
    }
    run_ok(d(&["pull"])).await;
    for (rel, content) in &expected {
        assert_eq!(
            &std::fs::read(repo.join(rel)).unwrap(),
            content,
            "{rel} restored differently"
        );
    }

    // Delete an object on the gateway: it is `new` while the local cache
    // has it, and `missing` once that is gone too.
    let r = c
        .delete(gw.url(&format!("/api/v1/remote/dvc/{object}")))
        .header("authorization", bearer(WRITE_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status = run_ok(d(&["status", "-c"])).await;
    assert!(
        status
            .lines()
            .any(|l| l.contains("new:") && l.contains("small.txt")),
        "{status}"
    );
    std::fs::remove_dir_all(repo.join(".dvc/cache")).unwrap();
    let status = run(d(&["status", "-c"])).await.output;
    assert!(
        status
            .lines()
            .any(|l| l.contains("missing:") && l.contains("small.txt")),
        "{status}"
    );
}

// ---------------------------------------------------------------------------
// ccache
// ---------------------------------------------------------------------------

fn stat(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('\t')?;
            (k == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("{name} not in ccache --print-stats:\n{stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccache_remote_storage_hit() {
    let config = format!(
        "[[remote]]\nname = \"cc\"\npackage = \"cas\"\nhosted = true\nanonymous_read = false\n{}",
        token_table(
            "ccache",
            WRITE_TOKEN,
            "scopes = { cc = [\"read\", \"write\"] }"
        )
    );
    let gw = Gateway::start(&config).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("hello.c"),
        "int twice(int x) { return 2 * x; }\nint main(void) { return twice(21) - 42; }\n",
    )
    .unwrap();
    std::fs::write(work.path().join("ccache.conf"), "").unwrap();
    let storage = format!(
        "http://{}/api/v1/remote/cc|layout=bazel|bearer-token={WRITE_TOKEN}",
        gw.addr
    );
    let cc = |args: &[&str]| {
        let mut c = Command::new("ccache");
        c.args(args)
            .current_dir(&src)
            .env("CCACHE_DIR", work.path().join("ccache"))
            .env("CCACHE_CONFIGPATH", work.path().join("ccache.conf"))
            .env("CCACHE_REMOTE_STORAGE", &storage)
            .env("CCACHE_LOGFILE", work.path().join("ccache.log"));
        c
    };
    let version = run_ok(cc(&["--version"])).await;
    assert!(version.starts_with("ccache version 4."), "{version}");
    let compile = ["gcc", "-c", "hello.c", "-o", "hello.o"];

    run_ok(cc(&compile)).await;
    let first = std::fs::read(src.join("hello.o")).unwrap();
    let stats = run_ok(cc(&["--print-stats"])).await;
    assert!(stat(&stats, "remote_storage_write") >= 1, "{stats}");
    assert_eq!(stat(&stats, "remote_storage_error"), 0, "{stats}");

    // Clear the local cache: the next compile must come from the gateway.
    run_ok(cc(&["-C"])).await;
    run_ok(cc(&["-z"])).await;
    std::fs::remove_file(src.join("hello.o")).unwrap();
    run_ok(cc(&compile)).await;
    let stats = run_ok(cc(&["--print-stats"])).await;
    let log = std::fs::read_to_string(work.path().join("ccache.log")).unwrap_or_default();
    assert_eq!(stat(&stats, "remote_storage_hit"), 1, "{stats}\n{log}");
    assert_eq!(stat(&stats, "remote_storage_error"), 0, "{stats}");
    assert_eq!(
        std::fs::read(src.join("hello.o")).unwrap(),
        first,
        "the object file from the remote cache differs"
    );
}

// ---------------------------------------------------------------------------
// The cas adapter
// ---------------------------------------------------------------------------

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn pb_bytes(field: u64, data: &[u8], out: &mut Vec<u8>) {
    pb_varint(field << 3 | 2, out);
    pb_varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// A REAPI `Digest` message.
fn pb_digest(blob: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    pb_bytes(1, sha256_hex(blob).as_bytes(), &mut d);
    pb_varint(2 << 3, &mut d);
    pb_varint(blob.len() as u64, &mut d);
    d
}

/// An `ActionResult` with one output file, stdout and stderr.
fn action_result(output: &[u8], stdout: &[u8], stderr: &[u8]) -> Vec<u8> {
    let mut file = Vec::new();
    pb_bytes(1, b"bazel-out/k8-fastbuild/bin/hello.o", &mut file);
    pb_bytes(2, &pb_digest(output), &mut file);
    let mut ar = Vec::new();
    pb_bytes(2, &file, &mut ar);
    pb_bytes(6, &pb_digest(stdout), &mut ar);
    pb_bytes(8, &pb_digest(stderr), &mut ar);
    ar
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_action_results_are_complete_or_absent() {
    let gw =
        Gateway::start("[[remote]]\nname = \"bazel\"\npackage = \"cas\"\nhosted = true\n").await;
    let c = reqwest::Client::new();
    let url = |p: &str| gw.url(&format!("/api/v1/remote/bazel/{p}"));
    let output = bytes(300_000, 1);
    let stdout = b"compiled hello.o\n".to_vec();
    let stderr = Vec::new(); // the empty blob: never uploaded, always there
    for blob in [&output, &stdout] {
        let r = c
            .put(url(&format!("cas/{}", sha256_hex(blob))))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let ar = action_result(&output, &stdout, &stderr);
    let action = sha256_hex(b"the action");
    let r = c
        .put(url(&format!("ac/{action}")))
        .body(ar.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let get = |p: String| {
        let c = c.clone();
        async move { c.get(p).send().await.unwrap() }
    };
    let r = get(url(&format!("ac/{action}"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), ar.as_slice());
    // The empty blob exists without an upload (GET and HEAD).
    let empty = sha256_hex(b"");
    let r = get(url(&format!("cas/{empty}"))).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = c.head(url(&format!("cas/{empty}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A referenced blob goes: the action result is absent, not half there.
    let r = c
        .delete(url(&format!("cas/{}", sha256_hex(&output))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = get(url(&format!("ac/{action}"))).await;
    assert_eq!(r.status(), 404);
    let msg = r.text().await.unwrap();
    assert!(msg.contains(&sha256_hex(&output)), "{msg}");
    let r = c.head(url(&format!("ac/{action}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // ... and is complete again once the blob is back.
    c.put(url(&format!("cas/{}", sha256_hex(&output))))
        .body(output.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(get(url(&format!("ac/{action}"))).await.status(), 200);

    // Content that does not match its name is refused and not stored.
    let name = sha256_hex(b"the right content");
    let r = c
        .put(url(&format!("cas/{name}")))
        .body("the wrong content")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("digest"));
    assert_eq!(get(url(&format!("cas/{name}"))).await.status(), 404);

    // Opaque /ac/ entries (not ActionResults) are stored as they are.
    let opaque = [0xcc, 0xac, 0x01, 0x00, 0x42];
    let key = sha256_hex(b"opaque");
    let r = c
        .put(url(&format!("ac/{key}")))
        .body(opaque.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = get(url(&format!("ac/{key}"))).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), opaque.as_slice());
    // An action result larger than the inspection limit is refused.
    let r = c
        .put(url(&format!("ac/{}", sha256_hex(b"huge"))))
        .body(vec![0u8; 4 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // Other paths: one sentence each.
    for (p, status) in [("cas/abc", 400), ("other/thing", 404), ("", 404)] {
        let r = get(url(p)).await;
        assert_eq!(r.status(), status, "{p}");
        let body: serde_json::Value = json(r).await;
        assert!(body["error"].as_str().is_some_and(|e| e.ends_with('.')));
    }
}

// ---------------------------------------------------------------------------
// Virtual remotes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_remote_reads_members_in_order_and_writes_to_one() {
    let up = Upstream::start().await;
    up.put_body("/both.txt", "from upstream");
    up.put_body("/only-upstream.txt", "upstream only");
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"builds\"\npackage = \"local\"\n\
         [[remote]]\nname = \"mirror\"\npackage = \"generic\"\nupstream = \"{}\"\n\
         [[remote]]\nname = \"all\"\npackage = \"virtual\"\nmembers = [\"builds\", \"mirror\"]\nwrite_to = \"builds\"\n",
        up.url()
    ))
    .await;
    let c = reqwest::Client::new();
    let all = |p: &str| gw.url(&format!("/api/v1/remote/all/{p}"));

    // A write lands in write_to.
    let r = c
        .put(all("both.txt"))
        .body("from builds")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-artifact-member"], "builds");
    let r = c
        .get(gw.url("/api/v1/remote/builds/both.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "from builds");

    // Present in the hosted member: served from it, no upstream request.
    let r = c.get(all("both.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-member"], "builds");
    assert_eq!(r.text().await.unwrap(), "from builds");
    assert_eq!(up.seen("/both.txt").total, 0);
    let r = c.head(all("both.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "11");

    // Absent there: from the pull-through member's upstream (then cached).
    let r = c.get(all("only-upstream.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-member"], "mirror");
    assert_eq!(r.text().await.unwrap(), "upstream only");
    assert_eq!(up.seen("/only-upstream.txt").gets, 1);
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let r = c.get(all("only-upstream.txt")).send().await.unwrap();
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    assert_eq!(up.seen("/only-upstream.txt").gets, 1);

    // Nowhere: 404 naming the virtual remote.
    let r = c.get(all("nowhere.txt")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("\\\"all\\\""));

    // A failing member is skipped: the hosted one still serves, and a
    // path only the failing one could have is 502.
    up.set_down(true);
    let r = c.get(all("both.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(all("new-upstream.txt")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    up.set_down(false);

    // Deletes go to write_to; the path then comes from the next member.
    let r = c.delete(all("both.txt")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(all("both.txt")).send().await.unwrap();
    assert_eq!(r.headers()["x-artifact-member"], "mirror");
    assert_eq!(r.text().await.unwrap(), "from upstream");
}

// ---------------------------------------------------------------------------
// Quotas
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refuses_with_507_and_leaves_nothing() {
    let gw = Gateway::start("[[remote]]\nname = \"q\"\npackage = \"local\"\nmax_size = \"1MiB\"\n")
        .await;
    let c = reqwest::Client::new();
    let url = |p: &str| gw.url(&format!("/api/v1/remote/q/{p}"));
    let data = gw.dir.path().join("data");
    let r = c
        .put(url("a.bin"))
        .body(bytes(600 * 1024, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Declared too large: refused before reading.
    let r = c
        .put(url("b.bin"))
        .body(bytes(600 * 1024, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    let msg: serde_json::Value = json(r).await;
    assert!(msg["error"].as_str().unwrap().contains("quota"), "{msg}");
    // Chunked: refused while streaming; the rest of the body is read and
    // dropped so that the client sees the 507.
    let body = bytes(600 * 1024, 3);
    let stream = futures_util::stream::iter(
        body.chunks(16 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = c
        .post(url("c.bin"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 507);
    for p in ["b.bin", "c.bin"] {
        assert_eq!(c.get(url(p)).send().await.unwrap().status(), 404, "{p}");
    }
    assert_eq!(spool_files(&data), Vec::<String>::new());
    // Replacing an entry counts only the difference.
    let r = c
        .put(url("a.bin"))
        .body(bytes(900 * 1024, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = json(c.get(url("?list")).send().await.unwrap()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

// ---------------------------------------------------------------------------
// Access control
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_and_tokens_never_leak() {
    let up = Upstream::start().await;
    up.put_body("/file.txt", "upstream file");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[[remote]]\nname = \"builds\"\npackage = \"local\"\nanonymous_read = false\n\
         [[remote]]\nname = \"pub\"\npackage = \"generic\"\nupstream = \"{u}\"\n\
         [[remote]]\nname = \"priv\"\npackage = \"generic\"\nupstream = \"{u}\"\nanonymous_read = false\n\
         {}{}{}",
        token_table("reader", READ_TOKEN, "scopes = { \"*\" = [\"read\"] }"),
        token_table(
            "writer",
            WRITE_TOKEN,
            "scopes = { builds = [\"read\", \"write\", \"delete\"] }"
        ),
        token_table("admin", ADMIN_TOKEN, "admin = true"),
        u = up.url(),
    );
    // Debug logging: the most the gateway ever writes.
    let gw = ChildGateway::start_in(dir.path(), &config, "debug").await;
    let c = reqwest::Client::new();
    let seed = c
        .put(gw.url("/api/v1/remote/builds/seed.txt"))
        .header("authorization", bearer(WRITE_TOKEN))
        .body("seed")
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), 201);

    let creds: [(&str, Option<&str>); 5] = [
        ("none", None),
        ("wrong", Some(WRONG_TOKEN)),
        ("read", Some(READ_TOKEN)),
        ("write", Some(WRITE_TOKEN)),
        ("admin", Some(ADMIN_TOKEN)),
    ];
    // (method, path, expected for none, wrong, read, write, admin). `{n}`
    // is replaced by a per-cell number (fresh upload paths).
    let table: &[(&str, &str, [u16; 5])] = &[
        (
            "GET",
            "/api/v1/remote/builds/seed.txt",
            [401, 401, 200, 200, 403],
        ),
        (
            "HEAD",
            "/api/v1/remote/builds/seed.txt",
            [401, 401, 200, 200, 403],
        ),
        (
            "PUT",
            "/api/v1/remote/builds/put-{n}.txt",
            [401, 401, 403, 201, 403],
        ),
        (
            "POST",
            "/api/v1/remote/builds/post-{n}.txt",
            [401, 401, 403, 201, 403],
        ),
        (
            "DELETE",
            "/api/v1/remote/builds/del-{n}.txt",
            [401, 401, 403, 200, 403],
        ),
        (
            "GET",
            "/api/v1/remote/pub/file.txt",
            [200, 401, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/remote/priv/file.txt",
            [401, 401, 200, 403, 403],
        ),
        ("PUT", "/cache/flush?remote=pub", [401, 401, 403, 403, 200]),
        ("GET", "/config", [401, 401, 403, 403, 200]),
        ("GET", "/", [200, 200, 200, 200, 200]),
        ("GET", "/health", [200, 200, 200, 200, 200]),
        ("GET", "/metrics", [200, 200, 200, 200, 200]),
        ("GET", "/plugins", [200, 200, 200, 200, 200]),
        ("GET", "/v2/", [200, 200, 200, 200, 200]),
    ];
    let mut n = 0;
    let mut failures = Vec::new();
    for (method, path, expected) in table {
        for ((who, token), want) in creds.iter().zip(expected) {
            n += 1;
            let path = path.replace("{n}", &n.to_string());
            if *method == "DELETE" {
                // Something to delete.
                let r = c
                    .put(gw.url(&path))
                    .header("authorization", bearer(WRITE_TOKEN))
                    .body("to delete")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
            let mut req = c.request(method.parse().unwrap(), gw.url(&path));
            if let Some(t) = token {
                req = req.header("authorization", bearer(t));
            }
            if *method == "PUT" || *method == "POST" {
                req = req.body(format!("cell {n}"));
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            if status != *want {
                failures.push(format!(
                    "{method} {path} as {who}: {status}, expected {want}"
                ));
                continue;
            }
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            if status == 401 {
                let challenges: Vec<_> = headers
                    .get_all("www-authenticate")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect();
                assert_eq!(
                    challenges,
                    ["Bearer realm=\"artgate\"", "Basic realm=\"artgate\""],
                    "{method} {path}"
                );
            }
            if (status == 401 || status == 403) && *method != "HEAD" {
                let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                let msg = body["error"].as_str().unwrap();
                assert!(!msg.is_empty() && !msg.contains(". "), "{msg}");
            }
        }
    }
    assert!(failures.is_empty(), "auth matrix:\n{}", failures.join("\n"));

    // Basic authentication with any user name and the token as password.
    let r = c
        .get(gw.url("/api/v1/remote/builds/seed.txt"))
        .basic_auth("anyone", Some(READ_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The registry family answers in the OCI error format.
    let r = c
        .put(gw.url("/v2/priv/library/x/manifests/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = json(r).await;
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    // GET /config names the tokens but shows neither them nor their hashes.
    let cfg = c
        .get(gw.url("/config"))
        .header("authorization", bearer(ADMIN_TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cfg.contains("\"reader\"") && cfg.contains("\"***\""),
        "{cfg}"
    );

    // Tokens never reach the upstream ...
    let seen = up.seen("/file.txt");
    assert!(seen.total >= 2, "both pull-through remotes fetched it");
    assert!(
        !seen.last_headers.contains_key("authorization"),
        "{:?}",
        seen.last_headers
    );
    // ... nor the log, which names them instead.
    let log = gw.log_text();
    assert!(log.contains("access control is on"), "{log}");
    assert!(log.contains("token=\"reader\""), "{log}");
    for t in [READ_TOKEN, WRITE_TOKEN, ADMIN_TOKEN, WRONG_TOKEN] {
        assert!(!log.contains(t), "a token appears in the log");
        let b64 = base64_encode(&format!("anyone:{t}"));
        assert!(!log.contains(&b64), "Basic credentials appear in the log");
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
