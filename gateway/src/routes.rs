//! URL → typed [`Route`], before any work is done. Paths are normalised
//! exactly once here ([`normalize_path`]); everything after routing sees
//! only clean, relative, `/`-separated paths that can never name a file
//! outside the store (the store is content-addressed anyway) nor traverse on
//! the upstream.

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Gateway administration and introspection.
    Admin(AdminRoute),
    /// `GET /v2/`: the Docker registry ping.
    RegistryPing,
    /// The operator console (`/ui`, `/ui/...`) and its JSON API
    /// (`/api/v1/...` other than `/api/v1/remote/`): routed further, and
    /// access-checked, by `console/` itself (it also takes a session
    /// cookie).
    Console,
    /// A remote's path: `/api/v1/remote/{remote}/{path}`
    /// ([`RouteKind::RemoteApi`]) or `/v2/{remote}/{path}`
    /// ([`RouteKind::Registry`]; `path` = `{name}/manifests/{ref}` etc.).
    Remote {
        /// Which URL family the request came in on.
        kind: RouteKind,
        /// Remote name.
        remote: String,
        /// Normalised path below the remote (may be empty or end in `/`).
        path: String,
    },
    /// `GET /_cluster/v1/fill/{remote}/{key}`: another node of the
    /// cluster streams a fill in progress here (`serve/peer.rs`; the
    /// cluster token is checked there). `key` is URL-safe base64.
    Peer {
        /// Remote name.
        remote: String,
        /// The entry's key, still encoded.
        key: String,
    },
}

/// Administration endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    /// `GET /`.
    Index,
    /// `GET /health`.
    Health,
    /// `GET /config`.
    Config,
    /// `GET /metrics`.
    Metrics,
    /// `GET /plugins`.
    Plugins,
    /// `PUT /cache/flush[?remote=R]`.
    Flush {
        /// Only this remote, when given.
        remote: Option<String>,
    },
}

use crate::config::is_valid_remote_name;
use crate::plugins::wit::RouteKind;
use http::{Method, StatusCode, Uri};
use percent_encoding::percent_decode_str;

/// Why a path below a route prefix was rejected (→ 400). Each message is
/// one sentence for the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The decoded bytes are not UTF-8 (this includes overlong encodings
    /// such as `%c0%ae`).
    #[error("the path is not valid UTF-8 once percent-decoded")]
    InvalidUtf8,
    /// NUL or another control character.
    #[error("the path contains a control character")]
    ControlCharacter,
    /// `\` (a separator on some upstreams).
    #[error("the path contains a backslash")]
    Backslash,
    /// A `%` followed by two hex digits after decoding (`%252e`).
    #[error("the path is percent-encoded twice")]
    DoubleEncoded,
    /// An encoded `?` (`%3F`), which would turn into a query upstream.
    #[error("the path contains an encoded question mark")]
    QuestionMark,
    /// A `.` or `..` segment, also as `..;param` or with trailing dots or
    /// spaces.
    #[error("the path contains a \".\" or \"..\" segment")]
    DotSegment,
    /// The path starts with `/` once decoded (`//etc/passwd`, `%2fetc`).
    #[error("the path must be relative, not start with a slash")]
    Absolute,
    /// A `%u` followed by four hex digits (`%u002e`): the non-standard
    /// escape IIS decodes, which would turn into `.` or `/` there.
    #[error("the path contains a %u escape, which some servers decode")]
    UnicodeEscape,
    /// A character that Unicode compatibility normalisation (NFKC) or a
    /// Windows best-fit code-page conversion turns into `.`, `/`, `\` or
    /// `%` ([`is_lookalike`]): fullwidth full stop U+FF0E, one dot leader
    /// U+2024, fullwidth solidus U+FF0F, division slash U+2215, yen sign
    /// U+00A5 ...
    #[error(
        "the path contains a character that some servers read as a dot, slash, backslash or percent sign"
    )]
    Lookalike,
}

