//! The built-in `maven` adapter: Maven repository mirrors whose artifacts
//! are verified against the upstream's checksum files, and hosted Maven
//! repositories (`mvn deploy`) whose `maven-metadata.xml` the gateway keeps.
//!
//! Package type `maven`. A remote is a Maven repository URL
//! (`http://gateway/api/v1/remote/{remote}`) for a `settings.xml` mirror or
//! a `<repository>`; a virtual remote over a hosted and a pull-through
//! maven remote is the usual "group".
//!
//! ## Pull-through ([`mirror`])
//!
//! `GET`/`HEAD` of `{path}` is fetched from the same path on the remote's
//! upstreams and cached under it:
//!
//! | path | class | verified |
//! | --- | --- | --- |
//! | a release file `{group}/{artifactId}/{version}/{artifactId}-{version}[-{classifier}].{ext}` | immutable | against the upstream's `.sha1`, when it has one |
//! | a timestamped snapshot file `…/{v}-SNAPSHOT/{artifactId}-{v}-{yyyyMMdd.HHmmss}-{n}…` | immutable | as a release file |
//! | a snapshot file named by its version (`…-SNAPSHOT.jar`, overwritten in place) | mutable | no |
//! | a checksum file (`.md5`, `.sha1`, `.sha256`, `.sha512`) or signature (`.asc`) of one of those | as the file | no |
//! | `maven-metadata.xml` (group, artifact or snapshot level) | mutable; a body that is not a metadata document is refused (502) and the stale copy kept | — |
//! | `maven-metadata.xml.{md5,sha1,sha256,sha512}` | computed from the metadata the gateway serves, never fetched | — |
//! | a directory, anything else (`archetype-catalog.xml`, `.index/`) | mutable | no |
//!
//! A file is verified by reading its `.sha1` through the cache first (one
//! small request on a miss, kept for Maven, which asks for it next): the
//! core checks the file's SHA-1 while it streams, and a file that does not
//! match is never stored (the client's transfer is cut off; the gateway
//! logs the mismatch). A file whose upstream has no `.sha1` is stored
//! unverified. Every upstream 404 is cached for the remote's
//! `negative_ttl` (Maven asks every repository it knows for each file).
//! A path matching one of the remote's `mutable_patterns` is mutable, one
//! matching `immutable_patterns` immutable, whatever the table says.
//!
//! Maven sends `Cache-Control: no-cache` with every request. The core
//! honours it only for mutable and negative entries (metadata is then
//! revalidated, which is what `mvn -U` relies on); immutable files are
//! served from the store without an upstream request. Set the remote's
//! `no_cache_revalidates_404 = false` to keep its 404s for Maven too
//! (in a group of several mirrors, each build would otherwise ask every
//! upstream that lacks an artifact again).
//!
//! ## Hosted ([`hosted`])
//!
//! `mvn deploy` (HTTP `PUT`s of each file, its checksums, then the
//! metadata) with a `write` token. Files are stored as they come (a
//! release file that exists is `409`; snapshot files may be replaced);
//! the `.sha1`/`.sha256`/`.sha512` a client uploads are checked against
//! the digests the gateway computed while storing the file (`400` on a
//! mismatch) and served from them; `.md5` files are stored as uploaded.
//! The gateway keeps `maven-metadata.xml` itself: the version list of
//! each artifact and the latest build of each snapshot, updated as files
//! arrive; the metadata a client uploads is acknowledged and only its
//! plugin prefixes (group level) are kept.

use artgate_sdk::prelude::*;

pub mod checksum;
// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod hosted;
pub mod layout;
pub mod metadata;
pub mod mirror;
#[cfg(test)]
mod tests;

/// The maven adapter.
pub struct Maven;

impl Adapter for Maven {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("maven", env!("CARGO_PKG_VERSION"), ["maven"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan_with(&WasmHost, &remote, &req)
    }

    fn inspect_body(
        _remote: RemoteInfo,
        req: Request,
        _resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        mirror::inspect(&req, &body)
    }
}

artgate_sdk::export_adapter!(Maven, stateless, accepts_every_response);

/// Plans a request with `host`'s capabilities.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.is_hosted() {
        hosted::plan(host, remote, req)
    } else {
        mirror::plan(host, remote, req)
    }
}

/// The content type of a file of a version or a checksum file.
pub fn content_type(path: &str, kind: &layout::Kind<'_>) -> Option<&'static str> {
    match kind {
        layout::Kind::Directory => None,
        layout::Kind::Metadata {
            checksum: Some(_), ..
        }
        | layout::Kind::File(layout::VersionFile {
            checksum: Some(_), ..
        }) => Some("text/plain"),
        _ => Some(media::content_type(path)),
    }
}
