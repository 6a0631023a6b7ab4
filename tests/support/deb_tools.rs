//! Real Debian tooling for the deb adapter's end-to-end tests: a signed
//! archive made in the test ([`Archive`]: a throw-away ed25519 key in its
//! own `GNUPGHOME`, packages built with `dpkg-deb`, indexes and the
//! Release written by `apt-ftparchive`, `InRelease` and `Release.gpg`
//! signed with `gpg`), served by `lighttpd` ([`Lighttpd`], a child in the
//! foreground that dies with the test process), and `apt-get` with a fully
//! private configuration ([`Apt`]: its own state, cache, sources, keyring
//! and logs under a temporary directory; the machine's apt is never read
//! or written). Debian packages: `dpkg-dev`, `apt-utils`, `gnupg`,
//! `lighttpd` (see `./test.sh`).

use super::clients::{Ran, assert_success, run, without_proxies};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The suite every test archive publishes.
pub const SUITE: &str = "stable";

/// The directory of the amd64 package indexes, relative to the archive.
pub const BINARY: &str = "dists/stable/main/binary-amd64";

/// Panic with an install hint unless the tools are on `PATH`.
pub fn require_tools() {
    for tool in [
        "dpkg-deb",
        "apt-ftparchive",
        "gpg",
        "gpgconf",
        "lighttpd",
        "apt-get",
    ] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} is not installed; run `apt-get install --no-install-recommends reprepro apt-utils gnupg lighttpd dpkg-dev` (see test.sh)"
        );
    }
}

/// Run `cmd`, panicking with its output when it fails; its stdout.
fn run_sync(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert_success(&format!("{cmd:?}"), &out);
    out.stdout
}

/// A signed Debian archive in a temporary directory: suite [`SUITE`],
/// component `main`, architecture `amd64`, packages of architecture
/// `all` in `pool/main/`.
pub struct Archive {
    work: tempfile::TempDir,
    /// Whether `apt-ftparchive` writes `by-hash/` copies and
    /// `Acquire-By-Hash: yes`.
    pub by_hash: bool,
    /// The second (since the epoch) of the last publish.
    published: std::cell::Cell<Option<u64>>,
}

