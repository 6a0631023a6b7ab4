//! Warm instances: an opt-in, per-adapter pool of instantiated components
//! that are reused for up to N calls (`[plugins] warm_instances`).
//!
//! A fresh `Store` per call is the default and the safest: nothing survives
//! a call. Components that are slow to instantiate (a componentize-py
//! component initialises a Python interpreter snapshot: ~18 MB, ~2 ms per
//! instantiation) can instead keep an instance and its store for a bounded
//! number of calls. An instance goes back into the pool only after a call
//! that succeeded; any trap, timeout, memory-cap hit or host-call abuse drops
//! it, so a fault still ends with its request. Idle instances are bounded
//! per adapter ([`MAX_IDLE`]) and dropped with the adapter (hot reload).
//! Between calls the store's call context (request id, key-value store,
//! network capability) is cleared, its per-call counters and time budget
//! reset; memory the guest allocated stays and keeps counting against the
//! memory cap.

use super::bindings;
use super::host::{CallContext, HostState};
use std::sync::Mutex;
use wasmtime::Store;

/// Idle instances kept per adapter at most; more concurrent calls create
/// more instances, which are dropped instead of pooled afterwards.
pub const MAX_IDLE: usize = 8;

/// An instance and the store it lives in.
pub struct Instance {
    /// The store (one per instance).
    pub store: Store<HostState>,
    /// The instantiated world.
    pub bindings: bindings::Adapter,
    /// Calls this instance has served.
    pub calls: u32,
}

/// The idle instances of one adapter.
pub struct WarmPool {
    max_calls: u32,
    idle: Mutex<Vec<Instance>>,
}

impl WarmPool {
    /// A pool whose instances serve at most `max_calls` calls each.
    pub fn new(max_calls: u32) -> WarmPool {
        WarmPool {
            max_calls: max_calls.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Calls per instance.
    pub fn max_calls(&self) -> u32 {
        self.max_calls
    }

    /// An idle instance, if any (most recently used first: its memory is
    /// the warmest).
    pub fn take(&self) -> Option<Instance> {
        self.idle.lock().ok()?.pop()
    }

    /// Return an instance after a successful call. It is dropped when it
    /// has served its calls or the pool is full.
    pub fn give_back(&self, mut inst: Instance) {
        inst.calls += 1;
        if inst.calls >= self.max_calls {
            return;
        }
        // Drop the request's capabilities while idle.
        inst.store.data_mut().set_context(CallContext::idle());
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(inst);
        }
    }

    /// Number of idle instances (for tests and metrics).
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Linear memory held by the idle instances, in bytes.
    pub fn idle_memory(&self) -> usize {
        self.idle
            .lock()
            .map(|i| i.iter().map(|w| w.store.data().limiter.used()).sum())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Adapter, PluginEngine, Source, wit};
    use super::*;
    use std::sync::Arc;

    fn remote(mode: &str) -> wit::RemoteInfo {
        wit::RemoteInfo {
            name: "h".into(),
            package: "hostile".into(),
            mode: wit::RemoteMode::PullThrough,
            upstreams: vec!["http://127.0.0.1:9".into()],
            mutable_ttl_secs: 60,
            negative_ttl_secs: 0,
            check_mutable_updates: false,
            immutable_patterns: Vec::new(),
            mutable_patterns: Vec::new(),
            options: vec![("mode".into(), mode.into())],
            has_credentials: false,
        }
    }

    fn request() -> wit::Request {
        wit::Request {
            id: "t".into(),
            kind: wit::RouteKind::RemoteApi,
            method: "GET".into(),
            path: "x".into(),
            query: None,
            headers: Vec::new(),
            body: None,
            body_too_large: false,
        }
    }

    /// Instances go back to the pool after successful calls, leave it after
    /// `max_calls`, and a trap drops the instance it happened on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_reuses_until_max_calls_and_drops_after_faults() {
        let mut cfg = crate::config::Config::default_config()
            .expect("default config")
            .plugins;
        cfg.warm_instances.insert("hostile".into(), 3);
        let engine = PluginEngine::new(&cfg, None).expect("engine");
        let wasm = std::fs::read(concat!(env!("ARTGATE_ADAPTERS_DIR"), "/hostile.wasm"))
            .expect("hostile.wasm");
        let a = Adapter::load(engine, Arc::from(wasm), Source::BuiltIn)
            .await
            .expect("load");
        assert_eq!(a.warm_calls(), Some(3));
        assert_eq!(a.warm_idle(), 0, "describe never pools");
        let ok = remote("ok");
        let trap = remote("trap");
        let req = request();
        // Calls 1 and 2 on one instance; the third retires it.
        for expected_idle in [1, 1, 0, 1] {
            a.plan(CallContext::idle(), &ok, &req).await.expect("ok");
            assert_eq!(a.warm_idle(), expected_idle);
        }
        // A trap takes the idle instance and drops it.
        assert!(a.plan(CallContext::idle(), &trap, &req).await.is_err());
        assert_eq!(a.warm_idle(), 0);
        a.plan(CallContext::idle(), &ok, &req)
            .await
            .expect("ok after a trap");
        assert_eq!(a.warm_idle(), 1);
    }
}
