//! The internal route of a cluster: `GET /_cluster/v1/fill/{remote}/{key}`
//! from another node that found this node holding the key's fetch lease
//! (`cache/leader/cluster.rs`). It gets the fill in progress as its bytes
//! arrive, or the entry once it is stored, or 404. Only a node showing
//! the cluster token gets anything.

use super::error::ServeError;
use super::respond::{FillOrBlob, respond_from};
use crate::body::ResBody;
use crate::cache::head::head_of_entry;
use crate::cache::leader::cluster::TOKEN_HEADER;
use crate::cache::{FillState, Head, Outcome};
use crate::plugins::wit::RouteKind;
use crate::state::AppState;
use crate::store::{Content, EntryClass, EntryId};
use http::request::Parts;
use http::{Response, StatusCode};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Answer another node's request for the fill of `remote`'s `key`
/// (URL-safe base64).
pub async fn serve_peer(
    state: &Arc<AppState>,
    parts: &Parts,
    remote: &str,
    key: &str,
) -> Response<ResBody> {
    let not_found = |why: &str| {
        ServeError::new(StatusCode::NOT_FOUND, "NOT_FOUND", why.to_owned())
            .render(RouteKind::RemoteApi)
    };
    let Some(shared) = &state.engine.store.shared else {
        return not_found("this node is not part of a cluster");
    };
    // Compared as digests: the time taken says nothing about the token.
    let shown = parts
        .headers
        .get(TOKEN_HEADER)
        .map(|v| Sha256::digest(v.as_bytes()));
    if shown != Some(Sha256::digest(shared.cluster_token().as_bytes())) {
        return ServeError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "the internal route of a cluster needs the cluster token".to_owned(),
        )
        .render(RouteKind::RemoteApi);
    }
    let Some(key) = crate::store::shared::layout::decode_key(key) else {
        return not_found("the key is not URL-safe base64 of a UTF-8 key");
    };
    let id = EntryId::new(remote, &key);
    let engine = &state.engine;
    if let Some(fill) = engine.fills.in_flight(&id) {
        let rx = fill.subscribe();
        if let FillState::Streaming { head, .. } | FillState::Done { head, .. } =
            fill.answered().await
            && head.status == StatusCode::OK
        {
            return respond_from(
                engine,
                parts,
                remote,
                Head::clone(&head),
                FillOrBlob::Fill(rx),
            );
        }
        return not_found("the fill of this key here did not get a body");
    }
    let stored = engine
        .store
        .fresh(&id, |e| e.status == 200 && e.class != EntryClass::NotFound)
        .await;
    match stored {
        Ok(Some((entry, content))) => {
            let head = head_of_entry(&entry, Outcome::Hit);
            let src = match content {
                Content::Memory(bytes) => FillOrBlob::Memory(bytes),
                Content::Blob(data) => FillOrBlob::Blob(data, entry.size),
            };
            respond_from(engine, parts, remote, head, src)
        }
        _ => not_found("no fill of this key is in progress here"),
    }
}
