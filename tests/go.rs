//! The `go` adapter end to end: a GOPROXY directory made by the test (two
//! modules, one with an upper-case path, one requiring the other; module
//! zips written with Python's `zipfile`) served by the in-process upstream,
//! and the real `go` command (Debian's `golang-go`) with `GOPROXY` pointing
//! at the gateway: `go mod download`, `go get` and `go build` of a program
//! importing the modules, `go list -m -versions` before and after a new
//! version is published upstream, a fresh module cache with the upstream
//! down, and a missing module.

use crate::support::clients::{run, run_ok};
use crate::support::gateway::Gateway;
use crate::support::kit::check_builtin_cases;
use crate::support::mirror::Mirror;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The module every test program imports; it requires [`UPPER`].
const GREET: &str = "example.com/greet";
/// A module with an upper-case letter: `example.com/!upper` on the wire.
const UPPER: &str = "example.com/Upper";

/// Write a module version into the GOPROXY tree `root`: `.info`, `.mod`,
/// `.zip` (holding `files` and the `go.mod`), and the version in `list`.
fn publish(root: &Path, module: &str, version: &str, go_mod: &str, files: &[(&str, &str)]) {
    let escaped: String = module
        .chars()
        .flat_map(|c| {
            if c.is_ascii_uppercase() {
                vec!['!', c.to_ascii_lowercase()]
            } else {
                vec![c]
            }
        })
        .collect();
    let dir = root.join(&escaped).join("@v");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{version}.info")),
        format!("{{\"Version\":\"{version}\",\"Time\":\"2026-01-01T00:00:00Z\"}}"),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{version}.mod")), go_mod).unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut names = vec!["go.mod".to_owned()];
    std::fs::write(src.path().join("go.mod"), go_mod).unwrap();
    for (name, text) in files {
        std::fs::write(src.path().join(name), text).unwrap();
        names.push((*name).to_owned());
    }
    // A module zip holds `{module}@{version}/{file}` for every file.
    let script = "import sys, zipfile\n\
        out, prefix, src = sys.argv[1], sys.argv[2], sys.argv[3]\n\
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:\n\
        \x20   for name in sys.argv[4:]:\n\
        \x20       z.write(src + '/' + name, prefix + '/' + name)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir.join(format!("{version}.zip")))
        .arg(format!("{module}@{version}"))
        .arg(src.path())
        .args(&names)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "zip: {out:?}");
    let list = dir.join("list");
    let mut versions = std::fs::read_to_string(&list).unwrap_or_default();
    versions.push_str(&format!("{version}\n"));
    std::fs::write(list, versions).unwrap();
}

/// Publish `greet` at `version`, saying `greeting`, requiring `Upper`.
fn publish_greet(root: &Path, version: &str, greeting: &str) {
    publish(
        root,
        GREET,
        version,
        &format!("module {GREET}\n\ngo 1.19\n\nrequire {UPPER} v1.0.0\n"),
        &[(
            "greet.go",
            &format!(
                "package greet\n\nimport \"{UPPER}\"\n\n// Hello greets.\nfunc Hello() string {{ return \"{greeting} \" + upper.Name() }}\n"
            ),
        )],
    );
}

/// The GOPROXY tree with `Upper` v1.0.0 and `greet` v1.0.0, served by a
/// mirror, and a gateway with the remote `golang` (lists live 1 s).
async fn setup() -> (tempfile::TempDir, Mirror, Gateway) {
    let tree = tempfile::tempdir().unwrap();
    publish(
        tree.path(),
        UPPER,
        "v1.0.0",
        &format!("module {UPPER}\n\ngo 1.19\n"),
        &[(
            "upper.go",
            "package upper\n\n// Name names it.\nfunc Name() string { return \"Upper\" }\n",
        )],
    );
    publish_greet(tree.path(), "v1.0.0", "hello v1");
    let mirror = Mirror::start("/goproxy").await;
    mirror.load(tree.path(), "");
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"golang\"\npackage = \"go\"\nupstream = \"{}\"\nmutable_ttl = \"1s\"\n",
        mirror.url()
    ))
    .await;
    (tree, mirror, gw)
}

/// The `go` command with `GOPROXY` at the gateway, and everything it
/// writes (module cache, build cache, environment file) below `home`.
struct GoEnv {
    home: PathBuf,
    proxy: String,
}

impl GoEnv {
    fn new(home: &Path, gw: &Gateway) -> GoEnv {
        GoEnv {
            home: home.to_path_buf(),
            proxy: gw.url("/api/v1/remote/golang"),
        }
    }

    /// `go args…` in `dir`, with the module cache `modcache` (below home).
    fn cmd(&self, dir: &Path, modcache: &str, args: &[&str]) -> Command {
        let mut c = Command::new("go");
        c.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GOPROXY", &self.proxy)
            .env("GOMODCACHE", self.home.join(modcache))
            .env("GOPATH", self.home.join("gopath"))
            .env("GOCACHE", self.home.join("gocache"))
            .env("GOENV", self.home.join("goenv"))
            .env("GOFLAGS", "-modcacherw")
            .env("GO111MODULE", "on")
            .env("CGO_ENABLED", "0")
            // No checksum database is reachable from the tests; the
            // sumdb paths are planned (and unit-tested) like the rest.
            .env("GOSUMDB", "off");
        c
    }
}

/// A program importing `greet`, in a new directory below `home`.
fn program(home: &Path, name: &str) -> PathBuf {
    let dir = home.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/app\n\ngo 1.19\n").unwrap();
    std::fs::write(
        dir.join("main.go"),
        format!(
            "package main\n\nimport (\n\t\"fmt\"\n\n\t\"{GREET}\"\n)\n\nfunc main() {{ fmt.Println(greet.Hello()) }}\n"
        ),
    )
    .unwrap();
    dir
}

