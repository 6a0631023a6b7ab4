//! The built-in `alpine` adapter: pull-through mirrors of Alpine Linux
//! (`apk`) repositories.
//!
//! Package type `alpine`. `GET`/`HEAD` of `{path}[?query]` is forwarded as
//! `GET /{path}[?query]` to the remote's upstream base URLs (with its
//! credentials) and cached under the key `{path}[?query]`. An Alpine mirror
//! is laid out as `{branch}/{repository}/{arch}/` (`v3.20/main/x86_64/`),
//! each directory holding a signed index `APKINDEX.tar.gz` and the `.apk`
//! packages it lists. The path decides the cache class and content type:
//!
//! | path | class | content type |
//! | --- | --- | --- |
//! | `…/APKINDEX.tar.gz` | mutable | `application/gzip` |
//! | `.SIGN.*` files, `*.sig`, `*.asc` | mutable | `application/octet-stream`, `application/pgp-signature` |
//! | `latest-releases.yaml`, `last-updated`, `MIRRORS.txt` | mutable | by extension |
//! | `*.apk` | immutable | `application/gzip` |
//! | a directory (`…/`, or the remote's root) | mutable | the upstream's |
//! | anything else | immutable | by extension |
//!
//! A path matching one of the remote's `mutable_patterns` is mutable
//! whatever the table says; `immutable_patterns` cannot make the index
//! immutable (that would hide every upstream change), and everything else is
//! immutable already. Mutable entries use the remote's `mutable_ttl`.
//!
//! **Content type of `.apk`.** An Alpine package (apk-tools v2 format) is a
//! concatenation of gzip members (signature, control and data tarballs), so
//! the whole file is a valid multi-member gzip stream: `application/gzip`
//! says what a generic client can do with it. The registered
//! `application/vnd.android.package-archive` belongs to Android's `.apk` and
//! would mislabel it; apk-tools itself ignores the content type.
//!
//! **No prefetch.** The index is not inspected: `APKINDEX.tar.gz` lists
//! every package of the repository, and prefetching them would mirror the
//! whole repository; packages are fetched when a client asks for them.
//!
//! Other methods are refused with 400 (use `PUT /cache/flush`); hosted
//! remotes are refused with 400 too (the alpine adapter only mirrors).

use artgate_sdk::prelude::*;

/// The alpine adapter.
pub struct Alpine;

impl Adapter for Alpine {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("alpine", env!("CARGO_PKG_VERSION"), ["alpine"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan(&remote, &req)
    }
}

artgate_sdk::export_adapter!(Alpine, stateless, accepts_every_response);

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;

/// What a path in an Alpine repository is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `APKINDEX.tar.gz`: the signed repository index.
    Index,
    /// A signature (`.SIGN.*`, `*.sig`, `*.asc`).
    Signature,
    /// A mirror status file that changes in place (`latest-releases.yaml`,
    /// `last-updated`, `MIRRORS.txt`).
    Status,
    /// A package, `*.apk`.
    Package,
    /// A directory (listing).
    Directory,
    /// Anything else (immutable unless a `mutable_patterns` entry matches).
    Other,
}

impl Kind {
    /// The cache class of this kind of file when no `mutable_patterns`
    /// entry of the remote matches it.
    pub fn class(self) -> CacheClass {
        match self {
            Kind::Index | Kind::Signature | Kind::Status | Kind::Directory => CacheClass::Mutable,
            Kind::Package | Kind::Other => CacheClass::Immutable,
        }
    }
}

/// Classifies a remote-relative path.
pub fn kind(path: &str) -> Kind {
    let Some(name) = path::file_name(path) else {
        return Kind::Directory;
    };
    let ext = path::extension(path).unwrap_or_default();
    let ext_is = |e: &str| ext.eq_ignore_ascii_case(e);
    if name == "APKINDEX.tar.gz" {
        Kind::Index
    } else if name.starts_with(".SIGN.") || ext_is("sig") || ext_is("asc") {
        Kind::Signature
    } else if matches!(
        name,
        "latest-releases.yaml" | "last-updated" | "MIRRORS.txt"
    ) {
        Kind::Status
    } else if ext_is("apk") {
        Kind::Package
    } else {
        Kind::Other
    }
}

/// The content type served for `path` of kind `kind`; `None` keeps the
/// upstream's (directory listings).
pub fn content_type(path: &str, kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Directory => None,
        // The SDK's table maps `.apk` and `.gz` to `application/gzip`.
        _ => Some(media::content_type(path)),
    }
}

