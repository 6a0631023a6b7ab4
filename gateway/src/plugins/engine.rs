//! The wasmtime engines: pooling allocation, epoch interruption driven by
//! a ticker thread, a cache of compiled code in the storage directory, and
//! the per-adapter lanes calls run on ([`Executor`]).
//!
//! There are two engines with the same settings but their compiler
//! ([`Tier`]): Cranelift, whose optimised code every call should run, and
//! Winch, a baseline compiler about 8× faster whose code runs slower. A
//! component that is not in the compiled-code cache is first compiled by
//! Winch, so a new adapter serves within tens of milliseconds instead of
//! after a Cranelift compile of half a second or more
//! ([`PluginEngine::compile_first`]); its adapter swaps in the Cranelift
//! code once that is built in the background ([`super::adapter`]). Only
//! Cranelift code is cached.
//!
//! Compiled code is only ever loaded from files this process (or an earlier
//! artgate) wrote into its own cache directory, named by the sha256 of the
//! component bytes and the engine's compatibility hash. Precompiled files in
//! the plugin directory are never loaded: deserialising is arbitrary code
//! execution.

use super::PluginError;
use super::exec::{Executor, Lane};
use super::host::HostState;
use crate::config::{AdapterLimits, PluginsConfig};
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

/// How often the epoch advances; the unit of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each linear memory kept resident between the instances that
/// use a pool slot (a Rust adapter's whole memory; the start of a
/// componentize-py one's). At most `max_unused_warm_slots` slots hold them.
const KEEP_RESIDENT_MEMORY: usize = 2 << 20;

/// Bytes of each table kept resident between instances.
const KEEP_RESIDENT_TABLES: usize = 64 << 10;

/// Bytes of each async stack kept resident between calls.
const KEEP_RESIDENT_STACK: usize = 128 << 10;

/// Which compiler produced a component's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Winch: compiled fast, runs slower; replaced in the background.
    Baseline,
    /// Cranelift: the code every call should run.
    Optimized,
}

impl Tier {
    /// `baseline` or `optimized`, as `GET /plugins` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }
}

/// Where [`PluginEngine::precompile`] left a component's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precompiled {
    /// The file in the compiled-code cache.
    pub path: PathBuf,
    /// Whether it was compiled now (false: it was there already).
    pub fresh: bool,
}

/// The shared engines, linkers and limits every plugin instance is created
/// with.
pub struct PluginEngine {
    /// Cranelift: the optimising engine.
    engine: Engine,
    linker: Linker<HostState>,
    /// Winch: the baseline engine and its linker (x86_64 only, where
    /// Winch is a tier-1 compiler; elsewhere every compile is Cranelift's).
    baseline: Option<(Engine, Linker<HostState>)>,
    cache_dir: Option<PathBuf>,
    /// The plugin configuration (limits, `warm_instances`, file size).
    cfg: PluginsConfig,
    /// Per-adapter lanes (threads and call slots) calls run on.
    exec: Executor,
    /// Held by a background optimising compile, so they run one at a time
    /// (each already uses every core; six at once after a cold start would
    /// only multiply the memory they need).
    optimizing: std::sync::Mutex<()>,
    stop: Arc<AtomicBool>,
}

impl PluginEngine {
    /// Build the engine from the plugin configuration and start the epoch
    /// ticker thread (stopped when the engine is dropped).
    pub fn new(cfg: &PluginsConfig, cache_dir: Option<PathBuf>) -> Result<Arc<Self>, PluginError> {
        let engine = new_engine(cfg, Strategy::Cranelift)?;
        let mut linker = Linker::new(&engine);
        super::host::add_to_linker(&mut linker)?;
        let baseline = if cfg!(target_arch = "x86_64") {
            match new_engine(cfg, Strategy::Winch) {
                Ok(e) => {
                    let mut l = Linker::new(&e);
                    super::host::add_to_linker(&mut l)?;
                    Some((e, l))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no baseline compiler: new adapters wait for Cranelift");
                    None
                }
            }
        } else {
            None
        };

        let stop = Arc::new(AtomicBool::new(false));
        let mut ticked = vec![engine.weak()];
        ticked.extend(baseline.as_ref().map(|(e, _)| e.weak()));
        spawn_ticker(ticked, stop.clone())?;

        Ok(Arc::new(PluginEngine {
            engine,
            linker,
            baseline,
            cache_dir,
            cfg: cfg.clone(),
            exec: Executor::default(),
            optimizing: std::sync::Mutex::new(()),
            stop,
        }))
    }

    /// The call limits of adapter `name` (`[plugins.adapter.NAME]`, else
    /// `[plugins]`'s).
    pub fn limits(&self, name: &str) -> AdapterLimits {
        self.cfg.limits(name)
    }

    /// The call limits of adapters without a `[plugins.adapter.NAME]`
    /// table (and of every adapter while `describe` names it at load).
    pub fn default_limits(&self) -> AdapterLimits {
        self.cfg.default_limits()
    }

