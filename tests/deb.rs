//! The built-in `deb` adapter end to end: a signed archive made in the test
//! (`dpkg-deb`, `apt-ftparchive`, `gpg`) served by `lighttpd`, and the real
//! `apt-get` through the gateway with a private configuration. Covered:
//! `apt-get update` and `apt-get download` through the gateway; everything
//! again with lighttpd stopped (the InRelease served stale); a package
//! added upstream seen after the TTL, with the index apt asked for
//! prefetched by its new `by-hash/` name so that apt needs nothing but the
//! cache right after the release change; index files that do not match
//! their signed Release (a new Release with the old indexes, then indexes
//! tampered with under an unchanged Release) refused — never stored, never
//! served whole, the good copy kept and served stale once the upstream is
//! gone — and an error page in place of the InRelease never replacing the
//! good one; an index file asked for before its Release (looked up through
//! the cache and verified); and the golden cases. What reached the
//! upstream is read from lighttpd's access log.

use crate::support::clients::Ran;
use crate::support::deb_tools::{Apt, Archive, BINARY, Lighttpd};
use crate::support::gateway::Gateway;
use crate::support::http::send;
use crate::support::kit::check_builtin_cases;
use crate::support::{eventually, sha256_hex, wait_until};
use std::time::{Duration, Instant};

/// The remote's mutable TTL.
const TTL: Duration = Duration::from_secs(2);

/// The suite's InRelease, as lighttpd logs it.
const INRELEASE: &str = "/dists/stable/InRelease";

/// The remote `debian` in front of `upstream`.
fn remote(upstream: &str) -> String {
    format!(
        "[[remote]]\nname = \"debian\"\npackage = \"deb\"\nupstream = {upstream:?}\nmutable_ttl = \"{}s\"\ncheck_mutable_updates = true\n",
        TTL.as_secs()
    )
}

/// The archive's URL through the gateway, as apt's sources line names it.
fn source(gw: &Gateway) -> String {
    gw.url("/api/v1/remote/debian/")
}

/// Whether apt succeeded without an error or warning line (`apt-get
/// update` exits 0 when index files failed without old ones to keep).
fn clean(ran: &Ran) -> bool {
    ran.ok && !ran.output.contains("Err:") && !ran.output.contains("\nW: ")
}

/// Panic with `what` and apt's output unless it succeeded cleanly.
fn assert_ok(what: &str, ran: &Ran) {
    assert!(clean(ran), "{what} failed:\n{}", ran.output);
}

