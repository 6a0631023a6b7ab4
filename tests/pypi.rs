//! The built-in `pypi` adapter end to end: pypiserver on 127.0.0.1 serving
//! wheels this test writes, and the real `pip` through the gateway:
//! an install with `--require-hashes` from a lock file (a package
//! requiring another), the rewritten page in the form pip asks for first
//! (PEP 691 JSON when the upstream speaks it) and in HTML, and an install
//! from the cache with the upstream stopped. The tools come from the venv
//! `.ci/run` makes.

use crate::support::clients::run_ok;
use crate::support::gateway::Gateway;
use crate::support::kit::check_builtin_cases;
use crate::support::pypi::{pip, py_venv, serve_two_wheels};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pip_installs_through_the_builtin_and_without_the_upstream() {
    let venv = py_venv();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (sha_a, sha_b, mut upstream) = serve_two_wheels(&venv, w, "demo_app", "demo_lib").await;
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"pypi\"\npackage = \"pypi\"\nupstream = {:?}\nmutable_ttl = \"10m\"\n",
        upstream.url
    ))
    .await;
    let index = gw.url("/api/v1/remote/pypi/simple/");

    // Hash-checked install from a lock file: pip checks every file against
    // the hashes, the gateway against the page's.
    let lock = w.join("requirements.txt");
    std::fs::write(
        &lock,
        format!("demo-app==1.0 --hash=sha256:{sha_a}\ndemo-lib==2.0 --hash=sha256:{sha_b}\n"),
    )
    .unwrap();
    let t1 = w.join("t1");
    run_ok(pip(
        &venv,
        &[
            "install",
            "--no-cache-dir",
            "--require-hashes",
            "--index-url",
            &index,
            "--target",
            t1.to_str().unwrap(),
            "-r",
            lock.to_str().unwrap(),
        ],
    ))
    .await;
    for m in ["demo_app/__init__.py", "demo_lib/__init__.py"] {
        assert!(t1.join(m).is_file(), "{m} not installed");
    }

    // The page in both forms: links back through the gateway, digests kept,
    // the upstream's URL nowhere.
    gw.fills_settled().await;
    let html = reqwest::Client::new()
        .get(gw.url("/api/v1/remote/pypi/simple/demo-app/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    let text = html.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "../../files/demo-app/r/packages/demo_app-1.0-py3-none-any.whl#sha256={sha_a}"
        )),
        "{text}"
    );
    assert!(!text.contains(&upstream.url), "{text}");
    // The form pip asks for first: JSON when the upstream has it (else its
    // HTML), every link through the gateway either way.
    let pip_accept = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    let first = gw
        .get_remote("pypi", "simple/demo-app/", &[("accept", pip_accept)])
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.h("vary"), "Accept");
    let body = String::from_utf8_lossy(first.body()).into_owned();
    assert!(!body.contains(&upstream.url), "{body}");
    if first.h("content-type").contains("json") {
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        for f in doc["files"].as_array().expect("files") {
            assert!(
                f["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("../../files/demo-app/"),
                "{f}"
            );
        }
    } else {
        assert!(body.contains("../../files/demo-app/r/"), "{body}");
    }
    let file = gw
        .get_remote(
            "pypi",
            "files/demo-app/r/packages/demo_app-1.0-py3-none-any.whl",
            &[],
        )
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.source(), "cache", "verified and stored");

    // With the upstream gone, a fresh install still works from the cache.
    upstream.stop();
    let t2 = w.join("t2");
    run_ok(pip(
        &venv,
        &[
            "install",
            "--no-cache-dir",
            "--index-url",
            &index,
            "--target",
            t2.to_str().unwrap(),
            "demo-app",
        ],
    ))
    .await;
    assert!(t2.join("demo_lib/__init__.py").is_file());
}

/// The built-in passes its golden cases (`plugins/pypi/cases`: the plugin
/// kit's Python example's, with index pages from the first of several
/// upstreams).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pypi_adapter_passes_its_golden_cases() {
    check_builtin_cases("pypi", "plugins/pypi/cases", 6).await;
}
