//! The built-in `pypi` adapter end to end: pypiserver on 127.0.0.1 serving
//! wheels this test writes, and the real `pip` through the gateway:
//! an install with `--require-hashes` from a lock file (a package
//! requiring another), the rewritten page in the form pip asks for first
//! (PEP 691 JSON when the upstream speaks it) and in HTML, and an install
//! from the cache with the upstream stopped. The tools come from the venv
//! `./test.sh` makes.

use crate::support::clients::run_ok;
use crate::support::gateway::Gateway;
use crate::support::kit::check_builtin_cases;
use crate::support::pypi::{pip_install, py_venv, serve_two_wheels, write_wheel};

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
    run_ok(pip_install(
        &venv,
        &index,
        &t1,
        &["--require-hashes", "-r", lock.to_str().unwrap()],
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
    run_ok(pip_install(&venv, &index, &t2, &["demo-app"])).await;
    assert!(t2.join("demo_lib/__init__.py").is_file());
}

/// A group over a hosted and a pull-through pypi remote, with the real
/// twine and pip: `twine upload` of a private wheel (its file taken out of
/// the multipart request by the core and checked against its
/// sha256_digest), the same upload again refused as existing (and
/// skipped with `--skip-existing`), then `pip install` through the group
/// of the private project and, from the upstream, its public dependency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twine_uploads_to_hosted_and_pip_installs_through_the_group() {
    let venv = py_venv();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (_, _, upstream) = serve_two_wheels(&venv, w, "demo_app", "demo_lib").await;
    let private = w.join("private");
    std::fs::create_dir_all(&private).unwrap();
    let sha = write_wheel(
        &venv.join("bin/python"),
        &private,
        "private_tool",
        "1.0",
        &["demo-lib"],
    )
    .await;
    let token = "pypi-publisher-token-0123456789";
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"pypi\"\npackage = \"pypi\"\nupstream = {:?}\nmutable_ttl = \"10m\"\n\
         [[remote]]\nname = \"own\"\npackage = \"pypi\"\nhosted = true\n\
         [[remote]]\nname = \"group\"\npackage = \"virtual\"\nmembers = [\"own\", \"pypi\"]\nwrite_to = \"own\"\n\
         [[token]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nscopes = {{ \"*\" = [\"read\", \"write\"] }}\n",
        upstream.url,
        crate::support::sha256_hex(token.as_bytes())
    ))
    .await;
    let wheel = private.join("private_tool-1.0-py3-none-any.whl");
    let twine = |extra: &[&str]| {
        let mut c = std::process::Command::new(venv.join("bin/twine"));
        c.arg("upload")
            .args(["--repository-url", &gw.url("/api/v1/remote/group/")])
            .args(["--username", "__token__", "--password", token])
            .args(["--non-interactive", "--disable-progress-bar"])
            .args(extra)
            .arg(&wheel)
            .env("HOME", w);
        crate::support::clients::without_proxies(&mut c);
        c
    };
    run_ok(twine(&[])).await;
    let again = crate::support::clients::run(twine(&[])).await;
    assert!(!again.ok, "{}", again.output);
    assert!(again.output.contains("409 Conflict"), "{}", again.output);
    run_ok(twine(&["--skip-existing"])).await;

    let page = gw.get_remote("group", "simple/private-tool/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.h("x-artifact-member"), "own");
    let text = String::from_utf8_lossy(page.body()).into_owned();
    assert!(text.contains(&format!("#sha256={sha}")), "{text}");

    let target = w.join("installed");
    let index = gw.url("/api/v1/remote/group/simple/");
    run_ok(pip_install(&venv, &index, &target, &["private-tool"])).await;
    for m in ["private_tool/__init__.py", "demo_lib/__init__.py"] {
        assert!(target.join(m).is_file(), "{m} not installed");
    }
}

/// The built-in passes its golden cases (`plugins/pypi/cases`: the plugin
/// kit's Python example's, with index pages from the first of several
/// upstreams).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pypi_adapter_passes_its_golden_cases() {
    check_builtin_cases("pypi", "plugins/pypi/cases", 6).await;
}
