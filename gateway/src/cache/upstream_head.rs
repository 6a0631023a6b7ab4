//! A `HEAD` for an object the store does not have, answered from an
//! upstream `HEAD`: the client learns the status, type, size and
//! validators without the gateway downloading (and storing) the whole
//! object — a `HEAD` for a 4 GiB file used to cost 4 GiB.
//!
//! The rule is decided from the adapter's plan, so no adapter has to
//! change ([`allowed`]): the plan must forward a bodiless `GET` whose
//! upstream body the adapter does not inspect. An inspected body (docker
//! manifests, PyPI index pages) may be rewritten or checked before it is
//! served, so its head is only known after the whole body — those `HEAD`s
//! still fetch and store it, as before. The adapter still sees the
//! upstream's answer in `on-response` (a registry's token dance works for
//! `HEAD` too). Nothing is stored and concurrent `HEAD`s are not
//! coalesced (each is one small upstream request).

use super::Outcome;
use super::fill::{Failure, Head};
use super::head::{body_size, response_headers};
use super::leader::MAX_ADAPTER_RETRIES;
use super::plan::{Plan, apply_update};
use crate::host_http::remember_realm;
use crate::plugins::wit_http::{self, outgoing};
use crate::plugins::{Adapter, CallContext, wit};
use crate::state::{AppState, RemoteRuntime};
use http::{Method, StatusCode};
use std::sync::Arc;

/// What an upstream `HEAD` gave.
pub enum HeadAnswer {
    /// The upstream has the object: serve this head (status 200), no body.
    Found(Head),
    /// The client gets this error (upstream 404, adapter refusal, the
    /// upstream unreachable).
    Failed(Failure),
    /// The upstream's answer to `HEAD` says nothing about `GET` (405, 403
    /// from a URL signed for `GET`, a 5xx, a redirect the policy refused):
    /// fetch the object as for a `GET`.
    UseGet,
}

/// Everything a `HEAD` needs; borrowed from the request path.
pub struct HeadJob<'a> {
    /// Shared gateway state.
    pub state: &'a Arc<AppState>,
    /// The remote.
    pub remote: &'a Arc<RemoteRuntime>,
    /// The adapter (for `on-response`).
    pub adapter: &'a Arc<Adapter>,
    /// Call context for adapter calls.
    pub ctx: &'a CallContext,
    /// The client request as the adapter saw it.
    pub req: &'a wit::Request,
    /// The upstream request the adapter planned (a `GET`).
    pub sent: &'a wit::UpstreamRequest,
    /// The resolved plan.
    pub plan: &'a Plan,
}

/// Whether a `HEAD` planned as `up` + `plan` may be answered from an
/// upstream `HEAD` (see the module docs).
pub fn allowed(plan: &Plan, up: &wit::UpstreamRequest) -> bool {
    up.method.eq_ignore_ascii_case("GET") && !up.forward_body && plan.inspect_limit.is_none()
}

/// Send the planned request as a `HEAD` (the adapter's retries too) and
/// turn the answer into a head for the client.
pub async fn ask(job: HeadJob<'_>) -> HeadAnswer {
    let state = job.state;
    let remote_name = job.remote.cfg.name.as_str();
    let mut sent = as_head(job.sent.clone());
    let mut plan = job.plan.clone();
    let mut attempt = 0u32;
    loop {
        let mut out = outgoing(&sent);
        out.method = Method::HEAD;
        let resp = match state.engine.upstream.send(&job.remote.cfg, &out).await {
            Ok((resp, _)) => resp,
            Err(e) => {
                state.engine.metrics.upstream_request(remote_name, e.kind());
                return HeadAnswer::Failed(failure(e.status(), e.to_string(), None));
            }
        };
        state
            .engine
            .metrics
            .upstream_request(remote_name, resp.status().as_str());
        remember_realm(job.remote, resp.headers());
        let wresp = wit_http::upstream_response(resp.status(), resp.headers());
        let verdict = job
            .adapter
            .on_response(
                job.ctx.clone(),
                &job.remote.info,
                job.req,
                &sent,
                &wresp,
                attempt,
            )
            .await;
        match verdict {
            Err(e) => {
                tracing::error!(remote = %remote_name, adapter = job.adapter.name(), error = %e, "adapter failed in on-response");
                return HeadAnswer::Failed(failure(e.status(), e.to_string(), None));
            }
            Ok(wit::AfterHeaders::Fail(r)) => {
                return HeadAnswer::Failed(failure(
                    crate::body::error_status(r.status),
                    r.message,
                    r.code,
                ));
            }
            Ok(wit::AfterHeaders::Retry(next)) => {
                attempt += 1;
                if attempt > MAX_ADAPTER_RETRIES {
                    return HeadAnswer::Failed(failure(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "the adapter retried the upstream request more than {MAX_ADAPTER_RETRIES} times"
                        ),
                        None,
                    ));
                }
                sent = as_head(next);
                continue;
            }
            Ok(wit::AfterHeaders::Update(u)) => {
                if let Err(m) = apply_update(&mut plan, &u) {
                    return HeadAnswer::Failed(failure(StatusCode::BAD_GATEWAY, m, None));
                }
            }
            Ok(wit::AfterHeaders::Accept) => {}
        }
        return match resp.status() {
            StatusCode::OK => match body_size(&plan, resp.headers()) {
                Ok(size) => HeadAnswer::Found(Head {
                    status: StatusCode::OK,
                    headers: response_headers(&plan, resp.headers()),
                    size,
                    outcome: Outcome::Bypass,
                }),
                Err(m) => HeadAnswer::Failed(failure(StatusCode::BAD_GATEWAY, m, None)),
            },
            StatusCode::NOT_FOUND | StatusCode::GONE => HeadAnswer::Failed(failure(
                StatusCode::NOT_FOUND,
                format!("{} was not found upstream", job.req.path),
                None,
            )),
            _ => HeadAnswer::UseGet,
        };
    }
}

/// `up` as a `HEAD` (what the adapter sees as sent, so a retry it builds
/// from it stays a `HEAD`).
fn as_head(mut up: wit::UpstreamRequest) -> wit::UpstreamRequest {
    up.method = "HEAD".into();
    up
}

fn failure(status: StatusCode, message: String, code: Option<String>) -> Failure {
    Failure {
        status,
        message,
        code,
    }
}
