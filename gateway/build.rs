//! Builds the built-in adapters in `plugins/` for `wasm32-wasip2` (in their
//! own workspace and target directory, so this never contends with the
//! outer build's lock) and places them in `$OUT_DIR/adapters/`, where
//! `src/plugins/builtin.rs` embeds them.

use std::path::{Path, PathBuf};
use std::process::Command;

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

    println!("cargo:rerun-if-changed=../plugins");
    println!("cargo:rerun-if-changed=../wit");
    println!("cargo:rerun-if-env-changed=ARTGATE_PLUGINS_TARGET_DIR");

    build(&plugins, &target_dir, &[], "wasm32-wasip2/release");
    build(
        &plugins,
        &target_dir.join("variant"),
        &["-p", "artgate-generic", "--features", "variant"],
        "wasm32-wasip2/release",
    );

    let rel = target_dir.join("wasm32-wasip2/release");
    copy(
        &rel.join("artgate_generic.wasm"),
        &adapters.join("generic.wasm"),
    );
    copy(
        &rel.join("artgate_docker.wasm"),
        &adapters.join("docker.wasm"),
    );
    copy(&rel.join("artgate_rpm.wasm"), &adapters.join("rpm.wasm"));
    copy(
        &rel.join("artgate_alpine.wasm"),
        &adapters.join("alpine.wasm"),
    );
    copy(&rel.join("artgate_cas.wasm"), &adapters.join("cas.wasm"));
    copy(&rel.join("artgate_git.wasm"), &adapters.join("git.wasm"));
    copy(
        &rel.join("artgate_hostile.wasm"),
        &adapters.join("hostile.wasm"),
    );
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

fn build(plugins: &Path, target_dir: &Path, extra: &[&str], _profile: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
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
        .expect("run cargo for the wasm32-wasip2 adapters");
    if !status.success() {
        panic!(
            "building the adapters in plugins/ failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
        );
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} → {}: {e}", from.display(), to.display()));
}
