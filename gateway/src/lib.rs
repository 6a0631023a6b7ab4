//! artgate: a caching artifact gateway whose package formats are
//! hot-reloaded WebAssembly components.
//!
//! The request flow, in ten lines:
//!
//! 1. [`server`] accepts a connection (TLS optional) and enforces limits;
//! 2. [`routes`] turns the URL into a typed route, normalising the path once,
//!    and [`auth`] checks the client's token against it;
//! 3. [`admin`] answers `/`, `/health`, `/config`, `/metrics`, `/plugins`, flushes;
//! 4. [`serve`] finds the remote and checks `allow`;
//! 5. a remembered decision + a fresh entry in [`store`] → served, no wasm;
//! 6. otherwise the remote's adapter ([`plugins`]) plans the request;
//! 7. [`cache::fill`] makes one upstream fetch per key, coalescing waiters;
//! 8. [`cache::leader`] fetches via [`upstream`], revalidates, or serves stale;
//! 9. bytes stream into a spool and to every waiter, verified, then committed;
//! 10. [`metrics`] counts it all.

pub mod admin;
pub mod auth;
pub mod body;
pub mod cache;
pub mod config;
pub mod conn;
pub mod console;
pub mod grpc;
pub mod host_http;
pub mod metrics;
pub mod plugins;
pub mod public_url;
pub mod quota;
pub mod reqbody;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;
pub mod store;
pub mod upstream;
pub mod upstream_health;

use std::sync::Arc;

/// Run the gateway on `listener` with `config` until `shutdown` turns true.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: config::Config,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.storage.dir)
        .map_err(|e| anyhow::anyhow!("storage.dir {}: {e}", config.storage.dir.display()))?;
    let shared = match &config.shared {
        None => None,
        Some(cfg) => {
            let https = upstream::https_connector(&config.upstream)?;
            let tier =
                store::SharedTier::new(cfg, https).map_err(|e| anyhow::anyhow!("[shared]: {e}"))?;
            tracing::info!(bucket = %tier.status().url, node = cfg.node, "cluster mode: the shared tier is under the local store");
            match listener.local_addr() {
                _ if cfg.advertise.is_some() => {}
                Ok(addr) if !addr.ip().is_unspecified() => {
                    let scheme = if config.server.tls.is_some() {
                        "https"
                    } else {
                        "http"
                    };
                    tier.advertise(format!("{scheme}://{addr}"));
                }
                _ => tracing::warn!(
                    "[shared] advertise is not set and the listener has no specific address: other nodes cannot stream this node's fills, so each node fetches its own misses"
                ),
            }
            Some(Arc::new(tier))
        }
    };
    let mut metrics = metrics::Metrics::new();
    if let Some(tier) = &shared {
        metrics.register_shared(tier.clone());
    }
    let metrics = Arc::new(metrics);
    let blobs = store::FsBlobStore::open(&config.storage.dir)
        .map_err(|e| {
            anyhow::anyhow!(
                "opening the blob store in {}: {e}",
                config.storage.dir.display()
            )
        })?
        .with_min_free(&config.storage.dir, config.storage.min_free);
    let spools = store::BlobStore::clean_spools(&blobs).unwrap_or(0);
    if spools > 0 {
        tracing::info!(
            count = spools,
            "removed spool files left by an earlier process"
        );
    }
    let meta = store::SledMetaStore::open(&config.storage.dir.join("index"))
        .map_err(|e| anyhow::anyhow!("opening the index: {e}"))?;
    let store = store::Store {
        meta: Arc::new(store::CachedMetaStore::new(
            Arc::new(meta),
            config.storage.index_cache_entries,
        )),
        blobs: Arc::new(blobs),
        hot: Arc::new(store::HotBlobs::new(
            config.storage.memory_cache,
            config.storage.memory_cache_max_object,
        )),
        shared,
    };
    let cache_dir = config.plugin_cache_dir();
    let engine = plugins::PluginEngine::new(&config.plugins, Some(cache_dir))?;
    let registry =
        plugins::PluginRegistry::new(engine, config.plugins.dir.clone(), metrics.clone());
    // Adapters compile in the background (seconds on a cold compiled-code
    // cache): the gateway listens at once, and requests that need an
    // adapter wait for the load.
    tokio::spawn({
        let (registry, config) = (registry.clone(), config.clone());
        async move {
            registry.load(&plugins::builtin::builtins()).await;
            for r in &config.remotes {
                if r.mode != config::RemoteMode::Virtual
                    && registry.active().for_package(&r.package).is_none()
                {
                    tracing::warn!(remote = %r.name, package = %r.package, "no adapter serves this package type yet; requests will fail until one is loaded");
                }
            }
        }
    });
    if config.tokens.is_empty() {
        tracing::warn!(
            "no [[token]] is configured: access control is off, so anyone who can reach the gateway can upload, delete, flush and read the configuration"
        );
    } else {
        tracing::info!(tokens = config.tokens.len(), "access control is on");
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    let upstream = upstream::Upstream::new(&config.upstream)?;
    let tls = server::tls_acceptor(&config.server)?;
    let state = Arc::new(state::AppState::new(
        config.clone(),
        store,
        registry.clone(),
        upstream,
        metrics,
        host_http::RemoteHttp::capability,
    ));
    tokio::spawn(plugins::watch::run(
        registry,
        config.plugins.reload_debounce,
        shutdown.clone(),
    ));
    tokio::spawn(maintenance(state.clone(), shutdown.clone()));
    tokio::spawn(reclaim_orphans(state.clone(), shutdown.clone()));
    tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "artgate listening");
    // The grace of a stop counts from the signal, for the connections and
    // the commits after them together.
    let mut stopping = shutdown.clone();
    let signalled = tokio::spawn(async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::Instant::now()
    });
    server::serve(listener, state.clone(), tls, shutdown).await;
    // A fill's clients have their bytes before its commit ends: what is
    // left of the grace goes to the fills still running before the index
    // is flushed.
    let since = signalled
        .await
        .unwrap_or_else(|_| tokio::time::Instant::now());
    if !settle_fills(&state, since + config.server.shutdown_grace).await {
        tracing::warn!(
            fills = state.engine.fills.len(),
            "fills still running at the end of shutdown_grace were dropped; their entries stay absent"
        );
    }
    state.engine.store.meta.persist_access().ok();
    state.engine.store.meta.flush().ok();
    Ok(())
}

