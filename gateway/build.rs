//! Builds the built-in adapters in `plugins/` for `wasm32-wasip2` (in their
//! own workspace and target directory, so this never contends with the
//! outer build's lock) and places them in `$OUT_DIR/adapters/`, where
//! `src/plugins/builtin.rs` embeds them. It also compiles the Remote
//! Execution API protos in `proto/` into the gRPC code `src/grpc/proto.rs`
//! includes (with protox, a protobuf compiler in Rust, so no `protoc` is
//! needed).
//!
//! Two things keep the README's commands working on a fresh clone:
//! - the `wasm32-wasip2` target is added through rustup when the toolchain
//!   lacks it (rustup does not add `rust-toolchain.toml` targets to an
//!   installed toolchain when `RUSTUP_AUTO_INSTALL=0`);
//! - only the adapters' real inputs are declared with `rerun-if-changed`
//!   (never `plugins/target`, which this script writes), so a build with
//!   nothing changed does not rerun it and does not relink the gateway.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace members of `plugins/Cargo.toml`, whose sources and
/// manifests are this script's inputs.
const MEMBERS: &[&str] = &[
    "sdk",
    "generic",
    "docker",
    "rpm",
    "alpine",
    "cas",
    "git",
    "go",
    "cargo",
    "pypi",
    "npm",
    "maven",
    "deb",
    "testing/hostile",
];

/// The built-in adapters, `(crate file name, adapter name)`: the one list
/// of them. Each is copied to `$OUT_DIR/adapters/<name>.wasm`, and the
/// generated `$OUT_DIR/builtins.rs` embeds exactly these.
const BUILTINS: &[(&str, &str)] = &[
    ("artgate_generic", "generic"),
    ("artgate_docker", "docker"),
    ("artgate_rpm", "rpm"),
    ("artgate_alpine", "alpine"),
    ("artgate_cas", "cas"),
    ("artgate_git", "git"),
    ("artgate_go", "go"),
    ("artgate_cargo", "cargo"),
    ("artgate_pypi", "pypi"),
    ("artgate_npm", "npm"),
    ("artgate_maven", "maven"),
    ("artgate_deb", "deb"),
];

/// Adapters built for the tests only (found through
/// `ARTGATE_ADAPTERS_DIR`), never embedded.
const TEST_ONLY: &[(&str, &str)] = &[("artgate_hostile", "hostile")];

/// The wasm target the adapters are built for.
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plugins = manifest_dir.join("../plugins");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let adapters = out.join("adapters");
    std::fs::create_dir_all(&adapters).expect("create OUT_DIR/adapters");
    // Share one target directory between builds of this crate (debug,
    // release, clippy) so adapters compile once.
    let target_dir = std::env::var_os("ARTGATE_PLUGINS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| plugins.join("target"));

    declare_inputs(&plugins);
    compile_protos(&manifest_dir.join("proto"));

    ensure_target(&plugins);
    build(&plugins, &target_dir, &[]);
    build(
        &plugins,
        &target_dir.join("variant"),
        &["-p", "artgate-generic", "--features", "variant"],
    );

    let rel = target_dir.join("wasm32-wasip2/release");
    for (crate_file, name) in BUILTINS.iter().chain(TEST_ONLY) {
        copy(
            &rel.join(format!("{crate_file}.wasm")),
            &adapters.join(format!("{name}.wasm")),
        );
    }
    write_builtins(&out);
    copy(
        &target_dir.join("variant/wasm32-wasip2/release/artgate_generic.wasm"),
        &adapters.join("generic-variant.wasm"),
    );
    // Test fixtures are found by the end-to-end tests through this path.
    println!(
        "cargo:rustc-env=ARTGATE_ADAPTERS_DIR={}",
        adapters.display()
    );
}

/// The proto files the gRPC front serves; their imports (`google/api`,
/// `google/rpc`, `google/longrunning`, `build/bazel/semver`) come along,
/// and protox supplies the well-known types.
const PROTOS: &[&str] = &[
    "build/bazel/remote/execution/v2/remote_execution.proto",
    "build/bazel/remote/asset/v1/remote_asset.proto",
    "google/bytestream/bytestream.proto",
];

