//! The built-in `deb` adapter: pull-through mirrors of Debian archives (apt
//! repositories), index files verified against the suite's Release.
//!
//! Package type `deb`, pull-through only. apt reaches a remote with a
//! sources line such as
//!
//! ```text
//! deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://gateway:8080/api/v1/remote/debian/ bookworm main
//! ```
//!
//! `GET`/`HEAD` of `{path}` is forwarded as `GET /{path}` to the remote's
//! upstreams (failover, the remote's credentials). `{dir}` below is the
//! directory of a suite's Release files (`dists/bookworm`, or
//! `debian/dists/bookworm` when the archive sits below the upstream's base
//! URL; a flat repository's own directory):
//!
//! | path | class | cache key | verified |
//! | --- | --- | --- | --- |
//! | `{dir}/InRelease`, `{dir}/Release` | mutable (the remote's `mutable_ttl` and validator); inspected (at most [`INSPECT_LIMIT`]) | the path | no (apt checks the signature); a body that is not a Release file is refused with 502 and the stored copy stays |
//! | `{dir}/Release.gpg` | mutable | the path | no |
//! | an index file `{dir}` lists (`main/binary-amd64/Packages.xz`, `main/i18n/Translation-en.bz2`, `main/Contents-amd64.gz`, a component's `Release`, …) | mutable; expired at once by a Release that changes its digest | `/{path}@{algorithm}:{hex}` | yes, against the strongest digest the Release lists (SHA512, SHA256, SHA1) |
//! | `…/by-hash/SHA512/{hex}`, `…/SHA256/{hex}`, `…/SHA1/{hex}` | immutable | the path | yes, against the name |
//! | `…/by-hash/MD5Sum/{hex}` | immutable | the path | no (the core does not verify MD5) |
//! | an index file `{dir}` does not list (or lists with MD5 only), or of a suite whose Release cannot be read | mutable | the path | no |
//! | anything under `pool/`; `*.deb`, `*.udeb`, `*.ddeb`, `*.dsc`, `*.changes`, `*.buildinfo`, `*.tar.*`, `*.diff.gz` | immutable | the path | no (apt checks them against `Packages`/`Sources`) |
//! | a directory | mutable | the path | — |
//! | anything else (`README`, `ls-lR.gz`, keyrings, `project/trace/…`) | mutable | the path | — |
//!
//! Every class caches upstream 404s for the remote's `negative_ttl`.
//! Content types go by name: `application/vnd.debian.binary-package` for
//! packages, `application/gzip`, `application/x-xz`, `application/x-bzip2`,
//! `application/x-lzma`, `application/zstd` for compressed indexes,
//! `text/plain; charset=utf-8` for Release files, uncompressed indexes and
//! `.dsc`/`.changes`/`.buildinfo`, `application/pgp-signature` for
//! `Release.gpg`, else `application/octet-stream` (directories keep the
//! upstream's). A path matching the remote's `mutable_patterns` makes a
//! package file mutable, and `immutable_patterns` make "anything else"
//! immutable; Release files, index files and `by-hash/` names keep their
//! classes whatever the patterns say.
//!
//! **Index files are verified against the Release the gateway saw.**
//! `inspect-body` parses every `InRelease`/`Release` the gateway fetches
//! ([`release`]) and remembers, per release directory, each listed file's
//! size and strongest digest in the key-value store ([`state`]; written
//! only once the Release is stored). A request for a listed index file by
//! its name is then forwarded with that digest as the expected digest, so
//! a corrupted or substituted file (an upstream caught mid-sync, a
//! tampered mirror) is never stored or served whole, and cached under a
//! key naming the digest (`/…/Packages.xz@sha512:…`; no request path
//! starts with `/`, so no client can name it directly), so a new Release
//! makes a new entry and a refetch never mixes two releases. The entry is
//! mutable because the core remembers which key a path was planned to and
//! serves that key, without asking the adapter, while it is fresh: when a
//! new Release changes a file's digest (or drops the file), `inspect-body`
//! expires the entry its name was planned to (`cache-expire`) so that the
//! next request is planned again; the remote's TTL bounds it otherwise
//! (then revalidated like any mutable entry, still verified). apt's own
//! requests by `by-hash/` name (the Release says `Acquire-By-Hash: yes`;
//! apt asks by the strongest digest) need none of this: the name is the
//! digest, the entry immutable.
//!
//! **Before any Release is known.** A request for an index file of a
//! suite whose Release the adapter has not seen (a client that skipped the
//! Release, a store that lost its key-value entries) makes the adapter
//! read the suite's `InRelease` (else `Release`) through the cache
//! (`cache-send`, under the same key and plan a client's request would
//! use, so it shares that entry), parse it and remember it, as the npm
//! adapter looks up a packument before a tarball. When no Release can be
//! read (the upstream is down with nothing stored, the body is no Release
//! file), the index file is passed through **mutable and unverified**
//! under its own path rather than refused: apt verifies every index file
//! against the Release it holds, so the gateway's check protects the
//! cache, not the client. The same holds for files the Release does not
//! list, which apt never asks for.
//!
//! **Prefetch.** The adapter remembers which index files clients have
//! asked for, per release directory, and how (by name or by `by-hash/`
//! name; the path relative to the directory, so
//! `main/binary-amd64/Packages.xz` and `main/i18n/Translation-en.bz2`, in
//! the compression each client chose). When a Release is fetched (a new
//! one, or one refetched after its TTL), `inspect-body` returns those of
//! them it lists with a verifiable digest as prefetches, in the form they
//! were asked for (by `by-hash/` name only while it says
//! `Acquire-By-Hash: yes`), so the core fetches them into the cache in the
//! background, and an upstream outage right after a release change still
//! leaves clients a consistent archive. A new `Release` also expires and
//! prefetches its `Release.gpg`, so the two never disagree for a TTL. The
//! remote option `prefetch = "none"` turns prefetching off; `"requested"`
//! is the default.
//!
//! **Signatures stay apt's job.** The gateway never strips, alters or
//! checks `InRelease` signatures or `Release.gpg`; apt verifies them with
//! its own keyring (`signed-by`). What the gateway verifies is that each
//! index file it stores is the one the Release it stored lists.
//!
//! Other methods are refused with 405 (use `PUT /cache/flush` to drop
//! entries); hosted remotes with 400 (the adapter only mirrors).

