//! Built-in adapters, compiled from `plugins/` by `build.rs` and embedded,
//! so a fresh install works with an empty plugin directory.

/// `(name, component bytes)` of every built-in adapter.
pub fn builtins() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (
            "generic",
            include_bytes!(concat!(env!("OUT_DIR"), "/adapters/generic.wasm")),
        ),
        (
            "docker",
            include_bytes!(concat!(env!("OUT_DIR"), "/adapters/docker.wasm")),
        ),
        (
            "rpm",
            include_bytes!(concat!(env!("OUT_DIR"), "/adapters/rpm.wasm")),
        ),
        (
            "alpine",
            include_bytes!(concat!(env!("OUT_DIR"), "/adapters/alpine.wasm")),
        ),
        (
            "cas",
            include_bytes!(concat!(env!("OUT_DIR"), "/adapters/cas.wasm")),
        ),
        (
            "git",
            include_bytes!(concat!(env!("OUT_DIR"), "/adapters/git.wasm")),
        ),
    ]
}