/// Generates the REAPI messages, servers and clients into `$OUT_DIR`.
fn compile_protos(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let fds = protox::compile(PROTOS, [dir]).unwrap_or_else(|e| fail(&format!("{e:?}")));
    // The protos' comments hold examples in other languages that rustdoc
    // would run as doc tests; the protos themselves are the documentation.
    let mut config = tonic_prost_build::Config::new();
    config.disable_comments(["."]);
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        // Blob contents as `Bytes`: a chunk goes from the wire to a spool
        // without a copy.
        .bytes(".")
        .disable_comments(["."])
        .compile_fds_with_config(fds, config)
        .unwrap_or_else(|e| fail(&format!("generating the gRPC code failed: {e}")));
}

/// Tells cargo exactly what the adapters are built from: the plugins
/// workspace manifest and lock file, each member's manifest, sources and
/// build script, the WIT package and the toolchain file.
fn declare_inputs(plugins: &Path) {
    // A path that does not exist would make cargo rerun this script on
    // every build, so only existing ones are declared.
    let mut inputs = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        ".cargo".to_owned(),
    ];
    for member in MEMBERS {
        for part in ["Cargo.toml", "src", "build.rs"] {
            inputs.push(format!("{member}/{part}"));
        }
    }
    for input in inputs {
        if plugins.join(&input).exists() {
            println!("cargo:rerun-if-changed=../plugins/{input}");
        }
    }
    println!("cargo:rerun-if-changed=../wit");
    println!("cargo:rerun-if-changed=../rust-toolchain.toml");
    println!("cargo:rerun-if-env-changed=ARTGATE_PLUGINS_TARGET_DIR");
}

/// Adds the wasm target through rustup when the toolchain that builds the
/// adapters lacks it. Without rustup there is nothing to add it with, and
/// the message says what the toolchain needs.
fn ensure_target(plugins: &Path) {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // The sysroot of the toolchain the adapters build with: the one the
    // plugins directory selects (the same rust-toolchain.toml as here).
    let sysroot = Command::new(&rustc)
        .current_dir(plugins)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = &sysroot
        && sysroot.join("lib/rustlib").join(TARGET).is_dir()
    {
        return;
    }
    let has_rustup = Command::new("rustup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_rustup {
        fail(&format!(
            "the Rust toolchain has no {TARGET} target and rustup is not on PATH to add it; \
             install the target for this toolchain (its sysroot is {}) and build again",
            sysroot.map_or_else(|| "unknown".into(), |s| s.display().to_string())
        ));
    }
    println!(
        "cargo:warning=the toolchain lacked the {TARGET} target the built-in adapters are built for; added it with rustup"
    );
    let status = Command::new("rustup")
        .current_dir(plugins)
        .args(["target", "add", TARGET])
        .status();
    if !status.is_ok_and(|s| s.success()) {
        fail(&format!(
            "`rustup target add {TARGET}` failed; run it by hand (it needs network access to the Rust \
             distribution server) and build again"
        ));
    }
}

fn build(plugins: &Path, target_dir: &Path, extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        .args(extra);
    // Flags meant for the host build must not leak into the wasm build.
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
    let status = cmd
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo for the {TARGET} adapters: {e}")));
    if !status.success() {
        fail("building the adapters in plugins/ failed; cargo's messages above say why");
    }
}

/// Writes `$OUT_DIR/builtins.rs`: the `(name, bytes)` array of every
/// built-in adapter, for `src/plugins/builtin.rs` to include.
fn write_builtins(out: &Path) {
    let mut src = String::from("[\n");
    for (_, name) in BUILTINS {
        src.push_str(&format!(
            "    ({name:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/adapters/{name}.wasm\")) as &[u8]),\n"
        ));
    }
    src.push_str("]\n");
    let path = out.join("builtins.rs");
    if let Err(e) = std::fs::write(&path, src) {
        fail(&format!("write {}: {e}", path.display()));
    }
}

fn copy(from: &Path, to: &Path) {
    if let Err(e) = std::fs::copy(from, to) {
        fail(&format!("copy {} → {}: {e}", from.display(), to.display()));
    }
}

/// Stops the build with one clear message (cargo shows a build script's
/// stderr), without a panic backtrace.
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    println!("cargo:warning={msg}");
    std::process::exit(1);
}
