//! A full disk: the whole store (blobs, spools and the sled index) on an
//! 8 MiB tmpfs mounted by the test (the test runs as root, as CI does; it
//! fails, it does not skip, where it cannot mount).

use crate::support::bytes;
use crate::support::child::{
    ChildGateway, damage, fsck, write_config_with_storage, write_hosted_and_pull_config,
};
use crate::support::http::{client, drain, json_error};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{KIB, MIB, sha256_hex, spool_files};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A tmpfs mounted for the test, lazily unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `8m`) at `path` with mount(2).
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let c = |s: &[u8]| CString::new(s).expect("no NUL");
        let (src, target, fstype, data) = (
            c(b"tmpfs"),
            c(path.as_os_str().as_bytes()),
            c(b"tmpfs"),
            c(format!("size={size},mode=0755").as_bytes()),
        );
        // SAFETY: mount(2) with valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            panic!(
                "the disk-full test needs to mount a {size} tmpfs at {} (as root, which CI is): mount(2) failed: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Grow (or shrink) the file system to `size` in place.
    fn resize(&self, size: &str) {
        let c = |s: &[u8]| CString::new(s).expect("no NUL");
        let (src, target, fstype, data) = (
            c(b"tmpfs"),
            c(self.path.as_os_str().as_bytes()),
            c(b"tmpfs"),
            c(format!("size={size}").as_bytes()),
        );
        // SAFETY: mount(2) with valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_REMOUNT,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "remount: {}", std::io::Error::last_os_error());
    }

    /// Bytes free on the file system.
    fn free(&self) -> u64 {
        let p = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: statvfs(3) into a zeroed struct.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(p.as_ptr(), &mut s) };
        assert_eq!(rc, 0, "statvfs");
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(p) = CString::new(self.path.as_os_str().as_bytes()) {
            // SAFETY: umount2(2) on the path we mounted.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Wait (at most 10 s) until no spool is left: the fill leader's task
/// drops its spool just after the client sees the end.
async fn no_spools_left(data: &Path, what: &str) {
    let start = Instant::now();
    loop {
        let s = spool_files(data);
        if s.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: spool files left behind: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PUT `body` (chunked when `chunked`); status and body text.
async fn put(c: &reqwest::Client, url: &str, body: Vec<u8>, chunked: bool) -> (u16, String) {
    let req = if chunked {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
            .chunks(64 * KIB)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        c.put(url)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
    } else {
        c.put(url).body(body)
    };
    let r = req.send().await.expect("upload request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Uploads that do not fit get 507 with a sentence saying why and leave no
/// spool; a fill that does not fit is an aborted transfer (never a clean
/// end) and is not cached; every acknowledged upload survives; once space
/// is freed uploads and fills work again without a restart, and `fsck
/// --verify` finds no corrupt object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_uploads_with_507_and_fails_fills_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let fs = Tmpfs::mount(&data, "8m");
    let up = Upstream::start().await;
    let big = bytes(4 * MIB, 91);
    let big_sha = sha256_hex(&big);
    up.put(
        "/big.bin",
        Resource {
            body: big.clone().into(),
            chunk: Some(64 * KIB),
            ..Default::default()
        },
    );
    // No reserve: this test is about the disk's own ENOSPC everywhere
    // (`min_free_keeps_room_for_deletes_and_refuses_new_content_with_507`
    // has the reserve).
    let cfg = write_config_with_storage(
        dir.path(),
        &data,
        "min_free = \"0\"",
        "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"10s\"",
        &format!(
            "[[remote]]\nname = \"h\"\npackage = \"local\"\n\n[[remote]]\nname = \"p\"\npackage = \"generic\"\nupstream = {:?}\n",
            up.url()
        ),
    );
    let mut gw = ChildGateway::start(&cfg).await;
    let c = client();
    let url = |k: &str| gw.url(&format!("/api/v1/remote/h/{k}"));
    eprintln!("tmpfs free after startup: {} KiB", fs.free() / 1024);

    // Fill the disk with 1 MiB uploads, alternately declared and chunked,
    // until the store refuses one.
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut refusal = None;
    for i in 0..32 {
        let body = bytes(MIB, 100 + i);
        let sha = sha256_hex(&body);
        let key = format!("fill-{i}.bin");
        let (status, text) = put(&c, &url(&key), body, i % 2 == 1).await;
        match status {
            201 => acked.push((key, sha)),
            507 => {
                refusal = Some((key, text));
                break;
            }
            s => panic!("upload {key}: {s} {text}\n{}", gw.log_text()),
        }
    }
    let (refused_key, text) = refusal.expect("8 MiB never filled up");
    assert!(
        acked.len() >= 2,
        "only {} uploads fitted: {text}",
        acked.len()
    );
    let msg: serde_json::Value = serde_json::from_str(&text).expect("a JSON error body");
    let msg = msg["error"].as_str().expect("error").to_owned();
    assert!(msg.contains("no space left"), "507 body: {msg}");
    eprintln!(
        "{} uploads of 1 MiB fitted; {refused_key}: 507 {msg}",
        acked.len()
    );
    no_spools_left(&data, "after a refused upload").await;

    // Larger than the whole disk: refused too, declared or chunked.
    for chunked in [false, true] {
        let (status, text) = put(&c, &url("huge.bin"), bytes(12 * MIB, 7), chunked).await;
        assert_eq!(status, 507, "chunked={chunked}: {text}");
        assert!(text.contains("no space left"), "{text}");
        no_spools_left(&data, "after a refused upload of 12 MiB").await;
    }
    // Top the disk off to the last block with ever smaller uploads, so the
    // index runs out of space too: each one is acknowledged or refused with
    // 507, never anything else.
    let mut topped = 0;
    for (size, n) in [(64 * KIB, 64), (4 * KIB, 64), (64, 64)] {
        for i in 0..n {
            let body = bytes(size, (size * 1000 + i) as u64);
            let sha = sha256_hex(&body);
            let key = format!("top-{size}-{i}.bin");
            let (status, text) = put(&c, &url(&key), body, i % 2 == 1).await;
            match status {
                201 => {
                    acked.push((key, sha));
                    topped += 1;
                }
                507 => break,
                s => panic!("upload {key}: {s} {text}\n{}", gw.log_text()),
            }
        }
    }
    eprintln!(
        "{topped} smaller uploads topped the disk off; {} KiB free",
        fs.free() / 1024
    );
    no_spools_left(&data, "after topping off").await;
    for k in [refused_key.as_str(), "huge.bin"] {
        let r = c.get(url(k)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{k} was refused but is listed");
    }

    // A fill that does not fit: headers may have gone out, but the body
    // is aborted, never ended cleanly, and nothing is cached.
    let fill_url = gw.url("/api/v1/remote/p/big.bin");
    for attempt in 1..=2u64 {
        let r = c.get(&fill_url).send().await.expect("fill request");
        let status = r.status().as_u16();
        if status == 200 {
            let got = drain(r).await;
            eprintln!(
                "fill that does not fit, attempt {attempt}: 200, {} bytes, then {:?}",
                got.len, got.error
            );
            assert!(
                got.error.is_some(),
                "attempt {attempt}: a fill that did not fit ended cleanly after {} bytes",
                got.len
            );
        } else {
            let text = r.text().await.unwrap_or_default();
            eprintln!("fill that does not fit, attempt {attempt}: {status} {text}");
            assert!(
                matches!(status, 500 | 502 | 507),
                "attempt {attempt}: {status} {text}"
            );
        }
        assert_eq!(up.seen("/big.bin").gets, attempt, "the fill was cached");
        if status == 200 {
            // The client only sees its connection cut; the log says why.
            let start = Instant::now();
            while !gw.log_text().contains("fill aborted") {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "an aborted fill was not logged:\n{}",
                    gw.log_text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(gw.log_text().contains("No space left"), "{}", gw.log_text());
        }
        no_spools_left(&data, "after a fill that did not fit").await;
    }

    // Every acknowledged upload is whole.
    for (k, sha) in &acked {
        let r = c.get(url(k)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{k}");
        let got = drain(r).await;
        assert_eq!((got.error, &got.sha256), (None, sha), "{k}");
    }

    // On a disk this full even a DELETE may not fit into the index: it is
    // done or refused with 507, never anything else.
    let (last, last_sha) = acked.pop().expect("uploads");
    let r = c.delete(url(&last)).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    eprintln!("DELETE on the full disk: {status} {text}");
    assert!(
        status == 200 || (status == 507 && text.contains("no space left")),
        "DELETE on the full disk: {status} {text}"
    );

    // Space comes back (the tmpfs grows, as when an operator grows the
    // volume or deletes other files): without a restart, deletes, uploads
    // and fills work again.
    fs.resize("16m");
    let r = c.delete(url(&last)).send().await.unwrap();
    let status = r.status().as_u16();
    assert!(
        status == 200 || status == 404,
        "DELETE {last} after space came back: {status} {}",
        r.text().await.unwrap_or_default()
    );
    drop(last_sha);
    for (k, _) in &acked[2..] {
        let r = c.delete(url(k)).send().await.unwrap();
        assert_eq!(r.status(), 200, "DELETE {k}");
    }
    acked.truncate(2);
    let after = bytes(MIB, 300);
    let (status, text) = put(&c, &url("after.bin"), after.clone(), false).await;
    assert_eq!(
        status,
        201,
        "upload after space came back: {text}\n{}",
        gw.log_text()
    );
    acked.push(("after.bin".into(), sha256_hex(&after)));
    let r = c.get(&fill_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = drain(r).await;
    assert_eq!((got.error, got.sha256), (None, big_sha.clone()), "fill");
    // The body is released before its commit: wait for the commit.
    gw.fills_settled().await;
    let r = c.get(&fill_url).send().await.unwrap();
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    drain(r).await;
    eprintln!("tmpfs free at the end: {} KiB", fs.free() / 1024);
    gw.terminate().await;

    let (_, report) = fsck(&cfg, &["--verify"]).await;
    assert!(damage(&report).is_empty(), "fsck --verify: {report:#}");
    assert_eq!(report["corrupt_blobs"], 0, "{report:#}");
    assert!(spool_files(&data).is_empty());

    // Restarted, everything acknowledged is still there and whole.
    let gw = ChildGateway::start(&cfg).await;
    for (k, sha) in &acked {
        let r = c
            .get(gw.url(&format!("/api/v1/remote/h/{k}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{k} after restart");
        let got = drain(r).await;
        assert_eq!((got.error, &got.sha256), (None, sha), "{k} after restart");
    }
    let r = c
        .get(gw.url("/api/v1/remote/p/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    let got = drain(r).await;
    assert_eq!((got.error, got.sha256), (None, big_sha));
    drop(gw);
    drop(fs);
}

/// A fill whose spool cannot be written because the gateway's disk is
/// full is the gateway's fault, not the upstream's: every client gets 507
/// with a sentence naming the gateway's disk (not a 200 cut short, not a
/// 502 blaming the upstream), and nothing is cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_the_disk_cannot_take_is_507_naming_the_gateway_disk() {
    if !cfg!(feature = "failpoints") {
        panic!("needs the failpoints feature: cargo test --features artgate/failpoints");
    }
    let up = Upstream::start().await;
    let obj = bytes(256 * KIB, 5);
    up.put(
        "/obj.bin",
        Resource {
            body: obj.clone().into(),
            chunk: Some(32 * KIB),
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_hosted_and_pull_config(dir.path(), &dir.path().join("data"), &up.url());
    let gw = ChildGateway::start_env(&cfg, &[("FAILPOINTS", "spool-write=return(enospc)")]).await;
    let c = client();
    let url = gw.url("/api/v1/remote/pull/obj.bin");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let r = c.get(&url).send().await.expect("request");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            })
        })
        .collect();
    for (i, h) in clients.into_iter().enumerate() {
        let (status, text) = h.await.expect("client");
        eprintln!("client {i}: {status} {text}");
        assert_eq!(status, 507, "client {i}: {text}");
        let msg = json_error(&text);
        assert!(
            msg.contains("gateway") && msg.contains("own disk") && msg.contains("No space left"),
            "client {i}: the sentence does not name the gateway's disk: {msg}"
        );
        assert!(
            !msg.contains("upstream"),
            "client {i} blames the upstream: {msg}"
        );
    }
    let gets = up.seen("/obj.bin").gets;
    let r = c.get(&url).send().await.expect("again");
    assert_eq!(r.status(), 507);
    assert_eq!(
        up.seen("/obj.bin").gets,
        gets + 1,
        "a failed fill was cached"
    );
}

/// `storage.min_free` keeps room for the index on a full disk: uploads
/// and fills are refused with 507 (saying why) once less than the reserve
/// is free, the disk never fills to its last block, and every DELETE goes
/// through (on a disk filled to the last block, even a delete can fail:
/// sled needs room to write it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_free_keeps_room_for_deletes_and_refuses_new_content_with_507() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let fs = Tmpfs::mount(&data, "8m");
    let up = Upstream::start().await;
    let obj = bytes(512 * KIB, 92);
    up.put(
        "/obj.bin",
        Resource {
            body: obj.clone().into(),
            chunk: Some(64 * KIB),
            ..Default::default()
        },
    );
    let reserve = 3 * MIB as u64;
    let cfg = write_config_with_storage(
        dir.path(),
        &data,
        "min_free = \"3MiB\"",
        "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"10s\"",
        &format!(
            "[[remote]]\nname = \"h\"\npackage = \"local\"\n\n[[remote]]\nname = \"p\"\npackage = \"generic\"\nupstream = {:?}\n",
            up.url()
        ),
    );
    let mut gw = ChildGateway::start(&cfg).await;
    let c = client();
    let url = |k: &str| gw.url(&format!("/api/v1/remote/h/{k}"));

    // Uploads of ever smaller sizes, alternately declared and chunked,
    // until each size is refused.
    let mut acked = Vec::new();
    let mut refusal = None;
    for (size, n) in [(MIB, 16), (64 * KIB, 64), (4 * KIB, 64)] {
        for i in 0..n {
            let key = format!("u-{size}-{i}.bin");
            let (status, text) =
                put(&c, &url(&key), bytes(size, (size + i) as u64), i % 2 == 1).await;
            match status {
                201 => acked.push(key),
                507 => {
                    refusal.get_or_insert(json_error(&text));
                    break;
                }
                s => panic!("upload {key}: {s} {text}\n{}", gw.log_text()),
            }
        }
    }
    let msg = refusal.expect("8 MiB never filled up");
    let free = fs.free();
    eprintln!(
        "{} uploads fitted; then 507: {msg}; {} KiB free (reserve {} KiB)",
        acked.len(),
        free / 1024,
        reserve / 1024
    );
    assert!(acked.len() >= 2, "only {} uploads fitted", acked.len());
    assert!(msg.contains("min_free"), "the 507 does not say why: {msg}");
    // Each transfer checks the reserve at its start and every MiB, so it
    // dips into it by less than a MiB (and the index grows a little).
    assert!(
        free >= reserve / 2,
        "{free} bytes free: the uploads ate into the reserve of {reserve}"
    );
    // A fill is refused the same way, before any byte.
    let r = c
        .get(gw.url("/api/v1/remote/p/obj.bin"))
        .send()
        .await
        .expect("fill");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 507, "fill below the reserve: {text}");
    assert!(json_error(&text).contains("min_free"), "{text}");
    no_spools_left(&data, "after refusals").await;

    // Every DELETE goes through, without growing the disk.
    for k in &acked {
        let r = c.delete(url(k)).send().await.expect("delete");
        let status = r.status().as_u16();
        assert_eq!(
            status,
            200,
            "DELETE {k}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    // The upkeep deletes the freed blobs (every 5 s); then fills and
    // uploads work again, without a restart.
    let start = Instant::now();
    while fs.free() < reserve + MIB as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "space was not freed: {} KiB free",
            fs.free() / 1024
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = c
        .get(gw.url("/api/v1/remote/p/obj.bin"))
        .send()
        .await
        .expect("fill");
    assert_eq!(r.status(), 200);
    let got = drain(r).await;
    assert_eq!((got.error, got.sha256), (None, sha256_hex(&obj)));
    let (status, text) = put(&c, &url("after.bin"), bytes(MIB, 1), false).await;
    assert_eq!(status, 201, "{text}");
    gw.terminate().await;
    let (code, report) = fsck(&cfg, &["--verify"]).await;
    assert_eq!(code, 0, "{report:#}");
    assert!(damage(&report).is_empty(), "{report:#}");
    drop(fs);
}
