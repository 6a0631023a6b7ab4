//! Access control: which client token may read, write and delete on which
//! remote, and use the admin endpoints.
//!
//! Off when the configuration has no `[[token]]` table (the gateway logs a
//! warning at startup). Otherwise, for every request, before any other work:
//!
//! | route | needs |
//! | --- | --- |
//! | `/`, `/health`, `/metrics`, `/plugins`, `GET /v2/` | nothing (credentials are not even looked at) |
//! | `/ui/...`, `/api/v1/...` (not `/api/v1/remote/`) | checked by the console (`console/access.rs`): any valid token (or session) to look, the scopes above to read, write and delete a remote's files, admin for actions |
//! | `GET /config`, `PUT /cache/flush` | an `admin = true` token |
//! | `GET`/`HEAD` on a remote | `read`, unless the remote has `anonymous_read` (the default) |
//! | `DELETE` on a remote | `delete` |
//! | any other method on a remote | `write` |
//!
//! Scopes are per remote name, or `*` for every remote. A request on a
//! virtual remote needs the scope on the virtual remote and on every
//! remote it can reach ([`Config::reached`]): a read needs `read` (or
//! `anonymous_read`) on each member a read may try, members of member
//! virtuals included, and anonymous reads need `anonymous_read` on all of
//! them; a write or delete needs its scope on the `write_to` member too. So
//! a virtual remote never opens a member wider than the member itself is
//! (`artgate check` warns about a virtual remote more open than a member).
//! Credentials are `Authorization: Bearer <token>` or HTTP Basic with any
//! user name and the token as the password (the user name is used when the
//! password is empty). Presented credentials that are wrong are refused
//! with 401 also where anonymous access would do, so a misconfigured client
//! notices.
//!
//! The token is hashed (sha256) and the digest compared with every
//! configured digest in constant time ([`ct_eq`]); the configuration holds
//! only digests. The `Authorization` header is removed from the request
//! once it has been checked (see `server.rs`), so it can reach neither an
//! adapter nor an upstream; logs name the token, never show it.

use crate::body::{self, ResBody};
use crate::config::{Config, RemoteConfig, Scopes, TokenConfig};
use crate::routes::{AdminRoute, Route};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use sha2::Digest as _;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: an open endpoint.
    Open,
    /// The `read` scope on the remote (or nothing, with `anonymous_read`).
    Read,
    /// The `write` scope on the remote.
    Write,
    /// The `delete` scope on the remote.
    Delete,
    /// An admin token.
    Admin,
}

impl Need {
    /// The scope's name as tokens and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Open => "open",
            Need::Read => "read",
            Need::Write => "write",
            Need::Delete => "delete",
            Need::Admin => "admin",
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials where they are needed.
    #[error(
        "this request needs a token: send Authorization: Bearer <token>, or HTTP Basic authentication with the token as the password"
    )]
    Missing,
    /// The `Authorization` header could not be read.
    #[error("the Authorization header is malformed: {0}")]
    Malformed(&'static str),
    /// The token matches no configured token.
    #[error("the token is not valid")]
    Invalid,
    /// A valid token without the scope the request needs.
    #[error("token {token:?} {}", forbidden_reason(*need, remote.as_deref(), via.as_deref()))]
    Forbidden {
        /// The token's configured name.
        token: String,
        /// What was needed.
        need: Need,
        /// The remote lacking the scope, for remote routes.
        remote: Option<String>,
        /// The virtual remote of the URL, when `remote` is one of the
        /// remotes it reaches.
        via: Option<String>,
    },
}

fn forbidden_reason(need: Need, remote: Option<&str>, via: Option<&str>) -> String {
    match (need, remote, via) {
        (Need::Admin, _, _) | (_, None, _) => "is not an admin token".into(),
        (need, Some(r), None) => format!("has no {} scope on remote {r:?}", need.as_str()),
        (need, Some(r), Some(v)) => format!(
            "has no {} scope on remote {r:?}, which virtual remote {v:?} reaches",
            need.as_str()
        ),
    }
}

impl AuthError {
    /// 401 for missing or wrong credentials, 403 for a missing scope.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Forbidden { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The error response: JSON with one sentence, or the OCI error format
    /// when `oci`; 401s carry the `WWW-Authenticate` challenges.
    pub fn response(&self, oci: bool) -> Response<ResBody> {
        let status = self.status();
        let mut r = if oci {
            let code = match self {
                AuthError::Forbidden { .. } => "DENIED",
                _ => "UNAUTHORIZED",
            };
            body::oci_error(status, code, self.to_string())
        } else {
            body::error(status, self.to_string())
        };
        if status == StatusCode::UNAUTHORIZED {
            for c in ["Bearer realm=\"artgate\"", "Basic realm=\"artgate\""] {
                r.headers_mut()
                    .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
            }
        }
        r
    }
}

