//! Bazel (Debian's `bazel-bootstrap`, 4.2.3) as a real REAPI client: a
//! workspace of two genrules written into a temporary directory, and
//! `bazel --batch build` run as a child process with a timeout,
//! hermetically (HOME, TMPDIR, the output user root and every output base
//! inside the temporary directory; no home rc).
//!
//! The workspace builds offline: `//:data` (`data.bin`) is the checked-in
//! `input.bin` twice, and `//:hello` (`hello.sh`, an executable genrule)
//! is a shell script that prints the sha256 of `data.bin`, so it depends on
//! `//:data`. Neither needs anything from the network: genrules need only
//! `@bazel_tools` and the local shell toolchain, which Debian's package
//! ships (`/usr/share/bazel/embedded_tools`).
//!
//! Debian's Bazel works only with its system rc (`/etc/bazel/bazelrc`):
//! that sets `--install_base=/usr/share/bazel` (the client carries no
//! embedded server jar) and `--host_javabase=@local_jdk//:jdk`. So the
//! harness keeps the system rc, drops the home rc and writes no workspace
//! rc. It adds `--nosandbox_debug` (the system rc turns sandbox debugging
//! on, which floods stderr) and `--spawn_strategy=local`, so the tests do
//! not depend on the linux-sandbox's namespaces, which a CI container may
//! not allow; the remote cache wraps the local strategy all the same.
//!
//! `--batch` rather than a server: a fresh output base needs a new server
//! anyway, one batch build takes about 2-3 s here (a server start, the
//! build and `bazel shutdown` take about 6 s), and no server can outlive a
//! test. Each run gets `--experimental_remote_grpc_log` (Bazel 4's name for
//! `--remote_grpc_log`), which [`BazelRun::grpc_calls`] reads.

use super::{KIB, bytes, sha256_hex};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long one `bazel` command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

/// The targets every build builds: both genrules. (Not `//...`: that
/// would descend into the `bazel-*` symlinks a build in an earlier output
/// base left in the workspace.)
pub const TARGETS: [&str; 2] = ["//:data", "//:hello"];

/// The output of `//:data` (below `bazel-bin`).
pub const DATA: &str = "data.bin";

/// The output of `//:hello`, an executable shell script (below
/// `bazel-bin`).
pub const SCRIPT: &str = "hello.sh";

/// How many actions (spawns) a full build of [`TARGETS`] runs or takes
/// from a cache: one per genrule.
pub const ACTIONS: u32 = 2;

/// The workspace's `BUILD` file.
const BUILD: &str = r#"genrule(
    name = "data",
    srcs = ["input.bin"],
    outs = ["data.bin"],
    cmd = "cat $< $< > $@",
)

genrule(
    name = "hello",
    srcs = [":data"],
    outs = ["hello.sh"],
    cmd = "printf '#!/bin/sh\\necho data sha256 %s\\n' $$(sha256sum $< | cut -d' ' -f1) > $@ && chmod 0755 $@",
    executable = True,
)
"#;

/// The `bazel` executable on `PATH` (Debian's wrapper script, which runs
/// `bazel-4`). Panics when there is none: the Bazel tests must fail, not
/// skip.
pub fn bazel_bin() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("bazel"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "bazel not found on PATH: install Debian's bazel-bootstrap (./test.sh does); these tests need the real client"
            )
        })
}

/// One gRPC call from Bazel's `--experimental_remote_grpc_log`.
#[derive(Clone, Debug, PartialEq)]
pub struct GrpcCall {
    /// The full method name, e.g.
    /// `build.bazel.remote.execution.v2.ActionCache/GetActionResult`.
    pub method: String,
    /// The gRPC status code it ended with (0: OK, 5: NOT_FOUND, 7:
    /// PERMISSION_DENIED, 16: UNAUTHENTICATED, ...).
    pub code: i32,
    /// The status message.
    pub message: String,
}

impl GrpcCall {
    /// True when the method name ends with `suffix` (e.g.
    /// `ActionCache/UpdateActionResult`).
    pub fn is(&self, suffix: &str) -> bool {
        self.method.ends_with(suffix)
    }
}

