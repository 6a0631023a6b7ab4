//! Fetch leases: which node fetches a key from the upstream for the whole
//! cluster. A node that is about to fetch a key none of the tiers holds
//! claims `leases/REMOTE/KEY` with a conditional create; the winner
//! fetches and renews its lease while the fill runs, the others stream the
//! fill from it (its `advertise` URL is in the lease). A lease whose
//! holder died expires after `lease_ttl` and is taken over with `If-Match`
//! on its ETag, so exactly one node replaces it.

use super::{SharedTier, layout};
use crate::store::{EntryId, now_ms};
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A lease as the bucket holds it.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    /// The node fetching.
    node: String,
    /// Where the others stream the fill from.
    url: String,
    /// Unless renewed, it ends then (unix milliseconds).
    expires_at_ms: u64,
    /// This claim, unique across processes: only its holder renews or
    /// gives it up (two nodes may share a name by mistake; one node may
    /// claim the same key again right after).
    #[serde(default)]
    claim: String,
}

/// A name for one claim that no other claim of any process has.
fn new_claim_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static START: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{start:x}-{n:x}", std::process::id())
}

/// What a claim of a key's fetch got.
pub enum Claim {
    /// This node fetches; the lease is renewed until the guard is dropped.
    Held(LeaseGuard),
    /// Another node is fetching it.
    Elsewhere {
        /// Its name.
        node: String,
        /// Its base URL.
        url: String,
    },
    /// No coordination: the bucket failed, or this node has no address
    /// the others could reach. The node fetches on its own.
    Alone,
}

/// A held lease: renewed in the background, given up when dropped.
pub struct LeaseGuard {
    tier: Arc<SharedTier>,
    path: Path,
    claim: String,
    renewal: tokio::task::JoinHandle<()>,
    /// The lease's current ETag (renewals change it).
    e_tag: Arc<Mutex<Option<String>>>,
    /// Set when another node took the lease over.
    lost: Arc<std::sync::atomic::AtomicBool>,
    /// Whether dropping gives the lease up ([`LeaseGuard::keep_until`]
    /// clears it).
    give_up: bool,
    /// Whether the claim took an expired lease over.
    took_over: bool,
}

impl LeaseGuard {
    /// Whether another node took the lease over (this one outlived its
    /// TTL without renewing it): work under it must stop.
    pub fn is_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop renewing and leave the lease in place until `until_ms` (unix
    /// milliseconds), so that no node claims it before then (the
    /// collection's "not again before `gc_every`").
    pub async fn keep_until(mut self, until_ms: u64) {
        self.renewal.abort();
        self.give_up = false;
        let record = LeaseRecord {
            node: self.tier.node.clone(),
            url: self.tier.advertised().unwrap_or_default().to_owned(),
            expires_at_ms: until_ms,
            claim: self.claim.clone(),
        };
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: self.e_tag.lock().ok().and_then(|t| t.clone()),
                version: None,
            }),
            ..PutOptions::default()
        };
        let payload = PutPayload::from(serde_json::to_vec(&record).unwrap_or_default());
        if let Err(e) = self.tier.bucket.put_opts(&self.path, payload, opts).await {
            tracing::info!(lease = %self.path, error = %e, "keeping a lease until its next use failed; it expires after lease_ttl, and another node may take it sooner");
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.give_up {
            return;
        }
        let (tier, path, claim) = (self.tier.clone(), self.path.clone(), self.claim.clone());
        self.tier
            .runtime
            .spawn(async move { tier.give_up(&path, &claim).await });
    }
}

impl SharedTier {
    /// The token nodes show each other on the internal route.
    pub fn cluster_token(&self) -> &str {
        &self.cluster_token
    }

    /// This node's base URL for the others, once known.
    pub fn advertised(&self) -> Option<&str> {
        self.advertise.get().map(String::as_str)
    }

    /// Set this node's base URL for the others (at start, once the
    /// listener is bound); the first value stays.
    pub fn advertise(&self, url: String) {
        let _ = self.advertise.set(url);
    }

    /// Claim the upstream fetch of `id` for this node (the others stream
    /// from its advertised address, so a node without one fetches alone).
    pub async fn claim(self: &Arc<Self>, id: &EntryId) -> Claim {
        let Some(url) = self.advertised() else {
            return Claim::Alone;
        };
        let claim = self.claim_at(layout::lease(id), id, url).await;
        if let Claim::Held(g) = &claim
            && g.took_over
        {
            self.stats
                .lease_takeovers
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(entry = %id, "took over an expired fetch lease");
        }
        claim
    }

