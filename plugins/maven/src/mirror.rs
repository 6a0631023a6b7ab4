//! Pull-through mirrors of a Maven repository (see the crate docs for the
//! table of paths).

use crate::checksum;
use crate::layout::{self, Algorithm, Kind, Snapshot};
use crate::metadata;
use artgate_sdk::digest;
use artgate_sdk::prelude::*;

/// Largest checksum file read to verify an artifact.
const CHECKSUM_LIMIT: u32 = 4096;

/// Plans a request on a pull-through maven remote.
pub fn plan(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if let Some(refusal) = remote.refuse_unless_mirror_read(req, "maven", "Maven mirror") {
        return refusal;
    }
    let kind = layout::kind(&req.path);
    let by_patterns = match remote.classify_or_reject(&req.path) {
        Ok(c) => c,
        Err(refusal) => return *refusal,
    };
    if let Kind::Metadata {
        checksum: Some(alg),
        ..
    } = kind
    {
        return metadata_checksum(host, req, alg);
    }
    let class = match (&kind, by_patterns) {
        (_, PathClass::Mutable) => CacheClass::Mutable,
        (_, PathClass::Immutable) => CacheClass::Immutable,
        (Kind::File(f), _) if f.snapshot != Snapshot::NonUnique => CacheClass::Immutable,
        _ => CacheClass::Mutable,
    };
    let mut plan = CachePlan::new(req.path_and_query(), class).cache_not_found(true);
    if let Some(ct) = crate::content_type(&req.path, &kind) {
        plan = plan.content_type(ct);
    }
    match &kind {
        Kind::Metadata { .. } => plan = plan.inspect(metadata::LIMIT as u32),
        Kind::File(f)
            if class == CacheClass::Immutable
                && f.checksum.is_none()
                && !f.extension.ends_with(".asc") =>
        {
            match upstream_sha1(host, req) {
                Ok(Some(sha1)) => plan = plan.expected_checksum("sha1", &sha1),
                Ok(None) => {}
                Err(refusal) => return Decision::Reject(refusal),
            }
        }
        _ => {}
    }
    forward_get(req.upstream_target(), plan)
}

/// The plan a request for `path` (a checksum file of an immutable file)
/// gets, shared by [`upstream_sha1`] so both read one entry.
fn checksum_plan(path: String) -> CachePlan {
    CachePlan::immutable(path)
        .content_type("text/plain")
        .cache_not_found(true)
}

/// The SHA-1 the upstream publishes for the file at `req.path`, read
/// through the cache (`{path}.sha1`): `None` when it has none (404) or
/// the file is not a checksum (the file is then stored unverified, and
/// said so in the log); a refusal (502) when it cannot be read now, so an
/// upstream hiccup never leaves an unverified file stored for good.
fn upstream_sha1(host: &dyn Host, req: &Request) -> Result<Option<Vec<u8>>, Rejection> {
    let path = format!("{}.sha1", req.path);
    let answer = host.cache_send(
        &OutgoingRequest {
            method: "GET".into(),
            url: format!("/{}", http::encode_path(&path)),
            headers: Vec::new(),
            body: Vec::new(),
            use_credentials: true,
        },
        &checksum_plan(path.clone()),
        CHECKSUM_LIMIT,
    );
    match answer {
        Ok(r) if r.status == 200 => {
            let sha1 =
                checksum::read(&r.body, Algorithm::Sha1).and_then(|h| digest::decode_hex(&h));
            if sha1.is_none() {
                warn!(
                    "/{path} is not a SHA-1 checksum file; storing /{} unverified",
                    req.path
                );
            }
            Ok(sha1)
        }
        Ok(r) if matches!(r.status, 404 | 410) => {
            info!(
                "the upstream has no /{path}; storing /{} unverified",
                req.path
            );
            Ok(None)
        }
        Ok(r) => Err(Rejection::new(
            502,
            format!(
                "The upstream answered {} for /{path}, which /{} is checked against.",
                r.status, req.path
            ),
        )),
        Err(e) => Err(Rejection::new(
            502,
            format!(
                "/{path}, which /{} is checked against, could not be read: {e}.",
                req.path
            ),
        )),
    }
}

/// A metadata checksum file, computed from the metadata the gateway
/// serves (read through the cache), so the two always agree.
fn metadata_checksum(host: &dyn Host, req: &Request, alg: Algorithm) -> Decision {
    let Some(meta) = req
        .path
        .strip_suffix(alg.suffix())
        .and_then(|m| m.strip_suffix('.'))
    else {
        return Decision::reject(404, format!("/{} is not a checksum file.", req.path));
    };
    let plan = CachePlan::mutable(meta.to_owned())
        .content_type(media::content_type(meta))
        .cache_not_found(true);
    let answer = host.cache_send(
        &OutgoingRequest {
            method: "GET".into(),
            url: format!("/{}", http::encode_path(meta)),
            headers: Vec::new(),
            body: Vec::new(),
            use_credentials: true,
        },
        &plan,
        metadata::LIMIT as u32,
    );
    match answer {
        Ok(r) if r.status == 200 => {
            if let Err(e) = metadata::parse(&r.body) {
                // Stored without inspection (a fill for this request):
                // expire it, so the next read refetches and checks it.
                host.cache_expire(meta);
                return Decision::reject(
                    502,
                    format!("The upstream's /{meta} is not a Maven metadata document: {e}."),
                );
            }
            Decision::respond(
                DirectResponse::new(200, checksum::of(alg, &r.body))
                    .header("content-type", "text/plain"),
            )
        }
        Ok(r) if matches!(r.status, 404 | 410) => {
            Decision::reject(404, format!("The upstream has no /{meta}."))
        }
        Ok(r) => Decision::reject(
            502,
            format!("The upstream answered {} for /{meta}.", r.status),
        ),
        Err(e) => Decision::reject(502, format!("/{meta} could not be read: {e}.")),
    }
}

/// Checks an upstream metadata document before it is stored: anything
/// else (an error page answered with 200) is refused, so the stale copy
/// stays.
pub fn inspect(req: &Request, body: &[u8]) -> BodyVerdict {
    if !matches!(
        layout::kind(&req.path),
        Kind::Metadata { checksum: None, .. }
    ) {
        return BodyVerdict::default();
    }
    match metadata::parse(body) {
        Ok(_) => BodyVerdict::default(),
        Err(e) => {
            warn!(
                "the upstream's /{} is not a Maven metadata document: {e}",
                req.path
            );
            BodyVerdict {
                fail: Some(Rejection::new(
                    502,
                    format!(
                        "The upstream's /{} is not a Maven metadata document: {e}.",
                        req.path
                    ),
                )),
                ..BodyVerdict::default()
            }
        }
    }
}