/// Plans a request.
pub fn plan(remote: &RemoteInfo, req: &Request) -> Decision {
    if let Some(refusal) = remote.refuse_unless_mirror_read(req, "alpine", "Alpine mirror") {
        return refusal;
    }
    let kind = kind(&req.path);
    let class = match remote.classify_or_reject(&req.path) {
        Ok(PathClass::Mutable) => CacheClass::Mutable,
        Ok(PathClass::Immutable | PathClass::Unmatched) => kind.class(),
        Err(refusal) => return *refusal,
    };
    let mut plan = CachePlan::new(req.path_and_query(), class).cache_not_found(true);
    if let Some(ct) = content_type(&req.path, kind) {
        plan = plan.content_type(ct);
    }
    forward_get(req.upstream_target(), plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> RemoteInfo {
        RemoteInfo::test()
            .with_name("alpine")
            .with_package("alpine")
            .with_upstreams(["https://dl-cdn.alpinelinux.org/alpine"])
            .with_check_mutable_updates(true)
    }

    fn request(method: &str, path: &str) -> Request {
        Request::test(method, path).with_id("req-1")
    }

    fn planned(r: &RemoteInfo, path: &str) -> Forward {
        match plan(r, &request("GET", path)) {
            Decision::Forward(f) => f,
            other => panic!("{path}: expected forward, got {other:?}"),
        }
    }

    #[test]
    fn kinds() {
        let cases = [
            ("v3.20/main/x86_64/APKINDEX.tar.gz", Kind::Index),
            ("edge/testing/aarch64/APKINDEX.tar.gz", Kind::Index),
            (
                "v3.20/main/x86_64/.SIGN.RSA.alpine-devel.rsa.pub",
                Kind::Signature,
            ),
            (
                "v3.20/releases/x86_64/alpine-3.20.0.iso.sig",
                Kind::Signature,
            ),
            (
                "v3.20/releases/x86_64/alpine-3.20.0.iso.asc",
                Kind::Signature,
            ),
            ("v3.20/releases/x86_64/latest-releases.yaml", Kind::Status),
            ("last-updated", Kind::Status),
            ("MIRRORS.txt", Kind::Status),
            ("v3.20/main/x86_64/busybox-1.36.1-r29.apk", Kind::Package),
            ("v3.20/main/x86_64/BUSYBOX.APK", Kind::Package),
            ("", Kind::Directory),
            ("v3.20/main/x86_64/", Kind::Directory),
            ("v3.20/releases/x86_64/alpine-3.20.0.iso", Kind::Other),
            ("v3.20/main/x86_64/APKINDEX.tar.gz.old", Kind::Other),
            ("v3.20/main/x86_64/apkindex.tar.gz", Kind::Other),
            ("keys/alpine-devel.rsa.pub", Kind::Other),
        ];
        for (path, want) in cases {
            assert_eq!(kind(path), want, "{path}");
        }
    }

    #[test]
    fn plans() {
        let r = remote();
        let cases: &[(&str, CacheClass, Option<&str>)] = &[
            (
                "v3.20/main/x86_64/APKINDEX.tar.gz",
                CacheClass::Mutable,
                Some("application/gzip"),
            ),
            (
                "v3.20/main/x86_64/busybox-1.36.1-r29.apk",
                CacheClass::Immutable,
                Some("application/gzip"),
            ),
            (
                "v3.20/releases/x86_64/a.iso.asc",
                CacheClass::Mutable,
                Some("application/pgp-signature"),
            ),
            (
                "v3.20/main/x86_64/.SIGN.RSA.k.rsa.pub",
                CacheClass::Mutable,
                Some("application/octet-stream"),
            ),
            (
                "v3.20/releases/x86_64/latest-releases.yaml",
                CacheClass::Mutable,
                Some("application/octet-stream"),
            ),
            ("v3.20/main/", CacheClass::Mutable, None),
            (
                "v3.20/releases/x86_64/alpine-3.20.0.iso",
                CacheClass::Immutable,
                Some("application/x-iso9660-image"),
            ),
        ];
        for (path, class, ct) in cases {
            let f = planned(&r, path);
            assert_eq!(f.plan.class, *class, "{path}");
            assert_eq!(f.plan.content_type.as_deref(), *ct, "{path}");
            assert_eq!(f.plan.key, *path);
            assert_eq!(f.plan.ttl_secs, None);
            assert_eq!(f.plan.inspect_limit, None, "{path}: nothing is inspected");
            assert_eq!(f.plan.expected_digest, None);
            assert!(f.plan.cache_not_found);
            assert_eq!(f.upstream.method, "GET");
            assert_eq!(f.upstream.target, format!("/{path}"));
            assert!(f.upstream.use_credentials);
        }
    }

    #[test]
    fn mutable_patterns_win() {
        let mut r = remote();
        r.mutable_patterns = vec![r"\.iso$".into(), r"-latest\.apk$".into()];
        r.immutable_patterns = vec![r"APKINDEX".into()];
        let class = |path: &str| planned(&r, path).plan.class;
        assert_eq!(class("x/a.iso"), CacheClass::Mutable);
        assert_eq!(class("x/README"), CacheClass::Immutable);
        assert_eq!(class("x/a-1.0-r0.apk"), CacheClass::Immutable);
        assert_eq!(class("x/a-latest.apk"), CacheClass::Mutable);
        // The index stays mutable.
        assert_eq!(class("x/APKINDEX.tar.gz"), CacheClass::Mutable);
        r.mutable_patterns = vec!["[".into()];
        assert!(matches!(
            plan(&r, &request("GET", "x/README")),
            Decision::Reject(Rejection { status: 500, .. })
        ));
    }

    #[test]
    fn refusals() {
        for m in ["PUT", "POST", "DELETE"] {
            match plan(&remote(), &request(m, "v3.20/main/x86_64/a.apk")) {
                Decision::Reject(r) => {
                    assert_eq!(r.status, 400);
                    assert!(r.message.contains(m) && r.message.ends_with('.'));
                }
                other => panic!("{m}: {other:?}"),
            }
        }
        let mut hosted = remote();
        hosted.mode = RemoteMode::Hosted;
        assert!(matches!(
            plan(&hosted, &request("GET", "a.apk")),
            Decision::Reject(Rejection { status: 400, .. })
        ));
    }

    #[test]
    fn describe() {
        let info = <Alpine as Adapter>::describe();
        assert_eq!(info.name, "alpine");
        assert_eq!(info.package_types, vec!["alpine".to_string()]);
    }
}
