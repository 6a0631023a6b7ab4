//! The path with no wasm on it: a request planned before is mapped to its
//! key by the remembered decision ([`crate::cache::memo`]); a fresh entry
//! is a hit served straight from the store, and a fetch of that key in
//! progress is joined (a burst of clients asking for one uncached object
//! plans it once, not once per client). No adapter is called here.

use super::error::ServeError;
use super::fill::serve_fill;
use super::request::{Req, Served};
use super::respond::serve_entry;
use crate::cache::Outcome;
use crate::cache::freshness::{self, now_ms};
use crate::cache::head::stored_outcome;
use crate::cache::memo::RequestShape;
use crate::state::AppState;
use crate::store::{Content, Entry, EntryId};
use std::sync::Arc;

/// The answer for a request planned before whose entry is fresh or being
/// fetched; `None`: the adapter has to plan it.
pub async fn remembered(
    req: &Req<'_>,
    shape: RequestShape<'_>,
) -> Option<Result<Served, ServeError>> {
    let state = req.state;
    if !req.is_read() || freshness::client_wants_revalidation(&req.parts.headers) {
        return None;
    }
    let key = state.memo.lookup(shape)?;
    let id = EntryId::new(req.remote_name(), &key);
    if let Some((e, data)) = fresh_entry(state, &id, false).await {
        let outcome = stored_outcome(&e, Outcome::Hit);
        return Some(Ok((serve_entry(req, e, data, Outcome::Hit).await, outcome)));
    }
    let fill = state.fills.in_flight(&id)?;
    state.metrics.coalesced(req.remote_name());
    Some(serve_fill(req, fill).await)
}

/// A fresh entry for `id` with its content ([`crate::store::Store::fresh`]:
/// no blocking task when both are in memory). `None` when absent, expired
/// (or `client_no_cache` on a revalidatable entry), or when its blob has
/// gone missing — the caller then treats it as a miss.
pub async fn fresh_entry(
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
