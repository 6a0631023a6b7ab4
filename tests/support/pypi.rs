//! The Python packaging parts the PyPI tests share: the venv with
//! componentize-py, pypiserver and pip (`$ARTGATE_PY_VENV`, made by
//! `./test.sh`), wheels written by hand, a pypiserver on 127.0.0.1, and pip
//! isolated from the machine's configuration.

use super::clients::run_ok;
use super::kit::repo;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The venv with componentize-py, pypi-server and pip. Panics (the test
/// fails, it does not skip) when none has them.
pub fn py_venv() -> PathBuf {
    let has_tools = |v: &Path| {
        ["componentize-py", "pypi-server", "pip", "python", "twine"]
            .iter()
            .all(|t| v.join("bin").join(t).is_file())
    };
    if let Some(v) = std::env::var_os("ARTGATE_PY_VENV") {
        let v = PathBuf::from(v);
        assert!(
            has_tools(&v),
            "ARTGATE_PY_VENV={} lacks componentize-py, pypi-server, pip or twine (run ./test.sh)",
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
        "no Python venv with componentize-py 0.25, pypiserver and twine: set ARTGATE_PY_VENV or run ./test.sh (it creates target/artgate-py-venv)"
    );
}

/// Write a minimal pure-Python wheel (METADATA, WHEEL, RECORD, a module)
/// by hand with the venv's Python; returns its sha256.
pub async fn write_wheel(
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

/// Two wheels in `work/packages`, `{app}` 1.0 requiring `{lib}` (so pip
/// resolves through the index twice) and `{lib}` 2.0 (module names, with
/// `_`), served by a pypiserver logging to `work/pypiserver.log`: their
/// sha256s and the server.
pub async fn serve_two_wheels(
    venv: &Path,
    work: &Path,
    app: &str,
    lib: &str,
) -> (String, String, PypiServer) {
    let packages = work.join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    let python = venv.join("bin/python");
    let requirement = lib.replace('_', "-");
    let sha_app = write_wheel(&python, &packages, app, "1.0", &[&requirement]).await;
    let sha_lib = write_wheel(&python, &packages, lib, "2.0", &[]).await;
    let server = PypiServer::start(venv, &packages, &work.join("pypiserver.log")).await;
    (sha_app, sha_lib, server)
}

/// pypiserver on 127.0.0.1; killed on drop.
pub struct PypiServer {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
}

impl PypiServer {
    /// Serve the wheels in `packages`, logging to `log`.
    pub async fn start(venv: &Path, packages: &Path, log: &Path) -> PypiServer {
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

    /// Stop it (also on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `pip install` of `args` (requirements, or `-r` and a file) from
/// `index` into the directory `target`, pip's cache off.
pub fn pip_install(venv: &Path, index: &str, target: &Path, args: &[&str]) -> Command {
    let target = target.to_str().expect("a UTF-8 path");
    let mut all = vec![
        "install",
        "--no-cache-dir",
        "--index-url",
        index,
        "--target",
        target,
    ];
    all.extend_from_slice(args);
    pip(venv, &all)
}

/// `pip ARGS` from the venv, isolated from the user's pip configuration
/// and proxies.
pub fn pip(venv: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(venv.join("bin/pip"));
    c.args(args)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1");
    super::clients::without_proxies(&mut c);
    c
}
