//! The built-in `rpm` adapter: pull-through mirrors of yum/dnf repositories.
//!
//! Package type `rpm`. `GET`/`HEAD` of `{path}[?query]` is forwarded as
//! `GET /{path}[?query]` to the remote's upstream base URLs (with its
//! credentials) and cached under the key `{path}[?query]`. The path decides
//! the cache class and the content type:
//!
//! | path | class | content type |
//! | --- | --- | --- |
//! | `…/repodata/repomd.xml` | mutable, inspected: its `<data>` files are prefetched | `application/xml` |
//! | `…/repodata/repomd.xml.asc`, `.key`, … | mutable | `application/pgp-signature`, `application/pgp-keys` |
//! | `…/repodata/<checksum>-<name>` (`<64 hex>-primary.xml.gz`, …) | immutable; a sha256 name is verified while streaming | by extension |
//! | other files in `repodata/` (`comps.xml`, non-unique names) | mutable | by extension |
//! | `*.rpm`, `*.drpm`, `*.srpm` | immutable | `application/x-rpm` |
//! | a `metalink` or `mirrorlist` segment or file name prefix | mutable | the upstream's |
//! | a directory (`…/`, or the remote's root) | mutable | the upstream's |
//! | anything else | immutable | by extension |
//!
//! A path matching one of the remote's `mutable_patterns` is mutable
//! whatever the table says (except checksum-named repodata, whose name fixes
//! its content); `immutable_patterns` cannot make the index or the other
//! mutable kinds immutable (a frozen repomd.xml would hide every upstream
//! change), and everything else is immutable already. Mutable entries use
//! the remote's `mutable_ttl`. Checksum-named repodata
//! files carry their checksum in the name; createrepo names them by the
//! checksum of the (compressed) file as stored. A 64-hex prefix is a SHA-256
//! and becomes the plan's expected digest, so a corrupted or substituted file
//! is never stored. Other lengths (40 hex: SHA-1, 32: MD5, 56: SHA-224,
//! 96: SHA-384, 128: SHA-512) are cached immutable **without** verification:
//! the core verifies SHA-256 only.
//!
//! `repomd.xml` is buffered (at most [`REPOMD_INSPECT_LIMIT`] bytes) and
//! scanned for the `<location href>` of every `<data>` entry; the files it
//! names (resolved against the directory that holds `repodata/`) are
//! returned as prefetches, so the core fetches them into the cache in the
//! background after a new repomd.xml is stored. The remote option
//! `prefetch` (in `[remote.options]`) picks which: `none`, `all`, or a
//! comma-separated list of `<data type>`s (`primary,filelists,updateinfo`);
//! the default is every type except the `*_db` SQLite variants, which
//! dnf/libsolv never read. Locations with an `xml:base`, absolute URLs and
//! paths leaving the remote are never prefetched.
//!
//! Other methods are refused with 400 (use `PUT /cache/flush`); hosted
//! remotes are refused with 400 too (the rpm adapter only mirrors).

use artgate_sdk::prelude::*;

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod repomd;

/// Largest `repomd.xml` the adapter inspects (real ones are a few KiB; a
/// larger body fails that request with 502 and stores nothing).
pub const REPOMD_INSPECT_LIMIT: u32 = 1024 * 1024;

/// The rpm adapter.
pub struct Rpm;