use artgate_sdk::prelude::*;

pub mod layout;
pub mod release;
pub mod state;

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;

use layout::{Candidate, Kind, ReleaseFile};
use release::{Algo, Release};
use state::{Entry, Form, Known};

/// Largest `InRelease`/`Release` the adapter inspects or reads (Debian's
/// and Ubuntu's are a few hundred KiB; a larger body fails that request
/// with 502 and stores nothing).
pub const INSPECT_LIMIT: u32 = 8 << 20;

/// The deb adapter.
pub struct Deb;

impl Adapter for Deb {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("deb", env!("CARGO_PKG_VERSION"), ["deb"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan_with(&WasmHost, &remote, &req)
    }

    fn inspect_body(
        remote: RemoteInfo,
        req: Request,
        _resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        inspect_with(&WasmHost, &remote, &req, &body)
    }
}

artgate_sdk::export_adapter!(Deb, stateless, accepts_every_response);

/// Which index files a new Release prefetches (remote option `prefetch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefetchMode {
    /// Those clients have asked for in the release directory (the
    /// default).
    Requested,
    /// None.
    Off,
}

/// A `prefetch` option that is neither `none` nor `requested`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefetchOptionError {
    /// The remote's name.
    pub remote: String,
    /// The value as configured.
    pub value: String,
}

impl std::fmt::Display for PrefetchOptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Remote '{}' has an invalid option prefetch {:?}; give \"requested\" or \"none\".",
            self.remote, self.value
        )
    }
}

impl std::error::Error for PrefetchOptionError {}

impl From<PrefetchOptionError> for Rejection {
    /// A 500: the remote's configuration is wrong, not the request.
    fn from(e: PrefetchOptionError) -> Rejection {
        Rejection::new(500, e.to_string())
    }
}

impl PrefetchMode {
    /// The remote's `prefetch` option: absent, `requested` (or `true`,
    /// `on`) → [`PrefetchMode::Requested`]; `none` (or `false`, `off`) →
    /// [`PrefetchMode::Off`]; any case.
    pub fn of(remote: &RemoteInfo) -> Result<PrefetchMode, PrefetchOptionError> {
        let Some(value) = remote.option("prefetch") else {
            return Ok(PrefetchMode::Requested);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "requested" | "true" | "on" => Ok(PrefetchMode::Requested),
            "none" | "false" | "off" => Ok(PrefetchMode::Off),
            _ => Err(PrefetchOptionError {
                remote: remote.name.clone(),
                value: value.to_owned(),
            }),
        }
    }
}

