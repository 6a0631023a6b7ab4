//! The set of loaded adapters and hot reload.
//!
//! Built-in adapters load at startup; `.wasm` files in the plugin directory
//! load after them and replace a built-in with the same adapter name (or add
//! new package types). A rescan compiles, pre-links and smoke-tests
//! (`describe`) every new or changed file *before* swapping the active set
//! atomically ([`ArcSwap`]); a file that fails keeps its previous version
//! serving, and its error shows in `/plugins`. In-flight requests hold an
//! `Arc` of the adapter they started with and finish on it.
//!
//! The directory is listed, and files are read, on the blocking pool
//! ([`super::scan`]): a file over `[plugins] max_file_size` is refused from
//! its size alone, and entries that are not adapter files (directories,
//! FIFOs, dangling symlinks, other names) are listed in `/plugins` with the
//! reason and logged once when they appear.

use super::PluginError;
use super::adapter::{Adapter, Source};
use super::engine::{PluginEngine, Tier};
use super::scan::{self, Ignored, ReadError, Stamp};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::task::spawn_blocking;

/// Status of one adapter source, as `GET /plugins` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// Adapter name (from `describe`), or the file name when it never loaded.
    pub name: String,
    /// Adapter version, when loaded.
    pub version: Option<String>,
    /// sha256 of the component bytes.
    pub sha256: String,
    /// `built-in` or the file path.
    pub source: String,
    /// Package types served.
    pub package_types: Vec<String>,
    /// `active`, `replaced` (a plugin-dir file of the same name serves
    /// instead), `failed` (never loaded) or `failed-previous-serving`.
    pub status: &'static str,
    /// The last load error, if any.
    pub last_error: Option<String>,
    /// When this version was loaded (an HTTP date).
    pub loaded_at: Option<String>,
    /// Calls one instance serves when instances are reused (the adapter
    /// declared itself stateless, or `[plugins] warm_instances` names it);
    /// none: a fresh instance per call.
    pub warm_instances: Option<u32>,
    /// Whether the component declares itself stateless.
    pub stateless: bool,
    /// Whether the component declares that its `on-response` accepts every
    /// answer (the gateway then does not call it).
    pub accepts_every_response: bool,
    /// Which compiler's code its calls run now: `baseline` (Winch) right
    /// after a load that missed the compiled-code cache, `optimized`
    /// (Cranelift) once that is swapped in; none when it never loaded.
    pub code: Option<CodeTier>,
    /// The limits its calls run under (`[plugins.adapter.NAME]`, else
    /// `[plugins]`), when loaded.
    pub limits: Option<LimitsStatus>,
}

/// The compiler tier of a loaded adapter, read when the status is shown
/// (the optimised code replaces the baseline code in the background).
#[derive(Clone)]
pub struct CodeTier(Arc<Adapter>);

impl CodeTier {
    /// The tier now.
    pub fn tier(&self) -> Tier {
        self.0.tier()
    }
}

impl std::fmt::Debug for CodeTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tier().as_str())
    }
}

impl Serialize for CodeTier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.tier().as_str())
    }
}

/// An adapter's call limits, as `GET /plugins` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct LimitsStatus {
    /// Linear memory cap per call, bytes.
    pub memory_limit: u64,
    /// Time budget per call, milliseconds.
    pub call_timeout_ms: u64,
    /// Calls in flight at once.
    pub max_concurrent_calls: u32,
    /// How long a call waits for a slot, milliseconds.
    pub queue_timeout_ms: u64,
    /// Threads of the adapter's lane.
    pub lane_threads: u32,
}

/// The active adapters, swapped as a whole.
#[derive(Default)]
pub struct ActiveSet {
    by_package: HashMap<String, Arc<Adapter>>,
    statuses: Vec<PluginStatus>,
    ignored: Vec<Ignored>,
}

impl ActiveSet {
    /// The adapter serving a package type.
    pub fn for_package(&self, package: &str) -> Option<&Arc<Adapter>> {
        self.by_package.get(package)
    }

    /// Status of every adapter source, as `GET /plugins` shows it.
    pub fn statuses(&self) -> &[PluginStatus] {
        &self.statuses
    }

    /// Entries of the plugin directory that are not loaded, with the
    /// reason, as `GET /plugins` shows them.
    pub fn ignored(&self) -> &[Ignored] {
        &self.ignored
    }
}

struct Loaded {
    adapter: Arc<Adapter>,
    loaded_at: SystemTime,
}

