//! The `forward` decision: the plan resolved with the remote's defaults;
//! an uncacheable request is passed through ([`super::bypass`]); otherwise
//! the decision is remembered, a fresh entry for the planned key is a hit,
//! a `HEAD` miss may be answered by an upstream `HEAD`, and else the client
//! joins or leads the one fill of the key and is served from it.

use super::bypass::bypass;
use super::error::ServeError;
use super::fill::{head_miss, serve_fill};
use super::plan::Asked;
use super::request::{Req, Served};
use super::respond::serve_entry;
use crate::cache::Outcome;
use crate::cache::freshness;
use crate::cache::head::stored_outcome;
use crate::cache::leader::Job;
use crate::cache::memo::RequestShape;
use crate::cache::plan;
use crate::cache::prefetch;
use crate::cache::upstream_head::{self, HeadJob};
use crate::plugins::wit;
use crate::store::EntryId;
use http::{Method, StatusCode};

/// Carry out a `forward` decision for the request `shape` describes.
pub async fn forward(
    req: &Req<'_>,
    shape: RequestShape<'_>,
    fwd: wit::Forward,
    asked: Asked,
) -> Result<Served, ServeError> {
    let (state, parts, remote) = (req.state, req.parts, req.remote);
    let Asked {
        adapter,
        ctx,
        req: wreq,
        body: client_body,
    } = asked;
    let plan = plan::resolve(remote, &fwd.plan).map_err(|m| {
        state
            .engine
            .metrics
            .plugin_error(adapter.name(), "bad_output");
        ServeError::new(StatusCode::BAD_GATEWAY, "UNKNOWN", m)
    })?;
    // A request is shared and cached only when its body (if any)
    // is known whole: GET/HEAD, or a body the adapter read.
    let body_bytes = if fwd.upstream.forward_body {
        client_body.buffered()
    } else {
        None
    };
    let is_read = req.is_read();
    let shareable = is_read || (fwd.upstream.forward_body && body_bytes.is_some());
    if !shareable || matches!(fwd.plan.class, wit::CacheClass::NoStore) {
        return bypass(req, &fwd.upstream, client_body).await;
    }
    if is_read {
        state.memo.remember(shape, &fwd.plan.vary, &plan.key);
    }
    let wants_reval = freshness::NoCache::of(&parts.headers, &remote.cfg);
    let id = EntryId::new(req.remote_name(), &plan.key);
    if let Some((e, data)) = req.engine.fresh(&id, wants_reval).await {
        let outcome = stored_outcome(&e, Outcome::Hit);
        return Ok((serve_entry(req, e, data, Outcome::Hit).await, outcome));
    }
    if parts.method == Method::HEAD && upstream_head::allowed(&plan, &fwd.upstream) {
        let job = HeadJob {
            state,
            remote,
            adapter: &adapter,
            ctx: &ctx,
            req: &wreq,
            sent: &fwd.upstream,
            plan: &plan,
        };
        if let Some(answer) = head_miss(job, req, &id).await {
            return answer;
        }
    }
    let fill = prefetch::join_or_lead(state, req.remote_name(), id, |id| Job {
        engine: state.engine.clone(),
        remote: remote.clone(),
        plan,
        sent: fwd.upstream,
        body: body_bytes,
        req: wreq,
        adapter: Some(adapter.clone()),
        ctx,
        id,
        prefetch: Default::default(),
        cluster: Default::default(),
    });
    serve_fill(req, fill).await
}