/// The parts of Bazel 4's `remote_logging.LogEntry` the tests read (the
/// request metadata, call details and timestamps are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct LogEntry {
    #[prost(message, optional, tag = "2")]
    status: Option<RpcStatus>,
    #[prost(string, tag = "3")]
    method_name: String,
}

/// `google.rpc.Status` without its details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The calls in a gRPC log file (length-delimited `LogEntry` messages);
/// none when the file does not exist (no gRPC cache was used). Panics
/// when it cannot be decoded.
fn read_grpc_log(path: &Path) -> Vec<GrpcCall> {
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let mut buf = &data[..];
    let mut calls = Vec::new();
    while !buf.is_empty() {
        let entry =
            <LogEntry as prost::Message>::decode_length_delimited(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "entry {} of the gRPC log {} does not decode: {e}",
                    calls.len(),
                    path.display()
                )
            });
        let status = entry.status.unwrap_or_default();
        calls.push(GrpcCall {
            method: entry.method_name,
            code: status.code,
            message: status.message,
        });
    }
    calls
}

/// Bazel's summary of the spawns of a build: `INFO: 3 processes: 2 remote
/// cache hit, 1 internal.`
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Processes {
    /// The number before `processes`.
    pub total: u32,
    /// How many of each kind (`remote cache hit`, `local`, `internal`,
    /// `linux-sandbox`, ...).
    pub kinds: BTreeMap<String, u32>,
}

impl Processes {
    /// Parse the summary line out of Bazel's output; `None` when there is
    /// none or it is not of that form.
    pub fn parse(output: &str) -> Option<Processes> {
        let line = output.lines().rev().find_map(|l| {
            let l = l.trim().strip_prefix("INFO: ")?;
            let (total, rest) = l.split_once(' ')?;
            let rest = rest
                .strip_prefix("processes: ")
                .or_else(|| rest.strip_prefix("process: "))?;
            Some((total.parse::<u32>().ok()?, rest))
        })?;
        let (total, rest) = line;
        let mut kinds = BTreeMap::new();
        for part in rest.trim_end_matches('.').split(", ") {
            let (n, kind) = part.split_once(' ')?;
            *kinds.entry(kind.to_owned()).or_insert(0) += n.parse::<u32>().ok()?;
        }
        Some(Processes { total, kinds })
    }

    /// How many spawns were of `kind`.
    pub fn count(&self, kind: &str) -> u32 {
        self.kinds.get(kind).copied().unwrap_or(0)
    }

    /// How many spawns were remote cache hits.
    pub fn remote_cache_hits(&self) -> u32 {
        self.count("remote cache hit")
    }

    /// How many spawns ran on this machine (any strategy: not a cache hit
    /// and not one of Bazel's internal actions).
    pub fn executed(&self) -> u32 {
        self.kinds
            .iter()
            .filter(|(k, _)| !k.ends_with("cache hit") && k.as_str() != "internal")
            .map(|(_, n)| n)
            .sum()
    }
}

/// One file below `bazel-bin`.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputFile {
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its permission bits (`mode & 0o7777`).
    pub mode: u32,
}

