//! The built-in `npm` adapter: a caching mirror of an npm registry.
//!
//! Package type `npm`. A pull-through remote in front of an npm registry
//! (`https://registry.npmjs.org`, Verdaccio, Artifactory, Nexus) is itself
//! a registry; npm reaches it with
//!
//! ```ini
//! ; .npmrc
//! registry=http://gateway:8080/api/v1/remote/npm/
//! ```
//!
//! | path | answer |
//! | --- | --- |
//! | `{name}`, `@{scope}/{name}` (npm sends `@{scope}%2f{name}`) | the packument, mutable (the remote's `mutable_ttl`), a 404 cached for `negative_ttl`; the abbreviated form (`Accept: application/vnd.npm.install-v1+json`, what `npm install` asks for) and the full one (`npm view`) are separate entries; every `dist.tarball` is rewritten to point at the gateway, the rest kept byte for byte |
//! | `{name}/-/{file}` | a tarball at its conventional place on an upstream (`{upstream}/{name}/-/{file}`, failover over the upstreams), immutable, verified against the packument's `dist.integrity` (sha512) or `dist.shasum` and never stored when it does not match |
//! | `{name}/-/u/{scheme}/{host}/{path}` | a tarball a packument placed elsewhere; its origin must be one of the remote's upstreams (502 otherwise) |
//! | `-/ping`, `-/v1/search`, `-/npm/v1/keys`, `-/npm/v1/attestations/…` | passed to the upstream, never stored (`npm audit signatures` checks attestations against the registry's keys) |
//! | `-/npm/v1/security/…` (`npm audit`, `npm install`'s audit) | passed to the upstream with the request body, never stored |
//! | any other `-/…` (login, `whoami`, tokens, dist-tags) | 501: a mirror takes no logins or changes |
//!
//! **Tarball URLs name the gateway.** npm follows `dist.tarball` and
//! writes it into `package-lock.json`, so it must be absolute and name the
//! gateway as clients reach it: `gateway-url` (`server.public_url`, or the
//! request's scheme and `Host`). A packument entry is therefore kept per
//! gateway URL, and its remembered decision varies on `Host`.
//!
//! **Tarballs are verified.** When a packument is rewritten, every
//! version's checksum goes into the adapter's key-value store (one map per
//! package, [`kvmap`], held back until the packument is stored); the
//! tarball's plan names it, so the core checks the bytes as they stream.
//! A tarball asked for before any packument listing it was read (a
//! lockfile on a fresh gateway) makes the adapter read the abbreviated
//! packument through the cache (an entry of its own, not rewritten) and
//! look it up there, once more after expiring it when the version is
//! missing (published since; at most once a minute per package); a
//! tarball no packument lists is a 404.
//!
//! **Limits.** A packument is rewritten up to [`INSPECT_LIMIT`] bytes
//! (larger is a 502 saying so). The adapter holds the packument and its
//! rewrite at once, so its `memory_limit` (default 64 MiB) must be a bit
//! over twice the largest packument served: raise both for registries
//! with larger ones (`[plugins.adapter.npm] memory_limit`).
//!
//! The adapter never looks at an upstream answer's head
//! (`accepts_every_response`) and keeps no state beyond the key-value
//! store. Publishing to a pull-through remote is refused with 405.
//!
//! **Hosted.** On a hosted remote the adapter is a registry of its own:
//! `npm publish` (the tarball taken out of the request by the core, never
//! through the adapter), `npm install`, `npm view`, `npm dist-tag` and
//! `npm unpublish`; see [`hosted`]. A virtual remote over a hosted and a
//! pull-through npm remote (hosted first, `write_to` the hosted one) is
//! the usual npm group: private packages from the hosted one, the rest
//! from upstream, one registry URL.

mod hosted;
mod packument;

use artgate_sdk::kvmap;
use artgate_sdk::prelude::*;
pub use packument::Checksum;

/// Largest packument rewritten (and read for a tarball's checksum).
pub const INSPECT_LIMIT: u32 = 24 << 20;

/// What npm's `Accept` asks for the abbreviated packument with.
const CORGI: &str = "application/vnd.npm.install-v1+json";

/// The npm adapter.
pub struct Npm;