    /// Claim the lease at `path` for this node, reachable at `url` (`id`
    /// names it in messages). A live lease of this node's name and address
    /// is its own from before a restart, and is taken over.
    pub(super) async fn claim_at(
        self: &Arc<Self>,
        path: Path,
        id: &(dyn std::fmt::Display + Sync),
        url: &str,
    ) -> Claim {
        if self.gate("claim lease", id).is_err() {
            return Claim::Alone;
        }
        let claim = new_claim_id();
        let body = || {
            let record = LeaseRecord {
                node: self.node.clone(),
                url: url.to_owned(),
                expires_at_ms: now_ms() + self.lease_ttl.as_millis() as u64,
                claim: claim.clone(),
            };
            PutPayload::from(serde_json::to_vec(&record).unwrap_or_default())
        };
        let put = |mode| PutOptions {
            mode,
            ..PutOptions::default()
        };
        for round in 0..5 {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(20 * round)).await;
            }
            match self
                .bucket
                .put_opts(&path, body(), put(PutMode::Create))
                .await
            {
                Ok(r) => return Claim::Held(self.hold(path, r.e_tag, claim, false)),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => {
                    self.failed("claim lease", id, &e);
                    return Claim::Alone;
                }
            }
            let got = match self.bucket.get(&path).await {
                Ok(g) => g,
                // Given up meanwhile: claim again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => {
                    self.failed("read lease", id, &e);
                    return Claim::Alone;
                }
            };
            let e_tag = got.meta.e_tag.clone();
            let written_ms = got.meta.last_modified.timestamp_millis().max(0) as u64;
            let current = match self.body(got).await {
                Ok(b) => serde_json::from_slice::<LeaseRecord>(&b).ok(),
                Err(e) => {
                    self.failed("read lease", id, &e);
                    return Claim::Alone;
                }
            };
            match current {
                // Another live claim, unless it names this node's own
                // address (a claim from before a restart: streaming from
                // it would be streaming from this very fill).
                Some(l) if l.expires_at_ms > now_ms() && (l.node != self.node || l.url != url) => {
                    return Claim::Elsewhere {
                        node: l.node,
                        url: l.url,
                    };
                }
                // A store may show an object being written before its
                // content: look again rather than take over a live claim.
                None if written_ms + (self.lease_ttl.as_millis() as u64) > now_ms() => continue,
                _ => {}
            }
            // Expired (its holder is gone), unreadable for longer than a
            // lease lasts, or this node's own from before a restart: take
            // it over, unless another node does first.
            let over = put(PutMode::Update(UpdateVersion {
                e_tag,
                version: None,
            }));
            match self.bucket.put_opts(&path, body(), over).await {
                Ok(r) => return Claim::Held(self.hold(path, r.e_tag, claim, true)),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::NotFound { .. },
                ) => continue,
                Err(e) => {
                    self.failed("take over lease", id, &e);
                    return Claim::Alone;
                }
            }
        }
        Claim::Alone
    }

    /// A guard for the lease at `path`, renewed every third of its TTL
    /// while it lives.
    /// `took_over`: the lease was another's, expired.
    fn hold(
        self: &Arc<Self>,
        path: Path,
        e_tag: Option<String>,
        claim: String,
        took_over: bool,
    ) -> LeaseGuard {
        let (tier, at, mine) = (self.clone(), path.clone(), claim.clone());
        let e_tag = Arc::new(Mutex::new(e_tag));
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tag, gone) = (e_tag.clone(), lost.clone());
        let renewal = self.runtime.spawn(async move {
            let every = (tier.lease_ttl / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                let record = LeaseRecord {
                    node: tier.node.clone(),
                    url: tier.advertised().unwrap_or_default().to_owned(),
                    expires_at_ms: now_ms() + tier.lease_ttl.as_millis() as u64,
                    claim: mine.clone(),
                };
                let current = tag.lock().ok().and_then(|t| t.clone());
                let opts = PutOptions {
                    mode: PutMode::Update(UpdateVersion {
                        e_tag: current,
                        version: None,
                    }),
                    ..PutOptions::default()
                };
                let payload = PutPayload::from(serde_json::to_vec(&record).unwrap_or_default());
                match tier.bucket.put_opts(&at, payload, opts).await {
                    Ok(r) => {
                        if let Ok(mut t) = tag.lock() {
                            *t = r.e_tag;
                        }
                    }
                    Err(object_store::Error::Precondition { .. }) => {
                        gone.store(true, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(lease = %at, "a lease was taken over while its work ran (it outlived lease_ttl without renewing)");
                        return;
                    }
                    Err(e) => {
                        tier.failed("renew lease", &at, &e);
                    }
                }
            }
        });
        LeaseGuard {
            tier: self.clone(),
            path,
            claim,
            renewal,
            e_tag,
            lost,
            give_up: true,
            took_over,
        }
    }

    /// Give up the lease at `path` if it is still `claim`.
    async fn give_up(&self, path: &Path, claim: &str) {
        let Ok(got) = self.bucket.get(path).await else {
            return;
        };
        let ours = got
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<LeaseRecord>(&b).ok())
            .is_some_and(|l| l.claim == claim);
        if ours && let Err(e) = self.bucket.delete(path).await {
            tracing::debug!(lease = %path, error = %e, "giving up a fetch lease failed; it expires by itself");
        }
    }
}
