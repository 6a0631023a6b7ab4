//! Built-in adapters, compiled from `plugins/` by `build.rs` and embedded,
//! so a fresh install works with an empty plugin directory. The list of
//! them is `BUILTINS` in `build.rs`.

/// `(name, component bytes)` of every built-in adapter.
pub fn builtins() -> Vec<(&'static str, &'static [u8])> {
    include!(concat!(env!("OUT_DIR"), "/builtins.rs")).to_vec()
}
