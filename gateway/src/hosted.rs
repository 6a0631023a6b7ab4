//! Hosted repositories: the store is the source of truth. The adapter
//! decides the key and policy (`hosted-op`); this module streams uploads
//! into the store with the crash-safe commit (201 only after the index is
//! flushed), and serves reads, deletes and listings.

use crate::body::{self, ResBody};
use crate::cache::freshness::now_ms;
use crate::config::RemoteMode;
use crate::plugins::wit;
use crate::state::{AppState, RemoteRuntime};
use crate::store::{Digest, Entry, EntryClass, StoreError, Validators};
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;

/// Why a hosted operation failed; every variant carries one sentence.
#[derive(Debug, thiserror::Error)]
pub enum HostedError {
    /// The remote is a pull-through cache.
    #[error(
        "remote {0:?} is a pull-through cache; uploads and deletes need a hosted remote (use PUT /cache/flush to drop cached entries)"
    )]
    NotHosted(String),
    /// Nothing stored under the key.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Overwrites are refused and the key exists.
    #[error("{0} already exists and this remote refuses overwrites")]
    Exists(String),
    /// The upload did not match its declared digest.
    #[error("the uploaded content has digest {actual}, but {expected} was declared")]
    Mismatch {
        /// Declared.
        expected: Digest,
        /// Received.
        actual: Digest,
    },
    /// The upload would exceed the remote's quota.
    #[error("the upload would exceed remote {remote:?}'s quota of {limit} bytes")]
    Quota {
        /// Remote.
        remote: String,
        /// Quota.
        limit: u64,
    },
    /// The client's body broke off.
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl HostedError {
    /// Status code for the client.
    pub fn status(&self) -> StatusCode {
        match self {
            HostedError::NotHosted(_)
            | HostedError::Mismatch { .. }
            | HostedError::Interrupted(_) => StatusCode::BAD_REQUEST,
            HostedError::NotFound(_) => StatusCode::NOT_FOUND,
            HostedError::Exists(_) => StatusCode::CONFLICT,
            HostedError::Quota { .. } => StatusCode::INSUFFICIENT_STORAGE,
            HostedError::Store(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, HostedError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(HostedError::from),
        Err(e) => Err(HostedError::Store(StoreError::Corrupt {
            id: "task".into(),
            reason: format!("storage task failed: {e}"),
        })),
    }
}

/// Carry out a hosted operation. Reads return the stored entry for the
/// caller to serve (so ranges and HEAD behave exactly like cache hits).
pub async fn handle(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    method: &Method,
    op: wit::HostedOp,
    body: Incoming,
) -> Result<Outcome, HostedError> {
    let is_write = matches!(op, wit::HostedOp::Write(_) | wit::HostedOp::Delete(_));
    if is_write && remote.cfg.mode != RemoteMode::Hosted {
        return Err(HostedError::NotHosted(remote.cfg.name.clone()));
    }
    match op {
        wit::HostedOp::Read(r) => {
            let entry = get(state, &remote.cfg.name, &r.key)
                .await?
                .ok_or_else(|| HostedError::NotFound(r.key.clone()))?;
            for reference in &entry.references {
                if get(state, &remote.cfg.name, reference).await?.is_none() {
                    return Err(HostedError::NotFound(format!(
                        "{} (it references {reference}, which is missing)",
                        r.key
                    )));
                }
            }
            Ok(Outcome::Read(entry, r))
        }
        wit::HostedOp::Write(w) => write(state, remote, w, body).await.map(Outcome::Done),
        wit::HostedOp::Delete(key) => {
            let meta = state.store.meta.clone();
            let (rn, k) = (remote.cfg.name.clone(), key.clone());
            match blocking(move || meta.remove_entry(&rn, &k, true)).await? {
                Some(_) => Ok(Outcome::Done(body::json(
                    StatusCode::OK,
                    &serde_json::json!({ "deleted": key }),
                ))),
                None => Err(HostedError::NotFound(key)),
            }
        }
        wit::HostedOp::List(l) => {
            let meta = state.store.meta.clone();
            let rn = remote.cfg.name.clone();
            let limit = l.limit.clamp(1, 10_000) as usize;
            let (prefix, after) = (l.prefix.clone(), l.after.clone());
            let items =
                blocking(move || meta.list_entries(&rn, &prefix, after.as_deref(), limit + 1))
                    .await?;
            let more = items.len() > limit;
            let items: Vec<_> = items.into_iter().take(limit).collect();
            let next = if more {
                items.last().map(|(k, _)| k.clone())
            } else {
                None
            };
            let list: Vec<_> = items
                .iter()
                .map(|(k, e)| serde_json::json!({ "path": k, "size": e.size, "sha256": e.blob.hex(), "content_type": e.content_type, "stored_at": httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.stored_at_ms)) }))
                .collect();
            let mut resp = body::json(
                StatusCode::OK,
                &serde_json::json!({ "prefix": l.prefix, "items": list, "next": next }),
            );
            if method == Method::HEAD {
                *resp.body_mut() = body::empty();
            }
            Ok(Outcome::Done(resp))
        }
    }
}