/// What `route` with `method` needs.
pub fn need(route: &Route, method: &Method) -> Need {
    match route {
        Route::Admin(AdminRoute::Config | AdminRoute::Flush { .. }) => Need::Admin,
        // The console checks its own requests (a session cookie counts).
        Route::Admin(_) | Route::RegistryPing | Route::Console => Need::Open,
        // Nodes of a cluster show the cluster token (serve/peer.rs).
        Route::Peer { .. } => Need::Open,
        Route::Remote { .. } => match *method {
            Method::GET | Method::HEAD => Need::Read,
            Method::DELETE => Need::Delete,
            _ => Need::Write,
        },
    }
}

/// Check a request. `Ok(Some(token))` names the token that authorised it,
/// `Ok(None)` means no token was needed (or access control is off).
pub fn authorize<'a>(
    config: &'a Config,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<&'a TokenConfig>, AuthError> {
    if config.tokens.is_empty() {
        return Ok(None);
    }
    let need = need(route, method);
    let remote = match route {
        Route::Remote { remote, .. } => {
            match config.remote(remote) {
                Some(r) => Some(r),
                // Unknown remotes get their 404 from the proxy.
                None => return Ok(None),
            }
        }
        _ => None,
    };
    if need == Need::Open {
        return Ok(None);
    }
    // The remote of the URL and, for a virtual one, what it reaches.
    let reached = remote.map_or_else(Vec::new, |r| config.reached(r, need != Need::Read));
    let anonymous =
        need == Need::Read && !reached.is_empty() && reached.iter().all(|r| r.anonymous_read);
    let Some(token) = presented(config, headers)? else {
        return if anonymous {
            Ok(None)
        } else {
            Err(AuthError::Missing)
        };
    };
    let lacking = match (need, remote) {
        (Need::Admin, _) => (!token.admin).then_some(None),
        (_, None) => Some(None),
        (need, Some(_)) => reached
            .iter()
            .find(|r| !has_scope(token, r, need))
            .map(|r| Some(*r)),
    };
    match lacking {
        None => Ok(Some(token)),
        Some(r) => Err(AuthError::Forbidden {
            token: token.name.clone(),
            need,
            remote: r.or(remote).map(|r| r.name.clone()),
            via: remote
                .filter(|v| r.is_some_and(|r| r.name != v.name))
                .map(|v| v.name.clone()),
        }),
    }
}

/// The configured token a request's `Authorization` header presents;
/// `None` without the header, an error when it is malformed or the token
/// is not valid.
pub fn presented<'a>(
    config: &'a Config,
    headers: &HeaderMap,
) -> Result<Option<&'a TokenConfig>, AuthError> {
    match credentials(headers)? {
        None => Ok(None),
        Some(secret) => token_for(config, &secret)
            .map(Some)
            .ok_or(AuthError::Invalid),
    }
}

/// The configured token whose secret is `secret` (the operator console's
/// login form).
pub fn token_for<'a>(config: &'a Config, secret: &str) -> Option<&'a TokenConfig> {
    find(&config.tokens, secret.as_bytes())
}

/// Whether `token` (`None`: no credentials) may do what `need` asks on
/// `remote`, with the same rules as a request on the remote's URL: for a
/// virtual remote, on every remote it reaches. Always true with access
/// control off.
pub fn may(
    config: &Config,
    token: Option<&TokenConfig>,
    remote: &RemoteConfig,
    need: Need,
) -> bool {
    if config.tokens.is_empty() {
        return true;
    }
    let reached = config.reached(remote, need != Need::Read);
    match (token, need) {
        (_, Need::Open) => true,
        (token, Need::Admin) => token.is_some_and(|t| t.admin),
        (None, Need::Read) => !reached.is_empty() && reached.iter().all(|r| r.anonymous_read),
        (None, _) => false,
        (Some(t), need) => reached.iter().all(|r| has_scope(t, r, need)),
    }
}

