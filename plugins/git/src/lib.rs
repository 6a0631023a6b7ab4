//! The built-in `git` adapter: git smart HTTP through the gateway, with
//! cached packs.
//!
//! Clients clone `http://gateway/api/v1/remote/{remote}/{owner}/{repo}.git`;
//! the adapter forwards to `{upstream}/{owner}/{repo}.git/...` and decides
//! what the core may keep:
//!
//! | request | decision |
//! | --- | --- |
//! | `GET {repo}/info/refs?service=git-upload-pack` | mutable for the refs TTL, key `refs/{repo}/{git-protocol or v0}`, varies on `git-protocol` |
//! | `POST {repo}/git-upload-pack`, protocol-v2 `ls-refs` | answered by the adapter from the repository's one full ref listing ([`refs`]), read through the cache (`cache-send`) under `lsrefs/{repo}/{object format}`, mutable for the refs TTL |
//! | `POST {repo}/git-upload-pack`, v2 `fetch` or v0/v1 with wants and no haves | immutable, key `pack/{repo}/{sha256 of git-protocol + the normalised request}` |
//! | `POST {repo}/git-upload-pack`, anything else (haves, `want-ref`, `deepen-not`, other commands, unparseable, larger than 1 MiB) | streamed, not stored |
//! | `info/refs?service=git-receive-pack`, `POST {repo}/git-receive-pack` | 403: pushing is not supported |
//! | dumb-HTTP paths (`HEAD`, `objects/...`, `info/refs` without `service`) | 404 |
//!
//! The adapter sees an upload-pack request body (at most 1 MiB, gzip
//! removed by the core) and never pack data; the core forwards the client's
//! original bytes with `content-type`, `content-encoding`, `git-protocol`
//! and `accept`, and attaches the remote's credentials. The request
//! normalisation (sorted wants, shallows, deepen options, filter, pack
//! options; `agent=` and `session-id=` dropped) is in [`pktline`].
//!
//! All ref listings of a repository show one state: every `ls-refs`
//! shape is a filter of one stored listing, so they refresh together; a
//! v0/v1 `info/refs` fetched from the upstream expires that listing, and
//! a listing fetched from the upstream expires the v0/v1 advertisements.
//! Once a client has seen a state, later clients see it or a newer one.
//!
//! Remote options: `refs_ttl` (a duration in the gateway config's grammar,
//! see `artgate_sdk::duration`: `"60"` seconds, `"30s"`, `"5m"`, `"1h30m"`): how long
//! `info/refs` and `ls-refs` answers are served from the cache; default 60
//! seconds, or the remote's `mutable_ttl` when that is shorter.
//!
//! Refusals are `text/plain` bodies, which the git client prints to the
//! user (`remote: ...`).

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod pktline;
pub mod refs;
pub mod sha256;

use artgate_sdk::prelude::*;
use pktline::{Cacheability, UploadRequest, parse_request};

/// Largest upload-pack request body the adapter asks to see.
pub const BODY_LIMIT: u32 = 1024 * 1024;
/// Default refs TTL in seconds.
pub const DEFAULT_REFS_TTL: u64 = 60;
/// Content type of `info/refs` answers.
pub const ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";
/// Content type of `git-upload-pack` answers.
pub const RESULT: &str = "application/x-git-upload-pack-result";
/// Longest repository path accepted (keeps cache keys bounded).
const MAX_REPO_LEN: usize = 1024;
/// Largest full ref listing answered from the cache; a repository with
/// more refs gets its `ls-refs` requests streamed from the upstream.
pub const LISTING_LIMIT: u32 = 8 * 1024 * 1024;
/// Object formats whose listings a v0/v1 advertisement expires.
const OBJECT_FORMATS: [&str; 2] = ["sha1", "sha256"];
/// The `git-protocol` values of v0/v1 advertisements, as key parts.
const V0_PROTOCOLS: [&str; 2] = ["v0", "version=1"];

/// The git adapter.
pub struct Git;