impl Adapter for Rpm {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("rpm", env!("CARGO_PKG_VERSION"), ["rpm"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan(&remote, &req)
    }

    fn inspect_body(
        remote: RemoteInfo,
        req: Request,
        _resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        if kind(&req.path) != Kind::Repomd {
            return BodyVerdict::default();
        }
        if !looks_like_repomd(&body) {
            // An error page answered with 200 must not replace a good index.
            return BodyVerdict {
                fail: Some(Rejection::new(
                    502,
                    format!("the upstream's {} is not a repomd document", req.path),
                )),
                ..BodyVerdict::default()
            };
        }
        let prefetch = prefetches(&remote, &req.path, &body);
        debug!(
            "{}: repomd.xml names {} metadata files to prefetch",
            req.path,
            prefetch.len()
        );
        BodyVerdict {
            prefetch,
            ..BodyVerdict::default()
        }
    }
}

artgate_sdk::export_adapter!(Rpm, stateless, accepts_every_response);

/// Whether a body is plausibly a `repomd.xml` (it has a `<repomd` root
/// element near the start).
pub fn looks_like_repomd(body: &[u8]) -> bool {
    let head = &body[..body.len().min(4096)];
    head.windows(7).any(|w| w == b"<repomd")
}

/// What a path in an RPM repository is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `repodata/repomd.xml`: the repository index.
    Repomd,
    /// `repodata/repomd.xml.<ext>`: its detached signature or key.
    RepomdCompanion,
    /// A file in `repodata/` named `<checksum>-<name>`; `digest` is set when
    /// the checksum is a SHA-256 (64 hex digits).
    Checksummed {
        /// The SHA-256 the content must have, when the name carries one.
        digest: Option<Digest>,
    },
    /// Any other file in `repodata/`.
    Repodata,
    /// A package: `*.rpm`, `*.drpm`, `*.srpm`.
    Package,
    /// A metalink or mirrorlist document.
    MirrorList,
    /// A directory (listing).
    Directory,
    /// Anything else (immutable unless a `mutable_patterns` entry matches).
    Other,
}

impl Kind {
    /// The cache class of this kind of file when no `mutable_patterns`
    /// entry of the remote matches it.
    pub fn class(&self) -> CacheClass {
        match self {
            Kind::Repomd
            | Kind::RepomdCompanion
            | Kind::Repodata
            | Kind::MirrorList
            | Kind::Directory => CacheClass::Mutable,
            Kind::Checksummed { .. } | Kind::Package | Kind::Other => CacheClass::Immutable,
        }
    }
}

/// Hex lengths of the checksums createrepo can put into file names: MD5,
/// SHA-1, SHA-224, SHA-256, SHA-384, SHA-512.
const CHECKSUM_HEX_LENGTHS: [usize; 6] = [32, 40, 56, 64, 96, 128];

/// Classifies a remote-relative path.
pub fn kind(path: &str) -> Kind {
    let Some(name) = path::file_name(path) else {
        return Kind::Directory;
    };
    let parent = path::segments(path).rev().nth(1);
    if parent == Some("repodata") {
        if name == "repomd.xml" {
            return Kind::Repomd;
        }
        if name.starts_with("repomd.xml.") {
            return Kind::RepomdCompanion;
        }
        if let Some((hex, rest)) = name.split_once('-')
            && !rest.is_empty()
            && CHECKSUM_HEX_LENGTHS.contains(&hex.len())
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Kind::Checksummed {
                digest: Digest::from_hex(hex).ok(),
            };
        }
        return Kind::Repodata;
    }
    if path::extension(path).is_some_and(|e| {
        ["rpm", "drpm", "srpm"]
            .iter()
            .any(|p| e.eq_ignore_ascii_case(p))
    }) {
        return Kind::Package;
    }
    let is_mirror_list = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.starts_with("metalink") || s.starts_with("mirrorlist")
    };
    if path::segments(path).any(is_mirror_list) {
        return Kind::MirrorList;
    }
    Kind::Other
}

/// The content type served for `path` of kind `kind`; `None` keeps the
/// upstream's (mirror lists and directory listings, whose type the upstream
/// knows best).
pub fn content_type(path: &str, kind: &Kind) -> Option<&'static str> {
    match kind {
        Kind::MirrorList | Kind::Directory => None,
        Kind::Package => Some("application/x-rpm"),
        _ => Some(media::content_type(path)),
    }
}