/// Whether `token` may do what `need` asks on `remote` itself (a read also
/// when the remote allows anonymous reads).
fn has_scope(token: &TokenConfig, remote: &RemoteConfig, need: Need) -> bool {
    let s = scopes_on(token, &remote.name);
    match need {
        Need::Read => s.read || remote.anonymous_read,
        Need::Write => s.write,
        Need::Delete => s.delete,
        Need::Open | Need::Admin => false,
    }
}

/// The scopes `token` has on `remote` (its own entry and `*` together).
pub fn scopes_on(token: &TokenConfig, remote: &str) -> Scopes {
    token
        .scopes
        .iter()
        .filter(|(r, _)| r == "*" || r == remote)
        .fold(Scopes::default(), |acc, (_, s)| acc.union(*s))
}

/// The token a request presents: `Bearer <token>`, or the password (else
/// the user name) of `Basic`. `None` without an `Authorization` header.
fn credentials(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("it is not ASCII"))?
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| AuthError::Malformed("the Basic credentials are not valid base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| AuthError::Malformed("the Basic credentials are not UTF-8"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or(AuthError::Malformed("the Basic credentials have no ':'"))?;
        if password.is_empty() {
            user.to_owned()
        } else {
            password.to_owned()
        }
    } else {
        return Err(AuthError::Malformed("only Bearer and Basic are supported"));
    };
    if token.is_empty() {
        return Err(AuthError::Malformed("the token is empty"));
    }
    Ok(Some(token))
}

/// The configured token whose digest equals the digest of `presented`.
/// Every configured digest is compared (no early exit), each in constant
/// time.
fn find<'a>(tokens: &'a [TokenConfig], presented: &[u8]) -> Option<&'a TokenConfig> {
    let digest: [u8; 32] = sha2::Sha256::digest(presented).into();
    let mut found = None;
    for t in tokens {
        if ct_eq(&t.sha256, &digest) {
            found = Some(t);
        }
    }
    found
}

/// Constant-time equality of two sha256 digests.
///
/// Hand-rolled rather than a dependency: both inputs are fixed-size
/// 32-byte arrays, so there is no length to leak, and the loop ORs the XOR
/// of every byte pair without a data-dependent branch; `black_box` keeps
/// the optimiser from turning the fold into an early-exit comparison.
/// What is compared is a digest of the presented token, so even a timing
/// leak would reveal bytes of a hash, which an attacker cannot steer toward
/// the configured token's hash without a preimage.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= std::hint::black_box(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = format!(
            r#"