impl Adapter for Npm {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("npm", env!("CARGO_PKG_VERSION"), ["npm"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan_with(&WasmHost, &remote, &req)
    }

    fn inspect_body(
        remote: RemoteInfo,
        req: Request,
        resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        inspect_with(&WasmHost, &remote, &req, &resp, body)
    }
}

artgate_sdk::export_adapter!(Npm, stateless, accepts_every_response);

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask<'a> {
    /// A packument.
    Packument(Name<'a>),
    /// A tarball at its conventional place: `{name}/-/{file}`.
    Tarball(Name<'a>, &'a str),
    /// A tarball elsewhere: `{name}/-/u/{scheme}/{host}/{path}`.
    Elsewhere(Name<'a>, String),
    /// A registry endpoint under `-/`.
    Endpoint(&'a str),
}

/// A package name: `name` or `@scope/name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Name<'a>(&'a str);

impl Name<'_> {
    /// As the registry API spells it in a packument's URL: the scope's
    /// slash encoded (`@scope%2fname`), as npm sends it.
    fn encoded(&self) -> String {
        http::encode_path(self.0).replacen('/', "%2f", 1)
    }
}

/// Whether `part` is a name or scope part npm accepts: URL-safe, not
/// starting with `.` or `_`.
fn is_name_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 214
        && !part.starts_with(['.', '_'])
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!*'()".contains(&b))
}

/// Splits a path into what it asks for; `None` for no npm path.
fn parse(path: &str) -> Option<Ask<'_>> {
    if let Some(rest) = path.strip_prefix("-/") {
        return Some(Ask::Endpoint(rest));
    }
    let segs: Vec<&str> = path.split('/').collect();
    let name_len = match segs.first()? {
        s if s.starts_with('@') => {
            if !is_name_part(&s[1..]) || !is_name_part(segs.get(1)?) {
                return None;
            }
            s.len() + 1 + segs[1].len()
        }
        s if is_name_part(s) => s.len(),
        _ => return None,
    };
    let name = Name(&path[..name_len]);
    let rest = &path[name_len..];
    if rest.is_empty() {
        return Some(Ask::Packument(name));
    }
    let tail = rest.strip_prefix("/-/")?;
    match tail.split_once('/') {
        None if !tail.is_empty() => Some(Ask::Tarball(name, tail)),
        Some(("u", elsewhere)) => {
            let mut parts = elsewhere.splitn(3, '/');
            let (scheme, authority, path) = (parts.next()?, parts.next()?, parts.next()?);
            let plain = !authority.is_empty()
                && authority
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
            (matches!(scheme, "http" | "https") && plain && !path.is_empty()).then(|| {
                Ask::Elsewhere(
                    name,
                    format!("{scheme}://{authority}/{}", http::encode_path(path)),
                )
            })
        }
        _ => None,
    }
}

/// Plans a request, reading checksums through `host`.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.mode == RemoteMode::Hosted {
        return hosted::plan(host, remote, req);
    }
    let Some(ask) = parse(&req.path) else {
        return Decision::reject(
            404,
            format!(
                "'/{}' is not an npm registry path: expected a package name, @scope/name, or a tarball under {{name}}/-/.",
                req.path
            ),
        );
    };
    let result = match ask {
        Ask::Endpoint(rest) => return endpoint(remote, req, rest),
        _ if !req.is_read() => {
            return Decision::reject(
                405,
                format!(
                    "Remote '{}' mirrors an npm registry and takes no {} (publish to a hosted npm remote).",
                    remote.name, req.method
                ),
            );
        }
        Ask::Packument(name) => packument(host, req, name),
        Ask::Tarball(name, file) => {
            let target = format!(
                "/{}/-/{}",
                http::encode_path(name.0),
                http::encode_path(file)
            );
            tarball(host, remote, &req.path, name, target)
        }
        Ask::Elsewhere(name, url) => {
            elsewhere(remote, &url).and_then(|()| tarball(host, remote, &req.path, name, url))
        }
    };
    result.unwrap_or_else(Decision::Reject)
}

