//! The `reapi/` inspections: what the gateway's REAPI (gRPC) front asks the
//! adapter through `inspect-body`, and the keys each message makes an
//! entry depend on.
//!
//! The core stores blobs under `cas/{sha256}`, action results under
//! `ac/{sha256}` and Remote Asset references under `asset/...`; it walks
//! `Directory` trees and checks presence itself. Which digests a message
//! references is format knowledge, so it asks with `req.path`:
//!
//! | `req.path` | body | references |
//! | --- | --- | --- |
//! | `reapi/directory/{sha256}` | a `Directory` | `cas/{h}` for every file, `tree/{h}` for every child directory; not a `Directory` → fail 400 |
//! | `reapi/asset/{sha256}` | a `PushBlob`'s blob (empty with `x-reapi-body: omitted` beyond 4 MiB) | `cas/{sha256}` and what the URIs require (below) |
//! | `reapi/asset-directory/{sha256}` | empty (ignored) | `tree/{sha256}` and what the URIs require (below) |
//!
//! The push travels in request headers, each repeatable: `x-reapi-uri`
//! (one URI), `x-reapi-blob` and `x-reapi-directory` (the
//! `references_blobs` and `references_directories`, one `{sha256}/{size}`
//! each; a comma-separated list is accepted too). The keys each URI
//! requires, united over the URIs:
//!
//! - `urn:fdc:buildstream.build:2020:artifact:...` with a blob that parses
//!   as a `buildstream.v2.Artifact`: what [`proto::artifact`] names
//!   (`files` → `tree/`; `public_data`, logs, low and high diversity
//!   metadata → `cas/`), not the pushed references, which list optional
//!   trees BuildStream may never have uploaded.
//! - `urn:fdc:buildstream.build:2020:source:{64 hex}` with a blob that
//!   parses as a `buildstream.v2.Source`: its `files` → `tree/`.
//! - any BuildStream URI (`urn:fdc:buildstream.build:2020:`) of a directory
//!   asset: nothing more than the root.
//! - anything else, and a BuildStream blob whose body is omitted, empty or
//!   does not parse: every pushed reference (blobs → `cas/`, directories
//!   → `tree/`).
//!
//! Keys are `cas/` or `tree/` and 64 lower-case hex digits (upper case is
//! accepted), each once (the asset's own key first, then per rule its
//! blobs before its trees); the empty blob's hash
//! (`e3b0c442…b855`, which is also the empty `Directory`'s) is left out,
//! since it always exists and has nothing below it. A malformed path,
//! header or `Directory`, or a push without a URI, is refused with 400.
//! Client requests never reach these rules: the adapter's `plan` answers
//! 404 for any path but `cas/` and `ac/`.

use crate::{EMPTY_SHA256, proto};
use artgate_sdk::http::header_values;
use artgate_sdk::types::{Header, Rejection};
use std::collections::BTreeSet;
use std::fmt;

/// Prefix of every REAPI inspection path.
pub const PREFIX: &str = "reapi/";

/// URI prefix of BuildStream's artifact references (the value is a
/// `buildstream.v2.Artifact` blob).
pub const ARTIFACT_URN: &str = "urn:fdc:buildstream.build:2020:artifact:";

/// URI prefix of BuildStream's source references: followed by 64 hex
/// digits, an element's sources (a `buildstream.v2.Source` blob);
/// followed by `{kind}/{key}`, one source's files (a directory asset).
pub const SOURCE_URN: &str = "urn:fdc:buildstream.build:2020:source:";

/// URI prefix common to every BuildStream reference.
pub const BUILDSTREAM_URN: &str = "urn:fdc:buildstream.build:2020:";

/// Header carrying one URI of the push.
pub const URI_HEADER: &str = "x-reapi-uri";
/// Header carrying one `references_blobs` digest, `{sha256}/{size}`.
pub const BLOB_HEADER: &str = "x-reapi-blob";
/// Header carrying one `references_directories` digest, `{sha256}/{size}`.
pub const DIRECTORY_HEADER: &str = "x-reapi-directory";
/// Header saying the asset blob was too large to send: value `omitted`.
pub const BODY_HEADER: &str = "x-reapi-body";

