//! The built-in `cargo` adapter: a caching mirror of a Cargo sparse
//! registry.
//!
//! Package type `cargo`. A pull-through remote in front of a sparse
//! registry (`https://index.crates.io`, a registry served by Artifactory,
//! Nexus, kellnr or any static file server) is itself a sparse registry;
//! cargo reaches it with
//!
//! ```toml
//! # .cargo/config.toml
//! [source.crates-io]
//! replace-with = "artgate"
//! [source.artgate]
//! registry = "sparse+http://gateway:8080/api/v1/remote/crates/"
//! ```
//!
//! | path | answer |
//! | --- | --- |
//! | `config.json` | `{"dl": "{gateway-url}/api/v1/remote/{remote}/-/dl/{crate}/{version}"}`: downloads through the gateway (no `api`: a mirror takes no uploads). Made from the upstream's `config.json` (an upstream that is no sparse registry is a 502 here), mutable, kept per gateway URL as it names the gateway as this client reached it |
//! | index files `1/{n}`, `2/{n}`, `3/{c}/{n}`, `{ab}/{cd}/{name}` | fetched from the same path, mutable (the remote's `mutable_ttl`), a 404 cached for `negative_ttl`; cargo's `If-None-Match` and `If-Modified-Since` are answered from the stored validators |
//! | `-/dl/{crate}/{version}` | the `.crate`: the `cksum` of that version is looked up in the crate's index file (read through the cache, under the same entry as cargo's own requests for it), the upstream's `dl` template is expanded with the name as the index spells it (`{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`, `{sha256-checksum}`, or `/{crate}/{version}/download` appended), and the file is fetched, verified against the checksum and stored for good; a body that does not match is never stored |
//!
//! A version the stored index file does not list makes the adapter expire
//! that file and read it again once (a `Cargo.lock` may name a version
//! published since); still missing, or a crate the registry does not have,
//! is a 404, as is a path that is none of the above. Yanked versions are
//! served as the index says (cargo decides what to do with them). A
//! path matching the remote's `mutable_patterns` is mutable.
//!
//! **Downloads on another origin.** A registry may serve its files from
//! another origin than its index (crates.io: index `index.crates.io`,
//! files `static.crates.io`). The gateway fetches only from a remote's
//! upstreams, so list that origin as a further upstream (`upstream =
//! ["https://index.crates.io", "https://static.crates.io"]`). With several
//! upstreams, index files and `config.json` come from the first one only
//! (never from a file host, whose 404 for them would be cached as "no such
//! crate"); there is then no failover for the index. A download URL on no
//! upstream's origin is refused with 502 saying which.
//!
//! **Limits.** An index file is read for a download's checksum up to
//! [`INDEX_LIMIT`] bytes (crates.io's largest are a few MiB) and
//! `config.json` up to [`CONFIG_LIMIT`].
//!
//! The adapter never looks at an upstream answer (`accepts_every_response`)
//! and keeps no state. Methods other than `GET`/`HEAD` get 405.
//!
//! **Hosted.** On a hosted remote the adapter is a registry of its own,
//! for `cargo publish` and `cargo yank`; see [`hosted`].

mod hosted;

use artgate_sdk::prelude::*;
use serde_json::Value;

/// Largest index file read for a download's checksum.
pub const INDEX_LIMIT: u32 = 16 << 20;

/// Largest `config.json` read.
pub const CONFIG_LIMIT: u32 = 64 << 10;

/// The gateway-relative path of downloads: `-/dl/{crate}/{version}` (`-`
/// is no crate name's first character, so it never meets an index path).
const DL_PREFIX: &str = "-/dl/";

/// The cargo adapter.
pub struct Cargo;

impl Adapter for Cargo {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("cargo", env!("CARGO_PKG_VERSION"), ["cargo"])
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

artgate_sdk::export_adapter!(Cargo, stateless, accepts_every_response);

/// Plans a request, reading through `host`.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.mode == RemoteMode::Hosted {
        return hosted::plan(host, remote, req);
    }
    if !req.is_read() {
        return Decision::reject(
            405,
            format!(
                "Remote '{}' mirrors a cargo registry and only answers GET and HEAD, not {}.",
                remote.name, req.method
            ),
        );
    }
    let result = if req.path == "config.json" {
        config(host, remote)
    } else if let Some(rest) = req.path.strip_prefix(DL_PREFIX) {
        download(host, remote, rest)
    } else if is_index_path(&req.path) {
        index(remote, &req.path)
    } else {
        Err(Rejection::new(
            404,
            format!(
                "'/{}' is not part of a cargo sparse registry: expected config.json, an index file such as se/rd/serde, or {DL_PREFIX}{{crate}}/{{version}}.",
                req.path
            ),
        ))
    };
    result.unwrap_or_else(Decision::Reject)
}

/// Whether `path` is an index file: `1/{n}`, `2/{n}`, `3/{c}/{n}` or
/// `{ab}/{cd}/{name}`, lower case, in cargo's name alphabet.
fn is_index_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    is_crate_name(name) && !name.bytes().any(|b| b.is_ascii_uppercase()) && index_path(name) == path
}

