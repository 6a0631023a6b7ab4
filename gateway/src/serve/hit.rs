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
use crate::cache::freshness;
use crate::cache::head::stored_outcome;
use crate::cache::memo::RequestShape;
use crate::store::EntryId;

/// The answer for a request planned before whose entry is fresh or being
/// fetched; `None`: the adapter has to plan it.
pub async fn remembered(
    req: &Req<'_>,
    shape: RequestShape<'_>,
) -> Option<Result<Served, ServeError>> {
    if !req.is_read() {
        return None;
    }
    // A client's `no-cache` revalidates mutable and (unless the remote
    // says otherwise) negative entries only (`engine.fresh` passes over
    // those): Maven sends it with every request, and its stored artifacts
    // are still plain hits.
    let no_cache = freshness::NoCache::of(&req.parts.headers, &req.remote.cfg);
    let key = req.state.memo.lookup(shape)?;
    let id = EntryId::new(req.remote_name(), &key);
    if let Some((e, data)) = req.engine.fresh(&id, no_cache).await {
        let outcome = stored_outcome(&e, Outcome::Hit);
        return Some(Ok((serve_entry(req, e, data, Outcome::Hit).await, outcome)));
    }
    let fill = req.engine.fills.in_flight(&id)?;
    req.engine.metrics.coalesced(req.remote_name());
    Some(serve_fill(req, fill).await)
}
