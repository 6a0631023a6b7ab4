//! Constructors and builders for the WIT records an adapter returns:
//! decisions, cache plans, upstream requests, hosted operations.
//!
//! The types themselves live in [`types`](crate::types); this module adds
//! inherent methods to them.
//!
//! ```
//! use artgate_sdk::prelude::*;
//! let plan = CachePlan::immutable("pool/a.rpm")
//!     .content_type(media::content_type("pool/a.rpm"))
//!     .header("x-origin", "mirror")
//!     .cache_not_found(true);
//! let d = forward_get("/pool/a.rpm", plan);
//! assert!(matches!(d, Decision::Forward(_)));
//! ```

use crate::digest::Digest;
use crate::http;
use crate::pattern::{PathClass, PatternError, Patterns};
use crate::types::{
    AdapterInfo, BodyVerdict, CacheClass, CachePlan, Decision, DirectResponse, Forward, Header,
    HostedList, HostedOp, HostedRead, HostedWrite, PlanUpdate, Rejection, RemoteInfo, RemoteMode,
    Request, UpstreamRequest, Validator,
};

/// Forwards a `GET` of `target` upstream, with the remote's credentials, and
/// caches the response by `plan`.
///
/// `target` is a path and query appended to each upstream base URL (leading
/// `/` included), or an absolute URL on one of the remote's hosts.
pub fn forward_get(target: impl Into<String>, plan: CachePlan) -> Decision {
    Decision::forward(UpstreamRequest::get(target), plan)
}

impl Header {
    /// A header from a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl AdapterInfo {
    /// Describes an adapter: its name, its semver version and the package
    /// types it serves.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        version: impl Into<String>,
        package_types: impl IntoIterator<Item = S>,
    ) -> AdapterInfo {
        AdapterInfo {
            name: name.into(),
            version: version.into(),
            package_types: package_types.into_iter().map(Into::into).collect(),
        }
    }
}

impl CachePlan {
    /// A plan for `key` in class `class`, with every optional part unset:
    /// the remote's TTL and validator, the upstream's content type, no
    /// expected digest, no extra headers, no inspection, 404s not cached.
    pub fn new(key: impl Into<String>, class: CacheClass) -> CachePlan {
        CachePlan {
            key: key.into(),
            class,
            ttl_secs: None,
            validator: None,
            content_type: None,
            expected_digest: None,
            response_headers: Vec::new(),
            inspect_limit: None,
            cache_not_found: false,
            vary: Vec::new(),
        }
    }

    /// A plan for content that never changes (digests, versioned files).
    pub fn immutable(key: impl Into<String>) -> CachePlan {
        CachePlan::new(key, CacheClass::Immutable)
    }

    /// A plan for content that expires after the remote's mutable TTL (set
    /// another one with [`ttl`](Self::ttl)).
    pub fn mutable(key: impl Into<String>) -> CachePlan {
        CachePlan::new(key, CacheClass::Mutable)
    }

    /// A plan that streams the response without storing it.
    pub fn no_store(key: impl Into<String>) -> CachePlan {
        CachePlan::new(key, CacheClass::NoStore)
    }

    /// Sets the freshness class.
    pub fn class(mut self, class: CacheClass) -> CachePlan {
        self.class = class;
        self
    }

    /// Overrides the TTL of a mutable entry, in seconds.
    pub fn ttl(mut self, secs: u64) -> CachePlan {
        self.ttl_secs = Some(secs);
        self
    }

    /// Sets how an expired mutable entry is checked against the upstream.
    pub fn validator(mut self, validator: Validator) -> CachePlan {
        self.validator = Some(validator);
        self
    }

    /// Sets the content type sent to clients.
    pub fn content_type(mut self, content_type: impl Into<String>) -> CachePlan {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the digest the body must have; the core verifies it while
    /// streaming.
    pub fn expected_digest(mut self, digest: &Digest) -> CachePlan {
        self.expected_digest = Some(digest.to_string());
        self
    }

    /// Sets a sha512 or sha1 digest the body must have, as the format
    /// publishes it (npm's `dist.integrity`, Maven's `.sha1`): `algorithm`
    /// `"sha512"` or `"sha1"` and the digest's bytes. The core verifies it
    /// while streaming, beside the sha256 it names blobs by.
    pub fn expected_checksum(mut self, algorithm: &str, digest: &[u8]) -> CachePlan {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.expected_digest = Some(format!("{algorithm}:{hex}"));
        self
    }

    /// Adds a header sent with every response served from the entry.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> CachePlan {
        self.response_headers.push(Header::new(name, value));
        self
    }

