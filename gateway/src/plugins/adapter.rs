//! One loaded adapter: its compiled component, pre-linked once into an
//! `InstancePre`, and the typed calls into it. Every call gets a fresh
//! `Store` (and so a fresh instance from the pooling allocator), a memory
//! cap and a time budget; a fault is returned as a [`PluginError`] for that
//! request only. Adapters that declare themselves stateless, and those
//! named in `[plugins] warm_instances`, reuse an instance for a bounded
//! number of successful calls instead ([`super::warm`]).
//!
//! Each typed call counts itself in the gateway's metrics (calls, seconds,
//! failures by kind) once the registry has attached them
//! ([`Adapter::counted_by`]); callers count only what they reject in a
//! returned value (`bad_output`).
//!
//! Calls never run on the caller's thread: each is spawned onto the
//! adapter's lane ([`super::exec`]) with owned copies of its (small)
//! arguments, and the caller awaits the result.

use super::PluginError;
use super::bindings::{AdapterPre, wit};
use super::declare::Declarations;
use super::engine::{PluginEngine, Tier};
use super::exec::Lane;
use super::host::{BoxFuture, CallBudget, CallContext, HostState};
use super::warm::{Instance, WarmPool};
use super::world;
use crate::config::{AdapterLimits, is_adapter_name};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

/// Where an adapter was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Embedded in the binary.
    BuiltIn,
    /// A `.wasm` file in the plugin directory.
    Dir(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("built-in"),
            Source::Dir(p) => write!(f, "{}", p.display()),
        }
    }
}

/// What the gateway reads from a component's bytes besides its code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentFacts {
    /// sha256 of the bytes (hex).
    pub sha256: String,
    /// What the component declares about itself ([`super::declare`]).
    pub declared: Declarations,
}

impl ComponentFacts {
    /// Hash the bytes and read the declarations.
    pub fn of(wasm: &[u8]) -> ComponentFacts {
        ComponentFacts {
            sha256: hex::encode(Sha256::digest(wasm)),
            declared: super::declare::read(wasm),
        }
    }
}

/// A compiled, pre-linked, smoke-tested adapter.
pub struct Adapter {
    /// What `describe` returned when it was loaded.
    pub info: wit::AdapterInfo,
    /// sha256 of the component bytes (hex).
    pub sha256: String,
    /// What the component declares about itself ([`super::declare`]):
    /// stateless (instances are reused), an `on-response` that accepts
    /// every answer ([`Adapter::on_response`] then makes no call).
    pub declared: Declarations,
    /// Where it came from.
    pub source: Source,
    /// What a call needs on the lane: the baseline code until the
    /// optimised code replaces it ([`Adapter::load`]).
    core: Arc<ArcSwap<Core>>,
    /// Where calls are counted; none until [`Adapter::counted_by`].
    metrics: Option<Arc<Metrics>>,
    /// The lane calls run on (the loading lane until `describe` named the
    /// adapter).
    lane: Arc<Lane>,
}

/// The pre-linked component, the engine, and how its calls run, shared
/// with running calls. Replaced whole: once `describe` has named the
/// adapter, and when the optimised code replaces the baseline code (its
/// reused instances go with the old core).
struct Core {
    pre: AdapterPre<HostState>,
    engine: Arc<PluginEngine>,
    /// Which compiler built `pre`'s code (and so which engine its stores
    /// belong to).
    tier: Tier,
    /// The adapter's call limits (the engine's defaults until `describe`
    /// has named it).
    limits: AdapterLimits,
    /// Reused instances of this code (declared stateless, or `[plugins]
    /// warm_instances`); none: a fresh instance per call.
    warm: Option<Arc<WarmPool>>,
}

impl Core {
    /// Check a component compiled by `tier`'s engine against the world
    /// and pre-link it.
    fn link(
        engine: Arc<PluginEngine>,
        component: &Component,
        tier: Tier,
    ) -> Result<Core, PluginError> {
        world::check(engine.engine_for(tier), component).map_err(PluginError::Load)?;
        let instance_pre = engine
            .linker_for(tier)
            .instantiate_pre(component)
            .map_err(|e| PluginError::Load(link_error(&e)))?;
        let pre = AdapterPre::new(instance_pre).map_err(|e| PluginError::Load(link_error(&e)))?;
        Ok(Core {
            pre,
            limits: engine.default_limits(),
            engine,
            tier,
            warm: None,
        })
    }

    /// This code run as `old` runs: its limits, and an empty pool like
    /// its pool.
    fn run_as(self, old: &Core) -> Core {
        Core {
            limits: old.limits,
            warm: old
                .warm
                .as_ref()
                .map(|p| Arc::new(WarmPool::new(p.max_calls(), p.strict()))),
            ..self
        }
    }
}

