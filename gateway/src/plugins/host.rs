//! What a plugin instance's store holds, and the host capabilities it may
//! call: `log`, bounded `http-send`, `cache-send` and `cache-expire` on the
//! current remote's cache, and a key-value store scoped to the adapter and
//! the remote ([`super::kv`]). WASI is linked deny-all (no preopened
//! directories, no environment, no sockets, stdio discarded).

use super::PluginError;
use super::bindings::{self, wit};
use super::kv::AdapterKv;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, Result as WtResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host calls of one kind allowed per plugin call; more trap.
pub const MAX_HTTP_SENDS_PER_CALL: u32 = 16;
/// Key-value operations allowed per plugin call.
pub const MAX_KV_OPS_PER_CALL: u32 = 1024;
/// Log lines allowed per plugin call (later ones are dropped).
pub const MAX_LOG_LINES_PER_CALL: u32 = 256;
/// Largest key-value value a plugin may store.
pub const MAX_KV_VALUE: usize = 64 * 1024;
/// Longest key-value key.
pub const MAX_KV_KEY: usize = 512;
/// Longest log message kept (longer ones are cut).
pub const MAX_LOG_MESSAGE: usize = 4096;

/// A boxed future, for the `http-send` capability.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The network side of `http-send` and `cache-send`, provided per call by
/// the request path: it knows which hosts the current remote may reach,
/// its credentials and its cache.
pub trait HostHttp: Send + Sync {
    /// Send a small request; errors are one sentence for the plugin.
    fn send(
        &self,
        req: wit::OutgoingRequest,
    ) -> BoxFuture<'_, Result<wit::IncomingResponse, String>>;

    /// Send a request through the remote's cache under `plan` and return
    /// at most `limit` bytes of the answer (`cache-send`).
    fn cache_send(
        &self,
        req: wit::OutgoingRequest,
        plan: wit::CachePlan,
        limit: u32,
    ) -> BoxFuture<'_, Result<wit::IncomingResponse, String>> {
        let _ = (req, plan, limit);
        Box::pin(async { Err("cache-send is not available in this context".to_owned()) })
    }

    /// Mark the remote's entry under `key` expired now (`cache-expire`).
    fn cache_expire(&self, key: &str) {
        let _ = key;
    }
}

/// The request body side of `unpack-body` and `hosted-commit`, provided by
/// the request path for `plan` on a hosted remote: it holds the client
/// body, the files taken out of it, and the remote they may be stored in.
pub trait HostUpload: Send + Sync {
    /// Take the files out of the request body by `layout`; the rest, at
    /// most `rest_limit` bytes, goes back to the adapter.
    fn unpack(
        &self,
        layout: wit::BodyLayout,
        rest_limit: u32,
    ) -> BoxFuture<'_, Result<wit::UnpackedBody, wit::Rejection>>;

    /// The whole request body as one staged file (`stage-body`).
    fn stage(&self) -> BoxFuture<'_, Result<wit::StagedFile, wit::Rejection>>;

    /// Store staged file `file` as the hosted entry `key`.
    fn commit(
        &self,
        file: u32,
        key: String,
        content_type: Option<String>,
        refuse_overwrite: bool,
    ) -> BoxFuture<'_, Result<(), wit::Rejection>>;
}

/// What a call needs to know about its context.
#[derive(Clone)]
pub struct CallContext {
    /// Adapter name (log tag).
    pub adapter: Arc<str>,
    /// Request id for log lines.
    pub request_id: Arc<str>,
    /// The adapter's key-value namespace for the current remote; none
    /// where calls have no remote (loading, idle warm instances).
    pub kv: Option<Arc<AdapterKv>>,
    /// Network capability; none when the call may not make requests.
    pub http: Option<Arc<dyn HostHttp>>,
    /// What `gateway-url` answers: the base URL the current client reached
    /// the gateway by; none where a call has no request.
    pub gateway_url: Option<Arc<str>>,
    /// The request body for `unpack-body` and `hosted-commit`; none but in
    /// `plan` on a hosted remote.
    pub upload: Option<Arc<dyn HostUpload>>,
}

