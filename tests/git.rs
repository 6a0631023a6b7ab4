//! The `git` adapter end to end: a real repository served by `git
//! http-backend` (run as a CGI by `support::git_http`), and the real `git`
//! client cloning and fetching through the gateway over protocol v2 and v0:
//! full, shallow, blob-filtered and sparse clones, the exact-commit fetch
//! of a bare repository with its lazy blob fetch, new upstream commits
//! after the refs TTL, one view of the refs for every client (no clone sees
//! an older state than a fetch already saw, with a long and a short refs
//! TTL, over v2 and v0), everything again with the upstream stopped, the
//! upstream request counts that prove caching and coalescing, and pushes
//! refused.

use crate::support::gateway::Gateway;
use crate::support::git_http::{GitHttp, git_command, run_for, run_ok};
use crate::support::http::send;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository's path below the upstream root and the remote.
const REPO: &str = "acme/data.git";
/// Number of tags in the fixture (40 lightweight, 10 annotated).
const TAGS: usize = 50;
/// Size of the binary file.
const BIG: usize = 3 * 1024 * 1024 + 123;

/// A test repository behind a running `git http-backend` upstream.
struct Fixture {
    /// Holds every directory of the test.
    dir: tempfile::TempDir,
    /// The working repository commits are made in.
    work: PathBuf,
    /// The served bare repository.
    bare: PathBuf,
    /// The upstream.
    up: GitHttp,
    /// The commits of `main`, oldest first.
    commits: Vec<String>,
}

