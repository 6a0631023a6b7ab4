//! The `cargo` adapter end to end: a sparse registry made by the test
//! (crates packaged with `cargo package`, index files and `config.json`
//! written beside them) served by the in-process upstream, and the real
//! `cargo` (the toolchain running the tests) with crates-io replaced by
//! the gateway: `cargo fetch` and an offline build of a program using two
//! crates, a new version seen after the TTL, a fresh cargo home with the
//! upstream down, and a `.crate` that does not match its checksum; and
//! a hosted registry: `cargo publish`, `cargo add`, a build, `cargo yank`.

use crate::support::clients::{run, run_ok};
use crate::support::gateway::Gateway;
use crate::support::kit::check_builtin_cases;
use crate::support::mirror::Mirror;
use crate::support::sha256_hex;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The `cargo` binary running the tests (not a rustup proxy, which may
/// have no default toolchain outside the repository), with its `rustc`.
fn cargo(home: &Path, dir: &Path, args: &[&str]) -> Command {
    let bin = std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from);
    let mut c = Command::new(&bin);
    c.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("CARGO_HOME", home.join("cargo-home"))
        .env("CARGO_TARGET_DIR", home.join("target"))
        .env("CARGO_TERM_COLOR", "never");
    if let Some(rustup) = std::env::var_os("RUSTUP_HOME") {
        c.env("RUSTUP_HOME", rustup);
    }
    let rustc = bin.with_file_name("rustc");
    if rustc.is_file() {
        c.env("RUSTC", rustc);
    }
    c
}

/// Write `.cargo-home/config.toml` below `home`: crates-io replaced by
/// remote `crates` of the gateway.
fn use_gateway(home: &Path, gw: &Gateway) {
    let dir = home.join("cargo-home");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"artgate\"\n\n[source.artgate]\nregistry = \"sparse+{}/\"\n",
            gw.url("/api/v1/remote/crates")
        ),
    )
    .unwrap();
}

/// The registry tree: `config.json`, index files, `crates/{name}/…`.
struct Registry {
    root: tempfile::TempDir,
}

impl Registry {
    /// An empty registry whose `dl` is `{base}/crates/{crate}/{crate}-{version}.crate`.
    fn new(base: &str) -> Registry {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("config.json"),
            format!("{{\"dl\":\"{base}/crates/{{crate}}/{{crate}}-{{version}}.crate\"}}"),
        )
        .unwrap();
        Registry { root }
    }

    /// Add a packaged crate and its index line (`deps`: name and
    /// requirement of normal dependencies on this registry).
    fn publish(&self, name: &str, version: &str, krate: &[u8], deps: &[(&str, &str)]) {
        let file = self
            .root
            .path()
            .join(format!("crates/{name}/{name}-{version}.crate"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, krate).unwrap();
        let deps: Vec<serde_json::Value> = deps
            .iter()
            .map(|(n, req)| {
                serde_json::json!({"name": n, "req": req, "features": [], "optional": false,
                    "default_features": true, "target": null, "kind": "normal"})
            })
            .collect();
        let line = serde_json::json!({"name": name, "vers": version, "deps": deps,
            "cksum": sha256_hex(krate), "features": {}, "yanked": false});
        let index = self.root.path().join(index_path(name));
        std::fs::create_dir_all(index.parent().unwrap()).unwrap();
        let mut text = std::fs::read_to_string(&index).unwrap_or_default();
        text.push_str(&format!("{line}\n"));
        std::fs::write(index, text).unwrap();
    }
}

/// Cargo's index path of a (lower-case) name of four or more letters.
fn index_path(name: &str) -> String {
    format!("{}/{}/{name}", &name[..2], &name[2..4])
}

/// `cargo package` a library crate `name` `version` whose `lib.rs` is
/// `src`, with `deps` (`name = "req"` lines); its dependencies resolve
/// through the gateway (cargo home `home`). The `.crate` bytes.
async fn package(home: &Path, name: &str, version: &str, deps: &str, src: &str) -> Vec<u8> {
    let dir = home.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\ndescription = \"test crate\"\nlicense = \"MIT\"\n\n[dependencies]\n{deps}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), src).unwrap();
    run_ok(cargo(
        home,
        &dir,
        &["package", "--no-verify", "--allow-dirty"],
    ))
    .await;
    std::fs::read(
        home.join("target/package")
            .join(format!("{name}-{version}.crate")),
    )
    .unwrap()
}

/// `greet` at `version`, saying `greeting` and the name from `upper`.
async fn package_greet(home: &Path, version: &str, greeting: &str) -> Vec<u8> {
    package(
        home,
        "greet",
        version,
        "upper = \"1\"",
        &format!(
            "//! Greets.\n\n/// The greeting.\npub fn hello() -> String {{ format!(\"{greeting} {{}}\", upper::name()) }}\n"
        ),
    )
    .await
}