impl Archive {
    /// An empty archive with a new signing key (nothing published yet).
    pub fn new(by_hash: bool) -> Archive {
        require_tools();
        let archive = Archive {
            work: tempfile::tempdir().unwrap(),
            by_hash,
            published: std::cell::Cell::new(None),
        };
        let home = archive.gnupg();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        run_sync(archive.gpg().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "artgate test archive <archive@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ]));
        let key = run_sync(archive.gpg().arg("--export"));
        assert!(!key.is_empty(), "gpg exported no key");
        std::fs::write(archive.keyring(), key).unwrap();
        std::fs::create_dir_all(archive.root().join(BINARY)).unwrap();
        archive
    }

    fn gnupg(&self) -> PathBuf {
        self.work.path().join("gnupg")
    }

    /// `gpg` in batch mode on the archive's own home.
    fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir").arg(self.gnupg()).args([
            "--batch",
            "--yes",
            "--quiet",
            "--pinentry-mode",
            "loopback",
        ]);
        cmd
    }

    /// The directory served: `dists/` and `pool/`.
    pub fn root(&self) -> PathBuf {
        self.work.path().join("archive")
    }

    /// The public key, as the binary keyring apt's `signed-by` takes.
    pub fn keyring(&self) -> PathBuf {
        self.work.path().join("archive-keyring.gpg")
    }

    /// The pool path (relative to the archive) of `name` `version`.
    pub fn pool_path(name: &str, version: &str) -> String {
        let first = &name[..1];
        format!("pool/main/{first}/{name}/{name}_{version}_all.deb")
    }

    /// Build package `name` `version` (architecture `all`, one file) with
    /// `dpkg-deb` into the pool; its path. Publish to list it.
    pub fn add(&self, name: &str, version: &str) -> PathBuf {
        let tree = self.work.path().join(format!("build-{name}-{version}"));
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(tree.join(format!("usr/share/{name}"))).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: artgate tests <tests@example.invalid>\nSection: utils\nPriority: optional\nDescription: artgate test package {name}\n A package built by artgate's tests.\n"
            ),
        )
        .unwrap();
        std::fs::write(
            tree.join(format!("usr/share/{name}/payload.txt")),
            format!("{name} {version} {}\n", "payload ".repeat(100)),
        )
        .unwrap();
        let deb = self.root().join(Archive::pool_path(name, version));
        std::fs::create_dir_all(deb.parent().unwrap()).unwrap();
        run_sync(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "-Zgzip", "--build"])
                .arg(&tree)
                .arg(&deb),
        );
        deb
    }

    /// Write the indexes (`Packages`, `.gz`, `.xz`, by `apt-ftparchive
    /// generate`), the Release (with `by-hash/` copies when
    /// [`Archive::by_hash`]) and sign it as `InRelease` and `Release.gpg`.
    pub fn publish(&self) {
        // A new release in the same second as the last one would carry the
        // same `Last-Modified` (HTTP dates have whole seconds), and apt's
        // `If-Modified-Since` would be answered 304: no real archive
        // publishes twice in a second, so neither does this one.
        let now_secs = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        if let Some(last) = self.published.get() {
            while now_secs() <= last {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        let root = self.root();
        let config = self.work.path().join("apt-ftparchive.conf");
        std::fs::write(
            &config,
            format!(
                "Dir {{ ArchiveDir {root:?}; CacheDir {cache:?}; }};\n\
                 Default {{ Packages::Compress \". gzip xz\"; }};\n\
                 TreeDefault {{ Directory \"pool/$(SECTION)\"; }};\n\
                 Tree \"dists/{SUITE}\" {{ Sections \"main\"; Architectures \"amd64\"; }};\n",
                cache = self.work.path(),
            ),
        )
        .unwrap();
        run_sync(
            Command::new("apt-ftparchive")
                .args(["--no-contents", "--quiet", "generate"])
                .arg(&config),
        );
        let suite = root.join("dists").join(SUITE);
        for old in ["InRelease", "Release", "Release.gpg"] {
            let _ = std::fs::remove_file(suite.join(old));
        }
        let release = run_sync(
            Command::new("apt-ftparchive")
                .current_dir(&root)
                .arg("-o")
                .arg(format!("APT::FTPArchive::DoByHash={}", self.by_hash))
                .args([
                    "-o",
                    "APT::FTPArchive::Release::Origin=artgate",
                    "-o",
                    "APT::FTPArchive::Release::Suite=stable",
                    "-o",
                    "APT::FTPArchive::Release::Codename=stable",
                    "-o",
                    "APT::FTPArchive::Release::Components=main",
                    "-o",
                    "APT::FTPArchive::Release::Architectures=amd64",
                    "release",
                ])
                .arg(format!("dists/{SUITE}")),
        );
        std::fs::write(suite.join("Release"), &release).unwrap();
        run_sync(
            self.gpg()
                .arg("--clearsign")
                .arg("-o")
                .arg(suite.join("InRelease"))
                .arg(suite.join("Release")),
        );
        run_sync(
            self.gpg()
                .arg("--detach-sign")
                .arg("--armor")
                .arg("-o")
                .arg(suite.join("Release.gpg"))
                .arg(suite.join("Release")),
        );
        self.published.set(Some(now_secs()));
    }

    /// The archive's file at `rel` (relative to its root).
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Replace the archive's file at `rel` by `body` (a new file, so
    /// `by-hash/` links to the old one keep it).
    pub fn replace(&self, rel: &str, body: &[u8]) {
        let path = self.root().join(rel);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, body).unwrap();
    }

    /// The lower-case hex digest `field` (`SHA256`, `SHA512`) the current
    /// Release lists for `rel` (relative to the suite's directory).
    pub fn listed(&self, field: &str, rel: &str) -> String {
        let release = String::from_utf8(self.read(&format!("dists/{SUITE}/Release"))).unwrap();
        let mut in_field = false;
        for line in release.lines() {
            if !line.starts_with(' ') {
                in_field = line.trim_end() == format!("{field}:");
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            if in_field && parts.len() == 3 && parts[2] == rel {
                return parts[0].to_owned();
            }
        }
        panic!("the Release lists no {field} of {rel}:\n{release}");
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        // The agent gpg started for this home (and only that one).
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.gnupg())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `lighttpd -D` serving a directory on 127.0.0.1 with an access log;
/// killed on drop, and by the kernel when the test process dies.
pub struct Lighttpd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
}

impl Lighttpd {
    /// Serve `root` on a free port.
    pub async fn start(root: &Path) -> Lighttpd {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let config = dir.path().join("lighttpd.conf");
        std::fs::write(
            &config,
            format!(
                "server.document-root = {root:?}\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
                 server.errorlog = {errors:?}\nserver.modules = ( \"mod_accesslog\" )\n\
                 accesslog.filename = {access:?}\nserver.stat-cache-engine = \"disable\"\n\
                 mimetype.assign = ( \"\" => \"application/octet-stream\" )\n",
                errors = dir.path().join("error.log"),
                access = dir.path().join("access.log"),
            ),
        )
        .unwrap();
        let mut cmd = Command::new("lighttpd");
        cmd.arg("-D")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        super::dies_with_test(&mut cmd);
        let child = cmd.spawn().expect("start lighttpd");
        let server = Lighttpd {
            child: Some(child),
            dir,
            port,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "lighttpd did not start:\n{}",
            std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default()
        );
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request it served so far, as `(path, status)`, in order.
    pub fn requests(&self) -> Vec<(String, u16)> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let (_, rest) = l.split_once('"')?;
                let (line, rest) = rest.split_once('"')?;
                let path = line.split_whitespace().nth(1)?;
                let status = rest.split_whitespace().next()?.parse().ok()?;
                Some((path.to_owned(), status))
            })
            .collect()
    }

    /// How many requests for exactly `path` (e.g. `/dists/stable/InRelease`)
    /// it served.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|(p, _)| p == path).count()
    }

    /// Stop it (also on drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `apt-get` and `apt-cache` with a private configuration (`APT_CONFIG`):
