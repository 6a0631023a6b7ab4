//! Test support for adapters, on the host target only (not compiled for
//! `wasm32`): a [`FakeHost`] that records every capability call and answers
//! with canned responses, fixtures ([`RemoteInfo::test`],
//! [`Request::test`], [`UpstreamResponse::test`]) with `with_*` builders,
//! matchers that take a [`Decision`] or [`AfterHeaders`] apart or panic
//! with what it was instead, and [`capture_logs`] for the logging macros.
//!
//! ```
//! use artgate_sdk::prelude::*;
//! use artgate_sdk::testing::*;
//!
//! let remote = RemoteInfo::test().with_option("ttl", "5m");
//! let req = Request::test("GET", "pool/a.rpm").with_header("accept", "*/*");
//! let d = forward_get(req.upstream_target(), CachePlan::immutable(req.path_and_query()));
//! let f = d.expect_forward();
//! assert_eq!(f.upstream.target, "/pool/a.rpm");
//! assert_eq!(remote.option_secs("ttl"), Ok(Some(300)));
//! ```

use crate::Host;
use crate::types::{
    AfterHeaders, BodyLayout, BodyVerdict, CachePlan, Decision, DirectResponse, Forward, Header,
    HostedOp, IncomingResponse, Level, OutgoingRequest, PlanUpdate, Rejection, RemoteInfo,
    RemoteMode, Request, RouteKind, StagedFile, UnpackedBody, UpstreamRequest, UpstreamResponse,
};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// What a [`FakeHost`]'s `gateway-url` answers until
/// [`FakeHost::with_gateway_url`] changes it (the built-in configuration's
/// listener, as in `artgate plugin check` cases).
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8080";

/// One call an adapter made on a [`FakeHost`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `log`.
    Log(Level, String),
    /// `http-send`.
    HttpSend(OutgoingRequest),
    /// `kv-get` of a key.
    KvGet(String),
    /// `kv-set` of a key, a value and a TTL in seconds.
    KvSet(String, Vec<u8>, u64),
    /// `kv-delete` of a key.
    KvDelete(String),
    /// `kv-compare-and-set` of a key: expected, new value, TTL.
    KvCompareAndSet(String, Option<Vec<u8>>, Vec<u8>, u64),
    /// `cache-send` with its plan and body limit.
    CacheSend(OutgoingRequest, CachePlan, u32),
    /// `cache-expire` of a key.
    CacheExpire(String),
    /// `unpack-body` with its layout and limit.
    UnpackBody(BodyLayout, u32),
    /// `hosted-commit` of a staged file under a key, with its content type
    /// and write-once flag.
    HostedCommit(u32, String, Option<String>, bool),
    /// `stage-body`.
    StageBody,
}

/// A fake [`Host`] for unit tests: a key-value store in memory (TTLs kept,
/// never expired), canned answers for `http-send` and `cache-send` (the same
/// answer for every call; `Err("no answer configured")` until one is set),
/// and a record of every call.
#[derive(Debug)]
pub struct FakeHost {
    kv: RefCell<BTreeMap<String, (Vec<u8>, u64)>>,
    http_answer: RefCell<Result<IncomingResponse, String>>,
    cache_answer: RefCell<Result<IncomingResponse, String>>,
    cache_answers_by_url: RefCell<BTreeMap<String, Result<IncomingResponse, String>>>,
    gateway_url: RefCell<String>,
    unpacked: RefCell<Result<UnpackedBody, Rejection>>,
    hosted: RefCell<BTreeMap<String, u32>>,
    calls: RefCell<Vec<Call>>,
}

impl Default for FakeHost {
    fn default() -> FakeHost {
        FakeHost::new()
    }
}

