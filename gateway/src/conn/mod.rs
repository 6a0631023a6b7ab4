//! One client connection's deadlines and the HTTP/1 request heads read on
//! it, for what hyper does not do itself.
//!
//! hyper-util's HTTP/1-or-2 detection waits for the first bytes without a
//! timeout, hyper's HTTP/1 header timer also runs while a keep-alive
//! connection is idle (so `idle_timeout` never applied), and HTTP/2 has no
//! idle timeout. Every connection therefore gets a [`ConnGuard`]: its
//! bytes pass through [`io::GuardedIo`], which reads each HTTP/1 request
//! head itself before hyper sees it ([`head`]), and the service holds a
//! [`RequestGuard`] for each request in flight. [`ConnGuard::expired`]
//! resolves when the connection has overstayed:
//!
//! - before its first request: `header_read_timeout` after the accept
//!   (a silent socket, an HTTP/2 preface and SETTINGS with nothing after);
//! - between requests: `idle_timeout` after the last response ended;
//! - HTTP/1, once the first byte of a head has arrived: `header_read_timeout`
//!   after that byte (slowloris).
//!
//! While a request is in flight none of these apply: the request body's
//! stall timeout (`body_read_timeout`, [`crate::reqbody`]) and the upstream
//! timeouts do.

pub mod chunked;
pub mod head;
pub mod io;

use crate::body::ResBody;
use http::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The limits a connection is held to (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// `header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `idle_timeout`.
    pub idle_timeout: Duration,
    /// `max_uri_bytes`.
    pub max_uri_bytes: usize,
    /// `max_header_bytes`.
    pub max_header_bytes: usize,
    /// `max_headers`.
    pub max_headers: usize,
}

impl ConnLimits {
    /// The limits in `cfg`.
    pub fn from_config(cfg: &crate::config::ServerConfig) -> Self {
        ConnLimits {
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            max_uri_bytes: cfg.max_uri_bytes,
            max_header_bytes: cfg.max_header_bytes,
            max_headers: cfg.max_headers,
        }
    }

    /// The most bytes of one HTTP/1 request head read before it is
    /// refused: a request line with the longest target plus the largest
    /// header block, and room for the method and version.
    pub fn max_head_bytes(&self) -> usize {
        self.max_uri_bytes + self.max_header_bytes + 1024
    }
}

/// A refused request head: the status and the one sentence the client
/// gets instead of a response from the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 414 or 431.
    pub status: StatusCode,
    /// What was wrong.
    pub message: String,
}

#[derive(Debug)]
struct State {
    /// Requests whose response has not ended.
    in_flight: usize,
    /// Requests handed to the service so far.
    dispatched: u64,
    /// When the connection last became idle (the accept, or the end of the
    /// last response).
    idle_since: Instant,
    /// When the first byte of the HTTP/1 head being read arrived.
    head_started: Option<Instant>,
    /// Heads passed on to hyper so far (including a stand-in for a refused one).
    heads_released: u64,
    /// A refused head: the number of the request it stands for, and why.
    refusal: Option<(u64, Refusal)>,
}

/// Shared by a connection's IO, its service and its watchdog.
#[derive(Clone)]
pub struct ConnGuard {
    limits: ConnLimits,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl ConnGuard {
    /// A guard for a connection accepted now.
    pub fn new(limits: ConnLimits) -> Self {
        ConnGuard {
            limits,
            state: Arc::new(Mutex::new(State {
                in_flight: 0,
                dispatched: 0,
                idle_since: Instant::now(),
                head_started: None,
                heads_released: 0,
                refusal: None,
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    /// The limits this connection is held to.
    pub fn limits(&self) -> &ConnLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few counters; a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first byte of an HTTP/1 head arrived.
    pub(crate) fn head_started(&self) {
        let mut s = self.lock();
        if s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// A whole head was passed on to hyper; `refusal` when it stands for
    /// a refused one.
    pub(crate) fn head_released(&self, refusal: Option<Refusal>) {
        let mut s = self.lock();
        s.head_started = None;
        s.heads_released += 1;
        if let Some(r) = refusal {
            s.refusal = Some((s.heads_released, r));
        }
        drop(s);
        self.changed.notify_one();
    }

    /// A request reached the service: it is in flight until the returned
    /// guard (kept with its response body) is dropped. The refusal, when
    /// there is one, is the answer to give instead: the request is the
    /// stand-in for a head [`io::GuardedIo`] refused.
    pub fn request_started(&self) -> (RequestGuard, Option<Refusal>) {
        let mut s = self.lock();
        s.in_flight += 1;
        s.dispatched += 1;
        let refusal = match &s.refusal {
            Some((n, _)) if *n == s.dispatched => s.refusal.take().map(|(_, r)| r),
            _ => None,
        };
        drop(s);
        self.changed.notify_one();
        (RequestGuard { conn: self.clone() }, refusal)
    }

    fn request_ended(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
        }
        drop(s);
        self.changed.notify_one();
    }

    /// When the connection is to be closed if nothing changes; `None`
    /// while a request is in flight.
    fn deadline(&self) -> Option<Instant> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        let wait = if s.dispatched == 0 {
            self.limits.header_read_timeout
        } else {
            self.limits.idle_timeout
        };
        let idle = s.idle_since + wait;
        Some(match s.head_started {
            Some(t) => idle.min(t + self.limits.header_read_timeout),
            None => idle,
        })
    }

    /// Resolves when the connection has been silent, idle or slow to send
    /// a head for longer than its limits allow.
    pub async fn expired(&self) {
        loop {
            // Registered before the deadline is read, so that a change in
            // between wakes this loop (`notify_one` keeps a permit).
            let changed = self.changed.notified();
            match self.deadline() {
                None => changed.await,
                Some(d) if d <= Instant::now() => return,
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(d) => {}
                        _ = changed => {}
                    }
                }
            }
        }
    }
}

/// Keeps its request counted as in flight; dropped with the response body.
pub struct RequestGuard {
    conn: ConnGuard,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.conn.request_ended();
    }
}

/// `resp` with `guard` riding along in its body, so the request counts as
/// in flight until the body has been sent (or dropped).
pub fn hold_until_sent(
    resp: http::Response<ResBody>,
    guard: RequestGuard,
) -> http::Response<ResBody> {
    use http_body_util::BodyExt;
    resp.map(|b| {
        GuardedBody {
            inner: b,
            _guard: guard,
        }
        .boxed_unsync()
    })
}

pin_project_lite::pin_project! {
    struct GuardedBody {
        #[pin]
        inner: ResBody,
        _guard: RequestGuard,
    }
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
