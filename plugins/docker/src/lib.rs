//! The built-in `docker` adapter: a pull-through cache of an OCI / Docker
//! registry (distribution API v2), for skopeo, podman, docker, containerd
//! and crane.
//!
//! Clients pull `gateway:port/{remote}/{name}:{tag}`; the core routes
//! `/v2/{remote}/{path}` here (route kind `registry`) and answers the
//! `GET /v2/` ping itself. Everything else is refused with 400
//! `UNSUPPORTED` (writes: use `PUT /cache/flush`).
//!
//! | request (`GET`/`HEAD`) | upstream | cache key | class |
//! | --- | --- | --- | --- |
//! | `{name}/manifests/{tag}` | `GET /v2/{name}/manifests/{tag}`, the client's `Accept` | `manifests/{name}/tags/{tag}?accept={types}` | mutable (remote TTL), revalidated by `HEAD` + `docker-content-digest` |
//! | `{name}/manifests/sha256:…` | `GET /v2/{name}/manifests/{digest}`, the client's `Accept` | `manifests/{name}/{digest}` | immutable, verified |
//! | `{name}/blobs/sha256:…` | `GET /v2/{name}/blobs/{digest}` | `blobs/{digest}` | immutable, verified |
//! | `{name}/tags/list[?n=&last=]` | `GET /v2/{name}/tags/list[?n=&last=]` | `tags/{name}/list[?n=&last=]` | mutable, option `tags_ttl` |
//!
//! Names, tags and digests are checked against the OCI grammar first
//! (400 `NAME_INVALID`, `TAG_INVALID`, `DIGEST_INVALID`; only `sha256`
//! digests are supported).
//!
//! **Content negotiation.** `{types}` is the client's accept set, sorted
//! and deduplicated (or `any` without `Accept`), so different accept sets
//! never share an entry. A manifest whose media type the client did not
//! accept is refused with 404 `MANIFEST_UNKNOWN`, as the distribution
//! registry does; the media type of every manifest seen is remembered by
//! digest for a day (key-value store: per remote, and kept by the host only
//! once the manifest was verified), so a cached manifest fetched by digest
//! is refused the same way to a client that does not accept its type.
//! Manifests are buffered (at most 4 MiB; larger ones fail with 502
//! `MANIFEST_INVALID`), served with the upstream's `content-type` (or the
//! body's `mediaType` when the upstream sent no manifest type) and
//! `docker-content-digest`; a tag's manifest is verified against the
//! upstream's `docker-content-digest`.
//!
//! **Upstream errors.** 404 → 404 `MANIFEST_UNKNOWN` / `BLOB_UNKNOWN` /
//! `NAME_UNKNOWN`; 401 that no token fixes and 403 → 403 `DENIED`; 429
//! and 5xx are left to the core (stale copy when there is one); other
//! statuses → 502.
//!
//! **Authentication.** The first request carries the remote's configured
//! credentials (the core sends them only to the remote's own hosts), which
//! covers anonymous and Basic registries. A 401 with `WWW-Authenticate:
//! Bearer realm=…,service=…,scope=…` starts the token dance: `GET
//! realm?service=…&scope=…` through `http-send` (with the configured
//! credentials, when there are any; the host lets it reach only a realm on
//! the upstream's origin or in the remote's `auth_realms`, else 502
//! `UNAVAILABLE`), then the request is retried with
//! `Authorization: Bearer <token>`. Tokens are kept in the key-value store
//! per remote, upstream and scope until shortly before `expires_in` and
//! used up front by later requests. Tokens and credentials are never
//! logged.
//!
//! **Options** (`[remote.options]`):
//!
//! | option | default | meaning |
//! | --- | --- | --- |
//! | `library_prefix` | `true` when an upstream is Docker Hub (`registry-1.docker.io`), else `false` | prepend `library/` to single-segment names (`alpine` → `library/alpine`), upstream and in keys |
//! | `tags_ttl` | `60` | how long a `tags/list` answer stays fresh: a duration in the gateway config's grammar (`artgate_sdk::duration`): seconds, or `30s`, `5m`, `1h30m`, `1d` |

pub mod accept;
pub mod auth;
// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod route;

use accept::DEFAULT_ACCEPT;
use artgate_sdk::prelude::*;
use route::{Reference, RouteError, Target};

/// Largest manifest the adapter accepts from an upstream (4 MiB, the limit
/// containerd and the distribution registry apply).
pub const MAX_MANIFEST_BYTES: u32 = 4 * 1024 * 1024;

/// Default freshness of `tags/list` answers, in seconds.
pub const DEFAULT_TAGS_TTL: u64 = 60;

