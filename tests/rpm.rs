//! The `rpm` adapter end to end: real packages (`rpmbuild`), a real
//! repository (`createrepo_c`) served over HTTP by the in-process upstream,
//! and real `dnf` through the gateway; then the mutable-index lifecycle one
//! behaviour at a time against the same upstream.
//!
//! Note on dnf: libdnf/librepo send `Cache-Control: no-cache` (and
//! `Pragma: no-cache`) with every request for `repomd.xml`, not just with
//! `--refresh`, so each dnf metadata check revalidates the index upstream (a
//! 304 when it has not changed). The remote's TTL governs clients that do
//! not send it; the TTL tests use a plain HTTP client for that reason.

use crate::support::gateway::Gateway;
use crate::support::http::send;
use crate::support::mirror::Mirror;
use crate::support::rpm_tools::{Dnf, build_rpm, createrepo, require_tools};
use crate::support::upstream::Resource;
use crate::support::{sha256_hex, wait_until};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the repository sits below the remote (and the mirror prefix).
const REPO: &str = "el9/os";

/// The remote `el` in front of `mirror`.
fn remote(mirror: &Mirror, ttl: &str, check_updates: bool) -> String {
    format!(
        "[[remote]]\nname = \"el\"\npackage = \"rpm\"\nupstream = \"{}\"\nmutable_ttl = \"{ttl}\"\ncheck_mutable_updates = {check_updates}\n",
        mirror.url()
    )
}

/// A repository being built in a temporary directory.
struct Repo {
    work: tempfile::TempDir,
}

impl Repo {
    /// A repository of the packages `names` (version 1.0 each).
    fn new(names: &[&str]) -> Repo {
        require_tools();
        let repo = Repo {
            work: tempfile::tempdir().unwrap(),
        };
        for n in names {
            repo.add(n, false);
        }
        createrepo(&repo.dir(), false);
        repo
    }

    /// The repository directory.
    fn dir(&self) -> PathBuf {
        self.work.path().join("repo")
    }

    /// Build package `name` 1.0 into the repository, and `createrepo_c
    /// --update` when `update`.
    fn add(&self, name: &str, update: bool) -> PathBuf {
        let content = format!("{name} {}\n", "payload ".repeat(200));
        let rpm = build_rpm(self.work.path(), &self.dir(), name, "1.0", &content);
        if update {
            createrepo(&self.dir(), true);
        }
        rpm
    }

    /// The built package file of `name`.
    fn rpm(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}-1.0-1.noarch.rpm"))
    }
}

/// The dnf baseurl of the repository through the gateway.
fn baseurl(gw: &Gateway) -> String {
    gw.url(&format!("/api/v1/remote/el/{REPO}/"))
}

/// Whether the files downloaded into `dest` are byte-identical to the
/// repository's `names`.
fn assert_same_rpms(repo: &Repo, dest: &Path, names: &[&str]) {
    for n in names {
        let file = format!("{n}-1.0-1.noarch.rpm");
        let got =
            std::fs::read(dest.join(&file)).unwrap_or_else(|e| panic!("{file} downloaded: {e}"));
        let want = std::fs::read(repo.rpm(n)).unwrap();
        assert_eq!(sha256_hex(&got), sha256_hex(&want), "{file} differs");
    }
}

/// A fresh dnf on `gw`: `makecache` lists both packages, and `names`
/// download to `dest` (`what` names the download when it fails) as the
/// repository's own files.
async fn dnf_download(gw: &Gateway, repo: &Repo, dest: &Path, names: &[&str], what: &str) -> Dnf {
    let dnf = Dnf::new(&baseurl(gw));
    dnf.run(&["makecache"]).await;
    assert_eq!(
        dnf.available(&[]).await,
        ["artgate-alpha-1.0", "artgate-beta-1.0"]
    );
    let out = dnf.download(dest, names).await;
    assert!(out.status.success(), "{what}: {out:?}");
    assert_same_rpms(repo, dest, names);
    dnf
}

