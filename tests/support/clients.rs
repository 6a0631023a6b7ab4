//! Real clients for the hosted-repository tests (DVC, ccache): finding
//! them and running them without blocking the runtime the gateway runs on;
//! and the one check that a command succeeded, for every tool the tests
//! run.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `dvc` executable: `$ARTGATE_DVC` (set by `./test.sh`), else the venvs
/// `./test.sh` and a development machine create, else `dvc` on `PATH`.
/// Panics when there is none: the DVC test must fail, not skip.
pub fn dvc() -> PathBuf {
    if let Some(p) = std::env::var_os("ARTGATE_DVC") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "ARTGATE_DVC={} does not exist", p.display());
        return p;
    }
    let mut candidates = vec![PathBuf::from("/tmp/dvc-venv/bin/dvc")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/artgate/dvc-venv/bin/dvc"));
    }
    if let Some(p) = candidates.into_iter().find(|p| p.is_file()) {
        return p;
    }
    if Command::new("dvc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("dvc");
    }
    panic!(
        "dvc not found: set ARTGATE_DVC or run ./test.sh (it installs dvc into a venv); this test needs the real client"
    );
}

/// `c` reaching 127.0.0.1 directly: every proxy variable of the machine
/// removed, `NO_PROXY` set to `*`.
pub fn without_proxies(c: &mut Command) -> &mut Command {
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c.env("NO_PROXY", "*").env("no_proxy", "*")
}

/// Panic with `what`, the exit status, stdout and stderr unless `out` is
/// a success.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    /// Exit status was 0.
    pub ok: bool,
    /// stdout and stderr, in that order.
    pub output: String,
}

/// Run `cmd` to completion on a blocking thread.
pub async fn run(mut cmd: Command) -> Ran {
    let shown = format!("{cmd:?}");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    Ran {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Run `cmd` and panic (with its output) unless it succeeds.
pub async fn run_ok(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let r = run(cmd).await;
    assert!(r.ok, "{shown} failed:\n{}", r.output);
    r.output
}

/// How a command run by [`run_limited`] ended.
#[derive(Debug)]
pub struct Limited {
    /// Its exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// True when it was killed at the time limit.
    pub timed_out: bool,
    /// Its stdout and stderr (from the files they were written to).
    pub stdout: String,
    /// See [`Limited::stdout`].
    pub stderr: String,
}

/// Run `cmd` in a process group of its own (so that what it starts, a JVM
/// or a daemon, dies with it), stdout and stderr to `out` and `err`, for at
/// most `limit`; at the limit the whole group is killed. `shown` names it
/// in panics.
pub async fn run_limited(
    mut cmd: Command,
    shown: &str,
    out: &std::path::Path,
    err: &std::path::Path,
    limit: std::time::Duration,
) -> Limited {
    use std::os::unix::process::CommandExt as _;
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(out).expect("create the stdout file"))
        .stderr(std::fs::File::create(err).expect("create the stderr file"))
        .process_group(0);
    let what = shown.to_owned();
    let (code, timed_out) = tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait for a child") {
                return (status.code(), false);
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: killpg(2) on the group our own unreaped child
                // leads (its pid cannot be reused before the wait).
                unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
                let _ = child.wait();
                return (None, true);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    })
    .await
    .expect("join the runner");
    let read = |p: &std::path::Path| {
        String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
    };
    Limited {
        code,
        timed_out,
        stdout: read(out),
        stderr: read(err),
    }
}
