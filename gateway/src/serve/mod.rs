//! The request path of a remote (`/api/v1/remote/…` and `/v2/…`), top to
//! bottom:
//!
//! 1. find the remote and check the route family and `allow` patterns;
//! 2. **fresh hit?** — a remembered decision maps the request to a key, the
//!    store has a fresh entry: serve it (no wasm on this path);
//! 3. otherwise ask the adapter to `plan` the request;
//! 4. `forward` → lookup by the planned key → fresh: serve; else join or
//!    lead the fill for the key (coalesced, streamed) and serve from it;
//!    `respond` / `reject` → answer; `hosted` → the hosted store.

pub mod hosted;
pub mod virtual_remote;

use crate::body::{self, ResBody};
use crate::cache::freshness::{self, now_ms};
use crate::cache::head::{REPRESENTATION_HEADERS, head_of_entry, outgoing};
use crate::cache::leader::Job;
use crate::cache::memo::RequestShape;
use crate::cache::plan;
use crate::cache::prefetch;
use crate::cache::range::{self, RangeSpec};
use crate::cache::reader;
use crate::cache::upstream_head::{self, HeadAnswer, HeadJob};
use crate::cache::{FillState, Head, Joined, Source};
use crate::config::RemoteMode;
use crate::host_http::RemoteHttp;
use crate::metrics::Outcome;
use crate::plugins::{AdapterKv, CallContext, wit};
use crate::reqbody::ClientBody;
use crate::state::{AppState, RemoteRuntime};
use crate::store::{BlobRead, Content, Entry, EntryClass, EntryId};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use std::sync::Arc;
use std::time::Instant;

/// Which URL family a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/api/v1/remote/...`.
    RemoteApi,
    /// `/v2/...`.
    Registry,
}