    /// Adds `content-disposition: attachment; filename=...` for `filename`
    /// (see [`http::content_disposition`]).
    pub fn attachment(self, filename: &str) -> CachePlan {
        self.header("content-disposition", http::content_disposition(filename))
    }

    /// Asks the core to buffer an upstream body of at most `limit` bytes and
    /// call `inspect-body` with it.
    pub fn inspect(mut self, limit: u32) -> CachePlan {
        self.inspect_limit = Some(limit);
        self
    }

    /// Sets whether an upstream 404 may be cached for the negative TTL.
    pub fn cache_not_found(mut self, yes: bool) -> CachePlan {
        self.cache_not_found = yes;
        self
    }

    /// Declares that the decision depends on the request header `name`
    /// (stored lower-case), e.g. `accept`: the core then remembers the
    /// decision per value of that header.
    pub fn vary(mut self, name: impl Into<String>) -> CachePlan {
        let name = name.into().to_ascii_lowercase();
        if !self.vary.contains(&name) {
            self.vary.push(name);
        }
        self
    }
}

impl UpstreamRequest {
    /// An upstream request with `method` for `target`, without headers, body
    /// or credentials.
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> UpstreamRequest {
        UpstreamRequest {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            forward_body: false,
            use_credentials: false,
        }
    }

    /// A `GET` of `target` that uses the remote's credentials (the core only
    /// attaches them for the remote's own upstream hosts).
    pub fn get(target: impl Into<String>) -> UpstreamRequest {
        UpstreamRequest::new("GET", target).credentials(true)
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> UpstreamRequest {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Sets whether the remote's credentials are attached.
    pub fn credentials(mut self, yes: bool) -> UpstreamRequest {
        self.use_credentials = yes;
        self
    }

    /// Sets whether the client's request body is forwarded.
    pub fn with_body(mut self, yes: bool) -> UpstreamRequest {
        self.forward_body = yes;
        self
    }
}

impl Rejection {
    /// A rejection with an HTTP status and a one-sentence message.
    pub fn new(status: u16, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
            code: None,
        }
    }

    /// Sets the format-specific error code (e.g. `MANIFEST_UNKNOWN`).
    pub fn code(mut self, code: impl Into<String>) -> Rejection {
        self.code = Some(code.into());
        self
    }
}

impl DirectResponse {
    /// A direct response with a status and a body, without headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> DirectResponse {
        DirectResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> DirectResponse {
        self.headers.push(Header::new(name, value));
        self
    }
}

impl HostedRead {
    /// Reads the entry `key`, keeping its stored content type.
    pub fn new(key: impl Into<String>) -> HostedRead {
        HostedRead {
            key: key.into(),
            content_type: None,
            response_headers: Vec::new(),
        }
    }

    /// Overrides the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> HostedRead {
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HostedRead {
        self.response_headers.push(Header::new(name, value));
        self
    }
}

impl HostedWrite {
    /// Stores the request body under `key`, overwriting, unverified and
    /// uninspected.
    pub fn new(key: impl Into<String>) -> HostedWrite {
        HostedWrite {
            key: key.into(),
            content_type: None,
            expected_digest: None,
            refuse_overwrite: false,
            inspect_limit: None,
        }
    }

    /// Sets the content type stored with the entry.
    pub fn content_type(mut self, content_type: impl Into<String>) -> HostedWrite {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the digest the upload must have.
    pub fn expected_digest(mut self, digest: &Digest) -> HostedWrite {
        self.expected_digest = Some(digest.to_string());
        self
    }

    /// Sets whether an existing entry makes the upload fail with 409.
    pub fn refuse_overwrite(mut self, yes: bool) -> HostedWrite {
        self.refuse_overwrite = yes;
        self
    }

    /// Asks the core to buffer an upload of at most `limit` bytes and call
    /// `inspect-body` with it.
    pub fn inspect(mut self, limit: u32) -> HostedWrite {
        self.inspect_limit = Some(limit);
        self
    }
}

impl HostedList {
    /// Lists at most `limit` keys under `prefix`, from the start.
    pub fn new(prefix: impl Into<String>, limit: u32) -> HostedList {
        HostedList {
            prefix: prefix.into(),
            after: None,
            limit,
        }
    }

