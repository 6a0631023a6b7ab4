//! An in-process hyper upstream on 127.0.0.1 whose behaviour each test
//! switches: served resources, validators, status overrides, delays,
//! truncation, slow drip, "down" (connections reset), and request counters.

use super::serve::Server;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

type Body = BoxBody<Bytes, std::io::Error>;

/// One served resource.
#[derive(Clone, Default)]
pub struct Resource {
    /// Body.
    pub body: Bytes,
    /// `ETag` to send (and honour in `If-None-Match`).
    pub etag: Option<String>,
    /// `Last-Modified` to send.
    pub last_modified: Option<String>,
    /// `Content-Type` to send.
    pub content_type: Option<String>,
    /// Status to answer instead of 200.
    pub status: Option<u16>,
    /// Status to answer `HEAD` requests with instead (an upstream that
    /// refuses `HEAD`).
    pub head_status: Option<u16>,
    /// Wait before sending headers.
    pub header_delay: Option<Duration>,
    /// Send the body in chunks of this size with `chunk_delay` between.
    pub chunk: Option<usize>,
    /// Delay between chunks.
    pub chunk_delay: Option<Duration>,
    /// Announce the full Content-Length but stop after this many bytes.
    pub truncate_at: Option<usize>,
    /// Hold the body after the first chunk until [`Upstream::release`].
    pub hold_after_first_chunk: bool,
    /// Send exactly this many body bytes, then hold the rest until
    /// [`Upstream::release`].
    pub hold_after_bytes: Option<usize>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Send no `Content-Length` (HTTP/1.1 then frames the body chunked),
    /// on `HEAD` answers too.
    pub no_length: bool,
}

/// What the upstream saw for one path.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// All requests.
    pub total: u64,
    /// GET requests.
    pub gets: u64,
    /// HEAD requests.
    pub heads: u64,
    /// Requests carrying If-None-Match or If-Modified-Since.
    pub conditional: u64,
    /// 304 answers.
    pub not_modified: u64,
    /// Headers of the last request.
    pub last_headers: HeaderMap,
}

#[derive(Default)]
struct Inner {
    resources: HashMap<String, Resource>,
    seen: HashMap<String, Seen>,
}

/// The running upstream. Dropping it stops the server.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    release: Arc<Notify>,
    released: Arc<AtomicBool>,
    bodies_completed: Arc<AtomicU64>,
    server: Server,
}

impl Upstream {
    /// Start on 127.0.0.1:0.
    pub async fn start() -> Upstream {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let release = Arc::new(Notify::new());
        let released = Arc::new(AtomicBool::new(false));
        let bodies_completed = Arc::new(AtomicU64::new(0));
        let (i2, r2, rd2, bc2) = (
            inner.clone(),
            release.clone(),
            released.clone(),
            bodies_completed.clone(),
        );
        let server = Server::start(move |req, _| {
            serve(i2.clone(), r2.clone(), rd2.clone(), bc2.clone(), req)
        })
        .await;
        Upstream {
            addr: server.addr,
            inner,
            release,
            released,
            bodies_completed,
            server,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serve `res` at `path` (absolute, e.g. `/a/b.txt`).
    pub fn put(&self, path: &str, res: Resource) {
        self.inner
            .lock()
            .unwrap()
            .resources
            .insert(path.to_owned(), res);
    }

    /// Serve `body` at `path` with an ETag derived from it.
    pub fn put_body(&self, path: &str, body: impl Into<Bytes>) {
        let body: Bytes = body.into();
        let etag = format!(
            "\"{:x}\"",
            body.len() as u64
                ^ body
                    .iter()
                    .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(*b as u64))
        );
        self.put(
            path,
            Resource {
                body,
                etag: Some(etag),
                ..Default::default()
            },
        );
    }

    /// Change a served resource in place.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Resource)) {
        let mut g = self.inner.lock().unwrap();
        f(g.resources.entry(path.to_owned()).or_default());
    }

    /// Remove a resource (404 afterwards).
    pub fn remove(&self, path: &str) {
        self.inner.lock().unwrap().resources.remove(path);
    }

    /// What was seen for `path`.
    pub fn seen(&self, path: &str) -> Seen {
        self.inner
            .lock()
            .unwrap()
            .seen
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Requests seen for every path together.
    pub fn requests(&self) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .seen
            .values()
            .map(|s| s.total)
            .sum()
    }

    /// Reset every connection from now on, and close the open ones (or
    /// stop doing so).
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }

    /// Let held bodies continue.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }

    /// Bodies sent to completion (the last byte handed to the connection).
    pub fn bodies_completed(&self) -> u64 {
        self.bodies_completed.load(Ordering::SeqCst)
    }
}

