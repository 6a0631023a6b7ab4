//! The wasmtime host for adapters: one engine ([`engine`]), the one
//! `bindgen!` ([`bindings`]), host capabilities ([`host`]; the key-value
//! store per adapter and remote, with writes held back during fills, in
//! [`kv`]), the world check
//! ([`world`]), loaded adapters and their calls ([`adapter`], reused
//! instances in [`warm`], run off the request threads on per-adapter lanes
//! by [`exec`]), the active set and hot reload ([`registry`],
//! [`watch`], the plugin directory read defensively by [`scan`]), and the
//! embedded built-ins ([`builtin`]). The plugin
//! authoring kit: `artgate plugin check` ([`check`], with golden [`case`]s
//! compared as JSON by [`render`]) and `artgate plugin new` ([`scaffold`]).

pub mod adapter;
pub mod bindings;
pub mod builtin;
pub mod case;
pub mod check;
pub mod declare;
pub mod engine;
pub mod exec;
pub mod host;
pub mod kv;
pub mod registry;
pub mod render;
pub mod scaffold;
pub mod scan;
pub mod warm;
pub mod watch;
pub mod wit_http;
pub mod world;

pub use adapter::{Adapter, ComponentFacts, Source};
pub use bindings::wit;
pub use engine::PluginEngine;
pub use host::{CallContext, HostHttp, HostUpload};
pub use kv::AdapterKv;
pub use registry::{PluginRegistry, PluginStatus};

/// A plugin failure. Request-time failures give that request a 502; load
/// failures reject the component (the previous version keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The engine could not be set up (startup only).
    #[error("plugin engine: {0}")]
    Engine(String),
    /// The component could not be compiled, linked or described.
    #[error("{0}")]
    Load(String),
    /// The call trapped.
    #[error("adapter trapped: {0}")]
    Trap(String),
    /// The call ran out of its time budget.
    #[error("adapter exceeded its time budget")]
    Timeout,
    /// The call hit the memory cap.
    #[error("adapter exceeded its memory cap: {0}")]
    MemoryCap(String),
    /// The adapter returned something the host cannot use.
    #[error("adapter returned an invalid decision: {0}")]
    BadOutput(String),
    /// The adapter already runs its maximum of concurrent calls and none
    /// finished within its queue timeout (`max_concurrent_calls` of
    /// `[plugins]` or of the adapter's `[plugins.adapter.NAME]` table).
    #[error(
        "adapter is busy: {running} calls already running (its max_concurrent_calls limit) and no slot freed within {waited:?}"
    )]
    Busy {
        /// Calls in flight when this one gave up.
        running: usize,
        /// How long it waited for a slot.
        waited: std::time::Duration,
    },
}

impl PluginError {
    /// HTTP status for a request that hit this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            PluginError::Busy { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::BAD_GATEWAY,
        }
    }

    /// Short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Engine(_) => "engine",
            PluginError::Load(_) => "load",
            PluginError::Trap(_) => "trap",
            PluginError::Timeout => "timeout",
            PluginError::MemoryCap(_) => "memory",
            PluginError::BadOutput(_) => "bad_output",
            PluginError::Busy { .. } => "busy",
        }
    }
}
