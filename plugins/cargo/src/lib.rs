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
//! | `config.json` | the upstream's `config.json` (read through the cache, mutable) with `dl` pointing at the gateway: `{gateway-url}/api/v1/remote/{remote}/-/dl/{crate}/{version}`; answered directly, never stored, as it names the gateway as this client reached it |
//! | index files `1/{n}`, `2/{n}`, `3/{c}/{n}`, `{ab}/{cd}/{name}` | fetched from the same path, mutable (the remote's `mutable_ttl`), a 404 cached for `negative_ttl`; cargo's `If-None-Match` and `If-Modified-Since` are answered from the stored validators |
//! | `-/dl/{crate}/{version}` | the `.crate`: the `cksum` of that version is looked up in the crate's index file (read through the cache), the upstream's `dl` template is expanded (`{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`, `{sha256-checksum}`, or `/{crate}/{version}/download` appended), and the file is fetched, verified against the checksum and stored for good; a body that does not match is never stored |
//!
//! A version the index does not list is a 404, as is a crate it does not
//! have; a path that is neither is a 404 too. Yanked versions are served as
//! the index says (cargo decides what to do with them).
//!
//! **Downloads on another origin.** A registry may serve its files from
//! another origin than its index (crates.io: index `index.crates.io`,
//! files `static.crates.io`). The gateway fetches only from a remote's
//! upstreams, so list that origin as a further upstream (`upstream =
//! ["https://index.crates.io", "https://static.crates.io"]`): index files
//! and `config.json` then go to the first upstream only (never to the file
//! host, which would answer 404 for them), downloads to the file host. A
//! download URL on no upstream's origin is refused with 502 saying which.
//!
//! **Limits.** An index file is read for a download's checksum up to
//! [`INDEX_LIMIT`] bytes (crates.io's largest are a few MiB) and
//! `config.json` up to [`CONFIG_LIMIT`].
//!
//! The adapter never looks at an upstream answer (`accepts_every_response`)
//! and keeps no state. Methods other than `GET`/`HEAD` get 405; a hosted
//! remote gets 400 (only pull-through is built).

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
}

artgate_sdk::export_adapter!(Cargo, stateless, accepts_every_response);