/// `apt-get download NAME` into a fresh directory; the file must be the
/// archive's own.
async fn download_same(apt: &Apt, archive: &Archive, name: &str) {
    let dest = tempfile::tempdir().unwrap();
    assert_ok(
        &format!("apt-get download {name}"),
        &apt.download(dest.path(), name).await,
    );
    let file = format!("{name}_1.0_all.deb");
    let got = std::fs::read(dest.path().join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let want = archive.read(&Archive::pool_path(name, "1.0"));
    assert_eq!(sha256_hex(&got), sha256_hex(&want), "{file} differs");
}

/// Every request lighttpd served, as `(path, status)`, once its access log
/// (which it writes with a delay) holds every upstream request the gateway
/// counted and no fetch is in flight.
async fn upstream_log(gw: &Gateway, up: &Lighttpd) -> Vec<(String, u16)> {
    gw.fills_settled().await;
    let sent = gw
        .metric("artgate_upstream_requests_total", &["remote=\"debian\""])
        .await as usize;
    eventually(
        "lighttpd's access log to catch up",
        Duration::from_secs(10),
        || async {
            let log = up.requests();
            (log.len() >= sent).then_some(log)
        },
    )
    .await
}

/// The requests of `log` for anything but the InRelease (which the
/// gateway revalidates whenever its short TTL has passed).
fn files(log: &[(String, u16)]) -> Vec<(String, u16)> {
    log.iter()
        .filter(|(p, _)| p != INRELEASE)
        .cloned()
        .collect()
}

/// The downloads in `log` ([`files`] answered 200; revalidations of
/// expired entries, 304, left out).
fn downloads(log: &[(String, u16)]) -> Vec<(String, u16)> {
    files(log).into_iter().filter(|(_, s)| *s == 200).collect()
}

/// How many requests for exactly `path` are in `log`.
fn count(log: &[(String, u16)], path: &str) -> usize {
    log.iter().filter(|(p, _)| p == path).count()
}

/// The archive path of `Packages.xz` by the digest apt asks `by-hash/` for.
fn packages_by_hash(archive: &Archive) -> String {
    format!(
        "{BINARY}/by-hash/SHA512/{}",
        archive.listed("SHA512", "main/binary-amd64/Packages.xz")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_updates_and_downloads_through_the_gateway_and_then_without_the_upstream() {
    let archive = Archive::new(true);
    archive.add("artgate-alpha", "1.0");
    archive.add("artgate-beta", "1.0");
    archive.publish();
    let mut up = Lighttpd::start(&archive.root()).await;
    let gw = Gateway::start(&remote(&up.url())).await;

    let apt = Apt::new(&source(&gw), &archive.keyring());
    assert_ok("apt-get update", &apt.update().await);
    assert_eq!(apt.names().await, ["artgate-alpha", "artgate-beta"]);
    download_same(&apt, &archive, "artgate-alpha").await;

    // Upstream: the InRelease, the Packages index by the by-hash name apt
    // asks for (the Release has SHA512), the package; once each.
    let by_hash = packages_by_hash(&archive);
    let alpha = Archive::pool_path("artgate-alpha", "1.0");
    let log = upstream_log(&gw, &up).await;
    assert_eq!(log.first(), Some(&(INRELEASE.to_owned(), 200)), "{log:?}");
    assert_eq!(
        files(&log),
        [(format!("/{by_hash}"), 200), (format!("/{alpha}"), 200)]
    );

    // As clients see them.
    let got = gw.get_remote("debian", &alpha, &[]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    assert_eq!(
        got.h("content-type"),
        "application/vnd.debian.binary-package"
    );
    let got = gw.get_remote("debian", &by_hash, &[]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    assert_eq!(got.body(), archive.read(&format!("{BINARY}/Packages.xz")));
    assert_eq!(got.h("content-type"), "application/x-xz");
    let got = gw.get_remote("debian", "dists/stable/InRelease", &[]).await;
    assert_eq!(got.h("content-type"), "text/plain; charset=utf-8");
    assert_eq!(got.body(), archive.read("dists/stable/InRelease"));
    // A mirror takes no uploads; the upstream never hears of them.
    for method in ["PUT", "DELETE", "POST"] {
        let got = send(
            method,
            &gw.url(&format!("/api/v1/remote/debian/{alpha}")),
            &[],
        )
        .await;
        assert_eq!(got.status, 405, "{method}");
        assert!(got.error().contains(method), "{method}: {}", got.error());
    }
    assert_eq!(files(&upstream_log(&gw, &up).await), files(&log));

    // The upstream goes away and the InRelease expires: a new apt with
    // empty lists updates (the InRelease served stale) and downloads from
    // the cache alone; what the gateway never saw cannot be had.
    up.stop();
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    let stale_before = gw
        .metric("artgate_stale_served_total", &["remote=\"debian\""])
        .await;
    let offline = Apt::new(&source(&gw), &archive.keyring());
    assert_ok(
        "apt-get update without the upstream",
        &offline.update().await,
    );
    assert_eq!(offline.names().await, ["artgate-alpha", "artgate-beta"]);
    download_same(&offline, &archive, "artgate-alpha").await;
    assert!(
        gw.metric("artgate_stale_served_total", &["remote=\"debian\""])
            .await
            > stale_before,
        "the InRelease was served stale"
    );
    let dest = tempfile::tempdir().unwrap();
    let ran = offline.download(dest.path(), "artgate-beta").await;
    assert!(
        !ran.ok,
        "a package the gateway never saw was downloaded:\n{}",
        ran.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_release_is_seen_after_the_ttl_and_its_index_prefetched() {
    let archive = Archive::new(true);
    archive.add("artgate-alpha", "1.0");
    archive.publish();
    let mut up = Lighttpd::start(&archive.root()).await;
    let gw = Gateway::start(&remote(&up.url())).await;
    let apt = Apt::new(&source(&gw), &archive.keyring());
    assert_ok("apt-get update", &apt.update().await);
    let fetched = Instant::now();
    assert_eq!(apt.names().await, ["artgate-alpha"]);
    let old_inrelease = archive.read("dists/stable/InRelease");
    let old_index = packages_by_hash(&archive);

    // A new release upstream.
    archive.add("artgate-beta", "1.0");
    archive.publish();
    let new_inrelease = archive.read("dists/stable/InRelease");
    let new_index = packages_by_hash(&archive);
    assert_ne!(old_index, new_index);
    let got = gw.get_remote("debian", "dists/stable/InRelease", &[]).await;
    // (Leave a margin: the TTL started when apt's update fetched it.)
    if fetched.elapsed() < TTL - Duration::from_millis(700) {
        assert_eq!(
            got.body(),
            old_inrelease,
            "served from the cache within the TTL"
        );
        assert_eq!(got.source(), "cache");
    }
    // After the TTL a plain client (not apt) gets the new InRelease, and
    // the gateway fetches the index apt asked for, by its new by-hash
    // name, without being asked.
    let mut seen_new = false;
    while fetched.elapsed() < TTL + Duration::from_secs(10) {
        let got = gw.get_remote("debian", "dists/stable/InRelease", &[]).await;
        if got.body() == new_inrelease.as_slice() {
            seen_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_new, "the new InRelease never showed after the TTL");
    wait_until(
        "the new index is prefetched",
        Duration::from_secs(10),
        || up.count(&format!("/{new_index}")) == 1,
    )
    .await;
    let log = upstream_log(&gw, &up).await;
    assert_eq!(
        files(&log),
        [
            (format!("/{old_index}"), 200),
            (format!("/{new_index}"), 200)
        ],
        "apt's index, then the new one prefetched; nothing else"
    );

    // The upstream goes away right after the release change: apt still
    // gets the new release whole, from the cache.
    up.stop();
    let ran = apt.update().await;
    assert_ok("apt-get update after the release change", &ran);
    assert_eq!(
        apt.names().await,
        ["artgate-alpha", "artgate-beta"],
        "apt-get update said:\n{}",
        ran.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_files_that_do_not_match_their_release_are_refused_and_the_good_copy_kept() {
    // Without by-hash apt asks for `Packages.xz` by name, so the gateway
    // checks it against the digest the Release lists.
    let archive = Archive::new(false);
    archive.add("artgate-alpha", "1.0");
    archive.publish();
    let mut up = Lighttpd::start(&archive.root()).await;
    let gw = Gateway::start(&remote(&up.url())).await;
    let apt = Apt::new(&source(&gw), &archive.keyring());
    assert_ok("apt-get update", &apt.update().await);
    assert_eq!(apt.names().await, ["artgate-alpha"]);
    let xz = format!("{BINARY}/Packages.xz");
    let xz_up = format!("/{xz}");
    assert_eq!(count(&upstream_log(&gw, &up).await, &xz_up), 1);
    let indexes = ["Packages", "Packages.gz", "Packages.xz"].map(|n| format!("{BINARY}/{n}"));
    let v1: Vec<Vec<u8>> = indexes.iter().map(|p| archive.read(p)).collect();

    // A new release whose indexes are then put back to the old ones after
    // signing (a mirror caught mid-sync): apt's update fails and it keeps
    // its lists; the gateway never delivers the old index whole for the
    // new Release, stores nothing, and asks the upstream again each time.
    archive.add("artgate-beta", "1.0");
    archive.publish();
    let v2: Vec<Vec<u8>> = indexes.iter().map(|p| archive.read(p)).collect();
    for (p, body) in indexes.iter().zip(&v1) {
        archive.replace(p, body);
    }
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    let ran = apt.update().await;
    assert!(
        !clean(&ran) && ran.output.contains("Failed to fetch"),
        "apt-get update accepted an index that does not match its Release:\n{}",
        ran.output
    );
    assert_eq!(apt.names().await, ["artgate-alpha"]);
    for attempt in 1..=2 {
        let before = count(&upstream_log(&gw, &up).await, &xz_up);
        let got = gw.get_remote("debian", &xz, &[]).await;
        assert!(
            got.status != 200 || got.broke_off.is_some(),
            "attempt {attempt}: the mismatching index was delivered as complete"
        );
        assert_eq!(
            count(&upstream_log(&gw, &up).await, &xz_up),
            before + 1,
            "attempt {attempt}: nothing was stored, so the upstream is asked again"
        );
    }

    // The upstream repaired: apt gets the new release.
    for (p, body) in indexes.iter().zip(&v2) {
        archive.replace(p, body);
    }
    assert_ok("apt-get update after the repair", &apt.update().await);
    assert_eq!(apt.names().await, ["artgate-alpha", "artgate-beta"]);
    download_same(&apt, &archive, "artgate-beta").await;

    // The indexes tampered with under the same Release: once the stored
    // copy expires, the changed upstream file is refused each time (a new
    // apt fails), and the stored copy is not replaced.
    for p in &indexes {
        archive.replace(p, b"Package: evil\nVersion: 6.6.6\n");
    }
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    let fresh = Apt::new(&source(&gw), &archive.keyring());
    let ran = fresh.update().await;
    assert!(
        !clean(&ran) && ran.output.contains("Failed to fetch"),
        "apt-get update accepted a tampered index:\n{}",
        ran.output
    );
    assert!(fresh.names().await.is_empty());
    for attempt in 1..=2 {
        let before = count(&upstream_log(&gw, &up).await, &xz_up);
        let got = gw.get_remote("debian", &xz, &[]).await;
        assert!(
            got.status != 200 || got.broke_off.is_some(),
            "attempt {attempt}: the tampered index was delivered as complete"
        );
        assert_eq!(
            count(&upstream_log(&gw, &up).await, &xz_up),
            before + 1,
            "attempt {attempt}: the tampered index was not stored"
        );
    }

    // An error page where the InRelease should be never replaces the good
    // one: the stored copy is served stale.
    let good_inrelease = archive.read("dists/stable/InRelease");
    archive.replace(
        "dists/stable/InRelease",
        b"<!DOCTYPE html>\n<html><body>Down for maintenance</body></html>\n",
    );
    let got = gw
        .get_remote(
            "debian",
            "dists/stable/InRelease",
            &[("cache-control", "no-cache")],
        )
        .await;
    assert_eq!((got.status, got.source()), (200, "stale"));
    assert_eq!(got.body(), good_inrelease.as_slice());

    // The upstream gone: the good copies are what the gateway has, and a
    // new apt gets the whole archive from them.
    up.stop();
    let got = gw.get_remote("debian", &xz, &[]).await;
    assert_eq!((got.status, got.source()), (200, "stale"));
    assert_eq!(got.body(), v2[2].as_slice());
    assert_ok("apt-get update from the good copies", &fresh.update().await);
    assert_eq!(fresh.names().await, ["artgate-alpha", "artgate-beta"]);
    download_same(&fresh, &archive, "artgate-beta").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_asked_for_before_its_release_is_verified_against_it() {
    let archive = Archive::new(false);
    archive.add("artgate-alpha", "1.0");
    archive.publish();
    let up = Lighttpd::start(&archive.root()).await;
    let gw = Gateway::start(&remote(&up.url())).await;
    let xz = format!("{BINARY}/Packages.xz");
    let got = gw.get_remote("debian", &xz, &[]).await;
    assert_eq!((got.status, got.source()), (200, "remote"));
    assert_eq!(got.body(), archive.read(&xz));
    // The adapter read the InRelease first, through the cache (so it is
    // stored as a client's request would store it), and verified the
    // index against it.
    let log = upstream_log(&gw, &up).await;
    assert_eq!(log, [(INRELEASE.to_owned(), 200), (format!("/{xz}"), 200)]);
    let got = gw.get_remote("debian", &xz, &[]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    let got = gw.get_remote("debian", "dists/stable/InRelease", &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body(), archive.read("dists/stable/InRelease"));
    assert_eq!(downloads(&upstream_log(&gw, &up).await), downloads(&log));
    // A file the Release does not list is passed through.
    let got = gw
        .get_remote("debian", "dists/stable/main/binary-i386/Packages.xz", &[])
        .await;
    assert_eq!(got.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cases_pass() {
    check_builtin_cases("deb", "plugins/deb/cases", 8).await;
}