/// Request headers never shown to adapters (credentials of the client).
const HIDDEN_HEADERS: [header::HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

fn err(
    family: Family,
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> Response<ResBody> {
    match family {
        Family::Registry => body::oci_error(status, code, message),
        Family::RemoteApi => body::error(status, message),
    }
}

/// Serve a request for `remote` at the normalised `path`.
pub async fn handle(
    state: Arc<AppState>,
    parts: Parts,
    body: crate::reqbody::ClientStream,
    family: Family,
    remote_name: &str,
    path: &str,
    request_id: &str,
) -> (Response<ResBody>, Outcome) {
    serve(
        state,
        parts,
        ClientBody::Unread(body),
        family,
        remote_name,
        path,
        request_id,
    )
    .await
}

/// [`handle`] with the client body in any state; virtual remotes call it
/// for their members.
pub async fn serve(
    state: Arc<AppState>,
    parts: Parts,
    body: ClientBody,
    family: Family,
    remote_name: &str,
    path: &str,
    request_id: &str,
) -> (Response<ResBody>, Outcome) {
    let Some(remote) = state.remotes.get(remote_name).cloned() else {
        return (
            err(
                family,
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                format!("unknown remote {remote_name:?}"),
            ),
            Outcome::Error,
        );
    };
    let is_docker = remote.cfg.package == "docker";
    if family == Family::Registry && !is_docker {
        return (
            err(
                family,
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!(
                    "remote {remote_name:?} is a {} remote, not a docker registry",
                    remote.cfg.package
                ),
            ),
            Outcome::Error,
        );
    }
    if family == Family::RemoteApi && is_docker {
        return (
            err(
                family,
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!("remote {remote_name:?} is a docker registry; use /v2/{remote_name}/..."),
            ),
            Outcome::Error,
        );
    }
    if !remote.cfg.allows(path) {
        return (
            err(
                family,
                StatusCode::FORBIDDEN,
                "DENIED",
                format!("path {path:?} is not allowed on remote {remote_name:?}"),
            ),
            Outcome::Error,
        );
    }
    if remote.cfg.mode == RemoteMode::Virtual {
        // Boxed: a member may itself be virtual.
        return Box::pin(virtual_remote::handle(
            state.clone(),
            parts,
            body,
            &remote,
            path,
            request_id,
        ))
        .await;
    }
    let active = state.plugins.ready_active().await;
    let Some(adapter) = active.for_package(&remote.cfg.package).cloned() else {
        return (
            err(
                family,
                StatusCode::BAD_GATEWAY,
                "UNSUPPORTED",
                format!("no adapter serves package type {:?}", remote.cfg.package),
            ),
            Outcome::Error,
        );
    };
    let query = parts.uri.query();
    let is_read = parts.method == Method::GET || parts.method == Method::HEAD;
    let shape = RequestShape {
        adapter_sha: &adapter.sha256,
        remote: remote_name,
        path,
        query,
        headers: &parts.headers,
    };

    // A request planned before: no wasm. A fresh entry is a hit; a fetch
    // of its key in progress is joined (a burst of clients asking for one
    // uncached object plans it once, not once per client).
    if is_read
        && !freshness::client_wants_revalidation(&parts.headers)
        && let Some(key) = state.memo.lookup(shape)
    {
        let id = EntryId::new(remote_name, &key);
        if let Some((e, data)) = fresh_entry(&state, &id, false).await {
            let outcome = hit_outcome(&e);
            return (
                serve_entry(&state, &parts, &remote, e, data, Source::Cache, family).await,
                outcome,
            );
        }
        if let Some(fill) = state.fills.in_flight(&id) {
            state.metrics.coalesced(remote_name);
            return serve_fill(&state, &parts, &remote, fill, family).await;
        }
    }

    let ctx = CallContext {
        adapter: Arc::from(adapter.name()),
        request_id: Arc::from(request_id),
        kv: Some(Arc::new(AdapterKv::new(
            state.store.meta.clone(),
            adapter.name(),
            &remote.cfg.name,
        ))),
        http: Some(Arc::new(RemoteHttp {
            state: state.clone(),
            remote: remote.clone(),
        })),
    };
    let mut wreq = wit::Request {
        id: request_id.to_owned(),
        kind: match family {
            Family::RemoteApi => wit::RouteKind::RemoteApi,
            Family::Registry => wit::RouteKind::Registry,
        },
        method: parts.method.as_str().to_owned(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .filter(|(k, _)| !HIDDEN_HEADERS.contains(k))
            .filter_map(|(k, v)| {
                Some(wit::Header {
                    name: k.as_str().to_owned(),
                    value: v.to_str().ok()?.to_owned(),
                })
            })
            .collect(),
        body: None,
        body_too_large: false,
    };
    let mut client_body = body;
    let started = Instant::now();
    let mut decision = adapter.plan(ctx.clone(), &remote.info, &wreq).await;
    state
        .metrics
        .plugin_call(adapter.name(), "plan", started.elapsed().as_secs_f64());
    // The adapter may ask to see the (bounded, decoded) request body once,
    // and is then asked again.
    if let Ok(wit::Decision::ReadBody(limit)) = &decision {
        let limit = (*limit).min(state.config.server.max_inspect_bytes) as usize;
        match client_body.read_for_adapter(limit, &parts.headers).await {
            Ok((b, view)) => {
                client_body = b;
                wreq.body = view.body;
                wreq.body_too_large = view.too_large;
            }
            Err(e) => {
                return (
                    err(family, e.status(), "UNSUPPORTED", e.to_string()),
                    Outcome::Error,
                );
            }
        }
        let started = Instant::now();
        decision = adapter.plan(ctx.clone(), &remote.info, &wreq).await;
        state
            .metrics
            .plugin_call(adapter.name(), "plan", started.elapsed().as_secs_f64());
        if let Ok(wit::Decision::ReadBody(_)) = &decision {
            state.metrics.plugin_error(adapter.name(), "bad_output");
            return (
                err(
                    family,
                    StatusCode::BAD_GATEWAY,
                    "UNKNOWN",
                    format!(
                        "the {} adapter asked for the request body twice",
                        adapter.name()
                    ),
                ),
                Outcome::Error,
            );
        }
    }
    let decision = match decision {
        Ok(d) => d,
        Err(e) => {
            state.metrics.plugin_error(adapter.name(), e.kind());
            tracing::error!(remote = remote_name, adapter = adapter.name(), error = %e, "adapter failed");
            return (
                err(
                    family,
                    e.status(),
                    "UNKNOWN",
                    format!("the {} adapter failed: {e}", adapter.name()),
                ),
                Outcome::Error,
            );
        }
    };
    match decision {
        wit::Decision::Respond(r) => match direct(r) {
            Ok(resp) => (resp, Outcome::Direct),
            Err(m) => {
                state.metrics.plugin_error(adapter.name(), "bad_output");
                tracing::error!(remote = remote_name, adapter = adapter.name(), error = %m, "adapter returned an invalid direct response");
                (
                    err(
                        family,
                        StatusCode::BAD_GATEWAY,
                        "UNKNOWN",
                        format!(
                            "the {} adapter returned an invalid response: {m}",
                            adapter.name()
                        ),
                    ),
                    Outcome::Error,
                )
            }
        },
        wit::Decision::Reject(r) => {
            let code = r.code.clone().unwrap_or_else(|| "DENIED".into());
            (
                err(family, body::error_status(r.status), &code, r.message),
                Outcome::Error,
            )
        }
        wit::Decision::ReadBody(_) => (
            err(
                family,
                StatusCode::BAD_GATEWAY,
                "UNKNOWN",
                "the adapter asked for the request body twice",
            ),
            Outcome::Error,
        ),
        wit::Decision::Hosted(op) => {
            if let wit::HostedOp::Read(r) = &op {
                state.memo.remember(shape, &[], &r.key);
            }
            let planner = hosted::Planner {
                adapter: &adapter,
                ctx: ctx.clone(),
                req: &wreq,
            };
            match hosted::handle(&state, &remote, &parts, op, client_body, planner).await {
                Ok(hosted::Outcome::Done(resp)) => (resp, Outcome::Hosted),
                Ok(hosted::Outcome::Read(entry, read)) => {
                    let mut entry = *entry;
                    if let Some(ct) = read.content_type {
                        entry.content_type = Some(ct);
                    }
                    for h in read.response_headers {
                        entry.headers.push((h.name.to_ascii_lowercase(), h.value));
                    }
                    match open_blob(&state, &remote, &entry).await {
                        Some(data) => (
                            serve_entry(
                                &state,
                                &parts,
                                &remote,
                                Arc::new(entry),
                                data,
                                Source::Cache,
                                family,
                            )
                            .await,
                            Outcome::Hosted,
                        ),
                        None => (
                            err(
                                family,
                                StatusCode::NOT_FOUND,
                                "NOT_FOUND",
                                format!(
                                    "{path} is indexed but its content is missing; run artgate fsck"
                                ),
                            ),
                            Outcome::Error,
                        ),
                    }
                }
                Err(e) => (
                    err(family, e.status(), "UNSUPPORTED", e.to_string()),
                    Outcome::Error,
                ),
            }
        }
        wit::Decision::Forward(fwd) => {
            let plan = match plan::resolve(&remote, &fwd.plan) {
                Ok(p) => p,
                Err(m) => {
                    state.metrics.plugin_error(adapter.name(), "bad_output");
                    return (
                        err(family, StatusCode::BAD_GATEWAY, "UNKNOWN", m),
                        Outcome::Error,
                    );
                }
            };
            // A request is shared and cached only when its body (if any)
            // is known whole: GET/HEAD, or a body the adapter read.
            let body_bytes = if fwd.upstream.forward_body {
                client_body.buffered()
            } else {
                None
            };
            let shareable = is_read || (fwd.upstream.forward_body && body_bytes.is_some());
            if !shareable || matches!(fwd.plan.class, wit::CacheClass::NoStore) {
                return bypass(&state, &parts, &remote, &fwd.upstream, client_body, family).await;
            }
            if is_read {
                state.memo.remember(shape, &fwd.plan.vary, &plan.key);
            }
            let wants_reval = freshness::client_wants_revalidation(&parts.headers);
            let id = EntryId::new(remote_name, &plan.key);
            if let Some((e, data)) = fresh_entry(&state, &id, wants_reval).await {
                let outcome = hit_outcome(&e);
                return (
                    serve_entry(&state, &parts, &remote, e, data, Source::Cache, family).await,
                    outcome,
                );
            }
            if parts.method == Method::HEAD && upstream_head::allowed(&plan, &fwd.upstream) {
                let job = HeadJob {
                    state: &state,
                    remote: &remote,
                    adapter: &adapter,
                    ctx: &ctx,
                    req: &wreq,
                    sent: &fwd.upstream,
                    plan: &plan,
                };
                if let Some(answer) = head_miss(job, &parts, &id, family).await {
                    return answer;
                }
            }
            let fill = match state.fills.join(&id) {
                Joined::Leader(fill) => {
                    let job = Job {
                        engine: state.engine(),
                        remote: remote.clone(),
                        plan,
                        sent: fwd.upstream,
                        body: body_bytes,
                        req: wreq,
                        adapter: Some(adapter.clone()),
                        ctx,
                        id,
                        prefetch: Default::default(),
                    };
                    prefetch::lead(state.clone(), job, fill.clone());
                    fill
                }
                Joined::Waiter(fill) => {
                    state.metrics.coalesced(remote_name);
                    fill
                }
            };
            serve_fill(&state, &parts, &remote, fill, family).await
        }
    }
}

/// A `HEAD` the store cannot answer: join a fetch of the key in progress,
/// else ask the upstream with a `HEAD` ([`upstream_head`]) and store
/// nothing. `None`: go on as for a `GET` (an expired entry to revalidate
/// or serve stale, or an upstream whose `HEAD` answer says nothing).
async fn head_miss(
    job: HeadJob<'_>,
    parts: &Parts,
    id: &EntryId,
    family: Family,
) -> Option<(Response<ResBody>, Outcome)> {
    let (state, remote) = (job.state, job.remote);
    if let Some(fill) = state.fills.in_flight(id) {
        state.metrics.coalesced(&remote.cfg.name);
        return Some(serve_fill(state, parts, remote, fill, family).await);
    }
    if get_entry(state, id).await.is_some() {
        return None;
    }
    match upstream_head::ask(job).await {
        HeadAnswer::Found(head) => {
            // A HEAD answer has no body; the data source is never read.
            let src = FillOrBlob::Memory(Bytes::new());
            let resp = respond_from(state, parts, &remote.cfg.name, &head, src);
            Some((resp, Outcome::Bypass))
        }
        HeadAnswer::Failed(f) => {
            let code = match &f.code {
                Some(c) => c.as_str(),
                None if f.status == StatusCode::NOT_FOUND => "NOT_FOUND",
                None => "UNAVAILABLE",
            };
            let resp = err(family, f.status, code, f.message.clone()).tap_source(Source::Remote);
            Some((resp, Outcome::Error))
        }
        HeadAnswer::UseGet => None,
    }
}

/// The entry for `id`, or `None` (also when the index read fails: logged,
/// and treated as a miss).
async fn get_entry(state: &Arc<AppState>, id: &EntryId) -> Option<Arc<Entry>> {
    state.store.entry(id).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "index read failed; treating as a miss");
        None
    })
}