/// How long the media type of a manifest digest is remembered, in seconds
/// (a day). The host keeps it per remote and only once the manifest it
/// came with was verified; the expiry bounds how long a wrong label from
/// the remote's own upstream can last.
pub const MEDIA_TYPE_TTL: u64 = 24 * 3600;

/// Response header naming a manifest's or blob's digest.
pub const DIGEST_HEADER: &str = "docker-content-digest";

/// Upstream hosts that are Docker Hub (where `library/` is implied).
const DOCKER_HUB_HOSTS: [&str; 3] = ["registry-1.docker.io", "index.docker.io", "docker.io"];

/// The docker adapter.
pub struct Docker;

impl Adapter for Docker {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("docker", env!("CARGO_PKG_VERSION"), ["docker"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan_with(&WasmHost, &remote, &req)
    }

    fn on_response(
        remote: RemoteInfo,
        req: Request,
        sent: UpstreamRequest,
        resp: UpstreamResponse,
        attempt: u32,
    ) -> AfterHeaders {
        on_response_with(&WasmHost, &remote, &req, &sent, &resp, attempt)
    }

    fn inspect_body(
        _remote: RemoteInfo,
        _req: Request,
        resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        inspect_manifest(&resp, &body)
    }
}

artgate_sdk::export_adapter!(Docker, stateless);

/// The adapter options of a remote, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Prepend `library/` to single-segment names.
    pub library_prefix: bool,
    /// Freshness of `tags/list`, in seconds.
    pub tags_ttl: u64,
}

impl Options {
    /// Reads `[remote.options]`; an invalid value is a one-sentence error.
    pub fn of(remote: &RemoteInfo) -> Result<Options, String> {
        let library_prefix = match remote.option("library_prefix") {
            None => remote.upstreams.iter().any(|u| is_docker_hub(u)),
            Some(_) => remote.option_bool("library_prefix").ok_or_else(|| {
                format!(
                    "Remote '{}' has an invalid option library_prefix; use \"true\" or \"false\".",
                    remote.name
                )
            })?,
        };
        let tags_ttl = remote
            .option_secs("tags_ttl")
            .map_err(|e| e.to_string())?
            .unwrap_or(DEFAULT_TAGS_TTL);
        Ok(Options {
            library_prefix,
            tags_ttl,
        })
    }

    /// The repository name used upstream and in cache keys.
    pub fn upstream_name(&self, name: &str) -> String {
        if self.library_prefix && !name.contains('/') {
            format!("library/{name}")
        } else {
            name.to_owned()
        }
    }
}

/// Whether an upstream base URL is Docker Hub's registry.
fn is_docker_hub(url: &str) -> bool {
    let origin = auth::origin(url);
    let host_port = origin.split_once("://").map_or(origin, |(_, h)| h);
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    DOCKER_HUB_HOSTS
        .iter()
        .any(|d| host.eq_ignore_ascii_case(d))
}

/// FNV-1a, 64 bit: short stable names for long key parts.
pub fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The key-value key remembering the media type of a manifest digest.
fn media_key(digest: &str) -> String {
    format!("media/{digest}")
}

fn reject(e: RouteError) -> Decision {
    Decision::reject_with_code(e.status, e.code, e.message)
}

