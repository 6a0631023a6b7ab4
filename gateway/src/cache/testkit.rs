//! What the cache engine's unit tests run on: a real store in a temp dir,
//! a real upstream (hyper on 127.0.0.1, answering as a test tells it to),
//! and fill leaders driven directly through an [`Engine`], without the
//! HTTP front; with no adapter, or the `hostile` test adapter where a test
//! needs an adapter's hooks.

use super::fill::{Fill, FillState, Head};
use super::leader::{self, Job, Prefetch};
use super::plan::Plan;
use super::{Engine, Fills, Joined};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugins::{Adapter, CallContext, PluginEngine, wit};
use crate::state::RemoteRuntime;
use crate::store::{
    BlobStore, CachedMetaStore, EntryClass, EntryId, FsBlobStore, HotBlobs, SledMetaStore, Store,
    Validators,
};
use crate::upstream::Upstream;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One answer of the test upstream.
#[derive(Clone)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers besides `Content-Length`.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Bytes,
    /// Send only this many body bytes, then break the connection (the
    /// `Content-Length` still announces the whole body).
    pub cut_after: Option<usize>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Send the body in parts of this many bytes, waiting this long
    /// before each part but the first (so the gateway holds a part that
    /// is not the newest while the upstream waits).
    pub pause: Option<(usize, Duration)>,
}

impl Reply {
    /// A 200 with `body`.
    pub fn ok(body: &'static [u8]) -> Reply {
        Reply::status(StatusCode::OK, body)
    }

    /// `status` with `body`.
    pub fn status(status: StatusCode, body: &'static [u8]) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::from_static(body),
            cut_after: None,
            delay: Duration::ZERO,
            pause: None,
        }
    }

    /// The same answer with a header added.
    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }
}

type Answer = dyn Fn(&Method, &HeaderMap) -> Reply + Send + Sync;

