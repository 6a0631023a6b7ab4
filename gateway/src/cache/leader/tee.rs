//! The tee: a 200's body goes into a spool file while every waiter reads
//! the spool behind it. Waiters may read every byte written but the last
//! [`HELD_BACK`]; those are released only once the body's length and
//! digest are verified ([`super::commit`], which then commits it while the
//! waiters read the tail), so no client sees a whole body that fails
//! verification (invariant 4), and none waits for the upstream's next
//! chunk to get the bytes of this one.

use super::commit::{commit, deliver_unstored};
use super::fetch::Fetched;
use super::{FillError, Job, Published};
use crate::cache::Outcome;
use crate::cache::fill::{Abort, Fill, FillState, Head};
use crate::cache::head::{body_size, header_str, response_headers, stored_headers};
use crate::cache::pktcheck;
use crate::cache::plan::Plan;
use crate::store::{BlobRead, Entry, Spool, StoreError, Validators};
use http::{HeaderName, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a body withheld from waiters until it is verified. One is
/// enough: a client that lacks the last byte never has a whole body, so a
/// body that fails its digest reaches it cut short, as an error.
pub(super) const HELD_BACK: u64 = 1;

/// A 200 about to be read: its head, the entry it would be stored as, and
/// the spool its bytes go to.
pub(super) struct Body {
    /// The plan, as the adapter updated it.
    pub plan: Plan,
    /// What the waiters are sent.
    pub head: Head,
    /// The entry to store, but for its blob, size and times.
    pub entry: Entry,
    /// Where the bytes go.
    pub spool: Spool,
    /// The spool, as the waiters read it.
    pub data: Arc<dyn BlobRead>,
    /// Whether the body has a framed end (a length, chunked, HTTP/2): a
    /// close-delimited body ends cleanly also when the connection was cut
    /// short, so without a digest it is delivered but never stored.
    pub framed: bool,
    /// Longest wait for the next body bytes.
    pub idle: Duration,
    /// The body, unread.
    pub body: Incoming,
}

impl Body {
    /// The head and entry of an accepted 200, and a spool for its bytes.
    pub(super) async fn open(job: &Job, fetched: Fetched) -> Result<Body, FillError> {
        let Fetched { resp, plan, sent } = fetched;
        let head = Head {
            status: StatusCode::OK,
            headers: response_headers(&plan, resp.headers()),
            size: body_size(&plan, resp.headers()).map_err(FillError::bad_gateway)?,
            outcome: Outcome::Miss,
        };
        let etag = header_str(resp.headers(), header::ETAG);
        let last_modified = header_str(resp.headers(), header::LAST_MODIFIED);
        let compare_value = match &plan.validator {
            Validators::HeadCompare(h) => header_str(
                resp.headers(),
                HeaderName::from_bytes(h.as_bytes()).unwrap_or(header::ETAG),
            ),
            _ => None,
        };
        let entry = Entry {
            content_type: head
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            headers: stored_headers(&head.headers),
            etag,
            last_modified,
            compare_value,
            ..Entry::fetched(plan.class, plan.validator.clone(), sent.target.clone())
        };
        let engine = &job.engine;
        let (spool, data) = spool(job).await?;
        Ok(Body {
            plan,
            head,
            entry,
            data,
            spool,
            framed: crate::upstream::body_is_framed(&resp),
            idle: engine.upstream.idle_timeout(),
            body: resp.into_body(),
        })
    }
}

impl Body {
    /// A fill another node of the cluster is doing, streamed from it
    /// (`cluster.rs`): its answer already went through the adapter there,
    /// so its headers are sent as they came (but for those each response
    /// gets its own) and its bytes as they are, neither inspected nor
    /// stored here ([`stream`] relays them; the fetching node shares the
    /// entry).
    pub(super) async fn relay(
        job: &Job,
        resp: http::Response<Incoming>,
    ) -> Result<Body, FillError> {
        const PER_RESPONSE: [&str; 10] = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "date",
            "accept-ranges",
            "x-artifact-source",
            "x-artifact-size",
            "x-request-id",
            "content-security-policy",
        ];
        let mut headers = resp.headers().clone();
        for name in PER_RESPONSE {
            headers.remove(name);
        }
        let mut plan = job.plan.clone();
        plan.inspect_limit = None;
        let head = Head {
            status: StatusCode::OK,
            headers,
            size: crate::cache::head::content_length(resp.headers()),
            outcome: Outcome::Miss,
        };
        let (spool, data) = spool(job).await?;
        Ok(Body {
            entry: Entry::fetched(plan.class, plan.validator.clone(), job.sent.target.clone()),
            plan,
            head,
            data,
            spool,
            framed: crate::upstream::body_is_framed(&resp),
            idle: job.engine.upstream.idle_timeout(),
            body: resp.into_body(),
        })
    }
}