/// What a hosted operation produced.
pub enum Outcome {
    /// A stored entry to serve.
    Read(Entry, wit::HostedRead),
    /// A finished response.
    Done(Response<ResBody>),
}

async fn get(state: &Arc<AppState>, remote: &str, key: &str) -> Result<Option<Entry>, HostedError> {
    let meta = state.store.meta.clone();
    let (r, k) = (remote.to_owned(), key.to_owned());
    blocking(move || meta.get_entry(&r, &k)).await
}

async fn write(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    w: wit::HostedWrite,
    mut body: Incoming,
) -> Result<Response<ResBody>, HostedError> {
    let name = remote.cfg.name.clone();
    let previous = get(state, &name, &w.key).await?;
    if w.refuse_overwrite && previous.is_some() {
        return Err(HostedError::Exists(w.key));
    }
    let expected: Option<Digest> = match &w.expected_digest {
        Some(d) => Some(d.parse().map_err(|e| {
            HostedError::Interrupted(format!("invalid declared digest {d:?}: {e}"))
        })?),
        None => None,
    };
    let quota = remote.cfg.max_size;
    let used = if quota.is_some() {
        remote_usage(state, &name).await?
    } else {
        0
    };
    let blobs = state.store.blobs.clone();
    let mut spool = blocking(move || {
        blobs
            .create_spool()
            .map_err(|e| StoreError::io("create spool", "tmp/", e))
    })
    .await?;
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HostedError::Interrupted(e.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        len += chunk.len() as u64;
        if let Some(limit) = quota {
            if used + len > limit {
                return Err(HostedError::Quota {
                    remote: name,
                    limit,
                });
            }
        }
        spool
            .write(&chunk)
            .map_err(|e| StoreError::io("write spool", spool.path().display(), e))?;
    }
    let blobs = state.store.blobs.clone();
    let committed = tokio::task::spawn_blocking(move || blobs.commit(spool, expected.as_ref()))
        .await
        .map_err(|e| HostedError::Interrupted(format!("commit task failed: {e}")))?;
    let blob = match committed {
        Ok(b) => b,
        Err(StoreError::DigestMismatch { expected, actual }) => {
            return Err(HostedError::Mismatch { expected, actual });
        }
        Err(e) => return Err(e.into()),
    };
    let entry = Entry {
        blob: blob.digest,
        size: blob.size,
        status: 200,
        class: EntryClass::Hosted,
        stored_at_ms: now_ms(),
        expires_at_ms: None,
        ttl_ms: None,
        content_type: w.content_type.clone(),
        headers: Vec::new(),
        etag: None,
        last_modified: None,
        validator: Validators::Refetch,
        compare_value: None,
        upstream_target: None,
        references: Vec::new(),
    };
    let meta = state.store.meta.clone();
    let (rn, k, e) = (name.clone(), w.key.clone(), entry);
    // Durable: the index is flushed before the 201.
    blocking(move || meta.put_entry(&rn, &k, &e, true)).await?;
    state.memo.clear();
    let status = if previous.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut resp = body::json(
        status,
        &serde_json::json!({ "path": w.key, "size": blob.size, "sha256": blob.digest.hex() }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", blob.digest.hex())) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

async fn remote_usage(state: &Arc<AppState>, remote: &str) -> Result<u64, HostedError> {
    let meta = state.store.meta.clone();
    let r = remote.to_owned();
    let all = blocking(move || meta.list_entries(&r, "", None, usize::MAX)).await?;
    Ok(all.iter().map(|(_, e)| e.size).sum())
}