/// The registry endpoints under `-/`.
fn endpoint(remote: &RemoteInfo, req: &Request, rest: &str) -> Decision {
    let pass = |with_body: bool| {
        let mut up =
            UpstreamRequest::new(req.method.clone(), req.upstream_target()).with_body(with_body);
        for name in ["accept", "content-type", "content-encoding", "npm-command"] {
            if let Some(v) = req.header(name) {
                up = up.header(name, v);
            }
        }
        Decision::forward(up, CachePlan::no_store(req.path.clone()))
    };
    match (req.method.as_str(), rest) {
        ("GET" | "HEAD", "ping" | "v1/search" | "npm/v1/keys") => pass(false),
        ("GET" | "HEAD", r) if r.starts_with("npm/v1/attestations/") => pass(false),
        ("POST", r) if r.starts_with("npm/v1/security/") => pass(true),
        _ => Decision::reject(
            501,
            format!(
                "Remote '{}' is a pull-through mirror and does not serve {} /-/{rest} (logins, tokens and changes go to the registry itself).",
                remote.name, req.method
            ),
        ),
    }
}

/// Whether the client asks for the abbreviated packument.
fn wants_corgi(req: &Request) -> bool {
    req.header("accept").is_some_and(|accept| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case(CORGI) && !refused
        })
    })
}

/// The key of a packument entry as this client sees it: per form and per
/// gateway URL (its tarball links name the gateway).
fn packument_key(name: Name<'_>, corgi: bool, gateway: &str) -> String {
    let form = if corgi { "corgi" } else { "full" };
    format!("{}/.packument/{form}/{gateway}", name.0)
}

/// The key of the packument the adapter reads for checksums: the
/// upstream's abbreviated form as it is.
fn lookup_key(name: Name<'_>) -> String {
    format!("{}/.packument/lookup", name.0)
}

/// The `Accept` sent upstream for a form.
fn accept_for(corgi: bool) -> &'static str {
    if corgi {
        "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
    } else {
        "application/json"
    }
}

/// Plans a packument.
fn packument(host: &dyn Host, req: &Request, name: Name<'_>) -> Result<Decision, Rejection> {
    let gateway = host.gateway_url();
    if gateway.is_empty() {
        return Err(Rejection::new(
            400,
            "The gateway cannot name itself for this request (no usable Host header), so it cannot write tarball links; set server.public_url.",
        ));
    }
    let corgi = wants_corgi(req);
    // The links name the gateway as this client reached it, and the form
    // depends on `Accept`: both decide the entry.
    let plan = CachePlan::mutable(packument_key(name, corgi, &gateway))
        .inspect(INSPECT_LIMIT)
        .cache_not_found(true)
        .vary("accept")
        .vary("host")
        .header("vary", "Accept");
    Ok(Decision::forward(
        UpstreamRequest::get(format!("/{}", name.encoded())).header("accept", accept_for(corgi)),
        plan,
    ))
}

/// Checks that a tarball elsewhere is on one of the remote's upstreams.
fn elsewhere(remote: &RemoteInfo, url: &str) -> Result<(), Rejection> {
    let o = http::origin(url);
    if o.is_some() && remote.upstreams.iter().any(|u| http::origin(u) == o) {
        return Ok(());
    }
    Err(Rejection::new(
        502,
        format!(
            "The registry places this tarball on {}, which is not one of remote '{}''s upstreams; add it as a further upstream.",
            o.unwrap_or_else(|| url.to_owned()),
            remote.name
        ),
    ))
}

/// Plans a tarball at `path`, fetched from `target`.
fn tarball(
    host: &dyn Host,
    remote: &RemoteInfo,
    path: &str,
    name: Name<'_>,
    target: String,
) -> Result<Decision, Rejection> {
    let rel = path
        .strip_prefix(name.0)
        .and_then(|p| p.strip_prefix("/-/"))
        .unwrap_or(path);
    let checksum =
        match kvmap::lookup(host, &sums_key(name), rel).and_then(|t| Checksum::from_text(&t)) {
            Some(c) => Some(c),
            None => look_up(host, remote, name, path)?,
        };
    let plan = match checksum {
        Some(c) => CachePlan::immutable(path).expected_checksum(c.algorithm, &c.digest),
        None => {
            warn!("the packument of {} lists /{path} without a checksum; serving it without storing it", name.0);
            CachePlan::no_store(path)
        }
    }
    .content_type("application/octet-stream");
    Ok(Decision::forward(UpstreamRequest::get(target), plan))
}

