//! `cache-send` and `cache-expire`: an adapter reads an upstream answer
//! through its remote's cache and derives its own response from it, so
//! several shapes of client request share one stored answer and one
//! refresh (the git adapter answers every `ls-refs` of a repository from
//! one full ref listing).
//!
//! The fetch is the one forwarded requests get ([`super::leader`]):
//! coalesced per key, revalidated or refetched when expired, committed only
//! when verified (and, for git answers, whole and error-free), and served
//! stale when the upstream fails. It runs without adapter hooks: the
//! adapter is inside its own call while it waits, so `on-response` and
//! `inspect-body` are not called (a plan that asks for inspection is
//! refused).

use super::Outcome;
use super::fill::{FillState, Head};
use super::freshness::{self, now_ms};
use super::head::head_of_entry;
use super::leader::Job;
use super::plan;
use super::prefetch;
use crate::plugins::wit_http::{header_map, wit_headers};
use crate::plugins::{CallContext, wit};
use crate::state::{AppState, RemoteRuntime};
use crate::store::{EntryId, StoreError};
use bytes::Bytes;
use http::StatusCode;
use std::sync::Arc;

/// Why a `cache-send` gave no answer; the text goes to the adapter.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The plan cannot be used for a shared fetch.
    #[error("the cache plan is not usable for cache-send: {0}")]
    BadPlan(String),
    /// The fetch failed and no stored copy could stand in.
    #[error("the upstream fetch failed ({status}): {message}")]
    Failed {
        /// Status a client would have got.
        status: StatusCode,
        /// What went wrong.
        message: String,
    },
    /// The answer is larger than the caller's limit (it is still cached).
    #[error("the answer is {len} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the answer.
        len: u64,
        /// The caller's limit.
        limit: u32,
    },
    /// Reading the stored answer failed.
    #[error("reading the stored answer failed: {0}")]
    Read(#[from] std::io::Error),
}

impl SharedError {
    /// The status a client request would get for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            SharedError::BadPlan(_) | SharedError::TooLarge { .. } => StatusCode::BAD_GATEWAY,
            SharedError::Failed { status, .. } => *status,
            SharedError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Send `req` through `remote`'s cache under `wplan` and return at most
/// `limit` bytes of the answer, with `x-artifact-source` set.
pub async fn send(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    req: wit::OutgoingRequest,
    wplan: wit::CachePlan,
    limit: u32,
) -> Result<wit::IncomingResponse, SharedError> {
    if matches!(wplan.class, wit::CacheClass::NoStore) {
        return Err(SharedError::BadPlan("its class is no-store".into()));
    }
    if wplan.inspect_limit.is_some() {
        return Err(SharedError::BadPlan(
            "it sets inspect-limit, and no adapter hook runs for cache-send".into(),
        ));
    }
    let plan = plan::resolve(remote, &wplan).map_err(SharedError::BadPlan)?;
    let no_cache = freshness::NoCache::of(&header_map(&req.headers), &remote.cfg);
    // A fresh entry whose bytes are in memory: no task, no fill.
    let id = EntryId::new(&remote.cfg.name, &plan.key);
    let serves = |e: &crate::store::Entry| freshness::serves_fresh(e, now_ms(), no_cache);
    if let Some((entry, bytes)) = state.engine.store.fresh_in_memory(&id, serves) {
        let head = head_of_entry(&entry, Outcome::Hit);
        return answer(&head, bytes.to_vec(), limit);
    }
    let fill = prefetch::join_or_lead(state, &remote.cfg.name, id, |id| Job {
        engine: state.engine.clone(),
        remote: remote.clone(),
        plan,
        sent: wit::UpstreamRequest {
            method: req.method.clone(),
            target: req.url.clone(),
            headers: req.headers.clone(),
            forward_body: !req.body.is_empty(),
            use_credentials: req.use_credentials,
        },
        body: (!req.body.is_empty()).then(|| Bytes::from(req.body.clone())),
        req: wit::Request {
            id: String::new(),
            kind: wit::RouteKind::RemoteApi,
            method: req.method.clone(),
            path: req.url.trim_start_matches('/').to_owned(),
            query: None,
            headers: req.headers.clone(),
            body: None,
            body_too_large: false,
        },
        adapter: None,
        ctx: CallContext::idle(),
        id,
        prefetch: Default::default(),
        cluster: Default::default(),
    });
    let mut rx = fill.subscribe();
    loop {
        let current = rx.borrow_and_update().clone();
        match current {
            FillState::Done { head, data, len } => {
                if u64::from(limit) < len {
                    return Err(SharedError::TooLarge { len, limit });
                }
                let body = crate::store::read_whole(data, len).await?;
                return answer(&head, body, limit);
            }
            FillState::Failed(f) => {
                return Err(SharedError::Failed {
                    status: f.status,
                    message: f.message.clone(),
                });
            }
            FillState::Aborted(why) => {
                return Err(SharedError::Failed {
                    status: why.status,
                    message: why.message(),
                });
            }
            FillState::Uncacheable => {
                return Err(SharedError::Failed {
                    status: StatusCode::BAD_GATEWAY,
                    message: "the upstream response cannot be shared".into(),
                });
            }
            FillState::Pending | FillState::Streaming { .. } => {
                if rx.changed().await.is_err() {
                    return Err(SharedError::Failed {
                        status: StatusCode::BAD_GATEWAY,
                        message: "the upstream fetch ended without a result".into(),
                    });
                }
            }
        }
    }
}

/// The adapter's view of a stored answer.
fn answer(head: &Head, body: Vec<u8>, limit: u32) -> Result<wit::IncomingResponse, SharedError> {
    if body.len() as u64 > u64::from(limit) {
        return Err(SharedError::TooLarge {
            len: body.len() as u64,
            limit,
        });
    }
    let mut headers = wit_headers(&head.headers);
    headers.push(wit::Header {
        name: "x-artifact-source".into(),
        value: head.outcome.source().unwrap_or_default().into(),
    });
    Ok(wit::IncomingResponse {
        status: head.status.as_u16(),
        headers,
        body,
    })
}

/// Mark `remote`'s entry under `key` expired now, if it expires at all
/// and is still fresh: the next request revalidates or refetches it, and
/// until then it stays the stale copy.
pub fn expire(state: &AppState, remote: &str, key: &str) -> Result<(), StoreError> {
    let store = &state.engine.store;
    let expired = store.meta.update_entry(remote, key, &|e| {
        let now = now_ms();
        if let Some(t) = e.expires_at_ms
            && t > now
        {
            e.expires_at_ms = Some(now);
        }
    })?;
    // In a cluster the bucket's record expires too, or the next request
    // would adopt it back as fresh.
    if let Some(e) = expired {
        store.write_through(&crate::store::EntryId::new(remote, key), e);
    }
    Ok(())
}
