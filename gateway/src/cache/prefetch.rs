//! Background prefetch: after an inspected index (e.g. `repomd.xml`) is
//! stored, fetch the files it references into the cache, so the next client
//! run is served entirely from cache and a later outage does not strand
//! clients with an index whose files the gateway never saw.
//!
//! Each path goes through the adapter's `plan` like a client request and
//! through the same per-key fill (so a client asking for the same file at
//! the same time shares the fetch). Concurrency and count are bounded.

use super::freshness::now_ms;
use super::leader::Prefetch;
use super::leader::{self, Job};
use super::{Fill, Joined};
use crate::plugins::{Adapter, wit};
use crate::state::{AppState, RemoteRuntime};
use crate::store::EntryId;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Fetches in flight at once per prefetch batch.
pub const CONCURRENCY: usize = 4;
/// Paths taken from one index (the rest are ignored and logged).
pub const MAX_PATHS: usize = 256;

/// Lead `fill` in the background, then prefetch the files it asks for.
pub fn lead(state: Arc<AppState>, job: Job, fill: Arc<Fill>) {
    tokio::spawn(run_then_prefetch(state, job, fill));
}

/// The one fill of `id`: joined when one is in flight (counted as a
/// coalesced request of `remote`), else led in the background by the job
/// `job` builds for `id` ([`lead`]). Used by every caller that serves
/// from a fill.
pub fn join_or_lead(
    state: &Arc<AppState>,
    remote: &str,
    id: EntryId,
    job: impl FnOnce(EntryId) -> Job,
) -> Arc<Fill> {
    match state.engine.fills.join(&id) {
        Joined::Leader(fill) => {
            lead(state.clone(), job(id), fill.clone());
            fill
        }
        Joined::Waiter(fill) => {
            state.engine.metrics.coalesced(remote);
            fill
        }
    }
}

async fn run_then_prefetch(state: Arc<AppState>, job: Job, fill: Arc<Fill>) {
    if let Some(next) = leader::run(job, fill).await {
        spawn(state, next);
    }
}

/// Start prefetching the files an index referenced, in the background.
pub fn spawn(state: Arc<AppState>, prefetch: Prefetch) {
    let Prefetch {
        remote,
        adapter,
        paths,
    } = prefetch;
    if paths.len() > MAX_PATHS {
        tracing::warn!(remote = %remote.cfg.name, count = paths.len(), max = MAX_PATHS, "too many prefetch paths; taking the first ones");
    }
    tokio::spawn(async move {
        let sem = Arc::new(Semaphore::new(CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for path in paths.into_iter().take(MAX_PATHS) {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let (state, remote, adapter) = (state.clone(), remote.clone(), adapter.clone());
            set.spawn(async move {
                let _permit = permit;
                if let Err(why) = prefetch_one(state, remote.clone(), adapter, &path).await {
                    tracing::debug!(remote = %remote.cfg.name, path = %path, why, "prefetch skipped");
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
}

async fn prefetch_one(
    state: Arc<AppState>,
    remote: Arc<RemoteRuntime>,
    adapter: Arc<Adapter>,
    raw: &str,
) -> Result<(), String> {
    let path =
        crate::routes::normalize_path(raw.trim_start_matches('/')).map_err(|e| e.to_string())?;
    if !remote.cfg.allows(&path) {
        return Err("not allowed by the remote's allow patterns".into());
    }
    let request_id = format!("{}-prefetch", state.request_id());
    let ctx = state.call_context(&remote, &adapter, &request_id, None);
    let req = wit::Request {
        id: request_id,
        kind: wit::RouteKind::RemoteApi,
        method: "GET".into(),
        path: path.clone(),
        query: None,
        headers: Vec::new(),
        body: None,
        body_too_large: false,
    };
    let decision = adapter
        .plan(ctx.clone(), &remote.info, &req)
        .await
        .map_err(|e| e.to_string())?;
    let wit::Decision::Forward(fwd) = decision else {
        return Err("the adapter did not forward it".into());
    };
    if matches!(fwd.plan.class, wit::CacheClass::NoStore) {
        return Err("not cacheable".into());
    }
    let plan = super::plan::resolve(&remote, &fwd.plan)?;
    let id = EntryId::new(&remote.cfg.name, &plan.key);
    let existing = state.engine.entry(&id).await;
    if existing.is_some_and(|e| e.is_fresh(now_ms())) {
        return Err("already cached".into());
    }
    match state.engine.fills.join(&id) {
        Joined::Waiter(_) => Err("already being fetched".into()),
        Joined::Leader(fill) => {
            let job = Job {
                engine: state.engine.clone(),
                remote,
                plan,
                sent: fwd.upstream,
                body: None,
                req,
                adapter: Some(adapter),
                ctx,
                id,
                prefetch: Default::default(),
                cluster: Default::default(),
            };
            run_then_prefetch(state, job, fill).await;
            Ok(())
        }
    }
}
