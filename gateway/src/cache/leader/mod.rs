//! The fill leader: the one task per key that talks to the upstream,
//! revalidates or refetches, streams the body into a spool while
//! publishing progress to waiters, verifies it, commits it (invariants 3,
//! 4 and 5) — or falls back to the stale copy when the upstream fails.

use super::engine::Engine;
use super::fill::{Abort, Failure, Fill, FillState, Head, Source};
use super::freshness::{self, Lookup, now_ms};
use super::head::{
    body_size, head_of_entry, header_str, outgoing, request_headers, response_headers,
    stored_headers, wit_headers,
};
use super::plan::{Plan, apply_update};
use crate::host_http::remember_realm;
use crate::plugins::{Adapter, CallContext, wit};
use crate::state::RemoteRuntime;
use crate::store::{BlobRead, Digest, Entry, EntryClass, EntryId, StoreError, Validators};
use crate::upstream::UpstreamError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Most `retry` answers an adapter may give for one fetch.
pub const MAX_ADAPTER_RETRIES: u32 = 3;

/// Everything the leader needs; owned, since it runs in its own task.
pub struct Job {
    /// What the fill uses of the gateway.
    pub engine: Engine,
    /// The remote.
    pub remote: Arc<RemoteRuntime>,
    /// The resolved plan.
    pub plan: Plan,
    /// The upstream request as the adapter asked for it.
    pub sent: wit::UpstreamRequest,
    /// The client's body, when it is forwarded (buffered whole).
    pub body: Option<Bytes>,
    /// The client request as the adapter saw it.
    pub req: wit::Request,
    /// The adapter (for `on-response` and `inspect-body`); none for a
    /// fetch an adapter asked for from inside a call (`cache-send`), whose
    /// responses are accepted as they come and never inspected.
    pub adapter: Option<Arc<Adapter>>,
    /// Call context for adapter calls.
    pub ctx: CallContext,
    /// The entry the fill fills (the fill's id too).
    pub id: EntryId,
    /// Set when a stored index asks for the files it references to be
    /// fetched too ([`run`] returns it).
    pub prefetch: OnceLock<Prefetch>,
}

/// Files an inspected index references, to fetch into the cache next
/// ([`super::prefetch::spawn`]).
pub struct Prefetch {
    /// The remote they belong to.
    pub remote: Arc<RemoteRuntime>,
    /// The adapter that plans them.
    pub adapter: Arc<Adapter>,
    /// Their paths, relative to the remote.
    pub paths: Vec<String>,
}

/// Run the fill to completion, publishing every step to `fill`'s waiters,
/// then remove it from the in-flight map. What the adapter writes to its
/// key-value store meanwhile is held back and written only when a verified
/// body is committed (`plugins/kv.rs`). Returns the files a stored index
/// asked to prefetch.
pub async fn run(mut job: Job, fill: Arc<Fill>) -> Option<Prefetch> {
    job.ctx = job.ctx.deferring_kv();
    let engine = job.engine.clone();
    let id = job.id.clone();
    engine.metrics.fills_inflight(1);
    let outcome = fetch(&job, &fill).await;
    // Leave the map before publishing a failure: a request arriving after
    // it is published must start a new fetch, not join this dead one.
    engine.fills.finish(&id, &fill);
    if let Err(f) = outcome {
        // Clients only see their connection cut: say why once, here.
        if let FillState::Aborted(why) = &f {
            tracing::warn!(remote = %job.remote.cfg.name, key = %job.plan.key, culprit = ?why.culprit, reason = %why.reason, "fill aborted after the headers; nothing stored");
        }
        fill.publish(f);
    }
    engine.metrics.fills_inflight(-1);
    job.prefetch.into_inner()
}

fn failed(status: StatusCode, message: impl Into<String>) -> FillState {
    FillState::Failed(Arc::new(Failure {
        status,
        message: message.into(),
        code: None,
    }))
}

/// An adapter's refusal as the fill's failure; a status that is not an
/// error becomes 502.
fn rejected(r: wit::Rejection) -> FillState {
    FillState::Failed(Arc::new(Failure {
        status: crate::body::error_status(r.status),
        message: r.message,
        code: r.code,
    }))
}