/// state, cache, sources, keyring parts, preferences and logs in a
/// temporary directory, no locking, downloads as the current user, one
/// source.
pub struct Apt {
    dir: tempfile::TempDir,
}

impl Apt {
    /// An apt with empty lists whose one source is `deb [signed-by=KEYRING]
    /// URL stable main`.
    pub fn new(url: &str, keyring: &Path) -> Apt {
        let apt = Apt {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = apt.dir.path();
        for sub in [
            "state/lists/partial",
            "cache/archives/partial",
            "etc/sources.list.d",
            "etc/preferences.d",
            "etc/apt.conf.d",
            "etc/trusted.gpg.d",
            "log",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("state/status"), "").unwrap();
        std::fs::write(
            d.join("etc/sources.list"),
            format!("deb [signed-by={}] {url} {SUITE} main\n", keyring.display()),
        )
        .unwrap();
        let p = |sub: &str| d.join(sub).display().to_string();
        std::fs::write(
            d.join("apt.conf"),
            format!(
                "Dir \"/\";\n\
                 Dir::State \"{state}\";\n\
                 Dir::State::status \"{status}\";\n\
                 Dir::Cache \"{cache}\";\n\
                 Dir::Etc \"{etc}\";\n\
                 Dir::Etc::main \"{etc}/apt.conf\";\n\
                 Dir::Etc::parts \"{etc}/apt.conf.d\";\n\
                 Dir::Etc::sourcelist \"{etc}/sources.list\";\n\
                 Dir::Etc::sourceparts \"{etc}/sources.list.d\";\n\
                 Dir::Etc::trusted \"{etc}/trusted.gpg\";\n\
                 Dir::Etc::trustedparts \"{etc}/trusted.gpg.d\";\n\
                 Dir::Etc::preferences \"{etc}/preferences\";\n\
                 Dir::Etc::preferencesparts \"{etc}/preferences.d\";\n\
                 Dir::Log \"{log}\";\n\
                 Debug::NoLocking \"true\";\n\
                 APT::Sandbox::User \"root\";\n\
                 APT::Architecture \"amd64\";\n\
                 APT::Architectures {{ \"amd64\"; }};\n\
                 Acquire::Languages \"none\";\n\
                 Acquire::Retries \"0\";\n\
                 Acquire::http::Timeout \"10\";\n\
                 Acquire::http::Proxy \"DIRECT\";\n",
                state = p("state"),
                status = p("state/status"),
                cache = p("cache"),
                etc = p("etc"),
                log = p("log"),
            ),
        )
        .unwrap();
        apt
    }

    /// `tool ARGS` (`apt-get`, `apt-cache`) in `cwd` with this
    /// configuration, without blocking the runtime.
    pub async fn run(&self, tool: &str, args: &[&str], cwd: &Path) -> Ran {
        let mut cmd = Command::new(tool);
        cmd.args(args)
            .current_dir(cwd)
            .env("APT_CONFIG", self.dir.path().join("apt.conf"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        without_proxies(&mut cmd);
        run(cmd).await
    }

    /// `apt-get update`.
    pub async fn update(&self) -> Ran {
        self.run("apt-get", &["update"], self.dir.path()).await
    }

    /// `apt-get download PACKAGE` into `dest`.
    pub async fn download(&self, dest: &Path, package: &str) -> Ran {
        self.run("apt-get", &["download", package], dest).await
    }

    /// The names of the packages apt knows (`apt-cache pkgnames`), sorted.
    pub async fn names(&self) -> Vec<String> {
        let ran = self
            .run("apt-cache", &["pkgnames", "artgate-"], self.dir.path())
            .await;
        assert!(ran.ok, "apt-cache pkgnames: {}", ran.output);
        let mut names: Vec<String> = ran
            .output
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("artgate-"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}
