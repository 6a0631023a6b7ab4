//! Hosted Maven repositories: `mvn deploy` and reads, with the metadata
//! kept by the gateway.
//!
//! | request | answer |
//! | --- | --- |
//! | `PUT` of a file of a version | the body is spooled and hashed by the core (`stage-body`, never through the adapter) and stored under its path; a release file (or a timestamped snapshot file) that exists is `409`; then its digests are recorded and the version added to the metadata |
//! | `PUT` of its `.sha1`, `.sha256`, `.sha512` | checked against the recorded digest (`400` on a mismatch, `409` when the file was not uploaded first), not stored |
//! | `PUT` of its `.md5` | stored as uploaded |
//! | `PUT` of `maven-metadata.xml` (and checksums) | `201`; the plugin prefixes of a group-level document are kept, the rest is the gateway's to write |
//! | `GET` of `maven-metadata.xml` (and checksums) | the gateway's document |
//! | `GET` of a `.sha1`, `.sha256`, `.sha512` | from the recorded digest |
//! | `GET` of any other file | the stored file |
//! | `DELETE` of a file | removes it and its digests (the version stays listed) |
//!
//! **State** (the adapter's key-value store of the remote): the metadata
//! document of each directory under `meta/{dir}`, changed with
//! compare-and-set (concurrent deploys of one artifact both land), and
//! each file's SHA-1, SHA-256 and SHA-512 under `sum/{path}`.

use crate::checksum;
use crate::layout::{self, Algorithm, Kind, Snapshot, VersionFile};
use crate::metadata::{self, Metadata};
use artgate_sdk::kvlock;
use artgate_sdk::prelude::*;
use artgate_sdk::time::Utc;

/// Largest value the host keeps under one key (its `kv-set` limit).
const KV_VALUE_LIMIT: usize = 64 * 1024;

/// Longest key the host keeps.
const KV_KEY_LIMIT: usize = 512;

/// Largest checksum file read from a client.
const CHECKSUM_LIMIT: u32 = 4096;

/// Compare-and-set attempts before a metadata update gives up (503).
const CAS_ATTEMPTS: usize = 32;

/// Plans a request on a hosted maven remote.
pub fn plan(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    let kind = layout::kind(&req.path);
    let result = match (req.method.as_str(), &kind) {
        ("GET" | "HEAD", Kind::Metadata { dir, checksum }) => read_metadata(host, dir, *checksum),
        ("GET" | "HEAD", Kind::File(f)) => Ok(read_file(host, &req.path, f, &kind)),
        ("GET" | "HEAD", Kind::Other) => Ok(Decision::hosted_read(HostedRead::new(&req.path))),
        ("GET" | "HEAD", Kind::Directory) => Err(Rejection::new(
            404,
            format!(
                "Remote '{}' serves files, not directory listings.",
                remote.name
            ),
        )),
        ("PUT", Kind::Metadata { dir, checksum }) => put_metadata(host, req, dir, *checksum),
        ("PUT", Kind::File(f)) => put_file(host, req, f, &kind),
        ("DELETE", Kind::File(f)) => Ok(delete(host, &req.path, f)),
        ("PUT" | "DELETE", _) => Err(Rejection::new(
            400,
            format!(
                "/{} is not a file of a version ({{group}}/{{artifactId}}/{{version}}/{{artifactId}}-{{version}}[-{{classifier}}].{{extension}}) or maven-metadata.xml.",
                req.path
            ),
        )),
        (m, _) => Err(Rejection::new(
            405,
            format!(
                "Remote '{}' is a hosted Maven repository: it takes GET, HEAD, PUT and DELETE, not {m}.",
                remote.name
            ),
        )),
    };
    result.unwrap_or_else(Decision::Reject)
}

/// The key of a directory's metadata document.
fn meta_key(dir: &str) -> String {
    format!("meta/{dir}")
}

/// The key of a file's digests.
fn sum_key(path: &str) -> String {
    format!("sum/{path}")
}

/// The key of the lock a file replaced in place is written under.
fn lock_key(path: &str) -> String {
    format!("lock/{path}")
}

/// A file's recorded digest by `alg` (not md5, which the core does not
/// compute).
fn recorded(host: &dyn Host, path: &str, alg: Algorithm) -> Option<String> {
    let sums = host.kv_get(&sum_key(path))?;
    let sums = String::from_utf8(sums).ok()?;
    let mut parts = sums.split(' ');
    let (sha1, sha256, sha512) = (parts.next()?, parts.next()?, parts.next()?);
    match alg {
        Algorithm::Md5 => None,
        Algorithm::Sha1 => Some(sha1.to_owned()),
        Algorithm::Sha256 => Some(sha256.to_owned()),
        Algorithm::Sha512 => Some(sha512.to_owned()),
    }
}

