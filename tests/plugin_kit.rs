//! The plugin authoring kit: `artgate plugin new` → `cargo build` →
//! `artgate plugin check` → drop into the plugin dir → served without a
//! restart; `plugin check`'s messages for the usual mistakes; warm
//! instances keep a fault in its request.

use crate::support::bytes;
use crate::support::clients::{run, run_ok};
use crate::support::gateway::{Gateway, adapters_dir, install_adapter};
use crate::support::http::send;
use crate::support::upstream::Upstream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
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

/// `cargo build --release --target wasm32-wasip2` of the project in `dir`,
/// offline (the crates its `Cargo.lock` names are in the registry cache
/// once the built-in adapters are built), into `target`. Host-build flags
/// are removed, as `gateway/build.rs` does.
fn wasm_build(dir: &Path, target: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(dir)
        .args([
            "build",
            "--release",
            "--offline",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target);
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
        c.env_remove(var);
    }
    c
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
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
    for _ in 0..1800 {
        if let Ok(r) = reqwest::get(gw.url("/plugins")).await
            && let Ok(t) = r.text().await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
            && let Some(p) = v["plugins"].as_array().and_then(|a| {
                a.iter()
                    .find(|p| p["name"] == name && p["status"] == "active")
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

/// `plugin new` writes a Rust project that stands alone (its own copy of
/// the SDK and the WIT, a `Cargo.lock`; nothing refers to this
/// repository), builds for wasm32-wasip2 from a temporary directory,
/// passes its own golden cases under `plugin check`, and serves through a
/// running gateway once copied into the plugin dir (no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rust_adapter_builds_passes_check_and_serves_without_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("kit-e2e");
    let out = run_ok(artgate(&[
        "plugin",
        "new",
        "kit-e2e",
        "--dir",
        proj.to_str().unwrap(),
    ]))
    .await;
    assert!(out.contains("cases/01-file.toml"), "{out}");
    assert!(out.contains("artgate-sdk/src/lib.rs"), "{out}");
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "README.md",
        "cases/01-file.toml",
        "artgate-sdk/Cargo.toml",
        "artgate-sdk/wit/adapter.wit",
    ] {
        assert!(proj.join(f).is_file(), "{f} missing");
    }
    let manifest = std::fs::read_to_string(proj.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    assert!(
        manifest.contains("artgate-sdk = { path = \"artgate-sdk\" }"),
        "{manifest}"
    );
    // Nothing in the project points back at this checkout.
    let here = repo().canonicalize().unwrap();
    for entry in walk(&proj) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(here.to_str().unwrap()),
            "{} names the artgate checkout",
            entry.display()
        );
    }
    // A second `new` into the same directory refuses to overwrite it.
    let again = run(artgate(&[
        "plugin",
        "new",
        "kit-e2e",
        "--dir",
        proj.to_str().unwrap(),
    ]))
    .await;
    assert!(
        !again.ok && again.output.contains("not empty"),
        "{}",
        again.output
    );

    // `plugin sdk` puts back a copy an author changed.
    let sdk_lib = proj.join("artgate-sdk/src/lib.rs");
    let original = std::fs::read_to_string(&sdk_lib).unwrap();
    std::fs::write(&sdk_lib, "compile_error!(\"edited\");").unwrap();
    let out = run_ok(artgate(&["plugin", "sdk", "--dir", proj.to_str().unwrap()])).await;
    assert!(out.contains("artgate-sdk/src/lib.rs"), "{out}");
    assert_eq!(std::fs::read_to_string(&sdk_lib).unwrap(), original);

    let target = tmp.path().join("target");
    run_ok(wasm_build(&proj, &target)).await;
    let wasm = target.join("wasm32-wasip2/release/kit_e2e.wasm");
    assert!(wasm.is_file(), "{} was not built", wasm.display());

    let out = run_ok(artgate(&[
        "plugin",
        "check",
        wasm.to_str().unwrap(),
        "--cases",
        proj.join("cases").to_str().unwrap(),
    ]))
    .await;
    assert!(out.contains("describe: {\"name\":\"kit-e2e\""), "{out}");
    assert!(out.contains("PASS 01-file.toml"), "{out}");
    assert!(out.contains("3 passed, 0 failed"), "{out}");

    // Serve through a running gateway: drop the file in, no restart.
    let up = Upstream::start().await;
    let body = bytes(50_000, 7);
    up.put_body("/releases/tool-1.2.3.tar.gz", body.clone());
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"kit\"\npackage = \"kit-e2e\"\nupstream = {:?}\n",
        up.url()
    ))
    .await;
    let url = gw.url("/api/v1/remote/kit/releases/tool-1.2.3.tar.gz");
    let before = reqwest::get(&url).await.unwrap();
    assert_ne!(
        before.status(),
        200,
        "served before the adapter was installed"
    );
    let tmp_copy = gw.plugin_dir().join(".kit-e2e.wasm.tmp");
    std::fs::copy(&wasm, &tmp_copy).unwrap();
    std::fs::rename(&tmp_copy, gw.plugin_dir().join("kit-e2e.wasm")).unwrap();
    let status = wait_active(&gw, "kit-e2e").await;
    assert_eq!(status["package_types"], serde_json::json!(["kit-e2e"]));
    assert_eq!(status["warm_instances"], serde_json::Value::Null);
    for source in ["remote", "cache"] {
        // The body is released before its commit: wait for the commit.
        gw.fills_settled().await;
        let r = reqwest::get(&url).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-artifact-source"], source);
        assert_eq!(r.headers()["content-type"], "application/gzip");
        assert_eq!(r.bytes().await.unwrap().to_vec(), body);
    }
    assert_eq!(up.seen("/releases/tool-1.2.3.tar.gz").gets, 1);
}