    /// Largest plugin-directory file read and compiled (`[plugins]
    /// max_file_size`).
    pub fn max_file_size(&self) -> u64 {
        self.cfg.max_file_size
    }

    /// The optimising (Cranelift) engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine whose compiler is `tier` (the optimising one when there
    /// is no baseline engine; no component is baseline-compiled then).
    pub fn engine_for(&self, tier: Tier) -> &Engine {
        match (tier, &self.baseline) {
            (Tier::Baseline, Some((e, _))) => e,
            _ => &self.engine,
        }
    }

    /// The linker of the engine whose compiler is `tier`.
    pub fn linker_for(&self, tier: Tier) -> &Linker<HostState> {
        match (tier, &self.baseline) {
            (Tier::Baseline, Some((_, l))) => l,
            _ => &self.linker,
        }
    }

    /// `[plugins] warm_instances` for adapter `name`: calls per instance
    /// (1: a fresh instance per call), none when it is not named
    /// ([`super::warm::reuse`] decides then).
    pub fn warm_instances(&self, name: &str) -> Option<u32> {
        self.cfg.warm_instances.get(name).copied()
    }

    /// Every adapter lane's name, calls in flight and calls waiting for a
    /// slot (not the lane adapters are loaded on).
    pub fn lane_loads(&self) -> Vec<(String, usize, usize)> {
        self.exec.loads()
    }

    /// The lane adapter `name`'s calls run on ([`super::exec`]).
    pub fn lane(&self, name: &str) -> Result<Arc<Lane>, PluginError> {
        self.exec.lane(name, &self.limits(name))
    }

    /// Compile component bytes with Cranelift, using the compiled-code
    /// cache when it holds an entry for exactly these bytes and this
    /// engine.
    pub fn compile(&self, wasm: &[u8]) -> Result<Component, PluginError> {
        match self.cached(wasm)? {
            Some(c) => Ok(c),
            None => self.compile_and_cache(wasm).map(|(c, _)| c),
        }
    }

    /// Compile with Cranelift (the bytes are known to be a component, and
    /// not in the cache) and write the code into the cache, if there is
    /// one; a failed write is logged and returned beside the code.
    fn compile_and_cache(
        &self,
        wasm: &[u8],
    ) -> Result<(Component, Option<std::io::Error>), PluginError> {
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| PluginError::Load(format!("compile failed: {e:#}")))?;
        let Some(dir) = &self.cache_dir else {
            return Ok((component, None));
        };
        let written = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomic(dir, &self.cache_path(dir, wasm), &bytes));
        if let Err(e) = &written {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write compiled-code cache");
        }
        Ok((component, written.err()))
    }

    /// Hold off background optimisation (tests that need the baseline code
    /// to stay in place).
    #[cfg(test)]
    pub(crate) fn hold_optimizing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.optimizing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`PluginEngine::compile`] for a background optimisation: one at a
    /// time, and none once `wanted` says the code is no longer needed
    /// (checked after waiting for the others); `None` then.
    pub fn compile_optimized(
        &self,
        wasm: &[u8],
        wanted: impl Fn() -> bool,
    ) -> Option<Result<Component, PluginError>> {
        let _one = self.optimizing.lock().unwrap_or_else(|p| p.into_inner());
        wanted().then(|| self.compile(wasm))
    }

    /// The component's code as fast as it can be had: Cranelift code from
    /// the cache, else a Winch compile ([`Tier::Baseline`], to be replaced
    /// by [`PluginEngine::compile`]'s in the background), else (Winch
    /// refused it, e.g. a proposal it lacks) a Cranelift compile.
    pub fn compile_first(&self, wasm: &[u8]) -> Result<(Component, Tier), PluginError> {
        if let Some(c) = self.cached(wasm)? {
            return Ok((c, Tier::Optimized));
        }
        if let Some((baseline, _)) = &self.baseline {
            // A compiler bug must not reject a component Cranelift can
            // compile.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                Component::new(baseline, wasm)
            })) {
                Ok(Ok(c)) => return Ok((c, Tier::Baseline)),
                Ok(Err(e)) => {
                    tracing::debug!(error = %format!("{e:#}"), "baseline compiler refused the component; compiling with Cranelift");
                }
                Err(_) => {
                    tracing::warn!("the baseline compiler panicked; compiling with Cranelift")
                }
            }
        }
        self.compile_and_cache(wasm)
            .map(|(c, _)| (c, Tier::Optimized))
    }

    /// Compile with Cranelift into the compiled-code cache unless it holds
    /// the code already (`artgate plugin compile`). Fails without a cache
    /// directory.
    pub fn precompile(&self, wasm: &[u8]) -> Result<Precompiled, PluginError> {
        let Some(dir) = &self.cache_dir else {
            return Err(PluginError::Load(
                "no compiled-code cache directory to compile into".into(),
            ));
        };
        let path = self.cache_path(dir, wasm);
        let fresh = self.cached(wasm)?.is_none();
        if fresh && let (_, Some(e)) = self.compile_and_cache(wasm)? {
            return Err(PluginError::Load(format!(
                "cannot write {}: {e}",
                path.display()
            )));
        }
        Ok(Precompiled { path, fresh })
    }

    /// The cached Cranelift code of these bytes, if the cache has it. Bytes
    /// that are not a component are refused with the reason.
    fn cached(&self, wasm: &[u8]) -> Result<Option<Component>, PluginError> {
        if !looks_like_component(wasm) {
            return Err(PluginError::Load(describe_non_component(wasm)));
        }
        let Some(dir) = &self.cache_dir else {
            return Ok(None);
        };
        let path = self.cache_path(dir, wasm);
        if !path.is_file() {
            return Ok(None);
        }
        // SAFETY: the file is in artgate's own cache directory, named by
        // the hash of the source bytes and of this engine's settings, and
        // was written by `compile` or `precompile` (`artgate plugin
        // compile`), via temp file + rename. Wasmtime also checks the engine
        // compatibility header.
        match unsafe { Component::deserialize_file(&self.engine, &path) } {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "dropping unusable compiled-code cache entry");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    fn cache_path(&self, dir: &Path, wasm: &[u8]) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let mut sha = Sha256::new();
        sha.update(wasm);
        sha.update(h.finish().to_le_bytes());
        sha.update(env!("CARGO_PKG_VERSION").as_bytes());
        dir.join(format!("{}.cwasm", hex::encode(sha.finalize())))
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One engine with the plugin settings and the given compiler.
fn new_engine(cfg: &PluginsConfig, strategy: Strategy) -> Result<Engine, PluginError> {
    let mut config = Config::new();
    config.strategy(strategy);
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Deep recursion must trap, not overflow the host stack.
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(2 << 20);

    // The baseline engine serves a new adapter only until its optimised
    // code is in: its instances are allocated on demand, so it reserves
    // nothing and keeps nothing afterwards. The optimising engine's come
    // from a pool.
    if matches!(strategy, Strategy::Cranelift) {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(cfg)));
    }
    // Reserve only what the cap needs, so many slots stay cheap in
    // virtual address space.
    config.memory_reservation(cfg.max_memory_limit().next_power_of_two().max(1 << 24));
    config.memory_guard_size(1 << 16);
    config.memory_reservation_for_growth(0);

    Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))
}