/// Whether `name` is in cargo's crate-name alphabet (of any case).
fn is_crate_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Cargo's index path of a crate name (lower-cased).
fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    format!("{}/{n}", dl_prefix(&n))
}

/// The `{prefix}` of a name as cargo's `dl` templates use it: the index
/// directory, with the name's own case.
fn dl_prefix(name: &str) -> String {
    match name.len() {
        1 => "1".into(),
        2 => "2".into(),
        3 => format!("3/{}", &name[..1]),
        _ => format!("{}/{}", &name[..2], &name[2..4]),
    }
}

/// The URL index files and `config.json` are fetched from: upstream-relative
/// (failover over the upstreams) for a remote with one upstream; with
/// several (an index and a file host), the first one only.
fn index_target(remote: &RemoteInfo, path: &str) -> String {
    match remote.upstreams.as_slice() {
        [first, _, ..] => format!("{first}/{}", http::encode_path(path)),
        _ => format!("/{}", http::encode_path(path)),
    }
}

/// The class of `path` by the remote's patterns: mutable when one of its
/// `mutable_patterns` matches, else `class`.
fn classify(remote: &RemoteInfo, path: &str, class: CacheClass) -> Result<CacheClass, Rejection> {
    match remote.classify_or_reject(path) {
        Ok(PathClass::Mutable) => Ok(CacheClass::Mutable),
        Ok(_) => Ok(class),
        Err(refusal) => match *refusal {
            Decision::Reject(r) => Err(r),
            _ => Err(Rejection::new(500, "The remote's patterns are invalid.")),
        },
    }
}

/// The plan of an index file (the same for a client's request and for the
/// lookup of a download's checksum, so both share one entry).
fn index_plan(path: &str) -> CachePlan {
    CachePlan::mutable(path).cache_not_found(true)
}

/// Plans an index file.
fn index(remote: &RemoteInfo, path: &str) -> Result<Decision, Rejection> {
    classify(remote, path, CacheClass::Mutable)?;
    Ok(forward_get(index_target(remote, path), index_plan(path)))
}

/// Where the upstream's `config.json` is fetched.
fn config_target(remote: &RemoteInfo) -> String {
    match remote.upstreams.first() {
        Some(first) => format!("{first}/config.json"),
        None => "/config.json".into(),
    }
}

/// The upstream's download template, from its `config.json` read through
/// the cache.
fn upstream_dl(host: &dyn Host, remote: &RemoteInfo) -> Result<String, Rejection> {
    let answer = host
        .cache_send(
            &OutgoingRequest {
                method: "GET".into(),
                url: config_target(remote),
                headers: vec![Header::new("accept", "application/json")],
                body: Vec::new(),
                use_credentials: true,
            },
            &CachePlan::mutable("config.json"),
            CONFIG_LIMIT,
        )
        .map_err(|e| {
            Rejection::new(
                502,
                format!("The registry's config.json could not be read: {e}."),
            )
        })?;
    dl_of(answer.status, &answer.body)
}

/// The `dl` of an upstream's `config.json` answer.
fn dl_of(status: u16, body: &[u8]) -> Result<String, Rejection> {
    if status != 200 {
        return Err(Rejection::new(
            502,
            format!(
                "The registry answered {status} for config.json; a sparse registry must serve it."
            ),
        ));
    }
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        Rejection::new(502, format!("The registry's config.json is not JSON: {e}."))
    })?;
    doc.get("dl")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Rejection::new(
                502,
                "The registry's config.json has no \"dl\" (download URL).",
            )
        })
}

/// Plans `config.json`: the upstream's, checked and answered with `dl` at
/// the gateway ([`inspect_with`]), kept per gateway URL, so that a fresh
/// hit needs no adapter call.
fn config(host: &dyn Host, remote: &RemoteInfo) -> Result<Decision, Rejection> {
    let gateway = host.gateway_url();
    if gateway.is_empty() {
        return Err(Rejection::new(
            400,
            "The gateway cannot name itself for this request (no usable Host header); set server.public_url.",
        ));
    }
    let plan = CachePlan::mutable(format!("config.json/{gateway}"))
        .inspect(CONFIG_LIMIT)
        .content_type("application/json")
        .vary("host");
    Ok(Decision::forward(
        UpstreamRequest::get(config_target(remote)).header("accept", "application/json"),
        plan,
    ))
}

/// Rewrites the upstream's `config.json`: `dl` at the gateway, nothing
/// else (no `api`: a mirror takes no uploads); an upstream that is no
/// sparse registry is a 502 saying why.
pub fn inspect_with(
    host: &dyn Host,
    remote: &RemoteInfo,
    req: &Request,
    resp: &UpstreamResponse,
    body: Vec<u8>,
) -> BodyVerdict {
    if req.path != "config.json" {
        return BodyVerdict::default();
    }
    if let Err(r) = dl_of(resp.status, &body) {
        return BodyVerdict {
            fail: Some(r),
            ..BodyVerdict::default()
        };
    }
    let doc = serde_json::json!({
        "dl": format!(
            "{}/api/v1/remote/{}/{DL_PREFIX}{{crate}}/{{version}}",
            host.gateway_url(),
            remote.name
        ),
    });
    BodyVerdict {
        replace: Some(doc.to_string().into_bytes()),
        ..BodyVerdict::default()
    }
}