impl CallContext {
    /// The same context with key-value writes held back until the fill
    /// this call belongs to is verified ([`AdapterKv::apply`]).
    pub fn deferring_kv(&self) -> CallContext {
        CallContext {
            kv: self.kv.as_ref().map(|kv| Arc::new(kv.deferred())),
            ..self.clone()
        }
    }

    /// The context of an idle warm instance: no request, no key-value
    /// store, no network.
    pub fn idle() -> CallContext {
        CallContext {
            adapter: Arc::from("(idle)"),
            request_id: Arc::from("idle"),
            kv: None,
            http: None,
            gateway_url: None,
            upload: None,
        }
    }
}

/// How long work a host call started on the request runtime may run.
#[derive(Clone, Copy)]
enum Until {
    /// Until it is done, whatever happens to the call.
    Done,
    /// Until the call ends.
    CallEnds,
}

/// Traps a key-value write larger than the host keeps.
fn kv_entry_fits(key: &str, value: &[u8]) -> WtResult<()> {
    if key.len() > MAX_KV_KEY || value.len() > MAX_KV_VALUE {
        return Err(wasmtime::Error::msg(format!(
            "key-value entry too large (key {} bytes, max {MAX_KV_KEY}; value {} bytes, max {MAX_KV_VALUE})",
            key.len(),
            value.len()
        )));
    }
    Ok(())
}

/// The refusal of a host call whose work did not complete.
fn did_not_complete(what: &str, e: String) -> wit::Rejection {
    wit::Rejection {
        status: 500,
        message: format!("The host's {what} did not complete: {e}."),
        code: None,
    }
}

/// The refusal of an upload host call made where there is no upload.
fn not_here(what: &str) -> wit::Rejection {
    wit::Rejection {
        status: 500,
        message: format!(
            "The adapter called {what} outside plan of a request with a body on a hosted remote."
        ),
        code: None,
    }
}

/// Limits memory growth of one call's instance and remembers whether the
/// cap was hit (to report it as such instead of as a plain trap).
pub struct CallLimiter {
    cap: usize,
    used: usize,
    /// Set when a growth beyond the cap was refused.
    pub hit: bool,
}

impl CallLimiter {
    /// Linear memory the instance holds, in bytes (all its memories).
    pub fn used(&self) -> usize {
        self.used
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> WtResult<bool> {
        let grow = desired.saturating_sub(current);
        if self.used.saturating_add(grow) > self.cap {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} bytes reached",
                self.cap
            )));
        }
        self.used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> WtResult<bool> {
        Ok(desired <= 100_000)
    }
}

/// Time spent in wasm so far versus the budget, shared between the store's
/// epoch callback and `http-send` (time awaiting host I/O does not count).
pub struct CallBudget {
    /// When the call started.
    pub started: std::time::Instant,
    /// Time spent awaiting host I/O.
    pub host_wait: std::time::Duration,
    /// Budget for time in wasm.
    pub limit: std::time::Duration,
    /// Set when the budget ran out.
    pub exceeded: bool,
}

/// The data of one plugin store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory limiter (public for the store's limiter accessor).
    pub limiter: CallLimiter,
    ctx: CallContext,
    /// The call's time budget (set by the caller).
    pub budget: Option<Arc<std::sync::Mutex<CallBudget>>>,
    /// The runtime `http-send` runs on (the caller's; the call itself runs
    /// on its adapter's lane). None: on the call's own runtime.
    pub io: Option<tokio::runtime::Handle>,
    http_calls: u32,
    kv_ops: u32,
    log_lines: u32,
}

