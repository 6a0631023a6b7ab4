//! One upstream fetch per key at a time (invariant 3), streamed to every
//! waiter as it arrives.
//!
//! The first request for a key becomes the leader and starts the fetch in
//! a task of its own (so a client that disconnects does not cancel it for
//! the others); later requests join the in-flight [`Fill`]. The leader
//! writes the body into a spool file and publishes, through a
//! `tokio::sync::watch`, how many bytes waiters may read; each waiter reads
//! the spool with positional reads at its own pace, so memory is one chunk
//! per client whatever the object size. The published length is all that
//! was written but the last byte, which is released only after the
//! digest and length are verified: a client never sees a
//! complete body that fails verification — on failure the fill turns
//! [`FillState::Aborted`] and every waiter's body errors, which aborts its
//! connection instead of ending cleanly. The verified body is released
//! ([`FillState::Done`]) before it is committed (fsync, rename, index), so
//! clients finish while the commit runs; the fill stays in flight until
//! the commit has ended, so a request arriving meanwhile joins it.

use super::Outcome;
use crate::store::{BlobRead, EntryId};
use http::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Status and headers every waiter sends.
#[derive(Debug, Clone)]
pub struct Head {
    /// Status (200, or 404 for a negative entry).
    pub status: StatusCode,
    /// Headers (content type, validators, adapter headers); length, range
    /// and source headers are added per response.
    pub headers: HeaderMap,
    /// Full body size, when known.
    pub size: Option<u64>,
    /// How the fill answered: `Miss` (the upstream, now), `Revalidated`
    /// (the stored copy, confirmed) or `Stale` (the stored copy, the
    /// upstream failing); gives `X-Artifact-Source`.
    pub outcome: Outcome,
}

/// A failure before any byte was published.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Status for the client.
    pub status: StatusCode,
    /// One sentence for the client.
    pub message: String,
    /// Format-specific error code from the adapter (e.g. `MANIFEST_UNKNOWN`).
    pub code: Option<String>,
}

/// Whose fault an [`Abort`] is: it decides the status and the sentence a
/// client that joins the fill later gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    /// The upstream: cut off, stalled, too long, wrong digest (502).
    Upstream,
    /// The gateway's own store: a full disk (507) or another I/O error
    /// (500).
    Store,
}

/// Why a fill failed after its headers were published.
#[derive(Debug, Clone)]
pub struct Abort {
    /// Whose fault it is.
    pub culprit: Culprit,
    /// Status for a client that gets the failure before any byte.
    pub status: StatusCode,
    /// What happened, without the culprit (e.g. `the upstream stalled`).
    pub reason: String,
}

impl Abort {
    /// The upstream failed (502).
    pub fn upstream(reason: impl Into<String>) -> Arc<Abort> {
        Arc::new(Abort {
            culprit: Culprit::Upstream,
            status: StatusCode::BAD_GATEWAY,
            reason: reason.into(),
        })
    }

    /// The gateway's store failed: 507 when its disk is full, else 500.
    pub fn store(e: &crate::store::StoreError) -> Arc<Abort> {
        Arc::new(Abort {
            culprit: Culprit::Store,
            status: e.status(),
            reason: e.to_string(),
        })
    }

    /// One sentence for a client, naming the culprit.
    pub fn message(&self) -> String {
        match self.culprit {
            Culprit::Upstream => format!("the upstream transfer failed: {}", self.reason),
            Culprit::Store => format!(
                "the gateway could not store the object on its own disk: {}",
                self.reason
            ),
        }
    }
}

/// The progress of a fill.
#[derive(Clone)]
pub enum FillState {
    /// Waiting for upstream headers.
    Pending,
    /// Bytes are arriving; `readable` of them may be read from `data`.
    Streaming {
        /// Response head.
        head: Arc<Head>,
        /// The spool being written.
        data: Arc<dyn BlobRead>,
        /// Bytes waiters may read.
        readable: u64,
    },
    /// Complete: `len` bytes of `data` are verified (a fetched body's
    /// commit may still be running while the fill is in flight; its
    /// `data` is then the spool, which stays readable whatever the commit
    /// does) or served from the store.
    Done {
        /// Response head.
        head: Arc<Head>,
        /// The committed content.
        data: Arc<dyn BlobRead>,
        /// Total length.
        len: u64,
    },
    /// Failed before headers: each waiter answers with this.
    Failed(Arc<Failure>),
    /// Failed after headers (truncated, reset, digest mismatch, the
    /// store's disk full): each waiter aborts its body; a client joining
    /// later gets the abort's status.
    Aborted(Arc<Abort>),
    /// The response cannot be shared (not cacheable): each waiter makes
    /// its own request.
    Uncacheable,
}