/// Stream the body into the spool, publishing to the waiters as it
/// arrives, then verify it, release its tail and commit it. The head is
/// published once the first bytes are in the spool, so a store that
/// cannot take them is a clean error status (507 for a full disk) for
/// every client rather than a 200 cut short.
pub(super) async fn stream(job: &Job, fill: &Arc<Fill>, b: Body) -> Result<Published, FillError> {
    let Body {
        plan,
        head,
        entry,
        mut spool,
        data,
        framed,
        idle,
        mut body,
    } = b;
    let remote_name = &job.remote.cfg.name;
    let expected_len = head.size;
    let head = Arc::new(head);
    let mut headed = false;
    let mut written: u64 = 0;
    let mut published: u64 = 0;
    // git smart-HTTP answers are stored only when whole and error-free.
    let mut pkt_check = pktcheck::for_headers(&head.headers);
    // A digest other than the spool's own sha256, checked in `commit`.
    let mut checksum = plan.checksum.as_ref().map(|c| c.hasher());
    let upstream_bytes = job.engine.metrics.upstream_bytes_counter(remote_name);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(FillError::upstream_abort(
                    "the upstream stalled while sending the body",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(FillError::upstream_abort(format!(
                    "the upstream body broke off: {e}"
                )));
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if chunk.is_empty() {
            continue;
        }
        written += chunk.len() as u64;
        if expected_len.is_some_and(|l| written > l) {
            return Err(FillError::upstream_abort(
                "the upstream sent more bytes than the announced size",
            ));
        }
        if let Err(e) = spool.write(&chunk) {
            let e = StoreError::io("write spool", spool.path().display(), e);
            tracing::error!(error = %e, "store failure during a fill");
            let abort = Abort::store(&e);
            if !headed {
                return Err(FillError::new(abort.status, abort.message()));
            }
            return Err(FillError::Aborted(abort));
        }
        if let Some(c) = pkt_check.as_mut() {
            c.feed(&chunk);
        }
        if let Some(h) = checksum.as_mut() {
            h.update(&chunk);
        }
        upstream_bytes.inc_by(chunk.len() as u64);
        // The head goes out with the first bytes; all but the last bytes
        // are readable at once, those only after verification ([`commit`]).
        let releasable = written.saturating_sub(HELD_BACK);
        if !headed || releasable > published {
            headed = true;
            published = releasable;
            fill.publish(FillState::Streaming {
                head: head.clone(),
                data: data.clone(),
                readable: published,
            });
        }
    }
    if expected_len.is_some_and(|l| written != l) {
        return Err(FillError::upstream_abort(
            "the upstream body ended before the announced size",
        ));
    }
    if let Some(Err(why)) = pkt_check.as_ref().map(pktcheck::PktStream::finish) {
        // Complete as far as HTTP goes, so the waiting clients get all of
        // it (git shows them the upstream's message); nothing is stored.
        tracing::warn!(remote = %remote_name, key = %plan.key, reason = why, "upstream git answer delivered but not stored");
        return Ok(Published::done(fill, head, data, written));
    }
    if matches!(job.cluster.get(), Some(super::cluster::Role::Follower)) {
        // Relayed from the node fetching for the cluster, which verified
        // the body before it released its last byte (a failure there cut
        // this body short above) and shares the entry.
        return Ok(Published::done(fill, head, data, written));
    }
    if !framed && plan.expected.is_none() && plan.checksum.is_none() {
        return Ok(deliver_unstored(job, fill, head, data, written));
    }
    let head = Arc::try_unwrap(head).unwrap_or_else(|a| (*a).clone());
    let checksum = checksum.map(|h| h.finish());
    let released = commit(job, fill, plan, head, entry, spool, data, checksum).await?;
    Ok(released.published)
}

/// A new spool for a body, and the same file as the waiters read it.
async fn spool(job: &Job) -> Result<(Spool, Arc<dyn BlobRead>), FillError> {
    let spool = job
        .engine
        .store
        .create_spool()
        .await
        .map_err(FillError::store)?;
    let reader = spool
        .reader()
        .map_err(|e| FillError::store(StoreError::io("open spool", spool.path().display(), e)))?;
    Ok((spool, Arc::new(SpoolRead(reader))))
}

/// Positional reads of a spool file being written.
struct SpoolRead(std::fs::File);

impl BlobRead for SpoolRead {
    fn len(&self) -> u64 {
        self.0.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
    }
    fn as_file(&self) -> Option<&std::fs::File> {
        Some(&self.0)
    }
}