impl HostState {
    /// Fresh state for one call.
    pub fn new(ctx: CallContext, memory_cap: u64) -> Self {
        HostState {
            // Deny-all: no args, env, preopens or network; stdio is closed or
            // discarded.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: CallLimiter {
                cap: memory_cap as usize,
                used: 0,
                hit: false,
            },
            ctx,
            budget: None,
            io: None,
            http_calls: 0,
            kv_ops: 0,
            log_lines: 0,
        }
    }

    /// Run `work` on the request runtime when the call runs on its
    /// adapter's lane (network I/O and store work belong there), counting
    /// the wait as host time. `Until::CallEnds` aborts it when the call
    /// goes away (a trap, a timeout); `Until::Done` lets it finish (a fill
    /// other requests may be waiting for). `Err` when it did not complete.
    async fn on_io<T: Send + 'static>(
        &mut self,
        work: impl Future<Output = T> + Send + 'static,
        until: Until,
    ) -> Result<T, String> {
        let started = std::time::Instant::now();
        let result = match &self.io {
            Some(io) => {
                let task = io.spawn(work);
                match until {
                    Until::Done => task.await,
                    Until::CallEnds => {
                        let mut guard = super::exec::AbortOnDrop(task);
                        (&mut guard.0).await
                    }
                }
                .map_err(|e| e.to_string())
            }
            None => Ok(work.await),
        };
        if let Some(b) = &self.budget
            && let Ok(mut b) = b.lock()
        {
            b.host_wait += started.elapsed();
        }
        result
    }

    /// Replace the call context (reused warm instances serve many calls).
    pub fn set_context(&mut self, ctx: CallContext) {
        self.ctx = ctx;
        self.http_calls = 0;
        self.kv_ops = 0;
        self.log_lines = 0;
    }

    fn kv_budget(&mut self) -> WtResult<()> {
        self.kv_ops += 1;
        if self.kv_ops > MAX_KV_OPS_PER_CALL {
            return Err(wasmtime::Error::msg(format!(
                "more than {MAX_KV_OPS_PER_CALL} key-value operations in one call"
            )));
        }
        Ok(())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Link deny-all WASI and the artgate host interface.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), PluginError> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
        .map_err(|e| PluginError::Engine(format!("linking WASI: {e:#}")))?;
    bindings::artgate::adapter::host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
        .map_err(|e| PluginError::Engine(format!("linking the host interface: {e:#}")))?;
    Ok(())
}

impl bindings::artgate::adapter::types::Host for HostState {}