/// `go get` and `go build` of a program through the gateway: both modules
/// come through it (the upper-case one case-encoded), the zips once each
/// however many module caches ask; the program runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_a_program_through_the_gateway() {
    let (_tree, mirror, gw) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let go = GoEnv::new(home.path(), &gw);

    let out = run_ok(go.cmd(
        home.path(),
        "mod1",
        &["mod", "download", "-json", &format!("{GREET}@v1.0.0")],
    ))
    .await;
    let info: serde_json::Value = serde_json::from_str(&out).expect("go's JSON");
    assert_eq!(info["Version"], "v1.0.0", "{out}");
    assert!(info.get("Error").is_none(), "{out}");
    assert!(
        info["Zip"].as_str().is_some_and(|z| Path::new(z).is_file()),
        "{out}"
    );

    let app = program(home.path(), "app");
    run_ok(go.cmd(&app, "mod1", &["get", &format!("{GREET}@v1.0.0")])).await;
    run_ok(go.cmd(&app, "mod1", &["build", "-o", "app", "."])).await;
    let said = run_ok(Command::new(app.join("app"))).await;
    assert_eq!(said.trim(), "hello v1 Upper");

    // Another machine (a fresh module cache) gets the same from the cache.
    run_ok(go.cmd(&app, "mod2", &["build", "-o", "app2", "."])).await;
    for (module, file) in [
        ("example.com/greet", "v1.0.0.zip"),
        ("example.com/!upper", "v1.0.0.zip"),
        ("example.com/!upper", "v1.0.0.mod"),
    ] {
        let path = mirror.path(&format!("{module}/@v/{file}"));
        assert_eq!(mirror.up.seen(&path).gets, 1, "{path} fetched once");
    }
    // This upstream proxies no checksum database: go is told so (404)
    // and would ask the database directly.
    let supported = gw
        .get_remote("golang", "sumdb/sum.golang.org/supported", &[])
        .await;
    assert_eq!(supported.status, 404);
    assert_eq!(
        mirror
            .up
            .seen(&mirror.path("sumdb/sum.golang.org/supported"))
            .gets,
        1,
        "asked upstream"
    );
    let zip = gw
        .get_remote("golang", "example.com/greet/@v/v1.0.0.zip", &[])
        .await;
    assert_eq!(zip.status, 200);
    assert_eq!(zip.h("content-type"), "application/zip");
    assert_eq!(zip.source(), "cache");
}

/// A version published upstream is listed once the list's TTL has passed
/// (and not before), and `go get` takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sees_a_new_version_after_the_ttl() {
    let (tree, mirror, gw) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let go = GoEnv::new(home.path(), &gw);
    let versions = || go.cmd(home.path(), "mod", &["list", "-m", "-versions", GREET]);

    let out = run_ok(versions()).await;
    assert_eq!(out.trim(), format!("{GREET} v1.0.0"));
    publish_greet(tree.path(), "v1.1.0", "hello v1.1");
    mirror.load(tree.path(), "");
    let out = run_ok(versions()).await;
    assert_eq!(out.trim(), format!("{GREET} v1.0.0"), "cached for the TTL");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = run_ok(versions()).await;
    assert_eq!(out.trim(), format!("{GREET} v1.0.0 v1.1.0"));

    let app = program(home.path(), "app");
    run_ok(go.cmd(&app, "mod", &["get", &format!("{GREET}@latest")])).await;
    let go_mod = std::fs::read_to_string(app.join("go.mod")).unwrap();
    assert!(go_mod.contains(&format!("{GREET} v1.1.0")), "{go_mod}");
    run_ok(go.cmd(&app, "mod", &["build", "-o", "app", "."])).await;
    let said = run_ok(Command::new(app.join("app"))).await;
    assert_eq!(said.trim(), "hello v1.1 Upper");
}

/// With the upstream down, a fresh module cache still builds the program
/// from the gateway's cache; a module nobody has is a "not found" that
/// `go` reports (404, never a 5xx), also while the upstream is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_builds_with_the_upstream_down_and_missing_modules_are_not_found() {
    let (_tree, mirror, gw) = setup().await;
    let home = tempfile::tempdir().unwrap();
    let go = GoEnv::new(home.path(), &gw);
    let app = program(home.path(), "app");
    run_ok(go.cmd(&app, "warm", &["get", &format!("{GREET}@v1.0.0")])).await;
    run_ok(go.cmd(&app, "warm", &["build", "-o", "app", "."])).await;

    let missing = run(go.cmd(
        home.path(),
        "warm",
        &["mod", "download", "example.com/nothere@v1.0.0"],
    ))
    .await;
    assert!(!missing.ok, "{}", missing.output);
    assert!(
        missing.output.contains("404 Not Found"),
        "{}",
        missing.output
    );

    mirror.up.set_down(true);
    run_ok(go.cmd(&app, "cold", &["build", "-o", "app2", "."])).await;
    let said = run_ok(Command::new(app.join("app2"))).await;
    assert_eq!(said.trim(), "hello v1 Upper");
    let missing = run(go.cmd(
        home.path(),
        "cold",
        &["mod", "download", "example.com/nothere@v1.0.0"],
    ))
    .await;
    assert!(!missing.ok, "{}", missing.output);
    assert!(
        missing.output.contains("404 Not Found"),
        "the cached 404 still answers: {}",
        missing.output
    );
}

/// The adapter's golden cases (`plugins/go/cases`) pass under `artgate
/// plugin check` against the built-in component, which declares that it
/// looks at no upstream answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_adapter_passes_its_golden_cases() {
    let out = check_builtin_cases("go", "plugins/go/cases", 6).await;
    assert!(
        out.contains("on-response: declared to accept every upstream answer"),
        "{out}"
    );
}