/// Why an inspection is refused (each a 400 for the core).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReapiError {
    /// The path is not `reapi/{directory|asset|asset-directory}/{sha256}`;
    /// carries it, shortened.
    BadPath(String),
    /// The body of a `reapi/directory/` inspection is not a `Directory`.
    NotDirectory(proto::ProtoError),
    /// A digest header's value is not `{64 hex}/{decimal size}`.
    BadDigestHeader {
        /// The header's name.
        name: &'static str,
        /// Its value, shortened.
        value: String,
    },
    /// The `x-reapi-body` header has a value other than `omitted`.
    BadBodyHeader(String),
    /// The push names no URI.
    NoUri,
}

impl fmt::Display for ReapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReapiError::BadPath(p) => write!(
                f,
                "'{p}' is not a REAPI inspection path (reapi/directory/, reapi/asset/ or reapi/asset-directory/ and a sha256)."
            ),
            ReapiError::NotDirectory(e) => {
                write!(f, "The body is not a well-formed REAPI Directory: {e}.")
            }
            ReapiError::BadDigestHeader { name, value } => write!(
                f,
                "Header {name} value '{value}' is not a digest ({{64 hex digits}}/{{size}})."
            ),
            ReapiError::BadBodyHeader(v) => {
                write!(f, "Header {BODY_HEADER} value '{v}' is not 'omitted'.")
            }
            ReapiError::NoUri => write!(f, "The push names no URI (no {URI_HEADER} header)."),
        }
    }
}

impl std::error::Error for ReapiError {}

impl ReapiError {
    /// The verdict's rejection: 400 with the message.
    pub fn rejection(&self) -> Rejection {
        Rejection::new(400, self.to_string())
    }
}

/// The first 80 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Whether `path` is a REAPI inspection (handled by [`references`]).
pub fn is_reapi(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// What is inspected, with the lower-case hash of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspection {
    /// `reapi/directory/{hash}`: a `Directory` message.
    Directory(String),
    /// `reapi/asset/{hash}`: a `PushBlob` of the blob `hash`.
    Asset(String),
    /// `reapi/asset-directory/{hash}`: a `PushDirectory` of the root `hash`.
    AssetDirectory(String),
}

impl Inspection {
    /// Parses a `reapi/...` path.
    pub fn parse(path: &str) -> Result<Inspection, ReapiError> {
        let bad = || ReapiError::BadPath(shorten(path));
        let rest = path.strip_prefix(PREFIX).ok_or_else(bad)?;
        let (kind, hash) = rest.split_once('/').ok_or_else(bad)?;
        let hash = sha256_hex(hash).ok_or_else(bad)?;
        match kind {
            "directory" => Ok(Inspection::Directory(hash)),
            "asset" => Ok(Inspection::Asset(hash)),
            "asset-directory" => Ok(Inspection::AssetDirectory(hash)),
            _ => Err(bad()),
        }
    }
}

/// `s` in lower case when it is 64 hex digits.
fn sha256_hex(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// A `{64 hex}/{size}` digest header value → the lower-case hash. The
/// size is decimal digits and fits `int64`, as `Digest.size_bytes` does.
fn digest_value(name: &'static str, value: &str) -> Result<String, ReapiError> {
    let bad = || ReapiError::BadDigestHeader {
        name,
        value: shorten(value),
    };
    let (hash, size) = value.split_once('/').ok_or_else(bad)?;
    let hash = sha256_hex(hash).ok_or_else(bad)?;
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || size.parse::<i64>().is_err()
    {
        return Err(bad());
    }
    Ok(hash)
}

/// Every digest in the headers called `name` (one per header, or a
/// comma-separated list).
fn digest_headers(headers: &[Header], name: &'static str) -> Result<Vec<String>, ReapiError> {
    header_values(headers, name)
        .flat_map(|v| v.split(','))
        .map(|v| digest_value(name, v.trim()))
        .collect()
}

/// The keys an entry depends on, each once, without the empty blob.
#[derive(Default)]
struct Keys {
    keys: Vec<String>,
    seen: BTreeSet<String>,
}

impl Keys {
    fn add(&mut self, store: &str, hash: &str) {
        if hash == EMPTY_SHA256 {
            return;
        }
        let key = format!("{store}/{hash}");
        if self.seen.insert(key.clone()) {
            self.keys.push(key);
        }
    }

    fn blobs<'a>(&mut self, hashes: impl IntoIterator<Item = &'a String>) {
        hashes.into_iter().for_each(|h| self.add("cas", h));
    }

    fn trees<'a>(&mut self, hashes: impl IntoIterator<Item = &'a String>) {
        hashes.into_iter().for_each(|h| self.add("tree", h));
    }

    fn refs(&mut self, r: &proto::References) {
        self.blobs(&r.blobs);
        self.trees(&r.trees);
    }
}