/// One in-flight fetch.
pub struct Fill {
    tx: watch::Sender<FillState>,
    started: std::time::Instant,
}

impl Fill {
    /// Publish a new state to every waiter.
    pub fn publish(&self, state: FillState) {
        self.tx.send_replace(state);
    }

    /// Where the fill stands, for the operator console.
    pub fn progress(&self) -> FillProgress {
        let (phase, bytes, expected) = match &*self.tx.borrow() {
            FillState::Pending => ("waiting for the upstream", 0, None),
            FillState::Streaming { head, readable, .. } => ("streaming", *readable, head.size),
            FillState::Done { len, .. } => ("committing", *len, Some(*len)),
            FillState::Failed(_) | FillState::Aborted(_) => ("failed", 0, None),
            FillState::Uncacheable => ("not cacheable", 0, None),
        };
        FillProgress {
            phase,
            bytes,
            expected,
            waiters: self.tx.receiver_count(),
            elapsed: self.started.elapsed(),
        }
    }

    /// Watch the state.
    pub fn subscribe(&self) -> watch::Receiver<FillState> {
        self.tx.subscribe()
    }

    /// Wait until the fill has an answer — streaming (its head is known),
    /// done, failed or aborted — and return that state.
    pub async fn answered(&self) -> FillState {
        let mut rx = self.tx.subscribe();
        loop {
            let s = rx.borrow_and_update().clone();
            if !matches!(s, FillState::Pending) {
                return s;
            }
            if rx.changed().await.is_err() {
                return FillState::Aborted(Abort::upstream(
                    "the upstream fetch ended without a result",
                ));
            }
        }
    }
}

/// A snapshot of one fill's progress ([`Fill::progress`]).
#[derive(Debug, Clone)]
pub struct FillProgress {
    /// What the fill is doing, in a few words.
    pub phase: &'static str,
    /// Bytes received and readable so far.
    pub bytes: u64,
    /// The body's full size, when the upstream said.
    pub expected: Option<u64>,
    /// Requests reading the fill now (the one that started it included).
    pub waiters: usize,
    /// Time since the fill started.
    pub elapsed: std::time::Duration,
}

/// The in-flight fills, by the id of the entry they fill: one fill per
/// entry at a time, whoever starts it (a request, a prefetch, an
/// adapter's `cache-send`).
#[derive(Default)]
pub struct Fills {
    map: Mutex<HashMap<EntryId, Arc<Fill>>>,
}

/// Returned by [`Fills::join`].
pub enum Joined {
    /// This caller must run the fetch and call [`Fills::finish`].
    Leader(Arc<Fill>),
    /// Another request is fetching; read from its fill.
    Waiter(Arc<Fill>),
}

impl Fills {
    /// Join the fill for `id`, or become its leader.
    pub fn join(&self, id: &EntryId) -> Joined {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = map.get(id) {
            return Joined::Waiter(f.clone());
        }
        let (tx, _) = watch::channel(FillState::Pending);
        let fill = Arc::new(Fill {
            tx,
            started: std::time::Instant::now(),
        });
        map.insert(id.clone(), fill.clone());
        Joined::Leader(fill)
    }

    /// The fill in progress for `id`, if any (never starts one).
    pub fn in_flight(&self, id: &EntryId) -> Option<Arc<Fill>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }

    /// Forget the fill for `id` (if it is still `fill`). Waiters keep their
    /// handle; new requests find the committed entry in the store.
    pub fn finish(&self, id: &EntryId, fill: &Arc<Fill>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|f| Arc::ptr_eq(f, fill)) {
            map.remove(id);
        }
    }

    /// Every fill in progress with its entry id, at most `limit`, longest
    /// running first.
    pub fn snapshot(&self, limit: usize) -> Vec<(EntryId, Arc<Fill>)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        drop(map);
        all.sort_by_key(|(_, f)| f.started);
        all.truncate(limit);
        all
    }

    /// Number of fills in progress.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no fill is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