/// Normalise the part of a URL path after the route prefix.
///
/// Percent-decodes exactly once, then rejects: bytes that are not UTF-8
/// (overlong encodings included), control characters (NUL, ...), `\`, a `%`
/// followed by two hex digits (double encoding), an encoded `?`, a leading
/// `/` (an absolute path), IIS `%u` escapes (`%u` and four hex digits, e.g. `%u002e`), characters that some
/// server would turn into `.`, `/`, `\` or `%` ([`is_lookalike`]: `．．`
/// is `..` once NFKC-normalised), and `.`/`..` segments — also when
/// followed by a `;parameter` (`..;foo`) or trailing dots and spaces
/// (`.. `, `...`), which some servers treat as `..`. Repeated `/` are collapsed; a trailing `/`
/// is kept (directory listings). An encoded `/` (`%2F`) is a separator
/// like `/`.
///
/// The result is a plain UTF-8 string, not re-encoded: the upstream client
/// percent-encodes when it builds URLs. Normalising is idempotent:
/// `normalize_path(p) == Ok(p)` for every `p` it returns.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let decoded =
        String::from_utf8(percent_decode_str(raw).collect()).map_err(|_| PathError::InvalidUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if decoded.contains('\\') {
        return Err(PathError::Backslash);
    }
    if has_percent_escape(&decoded) {
        return Err(PathError::DoubleEncoded);
    }
    if has_u_escape(&decoded) {
        return Err(PathError::UnicodeEscape);
    }
    if decoded.chars().any(is_lookalike) {
        return Err(PathError::Lookalike);
    }
    if decoded.contains('?') {
        return Err(PathError::QuestionMark);
    }
    if decoded.starts_with('/') {
        return Err(PathError::Absolute);
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if is_dot_segment(segment) {
            return Err(PathError::DotSegment);
        }
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(segment);
    }
    if decoded.ends_with('/') && !out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// `%` followed by two hex digits.
fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// `%u` (or `%U`) followed by four hex digits, IIS's escape for a UTF-16
/// code unit.
fn has_u_escape(s: &str) -> bool {
    s.as_bytes().windows(6).any(|w| {
        w[0] == b'%' && (w[1] == b'u' || w[1] == b'U') && w[2..].iter().all(u8::is_ascii_hexdigit)
    })
}

/// Characters that a Windows best-fit conversion to a legacy code page
/// maps to `/` or `\` and that NFKC leaves alone: yen and won signs (the
/// backslash of code pages 932 and 949), fraction and division slashes,
/// set minus, and the big and reverse solidus operators.
const BEST_FIT_SEPARATORS: &[char] = &[
    '\u{00A5}', '\u{20A9}', '\u{2044}', '\u{2215}', '\u{2216}', '\u{29F5}', '\u{29F8}', '\u{29F9}',
];

/// Whether some server could read `c`, a character that is not ASCII, as
/// `.`, `/`, `\` or `%`: its NFKC form contains one (U+FF0E fullwidth full
/// stop, U+2024 one dot leader, U+2025 two dot leader, U+FE52 small full
/// stop, U+FF0F fullwidth solidus, U+FF3C fullwidth reverse solidus, U+FF05
/// fullwidth percent sign, ...), or it is one of
/// [`BEST_FIT_SEPARATORS`]. ASCII characters are checked elsewhere.
pub fn is_lookalike(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    if BEST_FIT_SEPARATORS.contains(&c) {
        return true;
    }
    let mut buf = [0u8; 4];
    icu_normalizer::ComposingNormalizerBorrowed::new_nfkc()
        .normalize(c.encode_utf8(&mut buf))
        .contains(['.', '/', '\\', '%'])
}

/// `.`, `..`, `...`, `.. `, `..;x`: made only of dots and spaces (with at
/// least one dot) once `;parameters` are stripped.
fn is_dot_segment(segment: &str) -> bool {
    let base = segment.split_once(';').map_or(segment, |(b, _)| b);
    base.contains('.') && base.chars().all(|c| c == '.' || c == ' ')
}

/// Why a request matched no route. [`RouteError::status`] gives the status
/// code; `Display` is a one-sentence error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No endpoint at this path (404).
    #[error("there is no endpoint at this path")]
    NotFound,
    /// The remote segment is not a valid remote name (404). Configured
    /// remotes are checked later, by the handler.
    #[error("unknown remote {name:?}")]
    UnknownRemote {
        /// The segment as sent (truncated to 64 characters).
        name: String,
    },
    /// The path below the remote was rejected (400).
    #[error(transparent)]
    BadPath(#[from] PathError),
    /// A malformed query parameter (400).
    #[error("{0}")]
    BadQuery(&'static str),
    /// The path exists but not for this method (405); `allowed` is the
    /// value of the `Allow` header.
    #[error("method not allowed here; use {allowed}")]
    MethodNotAllowed {
        /// Value for the `Allow` response header, e.g. `GET, HEAD`.
        allowed: &'static str,
    },
}

impl RouteError {
    /// The HTTP status for this error: 400, 404 or 405.
    pub fn status(&self) -> StatusCode {
        match self {
            RouteError::NotFound | RouteError::UnknownRemote { .. } => StatusCode::NOT_FOUND,
            RouteError::BadPath(_) | RouteError::BadQuery(_) => StatusCode::BAD_REQUEST,
            RouteError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The OCI error code for this error on a registry path (`/v2/…`).
    pub fn oci_code(&self) -> &'static str {
        match self {
            RouteError::NotFound | RouteError::UnknownRemote { .. } => "NAME_UNKNOWN",
            RouteError::BadPath(_) => "NAME_INVALID",
            RouteError::BadQuery(_) | RouteError::MethodNotAllowed { .. } => "UNSUPPORTED",
        }
    }
}

/// The route kind whose error format a request for `path` gets, before
/// (or without) routing: registry clients read OCI errors on `/v2/…`.
pub fn kind_of(path: &str) -> RouteKind {
    if path == "/v2" || path.starts_with("/v2/") {
        RouteKind::Registry
    } else {
        RouteKind::RemoteApi
    }
}

const GET_HEAD: &str = "GET, HEAD";

/// Route a request by method and URI (only the path and, for
/// `/cache/flush`, the query are read).
///
/// - `/`, `/health`, `/config`, `/metrics`, `/plugins`: GET/HEAD admin
///   routes; `/cache/flush`: PUT, with an optional `remote` query
///   parameter; another method → 405.
/// - `/v2` and `/v2/`: the registry ping (GET/HEAD).
/// - `/v2/{remote}/{path}` and `/api/v1/remote/{remote}/{path}` →
///   [`Route::Remote`] (`path` may be
///   empty). Any method: what a remote accepts is decided by its handler.
///   `{path}` goes through [`normalize_path`]; `{remote}` must be a valid
///   remote name (else 404).
/// - `/ui`, `/ui/...` and every other `/api/v1/...` → [`Route::Console`].
/// - Anything else → [`RouteError::NotFound`].
///
/// Admin paths are matched exactly, before any decoding.
pub fn parse(method: &Method, uri: &Uri) -> Result<Route, RouteError> {
    let path = uri.path();
    let read_only = |route: Route| {
        if method == Method::GET || method == Method::HEAD {
            Ok(route)
        } else {
            Err(RouteError::MethodNotAllowed { allowed: GET_HEAD })
        }
    };
    match path {
        "/" => return read_only(Route::Admin(AdminRoute::Index)),
        "/health" => return read_only(Route::Admin(AdminRoute::Health)),
        "/config" => return read_only(Route::Admin(AdminRoute::Config)),
        "/metrics" => return read_only(Route::Admin(AdminRoute::Metrics)),
        "/plugins" => return read_only(Route::Admin(AdminRoute::Plugins)),
        "/v2" | "/v2/" => return read_only(Route::RegistryPing),
        "/cache/flush" => {
            if method != Method::PUT {
                return Err(RouteError::MethodNotAllowed { allowed: "PUT" });
            }
            let remote = flush_remote(uri.query())?;
            return Ok(Route::Admin(AdminRoute::Flush { remote }));
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/_cluster/v1/fill/") {
        let (remote, key) = split_remote(rest)?;
        if key.is_empty() || key.contains('/') {
            return Err(RouteError::NotFound);
        }
        return read_only(Route::Peer {
            remote,
            key: key.to_owned(),
        });
    }
    if let Some(rest) = path.strip_prefix("/v2/") {
        let (remote, rest) = split_remote(rest)?;
        return Ok(Route::Remote {
            kind: RouteKind::Registry,
            remote,
            path: normalize_path(rest)?,
        });
    }
    if let Some(rest) = path.strip_prefix("/api/v1/remote/") {
        let (remote, rest) = split_remote(rest)?;
        return Ok(Route::Remote {
            kind: RouteKind::RemoteApi,
            remote,
            path: normalize_path(rest)?,
        });
    }
    if path == "/ui" || path.starts_with("/ui/") || path.starts_with("/api/v1/") {
        return Ok(Route::Console);
    }
    Err(RouteError::NotFound)
}

/// `{remote}/{rest}` → (remote, rest), the remote name checked.
pub fn split_remote(s: &str) -> Result<(String, &str), RouteError> {
    let (name, rest) = s.split_once('/').unwrap_or((s, ""));
    if name.is_empty() {
        return Err(RouteError::NotFound);
    }
    if !is_valid_remote_name(name) {
        return Err(RouteError::UnknownRemote {
            name: name.chars().take(64).collect(),
        });
    }
    Ok((name.to_owned(), rest))
}

/// The `remote` parameter of `/cache/flush`, percent-decoded (`+` is a
/// space). Given twice → 400; empty or not a valid name → 404.
fn flush_remote(query: Option<&str>) -> Result<Option<String>, RouteError> {
    let mut remote = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode_str(key).decode_utf8_lossy() != "remote" {
            continue;
        }
        if remote.is_some() {
            return Err(RouteError::BadQuery(
                "the remote query parameter is given more than once",
            ));
        }
        let value = value.replace('+', " ");
        let name = percent_decode_str(&value)
            .decode_utf8()
            .map_err(|_| RouteError::BadQuery("the remote query parameter is not valid UTF-8"))?;
        if !is_valid_remote_name(&name) {
            return Err(RouteError::UnknownRemote {
                name: name.chars().filter(|c| !c.is_control()).take(64).collect(),
            });
        }
        remote = Some(name.into_owned());
    }
    Ok(remote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn route(method: &str, uri: &str) -> Result<Route, RouteError> {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let u: Uri = uri.parse().unwrap();
        parse(&m, &u)
    }

    fn remote(remote: &str, path: &str) -> Result<Route, RouteError> {
        Ok(Route::Remote {
            kind: RouteKind::RemoteApi,
            remote: remote.into(),
            path: path.into(),
        })
    }

    fn registry(remote: &str, path: &str) -> Result<Route, RouteError> {
        Ok(Route::Remote {
            kind: RouteKind::Registry,
            remote: remote.into(),
            path: path.into(),
        })
    }

    fn admin(a: AdminRoute) -> Result<Route, RouteError> {
        Ok(Route::Admin(a))
    }

    const GET_HEAD_405: Result<Route, RouteError> =
        Err(RouteError::MethodNotAllowed { allowed: GET_HEAD });

    #[test]
    fn the_internal_route_of_a_cluster() {
        assert_eq!(
            route("GET", "/_cluster/v1/fill/r/a2V5"),
            Ok(Route::Peer {
                remote: "r".into(),
                key: "a2V5".into()
            })
        );
        assert!(matches!(
            route("PUT", "/_cluster/v1/fill/r/a2V5"),
            Err(RouteError::MethodNotAllowed { .. })
        ));
        for bad in [
            "/_cluster/v1/fill/r/",
            "/_cluster/v1/fill/r/a/b",
            "/_cluster/v1/fill/",
        ] {
            assert!(route("GET", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_table() {
        let unknown = |n: &str| Err(RouteError::UnknownRemote { name: n.into() });
        let cases: Vec<(&str, &str, Result<Route, RouteError>)> = vec![
            ("GET", "/", admin(AdminRoute::Index)),
            ("HEAD", "/", admin(AdminRoute::Index)),
            ("POST", "/", GET_HEAD_405),
            ("GET", "/health", admin(AdminRoute::Health)),
            ("GET", "/health?verbose=1", admin(AdminRoute::Health)),
            ("DELETE", "/health", GET_HEAD_405),
            ("GET", "/config", admin(AdminRoute::Config)),
            ("GET", "/metrics", admin(AdminRoute::Metrics)),
            ("HEAD", "/metrics", admin(AdminRoute::Metrics)),
            ("GET", "/plugins", admin(AdminRoute::Plugins)),
            ("PUT", "/plugins", GET_HEAD_405),
            (
                "PUT",
                "/cache/flush",
                admin(AdminRoute::Flush { remote: None }),
            ),
            (
                "PUT",
                "/cache/flush?remote=alma",
                admin(AdminRoute::Flush {
                    remote: Some("alma".into()),
                }),
            ),
            (
                "PUT",
                "/cache/flush?x=1&remote=my%2Dremote",
                admin(AdminRoute::Flush {
                    remote: Some("my-remote".into()),
                }),
            ),
            ("PUT", "/cache/flush?remote=Bad", unknown("Bad")),
            ("PUT", "/cache/flush?remote=", unknown("")),
            (
                "PUT",
                "/cache/flush?remote=a&remote=b",
                Err(RouteError::BadQuery(
                    "the remote query parameter is given more than once",
                )),
            ),
            (
                "PUT",
                "/cache/flush?remote=%ff",
                Err(RouteError::BadQuery(
                    "the remote query parameter is not valid UTF-8",
                )),
            ),
            (
                "GET",
                "/cache/flush",
                Err(RouteError::MethodNotAllowed { allowed: "PUT" }),
            ),
            (
                "POST",
                "/cache/flush",
                Err(RouteError::MethodNotAllowed { allowed: "PUT" }),
            ),
            ("GET", "/v2/", Ok(Route::RegistryPing)),
            ("GET", "/v2", Ok(Route::RegistryPing)),
            ("HEAD", "/v2/", Ok(Route::RegistryPing)),
            ("POST", "/v2/", GET_HEAD_405),
            (
                "GET",
                "/v2/dockerhub/library/alpine/manifests/3.20",
                registry("dockerhub", "library/alpine/manifests/3.20"),
            ),
            (
                "HEAD",
                "/v2/dockerhub/library/alpine/blobs/sha256:abc",
                registry("dockerhub", "library/alpine/blobs/sha256:abc"),
            ),
            (
                "GET",
                "/v2/dockerhub/library/alpine/tags/list?n=10",
                registry("dockerhub", "library/alpine/tags/list"),
            ),
            ("GET", "/v2/dockerhub", registry("dockerhub", "")),
            ("GET", "/v2/_catalog", unknown("_catalog")),
            ("GET", "/v2/Docker/x", unknown("Docker")),
            (
                "GET",
                "/v2/dockerhub/../config",
                Err(RouteError::BadPath(PathError::DotSegment)),
            ),
            (
                "GET",
                "/api/v1/remote/files/dists/stable/Release",
                remote("files", "dists/stable/Release"),
            ),
            (
                "GET",
                "/api/v1/remote/files/dists//stable/",
                remote("files", "dists/stable/"),
            ),
            ("GET", "/api/v1/remote/files/", remote("files", "")),
            ("GET", "/api/v1/remote/files", remote("files", "")),
            (
                "PUT",
                "/api/v1/remote/builds/app/1.0/app%20v1.tar.gz",
                remote("builds", "app/1.0/app v1.tar.gz"),
            ),
            (
                "DELETE",
                "/api/v1/remote/builds/app/1.0/x",
                remote("builds", "app/1.0/x"),
            ),
            (
                "GET",
                "/api/v1/remote/git/repo.git/info/refs?service=git-upload-pack",
                remote("git", "repo.git/info/refs"),
            ),
            (
                "GET",
                "/api/v1/remote/files//etc/passwd",
                Err(RouteError::BadPath(PathError::Absolute)),
            ),
            (
                "GET",
                "/api/v1/remote/files/a/%2e%2E/b",
                Err(RouteError::BadPath(PathError::DotSegment)),
            ),
            ("GET", "/api/v1/remote/../config", unknown("..")),
            ("GET", "/api/v1/remote/%66iles/x", unknown("%66iles")),
            ("GET", "/api/v1/remote/", Err(RouteError::NotFound)),
            // The console routes (and 404s) the rest of /api/v1/ itself.
            ("GET", "/api/v1/remote", Ok(Route::Console)),
            ("GET", "/api/v1/remotes/files/entries", Ok(Route::Console)),
            ("POST", "/ui/actions/flush", Ok(Route::Console)),
            ("GET", "/ui", Ok(Route::Console)),
            ("GET", "/uix", Err(RouteError::NotFound)),
            ("GET", "/health/", Err(RouteError::NotFound)),
            ("GET", "/heal%74h", Err(RouteError::NotFound)),
            ("GET", "/v2x", Err(RouteError::NotFound)),
            ("GET", "/favicon.ico", Err(RouteError::NotFound)),
            ("GET", "http://gateway:8080/v2/", Ok(Route::RegistryPing)),
        ];
        for (method, uri, expected) in cases {
            assert_eq!(route(method, uri), expected, "{method} {uri}");
        }
    }

    #[test]
    fn status_codes_and_messages() {
        assert_eq!(RouteError::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            RouteError::UnknownRemote { name: "x".into() }.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            RouteError::BadPath(PathError::Backslash).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(RouteError::BadQuery("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            GET_HEAD_405.unwrap_err().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            RouteError::UnknownRemote { name: "Bad".into() }.to_string(),
            "unknown remote \"Bad\""
        );
        assert_eq!(
            RouteError::BadPath(PathError::DotSegment).to_string(),
            "the path contains a \".\" or \"..\" segment"
        );
        assert_eq!(
            GET_HEAD_405.unwrap_err().to_string(),
            "method not allowed here; use GET, HEAD"
        );
        for e in [
            PathError::InvalidUtf8,
            PathError::ControlCharacter,
            PathError::Backslash,
            PathError::DoubleEncoded,
            PathError::QuestionMark,
            PathError::DotSegment,
            PathError::Absolute,
            PathError::UnicodeEscape,
            PathError::Lookalike,
        ] {
            let m = e.to_string();
            assert!(
                !m.is_empty() && !m.contains('\n') && !m.ends_with('.'),
                "{m}"
            );
        }
    }

    #[test]
    fn long_remote_names_are_truncated_in_errors() {
        let long = "X".repeat(500);
        match route("GET", &format!("/api/v1/remote/{long}/x")) {
            Err(RouteError::UnknownRemote { name }) => assert_eq!(name.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn normalisation_examples() {
        for (raw, want) in [
            ("", ""),
            ("a", "a"),
            ("a/b/c", "a/b/c"),
            ("a//b///c", "a/b/c"),
            ("dir/", "dir/"),
            ("dir//", "dir/"),
            ("a%2Fb", "a/b"),
            ("a%20b", "a b"),
            ("caf%C3%A9", "café"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("...a/b..c/.hidden/a.", "...a/b..c/.hidden/a."),
            ("x;y/z", "x;y/z"),
            ("sha256:abc", "sha256:abc"),
            ("@scope/pkg", "@scope/pkg"),
            ("a%23b", "a#b"),
            ("%E4%B8%AD%E6%96%87/%D0%BF%D1%83%D1%82%D1%8C", "中文/путь"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw:?}");
        }
    }

    /// Classic traversal and smuggling inputs: each is rejected, or the
    /// result is harmless (relative, no dot segments, no `\` or NUL).
    #[test]
    fn traversal_corpus() {
        let rejected: &[(&str, PathError)] = &[
            ("..", PathError::DotSegment),
            ("../etc/passwd", PathError::DotSegment),
            ("a/../../etc/passwd", PathError::DotSegment),
            (".", PathError::DotSegment),
            ("a/./b", PathError::DotSegment),
            ("a/..", PathError::DotSegment),
            ("a/../", PathError::DotSegment),
            ("%2e%2e", PathError::DotSegment),
            ("%2E%2e/%2e%2E/etc", PathError::DotSegment),
            ("%2e", PathError::DotSegment),
            ("..%2f..%2fetc", PathError::DotSegment),
            ("..%2F", PathError::DotSegment),
            ("..;/etc", PathError::DotSegment),
            ("..;foo/x", PathError::DotSegment),
            (".;x", PathError::DotSegment),
            ("%2e%2e;jsessionid=1/x", PathError::DotSegment),
            (".. /x", PathError::DotSegment),
            ("... ", PathError::DotSegment),
            ("...", PathError::DotSegment),
            ("%252e%252e", PathError::DoubleEncoded),
            ("%252E%252E/x", PathError::DoubleEncoded),
            ("%252f", PathError::DoubleEncoded),
            ("%25%32%65", PathError::DoubleEncoded),
            ("%%32%65", PathError::DoubleEncoded),
            ("%2e%2e%5c", PathError::Backslash),
            ("..\\..\\windows", PathError::Backslash),
            ("a%5Cb", PathError::Backslash),
            ("\\", PathError::Backslash),
            ("%00", PathError::ControlCharacter),
            ("a%00.txt", PathError::ControlCharacter),
            ("a\0b", PathError::ControlCharacter),
            ("a%0d%0aSet-Cookie:x", PathError::ControlCharacter),
            ("a%7f", PathError::ControlCharacter),
            ("a%c2%85", PathError::ControlCharacter),
            ("%c0%ae%c0%ae/etc", PathError::InvalidUtf8),
            ("%c0%ae", PathError::InvalidUtf8),
            ("%e0%80%ae", PathError::InvalidUtf8),
            ("%ff", PathError::InvalidUtf8),
            ("%ed%a0%80", PathError::InvalidUtf8),
            ("//etc/passwd", PathError::Absolute),
            ("/etc/passwd", PathError::Absolute),
            ("%2fetc/passwd", PathError::Absolute),
            ("%2F%2Fetc", PathError::Absolute),
            ("/", PathError::Absolute),
            ("a%3fb=1", PathError::QuestionMark),
            ("a%3F", PathError::QuestionMark),
            // IIS %u escapes, plain or percent-encoded once.
            ("%u002e%u002e/etc", PathError::UnicodeEscape),
            ("a/%U002F", PathError::UnicodeEscape),
            ("%25u002e%25u002e", PathError::UnicodeEscape),
            ("..%u2215etc", PathError::UnicodeEscape),
            // Lookalikes of ".", "/", "\" and "%".
            ("%EF%BC%8E%EF%BC%8E/etc", PathError::Lookalike), // U+FF0E
            ("a/%ef%bc%8e/b", PathError::Lookalike),
            ("%E2%80%A4%E2%80%A4/x", PathError::Lookalike), // U+2024
            ("%E2%80%A5/x", PathError::Lookalike),          // U+2025 = ".."
            ("%E2%80%A6", PathError::Lookalike),            // U+2026 = "..."
            ("%EF%B9%92", PathError::Lookalike),            // U+FE52
            ("a%EF%BC%8Fb", PathError::Lookalike),          // U+FF0F
            ("a%EF%BC%BCb", PathError::Lookalike),          // U+FF3C
            ("a%EF%B9%A8b", PathError::Lookalike),          // U+FE68
            ("%EF%BC%852e", PathError::Lookalike),          // U+FF05
            ("a%E2%88%95b", PathError::Lookalike),          // U+2215
            ("a%E2%81%84b", PathError::Lookalike),          // U+2044
            ("a%C2%A5..%C2%A5b", PathError::Lookalike),     // U+00A5
            ("%E2%92%88", PathError::Lookalike),            // U+2488 = "1."
        ];
        for (raw, want) in rejected {
            assert_eq!(normalize_path(raw), Err(*want), "{raw:?}");
        }
        // Accepted but harmless.
        for raw in [
            "a..b",
            "..a",
            "a..",
            ".a",
            "a%2E%2Eb",
            "x/y;..",
            "a/.b/c.",
            "%EF%BD%86%EF%BD%89%EF%BD%8C%EF%BD%85", // fullwidth "ｆｉｌｅ"
            "%E3%80%82",                            // U+3002 ideographic full stop
            "%uzzzz",
        ] {
            let n = normalize_path(raw).unwrap();
            assert!(
                n.split('/').all(|s| s != "." && s != ".."),
                "{raw:?} → {n:?}"
            );
        }
    }

    fn assert_safe(n: &str) {
        assert!(!n.starts_with('/'), "{n:?}");
        assert!(
            !n.contains('\0') && !n.contains('\\') && !n.chars().any(char::is_control),
            "{n:?}"
        );
        assert!(!n.contains("//"), "{n:?}");
        for seg in n.split('/') {
            let base = seg.split(';').next().unwrap_or(seg);
            assert!(base != "." && base != "..", "{n:?}");
        }
    }

    /// Pieces that make interesting paths when concatenated.
    fn tricky_path() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "a", "b", "é", ".", "..", "/", "//", ";", ";x", "%", "%2", "%2e", "%2E", "%2f", "%2F",
            "%25", "%252e", "%5c", "\\", "%00", "%c0", "%ae", "%c3%a9", "%3f", "%41", "%zz", " ",
            "~", ":", "@", "%0a", "%7f",
        ]);
        prop::collection::vec(atoms, 0..16).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent_and_safe(raw in prop_oneof![tricky_path(), any::<String>(), "[a-z./%0-9;\\\\]{0,30}"]) {
            if let Ok(n) = normalize_path(&raw) {
                assert_safe(&n);
                prop_assert_eq!(normalize_path(&n), Ok(n.clone()));
            }
        }

        #[test]
        fn parse_never_panics(path in "/[a-zA-Z0-9./%;_~-]{0,40}") {
            if let Ok(uri) = path.parse::<Uri>() {
                for m in [Method::GET, Method::PUT, Method::DELETE] {
                    match parse(&m, &uri) {
                        Ok(Route::Remote { path, .. }) => assert_safe(&path),
                        Ok(_) => {}
                        Err(e) => prop_assert!(!e.to_string().is_empty()),
                    }
                }
            }
        }
    }
}