impl Adapter for Git {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("git", env!("CARGO_PKG_VERSION"), ["git"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan_with(&WasmHost, &remote, &req)
    }

    fn on_response(
        _remote: RemoteInfo,
        req: Request,
        _sent: UpstreamRequest,
        resp: UpstreamResponse,
        _attempt: u32,
    ) -> AfterHeaders {
        // A v0/v1 advertisement from the upstream shows the refs as they
        // are now: the repository's stored v2 listing must not stay older.
        if resp.status == 200 {
            for key in listings_behind(&req) {
                WasmHost.cache_expire(&key);
            }
        }
        AfterHeaders::Accept
    }
}

/// The keys of the v2 listings that an upstream answer to `req` (a v0/v1
/// `info/refs`) shows a newer state than.
pub fn listings_behind(req: &Request) -> Vec<String> {
    let GitPath::InfoRefs(repo) = parse_path(&req.path) else {
        return Vec::new();
    };
    if is_v2(req) {
        return Vec::new();
    }
    OBJECT_FORMATS
        .iter()
        .map(|f| listing_key(repo, f))
        .collect()
}

/// Whether the client speaks protocol v2 (`git-protocol: version=2`).
fn is_v2(req: &Request) -> bool {
    req.header("git-protocol")
        .is_some_and(|p| p.split(':').any(|kv| kv == "version=2"))
}

/// The key of a repository's full v2 ref listing.
fn listing_key(repo: &str, object_format: &str) -> String {
    format!("lsrefs/{repo}/{}", key_part(object_format))
}

artgate_sdk::export_adapter!(Git, stateless);

/// What a remote-relative path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitPath<'a> {
    /// `{repo}/info/refs`.
    InfoRefs(&'a str),
    /// `{repo}/git-upload-pack`.
    UploadPack(&'a str),
    /// `{repo}/git-receive-pack`.
    ReceivePack(&'a str),
    /// Anything else (dumb HTTP, or not git at all).
    Other,
}

/// Splits a remote-relative path into the repository and the smart-HTTP
/// endpoint.
pub fn parse_path(path: &str) -> GitPath<'_> {
    let ends = |suffix: &str| {
        path.strip_suffix(suffix)
            .filter(|repo| !repo.is_empty() && !repo.ends_with('/'))
    };
    if let Some(repo) = ends("/info/refs") {
        GitPath::InfoRefs(repo)
    } else if let Some(repo) = ends("/git-upload-pack") {
        GitPath::UploadPack(repo)
    } else if let Some(repo) = ends("/git-receive-pack") {
        GitPath::ReceivePack(repo)
    } else {
        GitPath::Other
    }
}

/// A refusal as `text/plain`, which git prints to the user as
/// `remote: <message>`.
fn refuse(status: u16, message: impl Into<String>) -> Decision {
    let mut body = message.into();
    body.push('\n');
    Decision::respond(
        DirectResponse::new(status, body).header("content-type", "text/plain; charset=utf-8"),
    )
}

/// The message for pushes.
const NO_PUSH: &str =
    "Pushing through the gateway is not supported; push to the upstream repository directly.";

/// Plans one request with the component's host.
pub fn plan(remote: &RemoteInfo, req: &Request) -> Decision {
    plan_with(&WasmHost, remote, req)
}

/// Plans one request; `host` answers `ls-refs` listings.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if !remote.is_pull_through() {
        return refuse(
            400,
            format!(
                "Remote '{}' is hosted, but git remotes can only be pull-through caches.",
                remote.name
            ),
        );
    }
    let (repo, info_refs_path) = match parse_path(&req.path) {
        GitPath::ReceivePack(_) => return refuse(403, NO_PUSH),
        GitPath::Other => {
            return refuse(
                404,
                format!(
                    "/{} is not a git smart-HTTP endpoint; the gateway serves info/refs?service=git-upload-pack and git-upload-pack only (no dumb HTTP).",
                    req.path
                ),
            );
        }
        GitPath::InfoRefs(r) => (r, true),
        GitPath::UploadPack(r) => (r, false),
    };
    if repo.len() > MAX_REPO_LEN {
        return refuse(
            414,
            format!("The repository path is longer than {MAX_REPO_LEN} bytes."),
        );
    }
    let ttl = match refs_ttl(remote) {
        Ok(t) => t,
        Err(m) => {
            error!("remote {}: {m}", remote.name);
            return refuse(500, m);
        }
    };
    if info_refs_path {
        info_refs(req, repo, ttl)
    } else {
        upload_pack(host, req, repo, ttl)
    }
}