/// Plans a request (see the crate docs).
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if req.kind != RouteKind::Registry {
        return Decision::reject_with_code(
            400,
            "UNSUPPORTED",
            format!(
                "Remote '{}' is a docker registry; use /v2/{}/{{name}}/manifests/{{reference}} and related registry paths.",
                remote.name, remote.name
            ),
        );
    }
    if remote.is_hosted() {
        return Decision::reject_with_code(
            400,
            "UNSUPPORTED",
            format!(
                "Remote '{}' is hosted, but the docker adapter only serves pull-through registries.",
                remote.name
            ),
        );
    }
    if !req.is_read() {
        return Decision::reject_with_code(
            400,
            "UNSUPPORTED",
            format!(
                "Remote '{}' is a pull-through registry cache and does not accept {}; use PUT /cache/flush?remote={} to drop cached entries.",
                remote.name, req.method, remote.name
            ),
        );
    }
    let opts = match Options::of(remote) {
        Ok(o) => o,
        Err(m) => {
            error!("{m}");
            return Decision::reject_with_code(500, "UNKNOWN", m);
        }
    };
    let target = match route::parse(&req.path) {
        Ok(t) => t,
        Err(e) => return reject(e),
    };
    let name = opts.upstream_name(target.name());
    let accepted = accept::canonical(http::header_values(&req.headers, "accept"));
    let (upstream, plan) = match &target {
        Target::Manifest {
            reference: Reference::Tag(tag),
            ..
        } => {
            let key = format!(
                "manifests/{name}/tags/{tag}?accept={}",
                accept::key_part(&accepted)
            );
            let plan = CachePlan::mutable(key)
                .validator(Validator::HeadCompare(DIGEST_HEADER.into()))
                .vary("accept")
                .inspect(MAX_MANIFEST_BYTES);
            let up = UpstreamRequest::new("GET", format!("/v2/{name}/manifests/{tag}"))
                .header("accept", accept_header(&accepted));
            (up, plan)
        }
        Target::Manifest {
            reference: Reference::Digest(d),
            ..
        } => {
            let ds = d.to_string();
            let known = host
                .kv_get(&media_key(&ds))
                .and_then(|ct| String::from_utf8(ct).ok())
                .filter(|ct| accept::is_manifest_type(ct));
            if let Some(ct) = &known
                && !accepted.is_empty()
                && !accept::accepts(&accepted, ct)
            {
                return Decision::reject_with_code(
                    404,
                    "MANIFEST_UNKNOWN",
                    format!(
                        "Manifest {ds} is a {ct}, which the request's Accept header does not allow."
                    ),
                );
            }
            let mut plan = CachePlan::immutable(format!("manifests/{name}/{ds}"))
                .expected_digest(d)
                .header(DIGEST_HEADER, ds.as_str())
                .vary("accept")
                .inspect(MAX_MANIFEST_BYTES);
            // Known from an earlier fetch (by tag, say): the core may serve
            // the stored copy without asking the upstream, and then needs
            // the type from here. A fetch replaces it with the upstream's.
            if let Some(ct) = known {
                plan = plan.content_type(ct);
            }
            let up = UpstreamRequest::new("GET", format!("/v2/{name}/manifests/{ds}"))
                .header("accept", accept_header(&accepted));
            (up, plan)
        }
        Target::Blob { digest, .. } => {
            let ds = digest.to_string();
            let plan = CachePlan::immutable(format!("blobs/{ds}"))
                .expected_digest(digest)
                .content_type(media::OCTET_STREAM)
                .header(DIGEST_HEADER, ds.as_str());
            let up = UpstreamRequest::new("GET", format!("/v2/{name}/blobs/{ds}"));
            (up, plan)
        }
        Target::Tags { .. } => {
            let query = tags_query(req);
            let plan = CachePlan::mutable(format!("tags/{name}/list{query}"))
                .ttl(opts.tags_ttl)
                .validator(Validator::Refetch)
                .content_type("application/json");
            let up = UpstreamRequest::new("GET", format!("/v2/{name}/tags/list{query}"));
            (up, plan)
        }
    };
    Decision::forward(with_auth(host, remote, &name, upstream), plan)
}

/// The `Accept` header sent upstream: the client's set, or every manifest
/// and index type when it named none.
fn accept_header(accepted: &[String]) -> String {
    if accepted.is_empty() {
        DEFAULT_ACCEPT.join(", ")
    } else {
        accepted.join(", ")
    }
}

/// `?n=…&last=…` from the client's query (other parameters dropped), in a
/// fixed order; empty when neither is given.
fn tags_query(req: &Request) -> String {
    let mut q = String::new();
    for p in ["n", "last"] {
        if let Some(v) = req.query_param(p).filter(|v| !v.is_empty()) {
            q.push(if q.is_empty() { '?' } else { '&' });
            q.push_str(p);
            q.push('=');
            q.push_str(&http::encode_component(&v));
        }
    }
    q
}

/// Attaches a cached token for the repository's pull scope, or else the
/// remote's configured credentials.
fn with_auth(
    host: &dyn Host,
    remote: &RemoteInfo,
    name: &str,
    up: UpstreamRequest,
) -> UpstreamRequest {
    let key = auth::token_key(&remote.name, &remote.upstreams, &auth::pull_scope(name));
    match host
        .kv_get(&key)
        .and_then(|t| String::from_utf8(t).ok())
        .filter(|t| !t.is_empty())
    {
        Some(token) => up
            .header("authorization", format!("Bearer {token}"))
            .credentials(false),
        None => up.credentials(true),
    }
}

/// The request `sent` again, with `token` instead of any other
/// authorization.
fn retry_with_token(sent: &UpstreamRequest, token: &str) -> UpstreamRequest {
    let mut next = sent.clone();
    next.headers
        .retain(|h| !h.name.eq_ignore_ascii_case("authorization"));
    next.headers
        .push(Header::new("authorization", format!("Bearer {token}")));
    next.use_credentials = false;
    next
}