/// What one `bazel` command did.
#[derive(Debug)]
pub struct BazelRun {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (`None`: killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// True when it was killed after [`COMMAND_TIMEOUT`].
    pub timed_out: bool,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr (Bazel's messages go here).
    pub stderr: String,
    /// The output base it ran in.
    pub output_base: PathBuf,
    /// Its `--experimental_remote_grpc_log` file.
    pub grpc_log: PathBuf,
    /// How long it took.
    pub elapsed: Duration,
}

impl BazelRun {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout then stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Every gRPC call the run made, in the order Bazel logged them (when
    /// each ended).
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        read_grpc_log(&self.grpc_log)
    }

    /// How many gRPC calls of a method ending with `suffix` ended with
    /// status `code`.
    pub fn grpc_count(&self, suffix: &str, code: i32) -> usize {
        self.grpc_calls()
            .iter()
            .filter(|c| c.is(suffix) && c.code == code)
            .count()
    }

    /// The gRPC calls, one a line, for messages.
    pub fn grpc_summary(&self) -> String {
        self.grpc_calls()
            .iter()
            .map(|c| format!("  {} -> {} {}", c.method, c.code, c.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything known about the run, for a failure message.
    pub fn report(&self) -> String {
        let how = match (self.timed_out, self.code) {
            (true, _) => format!("killed after {COMMAND_TIMEOUT:?}"),
            (false, Some(c)) => format!("exit code {c}"),
            (false, None) => "killed by a signal".to_owned(),
        };
        format!(
            "{} ({how}, {:.1?}, output base {})\n--- stdout:\n{}\n--- stderr:\n{}\n--- gRPC calls:\n{}",
            self.command,
            self.elapsed,
            self.output_base.display(),
            self.stdout,
            self.stderr,
            self.grpc_summary()
        )
    }

    /// Panic with [`BazelRun::report`] unless it exited 0; `self`
    /// otherwise.
    #[track_caller]
    pub fn assert_ok(self, what: &str) -> BazelRun {
        assert!(self.ok(), "{what} failed: {}", self.report());
        self
    }

    /// Panic with [`BazelRun::report`] unless it failed and said `text`.
    #[track_caller]
    pub fn assert_fails_saying(&self, what: &str, text: &str) {
        assert!(
            !self.ok() && !self.timed_out,
            "{what} should have failed: {}",
            self.report()
        );
        self.assert_says(text);
    }

    /// Panic with [`BazelRun::report`] unless the output contains `text`.
    #[track_caller]
    pub fn assert_says(&self, text: &str) {
        assert!(
            self.output().contains(text),
            "expected {text:?} in the output of {}",
            self.report()
        );
    }

    /// Bazel's `WARNING:` lines (a remote cache read or write that failed
    /// is only a warning: the build goes on locally).
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("WARNING:"))
            .collect()
    }

    /// Panic with [`BazelRun::report`] when Bazel printed a warning.
    #[track_caller]
    pub fn assert_no_warnings(&self, what: &str) {
        let w = self.warnings();
        assert!(
            w.is_empty(),
            "{what}: bazel warned:\n{}\n{}",
            w.join("\n"),
            self.report()
        );
    }

    /// The spawn summary; panics with [`BazelRun::report`] when the output
    /// has none.
    #[track_caller]
    pub fn processes(&self) -> Processes {
        Processes::parse(&self.stderr).unwrap_or_else(|| {
            panic!(
                "no \"INFO: N processes: ...\" line in the output of {}",
                self.report()
            )
        })
    }

    /// Panic with [`BazelRun::report`] unless all [`ACTIONS`] spawns were
    /// remote cache hits and none ran here.
    #[track_caller]
    pub fn assert_all_remote_hits(&self, what: &str) {
        let p = self.processes();
        assert!(
            p.remote_cache_hits() == ACTIONS && p.executed() == 0,
            "{what}: expected {ACTIONS} remote cache hits and nothing executed, got {p:?}: {}",
            self.report()
        );
    }

    /// Panic with [`BazelRun::report`] unless all [`ACTIONS`] spawns ran
    /// here and none was a cache hit.
    #[track_caller]
    pub fn assert_all_executed(&self, what: &str) {
        let p = self.processes();
        assert!(
            p.executed() == ACTIONS && p.remote_cache_hits() == 0,
            "{what}: expected {ACTIONS} actions executed and no remote cache hit, got {p:?}: {}",
            self.report()
        );
    }

    /// Panic with [`BazelRun::report`] when a gRPC call ended with an
    /// error other than NOT_FOUND from `GetActionResult` (a cache miss).
    #[track_caller]
    pub fn assert_grpc_clean(&self, what: &str) {
        let bad: Vec<GrpcCall> = self
            .grpc_calls()
            .into_iter()
            .filter(|c| c.code != 0 && !(c.code == 5 && c.is("ActionCache/GetActionResult")))
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: gRPC calls failed: {bad:?}\n{}",
            self.report()
        );
    }
}

/// A Bazel workspace (see the module doc) in a temporary directory, with
/// its own output user root and output bases. Layout: `ws/` (the
/// workspace), `root/` (`--output_user_root`), `out-N/` (the output base
/// of the N-th [`Bazel::fresh_output_base`]), `home/` (HOME), `tmp/`
/// (TMPDIR), `runs/` (each command's stdout, stderr and gRPC log).
pub struct Bazel {
    dir: tempfile::TempDir,
    bazel: PathBuf,
    base: u32,
    runs: std::sync::atomic::AtomicU32,
}

impl Bazel {
    /// A new workspace on an empty output base. Panics when `bazel` is not
    /// installed (see [`bazel_bin`]).
    pub fn new() -> Bazel {
        let bazel = bazel_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let b = Bazel {
            dir,
            bazel,
            base: 0,
            runs: std::sync::atomic::AtomicU32::new(0),
        };
        for d in ["ws", "root", "home", "tmp", "runs"] {
            std::fs::create_dir_all(b.path().join(d)).expect("create the bazel dirs");
        }
        let ws = b.workspace();
        let write = |name: &str, data: &[u8]| {
            std::fs::write(ws.join(name), data).unwrap_or_else(|e| panic!("write {name}: {e}"))
        };
        write("WORKSPACE", b"");
        write("BUILD", BUILD.as_bytes());
        write("input.bin", &Bazel::input());
        b
    }

    /// The temporary directory everything is in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The workspace directory.
    pub fn workspace(&self) -> PathBuf {
        self.path().join("ws")
    }

    /// The output base in use.
    pub fn output_base(&self) -> PathBuf {
        self.path().join(format!("out-{}", self.base))
    }

    /// Switch to a new, empty output base (no local action cache, no
    /// outputs): the next build must execute or fetch every action.
    pub fn fresh_output_base(&mut self) {
        self.base += 1;
    }

    /// The checked-in `input.bin`: 200 KiB, seeded.
    pub fn input() -> Vec<u8> {
        bytes(200 * KIB, 0xba2e1)
    }

    /// What `bazel-bin` must hold after a build of [`TARGETS`]: [`DATA`]
    /// (the input twice) and [`SCRIPT`] (printing the data's sha256).
    pub fn expected_outputs() -> BTreeMap<String, Vec<u8>> {
        let input = Bazel::input();
        let data = [&input[..], &input[..]].concat();
        let script = format!("#!/bin/sh\necho data sha256 {}\n", sha256_hex(&data));
        BTreeMap::from([
            (DATA.to_owned(), data),
            (SCRIPT.to_owned(), script.into_bytes()),
        ])
    }

    /// What [`SCRIPT`] prints.
    pub fn expected_script_output() -> String {
        let data = &Bazel::expected_outputs()[DATA];
        format!("data sha256 {}\n", sha256_hex(data))
    }

    /// Run `bazel STARTUP-OPTIONS COMMAND ARGS` in the workspace on the
    /// current output base (not asserted). A `build` gets the harness's
    /// flags (see the module doc) before `args`.
    pub async fn run(&self, command: &str, args: &[&str]) -> BazelRun {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let runs = self.path().join("runs");
        let (out_path, err_path) = (
            runs.join(format!("{n}.stdout")),
            runs.join(format!("{n}.stderr")),
        );
        let grpc_log = runs.join(format!("{n}.grpc.log"));
        let output_base = self.output_base();
        let mut cmd = Command::new(&self.bazel);
        cmd.arg("--batch")
            .arg("--nohome_rc")
            .arg(format!(
                "--output_user_root={}",
                self.path().join("root").display()
            ))
            .arg(format!("--output_base={}", output_base.display()))
            .arg(command);
        if command == "build" {
            cmd.args([
                "--color=no",
                "--curses=no",
                "--nosandbox_debug",
                "--spawn_strategy=local",
            ])
            .arg(format!(
                "--experimental_remote_grpc_log={}",
                grpc_log.display()
            ));
        }
        cmd.args(args)
            .current_dir(self.workspace())
            .env("HOME", self.path().join("home"))
            .env("TMPDIR", self.path().join("tmp"))
            // The client would take it as the output user root.
            .env_remove("TEST_TMPDIR")
            // The wrapper script picks the Bazel version from these.
            .env_remove("USE_BAZEL_VERSION")
            .env_remove("grpc_proxy")
            .env_remove("GRPC_PROXY");
        super::clients::without_proxies(&mut cmd);
        let shown = format!("bazel {command} {}", args.join(" "));
        let start = Instant::now();
        let ran =
            super::clients::run_limited(cmd, &shown, &out_path, &err_path, COMMAND_TIMEOUT).await;
        BazelRun {
            command: shown,
            code: ran.code,
            timed_out: ran.timed_out,
            stdout: ran.stdout,
            stderr: ran.stderr,
            output_base,
            grpc_log,
            elapsed: start.elapsed(),
        }
    }

    /// `bazel build FLAGS //:data //:hello` (not asserted: for builds that must
    /// fail).
    pub async fn try_build(&self, flags: &[&str]) -> BazelRun {
        let mut args = flags.to_vec();
        args.extend(TARGETS);
        self.run("build", &args).await
    }

    /// `bazel build FLAGS //:data //:hello`, asserted to succeed.
    pub async fn build(&self, flags: &[&str]) -> BazelRun {
        self.try_build(flags)
            .await
            .assert_ok(&format!("bazel build {}", flags.join(" ")))
    }

    /// The directory `bazel-bin` points to, asserted to be in the current
    /// output base (so it holds the last build's outputs).
    pub fn bazel_bin(&self) -> PathBuf {
        let link = self.workspace().join("bazel-bin");
        let bin = std::fs::canonicalize(&link)
            .unwrap_or_else(|e| panic!("resolve {}: {e}", link.display()));
        let base = std::fs::canonicalize(self.output_base()).expect("resolve the output base");
        assert!(
            bin.starts_with(&base),
            "bazel-bin points to {}, outside the output base in use {}",
            bin.display(),
            base.display()
        );
        bin
    }

    /// Every file below `bazel-bin` (by path relative to it) with its bytes
    /// and permission bits.
    pub fn outputs(&self) -> BTreeMap<String, OutputFile> {
        let root = self.bazel_bin();
        let mut out = BTreeMap::new();
        let mut todo = vec![root.clone()];
        while let Some(dir) = todo.pop() {
            let rd =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
            for e in rd {
                let path = e.expect("a directory entry").path();
                let meta = std::fs::symlink_metadata(&path).expect("lstat");
                if meta.is_dir() {
                    todo.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&root).expect("below bazel-bin");
                let data =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    OutputFile {
                        data,
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            }
        }
        out
    }

    /// Run [`SCRIPT`] from `bazel-bin` and return what it printed; panics
    /// unless it exits 0.
    pub async fn run_script(&self) -> String {
        let script = self.bazel_bin().join(SCRIPT);
        let mut cmd = Command::new(&script);
        cmd.current_dir(self.path().join("tmp"));
        super::clients::run_ok(cmd).await
    }
}

/// Panic unless `outputs` are exactly [`Bazel::expected_outputs`] and the
/// script is executable by everyone.
#[track_caller]
pub fn assert_expected_outputs(what: &str, outputs: &BTreeMap<String, OutputFile>) {
    let expected = Bazel::expected_outputs();
    let show = |m: &BTreeMap<String, OutputFile>| {
        m.iter()
            .map(|(p, f)| {
                format!(
                    "  {p} ({} bytes, sha256 {}, mode {:o})",
                    f.data.len(),
                    sha256_hex(&f.data),
                    f.mode
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let same = outputs.len() == expected.len()
        && expected
            .iter()
            .all(|(p, d)| outputs.get(p).is_some_and(|f| &f.data == d));
    assert!(
        same,
        "{what}: bazel-bin does not hold the expected files; it has:\n{}\nexpected:\n{}",
        show(outputs),
        expected
            .iter()
            .map(|(p, d)| format!("  {p} ({} bytes, sha256 {})", d.len(), sha256_hex(d)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mode = outputs[SCRIPT].mode;
    assert_eq!(
        mode & 0o111,
        0o111,
        "{what}: {SCRIPT} is not executable (mode {mode:o})"
    );
}