impl FakeHost {
    /// An empty store, no answers configured, no calls.
    pub fn new() -> FakeHost {
        let none = || RefCell::new(Err("no answer configured".to_owned()));
        FakeHost {
            kv: RefCell::new(BTreeMap::new()),
            http_answer: none(),
            cache_answer: none(),
            cache_answers_by_url: RefCell::new(BTreeMap::new()),
            gateway_url: RefCell::new(DEFAULT_GATEWAY_URL.to_owned()),
            unpacked: RefCell::new(Err(Rejection::new(400, "No upload is configured."))),
            hosted: RefCell::new(BTreeMap::new()),
            calls: RefCell::new(Vec::new()),
        }
    }

    /// Answers every later `gateway-url` with `url` (at first
    /// [`DEFAULT_GATEWAY_URL`]).
    pub fn with_gateway_url(&self, url: &str) -> &FakeHost {
        *self.gateway_url.borrow_mut() = url.to_owned();
        self
    }

    /// Answers every later `http-send` with `answer`.
    pub fn answer_http(&self, answer: Result<IncomingResponse, String>) -> &FakeHost {
        *self.http_answer.borrow_mut() = answer;
        self
    }

    /// Answers every later `cache-send` with `answer`.
    pub fn answer_cache(&self, answer: Result<IncomingResponse, String>) -> &FakeHost {
        *self.cache_answer.borrow_mut() = answer;
        self
    }

    /// Answers every later `cache-send` of exactly `url` with `answer`
    /// (other URLs get what [`FakeHost::answer_cache`] set), for adapters
    /// that read several documents through the cache in one call.
    pub fn answer_cache_for(
        &self,
        url: &str,
        answer: Result<IncomingResponse, String>,
    ) -> &FakeHost {
        self.cache_answers_by_url
            .borrow_mut()
            .insert(url.to_owned(), answer);
        self
    }

    /// Answers the next `unpack-body` with `answer` (at first a 400: no
    /// upload configured). As on the host, a second `unpack-body` in one
    /// test's calls is refused, and a staged file commits once; a test of
    /// several requests uses a `FakeHost` for each, or [`FakeHost::next_request`].
    pub fn with_unpacked(&self, answer: Result<UnpackedBody, Rejection>) -> &FakeHost {
        *self.unpacked.borrow_mut() = answer;
        self
    }

    /// Answers the next `stage-body` with `file` (as staged file 0).
    pub fn with_staged(&self, file: StagedFile) -> &FakeHost {
        self.with_unpacked(Ok(UnpackedBody {
            rest: Vec::new(),
            files: vec![file],
        }))
    }

    /// Whether `unpack-body` or `stage-body` was called already.
    fn body_was_read(&self) -> bool {
        self.calls
            .borrow()
            .iter()
            .any(|c| matches!(c, Call::UnpackBody(..) | Call::StageBody))
    }

    /// Forgets the calls recorded so far (keeping the store and the hosted
    /// entries), as when the next request arrives.
    pub fn next_request(&self) -> &FakeHost {
        self.calls.borrow_mut().clear();
        self
    }

    /// Marks `key` as an existing hosted entry (a write-once
    /// `hosted-commit` of it is then a 409), without recording a call.
    pub fn hosted_insert(&self, key: &str) -> &FakeHost {
        self.hosted.borrow_mut().insert(key.to_owned(), u32::MAX);
        self
    }

    /// The hosted entries `hosted-commit` stored, by key, with the staged
    /// file each came from.
    pub fn hosted_committed(&self) -> BTreeMap<String, u32> {
        self.hosted
            .borrow()
            .iter()
            .filter(|(_, f)| **f != u32::MAX)
            .map(|(k, f)| (k.clone(), *f))
            .collect()
    }