/// Plans a download `{crate}/{version}` (the path after [`DL_PREFIX`]).
fn download(host: &dyn Host, remote: &RemoteInfo, rest: &str) -> Result<Decision, Rejection> {
    let not_found = || {
        Rejection::new(
            404,
            format!(
                "'{DL_PREFIX}{rest}' is not a download: expected {DL_PREFIX}{{crate}}/{{version}}."
            ),
        )
    };
    let (krate, version) = rest.split_once('/').ok_or_else(not_found)?;
    let name_ok = is_crate_name(krate);
    let version_ok = !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b));
    if !name_ok || !version_ok {
        return Err(not_found());
    }
    let (name, cksum) = checksum(host, remote, krate, version)?;
    let url = expand(&upstream_dl(host, remote)?, &name, version, cksum.hex());
    if let Some(o) = http::origin(&url)
        && !remote
            .upstreams
            .iter()
            .any(|u| http::origin(u).as_ref() == Some(&o))
    {
        return Err(Rejection::new(
            502,
            format!(
                "The registry serves downloads from {o}, which is not one of remote '{}''s upstreams; add it as a further upstream.",
                remote.name
            ),
        ));
    }
    let key = format!("{DL_PREFIX}{name}/{version}");
    let plan = CachePlan::new(key.as_str(), classify(remote, &key, CacheClass::Immutable)?)
        .expected_digest(&cksum)
        .content_type("application/gzip")
        .attachment(&format!("{name}-{version}.crate"));
    Ok(forward_get(url, plan))
}

/// The crate's name as its index spells it and the `cksum` listed for
/// `version`. A version the stored index file lacks makes it expire and
/// be read once more (it may have been published since).
fn checksum(
    host: &dyn Host,
    remote: &RemoteInfo,
    krate: &str,
    version: &str,
) -> Result<(String, Digest), Rejection> {
    let path = index_path(krate);
    let read = || {
        host.cache_send(
            &OutgoingRequest {
                method: "GET".into(),
                url: index_target(remote, &path),
                headers: Vec::new(),
                body: Vec::new(),
                use_credentials: true,
            },
            &index_plan(&path),
            INDEX_LIMIT,
        )
        .map_err(|e| {
            Rejection::new(
                502,
                format!("The index file of crate '{krate}' could not be read: {e}."),
            )
        })
    };
    let mut answer = read()?;
    let mut line = index_line(&answer.body, krate, version);
    let from_upstream = http::header(&answer.headers, "x-artifact-source") == Some("remote");
    if line.is_none() && answer.status == 200 && !from_upstream {
        host.cache_expire(&path);
        answer = read()?;
        line = index_line(&answer.body, krate, version);
    }
    match answer.status {
        200 => {}
        404 | 410 | 451 => {
            return Err(Rejection::new(
                404,
                format!("Crate '{krate}' is not in the registry."),
            ));
        }
        s => {
            return Err(Rejection::new(
                502,
                format!("The registry answered {s} for the index file of crate '{krate}'."),
            ));
        }
    }
    let line = line.ok_or_else(|| {
        Rejection::new(
            404,
            format!("Crate '{krate}' has no version {version} in the registry's index."),
        )
    })?;
    // The index's spelling, which the download URL and the key use; an
    // upstream's index is not trusted to give a name that fits a path.
    let name = line
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| is_crate_name(n))
        .unwrap_or(krate)
        .to_owned();
    let cksum = line
        .get("cksum")
        .and_then(Value::as_str)
        .and_then(|c| Digest::from_hex(c).ok())
        .ok_or_else(|| {
            Rejection::new(
                502,
                format!("The index line of {krate} {version} has no valid \"cksum\"."),
            )
        })?;
    Ok((name, cksum))
}

/// The index line (one JSON object per line) of `krate` at `version`.
fn index_line(index: &[u8], krate: &str, version: &str) -> Option<Value> {
    index
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .find(|v| {
            v.get("vers").and_then(Value::as_str) == Some(version)
                && v.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(krate))
        })
}

/// The download URL of `krate` `version` by the registry's `dl` template.
fn expand(dl: &str, krate: &str, version: &str, cksum: &str) -> String {
    const MARKERS: [&str; 5] = [
        "{crate}",
        "{version}",
        "{prefix}",
        "{lowerprefix}",
        "{sha256-checksum}",
    ];
    if !MARKERS.iter().any(|m| dl.contains(m)) {
        return format!("{}/{krate}/{version}/download", dl.trim_end_matches('/'));
    }
    dl.replace("{crate}", krate)
        .replace("{version}", version)
        .replace("{prefix}", &dl_prefix(krate))
        .replace("{lowerprefix}", &dl_prefix(&krate.to_ascii_lowercase()))
        .replace("{sha256-checksum}", cksum)
}

#[cfg(test)]
mod tests;
