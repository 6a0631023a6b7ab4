//! A new package format with zero core changes: the PyPI adapter, written
//! in Python (`plugins/python/pypi/app.py`), built here with componentize-py
//! into the gateway's plugin dir, hot-loaded, and used by real `pip`
//! against a local `pypiserver` serving wheels this test writes; then the
//! upstream is stopped and `pip install` works again from the cache.
//!
//! The tools come from a Python venv: `$ARTGATE_PY_VENV` (`.ci/run` creates
//! `target/artgate-py-venv` with componentize-py 0.25 and pypiserver), else
//! that directory, else `/tmp/cpy-venv`. A missing tool fails the test.

use crate::support::clients::run_ok;
use crate::support::gateway::Gateway;
use crate::support::kit::{artgate, repo, wait_active};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The venv with componentize-py, pypi-server and pip. Panics (the test
/// fails, it does not skip) when none has them.
fn py_venv() -> PathBuf {
    let has_tools = |v: &Path| {
        ["componentize-py", "pypi-server", "pip", "python"]
            .iter()
            .all(|t| v.join("bin").join(t).is_file())
    };
    if let Some(v) = std::env::var_os("ARTGATE_PY_VENV") {
        let v = PathBuf::from(v);
        assert!(
            has_tools(&v),
            "ARTGATE_PY_VENV={} lacks componentize-py, pypi-server or pip (run .ci/run)",
            v.display()
        );
        return v;
    }
    for v in [
        repo().join("target/artgate-py-venv"),
        PathBuf::from("/tmp/cpy-venv"),
    ] {
        if has_tools(&v) {
            return v;
        }
    }
    panic!(
        "no Python venv with componentize-py 0.25 and pypiserver: set ARTGATE_PY_VENV or run .ci/run (it creates target/artgate-py-venv)"
    );
}

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

/// Write a minimal pure-Python wheel (METADATA, WHEEL, RECORD, a module)
/// by hand with the venv's Python; returns its sha256.
async fn write_wheel(
    python: &Path,
    dir: &Path,
    name: &str,
    version: &str,
    requires: &[&str],
) -> String {
    let file = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let script = r#"
import base64, hashlib, sys, zipfile
name, version, out = sys.argv[1], sys.argv[2], sys.argv[3]
requires = sys.argv[4:]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f"VALUE = {name!r}\n".encode(),
    f"{dist}/METADATA": (
        f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode(),
    f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: artgate-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for n, d in files.items():
    h = base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode()
    record += f"{n},sha256={h},{len(d)}\n"
files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
with zipfile.ZipFile(out, "w") as z:
    for n, d in files.items():
        z.writestr(zipfile.ZipInfo(n, date_time=(2024, 1, 1, 0, 0, 0)), d)
"#;
    let mut c = Command::new(python);
    c.arg("-c")
        .arg(script)
        .arg(name)
        .arg(version)
        .arg(&file)
        .args(requires);
    run_ok(c).await;
    hex::encode(Sha256::digest(std::fs::read(&file).unwrap()))
}

/// pypiserver on 127.0.0.1; killed on drop.
struct PypiServer {
    url: String,
    child: Child,
}

impl PypiServer {
    async fn start(venv: &Path, packages: &Path, log: &Path) -> PypiServer {
        let port = crate::support::free_port();
        let child = Command::new(venv.join("bin/pypi-server"))
            .args(["run", "-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-a", ".", "-P", ".", "--disable-fallback"])
            .arg(packages)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start pypi-server");
        let server = PypiServer {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("{}/simple/", server.url)).await
                && r.status() == 200
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "pypi-server did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `pip ARGS` from the venv, isolated from the user's pip configuration
/// and proxies.
fn pip(venv: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(venv.join("bin/pip"));
    c.args(args)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("NO_PROXY", "*")
        .env("no_proxy", "*");
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
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypi_adapter_in_python_serves_pip_and_keeps_serving_without_upstream() {
    let venv = py_venv();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // Two wheels; a depends on b, so pip resolves through the index twice.
    let packages = w.join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    let python = venv.join("bin/python");
    let sha_a = write_wheel(
        &python,
        &packages,
        "artgate_demo_a",
        "1.0",
        &["artgate-demo-b"],
    )
    .await;
    let sha_b = write_wheel(&python, &packages, "artgate_demo_b", "2.0", &[]).await;
    let mut upstream = PypiServer::start(&venv, &packages, &w.join("pypiserver.log")).await;

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
    let status = wait_active(&gw, "pypi").await;
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
        run_ok(pip(
            &venv,
            &[
                "install",
                "--no-cache-dir",
                "--index-url",
                &index,
                "--target",
                t.to_str().unwrap(),
                "artgate-demo-a",
            ],
        ))
        .await;
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