/// What kind of asset a URI names, for the completeness rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriKind {
    /// A BuildStream artifact (`buildstream.v2.Artifact` blob).
    Artifact,
    /// A BuildStream element's sources (`buildstream.v2.Source` blob).
    ElementSources,
    /// Another BuildStream reference (e.g. one source's directory).
    BuildStream,
    /// Any other client's URI.
    Generic,
}

impl UriKind {
    /// Classifies a URI.
    pub fn of(uri: &str) -> UriKind {
        if uri.starts_with(ARTIFACT_URN) {
            UriKind::Artifact
        } else if uri
            .strip_prefix(SOURCE_URN)
            .is_some_and(|key| sha256_hex(key).is_some())
        {
            UriKind::ElementSources
        } else if uri.starts_with(BUILDSTREAM_URN) {
            UriKind::BuildStream
        } else {
            UriKind::Generic
        }
    }
}

/// The keys the inspection at `path` (a `reapi/...` path) says the entry
/// depends on, from the request `headers` and the `body`; see the module
/// documentation for the rules.
pub fn references(path: &str, headers: &[Header], body: &[u8]) -> Result<Vec<String>, ReapiError> {
    let mut keys = Keys::default();
    match Inspection::parse(path)? {
        Inspection::Directory(_) => {
            keys.refs(&proto::directory(body).map_err(ReapiError::NotDirectory)?);
        }
        Inspection::Asset(hash) => {
            keys.add("cas", &hash);
            let push = Push::read(headers)?;
            let body = match header_values(headers, BODY_HEADER).next() {
                None => Some(body),
                Some(v) if v.trim().eq_ignore_ascii_case("omitted") => None,
                Some(v) => return Err(ReapiError::BadBodyHeader(shorten(v))),
            }
            // An empty body is the empty blob, neither message.
            .filter(|b| !b.is_empty());
            for uri in &push.uris {
                let parsed = match (UriKind::of(uri), body) {
                    (UriKind::Artifact, Some(b)) => proto::artifact(b).ok(),
                    (UriKind::ElementSources, Some(b)) => proto::source(b).ok(),
                    _ => None,
                };
                match parsed {
                    Some(r) => keys.refs(&r),
                    None => push.all_into(&mut keys),
                }
            }
        }
        Inspection::AssetDirectory(hash) => {
            keys.add("tree", &hash);
            let push = Push::read(headers)?;
            for uri in &push.uris {
                if UriKind::of(uri) == UriKind::Generic {
                    push.all_into(&mut keys);
                }
            }
        }
    }
    Ok(keys.keys)
}

/// A push as the headers carry it.
struct Push<'a> {
    uris: Vec<&'a str>,
    blobs: Vec<String>,
    directories: Vec<String>,
}

impl<'a> Push<'a> {
    fn read(headers: &'a [Header]) -> Result<Push<'a>, ReapiError> {
        let uris: Vec<&str> = header_values(headers, URI_HEADER).collect();
        if uris.is_empty() {
            return Err(ReapiError::NoUri);
        }
        Ok(Push {
            uris,
            blobs: digest_headers(headers, BLOB_HEADER)?,
            directories: digest_headers(headers, DIRECTORY_HEADER)?,
        })
    }

    /// Every pushed reference is required.
    fn all_into(&self, keys: &mut Keys) {
        keys.blobs(&self.blobs);
        keys.trees(&self.directories);
    }
}