/// A tarball's checksum from the upstream's abbreviated packument, read
/// through the cache; every version's checksum is remembered on the way.
/// `Ok(None)`: listed without a checksum.
fn look_up(
    host: &dyn Host,
    remote: &RemoteInfo,
    name: Name<'_>,
    path: &str,
) -> Result<Option<Checksum>, Rejection> {
    let read = || {
        host.cache_send(
            &OutgoingRequest {
                method: "GET".into(),
                url: format!("/{}", name.encoded()),
                headers: vec![Header::new("accept", accept_for(true))],
                body: Vec::new(),
                use_credentials: true,
            },
            &CachePlan::mutable(lookup_key(name)).cache_not_found(true),
            INSPECT_LIMIT,
        )
        .map_err(|e| {
            Rejection::new(
                502,
                format!("The packument of {} could not be read: {e}.", name.0),
            )
        })
    };
    let mut answer = read()?;
    let mut found = find(remote, name, &answer, path)?;
    let from_upstream = http::header(&answer.headers, "x-artifact-source") == Some("remote");
    // At most once a minute per package: a client asking for tarballs
    // no packument lists must not make the gateway refetch it each time.
    let throttle = format!("expired/{}", name.0);
    if found.is_none() && answer.status == 200 && !from_upstream && host.kv_get(&throttle).is_none()
    {
        host.kv_set(&throttle, b"1", 60);
        host.cache_expire(&lookup_key(name));
        answer = read()?;
        found = find(remote, name, &answer, path)?;
    }
    match answer.status {
        200 => {}
        404 | 410 => {
            return Err(Rejection::new(
                404,
                format!("Package {} is not in the registry.", name.0),
            ));
        }
        s => {
            return Err(Rejection::new(
                502,
                format!("The registry answered {s} for the packument of {}.", name.0),
            ));
        }
    }
    match found {
        Some(listing) => {
            remember(host, name, &listing.checksums);
            Ok(listing.ours)
        }
        None => Err(Rejection::new(
            404,
            format!("The packument of {} lists no tarball /{path}.", name.0),
        )),
    }
}

/// What a packument says about one tarball.
struct Listing {
    /// Every version's tarball path and checksum.
    checksums: Vec<(String, Checksum)>,
    /// The checksum of the tarball asked for (none: listed without one).
    ours: Option<Checksum>,
}

/// The [`Listing`] of `path` in a packument answer; `None` when the
/// packument does not list it.
fn find(
    remote: &RemoteInfo,
    name: Name<'_>,
    answer: &IncomingResponse,
    path: &str,
) -> Result<Option<Listing>, Rejection> {
    if answer.status != 200 {
        return Ok(None);
    }
    let text = std::str::from_utf8(&answer.body).map_err(|_| malformed(name, "not UTF-8"))?;
    let dists = packument::dists(text).map_err(|e| malformed(name, &e.to_string()))?;
    let links = Links::new(remote, name);
    let mut listed = false;
    let mut ours = None;
    let mut checksums = Vec::new();
    for d in dists {
        let Some(p) = d.tarball.as_deref().and_then(|u| links.path(u)) else {
            continue;
        };
        if p == path {
            listed = true;
            ours = d.checksum.clone();
        }
        if let Some(c) = d.checksum {
            checksums.push((p, c));
        }
    }
    Ok(listed.then_some(Listing { checksums, ours }))
}

/// A 502 for a packument that cannot be read.
fn malformed(name: Name<'_>, why: &str) -> Rejection {
    Rejection::new(
        502,
        format!(
            "The registry's packument of {} is malformed: {why}.",
            name.0
        ),
    )
}

/// The key-value map of a package's checksums, by tarball path after
/// `{name}/-/`.
fn sums_key(name: Name<'_>) -> String {
    format!("sums/{}", name.0)
}

/// Remembers a package's checksums (each packument lists them all, so the
/// map is replaced).
fn remember(host: &dyn Host, name: Name<'_>, checksums: &[(String, Checksum)]) {
    let prefix = format!("{}/-/", name.0);
    let map = checksums
        .iter()
        .filter_map(|(path, c)| Some((path.strip_prefix(&prefix)?.to_owned(), c.to_text())))
        .collect();
    kvmap::store(host, &sums_key(name), &map);
}