/// Wait until no fill is in flight, at most until `deadline`; whether none
/// is.
async fn settle_fills(state: &state::AppState, deadline: tokio::time::Instant) -> bool {
    while !state.engine.fills.is_empty() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    true
}

/// Blobs this process committed are spared by orphan reclaiming for this
/// long: their index insert follows the commit within milliseconds, but a
/// busy or slow disk may stretch that.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Orphan blob files are looked for at startup and then this often (each
/// pass lists the blob tree).
const ORPHAN_SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Delete orphan blob files (a crash between a commit's rename and its
/// index insert leaves one; they are not counted in `storage.max_size`, so
/// they would use the disk for good): at startup, in the background, and
/// then every [`ORPHAN_SCAN_EVERY`]. Blobs committed by this process in the
/// last [`ORPHAN_GRACE`] are spared.
async fn reclaim_orphans(
    state: Arc<state::AppState>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let res = state
            .engine
            .store
            .run(|store| store::reclaim_orphans(store, ORPHAN_GRACE))
            .await;
        match res {
            Ok(r) if r.blobs > 0 => {
                tracing::info!(
                    blobs = r.blobs,
                    bytes = r.bytes,
                    "deleted orphan blob files (no index entry knew them)"
                );
                state.engine.metrics.orphans_reclaimed(r.blobs, r.bytes);
            }
            Err(e) => tracing::warn!(error = %e, "reclaiming orphan blob files failed"),
            _ => {}
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(ORPHAN_SCAN_EVERY) => {}
        }
    }
}

/// Negative entries removed per upkeep round at most (the rest wait for
/// the next round, 5 s later).
const NEGATIVES_PER_ROUND: usize = 10_000;

/// Background upkeep: persist access times, drop expired negative entries,
/// evict beyond `max_size`, delete unreferenced blobs.
async fn maintenance(
    state: Arc<state::AppState>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let every = std::time::Duration::from_secs(5);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let max_size = state.config.storage.max_size;
        let res = state
            .engine
            .store
            .run(move |store| {
                let accessed = store.meta.persist_access()?;
                if let Some(shared) = &store.shared {
                    shared.note_access(accessed);
                }
                let mut negatives = store
                    .meta
                    .remove_negatives(store::now_ms(), NEGATIVES_PER_ROUND)?
                    .len() as u64;
                let mut evicted = 0;
                if store.meta.total_size() > max_size {
                    let r = store::evict_to(store, max_size)?;
                    evicted = r.blobs;
                    negatives += r.negatives;
                }
                store::gc(store)?;
                Ok((evicted, negatives))
            })
            .await;
        match res {
            Ok((evicted, negatives)) if evicted + negatives > 0 => {
                state.engine.metrics.evicted(evicted);
                state.engine.metrics.negatives_removed(negatives);
                if evicted > 0 {
                    state.memo.clear();
                }
            }
            Err(e) => tracing::warn!(error = %e, "store maintenance failed"),
            _ => {}
        }
        state
            .engine
            .metrics
            .set_store_bytes(state.engine.store.meta.total_size());
        match state.engine.store.apply_flushes().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(entries = n, "dropped entries another node flushed");
                state.memo.clear();
            }
            Err(e) => tracing::debug!(error = %e, "looking for other nodes' flushes failed"),
        }
        state.engine.store.upkeep_shared().await;
        let shared = state.engine.store.reshare(RESHARE_PER_ROUND).await;
        if shared > 0 {
            tracing::info!(
                entries = shared,
                "shared entries kept on this node while the bucket failed"
            );
        }
    }
}

/// Entries kept on this node during a bucket outage that one upkeep round
/// writes to the bucket at most.
const RESHARE_PER_ROUND: usize = 1_000;