/// How a fresh hit counts: `stale` while the entry stands in for a failed
/// upstream (its `X-Artifact-Source` says the same), else `hit`.
fn hit_outcome(e: &Entry) -> Outcome {
    if e.stale_since_ms.is_some() {
        Outcome::Stale
    } else {
        Outcome::Hit
    }
}

/// A fresh entry for `id` with its content ([`crate::store::Store::fresh`]:
/// no blocking task when both are in memory). `None` when absent, expired
/// (or `client_no_cache` on a revalidatable entry), or when its blob has
/// gone missing — the caller then treats it as a miss.
async fn fresh_entry(
    state: &Arc<AppState>,
    id: &EntryId,
    client_no_cache: bool,
) -> Option<(Arc<Entry>, Content)> {
    let serves = move |e: &Entry| freshness::serves_fresh(e, now_ms(), client_no_cache);
    state.store.fresh(id, serves).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "index read failed; treating as a miss");
        None
    })
}

/// Open an entry's content (hosted reads, whose entry is already loaded).
async fn open_blob(
    state: &Arc<AppState>,
    remote: &RemoteRuntime,
    entry: &Entry,
) -> Option<Content> {
    match state.store.open(&entry.blob).await {
        Ok(Some(d)) => Some(Content::Blob(d)),
        _ => {
            tracing::warn!(remote = %remote.cfg.name, blob = %entry.blob, "indexed blob is missing");
            None
        }
    }
}