    /// Continues after the key `after` (pagination cursor).
    pub fn after(mut self, after: impl Into<String>) -> HostedList {
        self.after = Some(after.into());
        self
    }
}

impl Decision {
    /// Forwards `upstream` and caches the response by `plan`.
    pub fn forward(upstream: UpstreamRequest, plan: CachePlan) -> Decision {
        Decision::Forward(Forward { upstream, plan })
    }

    /// Refuses the request with `status` and a one-sentence `message`.
    pub fn reject(status: u16, message: impl Into<String>) -> Decision {
        Decision::Reject(Rejection::new(status, message))
    }

    /// Refuses the request with `status`, a format-specific error `code` and
    /// a one-sentence `message`.
    pub fn reject_with_code(
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Decision {
        Decision::Reject(Rejection::new(status, message).code(code))
    }

    /// Answers directly with `response`.
    pub fn respond(response: DirectResponse) -> Decision {
        Decision::Respond(response)
    }

    /// Asks the core to read at most `limit` bytes of the request body and
    /// call `plan` again with it.
    pub fn read_body(limit: u32) -> Decision {
        Decision::ReadBody(limit)
    }

    /// Serves the hosted entry described by `read`.
    pub fn hosted_read(read: HostedRead) -> Decision {
        Decision::Hosted(HostedOp::Read(read))
    }

    /// Stores the request body as described by `write`.
    pub fn hosted_write(write: HostedWrite) -> Decision {
        Decision::Hosted(HostedOp::Write(write))
    }

    /// Deletes the hosted entry `key`.
    pub fn hosted_delete(key: impl Into<String>) -> Decision {
        Decision::Hosted(HostedOp::Delete(key.into()))
    }

    /// Lists hosted entries as described by `list`.
    pub fn hosted_list(list: HostedList) -> Decision {
        Decision::Hosted(HostedOp::List(list))
    }
}

impl Default for PlanUpdate {
    /// An update that changes nothing.
    fn default() -> PlanUpdate {
        PlanUpdate {
            class: None,
            ttl_secs: None,
            content_type: None,
            expected_digest: None,
            add_headers: Vec::new(),
        }
    }
}

impl Default for BodyVerdict {
    /// Keep the body and the plan as they are.
    fn default() -> BodyVerdict {
        BodyVerdict {
            replace: None,
            references: Vec::new(),
            prefetch: Vec::new(),
            update: None,
            fail: None,
        }
    }
}

impl RemoteInfo {
    /// The value of the adapter option `name` from `[remote.options]`.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The adapter option `name` as a boolean: `Some(true)` for `true`,
    /// `Some(false)` for `false` (ASCII case-insensitive), `None` when absent
    /// or anything else.
    pub fn option_bool(&self, name: &str) -> Option<bool> {
        match self.option(name)? {
            v if v.eq_ignore_ascii_case("true") => Some(true),
            v if v.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// The adapter option `name` as a duration in whole seconds, in the
    /// grammar of the gateway's own config durations (see
    /// [`duration`](crate::duration)): `"90"`, `"30s"`, `"5m"`, `"1h30m"`,
    /// `"1d"`; a sub-second rest rounds up. `Ok(None)` when the option is
    /// absent; an [`OptionError`] (a one-sentence message naming the remote
    /// and the option; as a [`Rejection`] a 500) when it does not parse.
    ///
    /// ```
    /// # use artgate_sdk::prelude::*;
    /// fn ttl(remote: &RemoteInfo) -> Result<u64, Rejection> {
    ///     Ok(remote.option_secs("ttl")?.unwrap_or(60))
    /// }
    /// ```
    pub fn option_secs(&self, name: &str) -> Result<Option<u64>, OptionError> {
        let Some(value) = self.option(name) else {
            return Ok(None);
        };
        crate::duration::parse_secs(value)
            .map(Some)
            .map_err(|e| OptionError {
                remote: self.name.clone(),
                option: name.to_owned(),
                value: value.to_owned(),
                reason: e.reason,
            })
    }

    /// Whether the remote is a hosted repository.
    pub fn is_hosted(&self) -> bool {
        self.mode == RemoteMode::Hosted
    }

    /// Whether the remote is a pull-through cache.
    pub fn is_pull_through(&self) -> bool {
        self.mode == RemoteMode::PullThrough
    }

    /// The remote's compiled patterns (cached per instance).
    pub fn patterns(&self) -> Result<std::rc::Rc<Patterns>, PatternError> {
        Patterns::for_remote(self)
    }

    /// Classifies `path` by the remote's patterns.
    pub fn classify(&self, path: &str) -> Result<PathClass, PatternError> {
        Ok(self.patterns()?.classify(path))
    }

    /// Classifies `path` by the remote's patterns, or the 500 rejection an
    /// adapter answers with when a configured pattern does not compile
    /// (the full regex error is logged).
    pub fn classify_or_reject(&self, path: &str) -> Result<PathClass, Box<Decision>> {
        self.classify(path).map_err(|e| {
            crate::error!("remote {}: {e}", self.name);
            Box::new(Decision::reject(
                500,
                format!(
                    "Remote '{}' has an invalid pattern {:?} in its configuration.",
                    self.name, e.pattern
                ),
            ))
        })
    }

    /// The rejection a read-only mirror adapter answers with for a hosted
    /// remote or a method other than GET/HEAD; `None` when the request is
    /// a read on a pull-through remote. `what` names the mirror ("RPM
    /// mirror").
    pub fn refuse_unless_mirror_read(
        &self,
        req: &Request,
        adapter: &str,
        what: &str,
    ) -> Option<Decision> {
        if self.is_hosted() {
            return Some(Decision::reject(
                400,
                format!(
                    "Remote '{}' is hosted, but the {adapter} adapter only mirrors upstream repositories.",
                    self.name
                ),
            ));
        }
        if !req.is_read() {
            return Some(Decision::reject(
                400,
                format!(
                    "Remote '{}' is a pull-through {what} and does not accept {}; use PUT /cache/flush?remote={} to drop cached entries.",
                    self.name, req.method, self.name
                ),
            ));
        }
        None
    }
}

/// An adapter option of a remote (`[remote.options]`) whose value does not
/// parse. Its `Display` is a one-sentence message for the operator; as a
/// [`Rejection`] (`?` in a `plan` returning [`PlanResult`](crate::PlanResult))
/// it is a 500 with that message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    /// The remote's name.
    pub remote: String,
    /// The option's name.
    pub option: String,
    /// The value as configured.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Remote '{}' has an invalid option {} {:?} ({}); give a duration such as \"60\" (seconds), \"30s\", \"5m\" or \"1h30m\".",
            self.remote, self.option, self.value, self.reason
        )
    }
}

impl std::error::Error for OptionError {}

impl From<OptionError> for Rejection {
    /// A 500 with the error's message: the remote's configuration is wrong,
    /// not the client's request.
    fn from(e: OptionError) -> Rejection {
        Rejection::new(500, e.to_string())
    }
}

impl Request {
    /// The upstream target that mirrors the request: `/` + the path
    /// (percent-encoded where a URL path needs it, see
    /// [`http::encode_path`]) + `?query` when there is a non-empty query,
    /// passed on as the client sent it. Appended to each upstream base URL.
    ///
    /// ```
    /// # use artgate_sdk::prelude::*;
    /// # let mut req = Request::test("GET", "pool/a b.rpm");
    /// # req.query = Some("x=1".into());
    /// assert_eq!(req.upstream_target(), "/pool/a%20b.rpm?x=1");
    /// ```
    pub fn upstream_target(&self) -> String {
        let mut target = format!("/{}", http::encode_path(&self.path));
        if let Some(q) = self.query.as_deref().filter(|q| !q.is_empty()) {
            target.push('?');
            target.push_str(q);
        }
        target
    }

