//! The built-in `cas` adapter: the Bazel remote-cache HTTP protocol, as
//! bazel-remote serves it and Bazel (`--remote_cache=http://...`) and ccache
//! (`remote_storage = http://...|layout=bazel`) speak it.
//!
//! A `cas` remote is hosted (`package = "cas"`, `hosted = true`):
//!
//! | request | operation |
//! | --- | --- |
//! | `GET`/`HEAD /cas/{sha256}` | hosted read of key `cas/{sha256}`; the empty blob (`e3b0c442…b855`) always exists |
//! | `PUT /cas/{sha256}` | hosted write of `cas/{sha256}`, verified against the name (a mismatch → 400, nothing stored) |
//! | `GET`/`HEAD /ac/{sha256}` | hosted read of `ac/{sha256}`: 404 while any blob the action result references is missing from `cas/` |
//! | `PUT /ac/{sha256}` | hosted write of `ac/{sha256}`; the body (at most 4 MiB) is parsed as an `ActionResult` and the blobs it references are stored as the entry's references |
//! | `DELETE /cas/{sha256}`, `/ac/{sha256}` | hosted delete |
//!
//! Hashes are 64 hex digits (upper case is accepted and stored lower
//! case). Any other path is 404, a malformed hash 400, any other method 405.
//!
//! **ccache.** ccache 4.7 with `layout=bazel` stores its own entries (not
//! `ActionResult`s; they start with the magic bytes `cc ac`) under
//! `/ac/{64 hex}` with plain `GET` and `PUT`, and never uses `/cas/`. Such
//! uploads (recognised by `User-Agent: ccache/...`) are stored as they are,
//! without the 4 MiB inspection limit (a ccache entry holds the object file).
//! More generally, an `/ac/` upload that is not a well-formed
//! `ActionResult` is stored as an opaque entry without references.
//!
//! Completeness covers the blobs an action result names directly (output
//! files, output directory trees, stdout, stderr); the files inside an
//! output directory's `Tree` are not followed.
//!
//! **REAPI (gRPC).** The gateway's REAPI front stores into the same
//! remote (blobs under `cas/`, action results under `ac/`, Remote Asset
//! references under `asset/...`) and asks this adapter, through
//! `inspect-body`, which keys a message references. It names what it asks
//! in `req.path`; no client request reaches these paths (`plan` answers
//! them 404):
//!
//! | `inspect-body` path | body and headers | verdict `references` |
//! | --- | --- | --- |
//! | `ac/{sha256}` | an `ActionResult` (HTTP `PUT` or gRPC `UpdateActionResult`) | `cas/{h}` for every blob it names (as above) |
//! | `reapi/directory/{sha256}` | a `Directory` | `cas/{h}` per file, `tree/{h}` per child directory (the core walks those); not a `Directory` → `fail` 400 |
//! | `reapi/asset/{sha256}` | a `PushBlob`: the blob (≤ 4 MiB, else empty and `x-reapi-body: omitted`); `x-reapi-uri`, `x-reapi-blob`, `x-reapi-directory` headers | `cas/{sha256}` and what the URIs require |
//! | `reapi/asset-directory/{sha256}` | a `PushDirectory`: empty; the same headers | `tree/{sha256}` and what the URIs require |
//!
//! What a URI requires: a BuildStream artifact (`urn:fdc:buildstream.build:2020:artifact:`)
//! the `Artifact`'s `files` tree, public data, logs and metadata, not its
//! optional build tree, sources or build root; BuildStream element sources
//! (`…:source:{64 hex}`) the `Source`'s `files` tree; any other URI every
//! pushed reference. Malformed headers are refused with 400, and the empty
//! blob is never a reference. The details are in [`reapi`].

use artgate_sdk::prelude::*;

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod proto;
pub mod reapi;

/// sha256 of the empty blob, which always exists.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Largest action result inspected (and accepted) on `PUT /ac/...`.
pub const AC_INSPECT_LIMIT: u32 = 4 * 1024 * 1024;

/// Content type of every blob and action result.
const OCTET_STREAM: &str = "application/octet-stream";

/// The two stores of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Content-addressed blobs, named by their own sha256.
    Cas,
    /// Action results, named by the action's digest.
    Ac,
}

impl Store {
    fn as_str(self) -> &'static str {
        match self {
            Store::Cas => "cas",
            Store::Ac => "ac",
        }
    }
}

/// The `cas` adapter.
pub struct Cas;