/// One call on an instance: borrows the instance for the call's duration.
trait CallFn<T>: for<'a> FnOnce(&'a mut Instance) -> BoxFuture<'a, wasmtime::Result<T>> {}
impl<T, F> CallFn<T> for F where
    F: for<'a> FnOnce(&'a mut Instance) -> BoxFuture<'a, wasmtime::Result<T>>
{
}

/// Pins a call closure to the higher-ranked signature [`Adapter::call`]
/// needs (closure signatures are not inferred as higher-ranked otherwise).
fn call_fn<T, F>(f: F) -> F
where
    F: for<'a> FnOnce(&'a mut Instance) -> BoxFuture<'a, wasmtime::Result<T>>,
{
    f
}

/// Lane name of adapters being loaded (before `describe` names them).
const LOADING_LANE: &str = "(loading)";

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("source", &self.source)
            .finish()
    }
}

impl Adapter {
    /// Hash and compile (on a blocking thread: both take time in
    /// proportion to the size), pre-link and call `describe`. Any failure
    /// rejects the component.
    ///
    /// Code not in the compiled-code cache comes from the baseline
    /// compiler ([`PluginEngine::compile_first`]), so the adapter serves
    /// at once; a thread then compiles it with Cranelift (which caches the
    /// code) and swaps the optimised code in. Calls in flight finish on the
    /// code they started with; reused instances of the baseline code are
    /// dropped. If the adapter is dropped first (a newer version, or
    /// shutdown), the optimised code is thrown away.
    pub async fn load(
        engine: Arc<PluginEngine>,
        wasm: Arc<[u8]>,
        source: Source,
    ) -> Result<Adapter, PluginError> {
        let eng = engine.clone();
        let bytes = wasm.clone();
        let (facts, component, tier) = tokio::task::spawn_blocking(move || {
            let facts = ComponentFacts::of(&bytes);
            eng.compile_first(&bytes).map(|(c, tier)| (facts, c, tier))
        })
        .await
        .map_err(|e| PluginError::Load(format!("compile task failed: {e}")))??;
        let core = Core::link(engine, &component, tier)?;
        let adapter = Self::assemble(core, facts, source).await?;
        if tier == Tier::Baseline {
            adapter.optimize_in_background(wasm);
        }
        Ok(adapter)
    }

