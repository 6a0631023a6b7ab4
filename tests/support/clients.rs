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