impl Adapter for Cas {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("cas", env!("CARGO_PKG_VERSION"), ["cas"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        if !remote.is_hosted() {
            return Decision::reject(
                400,
                format!(
                    "Remote '{}' is not hosted; the cas adapter serves hosted remotes only (set hosted = true).",
                    remote.name
                ),
            );
        }
        let (store, hash) = match parse_path(&req.path) {
            Ok(p) => p,
            Err(e) => return e.decision(),
        };
        let key = format!("{}/{hash}", store.as_str());
        match req.method.as_str() {
            "GET" | "HEAD" if store == Store::Cas && hash == EMPTY_SHA256 => Decision::respond(
                DirectResponse::new(200, Vec::new())
                    .header("content-type", OCTET_STREAM)
                    .header("etag", format!("\"{EMPTY_SHA256}\"")),
            ),
            "GET" | "HEAD" => {
                Decision::hosted_read(HostedRead::new(key).content_type(OCTET_STREAM))
            }
            "PUT" => {
                let mut write = HostedWrite::new(key).content_type(OCTET_STREAM);
                match store {
                    Store::Cas => match Digest::from_hex(&hash) {
                        Ok(d) => write = write.expected_digest(&d),
                        Err(e) => {
                            return Decision::reject(
                                400,
                                format!("The blob name is invalid: {e}."),
                            );
                        }
                    },
                    Store::Ac if is_ccache(&req) => {}
                    Store::Ac => write = write.inspect(AC_INSPECT_LIMIT),
                }
                Decision::hosted_write(write)
            }
            "DELETE" => Decision::hosted_delete(key),
            other => Decision::reject(
                405,
                format!("Method {other} is not supported here; use GET, HEAD, PUT or DELETE."),
            ),
        }
    }

    fn inspect_body(
        _remote: RemoteInfo,
        req: Request,
        _resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        if reapi::is_reapi(&req.path) {
            return match reapi::references(&req.path, &req.headers, &body) {
                Ok(references) => BodyVerdict {
                    references,
                    ..BodyVerdict::default()
                },
                Err(e) => {
                    debug!("{}: {e}", req.path);
                    BodyVerdict {
                        fail: Some(e.rejection()),
                        ..BodyVerdict::default()
                    }
                }
            };
        }
        BodyVerdict {
            references: references(&req.path, &body),
            ..BodyVerdict::default()
        }
    }
}

artgate_sdk::export_adapter!(Cas, stateless, accepts_every_response);

/// Why a path is not `cas/{sha256}` or `ac/{sha256}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Not a path of the protocol (404).
    NotFound,
    /// The hash part is not 64 hex digits (400); carries it, shortened.
    BadHash(String),
}

impl PathError {
    /// The rejection for the client.
    pub fn decision(&self) -> Decision {
        match self {
            PathError::NotFound => Decision::reject(
                404,
                "No such path; this remote serves /cas/{sha256} and /ac/{sha256}.",
            ),
            PathError::BadHash(h) => Decision::reject(
                400,
                format!("'{h}' is not a sha256 digest (64 hex digits)."),
            ),
        }
    }
}

/// `cas/{hash}` or `ac/{hash}` → the store and the lower-case hash.
pub fn parse_path(path: &str) -> Result<(Store, String), PathError> {
    let (store, hash) = path.split_once('/').ok_or(PathError::NotFound)?;
    let store = match store {
        "cas" => Store::Cas,
        "ac" => Store::Ac,
        _ => return Err(PathError::NotFound),
    };
    if hash.is_empty() || hash.contains('/') {
        return Err(PathError::NotFound);
    }
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PathError::BadHash(hash.chars().take(80).collect()));
    }
    Ok((store, hash.to_ascii_lowercase()))
}

/// Whether the upload comes from ccache (whose `/ac/` entries are its own
/// format and may be large).
fn is_ccache(req: &Request) -> bool {
    req.header("user-agent")
        .is_some_and(|ua| ua.starts_with("ccache/"))
}

/// The keys an `/ac/` upload references: `cas/{hash}` for every blob its
/// `ActionResult` names, except the empty blob (which always exists). An
/// upload that is not an `ActionResult` references nothing.
pub fn references(path: &str, body: &[u8]) -> Vec<String> {
    if body.starts_with(&[0xcc, 0xac]) {
        debug!("{path}: a ccache entry; stored without references");
        return Vec::new();
    }
    match proto::action_result_digests(body) {
        Ok(digests) => digests
            .into_iter()
            .filter(|d| d != EMPTY_SHA256)
            .map(|d| format!("cas/{d}"))
            .collect(),
        Err(e) => {
            debug!("{path}: not an ActionResult ({e}); stored without references");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests;