async fn fetch(job: &Job, fill: &Arc<Fill>) -> Result<(), FillState> {
    let engine = &job.engine;
    let remote_name = job.remote.cfg.name.clone();
    // Double-check: a fill that finished just before this one started may
    // have stored what we need.
    let existing = engine
        .store
        .entry(&job.id)
        .await
        .map_err(store_failure)?
        .map(Arc::unwrap_or_clone);
    // An entry whose blob went missing (evicted or damaged) is a miss.
    let (existing, data) = match existing {
        Some(e) => match open_blob(engine, &e.blob).await {
            Some(d) => (Some(e), Some(d)),
            None => (None, None),
        },
        None => (None, None),
    };
    if let (Some(e), Some(data)) = (&existing, data) {
        let forced = freshness::client_wants_revalidation(&request_headers(&job.req));
        if matches!(
            freshness::classify(Some(e.clone()), now_ms(), forced),
            Lookup::Fresh(_)
        ) {
            publish_done(fill, e, data, Source::Cache);
            return Ok(());
        }
    }
    // Content-addressed hit: an immutable object whose digest this remote
    // already holds under another key (a manifest fetched by tag, now asked
    // for by digest) is served from the store without the upstream, which
    // may be down. Only within the remote: another remote's content may
    // come from a registry this one's clients may not read.
    if existing.is_none()
        && job.plan.class == EntryClass::Immutable
        && let Some(digest) = job.plan.expected
        && let Some(entry) = entry_from_sibling(job, digest).await?
    {
        return publish_entry(job, fill, entry, Source::Cache).await;
    }

    // HEAD-compare revalidation (e.g. a tag's digest) before any GET.
    if let (Some(old), Validators::HeadCompare(h)) = (&existing, &job.plan.validator)
        && old.compare_value.is_some()
    {
        let mut out = outgoing(&job.sent);
        out.method = Method::HEAD;
        match engine.upstream.send(&job.remote.cfg, &out).await {
            Ok((resp, _)) if resp.status().is_success() => {
                engine
                    .metrics
                    .upstream_request(&remote_name, resp.status().as_str());
                let now = resp
                    .headers()
                    .get(h.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if now.is_some() && now == old.compare_value {
                    return refresh_and_publish(job, fill, old.clone(), Source::Cache).await;
                }
            }
            Ok((resp, _)) if resp.status().is_server_error() => {
                engine
                    .metrics
                    .upstream_request(&remote_name, resp.status().as_str());
                return serve_stale(job, fill, old.clone()).await;
            }
            Ok((resp, _)) => engine
                .metrics
                .upstream_request(&remote_name, resp.status().as_str()),
            Err(e) => {
                engine.metrics.upstream_request(&remote_name, e.kind());
                return serve_stale(job, fill, old.clone()).await;
            }
        }
    }

    // The request, with validators when revalidating conditionally.
    let mut sent = job.sent.clone();
    let mut out = outgoing(&sent);
    if sent.forward_body {
        out.body = job.body.clone();
    }
    if let (Some(old), Validators::Conditional) = (&existing, &job.plan.validator)
        && old.class != EntryClass::NotFound
    {
        if let Some(v) = old
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            out.headers.insert(header::IF_NONE_MATCH, v);
        }
        if let Some(v) = old
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            out.headers.insert(header::IF_MODIFIED_SINCE, v);
        }
    }

    let mut plan = job.plan.clone();
    let mut attempt = 0u32;
    let resp = loop {
        let result = engine.upstream.send(&job.remote.cfg, &out).await;
        let (resp, _url) = match result {
            Ok(r) => r,
            Err(e) => {
                engine.metrics.upstream_request(&remote_name, e.kind());
                tracing::warn!(remote = %remote_name, key = %job.plan.key, error = %e, "upstream request failed");
                return match (&existing, &e) {
                    (
                        Some(old),
                        UpstreamError::Unreachable { .. } | UpstreamError::Timeout { .. },
                    ) => serve_stale(job, fill, old.clone()).await,
                    _ => Err(failed(e.status(), e.to_string())),
                };
            }
        };
        engine
            .metrics
            .upstream_request(&remote_name, resp.status().as_str());
        remember_realm(&job.remote, resp.headers());
        let wresp = wit::UpstreamResponse {
            status: resp.status().as_u16(),
            headers: wit_headers(resp.headers()),
        };
        let Some(adapter) = &job.adapter else {
            break resp;
        };
        let started = Instant::now();
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
        engine.metrics.plugin_call(
            adapter.name(),
            "on_response",
            started.elapsed().as_secs_f64(),
        );
        match verdict {
            Err(e) => {
                engine.metrics.plugin_error(adapter.name(), e.kind());
                tracing::error!(remote = %remote_name, adapter = adapter.name(), error = %e, "adapter failed in on-response");
                return Err(failed(e.status(), e.to_string()));
            }
            Ok(wit::AfterHeaders::Accept) => break resp,
            Ok(wit::AfterHeaders::Update(u)) => {
                apply_update(&mut plan, &u).map_err(|m| failed(StatusCode::BAD_GATEWAY, m))?;
                break resp;
            }
            Ok(wit::AfterHeaders::Fail(r)) => return Err(rejected(r)),
            Ok(wit::AfterHeaders::Retry(next)) => {
                attempt += 1;
                if attempt > MAX_ADAPTER_RETRIES {
                    return Err(failed(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "the adapter retried the upstream request more than {MAX_ADAPTER_RETRIES} times"
                        ),
                    ));
                }
                sent = next;
                out = outgoing(&sent);
                if sent.forward_body {
                    out.body = job.body.clone();
                }
            }
        }
    };

    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED {
        if let Some(old) = existing {
            return refresh_and_publish(job, fill, old, Source::Cache).await;
        }
        return Err(failed(
            StatusCode::BAD_GATEWAY,
            "the upstream answered 304 Not Modified to an unconditional request",
        ));
    }
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        let neg_ttl = job.remote.cfg.negative_ttl;
        if plan.cache_not_found && !neg_ttl.is_zero() {
            return store_not_found(job, fill, neg_ttl).await;
        }
        return Err(failed(
            StatusCode::NOT_FOUND,
            format!("{} was not found upstream", job.req.path),
        ));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Rate limited (Docker Hub's pull limits): a stored copy is better
        // than nothing; without one the client learns why.
        if let Some(old) = existing {
            return serve_stale(job, fill, old).await;
        }
        return Err(FillState::Failed(Arc::new(Failure {
            status,
            message: "the upstream is rate-limiting this gateway (429 Too Many Requests); try again later".into(),
            code: Some("TOOMANYREQUESTS".into()),
        })));
    }
    if status.is_server_error() {
        if let Some(old) = existing {
            return serve_stale(job, fill, old).await;
        }
        return Err(failed(
            StatusCode::BAD_GATEWAY,
            format!("the upstream answered {status}"),
        ));
    }
    if status != StatusCode::OK {
        return Err(failed(
            StatusCode::BAD_GATEWAY,
            format!("the upstream answered {status}, which this remote cannot cache"),
        ));
    }

    let head = Head {
        status: StatusCode::OK,
        headers: response_headers(&plan, resp.headers()),
        size: body_size(&plan, resp.headers()).map_err(|m| failed(StatusCode::BAD_GATEWAY, m))?,
        source: Source::Remote,
    };
    let etag = header_str(resp.headers(), header::ETAG);
    let last_modified = header_str(resp.headers(), header::LAST_MODIFIED);
    let compare_value = match &plan.validator {
        Validators::HeadCompare(h) => header_str(
            resp.headers(),
            HeaderName::from_bytes(h.as_bytes()).unwrap_or(header::ETAG),
        ),
        _ => None,
    };
    let entry_template = Entry {
        content_type: head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: stored_headers(&head.headers),
        etag,
        last_modified,
        compare_value,
        ..Entry::fetched(plan.class, plan.validator.clone(), sent.target.clone())
    };
    stream_and_commit(job, fill, plan, head, entry_template, resp, existing).await
}