/// Plans a request.
pub fn plan(remote: &RemoteInfo, req: &Request) -> Decision {
    if let Some(refusal) = remote.refuse_unless_mirror_read(req, "rpm", "RPM mirror") {
        return refusal;
    }
    let kind = kind(&req.path);
    let by_patterns = match remote.classify_or_reject(&req.path) {
        Ok(c) => c,
        Err(refusal) => return *refusal,
    };
    let class = match (&kind, by_patterns) {
        // The name is the content: it never expires, whatever the patterns say.
        (Kind::Checksummed { .. }, _) => CacheClass::Immutable,
        (_, PathClass::Mutable) => CacheClass::Mutable,
        (k, _) => k.class(),
    };
    let mut plan = CachePlan::new(req.path_and_query(), class).cache_not_found(true);
    if let Some(ct) = content_type(&req.path, &kind) {
        plan = plan.content_type(ct);
    }
    match &kind {
        Kind::Checksummed { digest: Some(d) } => plan = plan.expected_digest(d),
        Kind::Repomd => plan = plan.inspect(REPOMD_INSPECT_LIMIT),
        _ => {}
    }
    forward_get(req.upstream_target(), plan)
}

/// Which `<data type>`s of a repomd.xml to prefetch, from the remote option
/// `prefetch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefetchTypes {
    /// Nothing.
    None,
    /// Every type.
    All,
    /// Every type except the SQLite `*_db` variants (the default).
    Default,
    /// The listed types.
    Only(Vec<String>),
}

impl PrefetchTypes {
    /// Parses the option value (`None`: the option is not set).
    pub fn parse(option: Option<&str>) -> PrefetchTypes {
        let Some(v) = option.map(str::trim) else {
            return PrefetchTypes::Default;
        };
        match v.to_ascii_lowercase().as_str() {
            "" | "none" | "false" => PrefetchTypes::None,
            "all" | "true" => PrefetchTypes::All,
            "default" => PrefetchTypes::Default,
            _ => PrefetchTypes::Only(
                v.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect(),
            ),
        }
    }

    /// Whether a `<data type>` is wanted.
    pub fn wants(&self, data_type: &str) -> bool {
        match self {
            PrefetchTypes::None => false,
            PrefetchTypes::All => true,
            PrefetchTypes::Default => !data_type.ends_with("_db"),
            PrefetchTypes::Only(types) => types.iter().any(|t| t == data_type),
        }
    }
}

/// The remote-relative paths of the metadata files a repomd.xml at
/// `repomd_path` lists, filtered by the remote's `prefetch` option, without
/// duplicates.
pub fn prefetches(remote: &RemoteInfo, repomd_path: &str, body: &[u8]) -> Vec<String> {
    let types = PrefetchTypes::parse(remote.option("prefetch"));
    if types == PrefetchTypes::None {
        return Vec::new();
    }
    // The repository root: the directory holding `repodata/`.
    let root = repomd_path
        .strip_suffix("repodata/repomd.xml")
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for entry in repomd::data_entries(body) {
        if !types.wants(&entry.kind) || entry.base.as_deref().is_some_and(|b| !b.is_empty()) {
            continue;
        }
        match resolve(root, &entry.href) {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => warn!(
                "{repomd_path}: not prefetching location {:?}, which does not name a file of this remote",
                entry.href
            ),
        }
    }
    out
}

/// Resolves a repomd location `href` against the repository `root` (a
/// remote-relative directory, empty or ending in `/`) into a normalised
/// remote-relative file path; `None` for absolute URLs, absolute paths,
/// queries, fragments, control characters, backslashes and paths that leave
/// the remote or name a directory.
pub fn resolve(root: &str, href: &str) -> Option<String> {
    if href.is_empty()
        || href.starts_with('/')
        || href.contains("://")
        || href
            .chars()
            .any(|c| c.is_control() || matches!(c, '?' | '#' | '\\'))
        || matches!(href.rsplit('/').next(), Some("" | "." | ".."))
    {
        return None;
    }
    let mut parts: Vec<&str> = path::segments(root).collect();
    for seg in href.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests;