/// Where the tarballs of one package go through the gateway.
struct Links<'a> {
    name: Name<'a>,
    /// Each upstream's base URL with a trailing `/`.
    bases: Vec<String>,
}

impl<'a> Links<'a> {
    fn new(remote: &RemoteInfo, name: Name<'a>) -> Links<'a> {
        Links {
            name,
            bases: remote
                .upstreams
                .iter()
                .map(|u| format!("{}/", u.trim_end_matches('/')))
                .collect(),
        }
    }

    /// The path within the remote of a tarball at `url`: `{name}/-/{file}`
    /// when it is at its conventional place under an upstream, else
    /// `{name}/-/u/{scheme}/{host}/{path}`; `None` for no http(s) URL.
    fn path(&self, url: &str) -> Option<String> {
        let url = url.split(['?', '#']).next().unwrap_or(url);
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https") {
            return None;
        }
        let (authority, upath) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority
            .rsplit('@')
            .next()
            .unwrap_or(authority)
            .to_ascii_lowercase();
        if host.is_empty() || upath.is_empty() {
            return None;
        }
        let upath = http::percent_decode(upath);
        let normal = format!("{scheme}://{host}/{upath}");
        for base in &self.bases {
            let (Some(b), Some(n)) = (http::origin(base), http::origin(&normal)) else {
                continue;
            };
            let base_path = base
                .split_once("://")
                .and_then(|(_, r)| r.split_once('/'))
                .map_or("", |(_, p)| p);
            if b != n {
                continue;
            }
            let Some(file) = upath
                .strip_prefix(&http::percent_decode(base_path))
                .and_then(|p| p.strip_prefix(self.name.0))
                .and_then(|p| p.strip_prefix("/-/"))
            else {
                continue;
            };
            if !file.is_empty() && !file.contains('/') {
                return Some(format!("{}/-/{file}", self.name.0));
            }
        }
        Some(format!("{}/-/u/{scheme}/{host}/{upath}", self.name.0))
    }
}

/// Rewrites a packument: each tarball link through the gateway, each
/// checksum remembered.
pub fn inspect_with(
    host: &dyn Host,
    remote: &RemoteInfo,
    req: &Request,
    resp: &UpstreamResponse,
    body: Vec<u8>,
) -> BodyVerdict {
    let keep = BodyVerdict::default();
    if resp.status != 200 {
        return keep;
    }
    let Some(Ask::Packument(name)) = parse(&req.path) else {
        return keep;
    };
    let fail = |why: &str| BodyVerdict {
        fail: Some(malformed(name, why)),
        ..BodyVerdict::default()
    };
    let gateway = host.gateway_url();
    if gateway.is_empty() {
        return BodyVerdict {
            fail: Some(Rejection::new(
                400,
                "The gateway cannot name itself for this request; set server.public_url.",
            )),
            ..keep
        };
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return fail("not UTF-8");
    };
    let dists = match packument::dists(text) {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let links = Links::new(remote, name);
    let prefix = format!("{gateway}/api/v1/remote/{}/", remote.name);
    let mut replacements = Vec::with_capacity(dists.len());
    let mut checksums = Vec::with_capacity(dists.len());
    for d in dists {
        let Some(span) = d.span else {
            continue;
        };
        // A link the gateway cannot serve is emptied, never left pointing
        // past the gateway.
        let Some(path) = d.tarball.as_deref().and_then(|u| links.path(u)) else {
            warn!(
                "version {} of {} has no usable tarball URL",
                d.version, name.0
            );
            replacements.push((span, String::new()));
            continue;
        };
        replacements.push((span, format!("{prefix}{}", http::encode_path(&path))));
        if let Some(c) = d.checksum {
            checksums.push((path, c));
        }
    }
    remember(host, name, &checksums);
    debug!(
        "rewrote {} tarball link(s) of {}",
        replacements.len(),
        name.0
    );
    let content_type = match http::header(&resp.headers, "content-type") {
        Some(t) if t.to_ascii_lowercase().contains("json") => t.to_owned(),
        _ => "application/json".to_owned(),
    };
    BodyVerdict {
        replace: Some(packument::splice(text, &replacements)),
        update: Some(PlanUpdate {
            content_type: Some(content_type),
            ..PlanUpdate::default()
        }),
        ..keep
    }
}

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;

#[cfg(test)]
mod tests;
