//! A body the adapter inspects (an index, a manifest): buffered whole, up
//! to the plan's limit, and handed to the adapter's `inspect-body` before
//! anything is published. The adapter may refuse it (the stored copy is
//! served stale, if any), update the plan, replace the bytes, and name
//! references and files to prefetch. The upstream's bytes are verified
//! against the plan's digest before any replacement.

use super::commit::{commit, deliver_unstored};
use super::stored::serve_stale;
use super::tee::Body;
use super::{FillError, Job, Prefetch, Published};
use crate::cache::checksum::Checksum;
use crate::cache::fill::Fill;
use crate::cache::head::{response_headers, stored_headers};
use crate::cache::plan::apply_update;
use crate::plugins::wit_http;
use crate::store::{Digest, Entry};
use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;

/// Buffer the body, let the adapter inspect it, then store what it
/// accepted (or serve `stale` when it refuses the body).
pub(super) async fn run(
    job: &Job,
    fill: &Arc<Fill>,
    b: Body,
    limit: u32,
    stale: Option<Entry>,
) -> Result<Published, FillError> {
    let Body {
        mut plan,
        mut head,
        mut entry,
        spool,
        data,
        framed,
        idle,
        body,
    } = b;
    let Some(adapter) = job.adapter.clone() else {
        return Err(FillError::bad_gateway(
            "a body to inspect needs an adapter to inspect it",
        ));
    };
    let engine = &job.engine;
    let remote_name = &job.remote.cfg.name;
    let expected_len = head.size;
    let buf = read_bounded(body, idle, limit).await?;
    if expected_len.is_some_and(|l| l != buf.len() as u64) {
        return Err(FillError::bad_gateway(
            "the upstream body is shorter or longer than its Content-Length",
        ));
    }
    engine.metrics.upstream_bytes(remote_name, buf.len() as u64);
    let wresp = wit_http::upstream_response(StatusCode::OK, &head.headers);
    let verdict = adapter
        .inspect_body(job.ctx.clone(), &job.remote.info, &job.req, &wresp, &buf)
        .await
        .map_err(|e| FillError::new(e.status(), e.to_string()))?;
    // The adapter refused the body: keep what we have.
    if let Some(r) = verdict.fail {
        tracing::warn!(remote = %remote_name, key = %plan.key, reason = %r.message, "adapter refused the upstream body; nothing stored");
        if let Some(old) = stale {
            return serve_stale(job, fill, old).await;
        }
        return Err(FillError::rejected(r));
    }
    let verified = plan.expected.is_some() || plan.checksum.is_some();
    // The upstream bytes are verified before any replacement.
    if let Some(exp) = &plan.expected {
        let actual = Digest::of(&buf);
        if actual != *exp {
            return Err(FillError::bad_gateway(format!(
                "the upstream sent content with digest {actual}, expected {exp}"
            )));
        }
        plan.expected = None;
    }
    if let Some(exp) = plan.checksum.take() {
        let actual = Checksum::of(exp.algorithm, &buf);
        if actual != exp {
            return Err(FillError::bad_gateway(format!(
                "the upstream sent content with digest {actual}, expected {exp}"
            )));
        }
    }
    if let Some(u) = &verdict.update {
        apply_update(&mut plan, u).map_err(FillError::bad_gateway)?;
        head.headers = response_headers(&plan, &head.headers);
        entry.class = plan.class;
    }
    let prefetch = verdict.prefetch;
    entry.references = verdict.references;
    // Bytes the adapter wrote are its own, not the upstream's encoding.
    if verdict.replace.is_some() {
        head.headers.remove(header::CONTENT_ENCODING);
    }
    let bytes = verdict.replace.unwrap_or(buf);
    head.size = Some(bytes.len() as u64);
    entry.content_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    entry.headers = stored_headers(&head.headers);
    // A digest an update named holds for what is stored, as its sha256.
    let checksum = plan
        .checksum
        .as_ref()
        .map(|c| Checksum::of(c.algorithm, &bytes));
    let spool = engine
        .store
        .write(spool, Bytes::from(bytes))
        .await
        .map_err(FillError::store)?;
    if !framed && !verified {
        let len = spool.len();
        return Ok(deliver_unstored(job, fill, Arc::new(head), data, len));
    }
    let released = commit(job, fill, plan, head, entry, spool, data, checksum).await?;
    // What a stored index references is fetched next; an index that could
    // not be stored asks for nothing.
    if released.stored && !prefetch.is_empty() {
        let _ = job.prefetch.set(Prefetch {
            remote: job.remote.clone(),
            adapter,
            paths: prefetch,
        });
    }
    Ok(released.published)
}

/// The whole body, read with at most `idle` between frames; more than
/// `limit` bytes is an error.
async fn read_bounded(
    mut body: Incoming,
    idle: Duration,
    limit: u32,
) -> Result<Vec<u8>, FillError> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(FillError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the upstream stalled while sending the body",
                ));
            }
            Ok(None) => return Ok(buf),
            Ok(Some(Err(e))) => {
                return Err(FillError::bad_gateway(format!(
                    "the upstream body broke off: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data() {
                    buf.extend_from_slice(&d);
                    if buf.len() > limit as usize {
                        return Err(FillError::bad_gateway(format!(
                            "the upstream body is larger than the adapter's inspection limit of {limit} bytes"
                        )));
                    }
                }
            }
        }
    }
}
