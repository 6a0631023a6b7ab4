//! Answers from a fill: a client joining (or leading) the one fetch of a
//! key in progress gets its head and streams its bytes as they arrive; a
//! `HEAD` that the store cannot answer joins such a fetch or asks the
//! upstream with a `HEAD` ([`crate::cache::upstream_head`]).

use super::error::ServeError;
use super::request::{Req, Served};
use super::respond::{FillOrBlob, respond_from};
use crate::body;
use crate::cache::Outcome;
use crate::cache::upstream_head::{self, HeadAnswer, HeadJob};
use crate::cache::{Fill, FillState, Head};
use crate::store::EntryId;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use std::sync::Arc;

/// Serve the client from `fill`: its head once known, then its bytes as
/// they arrive. The status goes out with the first byte in hand, so a fill
/// that fails before any byte answers with the failure's status.
pub async fn serve_fill(req: &Req<'_>, fill: Arc<Fill>) -> Result<Served, ServeError> {
    let parts = req.parts;
    let rx = fill.subscribe();
    match fill.answered().await {
        FillState::Streaming { head, .. } | FillState::Done { head, .. } => {
            let outcome = head.outcome;
            if head.status == StatusCode::NOT_FOUND {
                // An answer from the upstream (or the store), not an error
                // of the gateway: it counts as the fill's outcome.
                let resp = ServeError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("{} was not found upstream", parts.uri.path()),
                )
                .from_source(head.outcome)
                .render(req.target.kind);
                return Ok((resp, outcome));
            }
            let resp = respond_from(
                req.engine,
                parts,
                req.remote_name(),
                Head::clone(&head),
                FillOrBlob::Fill(rx),
            );
            if parts.method == Method::HEAD {
                return Ok((resp, outcome));
            }
            let (head_parts, body) = resp.into_parts();
            match body::primed(body).await {
                Ok(body) => Ok((Response::from_parts(head_parts, body), outcome)),
                // Failed before its first byte: the fill says why.
                Err(e) => match fill.subscribe().borrow().clone() {
                    FillState::Aborted(why) => Err(ServeError::aborted(&why)),
                    _ => Err(ServeError::new(
                        StatusCode::BAD_GATEWAY,
                        "UNAVAILABLE",
                        e.to_string(),
                    )),
                },
            }
        }
        FillState::Failed(f) => Err(ServeError::fill_failed(&f)),
        FillState::Aborted(why) => Err(ServeError::aborted(&why)),
        FillState::Pending | FillState::Uncacheable => Err(ServeError::new(
            StatusCode::BAD_GATEWAY,
            "UNAVAILABLE",
            "the upstream response cannot be shared",
        )),
    }
}

/// A `HEAD` the store cannot answer: join a fetch of the key in progress,
/// else ask the upstream with a `HEAD` ([`upstream_head`]) and store
/// nothing. `None`: go on as for a `GET` (an expired entry to revalidate
/// or serve stale, or an upstream whose `HEAD` answer says nothing).
pub async fn head_miss(
    job: HeadJob<'_>,
    req: &Req<'_>,
    id: &EntryId,
) -> Option<Result<Served, ServeError>> {
    let engine = req.engine;
    if let Some(fill) = engine.fills.in_flight(id) {
        engine.metrics.coalesced(req.remote_name());
        return Some(serve_fill(req, fill).await);
    }
    if engine.entry(id).await.is_some() {
        return None;
    }
    match upstream_head::ask(job).await {
        HeadAnswer::Found(head) => {
            // A HEAD answer has no body; the data source is never read.
            let src = FillOrBlob::Memory(Bytes::new());
            let outcome = head.outcome;
            let resp = respond_from(engine, req.parts, req.remote_name(), head, src);
            Some(Ok((resp, outcome)))
        }
        HeadAnswer::Failed(f) => {
            Some(Err(ServeError::fill_failed(&f).from_source(Outcome::Bypass)))
        }
        HeadAnswer::UseGet => None,
    }
}