async fn serve(
    inner: Arc<Mutex<Inner>>,
    release: Arc<Notify>,
    released: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let conditional = req.headers().contains_key(header::IF_NONE_MATCH)
        || req.headers().contains_key(header::IF_MODIFIED_SINCE);
    let res = {
        let mut g = inner.lock().unwrap();
        let s = g.seen.entry(path.clone()).or_default();
        s.total += 1;
        if req.method() == http::Method::GET {
            s.gets += 1;
        }
        if req.method() == http::Method::HEAD {
            s.heads += 1;
        }
        if conditional {
            s.conditional += 1;
        }
        s.last_headers = req.headers().clone();
        g.resources.get(&path).cloned()
    };
    let Some(res) = res else {
        return simple(StatusCode::NOT_FOUND, "not found");
    };
    if let Some(d) = res.header_delay {
        tokio::time::sleep(d).await;
    }
    if req.method() == http::Method::HEAD
        && let Some(s) = res.head_status
    {
        return simple(StatusCode::from_u16(s).unwrap(), "status override for HEAD");
    }
    if let Some(s) = res.status {
        // Status overrides keep the resource's extra headers (a redirect's
        // Location, a Retry-After, ...).
        let mut r = simple(StatusCode::from_u16(s).unwrap(), "status override");
        for (k, v) in &res.headers {
            r.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        return r;
    }
    if let (Some(etag), Some(inm)) = (&res.etag, req.headers().get(header::IF_NONE_MATCH))
        && inm.to_str().ok() == Some(etag.as_str())
    {
        inner
            .lock()
            .unwrap()
            .seen
            .entry(path)
            .or_default()
            .not_modified += 1;
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r.headers_mut().insert(header::ETAG, etag.parse().unwrap());
        return r;
    }
    let mut builder = Response::builder().status(200);
    if !res.no_length {
        builder = builder.header(header::CONTENT_LENGTH, res.body.len());
    }
    if let Some(e) = &res.etag {
        builder = builder.header(header::ETAG, e);
    }
    if let Some(l) = &res.last_modified {
        builder = builder.header(header::LAST_MODIFIED, l);
    }
    if let Some(c) = &res.content_type {
        builder = builder.header(header::CONTENT_TYPE, c);
    }
    for (k, v) in &res.headers {
        builder = builder.header(k, v);
    }
    if req.method() == http::Method::HEAD {
        if res.no_length {
            // A body of unknown size, so hyper adds no `Content-Length: 0`.
            let none = futures_util::stream::empty::<Result<Frame<Bytes>, std::io::Error>>();
            return builder.body(BodyExt::boxed(StreamBody::new(none))).unwrap();
        }
        return builder.body(empty()).unwrap();
    }
    let body = res.body.clone();
    let limit = res.truncate_at.unwrap_or(body.len()).min(body.len());
    let chunk = res.chunk.unwrap_or(64 * 1024).max(1);
    let delay = res.chunk_delay;
    let hold = res.hold_after_first_chunk;
    let hold_at = res.hold_after_bytes;
    let truncated = res.truncate_at.is_some();
    let stream = futures_util::stream::unfold(0usize, move |pos| {
        let body = body.clone();
        let release = release.clone();
        let released = released.clone();
        let completed = completed.clone();
        async move {
            if pos >= limit {
                if truncated {
                    // Break off after the usual pause, so what was sent
                    // before has been flushed to the client.
                    if pos > 0
                        && let Some(d) = delay
                    {
                        tokio::time::sleep(d).await;
                    }
                    return Some((
                        Err(std::io::Error::other("truncated on purpose")),
                        usize::MAX,
                    ));
                }
                // An empty body is complete at once; others count when
                // their last chunk is handed over (hyper does not poll a
                // body again once its Content-Length is reached).
                if pos == 0 && limit == 0 {
                    completed.fetch_add(1, Ordering::SeqCst);
                }
                return None;
            }
            if pos > 0 {
                let held = hold || hold_at.is_some_and(|h| pos >= h);
                if held && !released.load(Ordering::SeqCst) {
                    let notified = release.notified();
                    if !released.load(Ordering::SeqCst) {
                        notified.await;
                    }
                }
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
            }
            let mut end = (pos + chunk).min(limit);
            if let Some(h) = hold_at.filter(|h| pos < *h) {
                end = end.min(h);
            }
            if end == limit && !truncated {
                completed.fetch_add(1, Ordering::SeqCst);
            }
            Some((Ok(Frame::data(body.slice(pos..end))), end))
        }
    });
    let stream = futures_util::StreamExt::take_while(stream, |r| {
        std::future::ready(!matches!(r, Err(e) if e.kind() == std::io::ErrorKind::Interrupted))
    });
    builder
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

fn empty() -> Body {
    http_body_util::Empty::new().map_err(|e| match e {}).boxed()
}

fn simple(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(
        http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}