/// What is known about one file in the plugin directory.
struct FileState {
    /// Identity and version of the file when last looked at, to skip
    /// unchanged files cheaply.
    stamp: Option<Stamp>,
    /// sha256 of the bytes last read.
    sha256: String,
    /// The newest version that loaded.
    good: Option<Loaded>,
    /// Error of the newest bytes, when they did not load.
    error: Option<String>,
}

/// What the last rescan found in the plugin directory.
#[derive(Default)]
struct DirState {
    /// Adapter files by path.
    files: BTreeMap<PathBuf, FileState>,
    /// Entries not loaded, with the reason.
    ignored: Vec<Ignored>,
}

/// Loaded adapters and the plugin directory they came from.
pub struct PluginRegistry {
    engine: Arc<PluginEngine>,
    dir: PathBuf,
    builtins: std::sync::RwLock<Vec<Loaded>>,
    files: tokio::sync::Mutex<DirState>,
    active: ArcSwap<ActiveSet>,
    metrics: Arc<Metrics>,
    /// True once [`PluginRegistry::load`] has run.
    ready: tokio::sync::watch::Sender<bool>,
    /// The last [`HISTORY`] loads from the plugin directory, newest last.
    history: std::sync::Mutex<std::collections::VecDeque<Reload>>,
}

/// How many plugin-directory loads [`PluginRegistry::history`] keeps.
pub const HISTORY: usize = 50;

/// One load of a plugin-directory file, as the operator console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// The file.
    pub path: String,
    /// The adapter's name and version, when it loaded.
    pub adapter: Option<String>,
    /// Why it did not load, when it did not.
    pub error: Option<String>,
}

impl PluginRegistry {
    /// An empty registry for the plugin directory `dir`; nothing is
    /// loaded until [`PluginRegistry::load`] runs, and callers of
    /// [`PluginRegistry::ready_active`] wait for it. The gateway listens
    /// while adapters compile (seconds when the compiled-code cache is
    /// cold), so health checks, metrics and admin answer at once.
    pub fn new(engine: Arc<PluginEngine>, dir: PathBuf, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(PluginRegistry {
            engine,
            dir,
            builtins: std::sync::RwLock::new(Vec::new()),
            files: tokio::sync::Mutex::new(DirState::default()),
            active: ArcSwap::from_pointee(ActiveSet::default()),
            metrics,
            ready: tokio::sync::watch::Sender::new(false),
            history: Default::default(),
        })
    }

