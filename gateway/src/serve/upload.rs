//! Hosted uploads: the body streamed into a spool (quota, `Content-MD5`,
//! declared digest checked as it comes; a multipart upload's `file` field),
//! optionally shown to the adapter's `inspect-body`, then committed
//! durably: `201` only after the index is flushed.
//!
//! Write-once (`refuse-overwrite` in the plan) and quotas (`max_size` on
//! the remote) are decided by the index, in the same transaction that
//! commits the entry ([`crate::store::EntryIndex::put_entry_checked`]): of concurrent
//! uploads to one new path of a write-once remote exactly one gets `201`,
//! the others `409`; concurrent uploads never make the remote's entries
//! total more than its quota (no overshoot). The remote's usage is a
//! counter in the index (O(1) per upload). Both are also checked early, as
//! a shortcut: an upload to an existing path is refused at once; an upload
//! declaring its length reserves it (`quota.rs`) and is refused at once
//! when the stored bytes plus the reservations of the uploads in progress
//! would exceed the quota; a streamed upload is checked against the same
//! sum as it streams. A concurrent upload that passed the early checks and
//! lost at the commit has spooled its bytes (at most the quota) and is
//! refused then. Nothing of a refused upload stays: its
//! spool is deleted, and a blob committed for it is recorded unreferenced
//! for garbage collection. On a remote that allows overwrites the last
//! upload to commit wins; the status says what the commit did (`201` when
//! it created the path, `200` when it replaced an entry).
//!
//! A refused upload's remaining body is read and dropped (bounded in size
//! and time) before the error is answered, so that an HTTP/1.1 client still
//! sending sees the status instead of a reset; a client that sent
//! `Expect: 100-continue` is answered without being asked for its body.

use super::error::HostedError;
use crate::body::{self, ResBody};
use crate::cache::freshness::now_ms;
use crate::cache::head::content_length;
use crate::plugins::{Adapter, CallContext, wit};
use crate::reqbody::ClientBody;
use crate::state::{AppState, RemoteRuntime};
use crate::store::{Digest, Entry, EntryId, PutCheck, PutOutcome, StoreError};
use futures_util::StreamExt;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use std::sync::Arc;

/// What `inspect-body` needs to show an upload to the adapter that planned
/// it: the adapter, its call context and the request as it saw it.
pub struct Inspector<'a> {
    /// The adapter.
    pub adapter: &'a Arc<Adapter>,
    /// Its call context.
    pub ctx: CallContext,
    /// The request as the adapter saw it.
    pub req: &'a wit::Request,
}

/// How much of a refused upload is read and dropped before the error is
/// answered, so that a client still sending its body reads the response
/// instead of a reset connection (HTTP/1.1 clients rarely read while they
/// write). Beyond this, or after [`DRAIN_TIME`], the connection is cut.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;
/// Longest time spent draining a refused upload.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// An upload body and whether it has been read from yet.
struct Upload {
    body: crate::upstream::ReqBody,
    polled: bool,
}

/// Store the upload `w` the adapter planned; a refused upload's remaining
/// body is drained first (see the module docs).
pub async fn write(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    parts: &Parts,
    w: wit::HostedWrite,
    body: ClientBody,
    inspector: Inspector<'_>,
) -> Result<Response<ResBody>, HostedError> {
    let mut upload = Upload {
        body: body.into_upstream(),
        polled: false,
    };
    // A browser-style upload: the content is the multipart field `file`.
    if let Some(boundary) = multipart_boundary(&parts.headers) {
        upload.polled = true;
        upload.body = multipart_file(
            std::mem::replace(
                &mut upload.body,
                http_body_util::Empty::new().map_err(|e| match e {}).boxed(),
            ),
            boundary,
        )
        .await?;
    }
    let result = store_upload(state, remote, parts, w, &mut upload, inspector).await;
    if result.is_err() {
        // A client that asked `Expect: 100-continue` has not sent a body
        // we have not asked for; reading it now would ask for it.
        let expects_continue = parts
            .headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if upload.polled || !expects_continue {
            drain(&mut upload.body).await;
        }
    }
    result
}

/// An error reading an upload's body as the client gets it: its stall
/// (`body_read_timeout`) or its interruption.
pub(super) fn body_error(e: crate::body::BoxError) -> HostedError {
    match crate::reqbody::BodyStalled::find(e.as_ref()) {
        Some(s) => HostedError::Stalled(s),
        None => HostedError::Interrupted(e.to_string()),
    }
}

/// Read and drop what is left of a refused upload's body (at most
/// [`DRAIN_LIMIT`] bytes for at most [`DRAIN_TIME`]), so that an HTTP/1.1
/// client still sending reads the error instead of a reset.
pub(super) async fn drain(body: &mut crate::upstream::ReqBody) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut dropped: u64 = 0;
        while dropped <= DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(f)) => {
                    dropped += f.data_ref().map_or(0, |d| d.len() as u64);
                }
                _ => break,
            }
        }
    })
    .await;
}

