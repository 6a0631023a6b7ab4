//! A fill in a cluster (`[shared]`): one node fetches a key from the
//! upstream for all of them. Before a miss goes upstream the leader
//! claims the key's fetch lease (`store/shared/lease.rs`); the node that
//! gets it fetches (and shares the entry before it gives the lease up),
//! the others stream the fill from it over the internal route
//! (`serve/peer.rs`) as bytes arrive and relay them to their clients
//! without storing them: the next request on such a node adopts the
//! fetching node's entry from the bucket, made by the adapter once.

use super::Job;
use crate::store::{Claim, LeaseGuard, Sharing};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use hyper::body::Incoming;
use std::sync::atomic::Ordering;

/// The header nodes show each other's token in.
pub const TOKEN_HEADER: &str = "x-artgate-cluster";

/// This node's part in a fill.
pub enum Role {
    /// It fetches for the cluster; the lease lives as long as the job
    /// (dropping the guard gives it up).
    Leader(LeaseGuard),
    /// It relays the fill of the node that fetches, storing nothing.
    Follower,
}

impl Role {
    /// How a stored fill's entry reaches the bucket: the leader's before
    /// its lease is given up, others' in the background (a follower's
    /// relayed fill is never stored).
    pub fn sharing(role: Option<&Role>) -> Sharing {
        match role {
            Some(Role::Leader(_)) => Sharing::Now,
            _ => Sharing::Background,
        }
    }
}

/// A miss (`stored` is false) about to go upstream: claim its lease.
/// `Some(url)` when another node holds it and fetches: stream from it.
pub(super) async fn coordinate(job: &Job, stored: bool) -> Option<String> {
    let shared = job.engine.store.shared.as_ref()?;
    if stored {
        // A revalidation: the record's expiry is shared, so nodes rarely
        // revalidate the same entry at once; each does its own.
        return None;
    }
    match shared.claim(&job.id).await {
        Claim::Held(guard) => {
            let _ = job.cluster.set(Role::Leader(guard));
            None
        }
        Claim::Elsewhere { node, url } => {
            tracing::debug!(entry = %job.id, node = %node, "another node is fetching this key; streaming its fill");
            Some(url)
        }
        Claim::Alone => None,
    }
}

/// Ask the node at `url` for its fill of the job's key. Its response when
/// it streams one (200), to relay to this node's clients and not store
/// (the fetching node shares the entry; the next request here adopts it
/// from the bucket); `None` when it has nothing (it finished and lost it,
/// or it failed) or cannot be reached: the caller fetches itself.
pub(super) async fn from_peer(job: &Job, url: &str) -> Option<http::Response<Incoming>> {
    let shared = job.engine.store.shared.as_ref()?;
    let key = crate::store::shared::layout::encode_key(job.id.key());
    let uri: Uri = format!("{url}/_cluster/v1/fill/{}/{key}", job.id.remote())
        .parse()
        .ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(
        TOKEN_HEADER,
        HeaderValue::from_str(shared.cluster_token()).ok()?,
    );
    match job.engine.upstream.send_peer(&uri, &headers).await {
        Ok(resp) if resp.status() == StatusCode::OK => {
            let _ = job.cluster.set(Role::Follower);
            shared.stats.peer_fills.fetch_add(1, Ordering::Relaxed);
            Some(resp)
        }
        Ok(resp) => {
            tracing::debug!(entry = %job.id, status = resp.status().as_u16(), "the node holding the lease had no fill to share; fetching here");
            None
        }
        Err(e) => {
            tracing::warn!(entry = %job.id, peer = %url, error = %e, "the node holding the fetch lease cannot be reached; fetching here");
            None
        }
    }
}