/// Upstream requests for every file but `repomd.xml`, by path.
fn non_index_requests(mirror: &Mirror) -> Vec<(String, u64)> {
    mirror
        .paths()
        .into_iter()
        .filter(|p| !p.ends_with("/repomd.xml"))
        .map(|p| {
            let n = mirror.up.seen(&p).total;
            (p, n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_makecache_repoquery_download_then_served_from_cache() {
    let repo = Repo::new(&["artgate-alpha", "artgate-beta"]);
    let mirror = Mirror::start("/mirror").await;
    mirror.load(&repo.dir(), REPO);
    let gw = Gateway::start(&remote(&mirror, "10m", true)).await;

    let dest = tempfile::tempdir().unwrap();
    dnf_download(
        &gw,
        &repo,
        dest.path(),
        &["artgate-alpha", "artgate-beta"],
        "dnf download",
    )
    .await;

    // Each file went upstream once (dnf and the prefetch share fetches).
    let primary = mirror.find("-primary.xml.gz");
    let filelists = mirror.find("-filelists.xml.gz");
    let other = mirror.find("-other.xml.gz");
    wait_until(
        "other.xml.gz is prefetched",
        Duration::from_secs(10),
        || mirror.up.seen(&other).gets == 1,
    )
    .await;
    gw.fills_settled().await;
    assert_eq!(mirror.up.seen(&primary).gets, 1);
    assert_eq!(mirror.up.seen(&filelists).gets, 1);
    let rpm_path = mirror.path(&format!("{REPO}/artgate-alpha-1.0-1.noarch.rpm"));
    assert_eq!(mirror.up.seen(&rpm_path).gets, 1);

    // Content types and sources as clients see them.
    let got = gw
        .get_remote("el", &format!("{REPO}/artgate-alpha-1.0-1.noarch.rpm"), &[])
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.h("content-type"), "application/x-rpm");
    assert_eq!(got.source(), "cache");
    let got = gw
        .get_remote("el", &format!("{REPO}/repodata/repomd.xml"), &[])
        .await;
    assert_eq!(got.h("content-type"), "application/xml");
    assert_eq!(got.source(), "cache");
    let rel = primary.trim_start_matches("/mirror/");
    let got = gw.get_remote("el", rel, &[]).await;
    assert_eq!(got.h("content-type"), "application/gzip");
    assert_eq!(got.source(), "cache");

    // A second dnf with an empty cache: everything from the gateway's
    // cache; repomd.xml only revalidated (dnf sends no-cache) and answered
    // 304 upstream.
    let before = non_index_requests(&mirror);
    let index = mirror.path(&format!("{REPO}/repodata/repomd.xml"));
    let index_before = mirror.up.seen(&index);
    let dest2 = tempfile::tempdir().unwrap();
    dnf_download(&gw, &repo, dest2.path(), &["artgate-alpha"], "dnf download").await;
    assert_eq!(
        non_index_requests(&mirror),
        before,
        "only repomd.xml may reach the upstream"
    );
    let index_after = mirror.up.seen(&index);
    let new = index_after.total - index_before.total;
    assert_eq!(index_after.conditional - index_before.conditional, new);
    assert_eq!(index_after.not_modified - index_before.not_modified, new);
    assert_eq!(index_after.gets - index_before.gets, new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_sees_upstream_changes_at_once_with_refresh_and_after_the_ttl() {
    let repo = Repo::new(&["artgate-alpha"]);
    let mirror = Mirror::start("/mirror").await;
    mirror.load(&repo.dir(), REPO);
    let ttl = Duration::from_secs(3);
    let gw = Gateway::start(&remote(&mirror, "3s", true)).await;
    let dnf = Dnf::new(&baseurl(&gw));
    dnf.run(&["makecache"]).await;
    assert_eq!(dnf.available(&[]).await, ["artgate-alpha-1.0"]);

    // A new package upstream: `dnf --refresh` sees it at once.
    repo.add("artgate-gamma", true);
    mirror.load(&repo.dir(), REPO);
    assert_eq!(
        dnf.available(&["--refresh"]).await,
        ["artgate-alpha-1.0", "artgate-gamma-1.0"]
    );
    let dest = tempfile::tempdir().unwrap();
    let out = dnf.download(dest.path(), &["artgate-gamma"]).await;
    assert!(out.status.success(), "dnf download: {out:?}");
    assert_same_rpms(&repo, dest.path(), &["artgate-gamma"]);

    // A client that does not ask for revalidation gets the cached index
    // until the TTL has passed, then the new one.
    let index = format!("{REPO}/repodata/repomd.xml");
    let revalidated = gw
        .get_remote("el", &index, &[("cache-control", "no-cache")])
        .await;
    assert_eq!(revalidated.status, 200);
    let since = tokio::time::Instant::now();
    repo.add("artgate-delta", true);
    mirror.load(&repo.dir(), REPO);
    let new_index = std::fs::read(repo.dir().join("repodata/repomd.xml")).unwrap();
    assert_ne!(revalidated.body(), new_index.as_slice());
    let within = gw.get_remote("el", &index, &[]).await;
    // (The TTL restarted just before `since`; leave a margin.)
    let margin = Duration::from_millis(500);
    if since.elapsed() < ttl - margin {
        assert_eq!(within.body(), revalidated.body(), "served before the TTL");
        assert_eq!(within.source(), "cache");
    }
    let mut seen_new = false;
    while since.elapsed() < ttl + Duration::from_secs(10) {
        let got = gw.get_remote("el", &index, &[]).await;
        if got.body() == new_index.as_slice() {
            assert!(since.elapsed() >= ttl - margin, "new index before the TTL");
            assert_eq!(got.source(), "remote");
            seen_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen_new,
        "the changed repomd.xml never showed after the TTL"
    );

    // The changed index's metadata is prefetched without a client asking
    // (`other.xml.gz` dnf never reads); the SQLite variants are skipped.
    for suffix in ["-primary.xml.gz", "-filelists.xml.gz", "-other.xml.gz"] {
        let path = mirror.find(suffix);
        wait_until(
            &format!("the new {suffix} is prefetched"),
            Duration::from_secs(10),
            || mirror.up.seen(&path).gets == 1,
        )
        .await;
    }
    gw.fills_settled().await;
    for db in mirror.paths().iter().filter(|p| p.ends_with(".sqlite.bz2")) {
        assert_eq!(mirror.up.seen(db).total, 0, "{db} was prefetched");
    }
    // So dnf needs nothing but the index from upstream.
    let before = non_index_requests(&mirror);
    assert_eq!(
        dnf.available(&["--refresh"]).await,
        [
            "artgate-alpha-1.0",
            "artgate-delta-1.0",
            "artgate-gamma-1.0"
        ]
    );
    assert_eq!(non_index_requests(&mirror), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnf_keeps_working_from_cache_with_the_upstream_down() {
    let repo = Repo::new(&["artgate-alpha", "artgate-beta"]);
    let mirror = Mirror::start("/mirror").await;
    mirror.load(&repo.dir(), REPO);
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    let dnf = Dnf::new(&baseurl(&gw));
    dnf.run(&["makecache"]).await;
    let dest = tempfile::tempdir().unwrap();
    let out = dnf.download(dest.path(), &["artgate-alpha"]).await;
    assert!(out.status.success(), "dnf download: {out:?}");
    let other = mirror.find("-other.xml.gz");
    wait_until("prefetch finished", Duration::from_secs(10), || {
        mirror.up.seen(&other).gets == 1
    })
    .await;
    gw.fills_settled().await;

    mirror.up.set_down(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stale_before = gw
        .metric("artgate_stale_served_total", &["remote=\"el\""])
        .await;
    // A fresh dnf: the index is served stale, everything else from cache.
    let dest2 = tempfile::tempdir().unwrap();
    let dnf2 = dnf_download(
        &gw,
        &repo,
        dest2.path(),
        &["artgate-alpha"],
        "dnf download from cache",
    )
    .await;
    assert!(
        gw.metric("artgate_stale_served_total", &["remote=\"el\""])
            .await
            > stale_before,
        "serving the index stale is counted"
    );
    let got = gw
        .get_remote(
            "el",
            &format!("{REPO}/repodata/repomd.xml"),
            &[("cache-control", "no-cache")],
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.source(), "stale");
    // A package the gateway never saw cannot be served.
    let out = dnf2.download(dest2.path(), &["artgate-beta"]).await;
    assert!(!out.status.success(), "an uncached package was downloaded");
    let got = gw
        .get_remote("el", &format!("{REPO}/artgate-beta-1.0-1.noarch.rpm"), &[])
        .await;
    assert_eq!(got.status, 502);
    got.error();
}

// ---- The mutable lifecycle, one behaviour at a time --------------------

const INDEX: &str = "repo/repodata/repomd.xml";

/// A mirror serving `body` as `/mirror/repo/repodata/repomd.xml`.
async fn index_mirror(body: &str) -> Mirror {
    let mirror = Mirror::start("/mirror").await;
    mirror.up.put_body(&mirror.path(INDEX), body.to_owned());
    mirror
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_file_not_matching_immutable_patterns_is_served_and_expires() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    mirror
        .up
        .put_body(&mirror.path("repo/LATEST"), "build-1".to_owned());
    let gw = Gateway::start(&format!(
        "{}immutable_patterns = ['\\.rpm$', '-primary\\.xml\\.gz$']\nmutable_patterns = ['(^|/)LATEST$']\n",
        remote(&mirror, "1s", true)
    ))
    .await;
    for path in [INDEX, "repo/LATEST"] {
        let up = mirror.path(path);
        let got = gw.get_remote("el", path, &[]).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.source(), "remote");
        assert_eq!(gw.get_remote("el", path, &[]).await.source(), "cache");
        assert_eq!(mirror.up.seen(&up).total, 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let got = gw.get_remote("el", path, &[]).await;
        assert_eq!(got.status, 200);
        assert_eq!(mirror.up.seen(&up).conditional, 1, "{path} expired");
    }
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.h("content-type"), "application/xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_modified_refreshes_the_ttl_without_a_download() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    let up = mirror.path(INDEX);
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    assert_eq!(gw.get_remote("el", INDEX, &[]).await.source(), "remote");
    assert_eq!(mirror.up.seen(&up).conditional, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body(), b"<repomd>v1</repomd>");
    assert_eq!(got.source(), "cache");
    let seen = mirror.up.seen(&up);
    assert_eq!((seen.gets, seen.conditional, seen.not_modified), (2, 1, 1));
    assert_eq!(mirror.up.bodies_completed(), 1, "nothing downloaded again");
    // The TTL was refreshed: the next request stays in the gateway.
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.source(), "cache");
    assert_eq!(got.body(), b"<repomd>v1</repomd>");
    assert_eq!(mirror.up.seen(&up).total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_index_is_downloaded_again() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    let up = mirror.path(INDEX);
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    assert_eq!(
        gw.get_remote("el", INDEX, &[]).await.body(),
        b"<repomd>v1</repomd>"
    );
    mirror.up.put_body(&up, "<repomd>v2</repomd>".to_owned());
    // Within the TTL: still the old one.
    assert_eq!(
        gw.get_remote("el", INDEX, &[]).await.body(),
        b"<repomd>v1</repomd>"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.body(), b"<repomd>v2</repomd>");
    assert_eq!(got.source(), "remote");
    let seen = mirror.up.seen(&up);
    assert_eq!((seen.gets, seen.conditional, seen.not_modified), (2, 1, 0));
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(
        (got.body(), got.source()),
        (&b"<repomd>v2</repomd>"[..], "cache")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_with_nothing_cached_is_502() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    mirror
        .up
        .edit(&mirror.path(INDEX), |r| r.status = Some(500));
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.status, 502);
    got.error();
    mirror.up.set_down(true);
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.status, 502);
    got.error();
    // Nothing was cached by the failures.
    mirror.up.set_down(false);
    mirror.up.edit(&mirror.path(INDEX), |r| r.status = None);
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!((got.status, got.source()), (200, "remote"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_on_revalidation_serves_stale_and_refreshes_the_ttl() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    assert_eq!(gw.get_remote("el", INDEX, &[]).await.status, 200);
    mirror.up.set_down(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.source(), "stale");
    assert_eq!(got.body(), b"<repomd>v1</repomd>");
    assert_eq!(
        gw.metric("artgate_stale_served_total", &["remote=\"el\""])
            .await,
        1.0
    );
    // The stale copy was kept and its TTL refreshed: served from the store
    // without another attempt until it expires again, and still labelled
    // stale (the upstream has not confirmed it).
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.source(), "stale");
    assert_eq!(
        gw.metric("artgate_stale_served_total", &["remote=\"el\""])
            .await,
        1.0
    );
    // An upstream 5xx counts as unavailable too.
    mirror.up.set_down(false);
    mirror
        .up
        .edit(&mirror.path(INDEX), |r| r.status = Some(503));
    let got = gw
        .get_remote("el", INDEX, &[("cache-control", "no-cache")])
        .await;
    assert_eq!((got.status, got.source()), (200, "stale"));
    assert_eq!(got.body(), b"<repomd>v1</repomd>");
}

/// An upstream that answers `repomd.xml` with an error page (status 200)
/// does not replace the good index: the adapter refuses the body and the
/// stale copy is served; with nothing cached the client gets 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_page_never_replaces_a_good_index() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    assert_eq!(gw.get_remote("el", INDEX, &[]).await.status, 200);
    mirror.up.edit(&mirror.path(INDEX), |r| {
        r.body = bytes::Bytes::from_static(b"<html>maintenance</html>");
        r.etag = Some("\"maint\"".into());
    });
    let got = gw
        .get_remote("el", INDEX, &[("cache-control", "no-cache")])
        .await;
    assert_eq!((got.status, got.source()), (200, "stale"));
    assert_eq!(got.body(), b"<repomd>v1</repomd>");
    // Nothing cached: the refusal reaches the client.
    let fresh = Gateway::start(&remote(&mirror, "1s", true)).await;
    let got = fresh.get_remote("el", INDEX, &[]).await;
    assert_eq!(got.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_check_mutable_updates_expired_entries_are_refetched() {
    let mirror = index_mirror("<repomd>v1</repomd>").await;
    let up = mirror.path(INDEX);
    let gw = Gateway::start(&remote(&mirror, "1s", false)).await;
    assert_eq!(gw.get_remote("el", INDEX, &[]).await.source(), "remote");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gw.get_remote("el", INDEX, &[]).await;
    assert_eq!((got.status, got.source()), (200, "remote"));
    let seen = mirror.up.seen(&up);
    assert_eq!((seen.gets, seen.conditional), (2, 0));
    assert!(seen.last_headers.get("if-none-match").is_none());
    assert!(seen.last_headers.get("if-modified-since").is_none());
    assert_eq!(mirror.up.bodies_completed(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_named_metadata_with_wrong_content_is_aborted_and_not_stored() {
    let good = b"the real primary.xml.gz".to_vec();
    let name = format!("repo/repodata/{}-primary.xml.gz", sha256_hex(&good));
    let mirror = Mirror::start("/mirror").await;
    let up = mirror.path(&name);
    mirror.up.put(
        &up,
        Resource {
            body: b"a substituted primary.xml.gz".to_vec().into(),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&remote(&mirror, "1s", true)).await;
    for attempt in 1..=2 {
        let got = gw.get_remote("el", &name, &[]).await;
        assert!(
            got.status != 200 || got.broke_off.is_some(),
            "attempt {attempt}: the wrong content was delivered as complete"
        );
        assert_eq!(mirror.up.seen(&up).gets, attempt, "nothing was cached");
    }
    mirror.up.put(
        &up,
        Resource {
            body: good.clone().into(),
            ..Default::default()
        },
    );
    let got = gw.get_remote("el", &name, &[]).await;
    assert_eq!((got.status, got.body()), (200, good.as_slice()));
    let got = gw.get_remote("el", &name, &[]).await;
    assert_eq!(got.source(), "cache");
    assert_eq!(mirror.up.seen(&up).gets, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_index_prefetches_the_files_it_names() {
    let primary = b"primary v1".to_vec();
    let primary_name = format!("repo/repodata/{}-primary.xml.gz", sha256_hex(&primary));
    let index = format!(
        "<?xml version=\"1.0\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\n\
         <data type=\"primary\"><location href=\"repodata/{}\"/></data>\n\
         <data type=\"group\"><location href=\"repodata/comps.xml\"/></data>\n\
         <data type=\"primary_db\"><location href=\"repodata/primary.sqlite.bz2\"/></data>\n\
         </repomd>\n",
        primary_name.rsplit('/').next().unwrap()
    );
    let mirror = index_mirror(&index).await;
    mirror
        .up
        .put_body(&mirror.path(&primary_name), primary.clone());
    mirror.up.put_body(
        &mirror.path("repo/repodata/comps.xml"),
        "<comps/>".to_owned(),
    );
    mirror.up.put_body(
        &mirror.path("repo/repodata/primary.sqlite.bz2"),
        "sqlite".to_owned(),
    );
    let gw = Gateway::start(&remote(&mirror, "10m", true)).await;
    assert_eq!(gw.get_remote("el", INDEX, &[]).await.status, 200);
    for p in [primary_name.as_str(), "repo/repodata/comps.xml"] {
        let up = mirror.path(p);
        wait_until(
            &format!("{p} is prefetched"),
            Duration::from_secs(10),
            || mirror.up.seen(&up).gets == 1,
        )
        .await;
    }
    assert_eq!(
        mirror
            .up
            .seen(&mirror.path("repo/repodata/primary.sqlite.bz2"))
            .total,
        0
    );
    // Prefetched entries are complete cache entries.
    gw.fills_settled().await;
    let got = gw.get_remote("el", &primary_name, &[]).await;
    assert_eq!((got.status, got.source()), (200, "cache"));
    assert_eq!(got.body(), primary.as_slice());
    assert_eq!(
        gw.get_remote("el", "repo/repodata/comps.xml", &[])
            .await
            .source(),
        "cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_with_400() {
    let mirror = index_mirror("<repomd/>").await;
    let gw = Gateway::start(&remote(&mirror, "1m", true)).await;
    for method in ["PUT", "DELETE", "POST"] {
        let got = send(
            method,
            &gw.url("/api/v1/remote/el/repo/Packages/a-1.0-1.noarch.rpm"),
            &[],
        )
        .await;
        assert_eq!(got.status, 400, "{method}");
        assert!(got.error().contains(method));
    }
    assert_eq!(mirror.up.requests(), 0);
}