/// Plans `GET {repo}/info/refs?service=...`.
fn info_refs(req: &Request, repo: &str, ttl: u64) -> Decision {
    if !req.is_read() {
        return refuse(
            405,
            format!("{} is not supported on info/refs; use GET.", req.method),
        );
    }
    match req.query_param("service").as_deref() {
        Some("git-upload-pack") => {}
        Some("git-receive-pack") => return refuse(403, NO_PUSH),
        Some(other) => {
            return refuse(
                400,
                format!("Service {other:?} is unknown; git clients ask for git-upload-pack."),
            );
        }
        None => {
            return refuse(
                404,
                "info/refs without ?service= is dumb HTTP, which the gateway does not serve; use a git client that speaks smart HTTP.",
            );
        }
    }
    let protocol = req.header("git-protocol").unwrap_or("v0");
    let plan = CachePlan::mutable(format!("refs/{repo}/{}", key_part(protocol)))
        .ttl(ttl)
        .content_type(ADVERTISEMENT)
        .vary("git-protocol");
    Decision::forward(
        with_headers(
            UpstreamRequest::get(req.upstream_target()),
            req,
            &["git-protocol"],
        ),
        plan,
    )
}

/// Plans `POST {repo}/git-upload-pack`.
fn upload_pack(host: &dyn Host, req: &Request, repo: &str, ttl: u64) -> Decision {
    if req.method != "POST" {
        return refuse(
            405,
            format!(
                "{} is not supported on git-upload-pack; use POST.",
                req.method
            ),
        );
    }
    let cacheability = match (&req.body, req.body_too_large) {
        (None, false) => return Decision::read_body(BODY_LIMIT),
        (None, true) => Cacheability::Bypass {
            reason: "the request body is larger than the inspection limit or not decodable".into(),
        },
        (Some(body), _) => match parse_request(body) {
            Ok(UploadRequest::V2 {
                command,
                capabilities,
                arguments,
            }) if command == "ls-refs" && is_v2(req) => {
                match refs::parse(&capabilities, &arguments) {
                    Some(shape) => return ls_refs(host, req, repo, ttl, &shape),
                    None => Cacheability::Bypass {
                        reason: "the ls-refs request has options the shared listing cannot answer"
                            .into(),
                    },
                }
            }
            Ok(r) => pktline::classify(&r),
            Err(e) => Cacheability::Bypass {
                reason: format!("the request is not understood: {e}"),
            },
        },
    };
    // The protocol header selects how the upstream reads the body, so it
    // is part of what the answer depends on.
    let digest = |canonical: &str| {
        let protocol = req.header("git-protocol").unwrap_or("");
        sha256::hex(format!("git-protocol {protocol}\n{canonical}").as_bytes())
    };
    let plan = match cacheability {
        // An `ls-refs` without `git-protocol: version=2`: not the shared
        // listing's business, and a per-shape copy could fall behind it.
        Cacheability::RefList { .. } => {
            debug!("{}: ls-refs without protocol v2: not cached", req.path);
            CachePlan::no_store(format!("stream/{repo}"))
        }
        Cacheability::Pack { canonical } => {
            CachePlan::immutable(format!("pack/{repo}/{}", digest(&canonical)))
        }
        Cacheability::Bypass { reason } => {
            debug!("{} {}: not cached: {reason}", req.method, req.path);
            CachePlan::no_store(format!("stream/{repo}"))
        }
    };
    forward_upload_pack(req, plan)
}