    /// Compile `wasm` with Cranelift on a thread of its own and swap the
    /// code in, unless the adapter is gone by then. The optimised code is
    /// linked against the same world check, but `describe` is not called
    /// again: it is the same component. Without a thread the baseline code
    /// keeps serving.
    fn optimize_in_background(&self, wasm: Arc<[u8]>) {
        let cell = Arc::downgrade(&self.core);
        let engine = self.core.load().engine.clone();
        let name = self.info.name.clone();
        std::thread::Builder::new()
            .name("artgate-optimize".into())
            .spawn(move || {
                let started = Instant::now();
                let Some(compiled) = engine.compile_optimized(&wasm, || cell.strong_count() > 0)
                else {
                    return;
                };
                let optimized =
                    compiled.and_then(|c| Core::link(engine.clone(), &c, Tier::Optimized));
                let Some(cell) = cell.upgrade() else {
                    return;
                };
                match optimized {
                    Ok(core) => {
                        let core = core.run_as(&cell.load());
                        cell.store(Arc::new(core));
                        tracing::info!(adapter = %name, seconds = started.elapsed().as_secs_f64(), "optimised code swapped in");
                    }
                    Err(e) => {
                        tracing::warn!(adapter = %name, error = %e, "optimising compile failed; the baseline code keeps serving");
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| {
                tracing::warn!(adapter = %self.info.name, error = %e, "cannot start the optimising compile thread; the baseline code keeps serving");
            });
    }

    /// Check a component compiled by the optimising engine against the
    /// world ([`world::check`]), pre-link it and call `describe`. `facts`
    /// are what its bytes say ([`ComponentFacts::of`]). `artgate plugin
    /// check` uses this after compiling itself.
    pub async fn from_component(
        engine: Arc<PluginEngine>,
        component: &Component,
        facts: ComponentFacts,
        source: Source,
    ) -> Result<Adapter, PluginError> {
        let core = Core::link(engine, component, Tier::Optimized)?;
        Self::assemble(core, facts, source).await
    }

    /// Call `describe` on a linked core and set the adapter up under the
    /// name it returns (limits, lane, instance reuse).
    async fn assemble(
        core: Core,
        facts: ComponentFacts,
        source: Source,
    ) -> Result<Adapter, PluginError> {
        let engine = core.engine.clone();
        let mut adapter = Adapter {
            info: wit::AdapterInfo {
                name: String::new(),
                version: String::new(),
                package_types: Vec::new(),
            },
            sha256: facts.sha256,
            declared: facts.declared,
            source,
            lane: engine.lane(LOADING_LANE)?,
            core: Arc::new(ArcSwap::from_pointee(core)),
            metrics: None,
        };
        let ctx = CallContext {
            adapter: Arc::from("(loading)"),
            request_id: Arc::from("load"),
            kv: None,
            http: None,
            gateway_url: None,

            upload: None,
        };
        let info = adapter.describe(ctx).await?;
        validate_info(&info)?;
        let loading = adapter.core.load_full();
        adapter.core.store(Arc::new(Core {
            pre: loading.pre.clone(),
            engine: engine.clone(),
            tier: loading.tier,
            limits: engine.limits(&info.name),
            warm: super::warm::reuse(
                engine.warm_instances(&info.name),
                adapter.declared.stateless,
            )
            .map(|(n, strict)| Arc::new(WarmPool::new(n, strict))),
        }));
        adapter.lane = engine.lane(&info.name)?;
        adapter.info = info;
        Ok(adapter)
    }

    /// The adapter's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The limits this adapter's calls run under (`[plugins.adapter.NAME]`
    /// or `[plugins]`).
    pub fn limits(&self) -> AdapterLimits {
        self.core.load().limits
    }

    /// Which compiler's code calls run now: baseline until the optimised
    /// code is swapped in.
    pub fn tier(&self) -> Tier {
        self.core.load().tier
    }

    /// Calls per warm instance, when this adapter reuses instances.
    pub fn warm_calls(&self) -> Option<u32> {
        self.core.load().warm.as_ref().map(|p| p.max_calls())
    }

    /// Idle warm instances right now (0 without a pool).
    pub fn warm_idle(&self) -> usize {
        self.core.load().warm.as_ref().map_or(0, |p| p.idle())
    }

    /// Linear memory held by idle warm instances, in bytes (0 without a
    /// pool).
    pub fn warm_memory(&self) -> usize {
        self.core
            .load()
            .warm
            .as_ref()
            .map_or(0, |p| p.idle_memory())
    }

    /// The same adapter with its calls counted in `metrics` (the registry
    /// attaches the gateway's once an adapter has loaded, so the load-time
    /// `describe` is not counted).
    pub fn counted_by(mut self, metrics: Arc<Metrics>) -> Adapter {
        self.metrics = Some(metrics);
        self
    }

    /// Run `f`, the WIT function `function`, on an instance of this
    /// adapter on its lane: a warm instance when `pooled` and the adapter
    /// has a pool, else a fresh one. The call, its duration and its failure
    /// kind are counted once metrics are attached.
    async fn call<T, F>(
        &self,
        ctx: CallContext,
        function: &'static str,
        pooled: bool,
        f: F,
    ) -> Result<T, PluginError>
    where
        T: Send + 'static,
        F: CallFn<T> + Send + 'static,
    {
        let started = Instant::now();
        let core = self.core.load_full();
        // `http-send` runs on the caller's runtime, not on the lane.
        let io = tokio::runtime::Handle::try_current().ok();
        let r = self
            .lane
            .run(async move {
                let warm = core.warm.as_deref().filter(|_| pooled);
                let mut inst = core.acquire(ctx, io, warm).await?;
                let result = f(&mut inst).await;
                release(inst, result, warm)
            })
            .await;
        if let Some(m) = &self.metrics {
            m.plugin_call(self.name(), function, started.elapsed().as_secs_f64());
            if let Err(e) = &r {
                m.plugin_error(self.name(), e.kind());
            }
        }
        r
    }

    /// `describe()`, always on a fresh instance.
    pub async fn describe(&self, ctx: CallContext) -> Result<wit::AdapterInfo, PluginError> {
        // Never pooled: describe runs at load, before the pool exists.
        self.call(
            ctx,
            "describe",
            false,
            call_fn(|inst: &mut Instance| {
                Box::pin(async move {
                    inst.bindings
                        .artgate_adapter_handler()
                        .call_describe(&mut inst.store)
                        .await
                })
            }),
        )
        .await
    }

    /// `plan(remote, req)`.
    pub async fn plan(
        &self,
        ctx: CallContext,
        remote: &wit::RemoteInfo,
        req: &wit::Request,
    ) -> Result<wit::Decision, PluginError> {
        let (remote, req) = (remote.clone(), req.clone());
        self.call(
            ctx,
            "plan",
            true,
            call_fn(move |inst: &mut Instance| {
                Box::pin(async move {
                    inst.bindings
                        .artgate_adapter_handler()
                        .call_plan(&mut inst.store, &remote, &req)
                        .await
                })
            }),
        )
        .await
    }

    /// `on-response(remote, req, sent, resp, attempt)`; an adapter that
    /// declared it accepts every answer is not called (no lane hop, no
    /// instance: a miss's first byte waits for one adapter call, `plan`).
    pub async fn on_response(
        &self,
        ctx: CallContext,
        remote: &wit::RemoteInfo,
        req: &wit::Request,
        sent: &wit::UpstreamRequest,
        resp: &wit::UpstreamResponse,
        attempt: u32,
    ) -> Result<wit::AfterHeaders, PluginError> {
        if self.declared.accepts_every_response {
            return Ok(wit::AfterHeaders::Accept);
        }
        let (remote, req, sent, resp) = (remote.clone(), req.clone(), sent.clone(), resp.clone());
        self.call(
            ctx,
            "on_response",
            true,
            call_fn(move |inst: &mut Instance| {
                Box::pin(async move {
                    inst.bindings
                        .artgate_adapter_handler()
                        .call_on_response(&mut inst.store, &remote, &req, &sent, &resp, attempt)
                        .await
                })
            }),
        )
        .await
    }

    /// `inspect-body(remote, req, resp, body)`. The body is bounded by the
    /// caller (the adapter's own limit or `max_request_body_inspect`).
    pub async fn inspect_body(
        &self,
        ctx: CallContext,
        remote: &wit::RemoteInfo,
        req: &wit::Request,
        resp: &wit::UpstreamResponse,
        body: &[u8],
    ) -> Result<wit::BodyVerdict, PluginError> {
        let (remote, req, resp, body) = (remote.clone(), req.clone(), resp.clone(), body.to_vec());
        self.call(
            ctx,
            "inspect_body",
            true,
            call_fn(move |inst: &mut Instance| {
                Box::pin(async move {
                    inst.bindings
                        .artgate_adapter_handler()
                        .call_inspect_body(&mut inst.store, &remote, &req, &resp, &body)
                        .await
                })
            }),
        )
        .await
    }
}

impl Core {
    fn new_store(&self, ctx: CallContext) -> Store<HostState> {
        let mut store = Store::new(
            self.engine.engine_for(self.tier),
            HostState::new(ctx, self.limits.memory_limit),
        );
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        let budget = Arc::new(std::sync::Mutex::new(CallBudget {
            started: Instant::now(),
            host_wait: Duration::ZERO,
            limit: self.limits.call_timeout,
            exceeded: false,
        }));
        store.data_mut().budget = Some(budget.clone());
        store.epoch_deadline_callback(move |_ctx| {
            let Ok(mut b) = budget.lock() else {
                return Ok(UpdateDeadline::Interrupt);
            };
            let spent = b.started.elapsed().saturating_sub(b.host_wait);
            if spent >= b.limit {
                b.exceeded = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Yield to the lane's runtime every tick so a busy call
            // cannot starve the adapter's other calls.
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// A store and instance for one call: an idle warm instance from
    /// `warm` when one is free, else a fresh instance. `io` is the runtime
    /// `http-send` runs on.
    async fn acquire(
        &self,
        ctx: CallContext,
        io: Option<tokio::runtime::Handle>,
        warm: Option<&WarmPool>,
    ) -> Result<Instance, PluginError> {
        if let Some(pool) = warm
            && let Some(mut inst) = pool.take()
        {
            begin_call(&mut inst.store, ctx);
            inst.store.data_mut().io = io;
            return Ok(inst);
        }
        let mut store = self.new_store(ctx);
        store.data_mut().io = io;
        match self.pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok(Instance::new(store, bindings)),
            Err(e) => Err(fault(&store, &e)),
        }
    }
}

/// Finish a call: an instance whose call succeeded goes back to `warm`
/// (the pool of the code it runs, when the call was pooled); every other
/// instance is dropped here.
fn release<T>(
    inst: Instance,
    result: wasmtime::Result<T>,
    warm: Option<&WarmPool>,
) -> Result<T, PluginError> {
    let out = finish(&inst.store, result);
    if out.is_ok()
        && let Some(pool) = warm
    {
        pool.give_back(inst);
    }
    out
}

/// Prepare a pooled store for its next call: the new context, a fresh time
/// budget and epoch deadline, the memory-cap flag cleared.
fn begin_call(store: &mut Store<HostState>, ctx: CallContext) {
    let state = store.data_mut();
    state.set_context(ctx);
    state.limiter.hit = false;
    if let Some(b) = &state.budget
        && let Ok(mut b) = b.lock()
    {
        b.started = Instant::now();
        b.host_wait = Duration::ZERO;
        b.exceeded = false;
    }
    store.set_epoch_deadline(1);
}

/// Turn a call's outcome into a typed error: timeout, memory cap or trap.
fn finish<T>(store: &Store<HostState>, result: wasmtime::Result<T>) -> Result<T, PluginError> {
    result.map_err(|e| fault(store, &e))
}

/// Classify a failed call: memory cap, timeout, or trap.
fn fault(store: &Store<HostState>, e: &wasmtime::Error) -> PluginError {
    let state = store.data();
    if state.limiter.hit {
        return PluginError::MemoryCap(format!("{e:#}"));
    }
    let timed_out = state
        .budget
        .as_ref()
        .and_then(|b| b.lock().ok().map(|b| b.exceeded))
        .unwrap_or(false);
    if timed_out
        || matches!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        )
    {
        return PluginError::Timeout;
    }
    PluginError::Trap(trap_text(e))
}

/// A trap's message with its wasm backtrace, without the host's Rust stack
/// (captured when `RUST_BACKTRACE` is set; it says nothing about the
/// adapter).
fn trap_text(e: &wasmtime::Error) -> String {
    let text = format!("{e:?}");
    match text.find("\n\nStack backtrace:") {
        Some(i) => text[..i].trim_end().to_owned(),
        None => text.trim_end().to_owned(),
    }
}

fn link_error(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    if text.contains("artgate:adapter") {
        format!(
            "the component does not match the artgate:adapter@0.1.0 world this gateway provides: {text}"
        )
    } else {
        format!("the component imports something the host does not provide: {text}")
    }
}

fn validate_info(info: &wit::AdapterInfo) -> Result<(), PluginError> {
    if !is_adapter_name(&info.name) {
        return Err(PluginError::Load(format!(
            "describe() returned an invalid adapter name {:?} (use [a-z0-9_-], at most 64)",
            info.name
        )));
    }
    if info.package_types.is_empty() {
        return Err(PluginError::Load(format!(
            "adapter {:?} declares no package types",
            info.name
        )));
    }
    if let Some(bad) = info.package_types.iter().find(|p| !is_adapter_name(p)) {
        return Err(PluginError::Load(format!(
            "adapter {:?} declares an invalid package type {bad:?}",
            info.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::warm::tests::{answer, hostile_wasm, optimized, remote, request};
    use super::*;

    /// A component missing from the compiled-code cache serves from the
    /// baseline compiler at once; the Cranelift code replaces it in the
    /// background and is cached, so the next load starts optimised.
    /// Instances of the baseline code are not reused after the swap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The held lock is waited on by the optimising thread only, never by a
    // task of this runtime.
    #[allow(clippy::await_holding_lock)]
    async fn baseline_code_serves_first_and_optimised_code_replaces_it() {
        let cache = tempfile::tempdir().expect("tempdir");
        let cfg = crate::config::Config::default_config()
            .expect("default config")
            .plugins;
        let engine = PluginEngine::new(&cfg, Some(cache.path().to_owned())).expect("engine");
        // The optimising compile waits until the baseline checks are done.
        let hold = engine.hold_optimizing();
        let a = Adapter::load(engine.clone(), hostile_wasm(), Source::BuiltIn)
            .await
            .expect("load");
        assert_eq!(a.tier(), Tier::Baseline);
        let count = remote("count");
        assert_eq!(answer(&a, &count).await, "call 1");
        assert_eq!(
            answer(&a, &count).await,
            "call 2",
            "baseline instance reused"
        );
        drop(hold);
        optimized(&a).await;
        assert_eq!(
            answer(&a, &count).await,
            "call 1",
            "a new instance of the optimised code"
        );
        assert_eq!(answer(&a, &count).await, "call 2");
        assert!(
            a.plan(CallContext::idle(), &remote("trap"), &request())
                .await
                .is_err(),
            "optimised code traps as the baseline did"
        );
        // The optimised code is in the cache: another engine loads it
        // without a baseline stage.
        let again = PluginEngine::new(&cfg, Some(cache.path().to_owned())).expect("engine");
        let b = Adapter::load(again, hostile_wasm(), Source::BuiltIn)
            .await
            .expect("load");
        assert_eq!(b.tier(), Tier::Optimized);
        assert_eq!(answer(&b, &count).await, "call 1");
    }
}
