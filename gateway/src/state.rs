//! Shared state of a running gateway, built once at startup.

use crate::cache::memo::DecisionMemo;
use crate::cache::{Engine, Fills};
use crate::config::{Config, RemoteConfig};
use crate::metrics::Metrics;
use crate::plugins::wit_http::remote_info;
use crate::plugins::{Adapter, AdapterKv, CallContext, HostHttp, PluginRegistry, wit};
use crate::store::Store;
use crate::upstream::Upstream;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A configured remote with what the request path needs at hand.
pub struct RemoteRuntime {
    /// The remote's configuration.
    pub cfg: RemoteConfig,
    /// The same, as adapters see it.
    pub info: wit::RemoteInfo,
    /// Auth realm origins (`scheme://host:port`) the upstream named in
    /// `WWW-Authenticate` and `host_http::realm_allowed` permits (on an
    /// upstream's origin or in `auth_realms`); adapters may `http-send` to
    /// them.
    pub realms: Mutex<HashSet<String>>,
    /// Quota reservations of the uploads in progress (hosted remotes).
    pub uploads: crate::quota::InFlight,
}

impl RemoteRuntime {
    /// Build from config.
    pub fn new(cfg: RemoteConfig) -> Self {
        let info = remote_info(&cfg);
        RemoteRuntime {
            cfg,
            info,
            realms: Mutex::new(HashSet::new()),
            uploads: crate::quota::InFlight::default(),
        }
    }
}

/// Makes the `http-send` capability of adapter calls on a remote
/// (`host_http::RemoteHttp`, passed in by `lib.rs`). The capability sends
/// through the cache (`cache-send`), whose fills call adapters again, so
/// the state is handed this function rather than importing it.
pub type HttpCapability = fn(Arc<AppState>, Arc<RemoteRuntime>) -> Arc<dyn HostHttp>;

/// Everything a request handler needs.
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Remotes by name.
    pub remotes: HashMap<String, Arc<RemoteRuntime>>,
    /// What the cache uses: the store, the upstream client, the metrics
    /// and the fills in progress (the one place they are held).
    pub engine: Engine,
    /// Loaded adapters.
    pub plugins: Arc<PluginRegistry>,
    /// Remembered adapter decisions for fresh hits.
    pub memo: DecisionMemo,
    /// The operator console's sessions and recent events.
    pub console: crate::console::state::Console,
    /// The gRPC front's fetches from REAPI upstreams in progress, one per
    /// blob.
    pub grpc_flights: crate::grpc::flight::Flights,
    /// The `http-send` capability of adapter calls ([`HttpCapability`]).
    http: HttpCapability,
    next_id: AtomicU64,
    id_prefix: String,
}

impl AppState {
    /// The context of an adapter call made for a request (or a prefetch)
    /// on `remote`: its key-value namespace for that remote, the
    /// `http-send` capability limited to the remote's hosts, and the
    /// gateway's URL as the client with request head `head` reached it
    /// ([`crate::public_url`]).
    pub fn call_context(
        self: &Arc<Self>,
        remote: &Arc<RemoteRuntime>,
        adapter: &Adapter,
        request_id: &str,
        head: Option<&http::request::Parts>,
    ) -> CallContext {
        CallContext {
            adapter: Arc::from(adapter.name()),
            request_id: Arc::from(request_id),
            kv: Some(Arc::new(AdapterKv::new(
                self.engine.store.meta.clone(),
                adapter.name(),
                &remote.cfg.name,
            ))),
            http: Some((self.http)(self.clone(), remote.clone())),
            gateway_url: crate::public_url::gateway_url(&self.config.server, head),
            upload: None,
        }
    }

    /// Assemble the state.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        plugins: Arc<PluginRegistry>,
        upstream: Upstream,
        metrics: Arc<Metrics>,
        http: HttpCapability,
    ) -> Self {
        let remotes = config
            .remotes
            .iter()
            .map(|r| (r.name.clone(), Arc::new(RemoteRuntime::new(r.clone()))))
            .collect();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        AppState {
            config,
            remotes,
            engine: Engine {
                store,
                upstream,
                metrics,
                fills: Arc::new(Fills::default()),
            },
            plugins,
            memo: DecisionMemo::new(100_000),
            console: Default::default(),
            grpc_flights: Default::default(),
            http,
            next_id: AtomicU64::new(1),
            id_prefix: format!("{:06x}", seed & 0xff_ffff),
        }
    }

    /// A new request id (unique per process, prefixed per start).
    pub fn request_id(&self) -> String {
        format!(
            "{}-{:x}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}