    /// Load the built-in adapters, then the plugin directory, and mark the
    /// registry ready. A built-in or plugin-dir file that fails to load is
    /// reported and skipped (its package type answers 502 until an adapter
    /// for it loads); the failures are returned.
    pub async fn load(&self, builtins: &[(&'static str, &'static [u8])]) -> Vec<PluginError> {
        let mut failed = Vec::new();
        for (name, bytes) in builtins {
            match Adapter::load(self.engine.clone(), Arc::from(*bytes), Source::BuiltIn).await {
                Ok(adapter) => {
                    tracing::info!(adapter = adapter.name(), version = %adapter.info.version, "loaded built-in adapter");
                    self.builtins
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Loaded {
                            adapter: Arc::new(adapter.counted_by(self.metrics.clone())),
                            loaded_at: SystemTime::now(),
                        });
                }
                Err(e) => {
                    let e = PluginError::Load(format!("built-in adapter {name}: {e}"));
                    tracing::error!(error = %e, "a built-in adapter did not load");
                    failed.push(e);
                }
            }
        }
        self.rescan().await;
        {
            // Whatever the rescan found, the set must now hold the built-ins.
            let state = self.files.lock().await;
            self.active.store(Arc::new(self.build_active(&state)));
        }
        self.ready.send_replace(true);
        failed
    }

    /// Each adapter lane's name, calls in flight and calls waiting for a
    /// slot ([`PluginEngine::lane_loads`]).
    pub fn lane_loads(&self) -> Vec<(String, usize, usize)> {
        self.engine.lane_loads()
    }

    /// Whether [`PluginRegistry::load`] has run.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// The active set once [`PluginRegistry::load`] has run (at once after
    /// that).
    pub async fn ready_active(&self) -> Arc<ActiveSet> {
        if !*self.ready.borrow() {
            let mut rx = self.ready.subscribe();
            // The sender lives as long as `self`.
            let _ = rx.wait_for(|r| *r).await;
        }
        self.active()
    }

    /// The plugin directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The active set (cheap; hold it for the duration of a request).
    pub fn active(&self) -> Arc<ActiveSet> {
        self.active.load_full()
    }

    /// Statuses for `GET /plugins` (after the initial load).
    pub async fn statuses(&self) -> Vec<PluginStatus> {
        self.ready_active().await.statuses.clone()
    }

    /// Re-read the plugin directory: load new and changed `.wasm` files,
    /// forget removed ones, and swap in the resulting active set. Returns
    /// whether anything changed. Listing, reading and compiling run on the
    /// blocking pool (and `describe` on the loading lane), never on the
    /// caller's thread.
    pub async fn rescan(&self) -> bool {
        let mut dir_state = self.files.lock().await;
        let dir = self.dir.clone();
        let listing = spawn_blocking(move || scan::list(&dir))
            .await
            .unwrap_or_default();
        let mut changed = self.note_ignored(&mut dir_state, listing.ignored);
        let files = &mut dir_state.files;
        let removed: Vec<PathBuf> = files
            .keys()
            .filter(|p| !listing.files.iter().any(|(q, _)| q == *p))
            .cloned()
            .collect();
        for p in removed {
            tracing::info!(path = %p.display(), "plugin file removed");
            files.remove(&p);
            changed = true;
        }
        for (path, stamp) in listing.files {
            if files.get(&path).is_some_and(|st| st.stamp == Some(stamp)) {
                continue;
            }
            changed |= self.reload_file(files, path, stamp).await;
        }
        if changed || self.active.load().statuses.is_empty() {
            self.active.store(Arc::new(self.build_active(&dir_state)));
        }
        changed
    }

    /// Record the ignored entries of a listing, logging each one that is
    /// new (or ignored for a new reason). Returns whether the set changed.
    fn note_ignored(&self, state: &mut DirState, ignored: Vec<Ignored>) -> bool {
        if state.ignored == ignored {
            return false;
        }
        for i in ignored.iter().filter(|i| !state.ignored.contains(i)) {
            tracing::warn!(path = %i.path, reason = %i.reason, "ignoring an entry of the plugin directory");
        }
        state.ignored = ignored;
        true
    }

    /// Read (off the runtime threads) and load the file at `path`, which is
    /// new or changed (`listed`: its stamp in the listing). A file that
    /// cannot be read, is too large or does not load keeps its previous
    /// version serving and shows the error. Returns whether anything
    /// changed.
    async fn reload_file(
        &self,
        files: &mut BTreeMap<PathBuf, FileState>,
        path: PathBuf,
        listed: Stamp,
    ) -> bool {
        let max = self.engine.max_file_size();
        let p = path.clone();
        // The bytes become the shared `Arc` on the blocking thread too: a
        // copy of up to `max_file_size`.
        let read = spawn_blocking(move || {
            scan::read(&p, max).map(|f| (Arc::<[u8]>::from(f.bytes), f.stamp, f.sha256))
        })
        .await
        .unwrap_or_else(|e| Err(ReadError::Io(std::io::Error::other(e))));
        let entry = files.entry(path.clone()).or_insert_with(|| FileState {
            stamp: None,
            sha256: String::new(),
            good: None,
            error: None,
        });
        let (bytes, stamp, sha256) = match read {
            Ok(file) => file,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "plugin file refused; the previous version (if any) keeps serving");
                self.metrics.plugin_reload("error");
                // Stamped, so an unchanged refused file is not retried (nor
                // logged) on every rescan; a file that raced into a FIFO
                // has no stamp of its own and is looked at again.
                entry.stamp = match &e {
                    ReadError::TooLarge { .. } | ReadError::Io(_) => Some(listed),
                    ReadError::NotRegular(_) => None,
                };
                let msg = e.to_string();
                self.remember(&path, None, Some(&msg));
                let changed = entry.error.as_ref() != Some(&msg) || !entry.sha256.is_empty();
                entry.sha256 = String::new();
                entry.error = Some(msg);
                return changed;
            }
        };
        entry.stamp = Some(stamp);
        if entry.sha256 == sha256 {
            return false;
        }
        entry.sha256 = sha256;
        match Adapter::load(self.engine.clone(), bytes, Source::Dir(path.clone())).await {
            Ok(a) => {
                tracing::info!(path = %path.display(), adapter = a.name(), version = %a.info.version, "loaded plugin");
                self.metrics.plugin_reload("ok");
                let loaded = format!("{} {}", a.name(), a.info.version);
                self.remember(&path, Some(loaded), None);
                entry.good = Some(Loaded {
                    adapter: Arc::new(a.counted_by(self.metrics.clone())),
                    loaded_at: SystemTime::now(),
                });
                entry.error = None;
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "plugin rejected; the previous version (if any) keeps serving");
                self.metrics.plugin_reload("error");
                self.remember(&path, None, Some(&e.to_string()));
                entry.error = Some(e.to_string());
            }
        }
        true
    }

    /// The last loads from the plugin directory, newest first.
    pub fn history(&self) -> Vec<Reload> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.iter().rev().cloned().collect()
    }

    fn remember(&self, path: &Path, adapter: Option<String>, error: Option<&str>) {
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(Reload {
            at_ms: crate::store::now_ms(),
            path: path.display().to_string(),
            adapter,
            error: error.map(str::to_owned),
        });
    }

    fn build_active(&self, state: &DirState) -> ActiveSet {
        let files = &state.files;
        // Adapter name → (adapter, loaded_at); plugin-dir files override
        // built-ins of the same name (in path order).
        let builtins = self.builtins.read().unwrap_or_else(|p| p.into_inner());
        let mut by_name: BTreeMap<String, &Loaded> = BTreeMap::new();
        for b in builtins.iter() {
            by_name.insert(b.adapter.info.name.clone(), b);
        }
        for st in files.values() {
            if let Some(good) = &st.good {
                by_name.insert(good.adapter.info.name.clone(), good);
            }
        }
        let mut by_package = HashMap::new();
        for l in by_name.values() {
            for p in &l.adapter.info.package_types {
                by_package.insert(p.clone(), l.adapter.clone());
            }
        }
        let mut statuses = Vec::new();
        for b in builtins.iter() {
            let replaced = by_name
                .get(&b.adapter.info.name)
                .is_some_and(|l| !Arc::ptr_eq(&l.adapter, &b.adapter));
            statuses.push(status_of(
                b,
                if replaced { "replaced" } else { "active" },
                None,
            ));
        }
        for (path, st) in files {
            match (&st.good, &st.error) {
                (Some(good), err) => {
                    let serving = by_name
                        .get(&good.adapter.info.name)
                        .is_some_and(|l| Arc::ptr_eq(&l.adapter, &good.adapter));
                    let status = match (serving, err.is_some()) {
                        (_, true) => "failed-previous-serving",
                        (true, false) => "active",
                        (false, false) => "replaced",
                    };
                    let mut s = status_of(good, status, err.clone());
                    if err.is_some() {
                        s.sha256 = st.sha256.clone();
                    }
                    statuses.push(s);
                }
                (None, err) => statuses.push(PluginStatus {
                    name: path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    version: None,
                    sha256: st.sha256.clone(),
                    source: path.display().to_string(),
                    package_types: Vec::new(),
                    status: "failed",
                    last_error: err.clone(),
                    loaded_at: None,
                    warm_instances: None,
                    stateless: false,
                    accepts_every_response: false,
                    code: None,
                    limits: None,
                }),
            }
        }
        ActiveSet {
            by_package,
            statuses,
            ignored: state.ignored.clone(),
        }
    }
}

fn status_of(l: &Loaded, status: &'static str, last_error: Option<String>) -> PluginStatus {
    PluginStatus {
        name: l.adapter.info.name.clone(),
        version: Some(l.adapter.info.version.clone()),
        sha256: l.adapter.sha256.clone(),
        source: l.adapter.source.to_string(),
        package_types: l.adapter.info.package_types.clone(),
        status,
        last_error,
        loaded_at: Some(httpdate::fmt_http_date(l.loaded_at)),
        warm_instances: l.adapter.warm_calls(),
        stateless: l.adapter.declared.stateless,
        accepts_every_response: l.adapter.declared.accepts_every_response,
        code: Some(CodeTier(l.adapter.clone())),
        limits: Some({
            let l = l.adapter.limits();
            LimitsStatus {
                memory_limit: l.memory_limit,
                call_timeout_ms: l.call_timeout.as_millis() as u64,
                max_concurrent_calls: l.max_concurrent_calls,
                queue_timeout_ms: l.queue_timeout.as_millis() as u64,
                lane_threads: l.lane_threads,
            }
        }),
    }
}