/// An HTTP/1 upstream on 127.0.0.1 that answers with what [`TestUpstream::answer`]
/// set and records each request's method and headers. Stops when dropped.
pub struct TestUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    answer: Arc<Mutex<Arc<Answer>>>,
    seen: Arc<Mutex<Vec<(Method, HeaderMap)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    /// Start one that answers every request with `reply`.
    pub async fn start(reply: Reply) -> TestUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let first: Arc<Answer> = Arc::new(move |_: &Method, _: &HeaderMap| reply.clone());
        let answer = Arc::new(Mutex::new(first));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (a, s) = (answer.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (a, s) = (a.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<_>| {
                        let (a, s) = (a.clone(), s.clone());
                        async move { Ok::<_, Infallible>(respond(&a, &s, req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        TestUpstream {
            addr,
            answer,
            seen,
            task,
        }
    }

    /// Answer from now on with what `f` says for each request.
    pub fn answer(&self, f: impl Fn(&Method, &HeaderMap) -> Reply + Send + Sync + 'static) {
        *self.answer.lock().unwrap() = Arc::new(f);
    }

    /// The requests seen so far, in order.
    pub fn seen(&self) -> Vec<(Method, HeaderMap)> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests with `method` it has seen.
    pub fn count(&self, method: Method) -> usize {
        self.seen().iter().filter(|(m, _)| *m == method).count()
    }

    /// Stop listening: later connections are refused.
    pub async fn stop(&self) {
        self.task.abort();
        // The listener closes once the aborted task is dropped.
        while !self.task.is_finished() {
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type TestBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn respond(
    answer: &Mutex<Arc<Answer>>,
    seen: &Mutex<Vec<(Method, HeaderMap)>>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<TestBody> {
    let (parts, _) = req.into_parts();
    seen.lock()
        .unwrap()
        .push((parts.method.clone(), parts.headers.clone()));
    let f = answer.lock().unwrap().clone();
    let reply = f(&parts.method, &parts.headers);
    tokio::time::sleep(reply.delay).await;
    let mut resp = http::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(*k, v);
    }
    resp = resp.header(http::header::CONTENT_LENGTH, reply.body.len());
    let body: TestBody = match (reply.cut_after, reply.pause) {
        (None, None) => http_body_util::Full::new(reply.body)
            .map_err(|never| match never {})
            .boxed(),
        (None, Some((n, wait))) => {
            let body = reply.body;
            let parts: Vec<Bytes> = (0..body.len())
                .step_by(n.max(1))
                .map(|at| body.slice(at..(at + n.max(1)).min(body.len())))
                .collect();
            let frames =
                futures_util::stream::iter(parts)
                    .enumerate()
                    .then(move |(i, part)| async move {
                        if i > 0 {
                            tokio::time::sleep(wait).await;
                        }
                        Ok(Frame::data(part))
                    });
            BodyExt::boxed(StreamBody::new(frames))
        }
        (Some(n), _) => {
            // The break comes a moment after the first bytes, so that the
            // head and those bytes are on the wire before it.
            let part = reply.body.slice(..n.min(reply.body.len()));
            let frames = futures_util::stream::iter([Some(part), None])
                .enumerate()
                .then(|(i, part)| async move {
                    if i == 1 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    part.map(Frame::data)
                        .ok_or_else(|| std::io::Error::other("cut off by the test"))
                });
            BodyExt::boxed(StreamBody::new(frames))
        }
    };
    resp.body(body).unwrap()
}

/// A store in `dir`, the upstream client of `config`, and fresh metrics
/// and fills.
pub fn engine(dir: &std::path::Path, config: &Config) -> Engine {
    engine_with_blobs(dir, config, Arc::new(FsBlobStore::open(dir).unwrap()))
}

/// [`engine`] with `blobs` as its blob store (e.g. [`GatedBlobs`]).
pub fn engine_with_blobs(
    dir: &std::path::Path,
    config: &Config,
    blobs: Arc<dyn BlobStore>,
) -> Engine {
    let meta = SledMetaStore::open(&dir.join("index")).unwrap();
    Engine {
        store: Store {
            meta: Arc::new(CachedMetaStore::new(Arc::new(meta), 1_000)),
            blobs,
            hot: Arc::new(HotBlobs::new(1 << 20, 64 << 10)),
            shared: None,
        },
        upstream: Upstream::new(&config.upstream).unwrap(),
        metrics: Arc::new(Metrics::new()),
        fills: Arc::new(Fills::default()),
    }
}

/// A configuration with one generic remote `r` in front of `upstream`,
/// and a first-byte timeout of 1 s (and no retries) so that timeouts
/// are quick to provoke.
pub fn config(upstream: SocketAddr) -> Config {
    let text = format!(
        "[storage]\ndir = \"/unused\"\n[upstream]\nfirst_byte_timeout = \"1s\"\nretries = 0\n\
         [[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = \"http://{upstream}\"\n"
    );
    crate::config::parse(&text, std::path::Path::new("/")).unwrap()
}

/// A plan for `key` (fetched from `/{key}`) of `class`, checked with
/// `validator` once expired.
pub fn plan(key: &str, class: EntryClass, validator: Validators) -> Plan {
    Plan {
        key: key.to_owned(),
        class,
        ttl: Duration::from_secs(600),
        validator,
        content_type: None,
        expected: None,
        checksum: None,
        headers: Vec::new(),
        inspect_limit: None,
        cache_not_found: false,
    }
}

/// A job for `plan` of remote `r` of `config`, as an adapter's
/// `cache-send` would start it (no adapter calls).
pub fn job(engine: &Engine, config: &Config, plan: Plan) -> Job {
    let remote = Arc::new(RemoteRuntime::new(config.remotes[0].clone()));
    let target = format!("/{}", plan.key);
    Job {
        engine: engine.clone(),
        id: EntryId::new(&remote.cfg.name, &plan.key),
        remote,
        sent: wit::UpstreamRequest {
            method: "GET".into(),
            target: target.clone(),
            headers: Vec::new(),
            forward_body: false,
            use_credentials: false,
        },
        body: None,
        req: wit::Request {
            id: String::new(),
            kind: wit::RouteKind::RemoteApi,
            method: "GET".into(),
            path: plan.key.clone(),
            query: None,
            headers: Vec::new(),
            body: None,
            body_too_large: false,
        },
        plan,
        adapter: None,
        ctx: CallContext::idle(),
        prefetch: Default::default(),
        cluster: Default::default(),
    }
}

/// Lead `job`'s fill to its end, its commit included (so what it stored
/// is in the store and it left the in-flight map), and return what it
/// ended with; or join the fill in progress and return the state it
/// settles in.
pub async fn run(job: Job) -> FillState {
    match job.engine.fills.join(&job.id) {
        Joined::Leader(fill) => {
            leader::run(job, fill.clone()).await;
            fill.subscribe().borrow().clone()
        }
        Joined::Waiter(fill) => settled(&fill).await,
    }
}

/// Start `job`'s fill in the background, or join the one in progress.
pub fn lead(job: Job) -> Arc<Fill> {
    start(job).0
}

/// [`lead`], with the leader's task when this call leads the fill: it
/// ends once the fill has (after the commit of a fetched body).
pub fn start(job: Job) -> (Arc<Fill>, Option<JoinHandle<Option<Prefetch>>>) {
    match job.engine.fills.join(&job.id) {
        Joined::Leader(fill) => {
            let task = tokio::spawn(leader::run(job, fill.clone()));
            (fill, Some(task))
        }
        Joined::Waiter(fill) => (fill, None),
    }
}

/// The state `fill` ends in (done, failed or aborted).
pub async fn settled(fill: &Fill) -> FillState {
    let mut rx = fill.subscribe();
    loop {
        let s = rx.borrow_and_update().clone();
        if !matches!(
            s,
            FillState::Pending | FillState::Streaming { .. } | FillState::Uncacheable
        ) {
            return s;
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

/// The head and the whole body of a finished fill; panics on any other
/// state, naming it.
pub fn done(state: &FillState) -> (Arc<Head>, Vec<u8>) {
    match state {
        FillState::Done { head, data, len } => (head.clone(), data.read_prefix(*len).unwrap()),
        FillState::Failed(f) => panic!("the fill failed: {} {}", f.status, f.message),
        FillState::Aborted(a) => panic!("the fill aborted: {}", a.message()),
        _ => panic!("the fill has not ended"),
    }
}

/// How many blobs the store holds (the empty blob is implicit).
pub fn blob_count(engine: &Engine) -> usize {
    BlobStore::list(engine.store.blobs.as_ref()).unwrap().len()
}

/// The `hostile` test adapter (`plugins/testing/hostile`), loaded on an
/// engine with the default plugin settings. What it does is chosen by the
/// remote option `mode` of the job's remote.
pub async fn hostile_adapter() -> Arc<Adapter> {
    let cfg = Config::default_config().expect("default config").plugins;
    let engine = PluginEngine::new(&cfg, None).expect("plugin engine");
    let wasm = std::fs::read(concat!(env!("ARTGATE_ADAPTERS_DIR"), "/hostile.wasm"))
        .expect("hostile.wasm");
    let adapter = Adapter::load(engine, Arc::from(wasm), crate::plugins::Source::BuiltIn)
        .await
        .expect("the hostile adapter loads");
    Arc::new(adapter)
}

/// A blob store ([`FsBlobStore`] in a temp dir) whose commits stop at a
/// gate the test opens: a test sees what clients get while a commit is in
/// progress, and decides whether it succeeds.
pub struct GatedBlobs {
    inner: FsBlobStore,
    gate: Arc<Gate>,
}

/// The gate of a [`GatedBlobs`]: closed when made; commits reaching it
/// wait until it is opened, passing or failing.
pub struct Gate {
    state: Mutex<GateState>,
    opened: std::sync::Condvar,
    reached: tokio::sync::watch::Sender<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GateState {
    Closed,
    Pass,
    Fail,
}

impl Gate {
    /// Wait until `n` commits in all have reached the gate.
    pub async fn reached(&self, n: usize) {
        let mut rx = self.reached.subscribe();
        rx.wait_for(|&k| k >= n).await.expect("the gate lives");
    }

    /// How many commits have reached the gate.
    pub fn count(&self) -> usize {
        *self.reached.borrow()
    }

    /// Let every commit through, now and later.
    pub fn pass(&self) {
        self.set(GateState::Pass);
    }

    /// Fail every commit with an I/O error (`EIO`), now and later.
    pub fn fail(&self) {
        self.set(GateState::Fail);
    }

    fn set(&self, to: GateState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = to;
        self.opened.notify_all();
    }

    /// Called by a commit (on a blocking thread): wait for the gate, then
    /// whether to fail.
    fn wait(&self) -> bool {
        self.reached.send_modify(|k| *k += 1);
        let mut state = self.state.lock().unwrap();
        while *state == GateState::Closed {
            state = self.opened.wait(state).unwrap();
        }
        *state == GateState::Fail
    }
}

/// The test's hold on a [`Gate`]: dropped (also when the test fails),
/// it lets every commit through, so no blocking thread waits for ever and
/// the test's runtime can shut down.
pub struct GateHandle(Arc<Gate>);

impl std::ops::Deref for GateHandle {
    type Target = Gate;
    fn deref(&self) -> &Gate {
        &self.0
    }
}

impl Drop for GateHandle {
    fn drop(&mut self) {
        if *self.0.state.lock().unwrap_or_else(|p| p.into_inner()) == GateState::Closed {
            self.0.set(GateState::Pass);
        }
    }
}

impl GatedBlobs {
    /// A blob store in `dir` behind a closed gate.
    pub fn open(dir: &std::path::Path) -> (Arc<GatedBlobs>, GateHandle) {
        let gate = Arc::new(Gate {
            state: Mutex::new(GateState::Closed),
            opened: std::sync::Condvar::new(),
            reached: tokio::sync::watch::Sender::new(0),
        });
        let blobs = GatedBlobs {
            inner: FsBlobStore::open(dir).unwrap(),
            gate: gate.clone(),
        };
        (Arc::new(blobs), GateHandle(gate))
    }
}

impl BlobStore for GatedBlobs {
    fn create_spool(&self) -> std::io::Result<crate::store::Spool> {
        self.inner.create_spool()
    }
    fn commit(
        &self,
        spool: crate::store::Spool,
        expected: Option<&crate::store::Digest>,
    ) -> Result<crate::store::BlobRef, crate::store::StoreError> {
        if self.gate.wait() {
            return Err(crate::store::StoreError::io(
                "fsync spool",
                spool.path().display(),
                std::io::Error::from_raw_os_error(libc::EIO),
            ));
        }
        self.inner.commit(spool, expected)
    }
    fn open(
        &self,
        digest: &crate::store::Digest,
    ) -> std::io::Result<Option<Box<dyn crate::store::BlobRead>>> {
        self.inner.open(digest)
    }
    fn contains(&self, digest: &crate::store::Digest) -> std::io::Result<bool> {
        self.inner.contains(digest)
    }
    fn remove(&self, digest: &crate::store::Digest) -> std::io::Result<bool> {
        self.inner.remove(digest)
    }
    fn list(&self) -> std::io::Result<Vec<crate::store::BlobRef>> {
        self.inner.list()
    }
    fn verify(&self, digest: &crate::store::Digest) -> std::io::Result<bool> {
        self.inner.verify(digest)
    }
    fn clean_spools(&self) -> std::io::Result<usize> {
        self.inner.clean_spools()
    }
    fn spools(&self) -> std::io::Result<Vec<String>> {
        self.inner.spools()
    }
}