/// The registry with `upper` 1.0.0 and `greet` 1.0.0 (packaged through the
/// gateway, as a developer on a mirror would), served at `/registry`, and
/// a gateway with the remote `crates` (index files live 1 s).
async fn setup(home: &Path) -> (Registry, Mirror, Gateway) {
    let mirror = Mirror::start("/registry").await;
    let reg = Registry::new(&mirror.url());
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"crates\"\npackage = \"cargo\"\nupstream = \"{}\"\nmutable_ttl = \"1s\"\n",
        mirror.url()
    ))
    .await;
    use_gateway(home, &gw);
    let upper = package(
        home,
        "upper",
        "1.0.0",
        "",
        "//! Names.\n\n/// The name.\npub fn name() -> &'static str { \"Upper\" }\n",
    )
    .await;
    reg.publish("upper", "1.0.0", &upper, &[]);
    mirror.load(reg.root.path(), "");
    let greet = package_greet(home, "1.0.0", "hello v1").await;
    reg.publish("greet", "1.0.0", &greet, &[("upper", "^1")]);
    mirror.load(reg.root.path(), "");
    (reg, mirror, gw)
}

/// A program using `greet`, in a new directory below `home`.
fn program(home: &Path, name: &str) -> PathBuf {
    let dir = home.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngreet = \"1\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() { println!(\"{}\", greet::hello()); }\n",
    )
    .unwrap();
    dir
}

/// Build the program offline in `home` and run it: what it printed.
async fn build_and_run(home: &Path, app: &Path) -> String {
    run_ok(cargo(home, app, &["build", "--offline", "-q"])).await;
    let bin = home.join("target/debug").join(app.file_name().unwrap());
    run_ok(Command::new(bin)).await.trim().to_owned()
}

/// `cargo fetch` and an offline build through the gateway: cargo checks
/// every `.crate` against the index's checksum, `Cargo.lock` names the
/// versions, and a second fresh cargo home gets the files from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_fetches_and_builds_through_the_gateway() {
    let dev = tempfile::tempdir().unwrap();
    let (_reg, mirror, gw) = setup(dev.path()).await;
    let home = tempfile::tempdir().unwrap();
    use_gateway(home.path(), &gw);
    let app = program(home.path(), "app");
    run_ok(cargo(home.path(), &app, &["fetch"])).await;
    assert_eq!(build_and_run(home.path(), &app).await, "hello v1 Upper");
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"greet\"\nversion = \"1.0.0\""),
        "{lock}"
    );

    let other = tempfile::tempdir().unwrap();
    use_gateway(other.path(), &gw);
    let app2 = program(other.path(), "app2");
    run_ok(cargo(other.path(), &app2, &["fetch"])).await;
    assert_eq!(build_and_run(other.path(), &app2).await, "hello v1 Upper");
    for file in [
        "crates/greet/greet-1.0.0.crate",
        "crates/upper/upper-1.0.0.crate",
    ] {
        assert_eq!(
            mirror.up.seen(&mirror.path(file)).gets,
            1,
            "{file} fetched once"
        );
    }
    // What cargo was told: downloads through the gateway.
    let config = gw.get_remote("crates", "config.json", &[]).await;
    assert_eq!(config.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(config.body()).unwrap();
    assert_eq!(
        doc["dl"],
        format!(
            "{}/-/dl/{{crate}}/{{version}}",
            gw.url("/api/v1/remote/crates")
        )
    );
}

/// A version published upstream is seen by `cargo update` once the index
/// file's TTL has passed, and the program builds with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_sees_a_new_version_after_the_ttl() {
    let dev = tempfile::tempdir().unwrap();
    let (reg, mirror, gw) = setup(dev.path()).await;
    let home = tempfile::tempdir().unwrap();
    use_gateway(home.path(), &gw);
    let app = program(home.path(), "app");
    run_ok(cargo(home.path(), &app, &["fetch"])).await;

    let greet = package_greet(dev.path(), "1.1.0", "hello v1.1").await;
    reg.publish("greet", "1.1.0", &greet, &[("upper", "^1")]);
    mirror.load(reg.root.path(), "");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    run_ok(cargo(home.path(), &app, &["update"])).await;
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"greet\"\nversion = \"1.1.0\""),
        "{lock}"
    );
    run_ok(cargo(home.path(), &app, &["fetch"])).await;
    assert_eq!(build_and_run(home.path(), &app).await, "hello v1.1 Upper");
}