impl Fixture {
    /// A repository with four commits on `main`, a multi-MiB binary, 50
    /// tags and a few directories, served by a new upstream.
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let work = dir.path().join("work");
        let root = dir.path().join("root");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let up = GitHttp::start(&root, &home).await;
        let mut f = Fixture {
            bare: root.join(REPO),
            work,
            dir,
            up,
            commits: Vec::new(),
        };
        let mut init = f.git_in(f.dir.path());
        init.args(["init", "-q", "-b", "main", "work"]);
        run_ok(init).await;
        let files: Vec<(String, Vec<u8>)> = [
            ("README.md", b"# data\n".to_vec()),
            ("docs/guide.md", b"guide v1\n".to_vec()),
            ("docs/api/index.md", b"api\n".to_vec()),
            ("src/lib.rs", b"pub fn f() {}\n".to_vec()),
            ("src/util/mod.rs", b"// util\n".to_vec()),
            ("assets/big.bin", crate::support::bytes(BIG, 7)),
        ]
        .into_iter()
        .map(|(p, b)| (p.to_owned(), b))
        .chain((0..10).map(|i| (format!("data/small/{i}.txt"), format!("{i}\n").into_bytes())))
        .collect();
        for (p, b) in &files {
            f.write(p, b);
        }
        f.commit("first").await;
        f.write("docs/guide.md", b"guide v2\n");
        f.write("data/extra.txt", b"extra\n");
        f.commit("second").await;
        f.write("src/lib.rs", b"pub fn f() -> u8 { 1 }\n");
        f.commit("third").await;
        f.write("README.md", b"# data, fourth\n");
        f.commit("fourth").await;
        // 40 lightweight tags in one process, 10 annotated ones.
        let mut refs = String::new();
        for i in 0..40 {
            refs.push_str(&format!(
                "create refs/tags/v0.{i} {}\n",
                f.commits[i % f.commits.len()]
            ));
        }
        let path = f.dir.path().join("tags.txt");
        std::fs::write(&path, refs).unwrap();
        let mut c = f.git_in(&f.work);
        c.args(["update-ref", "--stdin"])
            .stdin(std::fs::File::open(&path).unwrap());
        run_ok(c).await;
        for i in 0..TAGS - 40 {
            let mut c = f.git_in(&f.work);
            let target = f.commits[i % f.commits.len()].clone();
            c.args([
                "tag",
                "-a",
                &format!("rel-{i}"),
                "-m",
                &format!("release {i}"),
                &target,
            ]);
            run_ok(c).await;
        }
        let mut c = f.git_in(f.dir.path());
        c.args(["clone", "-q", "--bare"]).arg(&f.work).arg(&f.bare);
        run_ok(c).await;
        for (k, v) in [
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
        ] {
            let mut c = f.git_in(&f.bare);
            c.args(["config", k, v]);
            run_ok(c).await;
        }
        f
    }

    /// `git -C dir` with the isolated environment.
    fn git_in(&self, dir: &Path) -> std::process::Command {
        let mut c = git_command(&self.dir.path().join("home"));
        c.arg("-C").arg(dir);
        c
    }

    /// Run `git -C dir args...`, panic on failure, return stdout.
    async fn git(&self, dir: &Path, args: &[&str]) -> String {
        let mut c = self.git_in(dir);
        c.args(args);
        run_ok(c).await
    }

    /// Run `git -C dir args...` and return (success, stderr).
    async fn git_status(&self, dir: &Path, args: &[&str]) -> (bool, String) {
        let mut c = self.git_in(dir);
        c.args(args);
        let out = run_for(c, Duration::from_secs(45)).await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A path in the test directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    /// Commit everything in the working repository.
    async fn commit(&mut self, msg: &str) -> String {
        let work = self.work.clone();
        self.git(&work, &["add", "-A"]).await;
        self.git(&work, &["commit", "-q", "-m", msg]).await;
        let sha = self.git(&work, &["rev-parse", "HEAD"]).await;
        self.commits.push(sha.clone());
        sha
    }

    /// Commit a change and push it to the served repository.
    async fn push_new_commit(&mut self, msg: &str) -> String {
        self.write("docs/guide.md", format!("guide {msg}\n").as_bytes());
        let sha = self.commit(msg).await;
        let bare = self.bare.to_string_lossy().into_owned();
        let work = self.work.clone();
        self.git(&work, &["push", "-q", &bare, "main"]).await;
        sha
    }

    /// What the upstream itself says `rev` resolves to.
    async fn upstream_rev(&self, rev: &str) -> String {
        self.git(&self.bare, &["rev-parse", rev]).await
    }

    /// The `[[remote]]` table of remote `gh` in front of the upstream.
    fn remote(&self, refs_ttl: &str) -> String {
        format!(
            "[[remote]]\nname = \"gh\"\npackage = \"git\"\nupstream = \"{}\"\n[remote.options]\nrefs_ttl = \"{refs_ttl}\"\n",
            self.up.url()
        )
    }

    /// Upload-pack POSTs the upstream answered.
    fn upload_pack_posts(&self) -> usize {
        self.up
            .count(|s| s.method == "POST" && s.path.ends_with("/git-upload-pack"))
    }

    /// `git clone` (protocol `proto`, extra `args`) of the repository
    /// through `gw` into `dest`; checks the tree against the upstream's
    /// and that `git fsck` is clean.
    async fn clone(&self, gw: &Gateway, proto: &str, args: &[&str], dest: &str) -> PathBuf {
        let dest = self.path(dest);
        let url = repo_url(gw);
        let mut c = self.git_in(self.dir.path());
        c.args(["-c", &format!("protocol.version={proto}"), "clone", "-q"])
            .args(args)
            .arg(&url)
            .arg(&dest);
        run_ok(c).await;
        assert_eq!(
            self.git(&dest, &["rev-parse", "HEAD^{tree}"]).await,
            self.upstream_rev("main^{tree}").await,
            "clone {args:?} over v{proto}"
        );
        self.git(&dest, &["fsck", "--no-progress"]).await;
        dest
    }

    /// A bare repository that fetches exactly `sha` (`--depth 1
    /// --filter=blob:none`) through `gw`, then checks out only `docs/` of
    /// it in a worktree: the lazy blob fetch goes through the gateway too.
    /// Returns the worktree.
    async fn exact_commit(&self, gw: &Gateway, sha: &str, name: &str) -> PathBuf {
        let bare = self.path(&format!("{name}.git"));
        let wt = self.path(&format!("{name}-wt"));
        let url = repo_url(gw);
        self.git(
            self.dir.path(),
            &["init", "-q", "--bare", &bare.to_string_lossy()],
        )
        .await;
        self.git(&bare, &["config", "remote.origin.url", &url])
            .await;
        self.git(
            &bare,
            &[
                "fetch",
                "-q",
                "--depth",
                "1",
                "--filter=blob:none",
                "origin",
                sha,
            ],
        )
        .await;
        self.git(
            &bare,
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "--detach",
                &wt.to_string_lossy(),
                sha,
            ],
        )
        .await;
        self.git(&wt, &["sparse-checkout", "set", "docs"]).await;
        self.git(&wt, &["checkout", "-q", sha]).await;
        assert_eq!(
            self.git(&wt, &["rev-parse", "HEAD^{tree}"]).await,
            self.upstream_rev(&format!("{sha}^{{tree}}")).await
        );
        assert_eq!(
            std::fs::read_to_string(wt.join("docs/guide.md")).unwrap(),
            self.git(&self.bare, &["show", &format!("{sha}:docs/guide.md")])
                .await
                + "\n"
        );
        assert!(!wt.join("assets/big.bin").exists());
        let big = self.upstream_rev(&format!("{sha}:assets/big.bin")).await;
        self.assert_missing(&bare, sha, &big).await;
        self.git(&bare, &["fsck", "--no-progress"]).await;
        wt
    }

    /// `oid`, which `rev` references, is not in the repository at `dir`
    /// (and is not fetched to check).
    async fn assert_missing(&self, dir: &Path, rev: &str, oid: &str) {
        let mut c = self.git_in(dir);
        c.env("GIT_NO_LAZY_FETCH", "1")
            .args(["cat-file", "-e", oid]);
        let out = run_for(c, Duration::from_secs(20)).await;
        assert!(
            !out.status.success(),
            "{oid} is present in {}",
            dir.display()
        );
        let missing = self
            .git(dir, &["rev-list", "--objects", "--missing=print", rev])
            .await;
        assert!(
            missing.lines().any(|l| l == format!("?{oid}")),
            "{oid} is not listed as missing"
        );
    }
}

