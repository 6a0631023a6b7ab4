//! Warm instances: a per-adapter pool of instantiated components that are
//! reused for up to N calls instead of one fresh instance per call.
//!
//! Two things give an adapter a pool:
//!
//! - **Its own declaration.** A component that carries the custom section
//!   `artgate:instances` = `stateless` ([`super::declare`]; the Rust SDK's
//!   `export_adapter!(T, stateless)`; every built-in does) promises that no
//!   call depends on what an earlier call left in memory. Its instances
//!   serve up to [`DECLARED_CALLS`] calls each, and the host holds it to a
//!   stricter rule ([`WarmPool::strict`]): an instance whose memory grew
//!   after its first call is dropped, so a call that piles up state (or
//!   simply needed more memory) never hands it on.
//! - **The operator** (`[plugins] warm_instances = { NAME = N }`): N calls
//!   per instance for any adapter (componentize-py adapters, which cannot
//!   declare themselves, save ~2 ms per call), and `NAME = 1` turns reuse
//!   off for an adapter that declared it: a fresh instance per call.
//!
//! A fresh `Store` per call is the default for every other adapter and the
//! safest: nothing survives a call. An instance goes back into the pool
//! only after a call that succeeded; any trap, timeout, memory-cap hit or
//! host-call abuse drops it, so a fault still ends with its request. Idle
//! instances are bounded per adapter ([`MAX_IDLE`]) and dropped with the
//! adapter (hot reload). Between calls the store's call context (request
//! id, key-value store, network capability) is cleared, its per-call
//! counters and time budget reset; memory the guest allocated stays and
//! keeps counting against the memory cap.
//!
//! What the host cannot see is state kept in globals without growing
//! memory: a declaration is the author's promise, and the bounds above
//! (calls per instance, growth, faults) limit how far a broken promise
//! reaches.

use super::bindings;
use super::host::{CallContext, HostState};
use std::sync::Mutex;
use wasmtime::Store;

/// Idle instances kept per adapter at most; more concurrent calls create
/// more instances, which are dropped instead of pooled afterwards.
pub const MAX_IDLE: usize = 8;

/// Calls one instance of an adapter that declared itself stateless serves
/// (unless `[plugins] warm_instances` names the adapter).
pub const DECLARED_CALLS: u32 = 10_000;

/// How calls of an adapter get instances: calls per reused instance and
/// whether the pool is strict ([`WarmPool::new`]); none means a fresh
/// instance per call. `configured` (`[plugins] warm_instances`) decides
/// when the operator named the adapter (1: fresh instances); else an
/// adapter that declared itself `stateless` gets [`DECLARED_CALLS`] calls
/// per instance in a strict pool. A declared adapter's pool stays strict
/// with a configured count too.
pub fn reuse(configured: Option<u32>, stateless: bool) -> Option<(u32, bool)> {
    match configured {
        Some(n) => (n > 1).then_some((n, stateless)),
        None => stateless.then_some((DECLARED_CALLS, true)),
    }
}

/// An instance and the store it lives in.
pub struct Instance {
    /// The store (one per instance).
    pub store: Store<HostState>,
    /// The instantiated world.
    pub bindings: bindings::Adapter,
    /// Calls this instance has served.
    pub calls: u32,
    /// Linear memory after the instance's first call (strict pools drop an
    /// instance whose memory grew beyond it).
    pub memory_after_first: Option<usize>,
}

impl Instance {
    /// A new instance that has served no call.
    pub fn new(store: Store<HostState>, bindings: bindings::Adapter) -> Instance {
        Instance {
            store,
            bindings,
            calls: 0,
            memory_after_first: None,
        }
    }
}

/// The idle instances of one adapter.
pub struct WarmPool {
    max_calls: u32,
    strict: bool,
    idle: Mutex<Vec<Instance>>,
}