/// With the upstream down, a fresh cargo home still fetches and builds
/// from the gateway's cache (index files served stale). A `.crate` whose
/// bytes do not match the index's checksum is refused and never stored:
/// cargo fails, and fetching it again goes upstream again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_builds_with_the_upstream_down_and_bad_crates_are_refused() {
    let dev = tempfile::tempdir().unwrap();
    let (reg, mirror, gw) = setup(dev.path()).await;
    let warm = tempfile::tempdir().unwrap();
    use_gateway(warm.path(), &gw);
    let app = program(warm.path(), "app");
    run_ok(cargo(warm.path(), &app, &["fetch"])).await;

    // A crate whose file was swapped after its index line was written.
    let good = package(dev.path(), "tampered", "1.0.0", "", "//! T.\n").await;
    reg.publish("tampered", "1.0.0", &good, &[]);
    std::fs::write(
        reg.root.path().join("crates/tampered/tampered-1.0.0.crate"),
        b"not the packaged crate",
    )
    .unwrap();
    mirror.load(reg.root.path(), "");
    let bad_home = tempfile::tempdir().unwrap();
    use_gateway(bad_home.path(), &gw);
    let bad = bad_home.path().join("bad");
    std::fs::create_dir_all(bad.join("src")).unwrap();
    std::fs::write(
        bad.join("Cargo.toml"),
        "[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ntampered = \"1\"\n",
    )
    .unwrap();
    std::fs::write(bad.join("src/main.rs"), "fn main() {}\n").unwrap();
    let fetched = run(cargo(bad_home.path(), &bad, &["fetch"])).await;
    assert!(!fetched.ok, "{}", fetched.output);
    let path = mirror.path("crates/tampered/tampered-1.0.0.crate");
    let before = mirror.up.seen(&path).gets;
    assert!(before >= 1);
    let again = gw.get_remote("crates", "-/dl/tampered/1.0.0", &[]).await;
    assert!(
        again.status != 200 || again.broke_off.is_some(),
        "never served whole: {} {:?}",
        again.status,
        again.broke_off
    );
    assert!(
        mirror.up.seen(&path).gets > before,
        "nothing was stored, so it is fetched again"
    );

    mirror.up.set_down(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cold = tempfile::tempdir().unwrap();
    use_gateway(cold.path(), &gw);
    let app2 = program(cold.path(), "app2");
    run_ok(cargo(cold.path(), &app2, &["fetch"])).await;
    assert_eq!(build_and_run(cold.path(), &app2).await, "hello v1 Upper");
}

/// The adapter's golden cases (`plugins/cargo/cases`) pass under `artgate
/// plugin check` against the built-in component.
/// A hosted cargo registry with the real cargo: `cargo publish` (the
/// `.crate` taken out of the request by the core), a second publish of
/// the version refused, `cargo add` and a build of a program using the
/// crate, and `cargo yank`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_publishes_to_hosted_and_builds_from_it() {
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path();
    let token = "cargo-publisher-token-0123456789";
    let gw = Gateway::start(&format!(
        "[[remote]]\nname = \"own\"\npackage = \"cargo\"\nhosted = true\n\
         [[token]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nscopes = {{ own = [\"read\", \"write\", \"delete\"] }}\n",
        sha256_hex(token.as_bytes())
    ))
    .await;
    let cargo_home = home.join("cargo-home");
    std::fs::create_dir_all(&cargo_home).unwrap();
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[registries.own]\nindex = \"sparse+{}/\"\n",
            gw.url("/api/v1/remote/own")
        ),
    )
    .unwrap();
    let with_token = |mut c: Command| {
        c.env("CARGO_REGISTRIES_OWN_TOKEN", format!("Bearer {token}"));
        c
    };
    let lib = home.join("shout");
    std::fs::create_dir_all(lib.join("src")).unwrap();
    std::fs::write(
        lib.join("Cargo.toml"),
        "[package]\nname = \"shout\"\nversion = \"0.1.0\"\nedition = \"2021\"\ndescription = \"test crate\"\nlicense = \"MIT\"\npublish = [\"own\"]\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("src/lib.rs"),
        "//! Shouts.\n\n/// Loud.\npub fn loud(s: &str) -> String { s.to_uppercase() }\n",
    )
    .unwrap();
    let publish = || {
        with_token(cargo(
            home,
            &lib,
            &[
                "publish",
                "--registry",
                "own",
                "--allow-dirty",
                "--no-verify",
            ],
        ))
    };
    run_ok(publish()).await;
    let again = run(publish()).await;
    assert!(!again.ok, "{}", again.output);
    assert!(again.output.contains("already"), "{}", again.output);

    let app = home.join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )
    .unwrap();
    std::fs::write(
        app.join("src/main.rs"),
        "fn main() { println!(\"{}\", shout::loud(\"hosted\")); }\n",
    )
    .unwrap();
    run_ok(cargo(home, &app, &["add", "shout", "--registry", "own"])).await;
    run_ok(cargo(home, &app, &["fetch"])).await;
    assert_eq!(build_and_run(home, &app).await, "HOSTED");

    run_ok(with_token(cargo(
        home,
        &lib,
        &["yank", "--version", "0.1.0", "--registry", "own"],
    )))
    .await;
    let index = gw.get_remote("own", "sh/ou/shout", &[]).await;
    assert_eq!(index.status, 200);
    assert!(
        String::from_utf8_lossy(index.body()).contains("\"yanked\":true"),
        "{:?}",
        String::from_utf8_lossy(index.body())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cargo_adapter_passes_its_golden_cases() {
    check_builtin_cases("cargo", "plugins/cargo/cases", 4).await;
}