impl bindings::artgate::adapter::host::Host for HostState {
    fn log(&mut self, level: wit::Level, message: String) -> WtResult<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let adapter = &*self.ctx.adapter;
        let request_id = &*self.ctx.request_id;
        match level {
            wit::Level::Trace => {
                tracing::trace!(target: "artgate::plugin", adapter, request_id, "{message}")
            }
            wit::Level::Debug => {
                tracing::debug!(target: "artgate::plugin", adapter, request_id, "{message}")
            }
            wit::Level::Info => {
                tracing::info!(target: "artgate::plugin", adapter, request_id, "{message}")
            }
            wit::Level::Warn => {
                tracing::warn!(target: "artgate::plugin", adapter, request_id, "{message}")
            }
            wit::Level::Error => {
                tracing::error!(target: "artgate::plugin", adapter, request_id, "{message}")
            }
        }
        Ok(())
    }

    async fn http_send(
        &mut self,
        req: wit::OutgoingRequest,
    ) -> WtResult<Result<wit::IncomingResponse, String>> {
        self.http_calls += 1;
        if self.http_calls > MAX_HTTP_SENDS_PER_CALL {
            return Err(wasmtime::Error::msg(format!(
                "more than {MAX_HTTP_SENDS_PER_CALL} http-send calls in one call"
            )));
        }
        let Some(http) = self.ctx.http.clone() else {
            return Ok(Err("http-send is not available in this context".into()));
        };
        // Connections the client pool opens live on the request runtime.
        Ok(self
            .on_io(async move { http.send(req).await }, Until::Done)
            .await
            .unwrap_or_else(|e| Err(format!("http-send did not complete: {e}"))))
    }

    async fn cache_send(
        &mut self,
        req: wit::OutgoingRequest,
        plan: wit::CachePlan,
        limit: u32,
    ) -> WtResult<Result<wit::IncomingResponse, String>> {
        // Counted with http-send: each may cost an upstream request.
        self.http_calls += 1;
        if self.http_calls > MAX_HTTP_SENDS_PER_CALL {
            return Err(wasmtime::Error::msg(format!(
                "more than {MAX_HTTP_SENDS_PER_CALL} http-send and cache-send calls in one call"
            )));
        }
        let Some(http) = self.ctx.http.clone() else {
            return Ok(Err("cache-send is not available in this context".into()));
        };
        // The fill it may lead belongs to the request runtime, like the
        // fills of forwarded requests, and runs on when this call ends.
        Ok(self
            .on_io(
                async move { http.cache_send(req, plan, limit).await },
                Until::Done,
            )
            .await
            .unwrap_or_else(|e| Err(format!("cache-send did not complete: {e}"))))
    }

    async fn unpack_body(
        &mut self,
        layout: wit::BodyLayout,
        rest_limit: u32,
    ) -> WtResult<Result<wit::UnpackedBody, wit::Rejection>> {
        let Some(upload) = self.ctx.upload.clone() else {
            return Ok(Err(not_here("unpack-body")));
        };
        Ok(self
            .on_io(
                async move { upload.unpack(layout, rest_limit).await },
                Until::CallEnds,
            )
            .await
            .unwrap_or_else(|e| Err(did_not_complete("unpack-body", e))))
    }

    async fn stage_body(&mut self) -> WtResult<Result<wit::StagedFile, wit::Rejection>> {
        let Some(upload) = self.ctx.upload.clone() else {
            return Ok(Err(not_here("stage-body")));
        };
        Ok(self
            .on_io(async move { upload.stage().await }, Until::CallEnds)
            .await
            .unwrap_or_else(|e| Err(did_not_complete("stage-body", e))))
    }

    async fn hosted_commit(
        &mut self,
        file: u32,
        key: String,
        content_type: Option<String>,
        refuse_overwrite: bool,
    ) -> WtResult<Result<(), wit::Rejection>> {
        let Some(upload) = self.ctx.upload.clone() else {
            return Ok(Err(not_here("hosted-commit")));
        };
        Ok(self
            .on_io(
                async move {
                    upload
                        .commit(file, key, content_type, refuse_overwrite)
                        .await
                },
                Until::CallEnds,
            )
            .await
            .unwrap_or_else(|e| Err(did_not_complete("hosted-commit", e))))
    }

    fn cache_expire(&mut self, key: String) -> WtResult<()> {
        self.kv_budget()?;
        if let Some(http) = &self.ctx.http {
            http.cache_expire(&key);
        }
        Ok(())
    }

    fn gateway_url(&mut self) -> WtResult<String> {
        Ok(self.ctx.gateway_url.as_deref().unwrap_or("").to_owned())
    }

    fn kv_get(&mut self, key: String) -> WtResult<Option<Vec<u8>>> {
        self.kv_budget()?;
        let Some(kv) = &self.ctx.kv else {
            return Ok(None);
        };
        match kv.get(&key) {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::warn!(adapter = &*self.ctx.adapter, namespace = kv.namespace(), error = %e, "plugin key-value read failed");
                Ok(None)
            }
        }
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>, ttl_secs: u64) -> WtResult<()> {
        self.kv_budget()?;
        kv_entry_fits(&key, &value)?;
        if let Some(kv) = &self.ctx.kv
            && let Err(e) = kv.set(&key, &value, ttl_secs)
        {
            tracing::warn!(adapter = &*self.ctx.adapter, namespace = kv.namespace(), error = %e, "plugin key-value write failed");
        }
        Ok(())
    }

    fn kv_compare_and_set(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        ttl_secs: u64,
    ) -> WtResult<bool> {
        self.kv_budget()?;
        kv_entry_fits(&key, &value)?;
        let Some(kv) = &self.ctx.kv else {
            return Ok(false);
        };
        match kv.compare_and_set(&key, expected.as_deref(), &value, ttl_secs) {
            Ok(written) => Ok(written),
            Err(e) => {
                tracing::warn!(adapter = &*self.ctx.adapter, namespace = kv.namespace(), error = %e, "plugin key-value compare-and-set failed");
                Ok(false)
            }
        }
    }

    fn kv_delete(&mut self, key: String) -> WtResult<()> {
        self.kv_budget()?;
        if let Some(kv) = &self.ctx.kv
            && let Err(e) = kv.delete(&key)
        {
            tracing::warn!(adapter = &*self.ctx.adapter, namespace = kv.namespace(), error = %e, "plugin key-value delete failed");
        }
        Ok(())
    }
}
