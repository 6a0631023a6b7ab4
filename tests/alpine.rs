//! The `alpine` adapter end to end: a repository laid out like Alpine's
//! (`v3.20/main/x86_64/APKINDEX.tar.gz` plus `.apk` packages, made by the
//! test with `tar`/`gzip`) served by the in-process upstream, fetched
//! through the gateway the way `apk` fetches it: plain `GET`s with apk's
//! user agent, the index with `If-Modified-Since` once it is cached.

use crate::support::gateway::Gateway;
use crate::support::mirror::Mirror;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The repository directory below the remote.
const DIR: &str = "v3.20/main/x86_64";
/// apk-tools' user agent.
const APK: (&str, &str) = ("user-agent", "apk-tools/2.14.4");

/// Write a gzip tarball `name` into `dir` holding an `APKINDEX` text
/// listing `packages` and a `DESCRIPTION`, like Alpine's (unsigned) index.
fn write_index(dir: &Path, packages: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let mut index = String::new();
    for p in packages {
        let (name, version) = p.rsplit_once('-').unwrap();
        index.push_str(&format!("C:Q1{name}=\nP:{name}\nV:{version}\nA:x86_64\n\n"));
    }
    std::fs::write(work.path().join("APKINDEX"), index).unwrap();
    std::fs::write(work.path().join("DESCRIPTION"), "v3.20.0-test\n").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("tar")
        .arg("-czf")
        .arg(dir.join("APKINDEX.tar.gz"))
        .arg("-C")
        .arg(work.path())
        .args(["DESCRIPTION", "APKINDEX"])
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar failed: {out:?}");
}

/// Write a package `name-version.apk` into `dir` (a gzip stream, as apks
/// are) and return its bytes.
fn write_apk(dir: &Path, package: &str) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join(".PKGINFO"),
        format!("pkgname = {package}\n{}", "x".repeat(4000)),
    )
    .unwrap();
    let file = dir.join(format!("{package}.apk"));
    let out = Command::new("tar")
        .arg("-czf")
        .arg(&file)
        .arg("-C")
        .arg(work.path())
        .arg(".PKGINFO")
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar failed: {out:?}");
    std::fs::read(file).unwrap()
}