/// `plugin check` explains the usual mistakes and reports failing cases
/// with a diff, a trap with its wasm backtrace, and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_explains_mistakes_and_diffs_failing_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let check = |file: &Path| artgate(&["plugin", "check", file.to_str().unwrap()]);

    // A core module (wasm32-wasip1 / wasm32-unknown-unknown output).
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let r = run(check(&core)).await;
    assert!(!r.ok, "{}", r.output);
    assert!(
        r.output.contains("core wasm module, not a component"),
        "{}",
        r.output
    );
    assert!(r.output.contains("wasm32-wasip2"), "{}", r.output);

    // Components for another version and another package (the export
    // names patched in a real adapter, same lengths).
    let generic = std::fs::read(adapters_dir().join("generic.wasm")).unwrap();
    let patched = |from: &[u8], to: &[u8], name: &str| {
        assert_eq!(from.len(), to.len());
        let mut out = Vec::with_capacity(generic.len());
        let mut i = 0;
        while i < generic.len() {
            if generic[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(generic[i]);
                i += 1;
            }
        }
        let p = dir.join(name);
        std::fs::write(&p, out).unwrap();
        p
    };
    let v2 = patched(
        b"artgate:adapter/handler@0.1.0",
        b"artgate:adapter/handler@0.2.0",
        "v2.wasm",
    );
    let r = run(check(&v2)).await;
    assert!(!r.ok);
    assert!(
        r.output.contains(
            "built for artgate:adapter@0.2.0, but this gateway provides artgate:adapter@0.1.0"
        ),
        "{}",
        r.output
    );
    let other = patched(
        b"artgate:adapter/handler@0.1.0",
        b"acmecorp:widget/handler@0.1.0",
        "other.wasm",
    );
    let r = run(check(&other)).await;
    assert!(!r.ok);
    assert!(
        r.output.contains("does not export artgate:adapter/handler@0.1.0 (it exports acmecorp:widget/handler@0.1.0)"),
        "{}",
        r.output
    );

    // Golden cases against the hostile test adapter.
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    let case = |name: &str, mode: &str, tail: &str| {
        std::fs::write(
            cases.join(name),
            format!("[remote]\noptions = {{ mode = {mode:?} }}\n[request]\npath = \"x\"\n{tail}"),
        )
        .unwrap();
    };
    case(
        "01-ok.toml",
        "ok",
        "[expect.respond]\nstatus = 200\nbody = \"hostile ok\"\n",
    );
    case("02-wrong.toml", "ok", "[expect.respond]\nstatus = 201\n");
    case("03-trap.toml", "trap", "[expect.respond]\nstatus = 200\n");
    case(
        "04-bad-status.toml",
        "bad-status",
        "[expect.respond]\nstatus = 200\n",
    );
    std::fs::write(
        cases.join("05-trap-expected.json"),
        r#"{"remote": {"options": {"mode": "trap"}}, "request": {"path": "x"}, "expect-error": "unreachable"}"#,
    )
    .unwrap();
    let hostile = adapters_dir().join("hostile.wasm");
    let r = run(artgate(&[
        "plugin",
        "check",
        hostile.to_str().unwrap(),
        "--cases",
        cases.to_str().unwrap(),
    ]))
    .await;
    let o = &r.output;
    assert!(!r.ok, "{o}");
    assert!(o.contains("PASS 01-ok.toml"), "{o}");
    assert!(o.contains("FAIL 02-wrong.toml"), "{o}");
    assert!(o.contains("respond.status: expected 201, got 200"), "{o}");
    assert!(o.contains("FAIL 03-trap.toml"), "{o}");
    assert!(o.contains("wasm backtrace"), "{o}");
    assert!(o.contains("unreachable"), "{o}");
    assert!(!o.contains("Stack backtrace"), "host stack leaked: {o}");
    assert!(o.contains("FAIL 04-bad-status.toml"), "{o}");
    assert!(o.contains("status 999 is not an HTTP status"), "{o}");
    assert!(o.contains("PASS 05-trap-expected.json"), "{o}");
    assert!(o.contains("2 passed, 3 failed"), "{o}");
}