/// Plans a request, reading and writing what the adapter remembers
/// through `host`.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.is_hosted()
        && let Some(refusal) = remote.refuse_unless_mirror_read(req, "deb", "Debian mirror")
    {
        return refusal;
    }
    if !req.is_read() {
        return Decision::reject(
            405,
            format!(
                "Remote '{}' is a pull-through Debian mirror and takes no {}; use PUT /cache/flush?remote={} to drop cached entries.",
                remote.name, req.method, remote.name
            ),
        );
    }
    // Only a new Release reads it; a wrong value is the operator's
    // error, shown on every request as other option errors are.
    if let Err(e) = PrefetchMode::of(remote) {
        return Decision::Reject(e.into());
    }
    match layout::kind(&req.path) {
        Kind::Release { file, .. } => forward_get(
            req.upstream_target(),
            release_plan(req.path_and_query(), &req.path, file),
        ),
        Kind::ByHash { dir, algo, hex } => by_hash(host, req, &dir, algo, &hex),
        Kind::ByHashUnknown => Decision::reject(
            404,
            format!(
                "'/{}' is not a by-hash name: the directory must be MD5Sum, SHA1, SHA256 or SHA512.",
                req.path
            ),
        ),
        Kind::Index => index(host, req),
        Kind::Package => by_patterns(remote, req, CacheClass::Immutable),
        Kind::Other => by_patterns(remote, req, CacheClass::Mutable),
        Kind::Directory => forward_get(
            req.upstream_target(),
            CachePlan::mutable(req.path_and_query()).cache_not_found(true),
        ),
    }
}

/// The plan of a Release file under `key` (a client's request, or the
/// adapter's own lookup, which cannot inspect).
fn release_plan(key: String, path: &str, file: ReleaseFile) -> CachePlan {
    let plan = CachePlan::mutable(key)
        .content_type(layout::content_type(path))
        .cache_not_found(true);
    if file.has_text() {
        plan.inspect(INSPECT_LIMIT)
    } else {
        plan
    }
}

/// A package or other file: `default` unless the remote's patterns say
/// otherwise (`mutable_patterns` win for packages, `immutable_patterns`
/// for the rest).
fn by_patterns(remote: &RemoteInfo, req: &Request, default: CacheClass) -> Decision {
    let class = match remote.classify_or_reject(&req.path) {
        Err(refusal) => return *refusal,
        Ok(PathClass::Mutable) => CacheClass::Mutable,
        Ok(PathClass::Immutable) => CacheClass::Immutable,
        Ok(PathClass::Unmatched) => default,
    };
    forward_get(
        req.upstream_target(),
        CachePlan::new(req.path_and_query(), class)
            .content_type(layout::content_type(&req.path))
            .cache_not_found(true),
    )
}