/// A mirror at `/alpine` with one repository of `packages`, and a gateway
/// with the remote `alpine` (TTL 1 s) in front of it.
async fn setup(packages: &[&str]) -> (tempfile::TempDir, Mirror, Gateway) {
    let tree = tempfile::tempdir().unwrap();
    let repo = tree.path().join(DIR);
    write_index(&repo, packages);
    for p in packages {
        write_apk(&repo, p);
    }
    let mirror = Mirror::start("/alpine").await;
    mirror.load(tree.path(), "");
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"alpine\"\npackage = \"alpine\"\nupstream = \"{}\"\nmutable_ttl = \"1s\"\ncheck_mutable_updates = true\n",
        mirror.url()
    ))
    .await;
    (tree, mirror, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apk_style_fetches_through_the_gateway() {
    let (tree, mirror, gw) = setup(&["busybox-1.36.1-r29", "musl-1.2.5-r0"]).await;
    let index_path = format!("{DIR}/APKINDEX.tar.gz");
    let index = std::fs::read(tree.path().join(&index_path)).unwrap();

    // `apk update`: the index, then again from cache.
    let got = gw.get_remote("alpine", &index_path, &[APK]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body(), index.as_slice());
    assert_eq!(got.h("content-type"), "application/gzip");
    assert_eq!(got.source(), "remote");
    let last_modified = got.h("last-modified").to_owned();
    assert_eq!(
        gw.get_remote("alpine", &index_path, &[APK]).await.source(),
        "cache"
    );
    // apk asks with If-Modified-Since once it has the index: 304 from the
    // gateway, an older date gets the index.
    let got = gw
        .get_remote(
            "alpine",
            &index_path,
            &[APK, ("if-modified-since", &last_modified)],
        )
        .await;
    assert_eq!(got.status, 304);
    assert!(got.body().is_empty());
    let got = gw
        .get_remote(
            "alpine",
            &index_path,
            &[APK, ("if-modified-since", "Thu, 01 Jan 1970 00:00:01 GMT")],
        )
        .await;
    assert_eq!((got.status, got.body()), (200, index.as_slice()));

    // `apk add`: packages are immutable, fetched once.
    for p in ["busybox-1.36.1-r29", "musl-1.2.5-r0"] {
        let path = format!("{DIR}/{p}.apk");
        let want = std::fs::read(tree.path().join(&path)).unwrap();
        let got = gw.get_remote("alpine", &path, &[APK]).await;
        assert_eq!((got.status, got.body()), (200, want.as_slice()));
        assert_eq!(got.h("content-type"), "application/gzip");
        assert_eq!(got.source(), "remote");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let path = format!("{DIR}/busybox-1.36.1-r29.apk");
    let got = gw.get_remote("alpine", &path, &[APK]).await;
    assert_eq!(got.source(), "cache", "a package never expires");
    let seen = mirror.up.seen(&mirror.path(&path));
    assert_eq!((seen.total, seen.conditional), (1, 0));
    // The expired index is revalidated, not downloaded again.
    let got = gw.get_remote("alpine", &index_path, &[APK]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    let seen = mirror.up.seen(&mirror.path(&index_path));
    assert_eq!((seen.gets, seen.conditional, seen.not_modified), (2, 1, 1));
    // A package the upstream does not have is a 404.
    let got = gw
        .get_remote("alpine", &format!("{DIR}/nope-1.0-r0.apk"), &[APK])
        .await;
    assert_eq!(got.status, 404);
    got.error();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_change_is_visible_after_the_ttl() {
    let (tree, mirror, gw) = setup(&["busybox-1.36.1-r29"]).await;
    let index_path = format!("{DIR}/APKINDEX.tar.gz");
    let old = std::fs::read(tree.path().join(&index_path)).unwrap();
    assert_eq!(
        gw.get_remote("alpine", &index_path, &[APK]).await.body(),
        old.as_slice()
    );
    let since = tokio::time::Instant::now();
    let repo = tree.path().join(DIR);
    write_apk(&repo, "busybox-1.36.1-r30");
    write_index(&repo, &["busybox-1.36.1-r30"]);
    mirror.load(tree.path(), "");
    let new = std::fs::read(tree.path().join(&index_path)).unwrap();
    assert_ne!(old, new);
    let got = gw.get_remote("alpine", &index_path, &[APK]).await;
    if since.elapsed() < Duration::from_millis(700) {
        assert_eq!((got.body(), got.source()), (old.as_slice(), "cache"));
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gw.get_remote("alpine", &index_path, &[APK]).await;
    assert_eq!((got.body(), got.source()), (new.as_slice(), "remote"));
    let got = gw
        .get_remote("alpine", &format!("{DIR}/busybox-1.36.1-r30.apk"), &[APK])
        .await;
    assert_eq!(got.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_index_and_cached_packages_when_the_upstream_is_down() {
    let (tree, mirror, gw) = setup(&["busybox-1.36.1-r29", "musl-1.2.5-r0"]).await;
    let index_path = format!("{DIR}/APKINDEX.tar.gz");
    let index = std::fs::read(tree.path().join(&index_path)).unwrap();
    let apk = format!("{DIR}/busybox-1.36.1-r29.apk");
    assert_eq!(
        gw.get_remote("alpine", &index_path, &[APK]).await.status,
        200
    );
    assert_eq!(gw.get_remote("alpine", &apk, &[APK]).await.status, 200);

    mirror.up.set_down(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gw.get_remote("alpine", &index_path, &[APK]).await;
    assert_eq!((got.status, got.source()), (200, "stale"));
    assert_eq!(got.body(), index.as_slice());
    assert_eq!(
        gw.metric("artgate_stale_served_total", &["remote=\"alpine\""])
            .await,
        1.0
    );
    let got = gw.get_remote("alpine", &apk, &[APK]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    // Never fetched: nothing to serve.
    let got = gw
        .get_remote("alpine", &format!("{DIR}/musl-1.2.5-r0.apk"), &[APK])
        .await;
    assert_eq!(got.status, 502);
    got.error();
    // Back up: the index is current again once its TTL has passed.
    mirror.up.set_down(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gw.get_remote("alpine", &index_path, &[APK]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    assert_eq!(mirror.up.seen(&mirror.path(&index_path)).not_modified, 1);
}
