//! A new package format with zero core changes: the PyPI adapter, written
//! in Python (`plugins/python/pypi/app.py`), built here with componentize-py
//! into the gateway's plugin dir, hot-loaded, and used by real `pip`
//! against a local `pypiserver` serving wheels this test writes; then the
//! upstream is stopped and `pip install` works again from the cache.
//!
//! The tools come from a Python venv (`support::pypi::py_venv`). A missing
//! tool fails the test.

use crate::support::clients::run_ok;
use crate::support::gateway::Gateway;
use crate::support::kit::{artgate, repo, wait_active_from};
use crate::support::pypi::{pip, pip_install, py_venv, serve_two_wheels};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// Build the pypi adapter component with componentize-py into `out`.
pub async fn build_pypi_adapter(venv: &Path, out: &Path) {
    let mut c = Command::new(venv.join("bin/componentize-py"));
    c.current_dir(repo().join("plugins/python/pypi"))
        .arg("-d")
        .arg(repo().join("wit"))
        .args(["-w", "adapter", "componentize", "app", "-o"])
        .arg(out);
    run_ok(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypi_adapter_in_python_serves_pip_and_keeps_serving_without_upstream() {
    let venv = py_venv();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // Two wheels; a depends on b, so pip resolves through the index twice.
    let (sha_a, sha_b, mut upstream) =
        serve_two_wheels(&venv, w, "artgate_demo_a", "artgate_demo_b").await;

    // The gateway, with warm instances for the Python adapter; the adapter
    // is built into a scratch dir and dropped into the plugin dir while the
    // gateway runs.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = Gateway::start_with_plugins_extra(
        dir,
        "warm_instances = { pypi = 64 }",
        &format!(
            "[[remote]]\nname = \"pypi\"\npackage = \"pypi\"\nupstream = {:?}\nmutable_ttl = \"10m\"\n",
            upstream.url
        ),
    )
    .await;
    let built = w.join("pypi.wasm");
    build_pypi_adapter(&venv, &built).await;
    std::fs::copy(&built, gw.plugin_dir().join(".pypi.wasm.tmp")).unwrap();
    std::fs::rename(
        gw.plugin_dir().join(".pypi.wasm.tmp"),
        gw.plugin_dir().join("pypi.wasm"),
    )
    .unwrap();
    // It replaces the built-in `pypi` of the same name.
    let status = wait_active_from(&gw, "pypi", "pypi.wasm").await;
    assert!(
        status["source"].as_str().unwrap().ends_with("pypi.wasm"),
        "{status}"
    );
    let index = gw.url("/api/v1/remote/pypi/simple/");

    // pip download: both wheels, byte for byte.
    let dl = w.join("dl");
    run_ok(pip(
        &venv,
        &[
            "download",
            "--no-cache-dir",
            "--index-url",
            &index,
            "-d",
            dl.to_str().unwrap(),
            "artgate-demo-a",
        ],
    ))
    .await;
    for (file, sha) in [
        ("artgate_demo_a-1.0-py3-none-any.whl", &sha_a),
        ("artgate_demo_b-2.0-py3-none-any.whl", &sha_b),
    ] {
        let got = std::fs::read(dl.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(&hex::encode(Sha256::digest(&got)), sha, "{file}");
    }

    // The project page the gateway serves: links point back through it,
    // with the upstream's sha256 kept; it is cached (once its commit,
    // which comes after its body was released, has ended).
    gw.fills_settled().await;
    let r = reqwest::get(gw.url("/api/v1/remote/pypi/simple/artgate-demo-a/"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-source"], "cache");
    let page = r.text().await.unwrap();
    let link = format!(
        "href=\"../../files/artgate-demo-a/r/packages/artgate_demo_a-1.0-py3-none-any.whl#sha256={sha_a}\""
    );
    assert!(page.contains(&link), "{page}");
    assert!(!page.contains(&upstream.url), "upstream URL leaked: {page}");
    let r = reqwest::get(gw.url(
        "/api/v1/remote/pypi/files/artgate-demo-a/r/packages/artgate_demo_a-1.0-py3-none-any.whl",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-artifact-source"], "cache");

    // pip install, then again with the upstream gone.
    for (round, target) in ["t1", "t2"].iter().enumerate() {
        if round == 1 {
            upstream.stop();
            assert!(
                reqwest::get(format!("{}/simple/", upstream.url))
                    .await
                    .is_err()
            );
        }
        let t = w.join(target);
        run_ok(pip_install(&venv, &index, &t, &["artgate-demo-a"])).await;
        for m in ["artgate_demo_a/__init__.py", "artgate_demo_b/__init__.py"] {
            assert!(t.join(m).is_file(), "round {round}: {m} not installed");
        }
    }
}

/// `plugin new --lang python` writes a project that componentize-py builds
/// and that passes its own golden cases under `plugin check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_python_adapter_builds_and_passes_check() {
    let venv = py_venv();
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("py-kit");
    run_ok(artgate(&[
        "plugin",
        "new",
        "py-kit",
        "--lang",
        "python",
        "--dir",
        proj.to_str().unwrap(),
    ]))
    .await;
    for f in [
        "app.py",
        "README.md",
        "wit/adapter.wit",
        "cases/01-file.toml",
    ] {
        assert!(proj.join(f).is_file(), "{f} missing");
    }
    let readme = std::fs::read_to_string(proj.join("README.md")).unwrap();
    assert!(
        readme.contains("componentize-py -d wit -w adapter componentize app -o py-kit.wasm"),
        "{readme}"
    );
    let mut c = Command::new(venv.join("bin/componentize-py"));
    c.current_dir(&proj).args([
        "-d",
        "wit",
        "-w",
        "adapter",
        "componentize",
        "app",
        "-o",
        "py-kit.wasm",
    ]);
    run_ok(c).await;
    let out = run_ok(artgate(&[
        "plugin",
        "check",
        proj.join("py-kit.wasm").to_str().unwrap(),
        "--cases",
        proj.join("cases").to_str().unwrap(),
    ]))
    .await;
    assert!(out.contains("describe: {\"name\":\"py-kit\""), "{out}");
    assert!(out.contains("3 passed, 0 failed"), "{out}");
}
