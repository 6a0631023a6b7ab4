//! The upstream request of a fill and the adapter's `on-response` loop:
//! the adapter sees each answer's status and headers and accepts it,
//! updates the plan, fails the fill, or asks for another request (at most
//! [`MAX_ADAPTER_RETRIES`] times).

use super::{FillError, Job, MAX_ADAPTER_RETRIES};
use crate::cache::plan::{Plan, apply_update};
use crate::host_http::remember_realm;
use crate::plugins::wit;
use crate::plugins::wit_http::{self, outgoing};
use crate::upstream::{Outgoing, UpstreamError};
use http::{HeaderName, HeaderValue};
use hyper::body::Incoming;

/// An upstream answer the adapter accepted, with its body still unread.
pub(super) struct Fetched {
    /// The response.
    pub resp: http::Response<Incoming>,
    /// The plan, as the adapter updated it.
    pub plan: Plan,
    /// The request that was answered (the adapter's last retry).
    pub sent: wit::UpstreamRequest,
}

/// How the upstream request ended.
pub(super) enum Answer {
    /// A response, accepted by the adapter (boxed: it is ten times the
    /// size of the error, and made once per fill).
    Response(Box<Fetched>),
    /// No response: the upstream could not be reached, did not answer in
    /// time, or the request could not be made.
    Unanswered(UpstreamError),
}

/// Send the job's request (with `validators` on the first attempt only)
/// and hand each answer to the adapter's `on-response` until it accepts
/// one. A fetch without an adapter accepts the first answer.
pub(super) async fn send(
    job: &Job,
    validators: Vec<(HeaderName, HeaderValue)>,
) -> Result<Answer, FillError> {
    let engine = &job.engine;
    let remote_name = &job.remote.cfg.name;
    let mut sent = job.sent.clone();
    let mut out = request(job, &sent);
    for (name, value) in validators {
        out.headers.insert(name, value);
    }
    let mut plan = job.plan.clone();
    let mut attempt = 0u32;
    loop {
        let (resp, _url) = match engine.upstream.send(&job.remote.cfg, &out).await {
            Ok(r) => r,
            Err(e) => {
                engine.metrics.upstream_request(remote_name, e.kind());
                tracing::warn!(remote = %remote_name, key = %job.plan.key, error = %e, "upstream request failed");
                return Ok(Answer::Unanswered(e));
            }
        };
        engine
            .metrics
            .upstream_request(remote_name, resp.status().as_str());
        remember_realm(&job.remote, resp.headers());
        let Some(adapter) = &job.adapter else {
            return Ok(Answer::Response(Box::new(Fetched { resp, plan, sent })));
        };
        let wresp = wit_http::upstream_response(resp.status(), resp.headers());
        let verdict = adapter
            .on_response(
                job.ctx.clone(),
                &job.remote.info,
                &job.req,
                &sent,
                &wresp,
                attempt,
            )
            .await;
        match verdict {
            Err(e) => {
                tracing::error!(remote = %remote_name, adapter = adapter.name(), error = %e, "adapter failed in on-response");
                return Err(FillError::new(e.status(), e.to_string()));
            }
            Ok(wit::AfterHeaders::Accept) => {
                return Ok(Answer::Response(Box::new(Fetched { resp, plan, sent })));
            }
            Ok(wit::AfterHeaders::Update(u)) => {
                apply_update(&mut plan, &u).map_err(FillError::bad_gateway)?;
                return Ok(Answer::Response(Box::new(Fetched { resp, plan, sent })));
            }
            Ok(wit::AfterHeaders::Fail(r)) => return Err(FillError::rejected(r)),
            Ok(wit::AfterHeaders::Retry(next)) => {
                attempt += 1;
                if attempt > MAX_ADAPTER_RETRIES {
                    return Err(FillError::bad_gateway(format!(
                        "the adapter retried the upstream request more than {MAX_ADAPTER_RETRIES} times"
                    )));
                }
                sent = next;
                out = request(job, &sent);
            }
        }
    }
}

/// The request the upstream client sends for `sent`, with the client's
/// body when the adapter forwards it.
fn request(job: &Job, sent: &wit::UpstreamRequest) -> Outgoing {
    let mut out = outgoing(sent);
    if sent.forward_body {
        out.body = job.body.clone();
    }
    out
}
