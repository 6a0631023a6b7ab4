//! The one place `bindgen!` runs: host-side bindings for the
//! `artgate:adapter@0.1.0` world in `wit/`.
//!
//! Exports are async so a call can be awaited on the runtime (and cut off by
//! the epoch deadline); `http-send` is async, since it does
//! network I/O, `cache-send`, which may wait for an upstream fetch, and
//! `unpack-body`, `stage-body` and `hosted-commit`, which read a request body and write
//! the store.
//! Every import is trappable so the host can end a call that
//! abuses a capability.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "adapter",
    imports: {
        "artgate:adapter/host.http-send": async | trappable,
        "artgate:adapter/host.cache-send": async | trappable,
        "artgate:adapter/host.unpack-body": async | trappable,
        "artgate:adapter/host.hosted-commit": async | trappable,
        "artgate:adapter/host.stage-body": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use self::artgate::adapter::types as wit;