/// `[plugins] warm_instances`: a reused instance serves calls; a trap, a
/// timeout or a memory-cap hit on it gives only that request a 502, and
/// the next request is served by a fresh instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instances_keep_faults_in_their_request() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    install_adapter(dir.path(), "hostile.wasm");
    let mut remotes = String::new();
    for mode in ["ok", "trap", "loop", "grow"] {
        remotes.push_str(&format!(
            "[[remote]]\nname = {mode:?}\npackage = \"hostile\"\nupstream = \"http://127.0.0.1:9\"\n[remote.options]\nmode = {mode:?}\n\n"
        ));
    }
    let gw = Gateway::start_with_plugins_extra(
        dir,
        "warm_instances = { hostile = 5 }\ncall_timeout = \"100ms\"\nmemory_limit = \"32MiB\"",
        &remotes,
    )
    .await;
    let status = wait_active(&gw, "hostile").await;
    assert_eq!(status["warm_instances"], 5, "{status}");
    let cfg = send("GET", &gw.url("/config"), &[]).await.json();
    assert_eq!(cfg["plugins"]["warm_instances"]["hostile"], 5, "{cfg}");
    let client = reqwest::Client::new();
    let get = |remote: &str| {
        let url = gw.url(&format!("/api/v1/remote/{remote}/x"));
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    for round in 0..3 {
        for _ in 0..7 {
            assert_eq!(
                get("ok").await,
                (200, "hostile ok".to_owned()),
                "round {round}"
            );
        }
        for fault in ["trap", "loop", "grow"] {
            let (status, body) = get(fault).await;
            assert_eq!(status, 502, "{fault}: {body}");
            assert_eq!(
                get("ok").await,
                (200, "hostile ok".to_owned()),
                "after {fault}"
            );
        }
    }
    // Concurrent calls: more than one instance at a time.
    let all = futures_util::future::join_all((0..20).map(|_| get("ok"))).await;
    assert!(
        all.iter().all(|(s, b)| *s == 200 && b == "hostile ok"),
        "{all:?}"
    );
}
