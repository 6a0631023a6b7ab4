//! The built-in `generic` adapter: plain files behind a URL prefix.
//!
//! Pull-through remotes: `GET`/`HEAD` of `{path}[?query]` is forwarded as
//! `GET /{path}[?query]` to the upstream base URLs (with the remote's
//! credentials), cached under the key `{path}[?query]`. The class comes from
//! the remote's patterns: mutable when a `mutable-patterns` regex matches the
//! path, immutable otherwise (whether or not an `immutable-patterns` regex
//! matches: files are immutable by default). The content type comes from the
//! extension and files get `content-disposition: attachment`. Upstream 404s
//! may be negatively cached. Other methods are refused with 400.
//!
//! Hosted remotes (`package = "local"` style):
//!
//! | request | operation |
//! | --- | --- |
//! | `GET`/`HEAD` of a file | hosted read of key `{path}` |
//! | `GET`/`HEAD` with `?list` or of a directory (`""`, `.../`) | hosted list, prefix `{path}`, `after` and `limit` (default 1000, at most 10000) from the query |
//! | `PUT`/`POST` of a file | hosted write of key `{path}`; `x-checksum-sha256` becomes the expected digest; remote option `overwrite = "false"` refuses overwrites |
//! | `DELETE` of a file | hosted delete of key `{path}` |
//!
//! Writes and deletes of directory paths are refused with 400.
//!
//! With the cargo feature `variant` (hot-reload tests only) the adapter
//! reports version `9.9.9-test` and adds `x-adapter-variant: v2` to every
//! plan.

use artgate_sdk::prelude::*;

/// Default number of keys in a hosted listing.
const DEFAULT_LIST_LIMIT: u32 = 1000;
/// Largest number of keys in a hosted listing.
const MAX_LIST_LIMIT: u32 = 10_000;

/// Version reported by `describe`.
#[cfg(not(feature = "variant"))]
const VERSION: &str = env!("CARGO_PKG_VERSION");
#[cfg(feature = "variant")]
const VERSION: &str = "9.9.9-test";

/// Header added to every plan by the `variant` build.
#[cfg(feature = "variant")]
const VARIANT_HEADER: Option<(&str, &str)> = Some(("x-adapter-variant", "v2"));
#[cfg(not(feature = "variant"))]
const VARIANT_HEADER: Option<(&str, &str)> = None;

/// The generic adapter.
pub struct Generic;

impl Adapter for Generic {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("generic", VERSION, ["generic", "local"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        match remote.mode {
            RemoteMode::PullThrough => pull_through(&remote, &req),
            RemoteMode::Hosted => hosted(&remote, &req),
        }
    }
}

artgate_sdk::export_adapter!(Generic, stateless, accepts_every_response);

/// Plans a request on a pull-through remote.
fn pull_through(remote: &RemoteInfo, req: &Request) -> Decision {
    if !req.is_read() {
        return Decision::reject(
            400,
            format!(
                "Remote '{}' is a pull-through cache and does not accept {}; use PUT /cache/flush?remote={} to drop cached entries.",
                remote.name, req.method, remote.name
            ),
        );
    }
    let class = match remote.classify_or_reject(&req.path) {
        Ok(PathClass::Mutable) => CacheClass::Mutable,
        Ok(PathClass::Immutable | PathClass::Unmatched) => CacheClass::Immutable,
        Err(refusal) => return *refusal,
    };
    let mut plan = CachePlan::new(req.path_and_query(), class).cache_not_found(true);
    if let Some(name) = path::file_name(&req.path) {
        plan = plan
            .content_type(media::content_type(&req.path))
            .attachment(name);
    }
    if let Some((name, value)) = VARIANT_HEADER {
        plan = plan.header(name, value);
    }
    forward_get(req.upstream_target(), plan)
}

/// Plans a request on a hosted remote.
fn hosted(remote: &RemoteInfo, req: &Request) -> Decision {
    let is_dir = path::is_dir(&req.path);
    match req.method.as_str() {
        "GET" | "HEAD" if is_dir || req.has_query_param("list") => list(req),
        "GET" | "HEAD" => {
            let mut read = HostedRead::new(req.path.as_str());
            if let Some(name) = path::file_name(&req.path) {
                read = read.header("content-disposition", http::content_disposition(name));
            }
            if let Some((name, value)) = VARIANT_HEADER {
                read = read.header(name, value);
            }
            Decision::hosted_read(read)
        }
        "PUT" | "POST" | "DELETE" if is_dir => Decision::reject(
            400,
            format!(
                "{} needs a file path, not the directory '/{}'.",
                req.method, req.path
            ),
        ),
        "PUT" | "POST" => {
            let mut write = HostedWrite::new(req.path.as_str())
                .content_type(media::content_type(&req.path))
                .refuse_overwrite(remote.option_bool("overwrite") == Some(false));
            if let Some(hex) = req.header("x-checksum-sha256") {
                match Digest::from_hex(hex) {
                    Ok(d) => write = write.expected_digest(&d),
                    Err(e) => {
                        return Decision::reject(
                            400,
                            format!("Header x-checksum-sha256 is invalid: {e}."),
                        );
                    }
                }
            }
            Decision::hosted_write(write)
        }
        "DELETE" => Decision::hosted_delete(req.path.as_str()),
        other => Decision::reject(
            405,
            format!(
                "Method {other} is not supported on hosted remote '{}'; use GET, HEAD, PUT, POST or DELETE.",
                remote.name
            ),
        ),
    }
}

/// Plans a hosted listing under the request path.
fn list(req: &Request) -> Decision {
    let limit = match req.query_param("limit").filter(|l| !l.is_empty()) {
        None => DEFAULT_LIST_LIMIT,
        Some(l) => match l.parse::<u64>() {
            Ok(0) | Err(_) => {
                return Decision::reject(
                    400,
                    format!("Query parameter limit must be a positive whole number, not '{l}'."),
                );
            }
            Ok(n) => u32::try_from(n.min(u64::from(MAX_LIST_LIMIT))).unwrap_or(MAX_LIST_LIMIT),
        },
    };
    let mut list = HostedList::new(req.path.as_str(), limit);
    if let Some(after) = req.query_param("after").filter(|a| !a.is_empty()) {
        list = list.after(after);
    }
    Decision::hosted_list(list)
}

#[cfg(test)]
mod tests;