/// Serve a stored entry whose content is open.
async fn serve_entry(
    state: &Arc<AppState>,
    parts: &Parts,
    remote: &Arc<RemoteRuntime>,
    entry: Arc<Entry>,
    data: Content,
    source: Source,
    family: Family,
) -> Response<ResBody> {
    // Hosted completeness: an entry whose references are missing is absent.
    for reference in &entry.references {
        if get_entry(state, &EntryId::new(&remote.cfg.name, reference))
            .await
            .is_none()
        {
            return err(
                family,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "{} references {reference}, which is missing",
                    parts.uri.path()
                ),
            );
        }
    }
    if entry.class == EntryClass::NotFound {
        return err(
            family,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{} was not found upstream (cached)", parts.uri.path()),
        )
        .tap_source(source);
    }
    state.store.meta.touch(&entry.blob);
    let head = head_of_entry(&entry, source);
    respond_from(
        state,
        parts,
        &remote.cfg.name,
        &head,
        match data {
            Content::Memory(bytes) => FillOrBlob::Memory(bytes),
            Content::Blob(data) => FillOrBlob::Blob(data, entry.size),
        },
    )
}

enum FillOrBlob {
    Memory(Bytes),
    Blob(Arc<dyn BlobRead>, u64),
    Fill(tokio::sync::watch::Receiver<FillState>),
}