fn fail(status: u16, code: &str, message: String) -> AfterHeaders {
    AfterHeaders::Fail(Rejection::new(status, message).code(code))
}

/// What a target is called in messages.
fn describe_target(target: &Target, name: &str) -> String {
    match target {
        Target::Manifest {
            reference: Reference::Tag(t),
            ..
        } => format!("manifest {name}:{t}"),
        Target::Manifest {
            reference: Reference::Digest(d),
            ..
        } => format!("manifest {name}@{d}"),
        Target::Blob { digest, .. } => format!("blob {digest} of {name}"),
        Target::Tags { .. } => format!("the tag list of {name}"),
    }
}

/// Decides what to do with the upstream's response headers (see the crate
/// docs).
pub fn on_response_with(
    host: &dyn Host,
    remote: &RemoteInfo,
    req: &Request,
    sent: &UpstreamRequest,
    resp: &UpstreamResponse,
    attempt: u32,
) -> AfterHeaders {
    let (Ok(opts), Ok(target)) = (Options::of(remote), route::parse(&req.path)) else {
        // `plan` refused these already; nothing to add.
        return AfterHeaders::Accept;
    };
    let name = opts.upstream_name(target.name());
    let what = describe_target(&target, &name);
    match resp.status {
        200 => ok_response(host, remote, req, &target, &name, resp),
        401 => token_dance(host, remote, sent, resp, attempt, &name, &what),
        403 => fail(
            403,
            "DENIED",
            format!("The upstream registry denied access to {what}."),
        ),
        404 | 410 => {
            let code = match target {
                Target::Manifest { .. } => "MANIFEST_UNKNOWN",
                Target::Blob { .. } => "BLOB_UNKNOWN",
                Target::Tags { .. } => "NAME_UNKNOWN",
            };
            fail(404, code, format!("The upstream registry has no {what}."))
        }
        // Redirects the policy refused never get here; 304 answers a
        // revalidation; 429 and 5xx: the core serves a stale copy when it
        // has one.
        s if s < 400 || s == 429 || s >= 500 => AfterHeaders::Accept,
        s => fail(
            502,
            "UNAVAILABLE",
            format!("The upstream registry answered {s} for {what}."),
        ),
    }
}

/// A 200: verify and label manifests, rewrite tag-list pagination links.
fn ok_response(
    host: &dyn Host,
    remote: &RemoteInfo,
    req: &Request,
    target: &Target,
    name: &str,
    resp: &UpstreamResponse,
) -> AfterHeaders {
    match target {
        Target::Manifest { reference, .. } => {
            let ct = http::header(&resp.headers, "content-type").unwrap_or("");
            if let Some(len) = http::header(&resp.headers, "content-length")
                .and_then(|l| l.trim().parse::<u64>().ok())
                .filter(|&l| l > u64::from(MAX_MANIFEST_BYTES))
            {
                return fail(
                    502,
                    "MANIFEST_INVALID",
                    format!(
                        "The upstream's manifest for {name} is {len} bytes; manifests larger than 4 MiB are refused."
                    ),
                );
            }
            let accepted = accept::canonical(http::header_values(&req.headers, "accept"));
            let known = accept::is_manifest_type(ct);
            if known && !accepted.is_empty() && !accept::accepts(&accepted, ct) {
                return fail(
                    404,
                    "MANIFEST_UNKNOWN",
                    format!(
                        "The upstream has this manifest of {name} only as {}, which the request's Accept header does not allow.",
                        accept::bare(ct)
                    ),
                );
            }
            let mut u = PlanUpdate::default();
            if known {
                u.content_type = Some(ct.to_owned());
            }
            let digest = match reference {
                Reference::Digest(d) => Some(d.to_string()),
                Reference::Tag(_) => {
                    let d = http::header(&resp.headers, DIGEST_HEADER).map(str::trim);
                    if let Some(d) = d {
                        if Digest::is_valid(d) {
                            u.expected_digest = Some(d.to_owned());
                        }
                        u.add_headers.push(Header::new(DIGEST_HEADER, d));
                    }
                    d.filter(|d| Digest::is_valid(d)).map(str::to_owned)
                }
            };
            if let (Some(d), true) = (digest, known) {
                host.kv_set(&media_key(&d), accept::bare(ct).as_bytes(), MEDIA_TYPE_TTL);
            }
            AfterHeaders::Update(u)
        }
        Target::Tags { name: client_name } => {
            match http::header(&resp.headers, "link")
                .and_then(|l| rewrite_link(l, &remote.name, client_name))
            {
                Some(link) => {
                    let mut u = PlanUpdate::default();
                    u.add_headers.push(Header::new("link", link));
                    AfterHeaders::Update(u)
                }
                None => AfterHeaders::Accept,
            }
        }
        Target::Blob { .. } => AfterHeaders::Accept,
    }
}