    /// Sets `key` in the store (TTL 0) without recording a call.
    pub fn kv_insert(&self, key: &str, value: impl Into<Vec<u8>>) -> &FakeHost {
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), (value.into(), 0));
        self
    }

    /// The stored value of `key`.
    pub fn kv_value(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).map(|(v, _)| v.clone())
    }

    /// The TTL `key` was last set with.
    pub fn kv_ttl(&self, key: &str) -> Option<u64> {
        self.kv.borrow().get(key).map(|(_, t)| *t)
    }

    /// The stored keys, sorted.
    pub fn kv_keys(&self) -> Vec<String> {
        self.kv.borrow().keys().cloned().collect()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The requests passed to `http-send`, in order.
    pub fn http_sent(&self) -> Vec<OutgoingRequest> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::HttpSend(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The requests, plans and limits passed to `cache-send`, in order.
    pub fn cache_sent(&self) -> Vec<(OutgoingRequest, CachePlan, u32)> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::CacheSend(r, p, l) => Some((r.clone(), p.clone(), *l)),
                _ => None,
            })
            .collect()
    }

    /// The keys passed to `cache-expire`, in order.
    pub fn expired(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::CacheExpire(k) => Some(k.clone()),
                _ => None,
            })
            .collect()
    }

    /// The lines passed to `log`, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::Log(l, m) => Some((*l, m.clone())),
                _ => None,
            })
            .collect()
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }
}

impl Host for FakeHost {
    fn log(&self, level: Level, message: &str) {
        self.record(Call::Log(level, message.to_owned()));
    }

    fn http_send(&self, req: &OutgoingRequest) -> Result<IncomingResponse, String> {
        self.record(Call::HttpSend(req.clone()));
        self.http_answer.borrow().clone()
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.record(Call::KvGet(key.to_owned()));
        self.kv_value(key)
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl_secs: u64) {
        self.record(Call::KvSet(key.to_owned(), value.to_vec(), ttl_secs));
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), ttl_secs));
    }

    fn kv_delete(&self, key: &str) {
        self.record(Call::KvDelete(key.to_owned()));
        self.kv.borrow_mut().remove(key);
    }

    fn kv_compare_and_set(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl_secs: u64,
    ) -> bool {
        self.record(Call::KvCompareAndSet(
            key.to_owned(),
            expected.map(<[u8]>::to_vec),
            value.to_vec(),
            ttl_secs,
        ));
        let mut kv = self.kv.borrow_mut();
        if kv.get(key).map(|(v, _)| v.as_slice()) != expected {
            return false;
        }
        kv.insert(key.to_owned(), (value.to_vec(), ttl_secs));
        true
    }

    fn cache_send(
        &self,
        req: &OutgoingRequest,
        plan: &CachePlan,
        limit: u32,
    ) -> Result<IncomingResponse, String> {
        self.record(Call::CacheSend(req.clone(), plan.clone(), limit));
        match self.cache_answers_by_url.borrow().get(&req.url) {
            Some(answer) => answer.clone(),
            None => self.cache_answer.borrow().clone(),
        }
    }

    fn cache_expire(&self, key: &str) {
        self.record(Call::CacheExpire(key.to_owned()));
    }

    fn gateway_url(&self) -> String {
        self.gateway_url.borrow().clone()
    }

    fn unpack_body(&self, layout: &BodyLayout, rest_limit: u32) -> Result<UnpackedBody, Rejection> {
        let again = self.body_was_read();
        self.record(Call::UnpackBody(layout.clone(), rest_limit));
        if again {
            // As the host: a body is read once.
            return Err(Rejection::new(
                502,
                "the adapter read the request body twice",
            ));
        }
        self.unpacked.borrow().clone()
    }

    fn stage_body(&self) -> Result<StagedFile, Rejection> {
        let again = self.body_was_read();
        self.record(Call::StageBody);
        if again {
            return Err(Rejection::new(
                502,
                "the adapter read the request body twice",
            ));
        }
        let unpacked = self.unpacked.borrow().clone()?;
        unpacked
            .files
            .into_iter()
            .next()
            .ok_or_else(|| Rejection::new(400, "No upload is configured."))
    }

    fn hosted_commit(
        &self,
        file: u32,
        key: &str,
        content_type: Option<&str>,
        refuse_overwrite: bool,
    ) -> Result<(), Rejection> {
        self.record(Call::HostedCommit(
            file,
            key.to_owned(),
            content_type.map(str::to_owned),
            refuse_overwrite,
        ));
        let staged = match &*self.unpacked.borrow() {
            Ok(u) => u.files.len(),
            Err(_) => 0,
        };
        let committed_before = self
            .calls
            .borrow()
            .iter()
            .filter(|c| matches!(c, Call::HostedCommit(f, ..) if *f == file))
            .count()
            > 1;
        if file as usize >= staged || committed_before {
            // As the host: a file exists once and is committed once.
            return Err(Rejection::new(
                502,
                format!("staged file {file} does not exist or was committed already"),
            ));
        }
        let mut hosted = self.hosted.borrow_mut();
        if refuse_overwrite && hosted.contains_key(key) {
            return Err(Rejection::new(409, format!("{key} already exists")));
        }
        hosted.insert(key.to_owned(), file);
        Ok(())
    }
}