/// Build the response for a head and a data source, honouring HEAD,
/// `Range` and `If-None-Match`.
fn respond_from(
    state: &Arc<AppState>,
    parts: &Parts,
    remote: &str,
    head: &Head,
    src: FillOrBlob,
) -> Response<ResBody> {
    let mut resp = Response::new(body::empty());
    *resp.headers_mut() = head.headers.clone();
    let h = resp.headers_mut();
    h.insert(
        "x-artifact-source",
        HeaderValue::from_static(head.source.as_str()),
    );
    if let Some(size) = head.size {
        h.insert("x-artifact-size", HeaderValue::from(size));
    }
    if head.status != StatusCode::OK {
        *resp.status_mut() = head.status;
        return resp;
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Conditional GET from the client.
    if let (Some(inm), Some(etag)) = (
        parts.headers.get(header::IF_NONE_MATCH),
        head.headers.get(header::ETAG),
    ) {
        let etag = etag.as_bytes();
        if inm.as_bytes() == b"*"
            || inm
                .to_str()
                .map(|s| {
                    s.split(',')
                        .any(|t| t.trim().trim_start_matches("W/").as_bytes() == etag)
                })
                .unwrap_or(false)
        {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            return resp;
        }
    }
    // `If-Modified-Since` counts only without `If-None-Match` (RFC 9110
    // 13.1.3); `apk update` sends it for APKINDEX.tar.gz.
    let http_date = |v: &HeaderValue| httpdate::parse_http_date(v.to_str().ok()?).ok();
    if !parts.headers.contains_key(header::IF_NONE_MATCH)
        && let Some(since) = parts
            .headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(http_date)
        && let Some(modified) = head.headers.get(header::LAST_MODIFIED).and_then(http_date)
        && modified <= since
    {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    let range_hdr = parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (start, end, status) = match (head.size, range::parse(range_hdr, head.size.unwrap_or(0))) {
        (Some(len), RangeSpec::Partial { start, end }) if range_hdr.is_some() => {
            (start, Some(end), {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                StatusCode::PARTIAL_CONTENT
            })
        }
        (Some(len), RangeSpec::Unsatisfiable) if range_hdr.is_some() => {
            let mut r = body::error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the requested range is outside the {len}-byte object"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        (size, _) => (0, size, StatusCode::OK),
    };
    *resp.status_mut() = status;
    if let Some(e) = end {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(e - start));
    }
    if parts.method == Method::HEAD {
        return resp;
    }
    let metrics = state.metrics.clone();
    let remote = remote.to_owned();
    let on_end: reader::OnEnd = Box::new(move |n| metrics.served_bytes(&remote, n));
    *resp.body_mut() = match src {
        FillOrBlob::Memory(bytes) => {
            let len = bytes.len() as u64;
            reader::memory_body(bytes, start, end.unwrap_or(len), on_end)
        }
        FillOrBlob::Blob(data, len) => {
            reader::blob_body(data, len, start, end.unwrap_or(len), on_end)
        }
        FillOrBlob::Fill(rx) => reader::fill_body(rx, start, end, on_end),
    };
    resp
}

async fn serve_fill(
    state: &Arc<AppState>,
    parts: &Parts,
    remote: &Arc<RemoteRuntime>,
    fill: Arc<crate::cache::Fill>,
    family: Family,
) -> (Response<ResBody>, Outcome) {
    let rx = fill.subscribe();
    match fill.head().await {
        FillState::Streaming { head, .. } | FillState::Done { head, .. } => {
            let outcome = match head.source {
                Source::Remote => Outcome::Miss,
                Source::Cache => Outcome::Revalidated,
                Source::Stale => Outcome::Stale,
            };
            if head.status == StatusCode::NOT_FOUND {
                let mut r = err(
                    family,
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("{} was not found upstream", parts.uri.path()),
                );
                r.headers_mut().insert(
                    "x-artifact-source",
                    HeaderValue::from_static(head.source.as_str()),
                );
                return (r, outcome);
            }
            let resp = respond_from(state, parts, &remote.cfg.name, &head, FillOrBlob::Fill(rx));
            if parts.method == Method::HEAD {
                return (resp, outcome);
            }
            let (head_parts, body) = resp.into_parts();
            match body::primed(body).await {
                Ok(body) => (Response::from_parts(head_parts, body), outcome),
                // Failed before its first byte: the fill says why.
                Err(e) => match fill.subscribe().borrow().clone() {
                    FillState::Aborted(why) => (
                        err(family, why.status, "UNAVAILABLE", why.message()),
                        Outcome::Error,
                    ),
                    _ => (
                        err(
                            family,
                            StatusCode::BAD_GATEWAY,
                            "UNAVAILABLE",
                            e.to_string(),
                        ),
                        Outcome::Error,
                    ),
                },
            }
        }
        FillState::Failed(f) => {
            let code = match &f.code {
                Some(c) => c.as_str(),
                None if f.status == StatusCode::NOT_FOUND => "NOT_FOUND",
                None => "UNAVAILABLE",
            };
            (
                err(family, f.status, code, f.message.clone()),
                Outcome::Error,
            )
        }
        FillState::Aborted(why) => (
            err(family, why.status, "UNAVAILABLE", why.message()),
            Outcome::Error,
        ),
        FillState::Pending | FillState::Uncacheable => (
            err(
                family,
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                "the upstream response cannot be shared",
            ),
            Outcome::Error,
        ),
    }
}

/// Stream an uncacheable request straight through (`no-store`, or a
/// method other than GET/HEAD).
async fn bypass(
    state: &Arc<AppState>,
    parts: &Parts,
    remote: &Arc<RemoteRuntime>,
    up: &wit::UpstreamRequest,
    client_body: ClientBody,
    family: Family,
) -> (Response<ResBody>, Outcome) {
    let mut out = outgoing(up);
    let sent = match (up.forward_body, client_body) {
        (false, _) => state.upstream.send(&remote.cfg, &out).await,
        (true, ClientBody::Buffered(b)) => {
            out.body = Some(b);
            state.upstream.send(&remote.cfg, &out).await
        }
        // Not buffered whole: stream it (no retries, no failover).
        (true, body) => {
            state
                .upstream
                .send_streaming(
                    &remote.cfg,
                    out.method.clone(),
                    &out.target,
                    &out.headers,
                    out.use_credentials,
                    body.into_upstream(),
                )
                .await
        }
    };
    match sent {
        Err(e) => {
            state.metrics.upstream_request(&remote.cfg.name, e.kind());
            (
                err(family, e.status(), "UNAVAILABLE", e.to_string()),
                Outcome::Error,
            )
        }
        Ok((resp, _)) => {
            state
                .metrics
                .upstream_request(&remote.cfg.name, resp.status().as_str());
            let (rparts, incoming) = resp.into_parts();
            let mut r = Response::new(body::empty());
            *r.status_mut() = rparts.status;
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::ETAG,
                header::LAST_MODIFIED,
                header::CACHE_CONTROL,
            ]
            .into_iter()
            .chain(REPRESENTATION_HEADERS)
            {
                for v in rparts.headers.get_all(&name) {
                    r.headers_mut().append(name.clone(), v.clone());
                }
            }
            r.headers_mut()
                .insert("x-artifact-source", HeaderValue::from_static("remote"));
            if parts.method != Method::HEAD {
                use http_body_util::BodyExt;
                *r.body_mut() = incoming
                    .map_err(|e| -> body::BoxError { Box::new(e) })
                    .boxed_unsync();
            }
            (r, Outcome::Bypass)
        }
    }
}

/// A direct answer from an adapter, checked: an invalid status or header
/// is refused (the caller answers 502) rather than sent or silently dropped.
/// Framing headers are the server's business and are not taken from adapters.
fn direct(r: wit::DirectResponse) -> Result<Response<ResBody>, String> {
    let status = StatusCode::from_u16(r.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| format!("status {} is not an HTTP status from 200 to 599", r.status))?;
    let mut resp = Response::new(body::full(r.body));
    *resp.status_mut() = status;
    for h in r.headers {
        let k = header::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("{:?} is not a valid header name", h.name))?;
        let v = HeaderValue::from_str(&h.value)
            .map_err(|_| format!("the value of header {k} is not a valid header value"))?;
        if k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING || k == header::CONNECTION
        {
            continue;
        }
        resp.headers_mut().append(k, v);
    }
    Ok(resp)
}

trait TapSource {
    fn tap_source(self, source: Source) -> Self;
}

impl TapSource for Response<ResBody> {
    fn tap_source(mut self, source: Source) -> Self {
        self.headers_mut().insert(
            "x-artifact-source",
            HeaderValue::from_static(source.as_str()),
        );
        self
    }
}