    /// The value of the first request header called `name`
    /// (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    /// The decoded value of the query parameter `name`, if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        http::query_param(self.query.as_deref(), name)
    }

    /// Whether the query has a parameter `name`, with or without a value.
    pub fn has_query_param(&self, name: &str) -> bool {
        http::has_query_param(self.query.as_deref(), name)
    }

    /// Whether the method is `GET` or `HEAD`.
    pub fn is_read(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// The path followed by `?query` when there is a non-empty query;
    /// `/` for the remote's root without a query (an empty path), so the
    /// result always works as a cache key: the host refuses empty keys, and
    /// no other path starts with `/`.
    pub fn path_and_query(&self) -> String {
        match self.query.as_deref() {
            Some(q) if !q.is_empty() => format!("{}?{q}", self.path),
            _ if self.path.is_empty() => "/".to_owned(),
            _ => self.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RouteKind;

    fn request(method: &str, path: &str, query: Option<&str>) -> Request {
        Request {
            id: "1".into(),
            kind: RouteKind::RemoteApi,
            method: method.into(),
            path: path.into(),
            query: query.map(Into::into),
            headers: vec![Header::new("X-Checksum-Sha256", "ab")],
            body: None,
            body_too_large: false,
        }
    }

    #[test]
    fn cache_plan_builder() {
        let d = Digest::from_hex(&"a".repeat(64)).unwrap();
        let p = CachePlan::mutable("k")
            .ttl(30)
            .validator(Validator::Conditional)
            .content_type("application/xml")
            .expected_digest(&d)
            .header("x-a", "1")
            .attachment("k.xml")
            .inspect(1024)
            .cache_not_found(true)
            .vary("Accept")
            .vary("accept");
        assert_eq!(p.key, "k");
        assert_eq!(p.class, CacheClass::Mutable);
        assert_eq!(p.ttl_secs, Some(30));
        assert_eq!(p.validator, Some(Validator::Conditional));
        assert_eq!(p.content_type.as_deref(), Some("application/xml"));
        assert_eq!(
            p.expected_digest,
            Some(format!("sha256:{}", "a".repeat(64)))
        );
        assert_eq!(
            p.response_headers,
            vec![
                Header::new("x-a", "1"),
                Header::new("content-disposition", "attachment; filename=\"k.xml\"")
            ]
        );
        assert_eq!(p.inspect_limit, Some(1024));
        assert!(p.cache_not_found);
        assert_eq!(p.vary, vec!["accept".to_string()]);
        assert!(CachePlan::immutable("k").vary.is_empty());
        assert_eq!(CachePlan::immutable("k").class, CacheClass::Immutable);
        assert_eq!(CachePlan::no_store("k").class, CacheClass::NoStore);
        assert_eq!(
            CachePlan::no_store("k").class(CacheClass::Mutable).class,
            CacheClass::Mutable
        );
    }

    #[test]
    fn decisions() {
        match forward_get("/a", CachePlan::immutable("a")) {
            Decision::Forward(f) => {
                assert_eq!(f.upstream.method, "GET");
                assert_eq!(f.upstream.target, "/a");
                assert!(f.upstream.use_credentials);
                assert!(!f.upstream.forward_body);
                assert_eq!(f.plan.key, "a");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Decision::reject(400, "Bad."),
            Decision::Reject(Rejection {
                status: 400,
                message: "Bad.".into(),
                code: None
            })
        );
        assert_eq!(
            Decision::reject_with_code(404, "NOT_FOUND", "Gone."),
            Decision::Reject(Rejection::new(404, "Gone.").code("NOT_FOUND"))
        );
        let u = UpstreamRequest::new("POST", "/x")
            .header("a", "b")
            .with_body(true);
        assert!(u.forward_body && !u.use_credentials && u.headers.len() == 1);
        assert_eq!(Decision::read_body(5), Decision::ReadBody(5));
        assert_eq!(
            Decision::hosted_delete("k"),
            Decision::Hosted(HostedOp::Delete("k".into()))
        );
        let r = DirectResponse::new(200, "ok").header("content-type", "text/plain");
        assert_eq!(r.body, b"ok");
        assert!(matches!(Decision::respond(r), Decision::Respond(_)));
    }

    #[test]
    fn hosted_builders() {
        let d = Digest::from_hex(&"b".repeat(64)).unwrap();
        let w = HostedWrite::new("k")
            .content_type("application/zip")
            .expected_digest(&d)
            .refuse_overwrite(true)
            .inspect(10);
        assert!(w.refuse_overwrite);
        assert_eq!(w.inspect_limit, Some(10));
        assert!(matches!(
            Decision::hosted_write(w),
            Decision::Hosted(HostedOp::Write(_))
        ));
        let l = HostedList::new("p/", 10).after("p/a");
        assert_eq!(l.after.as_deref(), Some("p/a"));
        let r = HostedRead::new("k")
            .content_type("text/plain")
            .header("a", "b");
        assert_eq!(r.response_headers.len(), 1);
        assert!(matches!(
            Decision::hosted_list(l),
            Decision::Hosted(HostedOp::List(_))
        ));
        assert!(matches!(
            Decision::hosted_read(r),
            Decision::Hosted(HostedOp::Read(_))
        ));
    }

    #[test]
    fn request_helpers() {
        let r = request("HEAD", "a/b.txt", Some("list&limit=5"));
        assert!(r.is_read());
        assert_eq!(r.header("x-checksum-sha256"), Some("ab"));
        assert!(r.has_query_param("list"));
        assert_eq!(r.query_param("limit").as_deref(), Some("5"));
        assert_eq!(r.path_and_query(), "a/b.txt?list&limit=5");
        assert_eq!(request("GET", "a", Some("")).path_and_query(), "a");
        assert_eq!(request("GET", "a", None).path_and_query(), "a");
        // The root directory: a key the host accepts (found by the fuzz
        // target `alpine_path`: the empty key made the host refuse the
        // plan, so listing a mirror's root was a 502).
        assert_eq!(request("GET", "", None).path_and_query(), "/");
        assert_eq!(request("GET", "", Some("")).path_and_query(), "/");
        assert_eq!(request("GET", "", Some("x=1")).path_and_query(), "?x=1");
        assert!(!request("PUT", "a", None).is_read());
    }

    #[test]
    fn expected_checksums_are_written_as_hex() {
        let p = CachePlan::immutable("k").expected_checksum("sha1", &[0xab, 0x01, 0x00]);
        assert_eq!(p.expected_digest.as_deref(), Some("sha1:ab0100"));
    }

    #[test]
    fn upstream_targets() {
        assert_eq!(
            request("GET", "a/b.txt", None).upstream_target(),
            "/a/b.txt"
        );
        assert_eq!(
            request("GET", "a/b.txt", Some("")).upstream_target(),
            "/a/b.txt"
        );
        assert_eq!(
            request("GET", "a b/ü#", Some("x=1&y=%2F")).upstream_target(),
            "/a%20b/%C3%BC%23?x=1&y=%2F"
        );
        assert_eq!(request("GET", "", None).upstream_target(), "/");
        assert_eq!(request("GET", "", Some("q")).upstream_target(), "/?q");
        assert_eq!(request("GET", "d/", None).upstream_target(), "/d/");
    }

    #[test]
    fn remote_options() {
        let remote = RemoteInfo {
            name: "r".into(),
            package: "generic".into(),
            mode: RemoteMode::Hosted,
            upstreams: vec![],
            mutable_ttl_secs: 1,
            negative_ttl_secs: 1,
            check_mutable_updates: false,
            immutable_patterns: vec![],
            mutable_patterns: vec!["^m/".into()],
            options: vec![
                ("overwrite".into(), "FALSE".into()),
                ("mode".into(), "x".into()),
            ],
            has_credentials: false,
        };
        assert!(remote.is_hosted() && !remote.is_pull_through());
        assert_eq!(remote.option("mode"), Some("x"));
        assert_eq!(remote.option("nope"), None);
        assert_eq!(remote.option_bool("overwrite"), Some(false));
        assert_eq!(remote.option_bool("mode"), None);
        let mut timed = remote.clone();
        timed.options = vec![
            ("a".into(), "90".into()),
            ("b".into(), "1h30m".into()),
            ("c".into(), "soon".into()),
        ];
        assert_eq!(timed.option_secs("a"), Ok(Some(90)));
        assert_eq!(timed.option_secs("b"), Ok(Some(5400)));
        assert_eq!(timed.option_secs("nope"), Ok(None));
        let e = timed.option_secs("c").unwrap_err();
        assert_eq!(
            (e.remote.as_str(), e.option.as_str(), e.value.as_str()),
            ("r", "c", "soon")
        );
        let message = e.to_string();
        assert!(
            message.starts_with("Remote 'r' has an invalid option c \"soon\" (")
                && message.ends_with("\"1h30m\"."),
            "{message}"
        );
        let r = Rejection::from(e);
        assert_eq!((r.status, r.message), (500, message));
        assert_eq!(remote.classify("m/x"), Ok(PathClass::Mutable));
        assert_eq!(remote.classify("x"), Ok(PathClass::Unmatched));
    }

    #[test]
    fn defaults_change_nothing() {
        let v = BodyVerdict::default();
        assert!(v.replace.is_none() && v.references.is_empty() && v.update.is_none());
        assert!(PlanUpdate::default().add_headers.is_empty());
        let info = AdapterInfo::new("g", "1.0.0", ["generic"]);
        assert_eq!(info.package_types, vec!["generic".to_string()]);
    }
}