impl WarmPool {
    /// A pool whose instances serve at most `max_calls` calls each. A
    /// `strict` pool (an adapter's own stateless declaration) also drops an
    /// instance whose memory grew after its first call.
    pub fn new(max_calls: u32, strict: bool) -> WarmPool {
        WarmPool {
            max_calls: max_calls.max(1),
            strict,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Whether the pool holds its instances to the stateless rule (memory
    /// may not grow after the first call).
    pub fn strict(&self) -> bool {
        self.strict
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

    /// Return an instance after a successful call. It is dropped instead
    /// when it has served its calls, grew its memory after its first call
    /// (strict pools), or the pool is full.
    pub fn give_back(&self, mut inst: Instance) {
        inst.calls += 1;
        if inst.calls >= self.max_calls {
            return;
        }
        let used = inst.store.data().limiter.used();
        match inst.memory_after_first {
            Some(first) if self.strict && used > first => return,
            Some(_) => {}
            None => inst.memory_after_first = Some(used),
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
pub(super) mod tests {
    use super::super::engine::Tier;
    use super::super::{Adapter, PluginEngine, Source, wit};
    use super::*;
    use std::sync::Arc;

    pub(in crate::plugins) fn remote(mode: &str) -> wit::RemoteInfo {
        remote_with(mode, &[])
    }

    fn remote_with(mode: &str, extra: &[(&str, &str)]) -> wit::RemoteInfo {
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
            options: [("mode", mode)]
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            has_credentials: false,
        }
    }

    pub(in crate::plugins) fn request() -> wit::Request {
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

    pub(in crate::plugins) fn hostile_wasm() -> Arc<[u8]> {
        let wasm = std::fs::read(concat!(env!("ARTGATE_ADAPTERS_DIR"), "/hostile.wasm"))
            .expect("hostile.wasm");
        Arc::from(wasm)
    }

    async fn load(warm_instances: &[(&str, u32)]) -> Adapter {
        let mut cfg = crate::config::Config::default_config()
            .expect("default config")
            .plugins;
        for (name, n) in warm_instances {
            cfg.warm_instances.insert(name.to_string(), *n);
        }
        let engine = PluginEngine::new(&cfg, None).expect("engine");
        let a = Adapter::load(engine, hostile_wasm(), Source::BuiltIn)
            .await
            .expect("load");
        // Reuse is counted on one code tier: wait for the optimised code.
        optimized(&a).await;
        a
    }

    /// Poll until the adapter runs optimised code (bounded: a debug build
    /// compiles the hostile adapter with Cranelift in about a second).
    pub(in crate::plugins) async fn optimized(a: &Adapter) {
        for _ in 0..3000 {
            if a.tier() == Tier::Optimized {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the optimised code was never swapped in");
    }

    /// The body of a direct response (mode `count` answers `call N`).
    pub(in crate::plugins) async fn answer(a: &Adapter, remote: &wit::RemoteInfo) -> String {
        match a.plan(CallContext::idle(), remote, &request()).await {
            Ok(wit::Decision::Respond(r)) => String::from_utf8_lossy(&r.body).into_owned(),
            other => panic!("expected a direct response, got {other:?}"),
        }
    }

    /// An adapter that declared itself stateless reuses instances by
    /// default; an instance whose memory grew after its first call, or
    /// whose call trapped, is not handed on; `warm_instances = 1` gives
    /// fresh instances back. The hostile adapter's `count` mode keeps a
    /// counter in a global (a broken promise), which shows which calls
    /// shared an instance.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn declared_stateless_reuses_until_memory_grows_or_a_call_fails() {
        let a = load(&[]).await;
        assert!(a.declared.stateless);
        assert_eq!(a.warm_calls(), Some(DECLARED_CALLS));
        let count = remote("count");
        assert_eq!(answer(&a, &count).await, "call 1");
        assert_eq!(answer(&a, &count).await, "call 2", "the instance is reused");
        // A call that grows memory (beyond what the first call left) ends
        // its instance's reuse.
        let alloc = remote_with("alloc", &[("mib", "4")]);
        assert_eq!(answer(&a, &alloc).await, "allocated 4 MiB");
        assert_eq!(a.warm_idle(), 0, "grown instance dropped");
        assert_eq!(answer(&a, &count).await, "call 1", "a new instance");
        assert_eq!(answer(&a, &count).await, "call 2");
        // A trap drops the instance it happened on.
        assert!(
            a.plan(CallContext::idle(), &remote("trap"), &request())
                .await
                .is_err()
        );
        assert_eq!(
            answer(&a, &count).await,
            "call 1",
            "a new instance after a trap"
        );

        // The operator turns reuse off for this adapter.
        let fresh = load(&[("hostile", 1)]).await;
        assert!(fresh.declared.stateless);
        assert_eq!(fresh.warm_calls(), None);
        for _ in 0..3 {
            assert_eq!(answer(&fresh, &count).await, "call 1");
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
        optimized(&a).await;
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
