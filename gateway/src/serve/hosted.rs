//! Hosted repositories: the store is the source of truth. The adapter
//! decides the key and policy (`hosted-op`); this module serves reads,
//! deletes and listings, and hands uploads to [`super::upload`], which
//! streams them into the store with the crash-safe commit (201 only after
//! the index is flushed).
//!
//! An upload whose plan sets `inspect-limit` is also kept in memory (at
//! most that many bytes, else 413) and shown to the adapter's
//! `inspect-body` before the commit; the verdict's `references` are stored
//! with the entry, and a read of the entry is 404 while any of them is
//! missing (e.g. an action result whose output blobs are gone).

use super::error::{HostedError, ServeError};
use super::plan::Asked;
use super::request::{Req, Served};
use super::respond::serve_entry;
use super::upload::{self, Inspector};
use crate::body::{self, ResBody};
use crate::cache::Engine;
use crate::cache::Outcome;
use crate::cache::memo::RequestShape;
use crate::config::RemoteMode;
use crate::plugins::wit;
use crate::reqbody::ClientBody;
use crate::state::{AppState, RemoteRuntime};
use crate::store::{Content, Entry, EntryId};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use std::sync::Arc;

/// Carry out a `hosted` decision and answer it: a read is served like a
/// cache hit (ranges, `HEAD`, conditional GET) and remembered, so the next
/// read of the path is planned without wasm.
pub async fn serve(
    req: &Req<'_>,
    shape: RequestShape<'_>,
    op: wit::HostedOp,
    asked: Asked,
) -> Result<Served, ServeError> {
    let state = req.state;
    if let wit::HostedOp::Read(r) = &op {
        state.memo.remember(shape, &[], &r.key);
    }
    let inspector = Inspector {
        adapter: &asked.adapter,
        ctx: asked.ctx.clone(),
        req: &asked.req,
    };
    match handle(state, req.remote, req.parts, op, asked.body, inspector).await? {
        Answer::Done(resp) => Ok((resp, Outcome::Hosted)),
        Answer::Read(entry, read) => {
            let mut entry = *entry;
            if let Some(ct) = read.content_type {
                entry.content_type = Some(ct);
            }
            for h in read.response_headers {
                entry.headers.push((h.name.to_ascii_lowercase(), h.value));
            }
            let Some(data) = req.engine.open(&entry.blob).await else {
                return Err(ServeError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!(
                        "{} is indexed but its content is missing; run artgate fsck",
                        req.target.path
                    ),
                ));
            };
            let data = Content::Blob(data);
            let resp = serve_entry(req, Arc::new(entry), data, Outcome::Hosted).await;
            Ok((resp, Outcome::Hosted))
        }
    }
}

/// Carry out a hosted operation. Reads return the stored entry for the
/// caller to serve (so ranges and HEAD behave exactly like cache hits).
pub async fn handle(
    state: &Arc<AppState>,
    remote: &Arc<RemoteRuntime>,
    parts: &Parts,
    op: wit::HostedOp,
    body: ClientBody,
    inspector: Inspector<'_>,
) -> Result<Answer, HostedError> {
    let method = &parts.method;
    let is_write = matches!(op, wit::HostedOp::Write(_) | wit::HostedOp::Delete(_));
    if is_write && remote.cfg.mode != RemoteMode::Hosted {
        return Err(HostedError::NotHosted(remote.cfg.name.clone()));
    }
    match op {
        wit::HostedOp::Read(r) => {
            let entry = get(&state.engine, &remote.cfg.name, &r.key)
                .await?
                .ok_or_else(|| HostedError::NotFound(r.key.clone()))?;
            for reference in &entry.references {
                if get(&state.engine, &remote.cfg.name, reference)
                    .await?
                    .is_none()
                {
                    return Err(HostedError::NotFound(format!(
                        "{} (it references {reference}, which is missing)",
                        r.key
                    )));
                }
            }
            Ok(Answer::Read(Box::new(entry), r))
        }
        wit::HostedOp::Write(w) => upload::write(state, remote, parts, w, body, inspector)
            .await
            .map(Answer::Done),
        wit::HostedOp::Delete(key) => {
            let id = EntryId::new(&remote.cfg.name, &key);
            match state.engine.store.remove(&id, true).await? {
                Some(_) => Ok(Answer::Done(body::json(
                    StatusCode::OK,
                    &serde_json::json!({ "deleted": key }),
                ))),
                None => Err(HostedError::NotFound(key)),
            }
        }
        wit::HostedOp::List(l) => {
            let limit = l.limit.clamp(1, 10_000) as usize;
            let items = state
                .engine
                .store
                .list(&remote.cfg.name, &l.prefix, l.after.as_deref(), limit + 1)
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
            Ok(Answer::Done(resp))
        }
    }
}

/// What a hosted operation produced.
pub enum Answer {
    /// A stored entry to serve.
    Read(Box<Entry>, wit::HostedRead),
    /// A finished response.
    Done(Response<ResBody>),
}

async fn get(engine: &Engine, remote: &str, key: &str) -> Result<Option<Entry>, HostedError> {
    let entry = engine.store.entry(&EntryId::new(remote, key)).await?;
    // A clone (the read may change it for this answer), never the shared
    // entry itself ([`Entry::rendered`]).
    Ok(entry.map(|e| Entry::clone(&e)))
}