/// Joins the non-empty `parts` with `/`.
fn join_all(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// The `by-hash/` path of the file `rel` of the release directory `dir`
/// with digest `entry`.
pub fn by_hash_path(dir: &str, rel: &str, entry: &Entry) -> String {
    join_all(&[
        dir,
        layout::parent(rel),
        "by-hash",
        entry.algo.name(),
        &entry.hex,
    ])
}

/// The key of the entry of the file `rel` of the release directory `dir`
/// asked for by name, while the Release lists it with `entry`:
/// `/{dir}/{rel}@{algorithm}:{hex}`. No request path starts with `/`, so
/// no request can name this entry but through the adapter.
pub fn by_name_key(dir: &str, rel: &str, entry: &Entry) -> String {
    format!(
        "/{}@{}",
        layout::join(dir, rel),
        expected(entry.algo, &entry.hex).unwrap_or_default()
    )
}

/// `algo:hex` as the core's expected digest, for the algorithms it
/// verifies.
fn expected(algo: Algo, hex: &str) -> Option<String> {
    algo.core_name()
        .map(|name| format!("{name}:{}", hex.to_ascii_lowercase()))
}

/// A `by-hash/` name: immutable, verified by the name.
fn by_hash(host: &dyn Host, req: &Request, dir: &str, algo: Algo, hex: &str) -> Decision {
    if !algo.is_digest(hex) {
        return Decision::reject(
            404,
            format!(
                "'/{}' is not a by-hash name: {} digests have {} hex digits.",
                req.path,
                algo.name(),
                algo.hex_len()
            ),
        );
    }
    let hex = hex.to_ascii_lowercase();
    // Which file this is (for its content type and the prefetch list),
    // from the Release seen for its suite.
    let known = layout::candidates(&layout::join(dir, "by-hash"))
        .into_iter()
        .find_map(|c| {
            let rel = state::by_digest(host, &c.dir, layout::parent(&c.rel), algo, &hex)?;
            Some((c.dir, rel))
        });
    let content_type = match &known {
        Some((_, rel)) => layout::content_type(rel),
        None => media::OCTET_STREAM,
    };
    if let Some((rdir, rel)) = &known {
        state::want(host, rdir, rel, Form::ByHash);
    }
    let mut plan = CachePlan::immutable(req.path.clone())
        .content_type(content_type)
        .cache_not_found(true);
    plan.expected_digest = expected(algo, &hex);
    forward_get(req.upstream_target(), plan)
}

/// An index file: by the digest its suite's Release lists, else mutable
/// and unverified.
fn index(host: &dyn Host, req: &Request) -> Decision {
    let candidates = layout::candidates(&req.path);
    let mut release_seen = false;
    for c in &candidates {
        match state::lookup(host, &c.dir, &c.rel) {
            Known::Listed(entry) => return verified(host, req, c, &entry),
            Known::NotListed => release_seen = true,
            Known::Unknown => {}
        }
    }
    if !release_seen {
        match look_up(host, &candidates) {
            Ok(Some((c, entry))) => return verified(host, req, &c, &entry),
            Ok(None) => {}
            Err(why) => warn!("/{}: served unverified: {why}", req.path),
        }
    }
    debug!(
        "/{}: not listed by its suite's Release; served mutable and unverified",
        req.path
    );
    forward_get(
        req.upstream_target(),
        CachePlan::mutable(req.path_and_query())
            .content_type(layout::content_type(&req.path))
            .cache_not_found(true),
    )
}

/// A listed index file asked for by name: verified against the digest
/// the Release lists, under a key naming that digest
/// ([`by_name_key`]). Mutable, so that the core asks the adapter again
/// once it expires (it remembers which key a path was planned to and
/// serves that key while it is fresh): after the remote's TTL, or at once
/// when a new Release changes the digest ([`inspect_with`]).
fn verified(host: &dyn Host, req: &Request, c: &Candidate, entry: &Entry) -> Decision {
    state::want(host, &c.dir, &c.rel, Form::Name);
    let mut plan = CachePlan::mutable(by_name_key(&c.dir, &c.rel, entry))
        .content_type(layout::content_type(&req.path))
        .cache_not_found(true);
    plan.expected_digest = expected(entry.algo, &entry.hex);
    forward_get(req.upstream_target(), plan)
}

/// Reads the Release of each candidate directory through the cache until
/// one lists the file; remembers every Release read. `Ok(None)`: read,
/// but none lists it; `Err`: no Release could be read (the first failure
/// ends the lookup: the upstream would fail the next one too).
fn look_up(
    host: &dyn Host,
    candidates: &[Candidate],
) -> Result<Option<(Candidate, Entry)>, String> {
    let mut read_one = false;
    for c in candidates {
        if let Some(release) = read_release(host, &c.dir)? {
            read_one = true;
            state::remember(host, &c.dir, &release);
            if let Some(entry) = release.files.get(&c.rel).and_then(Entry::of) {
                return Ok(Some((c.clone(), entry)));
            }
        }
    }
    if read_one {
        Ok(None)
    } else {
        Err("the upstream has no InRelease or Release file for it".into())
    }
}

/// The Release of `dir` read through the cache: its `InRelease`, else its
/// `Release`; `Ok(None)` when the upstream has neither (404).
fn read_release(host: &dyn Host, dir: &str) -> Result<Option<Release>, String> {
    for file in [ReleaseFile::InRelease, ReleaseFile::Release] {
        let key = layout::join(dir, file.name());
        let mut plan = release_plan(key.clone(), &key, file);
        plan.inspect_limit = None;
        let answer = host
            .cache_send(
                &OutgoingRequest {
                    method: "GET".into(),
                    url: format!("/{}", http::encode_path(&key)),
                    headers: Vec::new(),
                    body: Vec::new(),
                    use_credentials: true,
                },
                &plan,
                INSPECT_LIMIT,
            )
            .map_err(|e| format!("/{key} could not be read ({e})"))?;
        match answer.status {
            200 => {
                return match release::parse(&answer.body) {
                    Ok(r) => Ok(Some(r)),
                    Err(e) => {
                        // Stored by the lookup, which cannot refuse a body:
                        // make the next request fetch it again.
                        host.cache_expire(&key);
                        Err(format!("/{key} is not a Release file ({e})"))
                    }
                };
            }
            404 | 410 => continue,
            s => return Err(format!("the upstream answered {s} for /{key}")),
        }
    }
    Ok(None)
}

/// Inspects a fetched `InRelease`/`Release`: refuses one that does not
/// parse, remembers what it lists, and asks for the prefetches.
pub fn inspect_with(
    host: &dyn Host,
    remote: &RemoteInfo,
    req: &Request,
    body: &[u8],
) -> BodyVerdict {
    let keep = BodyVerdict::default();
    let Kind::Release { dir, file } = layout::kind(&req.path) else {
        return keep;
    };
    if !file.has_text() {
        return keep;
    }
    let release = match release::parse(body) {
        Ok(r) => r,
        Err(e) => {
            // An error page answered with 200 must not replace a good
            // Release: the stored copy is served stale instead.
            return BodyVerdict {
                fail: Some(Rejection::new(
                    502,
                    format!("The upstream's /{} is not a Release file: {e}.", req.path),
                )),
                ..keep
            };
        }
    };
    let wanted = state::wanted(host, &dir);
    // Entries of files asked for by name whose digest this Release
    // changes: expired now, so that the next request for the name is
    // planned again (to the new digest) instead of served the old file.
    let before = state::entries(host, &dir);
    let mut expired = 0usize;
    for w in wanted.iter().filter(|w| w.form == Form::Name) {
        let Some(old) = before.get(&w.rel) else {
            continue;
        };
        let now = release.files.get(&w.rel).and_then(Entry::of);
        if now.as_ref() != Some(old) {
            host.cache_expire(&by_name_key(&dir, &w.rel, old));
            expired += 1;
        }
    }
    let stored = state::remember(host, &dir, &release);
    let mode = PrefetchMode::of(remote).unwrap_or_else(|e| {
        warn!("{e}");
        PrefetchMode::Requested
    });
    let mut prefetch = Vec::new();
    if file == ReleaseFile::Release {
        // Its detached signature must follow it, not lag a TTL behind.
        let signature = layout::join(&dir, ReleaseFile::ReleaseGpg.name());
        host.cache_expire(&signature);
        if mode == PrefetchMode::Requested {
            prefetch.push(signature);
        }
    }
    if mode == PrefetchMode::Requested {
        prefetch.extend(prefetches(&dir, &release, &wanted));
    }
    debug!(
        "/{}: {} files listed ({} remembered, {} skipped), {} expired, {} to prefetch",
        req.path,
        release.files.len(),
        stored,
        release.skipped,
        expired,
        prefetch.len()
    );
    BodyVerdict { prefetch, ..keep }
}

/// The remote-relative paths to prefetch after `release` of `dir` was
/// fetched: each index file in `wanted` that it lists with a digest the
/// core verifies, in the form it was asked for (by its `by-hash/` name
/// only while the archive has them), without duplicates.
pub fn prefetches(dir: &str, release: &Release, wanted: &[state::Want]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in wanted {
        let Some(entry) = release.files.get(&w.rel).and_then(Entry::of) else {
            continue;
        };
        let plain = layout::join(dir, &w.rel);
        if layout::kind(&plain) != Kind::Index {
            continue;
        }
        let path = if w.form == Form::ByHash && release.acquire_by_hash {
            by_hash_path(dir, &w.rel, &entry)
        } else {
            plain
        };
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

#[cfg(test)]
mod tests;