/// Plans a request, reading through `host`.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.mode == RemoteMode::Hosted {
        return Decision::reject(
            400,
            format!(
                "Remote '{}' is hosted, but the cargo adapter only mirrors sparse registries; give it an upstream.",
                remote.name
            ),
        );
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
    } else if index_name(&req.path).is_some() {
        Ok(index(host, remote, &req.path))
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

/// The crate name an index path is for, when the path is one: `1/{n}`,
/// `2/{n}`, `3/{c}/{n}` or `{ab}/{cd}/{name}`, lower case, in cargo's
/// name alphabet.
fn index_name(path: &str) -> Option<&str> {
    let segs: Vec<&str> = path.split('/').collect();
    let name = *segs.last()?;
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    (valid && segs.join("/") == index_path(name)).then_some(name)
}

/// Cargo's index path of a crate name (lower-cased).
fn index_path(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    match n.len() {
        1 => format!("1/{n}"),
        2 => format!("2/{n}"),
        3 => format!("3/{}/{n}", &n[..1]),
        _ => format!("{}/{}/{n}", &n[..2], &n[2..4]),
    }
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

/// The upstream base index files and `config.json` are fetched from:
/// relative (failover over every upstream), unless the downloads live on
/// another upstream than the first (then the first only, absolute).
fn index_target(remote: &RemoteInfo, path: &str, split: bool) -> String {
    match remote.upstreams.first() {
        Some(first) if split => format!("{first}/{}", http::encode_path(path)),
        _ => format!("/{}", http::encode_path(path)),
    }
}

/// The plan of an index file (the same for a client's request and for the
/// lookup of a download's checksum, so both share one entry).
fn index_plan(path: &str) -> CachePlan {
    CachePlan::mutable(path).cache_not_found(true)
}

/// Plans an index file.
fn index(host: &dyn Host, remote: &RemoteInfo, path: &str) -> Decision {
    // Only a remote with several upstreams can have its downloads on
    // another one; others need not read config.json first.
    let split = remote.upstreams.len() > 1
        && upstream_config(host, remote)
            .ok()
            .is_some_and(|c| downloads_elsewhere(remote, &c.dl));
    forward_get(index_target(remote, path, split), index_plan(path))
}

/// What the adapter uses of the upstream's `config.json`.
struct UpstreamConfig {
    /// The download template.
    dl: String,
}

/// The upstream's `config.json`, read through the cache (from the first
/// upstream: it decides where downloads live).
fn upstream_config(host: &dyn Host, remote: &RemoteInfo) -> Result<UpstreamConfig, Rejection> {
    let url = match remote.upstreams.first() {
        Some(first) => format!("{first}/config.json"),
        None => "/config.json".into(),
    };
    let answer = host
        .cache_send(
            &OutgoingRequest {
                method: "GET".into(),
                url,
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
    if answer.status != 200 {
        return Err(Rejection::new(
            502,
            format!(
                "The registry answered {} for config.json; a sparse registry must serve it.",
                answer.status
            ),
        ));
    }
    let doc: Value = serde_json::from_slice(&answer.body).map_err(|e| {
        Rejection::new(502, format!("The registry's config.json is not JSON: {e}."))
    })?;
    let dl = doc
        .get("dl")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            Rejection::new(
                502,
                "The registry's config.json has no \"dl\" (download URL).",
            )
        })?;
    Ok(UpstreamConfig { dl: dl.to_owned() })
}

/// The origin (`scheme://host[:port]`) of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find('/').map_or(url.len(), |i| scheme.len() + 3 + i);
    Some(&url[..end])
}

/// Whether the downloads of template `dl` live on another upstream than
/// the first (crates.io's `static.crates.io`).
fn downloads_elsewhere(remote: &RemoteInfo, dl: &str) -> bool {
    let first = remote.upstreams.first().and_then(|u| origin(u));
    let dl = origin(dl);
    dl.is_some()
        && dl != first
        && remote
            .upstreams
            .iter()
            .skip(1)
            .any(|u| origin(u).is_some_and(|o| o.eq_ignore_ascii_case(dl.unwrap_or(""))))
}

/// Answers `config.json`: the upstream's, with `dl` at the gateway.
fn config(host: &dyn Host, remote: &RemoteInfo) -> Result<Decision, Rejection> {
    let gateway = host.gateway_url();
    if gateway.is_empty() {
        return Err(Rejection::new(
            400,
            "The gateway cannot name itself for this request (no usable Host header); set server.public_url.",
        ));
    }
    // Read it to fail here, not at the first download, when the upstream
    // is not a sparse registry.
    upstream_config(host, remote)?;
    let body = serde_json::json!({
        "dl": format!("{gateway}/api/v1/remote/{}/{DL_PREFIX}{{crate}}/{{version}}", remote.name),
    });
    Ok(Decision::respond(
        DirectResponse::new(200, body.to_string())
            .header("content-type", "application/json")
            .header("cache-control", "no-cache"),
    ))
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
    let name_ok = !krate.is_empty()
        && krate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let version_ok = !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b));
    if !name_ok || !version_ok {
        return Err(not_found());
    }
    let cfg = upstream_config(host, remote)?;
    let split = downloads_elsewhere(remote, &cfg.dl);
    let cksum = checksum(host, remote, krate, version, split)?;
    let url = expand(&cfg.dl, krate, version, cksum.hex());
    if let Some(o) = origin(&url) {
        let on_upstream = remote
            .upstreams
            .iter()
            .any(|u| origin(u).is_some_and(|uo| uo.eq_ignore_ascii_case(o)));
        if !on_upstream {
            return Err(Rejection::new(
                502,
                format!(
                    "The registry serves downloads from {o}, which is not one of remote '{}''s upstreams; add it as a further upstream.",
                    remote.name
                ),
            ));
        }
    }
    let plan = CachePlan::immutable(format!("{DL_PREFIX}{krate}/{version}"))
        .expected_digest(&cksum)
        .content_type("application/gzip")
        .attachment(&format!("{krate}-{version}.crate"));
    Ok(forward_get(url, plan))
}

/// The `cksum` the crate's index file lists for `version`.
fn checksum(
    host: &dyn Host,
    remote: &RemoteInfo,
    krate: &str,
    version: &str,
    split: bool,
) -> Result<Digest, Rejection> {
    let path = index_path(krate);
    let answer = host
        .cache_send(
            &OutgoingRequest {
                method: "GET".into(),
                url: index_target(remote, &path, split),
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
        })?;
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
    let line = index_line(&answer.body, krate, version).ok_or_else(|| {
        Rejection::new(
            404,
            format!("Crate '{krate}' has no version {version} in the registry's index."),
        )
    })?;
    line.get("cksum")
        .and_then(Value::as_str)
        .and_then(|c| Digest::from_hex(c).ok())
        .ok_or_else(|| {
            Rejection::new(
                502,
                format!("The index line of {krate} {version} has no valid \"cksum\"."),
            )
        })
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
