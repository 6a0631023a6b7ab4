//! The plugin authoring kit's commands for the tests that use it: the
//! repository root, the built `artgate`, the environment of an adapter's
//! wasm build, and waiting until a dropped-in adapter is active.

use super::gateway::Gateway;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway/ has a parent")
        .to_path_buf()
}

/// `artgate ARGS`.
pub fn artgate(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artgate"));
    c.args(args)
        .env("ARTGATE_LOG", "warn")
        .env_remove("ARTGATE_CONFIG");
    c
}

/// Make `cmd` (a `cargo build --target wasm32-wasip2` of an adapter
/// project, or a shell that runs one) build offline (the crates an
/// adapter's `Cargo.lock` names are in the registry cache once the
/// built-in adapters are built) and without this test build's host flags
/// and target directory, as `gateway/build.rs` does.
pub fn wasm_build_env(cmd: &mut Command) -> &mut Command {
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_NET_OFFLINE", "true")
}

/// Every file below `dir`, except in directories named `skip`.
pub fn walk(dir: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !skip.iter().any(|s| path.file_name() == Some(s.as_ref())) {
                out.extend(walk(&path, skip));
            }
        } else {
            out.push(path);
        }
    }
    out
}

/// Poll `/plugins` until adapter `name` is active (panics after 3 min: a
/// componentize-py component takes tens of seconds to compile on a slow
/// machine).
pub async fn wait_active(gw: &Gateway, name: &str) -> serde_json::Value {
    wait_active_from(gw, name, "").await
}

/// [`wait_active`] for the version of `name` whose source ends with
/// `source` (a plugin-dir file replacing a built-in of the same name).
pub async fn wait_active_from(gw: &Gateway, name: &str, source: &str) -> serde_json::Value {
    for _ in 0..1800 {
        if let Ok(r) = reqwest::get(gw.url("/plugins")).await
            && let Ok(t) = r.text().await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
            && let Some(p) = v["plugins"].as_array().and_then(|a| {
                a.iter().find(|p| {
                    p["name"] == name
                        && p["status"] == "active"
                        && p["source"].as_str().is_some_and(|s| s.ends_with(source))
                })
            })
        {
            return p.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = reqwest::get(gw.url("/plugins"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    panic!("adapter {name} did not become active; /plugins: {v}");
}

/// `artgate plugin check` of the built-in adapter `name` against the
/// golden cases in `dir` (relative to the repository, e.g.
/// `plugins/go/cases`), asserting that it describes itself as `name` and
/// that all `cases` of them pass; its output.
pub async fn check_builtin_cases(name: &str, dir: &str, cases: usize) -> String {
    let wasm = super::gateway::adapters_dir().join(format!("{name}.wasm"));
    let dir = repo().join(dir);
    let out = super::clients::run_ok(artgate(&[
        "plugin",
        "check",
        wasm.to_str().unwrap(),
        "--cases",
        dir.to_str().unwrap(),
    ]))
    .await;
    assert!(
        out.contains(&format!("describe: {{\"name\":\"{name}\"")),
        "{out}"
    );
    assert!(out.contains(&format!("{cases} passed, 0 failed")), "{out}");
    out
}