/// Rewrites a tag-list `Link: </v2/{name}/tags/list?…>; rel="next"` so the
/// next page is fetched through the gateway.
pub fn rewrite_link(link: &str, remote: &str, client_name: &str) -> Option<String> {
    let start = link.find('<')?;
    let end = start + link[start..].find('>')?;
    let url = &link[start + 1..end];
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut out = format!("</v2/{remote}/{client_name}/tags/list");
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out.push('>');
    out.push_str(&link[end + 1..]);
    Some(out)
}

/// A 401: fetch a token from the realm the upstream named and retry; or
/// refuse when that is not possible.
fn token_dance(
    host: &dyn Host,
    remote: &RemoteInfo,
    sent: &UpstreamRequest,
    resp: &UpstreamResponse,
    attempt: u32,
    name: &str,
    what: &str,
) -> AfterHeaders {
    let denied = |m: String| fail(403, "DENIED", m);
    let challenge = auth::bearer_challenge(http::header_values(&resp.headers, "www-authenticate"));
    // A fresh token that is refused for lack of scope will not get better
    // (Docker Hub answers so for repositories that do not exist).
    let hopeless = attempt >= 2
        || (attempt >= 1
            && challenge
                .as_ref()
                .is_some_and(|c| c.param("error") == Some("insufficient_scope")));
    if hopeless {
        return denied(format!(
            "The upstream registry refused {what} even with a fresh token; the repository may not exist or may need credentials remote '{}' does not have.",
            remote.name
        ));
    }
    let Some(ch) = challenge else {
        return denied(if remote.has_credentials {
            format!(
                "The upstream registry rejected the credentials of remote '{}' for {what}.",
                remote.name
            )
        } else {
            format!(
                "The upstream registry needs credentials for {what}; configure username and password on remote '{}'.",
                remote.name
            )
        });
    };
    let scope = auth::pull_scope(name);
    let Some(url) = auth::token_url(&ch, &scope) else {
        return fail(
            502,
            "UNAVAILABLE",
            "The upstream registry named an auth realm that is not an http(s) URL.".into(),
        );
    };
    let origin = auth::origin(&url).to_owned();
    let req = OutgoingRequest {
        method: "GET".into(),
        url,
        headers: vec![Header::new("accept", "application/json")],
        body: Vec::new(),
        use_credentials: remote.has_credentials,
    };
    let answer = match host.http_send(&req) {
        Ok(a) => a,
        Err(e) => {
            warn!("token request to {origin} failed: {e}");
            return fail(
                502,
                "UNAVAILABLE",
                format!("The upstream's auth service at {origin} could not be reached: {e}."),
            );
        }
    };
    match answer.status {
        200 => {}
        401 | 403 => {
            return denied(format!(
                "The upstream's auth service at {origin} refused {} (HTTP {}).",
                if remote.has_credentials {
                    format!("the credentials of remote '{}'", remote.name)
                } else {
                    "anonymous access".to_owned()
                },
                answer.status
            ));
        }
        s => {
            return fail(
                502,
                "UNAVAILABLE",
                format!("The upstream's auth service at {origin} answered {s}."),
            );
        }
    }
    let Some(token) = auth::parse_token(&answer.body) else {
        return fail(
            502,
            "UNAVAILABLE",
            format!("The upstream's auth service at {origin} answered without a usable token."),
        );
    };
    let key = auth::token_key(&remote.name, &remote.upstreams, &scope);
    host.kv_set(
        &key,
        token.token.as_bytes(),
        auth::cache_ttl(token.expires_in),
    );
    debug!(
        "obtained a registry token for {scope} from {origin}, valid for {}s",
        token.expires_in
    );
    AfterHeaders::Retry(retry_with_token(sent, &token.token))
}

/// For a manifest whose upstream sent no manifest media type: take the
/// body's `mediaType`. Anything else is kept as it is.
pub fn inspect_manifest(resp: &UpstreamResponse, body: &[u8]) -> BodyVerdict {
    let ct = http::header(&resp.headers, "content-type").unwrap_or("");
    if accept::is_manifest_type(ct) {
        return BodyVerdict::default();
    }
    let media_type = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .filter(|m| accept::is_manifest_type(m));
    match media_type {
        Some(m) => BodyVerdict {
            update: Some(PlanUpdate {
                content_type: Some(m),
                ..PlanUpdate::default()
            }),
            ..BodyVerdict::default()
        },
        None => BodyVerdict::default(),
    }
}

#[cfg(test)]
mod tests;