async fn store_upload(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    parts: &Parts,
    w: wit::HostedWrite,
    upload: &mut Upload,
    inspector: Inspector<'_>,
) -> Result<Response<ResBody>, HostedError> {
    let name = remote.cfg.name.clone();
    let previous = state
        .engine
        .store
        .entry(&EntryId::new(&name, &w.key))
        .await?;
    if w.refuse_overwrite && previous.is_some() {
        return Err(HostedError::Exists(w.key));
    }
    let expected: Option<Digest> = match &w.expected_digest {
        Some(d) => Some(d.parse().map_err(|e| {
            HostedError::Interrupted(format!("invalid declared digest {d:?}: {e}"))
        })?),
        None => None,
    };
    let declared_len = content_length(&parts.headers);
    let quota = remote.cfg.max_size;
    // Bytes the remote holds without the entry this upload replaces.
    // (An early estimate; the commit checks again atomically.)
    let used = if quota.is_some() {
        remote_size(state, &name)
            .await?
            .saturating_sub(previous.as_ref().map_or(0, |e| e.size))
    } else {
        0
    };
    let quota_error = |limit: u64| HostedError::Quota {
        remote: name.clone(),
        limit,
    };
    // A declared length is reserved at once (held until the commit is
    // done); a streamed body is checked against the reservations as it
    // grows, without reserving, so that concurrent streams cannot starve
    // each other (the commit decides between them). `over` says which
    // limit `len` bytes would break.
    let mut reservation = remote.uploads.reservation();
    let mut over = |len: u64| -> Option<u64> {
        let limit = quota?;
        let fits = match declared_len {
            Some(_) => reservation.ensure(len, used, limit),
            None => remote.uploads.fits(len, used, limit),
        };
        (!fits).then_some(limit)
    };
    if let Some(len) = declared_len
        && let Some(limit) = over(len)
    {
        return Err(quota_error(limit));
    }
    if let (Some(limit), Some(len)) = (w.inspect_limit, declared_len)
        && len > u64::from(limit)
    {
        return Err(HostedError::TooLarge { limit });
    }
    let mut spool = state.engine.store.create_spool().await?;
    // Until the commit, every early return drops the spool, which deletes
    // its file: nothing partial is left behind.
    let mut inspected: Option<Vec<u8>> = w.inspect_limit.map(|_| Vec::new());
    let declared_md5 = content_md5(&parts.headers)?;
    let mut md5 = declared_md5.map(|_| <md5::Md5 as md5::Digest>::new());
    let mut len: u64 = 0;
    upload.polled = true;
    while let Some(frame) = upload.body.frame().await {
        let frame = frame.map_err(body_error)?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        len += chunk.len() as u64;
        if let Some(limit) = over(len) {
            return Err(quota_error(limit));
        }
        if let (Some(buf), Some(limit)) = (inspected.as_mut(), w.inspect_limit) {
            if len > u64::from(limit) {
                return Err(HostedError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        if let Some(h) = md5.as_mut() {
            md5::Digest::update(h, &chunk);
        }
        spool
            .write(&chunk)
            .map_err(|e| StoreError::io("write spool", spool.path().display(), e))?;
    }
    if let (Some(declared), Some(h)) = (declared_md5, md5) {
        let actual: [u8; 16] = md5::Digest::finalize(h).into();
        if actual != declared {
            return Err(HostedError::Md5Mismatch);
        }
    }
    let mut content_type = w.content_type.clone();
    let mut references = Vec::new();
    let mut expected = expected;
    if let Some(buf) = inspected {
        let verdict = inspect(state, remote, &inspector, &buf).await?;
        if let Some(r) = verdict.fail {
            return Err(HostedError::BadUpload(r.message));
        }
        if let Some(u) = &verdict.update
            && let Some(ct) = &u.content_type
        {
            content_type = Some(ct.clone());
        }
        references = verdict.references;
        if let Some(replacement) = verdict.replace {
            // The client's bytes are verified before they are replaced.
            if let Some(exp) = expected.take() {
                let actual = spool.digest();
                if actual != exp {
                    return Err(HostedError::Mismatch {
                        expected: exp,
                        actual,
                    });
                }
            }
            let fresh = state.engine.store.create_spool().await?;
            spool = state
                .engine
                .store
                .write(fresh, bytes::Bytes::from(replacement))
                .await?;
        }
    }
    let new = NewEntry {
        key: &w.key,
        content_type,
        references,
        refuse_overwrite: w.refuse_overwrite,
        replans: true,
    };
    let (status, blob) = commit(state, remote, new, spool, expected).await?;
    let mut resp = body::json(
        status,
        &serde_json::json!({ "path": w.key, "size": blob.size, "sha256": blob.digest.hex() }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", blob.digest.hex())) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// A hosted entry to commit, besides its bytes.
pub struct NewEntry<'a> {
    /// Its key.
    pub key: &'a str,
    /// Its content type.
    pub content_type: Option<String>,
    /// The keys it references (a hosted read is 404 while one is missing).
    pub references: Vec<String>,
    /// Whether an existing key refuses it (409).
    pub refuse_overwrite: bool,
    /// Whether remembered plans are forgotten after the commit (an
    /// adapter's plans may depend on what is stored); the gRPC front's
    /// content-addressed writes change no plan.
    pub replans: bool,
}

/// Commit `spool` (checked against `expected`) as the hosted entry `new`
/// of `remote`, durably: the index is flushed before this returns.
/// Write-once and the quota are decided by the index in the same
/// transaction. `201` when it created the key, `200` when it replaced an
/// entry.
pub async fn commit(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    new: NewEntry<'_>,
    spool: crate::store::Spool,
    expected: Option<Digest>,
) -> Result<(StatusCode, crate::store::BlobRef), HostedError> {
    let key = new.key;
    let name = &remote.cfg.name;
    let quota = remote.cfg.max_size;
    let blob = match state.engine.store.commit(spool, expected).await {
        Ok(b) => b,
        Err(StoreError::DigestMismatch { expected, actual }) => {
            return Err(HostedError::Mismatch { expected, actual });
        }
        Err(e) => return Err(e.into()),
    };
    let entry = Entry::hosted(
        blob.digest,
        blob.size,
        now_ms(),
        new.content_type,
        new.references,
    );
    let check = PutCheck {
        if_absent: new.refuse_overwrite,
        quota,
    };
    let id = EntryId::new(name, key);
    let outcome = state
        .engine
        .store
        .put_checked(&id, entry, check, true)
        .await?;
    let status = match outcome {
        PutOutcome::Stored(None) => StatusCode::CREATED,
        PutOutcome::Stored(Some(_)) => StatusCode::OK,
        PutOutcome::Exists => return Err(HostedError::Exists(key.to_owned())),
        PutOutcome::OverQuota { .. } => {
            return Err(HostedError::Quota {
                remote: name.clone(),
                limit: quota.unwrap_or(0),
            });
        }
    };
    if new.replans {
        state.memo.clear();
    }
    Ok((status, blob))
}

/// Show an upload to the adapter (`inspect-body`; `resp.status` 0 and the
/// upload's request headers, as the WIT documents).
async fn inspect(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    inspector: &Inspector<'_>,
    buf: &[u8],
) -> Result<wit::BodyVerdict, HostedError> {
    let resp = wit::UpstreamResponse {
        status: 0,
        headers: inspector.req.headers.clone(),
    };
    let adapter = inspector.adapter;
    let verdict = adapter
        .inspect_body(inspector.ctx.clone(), &remote.info, inspector.req, &resp, buf)
        .await
        .map_err(|e| {
        tracing::error!(remote = %remote.cfg.name, adapter = adapter.name(), error = %e, "adapter failed inspecting an upload");
        HostedError::Adapter {
            adapter: adapter.name().to_owned(),
            message: e.to_string(),
            status: e.status(),
        }
    })?;
    for r in &verdict.references {
        if r.is_empty() || r.len() > crate::cache::plan::MAX_KEY_BYTES || r.contains('\0') {
            state
                .engine
                .metrics
                .plugin_error(adapter.name(), "bad_output");
            return Err(HostedError::Adapter {
                adapter: adapter.name().to_owned(),
                message: "it returned an empty, oversized or NUL-containing reference".into(),
                status: StatusCode::BAD_GATEWAY,
            });
        }
    }
    Ok(verdict)
}

/// Bytes `remote`'s entries take (the index's counter).
pub(super) async fn remote_size(state: &Arc<AppState>, remote: &str) -> Result<u64, HostedError> {
    Ok(state.engine.store.remote_size(remote).await?)
}

/// The boundary of a `multipart/form-data` upload, if it is one.
pub(super) fn multipart_boundary(headers: &http::HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(ct).ok()
}

/// The stream of the multipart field `file` (the first field so named);
/// fields before it are skipped.
async fn multipart_file(
    body: crate::upstream::ReqBody,
    boundary: String,
) -> Result<crate::upstream::ReqBody, HostedError> {
    let stream = http_body_util::BodyStream::new(body).filter_map(|f| async move {
        match f {
            Ok(frame) => frame.into_data().ok().map(Ok::<_, crate::body::BoxError>),
            Err(e) => Some(Err(e)),
        }
    });
    let mut multipart = multer::Multipart::new(stream, boundary);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                let frames = field.map(|chunk| {
                    chunk
                        .map(hyper::body::Frame::data)
                        .map_err(|e| -> crate::body::BoxError { Box::new(e) })
                });
                return Ok(BodyExt::boxed(http_body_util::StreamBody::new(frames)));
            }
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(HostedError::BadUpload(
                    "the multipart upload has no field named \"file\"".into(),
                ));
            }
            Err(e) => {
                return Err(HostedError::BadUpload(format!(
                    "the multipart upload is malformed: {e}"
                )));
            }
        }
    }
}

/// The decoded `Content-MD5` header, if the client sent one.
fn content_md5(headers: &http::HeaderMap) -> Result<Option<[u8; 16]>, HostedError> {
    use base64::Engine as _;
    let Some(v) = headers.get("content-md5") else {
        return Ok(None);
    };
    let bad =
        || HostedError::BadUpload("the Content-MD5 header is not the base64 of 16 bytes".into());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| bad())?;
    <[u8; 16]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| bad())
}