thread_local! {
    static CAPTURE: RefCell<Option<Vec<(Level, String)>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns its result with the lines the logging macros
/// ([`info!`](crate::info) and the others) wrote on this thread meanwhile.
pub fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, Vec<(Level, String)>) {
    let outer = CAPTURE.with(|c| c.borrow_mut().replace(Vec::new()));
    let result = f();
    let lines = CAPTURE.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
    (result, lines.unwrap_or_default())
}

/// Records a logged line when [`capture_logs`] is running on this thread;
/// whether it did.
pub(crate) fn capture(level: Level, message: &str) -> bool {
    CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push((level, message.to_owned()));
            true
        }
        None => false,
    })
}

impl RemoteInfo {
    /// A remote for tests: `test`, package `test`, pull-through from
    /// `https://upstream.example`, mutable TTL 600 s, negative TTL 60 s,
    /// no update checks, patterns, options or credentials. Change it with
    /// the `with_*` methods.
    pub fn test() -> RemoteInfo {
        RemoteInfo {
            name: "test".into(),
            package: "test".into(),
            mode: RemoteMode::PullThrough,
            upstreams: vec!["https://upstream.example".into()],
            mutable_ttl_secs: 600,
            negative_ttl_secs: 60,
            check_mutable_updates: false,
            immutable_patterns: Vec::new(),
            mutable_patterns: Vec::new(),
            options: Vec::new(),
            has_credentials: false,
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: &str) -> RemoteInfo {
        self.name = name.into();
        self
    }

    /// Sets the package type.
    pub fn with_package(mut self, package: &str) -> RemoteInfo {
        self.package = package.into();
        self
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: RemoteMode) -> RemoteInfo {
        self.mode = mode;
        self
    }

    /// Makes it a hosted remote without upstreams.
    pub fn hosted(self) -> RemoteInfo {
        self.with_mode(RemoteMode::Hosted)
            .with_upstreams::<&str>([])
    }

    /// Sets the upstream base URLs.
    pub fn with_upstreams<S: Into<String>>(
        mut self,
        urls: impl IntoIterator<Item = S>,
    ) -> RemoteInfo {
        self.upstreams = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the mutable TTL in seconds.
    pub fn with_mutable_ttl(mut self, secs: u64) -> RemoteInfo {
        self.mutable_ttl_secs = secs;
        self
    }

    /// Sets the negative TTL in seconds.
    pub fn with_negative_ttl(mut self, secs: u64) -> RemoteInfo {
        self.negative_ttl_secs = secs;
        self
    }

    /// Sets `check_mutable_updates`.
    pub fn with_check_mutable_updates(mut self, yes: bool) -> RemoteInfo {
        self.check_mutable_updates = yes;
        self
    }

    /// Sets the immutable patterns.
    pub fn with_immutable_patterns<S: Into<String>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> RemoteInfo {
        self.immutable_patterns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the mutable patterns.
    pub fn with_mutable_patterns<S: Into<String>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> RemoteInfo {
        self.mutable_patterns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the adapter option `name` (replacing an earlier value).
    pub fn with_option(mut self, name: &str, value: &str) -> RemoteInfo {
        self.options.retain(|(k, _)| k != name);
        self.options.push((name.into(), value.into()));
        self
    }

    /// Sets whether the remote has credentials.
    pub fn with_credentials(mut self, yes: bool) -> RemoteInfo {
        self.has_credentials = yes;
        self
    }
}

impl Request {
    /// A request for tests: `method` of `path` on the `/api/v1/remote/`
    /// route family, id `test`, without query, headers or body. Change it
    /// with the `with_*` methods.
    pub fn test(method: &str, path: &str) -> Request {
        Request {
            id: "test".into(),
            kind: RouteKind::RemoteApi,
            method: method.into(),
            path: path.into(),
            query: None,
            headers: Vec::new(),
            body: None,
            body_too_large: false,
        }
    }

    /// Sets the request id.
    pub fn with_id(mut self, id: &str) -> Request {
        self.id = id.into();
        self
    }

    /// Sets the route family.
    pub fn with_kind(mut self, kind: RouteKind) -> Request {
        self.kind = kind;
        self
    }

    /// Sets the query (without `?`); `None` for none.
    pub fn with_query(mut self, query: Option<&str>) -> Request {
        self.query = query.map(Into::into);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Adds headers.
    pub fn with_headers(mut self, headers: &[(&str, &str)]) -> Request {
        self.headers
            .extend(headers.iter().map(|(n, v)| Header::new(*n, *v)));
        self
    }

    /// Sets the body the host read (after `read-body`); `None` for none.
    pub fn with_body(mut self, body: Option<Vec<u8>>) -> Request {
        self.body = body;
        self
    }

    /// Sets whether the body was over the `read-body` limit.
    pub fn with_body_too_large(mut self, yes: bool) -> Request {
        self.body_too_large = yes;
        self
    }
}

impl UpstreamResponse {
    /// Upstream response headers for tests: `status` with `headers`.
    pub fn test(status: u16, headers: &[(&str, &str)]) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: headers.iter().map(|(n, v)| Header::new(*n, *v)).collect(),
        }
    }
}

impl IncomingResponse {
    /// An `http-send` / `cache-send` answer for tests: `status` with
    /// `headers` and `body`.
    pub fn test(
        status: u16,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> IncomingResponse {
        IncomingResponse {
            status,
            headers: headers.iter().map(|(n, v)| Header::new(*n, *v)).collect(),
            body: body.into(),
        }
    }
}

/// Matchers for a [`Decision`]: each returns the part it names, or panics
/// with the decision it got instead.
impl Decision {
    /// The [`Forward`] of a `forward` decision.
    #[track_caller]
    pub fn expect_forward(self) -> Forward {
        match self {
            Decision::Forward(f) => f,
            other => panic!("expected forward, got {other:?}"),
        }
    }

    /// The [`Rejection`] of a `reject` decision.
    #[track_caller]
    pub fn expect_reject(self) -> Rejection {
        match self {
            Decision::Reject(r) => r,
            other => panic!("expected rejection, got {other:?}"),
        }
    }

    /// The [`DirectResponse`] of a `respond` decision.
    #[track_caller]
    pub fn expect_respond(self) -> DirectResponse {
        match self {
            Decision::Respond(r) => r,
            other => panic!("expected a direct response, got {other:?}"),
        }
    }

    /// The limit of a `read-body` decision.
    #[track_caller]
    pub fn expect_read_body(self) -> u32 {
        match self {
            Decision::ReadBody(limit) => limit,
            other => panic!("expected read-body, got {other:?}"),
        }
    }

    /// The [`HostedOp`] of a `hosted` decision.
    #[track_caller]
    pub fn expect_hosted(self) -> HostedOp {
        match self {
            Decision::Hosted(op) => op,
            other => panic!("expected a hosted operation, got {other:?}"),
        }
    }

    /// Panics unless this is a rejection with `status` whose message
    /// contains `text`; returns the rejection.
    #[track_caller]
    pub fn expect_reject_with(self, status: u16, text: &str) -> Rejection {
        let r = self.expect_reject();
        assert_eq!(r.status, status, "status of {r:?}");
        assert!(
            r.message.contains(text),
            "{:?} does not contain {text:?}",
            r.message
        );
        r
    }
}

/// Matchers for [`AfterHeaders`]: each returns the part it names, or panics
/// with what it got instead.
impl AfterHeaders {
    /// Panics unless this is `accept`.
    #[track_caller]
    pub fn expect_accept(self) {
        if self != AfterHeaders::Accept {
            panic!("expected accept, got {self:?}");
        }
    }

    /// The [`PlanUpdate`] of an `update`.
    #[track_caller]
    pub fn expect_update(self) -> PlanUpdate {
        match self {
            AfterHeaders::Update(u) => u,
            other => panic!("expected update, got {other:?}"),
        }
    }

    /// The [`UpstreamRequest`] of a `retry`.
    #[track_caller]
    pub fn expect_retry(self) -> UpstreamRequest {
        match self {
            AfterHeaders::Retry(u) => u,
            other => panic!("expected retry, got {other:?}"),
        }
    }

    /// The [`Rejection`] of a `fail`.
    #[track_caller]
    pub fn expect_fail(self) -> Rejection {
        match self {
            AfterHeaders::Fail(r) => r,
            other => panic!("expected fail, got {other:?}"),
        }
    }
}

/// Matchers for a [`BodyVerdict`].
impl BodyVerdict {
    /// The rejection of a verdict that refuses the body.
    #[track_caller]
    pub fn expect_fail(self) -> Rejection {
        match self.fail {
            Some(r) => r,
            None => panic!("expected a failing verdict, got {self:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::forward_get;

    #[test]
    fn fake_host_records_and_answers() {
        let h = FakeHost::new();
        let req = OutgoingRequest {
            method: "GET".into(),
            url: "https://upstream.example/x".into(),
            headers: vec![],
            body: vec![],
            use_credentials: false,
        };
        assert_eq!(h.http_send(&req), Err("no answer configured".into()));
        h.answer_http(Ok(IncomingResponse::test(200, &[("a", "b")], "ok")));
        assert_eq!(h.http_send(&req).unwrap().body, b"ok");
        h.kv_set("k", b"v", 5);
        assert_eq!(h.kv_get("k"), Some(b"v".to_vec()));
        assert_eq!(h.kv_ttl("k"), Some(5));
        h.kv_delete("k");
        assert_eq!(h.kv_get("k"), None);
        h.kv_insert("seed", "1");
        assert_eq!(h.kv_keys(), ["seed"]);
        let plan = CachePlan::mutable("p");
        h.answer_cache(Ok(IncomingResponse::test(200, &[], "listing")));
        assert_eq!(h.cache_send(&req, &plan, 9).unwrap().body, b"listing");
        h.cache_expire("old");
        h.log(Level::Warn, "careful");
        assert_eq!(h.http_sent(), vec![req.clone(), req.clone()]);
        assert_eq!(h.cache_sent(), vec![(req.clone(), plan, 9)]);
        assert_eq!(h.expired(), ["old"]);
        assert_eq!(h.logs(), vec![(Level::Warn, "careful".to_owned())]);
        assert_eq!(h.calls().len(), 9);
        assert_eq!(h.calls()[2], Call::KvSet("k".into(), b"v".to_vec(), 5));
    }

    #[test]
    fn fixtures() {
        let r = RemoteInfo::test()
            .with_name("r")
            .with_package("p")
            .with_option("a", "1")
            .with_option("a", "2")
            .with_mutable_ttl(5)
            .with_negative_ttl(6)
            .with_check_mutable_updates(true)
            .with_immutable_patterns(["^i/"])
            .with_mutable_patterns(["^m/"])
            .with_credentials(true);
        assert_eq!((r.name.as_str(), r.package.as_str()), ("r", "p"));
        assert_eq!(r.option("a"), Some("2"));
        assert_eq!(r.options.len(), 1);
        assert_eq!((r.mutable_ttl_secs, r.negative_ttl_secs), (5, 6));
        assert!(r.check_mutable_updates && r.has_credentials && r.is_pull_through());
        assert_eq!(r.immutable_patterns, ["^i/"]);
        assert_eq!(r.mutable_patterns, ["^m/"]);
        let h = r.hosted();
        assert!(h.is_hosted() && h.upstreams.is_empty());
        let q = Request::test("POST", "a")
            .with_id("i")
            .with_kind(RouteKind::Registry)
            .with_query(Some("x=1"))
            .with_header("a", "1")
            .with_headers(&[("b", "2")])
            .with_body(Some(b"body".to_vec()))
            .with_body_too_large(true);
        assert_eq!(
            (q.id.as_str(), q.kind, q.query.as_deref()),
            ("i", RouteKind::Registry, Some("x=1"))
        );
        assert_eq!((q.header("a"), q.header("b")), (Some("1"), Some("2")));
        assert_eq!(q.body.as_deref(), Some(&b"body"[..]));
        assert!(q.body_too_large);
        let u = UpstreamResponse::test(401, &[("www-authenticate", "Bearer")]);
        assert_eq!(u.status, 401);
        assert_eq!(
            crate::http::header(&u.headers, "WWW-Authenticate"),
            Some("Bearer")
        );
    }

    #[test]
    fn matchers() {
        let f = forward_get("/a", CachePlan::immutable("a")).expect_forward();
        assert_eq!(f.plan.key, "a");
        assert_eq!(Decision::reject(404, "Gone.").expect_reject().status, 404);
        Decision::reject(404, "Not here.").expect_reject_with(404, "here");
        assert_eq!(Decision::read_body(7).expect_read_body(), 7);
        assert_eq!(
            Decision::hosted_delete("k").expect_hosted(),
            HostedOp::Delete("k".into())
        );
        assert_eq!(
            Decision::respond(DirectResponse::new(200, "x"))
                .expect_respond()
                .body,
            b"x"
        );
        AfterHeaders::Accept.expect_accept();
        assert!(
            AfterHeaders::Update(PlanUpdate::default())
                .expect_update()
                .add_headers
                .is_empty()
        );
        assert_eq!(
            AfterHeaders::Retry(UpstreamRequest::get("/r"))
                .expect_retry()
                .target,
            "/r"
        );
        assert_eq!(
            AfterHeaders::Fail(Rejection::new(502, "x"))
                .expect_fail()
                .status,
            502
        );
        let v = BodyVerdict {
            fail: Some(Rejection::new(502, "bad")),
            ..BodyVerdict::default()
        };
        assert_eq!(v.expect_fail().message, "bad");
        let caught = std::panic::catch_unwind(|| Decision::read_body(1).expect_forward());
        let message = caught.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("expected forward, got Decision::ReadBody(1)"),
            "{message}"
        );
    }

    #[test]
    fn logs_are_captured() {
        let ((), lines) = capture_logs(|| {
            crate::info!("one {}", 1);
            let ((), inner) = capture_logs(|| crate::warn!("two"));
            assert_eq!(inner, vec![(Level::Warn, "two".to_owned())]);
            crate::error!("three");
        });
        assert_eq!(
            lines,
            vec![
                (Level::Info, "one 1".to_owned()),
                (Level::Error, "three".to_owned())
            ]
        );
    }
}