/// The clone URL of the repository through `gw`.
fn repo_url(gw: &Gateway) -> String {
    gw.url(&format!("/api/v1/remote/gh/{REPO}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_over_v2_and_v0_match_the_upstream_and_repeat_from_the_cache() {
    let f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("60s")).await;
    for proto in ["2", "0"] {
        let first = f.clone(&gw, proto, &[], &format!("v{proto}-a")).await;
        assert_eq!(
            f.git(&first, &["tag"]).await.lines().count(),
            TAGS,
            "tags over v{proto}"
        );
        assert!(first.join("assets/big.bin").exists());
        // With 50 tags the wants exceed 1 KiB, so git gzips the request:
        // the adapter saw it decoded (its key is reused below).
        let v2 = |s: &crate::support::git_http::Seen| {
            String::from_utf8_lossy(&s.body).contains("command=fetch")
        };
        assert!(
            f.up.seen()
                .iter()
                .any(|s| s.is_fetch() && s.gzip && v2(s) == (proto == "2")),
            "no gzip request over v{proto}"
        );
        let posts = f.upload_pack_posts();
        let before = f.up.seen().len();
        f.clone(&gw, proto, &[], &format!("v{proto}-b")).await;
        assert_eq!(
            f.upload_pack_posts(),
            posts,
            "the second v{proto} clone reached the upstream: {:#?}",
            f.up.counts()
        );
        // git sends `Pragma: no-cache` with info/refs, which the gateway
        // honours: that small GET is the only upstream request.
        let again = &f.up.seen()[before..];
        assert!(again.iter().all(|s| s.is_info_refs()), "{again:#?}");
    }
    // ls-remote lists what the upstream has, over both protocols.
    let local = sorted(
        &f.git(f.dir.path(), &["ls-remote", &f.bare.to_string_lossy()])
            .await,
    );
    assert_eq!(
        local.len(),
        1 + 1 + TAGS + (TAGS - 40),
        "HEAD, main, tags, peeled tags"
    );
    for proto in ["2", "0"] {
        let listed = f
            .git(
                f.dir.path(),
                &[
                    "-c",
                    &format!("protocol.version={proto}"),
                    "ls-remote",
                    &repo_url(&gw),
                ],
            )
            .await;
        assert_eq!(sorted(&listed), local, "ls-remote over v{proto}");
    }
}

fn sorted(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sees_a_new_upstream_commit_after_the_refs_ttl() {
    let mut f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("1s")).await;
    let clone = f.clone(&gw, "2", &[], "clone").await;
    for (proto, msg) in [("2", "fifth"), ("0", "sixth")] {
        let sha = f.push_new_commit(msg).await;
        tokio::time::sleep(Duration::from_millis(1300)).await;
        f.git(
            &clone,
            &[
                "-c",
                &format!("protocol.version={proto}"),
                "fetch",
                "-q",
                "origin",
            ],
        )
        .await;
        assert_eq!(f.git(&clone, &["rev-parse", "origin/main"]).await, sha);
        f.git(&clone, &["merge", "-q", "--ff-only", "origin/main"])
            .await;
        assert_eq!(
            std::fs::read_to_string(clone.join("docs/guide.md")).unwrap(),
            format!("guide {msg}\n")
        );
        f.git(&clone, &["fsck", "--no-progress"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shallow_and_blob_filtered_sparse_clones() {
    let f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("60s")).await;
    for proto in ["2", "0"] {
        let shallow = f
            .clone(&gw, proto, &["--depth", "1"], &format!("shallow-v{proto}"))
            .await;
        assert_eq!(f.git(&shallow, &["rev-list", "--count", "HEAD"]).await, "1");
        assert_eq!(
            std::fs::read(shallow.join("assets/big.bin")).unwrap().len(),
            BIG
        );
    }
    // A second shallow clone's pack comes from the cache. (The v0 clone's
    // advertisement came from the upstream, which expired the v2 ref
    // listing: the v2 clone fetches that listing again, not its pack.)
    for proto in ["2", "0"] {
        let packs = f.up.count(|s| s.is_fetch());
        f.clone(
            &gw,
            proto,
            &["--depth", "1"],
            &format!("shallow-again-v{proto}"),
        )
        .await;
        assert_eq!(
            f.up.count(|s| s.is_fetch()),
            packs,
            "v{proto}: {:#?}",
            f.up.counts()
        );
    }

    // Partial clone, sparse checkout of docs/: the big blob never arrives.
    let partial = f
        .clone(
            &gw,
            "2",
            &["--filter=blob:none", "--no-checkout"],
            "partial",
        )
        .await;
    f.git(&partial, &["sparse-checkout", "set", "docs"]).await;
    f.git(&partial, &["checkout", "-q", "main"]).await;
    assert_eq!(
        std::fs::read_to_string(partial.join("docs/guide.md")).unwrap(),
        "guide v2\n"
    );
    assert!(!partial.join("assets/big.bin").exists());
    let big = f.upstream_rev("main:assets/big.bin").await;
    f.assert_missing(&partial, "HEAD", &big).await;
    f.git(&partial, &["fsck", "--no-progress"]).await;
    // The lazy blob fetch of docs/ went through the gateway.
    let guide = f.upstream_rev("main:docs/guide.md").await;
    let want = format!("want {guide}");
    assert_eq!(
        f.up.count(|s| s.is_fetch() && String::from_utf8_lossy(&s.body).contains(&want)),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_commit_fetches_and_clones_work_with_the_upstream_stopped() {
    let f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("1s")).await;
    // A commit that is not a branch tip.
    let sha = f.commits[1].clone();
    assert_ne!(sha, f.upstream_rev("main").await);
    f.exact_commit(&gw, &sha, "online").await;
    f.clone(&gw, "2", &[], "clone-online").await;

    f.up.set_down(true);
    // Let the refs expire: they are served stale from here on.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let seen = f.up.seen().len();
    f.clone(&gw, "2", &[], "clone-offline").await;
    f.exact_commit(&gw, &sha, "offline").await;
    assert_eq!(f.up.seen().len(), seen, "the stopped upstream answered");
    let stale = send(
        "GET",
        &format!("{}/info/refs?service=git-upload-pack", repo_url(&gw)),
        &[("git-protocol", "version=2"), ("pragma", "no-cache")],
    )
    .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.source(), "stale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_clones_make_one_upstream_pack_request() {
    let f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("60s")).await;
    let url = repo_url(&gw);
    let clones = (0..20).map(|i| {
        let mut c = f.git_in(f.dir.path());
        c.args(["-c", "protocol.version=2", "clone", "-q", &url])
            .arg(f.path(&format!("c{i}")));
        run_ok(c)
    });
    futures_util::future::join_all(clones).await;
    let tree = f.upstream_rev("main^{tree}").await;
    for i in 0..20 {
        let dir = f.path(&format!("c{i}"));
        assert_eq!(f.git(&dir, &["rev-parse", "HEAD^{tree}"]).await, tree);
    }
    let counts = format!("{:#?}", f.up.counts());
    assert_eq!(f.up.count(|s| s.is_fetch()), 1, "{counts}");
    assert_eq!(f.up.count(|s| s.is_ls_refs()), 1, "{counts}");
    // info/refs is revalidated for every client (`Pragma: no-cache`), in
    // coalesced fetches: never more than one per clone.
    assert!(f.up.count(|s| s.is_info_refs()) <= 20, "{counts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_and_dumb_http_are_refused() {
    let f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("60s")).await;
    let clone = f.clone(&gw, "2", &[], "clone").await;
    std::fs::write(clone.join("new.txt"), "new\n").unwrap();
    f.git(&clone, &["add", "new.txt"]).await;
    f.git(&clone, &["commit", "-q", "-m", "local"]).await;
    let (ok, stderr) = f.git_status(&clone, &["push", "origin", "HEAD:main"]).await;
    assert!(!ok, "the push succeeded");
    assert!(
        stderr.contains("Pushing through the gateway is not supported"),
        "{stderr}"
    );
    assert_eq!(f.up.count(|s| s.query.contains("receive-pack")), 0);
    let base = repo_url(&gw);
    for path in ["HEAD", "objects/info/packs", "info/refs"] {
        let got = send("GET", &format!("{base}/{path}"), &[]).await;
        assert_eq!(got.status, 404, "{path}");
        assert!(
            String::from_utf8_lossy(got.body()).contains("HTTP"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_answer_is_not_cached() {
    let mut f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("60s")).await;
    // A commit the upstream does not have yet.
    f.write("docs/guide.md", b"later\n");
    let sha = f.commit("later").await;
    let bare = f.path("b.git");
    f.git(
        f.dir.path(),
        &["init", "-q", "--bare", &bare.to_string_lossy()],
    )
    .await;
    f.git(&bare, &["config", "remote.origin.url", &repo_url(&gw)])
        .await;
    let fetch = ["fetch", "-q", "--depth", "1", "origin", sha.as_str()];
    let (ok, stderr) = f.git_status(&bare, &fetch).await;
    assert!(!ok, "fetching an unknown commit succeeded");
    assert!(stderr.contains("not our ref"), "{stderr}");
    // Once pushed, the same request reaches the upstream and succeeds.
    let work = f.work.clone();
    f.git(&work, &["push", "-q", &f.bare.to_string_lossy(), "main"])
        .await;
    f.git(&bare, &fetch).await;
    assert_eq!(f.git(&bare, &["rev-parse", "FETCH_HEAD"]).await, sha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_the_inspection_limit_stream_uncached() {
    let f = Fixture::new().await;
    let gw = Gateway::start(&f.remote("60s")).await;
    let tip = f.upstream_rev("main").await;
    let pkt = |s: &str| format!("{:04x}{s}\n", s.len() + 5);
    let mut body = String::new();
    for l in ["command=fetch", "object-format=sha1"] {
        body.push_str(&pkt(l));
    }
    body.push_str("0001");
    body.push_str(&pkt(&format!("want {tip}")));
    // 25,000 haves the upstream does not know: 1.25 MB of negotiation.
    for i in 0..25_000u32 {
        body.push_str(&pkt(&format!("have {i:040x}")));
    }
    body.push_str(&pkt("done"));
    body.push_str("0000");
    assert!(body.len() > 1024 * 1024);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for round in 1..=2 {
        let r = client
            .post(format!("{}/git-upload-pack", repo_url(&gw)))
            .header("content-type", "application/x-git-upload-pack-request")
            .header("git-protocol", "version=2")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-artifact-source"], "remote");
        assert_eq!(
            r.headers()["content-type"],
            "application/x-git-upload-pack-result"
        );
        let bytes = r.bytes().await.unwrap();
        assert!(
            bytes.windows(4).any(|w| w == b"PACK"),
            "no pack in round {round}"
        );
        assert!(bytes.ends_with(b"0000"));
        assert_eq!(f.up.count(|s| s.is_fetch()), round);
        let seen = f.up.seen();
        assert_eq!(seen.last().unwrap().body.len(), body.len());
    }
}

impl Fixture {
    /// `git clone` over protocol `proto` with `args` through `gw` into
    /// `dest`, without comparing it to the upstream (it may hold an older
    /// state); returns the `HEAD` it got.
    async fn clone_head(&self, gw: &Gateway, proto: &str, args: &[&str], dest: &str) -> String {
        let dest = self.path(dest);
        let mut c = self.git_in(self.dir.path());
        c.args(["-c", &format!("protocol.version={proto}"), "clone", "-q"])
            .args(args)
            .arg(repo_url(gw))
            .arg(&dest);
        run_ok(c).await;
        self.git(&dest, &["rev-parse", "HEAD"]).await
    }

    /// Whether `old` is `new` or an ancestor of it (in the upstream, which
    /// has every commit).
    async fn is_ancestor(&self, old: &str, new: &str) -> bool {
        let bare = self.bare.clone();
        self.git_status(&bare, &["merge-base", "--is-ancestor", old, new])
            .await
            .0
    }
}

/// The sequence: clients have cached the refs, a new commit reaches
/// the upstream, a `git fetch` runs through the gateway, then a shallow and
/// a blob-filtered clone. Neither clone may see an older `main` than the
/// fetch saw, for a fetch and clones over v2 and v0 in every combination.
/// With `wait` (past a short refs TTL) the fetch must see the new commit.
async fn no_client_sees_older_refs_than_one_already_saw(refs_ttl: &str, wait: Option<Duration>) {
    let mut f = Fixture::new().await;
    let gw = Gateway::start(&f.remote(refs_ttl)).await;
    let fetcher = f.clone(&gw, "2", &[], "fetcher").await;
    let combos = [("0", "2"), ("2", "2"), ("2", "0"), ("0", "0")];
    for (round, (fetch_proto, clone_proto)) in combos.into_iter().enumerate() {
        // Refs as the clones ask for them, cached before the push.
        f.clone_head(
            &gw,
            clone_proto,
            &["--depth", "1"],
            &format!("warm-{round}"),
        )
        .await;
        let new = f.push_new_commit(&format!("round {round}")).await;
        if let Some(w) = wait {
            tokio::time::sleep(w).await;
        }
        let proto = format!("protocol.version={fetch_proto}");
        f.git(&fetcher, &["-c", &proto, "fetch", "-q", "origin"])
            .await;
        let seen = f.git(&fetcher, &["rev-parse", "origin/main"]).await;
        if wait.is_some() {
            assert_eq!(
                seen, new,
                "round {round}: a v{fetch_proto} fetch after the refs TTL"
            );
        }
        for (i, args) in [&["--depth", "1"][..], &["--filter=blob:none"][..]]
            .into_iter()
            .enumerate()
        {
            let head = f
                .clone_head(&gw, clone_proto, args, &format!("r{round}-{i}"))
                .await;
            assert!(
                f.is_ancestor(&seen, &head).await,
                "round {round}: a v{clone_proto} clone {args:?} got main at {head}, older than {seen}, which a v{fetch_proto} fetch already saw (new commit {new}); upstream requests: {:#?}",
                f.up.counts()
            );
        }
    }
    // Every shape came from the one full listing: the upstream never saw
    // a client's prefixed ls-refs.
    let lsrefs: Vec<String> =
        f.up.seen()
            .iter()
            .filter(|s| s.is_ls_refs())
            .map(|s| String::from_utf8_lossy(&s.body).into_owned())
            .collect();
    assert!(!lsrefs.is_empty());
    assert!(
        lsrefs.iter().all(|b| !b.contains("ref-prefix")),
        "{lsrefs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_never_go_back_with_a_long_refs_ttl() {
    no_client_sees_older_refs_than_one_already_saw("1h", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_never_go_back_with_a_short_refs_ttl() {
    no_client_sees_older_refs_than_one_already_saw("1s", Some(Duration::from_millis(1300))).await;
}
