//! Guest-side SDK for artgate adapters.
//!
//! An artgate adapter is a WebAssembly component (target `wasm32-wasip2`)
//! that implements the `artgate:adapter@0.1.0` WIT world (`wit/adapter.wit`
//! in the artgate repository). This crate is the one place the guest
//! bindings are generated; adapter crates depend on it alone:
//!
//! ```no_run
//! use artgate_sdk::prelude::*;
//!
//! struct MyAdapter;
//!
//! impl Adapter for MyAdapter {
//!     fn describe() -> AdapterInfo {
//!         AdapterInfo::new("my-format", env!("CARGO_PKG_VERSION"), ["my-format"])
//!     }
//!
//!     fn plan(remote: RemoteInfo, req: Request) -> Decision {
//!         if !req.is_read() {
//!             return Decision::reject(405, "Only GET and HEAD are supported.");
//!         }
//!         let plan = CachePlan::immutable(req.path_and_query())
//!             .content_type(media::content_type(&req.path));
//!         forward_get(req.upstream_target(), plan)
//!     }
//! }
//!
//! artgate_sdk::export_adapter!(MyAdapter);
//! ```
//!
//! Build the adapter crate as a `cdylib` with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` file cargo
//! writes is the component the gateway loads.
//!
//! `plan` may also return [`PlanResult`] (`Result<Decision, Rejection>`,
//! with `impl Adapter<PlanResult> for MyAdapter`) to refuse with `?`.
//!
//! Besides the bindings ([`types`], [`host`], [`Adapter`]) the crate holds
//! the helpers most adapters need: [`path`] and [`media`] helpers, [`digest`]
//! parsing, [`http`] header and query helpers, remote [`pattern`] matching,
//! option [`duration`]s ([`RemoteInfo::option_secs`](types::RemoteInfo::option_secs)),
//! the upstream target of a request
//! ([`Request::upstream_target`](types::Request::upstream_target)), the host's
//! capabilities as a trait ([`Host`], [`WasmHost`]; a fake in `testing`),
//! builders for decisions and cache plans ([`plan`]), HTML/XML entity
//! handling ([`markup`]), maps larger than one key-value value ([`kvmap`]),
//! locks in the key-value store ([`kvlock`]) and logging macros
//! ([`info!`], [`warn!`], ...). The helpers are plain Rust and are unit tested
//! on the host target; only the [`host`] imports need a running component.
//!
//! On the host target (not `wasm32`) the `testing` module helps unit test an
//! adapter: `FakeHost` (records calls, canned answers), `RemoteInfo::test()`
//! and `Request::test(method, path)` with `with_*` builders, and matchers
//! such as `decision.expect_forward()`.

// The generated bindings name the runtime as `artgate_sdk::__wit_bindgen::rt`
// so that adapter crates need no direct wit-bindgen dependency; this makes
// the same path resolve inside this crate.
extern crate self as artgate_sdk;

pub mod digest;
pub mod duration;
// Fuzz entry points and test helpers: host target only (tests, fuzzing).
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod kvlock;
pub mod kvmap;
pub mod log;
pub mod markup;
pub mod media;
pub mod path;
pub mod pattern;
pub mod plan;
/// Test support for adapters (host target only): a fake host, fixtures,
/// decision matchers.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

mod adapter;
mod capabilities;

pub use adapter::{Adapter, IntoDecision, PlanResult};
pub use capabilities::{Host, WasmHost};
pub use plan::{OptionError, forward_get};

/// Re-export of wit-bindgen for the generated code and the export macro.
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The raw bindings generated from `wit/adapter.wit` by wit-bindgen.
///
/// Prefer the friendly paths: [`types`], [`host`] and the [`Adapter`] trait.
/// The WIT documentation of every type and function is carried over.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "artgate:adapter/adapter@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_adapter_bindings",
        default_bindings_module: "artgate_sdk::bindings",
        runtime_path: "artgate_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq, Eq],
    });
}

/// The types shared by the host and adapters (WIT interface
/// `artgate:adapter/types`), with builder helpers from [`plan`].
pub mod types {
    pub use crate::bindings::artgate::adapter::types::*;
}

/// Capabilities the host grants to adapters (WIT interface
/// `artgate:adapter/host`).
///
/// These are component imports: calling them outside a component (for
/// example in a host-target unit test) panics. Use [`log`](mod@crate::log) and
/// the logging macros for logging; they also work on the host target.
pub mod host {
    pub use crate::bindings::artgate::adapter::host::{
        cache_expire, cache_send, gateway_url, hosted_commit, http_send, kv_compare_and_set,
        kv_delete, kv_get, kv_set, stage_body, unpack_body,
    };
}

/// The generated handler trait. Implement [`Adapter`] instead:
/// [`export_adapter!`] implements `Guest` for the adapter type.
pub use bindings::exports::artgate::adapter::handler::Guest;

/// Everything an adapter usually needs, for `use artgate_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::digest::{Digest, DigestError};
    pub use crate::pattern::{PathClass, Patterns};
    pub use crate::plan::forward_get;
    pub use crate::types::*;
    pub use crate::{Adapter, Host, IntoDecision, OptionError, PlanResult, WasmHost};
    pub use crate::{debug, error, info, trace, warn};
    pub use crate::{http, markup, media, path};
}

/// Exports a type implementing [`Adapter`] as the component's
/// `artgate:adapter/handler@0.1.0` interface.
///
/// Invoke it once, at the root of the adapter crate (a `cdylib`):
///
/// ```no_run
/// use artgate_sdk::prelude::*;
///
/// struct MyAdapter;
///
/// impl Adapter for MyAdapter {
///     fn describe() -> AdapterInfo {
///         AdapterInfo::new("mine", "1.0.0", ["mine"])
///     }
///     fn plan(_remote: RemoteInfo, _req: Request) -> Decision {
///         Decision::reject(404, "Nothing here.")
///     }
/// }
///
/// artgate_sdk::export_adapter!(MyAdapter);
/// ```
///
/// Flags after the type declare things about the adapter to the gateway,
/// in any order:
///
/// - `stateless`: no call depends on what an earlier call left in the
///   instance's memory (no global state beyond caches of pure functions).
///   The gateway then reuses an instance for many calls instead of
///   instantiating one per call (about 6× less time per call for a small
///   adapter). It still drops an instance after any failed call, after a
///   call that grew its memory beyond what its first call left, and after a
///   bounded number of calls, and an operator can turn reuse off per
///   adapter (`[plugins] warm_instances = { NAME = 1 }`).
/// - `accepts_every_response`: the adapter takes every upstream answer as
///   its plan says, so the gateway does not call `on-response` at all (a
///   miss's first byte then waits for one adapter call, not two). The
///   exported `on-response` accepts without calling
///   [`Adapter::on_response`], so an override of it is never used: leave
///   the flag out when you write one.
///
/// Each flag is a custom section in the component (`artgate:instances` =
/// `stateless`, `artgate:on-response` = `accept`), which the gateway looks
/// for; they change nothing in the WIT world. An unknown flag does not
/// compile.
#[macro_export]
macro_rules! export_adapter {
    ($ty:ident $(, $flag:ident)* $(,)?) => {
        // Only a component has exports: on the host target (unit tests,
        // fuzzing) an adapter crate is a plain library, so several can be
        // linked into one program and a native `cdylib` links at all (the
        // export names are not valid linker symbols there).
        $crate::__impl_guest!($ty $(, $flag)*);
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_adapter_bindings!($ty with_types_in $crate::bindings);
        $($crate::__declare!($flag);)*
    };
}
