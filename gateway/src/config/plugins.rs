//! `[plugins]`: the plugin directory, the engine's limits, and the call
//! limits of each adapter (`[plugins.adapter.NAME]`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[plugins]`.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    /// `dir`: watched plugin directory (default `./plugins`). Missing is fine.
    pub dir: PathBuf,
    /// `cache_dir`: where compiled plugin code is cached (default
    /// `<storage.dir>/plugin-cache`). Only files artgate wrote are loaded.
    pub cache_dir: Option<PathBuf>,
    /// `memory_limit`: linear memory cap per plugin call (default 64 MiB).
    pub memory_limit: u64,
    /// `call_timeout`: time budget per plugin call (default 200ms).
    pub call_timeout: Duration,
    /// `reload_debounce`: quiet time after a change in the plugin dir before
    /// reloading (default 200ms).
    pub reload_debounce: Duration,
    /// `max_instances`: pooling allocator slots (default 256).
    pub max_instances: u32,
    /// `max_concurrent_calls`: calls one adapter may have in flight
    /// (default 16, at most `max_instances`); a call waits at most
    /// `queue_timeout` for a slot, then its request gets 503.
    pub max_concurrent_calls: u32,
    /// `queue_timeout`: how long a call waits for a slot under
    /// `max_concurrent_calls` (default 2s).
    pub queue_timeout: Duration,
    /// `lane_threads`: threads of each adapter's lane (default 1, at most
    /// [`MAX_LANE_THREADS`]).
    pub lane_threads: u32,
    /// `http_timeout`: budget for one `http-send` host call (default 10s).
    pub http_timeout: Duration,
    /// `http_max_body`: largest `http-send` response body (default 1 MiB).
    pub http_max_body: usize,
    /// `max_file_size`: largest file in the plugin directory that is read
    /// and compiled (default 64 MiB); a larger one is refused from its
    /// size alone, before it is opened for reading, and shown in
    /// `/plugins`.
    pub max_file_size: u64,
    /// `warm_instances`: adapter name → how many calls one instance serves
    /// before it is dropped (1: a fresh instance per call). Without an
    /// entry, adapters that declare themselves stateless reuse instances
    /// and all others get a fresh one per call. For adapters that are slow
    /// to instantiate (componentize-py), or to turn reuse off.
    pub warm_instances: BTreeMap<String, u32>,
    /// `[plugins.adapter.NAME]`: limits of one adapter (by the name its
    /// `describe` reports), each defaulting to the `[plugins]` value.
    pub adapter: BTreeMap<String, AdapterLimits>,
}

/// Most threads one adapter's lane may have: a lane is a CPU budget, and
/// an adapter is not meant to take the whole machine.
pub const MAX_LANE_THREADS: u32 = 16;

/// Whether `name` is an adapter name (or package type) as `describe` may
/// report it: `[a-z0-9_-]`, 1 to 64 characters. The one rule for adapter
/// names in configuration tables, at load and in `artgate plugin new`.
pub fn is_adapter_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The limits a call of one adapter runs under: `[plugins]`'s, or its
/// `[plugins.adapter.NAME]` table's ([`PluginsConfig::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdapterLimits {
    /// Linear memory cap per call, bytes.
    pub memory_limit: u64,
    /// Time budget per call.
    pub call_timeout: Duration,
    /// Calls in flight at once.
    pub max_concurrent_calls: u32,
    /// How long a call waits for a slot.
    pub queue_timeout: Duration,
    /// Threads of the adapter's lane (its calls run on them).
    pub lane_threads: u32,
}

impl PluginsConfig {
    /// The limits of adapter `name`'s calls.
    pub fn limits(&self, name: &str) -> AdapterLimits {
        self.adapter
            .get(name)
            .copied()
            .unwrap_or_else(|| self.default_limits())
    }

    /// The limits of adapters without a table of their own.
    pub fn default_limits(&self) -> AdapterLimits {
        AdapterLimits {
            memory_limit: self.memory_limit,
            call_timeout: self.call_timeout,
            max_concurrent_calls: self.max_concurrent_calls,
            queue_timeout: self.queue_timeout,
            lane_threads: self.lane_threads,
        }
    }

    /// The largest memory cap of any adapter: what a pooled instance slot
    /// must hold.
    pub fn max_memory_limit(&self) -> u64 {
        self.adapter
            .values()
            .map(|l| l.memory_limit)
            .fold(self.memory_limit, u64::max)
    }
}