/// Answers a protocol-v2 `ls-refs` from the repository's full listing,
/// read through the cache; when that fails (no stored copy and the
/// upstream failing, or a listing over [`LISTING_LIMIT`]) the request is
/// streamed from the upstream as it is, uncached.
fn ls_refs(host: &dyn Host, req: &Request, repo: &str, ttl: u64, shape: &refs::LsRefs) -> Decision {
    let key = listing_key(repo, &shape.object_format);
    let mut headers = vec![
        Header::new("content-type", "application/x-git-upload-pack-request"),
        Header::new("accept", RESULT),
    ];
    if let Some(p) = req.header("git-protocol") {
        headers.push(Header::new("git-protocol", p));
    }
    let full = OutgoingRequest {
        method: "POST".into(),
        url: req.upstream_target(),
        headers,
        body: refs::full_request(shape),
        use_credentials: true,
    };
    let plan = CachePlan::mutable(key.as_str())
        .ttl(ttl)
        .content_type(RESULT);
    let listing = match host.cache_send(&full, &plan, LISTING_LIMIT) {
        Ok(r) if r.status == 200 => r,
        Ok(r) => {
            return ls_refs_uncached(req, repo, &format!("the upstream answered {}", r.status));
        }
        Err(e) => return ls_refs_uncached(req, repo, &e),
    };
    let source = listing
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-artifact-source"))
        .map(|h| h.value.clone())
        .unwrap_or_default();
    if source == "remote" {
        // A newer state than the v0/v1 advertisements may hold.
        for p in V0_PROTOCOLS {
            host.cache_expire(&format!("refs/{repo}/{p}"));
        }
    }
    let body = refs::filter(&listing.body, shape).unwrap_or(listing.body);
    let mut resp = DirectResponse::new(200, body)
        .header("content-type", RESULT)
        .header("cache-control", "no-cache");
    if !source.is_empty() {
        resp = resp.header("x-artifact-source", source);
    }
    Decision::respond(resp)
}

/// An `ls-refs` streamed from the upstream, not stored.
fn ls_refs_uncached(req: &Request, repo: &str, why: &str) -> Decision {
    warn!("{}: ls-refs not answered from the cache: {why}", req.path);
    forward_upload_pack(req, CachePlan::no_store(format!("stream/{repo}")))
}

/// Forward an `upload-pack` POST as the client sent it (body, protocol and
/// encoding headers, the remote's credentials) under `plan`.
fn forward_upload_pack(req: &Request, plan: CachePlan) -> Decision {
    let upstream = UpstreamRequest::new("POST", req.upstream_target())
        .credentials(true)
        .with_body(true);
    Decision::forward(
        with_headers(
            upstream,
            req,
            &["content-type", "content-encoding", "git-protocol", "accept"],
        ),
        plan.content_type(RESULT),
    )
}

/// Copies the client's `names` headers (when present) to `up`.
fn with_headers(mut up: UpstreamRequest, req: &Request, names: &[&str]) -> UpstreamRequest {
    for name in names {
        if let Some(v) = req.header(name) {
            up = up.header(*name, v);
        }
    }
    up
}

/// A header value as a key segment: short printable values as they are,
/// anything else hashed.
fn key_part(value: &str) -> String {
    if value.len() <= 64 && value.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        value.to_owned()
    } else {
        format!("sha256-{}", sha256::hex(value.as_bytes()))
    }
}

/// The refs TTL in seconds: the `refs_ttl` option (a duration, see
/// `artgate_sdk::duration`), else 60 s capped by the remote's `mutable_ttl`.
pub fn refs_ttl(remote: &RemoteInfo) -> Result<u64, String> {
    match remote.option_secs("refs_ttl") {
        Ok(Some(secs)) => Ok(secs),
        Ok(None) => Ok(DEFAULT_REFS_TTL.min(remote.mutable_ttl_secs)),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