fn text(body: impl Into<Vec<u8>>, content_type: &str) -> Decision {
    Decision::respond(
        DirectResponse::new(200, body)
            .header("content-type", content_type)
            .header("cache-control", "no-cache"),
    )
}

fn created() -> Decision {
    Decision::respond(DirectResponse::new(201, Vec::new()))
}

fn read_metadata(
    host: &dyn Host,
    dir: &str,
    alg: Option<Algorithm>,
) -> Result<Decision, Rejection> {
    let doc = host.kv_get(&meta_key(dir)).ok_or_else(|| {
        Rejection::new(
            404,
            format!("Nothing was deployed under /{dir}/, so it has no metadata."),
        )
    })?;
    Ok(match alg {
        None => text(doc, "application/xml"),
        Some(alg) => text(checksum::of(alg, &doc), "text/plain"),
    })
}

fn read_file(host: &dyn Host, path: &str, f: &VersionFile<'_>, kind: &Kind<'_>) -> Decision {
    if let Some(alg) = f.checksum
        && let Some(hex) = recorded(host, f.base_path(path), alg)
    {
        return text(hex, "text/plain");
    }
    let mut read = HostedRead::new(path);
    if let Some(ct) = crate::content_type(path, kind) {
        read = read.content_type(ct);
    }
    Decision::hosted_read(read)
}

/// A client's metadata upload: acknowledged; a group level document's
/// plugin prefixes are kept.
fn put_metadata(
    host: &dyn Host,
    req: &Request,
    dir: &str,
    alg: Option<Algorithm>,
) -> Result<Decision, Rejection> {
    let limit = if alg.is_some() {
        CHECKSUM_LIMIT
    } else {
        metadata::LIMIT as u32
    };
    let Some(body) = &req.body else {
        if req.body_too_large {
            return Err(Rejection::new(
                413,
                format!("The upload of /{} is larger than {limit} bytes.", req.path),
            ));
        }
        return Ok(Decision::read_body(limit));
    };
    if alg.is_some() {
        return Ok(created());
    }
    let theirs = metadata::parse(body).map_err(|e| {
        Rejection::new(
            400,
            format!("/{} is not a Maven metadata document: {e}.", req.path),
        )
    })?;
    if !theirs.plugins.is_empty() {
        update(host, dir, |m| m.merge_plugins(&theirs.plugins))?;
    }
    Ok(created())
}

/// A file of a version: stored, its digests recorded, the metadata
/// updated; or a checksum file checked against those digests.
fn put_file(
    host: &dyn Host,
    req: &Request,
    f: &VersionFile<'_>,
    kind: &Kind<'_>,
) -> Result<Decision, Rejection> {
    let path = req.path.as_str();
    let refuse_overwrite = f.snapshot != Snapshot::NonUnique;
    match f.checksum {
        Some(Algorithm::Md5) => {
            return Ok(Decision::hosted_write(
                HostedWrite::new(path)
                    .content_type("text/plain")
                    .refuse_overwrite(refuse_overwrite),
            ));
        }
        Some(alg) => return put_checksum(host, req, f.base_path(path), alg),
        None => {}
    }
    let (artifact_dir, version_dir) = dirs(f);
    // Refuse before storing what the metadata could not take.
    let fits = |dir: &str, more: usize| {
        host.kv_get(&meta_key(dir))
            .is_none_or(|d| d.len() + more < KV_VALUE_LIMIT)
    };
    if !fits(&artifact_dir, 64 + f.version.len()) || !fits(&version_dir, 512) {
        return Err(Rejection::new(
            507,
            format!(
                "{}:{} has more versions or snapshot files than this repository's metadata can list.",
                layout::group_id(f.group),
                f.artifact
            ),
        ));
    }
    // The keys this deploy writes must fit the key-value store, or the
    // file would be stored and then never listed.
    if [sum_key(path), meta_key(&version_dir), lock_key(path)]
        .iter()
        .any(|k| k.len() > KV_KEY_LIMIT)
    {
        return Err(Rejection::new(
            414,
            format!("/{path} is longer than this repository keeps records for."),
        ));
    }
    let staged = host.stage_body()?;
    let sha256 = staged.sha256.trim_start_matches("sha256:");
    // A file replaced in place (a non-timestamped snapshot) is stored and
    // its digests recorded by one deploy at a time, so the `.sha1` served
    // is always the stored file's.
    let _held = if refuse_overwrite {
        None
    } else {
        Some(kvlock::lock_or_busy(
            host,
            &lock_key(path),
            &req.id,
            30,
            &format!("/{path}"),
        )?)
    };
    match host.hosted_commit(0, path, crate::content_type(path, kind), refuse_overwrite) {
        Ok(()) => {}
        // The same bytes again (a client retrying a deploy whose answer it
        // lost, or one that failed after the file was stored): finish the
        // job below, so the version is listed.
        Err(r)
            if r.status == 409
                && recorded(host, path, Algorithm::Sha256).as_deref() == Some(sha256) =>
        {
            info!("/{path} was deployed before with the same content; updating the metadata again");
        }
        Err(r) if r.status == 409 => {
            return Err(Rejection::new(
                409,
                if f.snapshot == Snapshot::No {
                    format!("/{path} exists already; a released version cannot be redeployed.")
                } else {
                    format!(
                        "/{path} exists already with other content; a timestamped snapshot file is written once."
                    )
                },
            ));
        }
        Err(r) => return Err(r),
    }
    let sums = format!("{} {sha256} {}", staged.sha1, staged.sha512);
    let key = sum_key(path);
    let before = host.kv_get(&key);
    if before.as_deref() != Some(sums.as_bytes())
        && !host.kv_compare_and_set(&key, before.as_deref(), sums.as_bytes(), 0)
    {
        return Err(Rejection::new(
            503,
            format!("/{path} was stored, but its digests could not be recorded; deploy it again."),
        ));
    }
    let now = Utc::now().map(|t| t.compact()).unwrap_or_default();
    let (group_id, artifact_id) = (layout::group_id(f.group), f.artifact.to_owned());
    update(host, &artifact_dir, |m| {
        m.group_id.clone_from(&group_id);
        m.artifact_id.clone_from(&artifact_id);
        m.add_version(f.version, &now)
    })?;
    if let Some(tb) = f.timestamp_build() {
        update(host, &version_dir, |m| {
            m.group_id.clone_from(&group_id);
            m.artifact_id.clone_from(&artifact_id);
            m.version = f.version.to_owned();
            m.add_snapshot_file(tb, f.classifier, f.extension, f.file_version, &now);
            true
        })?;
    }
    info!("deployed /{path} ({} bytes)", staged.size);
    Ok(created())
}