/// The pooling allocator of the optimising engine: `max_instances` slots,
/// each holding the largest memory any adapter may use (each call's own
/// cap is enforced by its store's limiter).
fn pool_config(cfg: &PluginsConfig) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    let slots = cfg.max_instances.max(1);
    pool.total_component_instances(slots);
    // A Rust wasm32-wasip2 component has a handful of core instances
    // (the program and its WASI adapter shims); leave headroom.
    pool.max_core_instances_per_component(32);
    pool.total_core_instances(slots * 16);
    pool.max_memories_per_component(4);
    pool.total_memories(slots * 2);
    pool.max_tables_per_component(8);
    pool.total_tables(slots * 4);
    pool.total_stacks(slots);
    pool.max_memory_size(cfg.max_memory_limit() as usize);
    pool.max_unused_warm_slots(slots.min(64));
    // A slot freed by a call keeps the pages its guest dirtied mapped
    // (up to these sizes) and resets them from the memory image, instead
    // of unmapping them and faulting them in again on the next call
    // (with a TLB shootdown each time): fresh instances for every call
    // cost about half as much. PAGEMAP_SCAN (Linux 6.7+) finds the
    // dirty pages; older kernels reset the whole kept range.
    pool.linear_memory_keep_resident(KEEP_RESIDENT_MEMORY);
    pool.table_keep_resident(KEEP_RESIDENT_TABLES);
    pool.async_stack_keep_resident(KEEP_RESIDENT_STACK);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

fn spawn_ticker(
    engines: Vec<wasmtime::EngineWeak>,
    stop: Arc<AtomicBool>,
) -> Result<(), PluginError> {
    std::thread::Builder::new()
        .name("artgate-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                for engine in &engines {
                    match engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => return,
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker thread: {e}")))
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), fastrand_suffix()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn fastrand_suffix() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Whether the bytes start with the component-model binary header.
pub fn looks_like_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && &wasm[0..4] == b"\0asm" && wasm[6..8] == [0x01, 0x00]
}

fn describe_non_component(wasm: &[u8]) -> String {
    if wasm.len() >= 8 && &wasm[0..4] == b"\0asm" && wasm[4..8] == [1, 0, 0, 0] {
        "this is a core wasm module, not a component; build the adapter for the wasm32-wasip2 target (or run `wasm-tools component new`)".into()
    } else if wasm.len() >= 4 && &wasm[0..4] == b"\0asm" {
        "this wasm file has an unknown binary version; it is not a component artgate can load"
            .into()
    } else if Engine::detect_precompiled(wasm).is_some() {
        "this is precompiled native code (.cwasm); artgate only loads .wasm components and compiles them itself".into()
    } else {
        "this file is not a WebAssembly component (bad magic bytes; truncated or not wasm)".into()
    }
}