[[remote]]
name = "builds"
package = "local"
anonymous_read = false
[[remote]]
name = "open"
package = "local"
[[token]]
name = "reader"
token_sha256 = "{}"
scopes = {{ builds = ["read"] }}
[[token]]
name = "writer"
token_sha256 = "{}"
scopes = {{ "*" = ["read"], builds = ["write", "delete"] }}
[[token]]
name = "admin"
token_sha256 = "{}"
admin = true
"#,
            hex::encode(sha2::Sha256::digest(b"reader-token-0123456789")),
            hex::encode(sha2::Sha256::digest(b"writer-token-0123456789")),
            hex::encode(sha2::Sha256::digest(b"admin-token-0123456789")),
        );
        crate::config::parse_with_env(&text, std::path::Path::new(""), &|_| None).unwrap()
    }

    fn check(method: &str, path: &str, auth: Option<&str>) -> Result<Option<String>, StatusCode> {
        let c = config();
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let route = crate::routes::parse(&m, &path.parse().unwrap()).unwrap();
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        authorize(&c, &route, &m, &h)
            .map(|t| t.map(|t| t.name.clone()))
            .map_err(|e| e.status())
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn matrix() {
        let b = "/api/v1/remote/builds/x";
        let o = "/api/v1/remote/open/x";
        let r = Some("Bearer reader-token-0123456789");
        let w = Some("Bearer writer-token-0123456789");
        let a = Some("Bearer admin-token-0123456789");
        assert_eq!(check("GET", b, None), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(
            check("GET", b, Some("Bearer nope")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(check("GET", b, r), Ok(Some("reader".into())));
        assert_eq!(check("PUT", b, r), Err(StatusCode::FORBIDDEN));
        assert_eq!(check("PUT", b, w), Ok(Some("writer".into())));
        assert_eq!(check("DELETE", b, w), Ok(Some("writer".into())));
        assert_eq!(check("GET", b, a), Err(StatusCode::FORBIDDEN));
        assert_eq!(check("GET", o, None), Ok(None));
        assert_eq!(
            check("GET", o, Some("Bearer nope")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(check("GET", o, a), Ok(Some("admin".into())));
        assert_eq!(check("PUT", o, w), Err(StatusCode::FORBIDDEN));
        assert_eq!(check("GET", "/config", w), Err(StatusCode::FORBIDDEN));
        assert_eq!(check("GET", "/config", a), Ok(Some("admin".into())));
        assert_eq!(
            check("PUT", "/cache/flush", None),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(check("GET", "/health", Some("Bearer nope")), Ok(None));
        assert_eq!(check("GET", "/v2/", None), Ok(None));
        // Basic: the password is the token; an empty password uses the user.
        assert_eq!(
            check("PUT", b, Some(&basic("dvc", "writer-token-0123456789"))),
            Ok(Some("writer".into()))
        );
        assert_eq!(
            check("GET", b, Some(&basic("reader-token-0123456789", ""))),
            Ok(Some("reader".into()))
        );
        assert_eq!(
            check("GET", b, Some("Basic !!!")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            check("GET", b, Some("Digest x")),
            Err(StatusCode::UNAUTHORIZED)
        );
        // Unknown remotes are left to the proxy (404).
        assert_eq!(check("PUT", "/api/v1/remote/nope/x", None), Ok(None));
    }

    /// A virtual remote needs what every remote it reaches needs: reads
    /// each member (recursively), writes and deletes its `write_to`.
    #[test]
    fn virtual_remotes_need_what_their_members_need() {
        let text = format!(
            r#"
[[remote]]
name = "private"
package = "local"
anonymous_read = false
[[remote]]
name = "public"
package = "local"
[[remote]]
name = "inner"
package = "virtual"
members = ["private"]
[[remote]]
name = "all"
package = "virtual"
members = ["public", "inner"]
write_to = "public"
[[token]]
name = "virt"
token_sha256 = "{}"
scopes = {{ all = ["read", "write", "delete"] }}
[[token]]
name = "both"
token_sha256 = "{}"
scopes = {{ all = ["read", "write"], private = ["read"], public = ["write"] }}
"#,
            hex::encode(sha2::Sha256::digest(b"virt-token-0123456789")),
            hex::encode(sha2::Sha256::digest(b"both-token-0123456789")),
        );
        let c = crate::config::parse_with_env(&text, std::path::Path::new(""), &|_| None).unwrap();
        let check = |method: &str, remote: &str, auth: Option<&str>| {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let path = format!("/api/v1/remote/{remote}/x");
            let route = crate::routes::parse(&m, &path.parse().unwrap()).unwrap();
            let mut h = HeaderMap::new();
            if let Some(a) = auth {
                h.insert(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
            }
            authorize(&c, &route, &m, &h).map(|t| t.map(|t| t.name.clone()))
        };
        let virt = Some("Bearer virt-token-0123456789");
        let both = Some("Bearer both-token-0123456789");
        assert_eq!(check("GET", "public", None), Ok(None));
        for v in ["all", "inner"] {
            assert_eq!(check("GET", v, None), Err(AuthError::Missing), "{v}");
        }
        match check("GET", "all", virt) {
            Err(e @ AuthError::Forbidden { .. }) => assert_eq!(
                e.to_string(),
                "token \"virt\" has no read scope on remote \"private\", which virtual remote \"all\" reaches"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(check("GET", "all", both), Ok(Some("both".into())));
        assert!(matches!(
            check("PUT", "all", virt),
            Err(AuthError::Forbidden { .. })
        ));
        assert_eq!(check("PUT", "all", both), Ok(Some("both".into())));
        assert!(matches!(
            check("DELETE", "all", both),
            Err(AuthError::Forbidden { .. })
        ));
    }

    #[test]
    fn constant_time_compare() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
    }

    #[test]
    fn messages_never_contain_the_token() {
        let e = check(
            "GET",
            "/api/v1/remote/builds/x",
            Some("Bearer secret-value-xyz"),
        );
        assert_eq!(e, Err(StatusCode::UNAUTHORIZED));
        for e in [AuthError::Missing, AuthError::Invalid] {
            assert!(!e.to_string().contains("secret-value"));
        }
        let f = AuthError::Forbidden {
            token: "ci".into(),
            need: Need::Write,
            remote: Some("builds".into()),
            via: None,
        };
        assert_eq!(
            f.to_string(),
            "token \"ci\" has no write scope on remote \"builds\""
        );
        let r = AuthError::Missing.response(false);
        assert_eq!(
            r.headers().get_all(header::WWW_AUTHENTICATE).iter().count(),
            2
        );
    }
}