/// The artifact's and the version's directories.
fn dirs(f: &VersionFile<'_>) -> (String, String) {
    let artifact = format!("{}/{}", f.group, f.artifact);
    let version = format!("{artifact}/{}", f.version);
    (artifact, version)
}

/// A client's `.sha1`/`.sha256`/`.sha512` of the file at `base`.
fn put_checksum(
    host: &dyn Host,
    req: &Request,
    base: &str,
    alg: Algorithm,
) -> Result<Decision, Rejection> {
    let Some(body) = &req.body else {
        if req.body_too_large {
            return Err(Rejection::new(
                400,
                format!("/{} is not a {} checksum file.", req.path, alg.suffix()),
            ));
        }
        return Ok(Decision::read_body(CHECKSUM_LIMIT));
    };
    let theirs = checksum::read(body, alg).ok_or_else(|| {
        Rejection::new(
            400,
            format!("/{} is not a {} checksum file.", req.path, alg.suffix()),
        )
    })?;
    let ours = recorded(host, base, alg).ok_or_else(|| {
        Rejection::new(
            409,
            format!(
                "/{} names /{base}, which is not in this repository; upload it first.",
                req.path
            ),
        )
    })?;
    if theirs != ours {
        return Err(Rejection::new(
            400,
            format!(
                "/{} says {theirs}, but the stored /{base} has {} {ours}.",
                req.path,
                alg.suffix()
            ),
        ));
    }
    Ok(created())
}

/// Removes a file and its recorded digests.
fn delete(host: &dyn Host, path: &str, f: &VersionFile<'_>) -> Decision {
    if f.checksum.is_none() {
        host.kv_delete(&sum_key(path));
    }
    Decision::hosted_delete(path)
}

/// Changes the metadata document of `dir` with `change` (which says
/// whether it changed anything), by compare-and-set, so that concurrent
/// deploys do not lose each other's versions.
fn update(
    host: &dyn Host,
    dir: &str,
    change: impl Fn(&mut Metadata) -> bool,
) -> Result<(), Rejection> {
    let key = meta_key(dir);
    for _ in 0..CAS_ATTEMPTS {
        let old = host.kv_get(&key);
        let mut m = match old.as_deref().map(metadata::parse) {
            None => Metadata::default(),
            Some(Ok(m)) => m,
            // Never start over from nothing: that would drop every version.
            Some(Err(e)) => {
                error!("the stored metadata of /{dir}/ does not parse: {e}");
                return Err(Rejection::new(
                    500,
                    format!("The stored metadata of /{dir}/ is damaged, so it was not changed."),
                ));
            }
        };
        if !change(&mut m) {
            return Ok(());
        }
        let doc = m.render();
        if doc.len() > KV_VALUE_LIMIT {
            return Err(Rejection::new(
                507,
                format!("The metadata of /{dir}/ would be larger than this repository keeps."),
            ));
        }
        if host.kv_compare_and_set(&key, old.as_deref(), doc.as_bytes(), 0) {
            return Ok(());
        }
    }
    Err(Rejection::new(
        503,
        format!("The metadata of /{dir}/ is being changed by other deploys; try again."),
    ))
}