async fn stream_and_commit(
    job: &Job,
    fill: &Arc<Fill>,
    mut plan: Plan,
    mut head: Head,
    mut entry: Entry,
    resp: http::Response<Incoming>,
    stale: Option<Entry>,
) -> Result<(), FillState> {
    let engine = &job.engine;
    let remote_name = job.remote.cfg.name.clone();
    let mut spool = engine.store.create_spool().await.map_err(store_failure)?;
    let data: Arc<dyn BlobRead> =
        Arc::new(SpoolRead(spool.reader().map_err(|e| {
            store_failure(StoreError::io("open spool", spool.path().display(), e))
        })?));
    let expected_len = head.size;
    // A close-delimited body ends cleanly also when the connection was cut
    // short: without a digest it is delivered but never stored.
    let framed = crate::upstream::body_is_framed(&resp);
    let idle = engine.upstream.idle_timeout();
    let mut body = resp.into_body();

    // Inspected bodies are buffered (bounded) and handed to the adapter
    // before anything is published.
    if let Some(limit) = plan.inspect_limit {
        let Some(adapter) = job.adapter.clone() else {
            return Err(failed(
                StatusCode::BAD_GATEWAY,
                "a body to inspect needs an adapter to inspect it",
            ));
        };
        let mut buf: Vec<u8> = Vec::new();
        loop {
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    return Err(failed(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the upstream stalled while sending the body",
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(failed(
                        StatusCode::BAD_GATEWAY,
                        format!("the upstream body broke off: {e}"),
                    ));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(d) = frame.into_data() {
                        buf.extend_from_slice(&d);
                        if buf.len() > limit as usize {
                            return Err(failed(
                                StatusCode::BAD_GATEWAY,
                                format!(
                                    "the upstream body is larger than the adapter's inspection limit of {limit} bytes"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if expected_len.is_some_and(|l| l != buf.len() as u64) {
            return Err(failed(
                StatusCode::BAD_GATEWAY,
                "the upstream body is shorter or longer than its Content-Length",
            ));
        }
        engine
            .metrics
            .upstream_bytes(&remote_name, buf.len() as u64);
        let wresp = wit::UpstreamResponse {
            status: 200,
            headers: head
                .headers
                .iter()
                .filter_map(|(k, v)| {
                    Some(wit::Header {
                        name: k.to_string(),
                        value: v.to_str().ok()?.to_owned(),
                    })
                })
                .collect(),
        };
        let started = Instant::now();
        let verdict = adapter
            .inspect_body(job.ctx.clone(), &job.remote.info, &job.req, &wresp, &buf)
            .await;
        engine.metrics.plugin_call(
            adapter.name(),
            "inspect_body",
            started.elapsed().as_secs_f64(),
        );
        let verdict = verdict.map_err(|e| {
            engine.metrics.plugin_error(adapter.name(), e.kind());
            failed(e.status(), e.to_string())
        })?;
        // The adapter refused the body: keep what we have.
        if let Some(r) = verdict.fail {
            tracing::warn!(remote = %remote_name, key = %plan.key, reason = %r.message, "adapter refused the upstream body; nothing stored");
            if let Some(old) = stale {
                return serve_stale(job, fill, old).await;
            }
            return Err(rejected(r));
        }
        let verified = plan.expected.is_some();
        // The upstream bytes are verified before any replacement.
        if let Some(exp) = &plan.expected {
            let actual = Digest::of(&buf);
            if actual != *exp {
                return Err(failed(
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream sent content with digest {actual}, expected {exp}"),
                ));
            }
            plan.expected = None;
        }
        if let Some(u) = &verdict.update {
            apply_update(&mut plan, u).map_err(|m| failed(StatusCode::BAD_GATEWAY, m))?;
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
        let sp = engine
            .store
            .write(spool, Bytes::from(bytes))
            .await
            .map_err(store_failure)?;
        if !framed && !verified {
            deliver_unstored(job, fill, Arc::new(head), data, sp.len());
            return Ok(());
        }
        commit(job, fill, plan, head, entry, sp).await?;
        if !prefetch.is_empty() {
            let _ = job.prefetch.set(Prefetch {
                remote: job.remote.clone(),
                adapter,
                paths: prefetch,
            });
        }
        return Ok(());
    }

    let head = Arc::new(head);
    // The head is published once the first bytes are in the spool, so a
    // store that cannot take them is a clean error status (507 for a full
    // disk) for every client rather than a 200 cut short.
    let mut headed = false;
    let mut written: u64 = 0;
    let mut published: u64 = 0;
    // git smart-HTTP answers are stored only when whole and error-free.
    let mut pkt_check = super::pktcheck::for_headers(&head.headers);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(FillState::Aborted(Abort::upstream(
                    "the upstream stalled while sending the body",
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(FillState::Aborted(Abort::upstream(format!(
                    "the upstream body broke off: {e}"
                ))));
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if chunk.is_empty() {
            continue;
        }
        written += chunk.len() as u64;
        if expected_len.is_some_and(|l| written > l) {
            return Err(FillState::Aborted(Abort::upstream(
                "the upstream sent more bytes than the announced size",
            )));
        }
        if let Err(e) = spool.write(&chunk) {
            let e = StoreError::io("write spool", spool.path().display(), e);
            tracing::error!(error = %e, "store failure during a fill");
            let abort = Abort::store(&e);
            if !headed {
                return Err(failed(abort.status, abort.message()));
            }
            return Err(FillState::Aborted(abort));
        }
        if !headed {
            headed = true;
            fill.publish(FillState::Streaming {
                head: head.clone(),
                data: data.clone(),
                readable: 0,
            });
        }
        if let Some(c) = pkt_check.as_mut() {
            c.feed(&chunk);
        }
        engine
            .metrics
            .upstream_bytes(&remote_name, chunk.len() as u64);
        // Publish everything but the newest chunk: the tail is released
        // only after verification.
        let releasable = written - chunk.len() as u64;
        if releasable > published {
            published = releasable;
            fill.publish(FillState::Streaming {
                head: head.clone(),
                data: data.clone(),
                readable: published,
            });
        }
    }
    if expected_len.is_some_and(|l| written != l) {
        return Err(FillState::Aborted(Abort::upstream(
            "the upstream body ended before the announced size",
        )));
    }
    if let Some(Err(why)) = pkt_check.as_ref().map(super::pktcheck::PktStream::finish) {
        // Complete as far as HTTP goes, so the waiting clients get all of
        // it (git shows them the upstream's message); nothing is stored.
        tracing::warn!(remote = %remote_name, key = %plan.key, reason = why, "upstream git answer delivered but not stored");
        fill.publish(FillState::Done {
            head,
            data,
            len: written,
        });
        return Ok(());
    }
    if !framed && plan.expected.is_none() {
        deliver_unstored(job, fill, head, data, written);
        return Ok(());
    }
    let head = Arc::try_unwrap(head).unwrap_or_else(|a| (*a).clone());
    commit(job, fill, plan, head, entry, spool).await
}

/// Hand a close-delimited body without a digest to the waiting clients
/// and keep nothing: its clean end may be a cut connection, and a cut body
/// stored would be served as whole for good.
fn deliver_unstored(job: &Job, fill: &Fill, head: Arc<Head>, data: Arc<dyn BlobRead>, len: u64) {
    tracing::warn!(remote = %job.remote.cfg.name, key = %job.plan.key, bytes = len, "the upstream body had neither Content-Length nor chunked framing and the plan no digest: delivered, not stored");
    fill.publish(FillState::Done { head, data, len });
}

async fn commit(
    job: &Job,
    fill: &Arc<Fill>,
    plan: Plan,
    mut head: Head,
    mut entry: Entry,
    spool: crate::store::Spool,
) -> Result<(), FillState> {
    let engine = &job.engine;
    let blob = match engine.store.commit(spool, plan.expected).await {
        Ok(b) => b,
        Err(StoreError::DigestMismatch { expected, actual }) => {
            tracing::error!(remote = %job.remote.cfg.name, key = %plan.key, %expected, %actual, "upstream content failed verification; nothing stored");
            return Err(FillState::Aborted(Abort::upstream(format!(
                "the upstream sent content with digest {actual}, expected {expected}"
            ))));
        }
        Err(e) => return Err(FillState::Aborted(Abort::store(&e))),
    };
    let now = now_ms();
    entry.blob = blob.digest;
    entry.size = blob.size;
    entry.stored_at_ms = now;
    if entry.class == EntryClass::Mutable {
        entry.ttl_ms = Some(plan.ttl.as_millis() as u64);
        entry.expires_at_ms = Some(now + plan.ttl.as_millis() as u64);
    }
    if let Err(e) = engine.store.put(&job.id, &entry, false).await {
        return Err(FillState::Aborted(Abort::store(&e)));
    }
    engine
        .metrics
        .set_store_bytes(engine.store.meta.total_size());
    apply_held_kv(job).await;
    let Some(data) = open_blob(engine, &blob.digest).await else {
        return Err(FillState::Aborted(Abort::store(&StoreError::io(
            "open committed blob",
            blob.digest,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))));
    };
    head.size = Some(blob.size);
    fill.publish(FillState::Done {
        head: Arc::new(head),
        data,
        len: blob.size,
    });
    Ok(())
}

/// The body is verified and stored: the facts the adapter wrote about it
/// may now be seen by later calls. A store failure loses only them.
async fn apply_held_kv(job: &Job) {
    let Some(kv) = job.ctx.kv.clone() else {
        return;
    };
    let remote = job.remote.cfg.name.clone();
    let adapter = job
        .adapter
        .as_ref()
        .map_or_else(String::new, |a| a.name().to_owned());
    let applied = job.engine.store.run(move |_| Ok(kv.apply())).await;
    if let Ok(Err(e)) = applied {
        tracing::warn!(remote = %remote, adapter = %adapter, error = %e, "adapter key-value writes of a verified fetch were lost");
    }
}

/// Store and return an entry for the job's key that points at `digest`,
/// when another entry of the same remote already holds that blob. The
/// plan's content type and headers apply (the sibling's content type when
/// the plan has none).
async fn entry_from_sibling(job: &Job, digest: Digest) -> Result<Option<Entry>, FillState> {
    let store = &job.engine.store;
    let Some(sibling) = store
        .entry_holding(&job.remote.cfg.name, digest)
        .await
        .map_err(store_failure)?
    else {
        return Ok(None);
    };
    let plan = &job.plan;
    let entry = Entry {
        blob: digest,
        size: sibling.size,
        stored_at_ms: now_ms(),
        content_type: plan.content_type.clone().or(sibling.content_type),
        headers: plan.headers.clone(),
        ..Entry::fetched(
            EntryClass::Immutable,
            plan.validator.clone(),
            job.sent.target.clone(),
        )
    };
    store
        .put(&job.id, &entry, false)
        .await
        .map_err(store_failure)?;
    tracing::debug!(remote = %job.remote.cfg.name, key = %plan.key, blob = %digest, "served from a stored copy with the same digest");
    Ok(Some(entry))
}

async fn open_blob(engine: &Engine, digest: &Digest) -> Option<Arc<dyn BlobRead>> {
    engine.store.open(digest).await.ok().flatten()
}

/// Publish a stored entry as the fill's result.
async fn publish_entry(
    job: &Job,
    fill: &Arc<Fill>,
    entry: Entry,
    source: Source,
) -> Result<(), FillState> {
    let Some(data) = open_blob(&job.engine, &entry.blob).await else {
        return Err(failed(
            StatusCode::BAD_GATEWAY,
            "the cached object is missing from the store",
        ));
    };
    publish_done(fill, &entry, data, source);
    Ok(())
}

/// Publish `entry`, whose blob is `data`, as the fill's result.
fn publish_done(fill: &Fill, entry: &Entry, data: Arc<dyn BlobRead>, source: Source) {
    fill.publish(FillState::Done {
        head: Arc::new(head_of_entry(entry, source)),
        data,
        len: entry.size,
    });
}

/// Refresh an entry's TTL (304, same digest, or stale fallback) and
/// publish it. A stale fallback marks the entry stale (its hits say so
/// until the upstream answers again); an upstream confirmation clears it.
async fn refresh_and_publish(
    job: &Job,
    fill: &Arc<Fill>,
    old: Entry,
    source: Source,
) -> Result<(), FillState> {
    let stale = source == Source::Stale;
    let fallback_ttl = match old.class {
        EntryClass::NotFound => job.remote.cfg.negative_ttl,
        _ => job.plan.ttl,
    };
    let updated = job
        .engine
        .store
        .update(&job.id, move |e: &mut Entry| {
            let ttl = e.ttl_ms.unwrap_or(fallback_ttl.as_millis() as u64);
            let now = now_ms();
            e.stored_at_ms = now;
            if e.expires_at_ms.is_some() {
                e.expires_at_ms = Some(now + ttl);
            }
            e.stale_since_ms = match (stale, e.stale_since_ms) {
                (true, since) => Some(since.unwrap_or(now)),
                (false, _) => None,
            };
        })
        .await
        .map_err(store_failure)?;
    publish_entry(job, fill, updated.unwrap_or(old), source).await
}

async fn serve_stale(job: &Job, fill: &Arc<Fill>, old: Entry) -> Result<(), FillState> {
    job.engine.metrics.stale_served(&job.remote.cfg.name);
    tracing::warn!(remote = %job.remote.cfg.name, key = %job.plan.key, "upstream unavailable; serving the stale copy");
    refresh_and_publish(job, fill, old, Source::Stale).await
}

async fn store_not_found(job: &Job, fill: &Arc<Fill>, ttl: Duration) -> Result<(), FillState> {
    let store = &job.engine.store;
    let blob = store.commit_empty().await.map_err(store_failure)?;
    let entry = Entry::negative(
        blob.digest,
        now_ms(),
        ttl.as_millis() as u64,
        job.sent.target.clone(),
    );
    store
        .put(&job.id, &entry, false)
        .await
        .map_err(store_failure)?;
    publish_entry(job, fill, entry, Source::Remote).await
}

fn store_failure(e: StoreError) -> FillState {
    tracing::error!(error = %e, "store failure during a fill");
    failed(e.status(), format!("the gateway's store failed: {e}"))
}

/// Positional reads of a spool file being written.
struct SpoolRead(std::fs::File);

impl BlobRead for SpoolRead {
    fn len(&self) -> u64 {
        self.0.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
    }
    fn as_file(&self) -> Option<&std::fs::File> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests;
