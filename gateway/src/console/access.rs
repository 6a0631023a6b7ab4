//! Who is asking the console, and whether they may.
//!
//! Without `[[token]]` tables the console is open, like the rest of the
//! gateway, and says so in a banner. With tokens, a request is identified
//! by, in this order: an `Authorization` header (Bearer or Basic, as on
//! every other route), or the session cookie the login form set. Looking
//! needs any valid token; a remote's content needs `read` on it (or its
//! `anonymous_read`), uploads `write`, deletes `delete`, actions an admin
//! token.
//!
//! Every request that changes something (`POST`, `PUT`) is checked against
//! cross-site request forgery twice: the browser's `Sec-Fetch-Site` or
//! `Origin` must say the request came from the gateway's own pages, and
//! the request must carry the CSRF token of its session (of the
//! `artgate_csrf` cookie without one) in a form field or the
//! `X-CSRF-Token` header. Only Bearer requests skip the token check: a
//! browser never sends a Bearer header by itself.

use super::session::{CSRF_COOKIE, SESSION_COOKIE, Session, cookie, same_token};
use crate::auth::{self, AuthError, Need};
use crate::config::{Config, RemoteConfig, TokenConfig};
use crate::state::AppState;
use http::{HeaderMap, StatusCode, header};

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// Access control is off.
    Open,
    /// The session cookie.
    Session(Session),
    /// `Authorization: Basic` (browsers resend it by themselves).
    Basic,
    /// `Authorization: Bearer` (scripts).
    Bearer,
}

/// The one asking.
#[derive(Debug, Clone)]
pub struct Viewer<'a> {
    /// The token, with access control on.
    pub token: Option<&'a TokenConfig>,
    /// How it was presented.
    pub via: Via,
}

/// Why the console refused a request.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Access control is on and the request brought no credentials.
    #[error(
        "the console needs a token: log in at /ui/login, or send Authorization: Bearer <token>"
    )]
    NotLoggedIn,
    /// The credentials presented are not valid.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The token lacks what the request needs.
    #[error("token {token:?} {what}")]
    Forbidden {
        /// The token's name.
        token: String,
        /// What it may not do, e.g. `has no write scope on remote "files"`.
        what: String,
    },
    /// The request failed the cross-site request forgery checks.
    #[error("{0}")]
    Forgery(&'static str),
}

impl AccessError {
    /// 401 without valid credentials, 403 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            AccessError::NotLoggedIn => StatusCode::UNAUTHORIZED,
            AccessError::Auth(e) => e.status(),
            AccessError::Forbidden { .. } | AccessError::Forgery(_) => StatusCode::FORBIDDEN,
        }
    }
}

impl Viewer<'_> {
    /// The token's name for logs and the page header (`-` when open).
    pub fn name(&self) -> &str {
        self.token.map_or("-", |t| t.name.as_str())
    }

    /// Whether access control is off.
    pub fn is_open(&self) -> bool {
        matches!(self.via, Via::Open)
    }

    /// Whether the console's actions are allowed (an admin token, or
    /// access control off).
    pub fn is_admin(&self) -> bool {
        self.is_open() || self.token.is_some_and(|t| t.admin)
    }

    /// Whether the viewer may do `need` on `remote`.
    pub fn may(&self, config: &Config, remote: &RemoteConfig, need: Need) -> bool {
        self.is_open() || auth::may(config, self.token, remote, need)
    }

    /// [`Viewer::may`], as an error naming what is missing.
    pub fn require(
        &self,
        config: &Config,
        remote: &RemoteConfig,
        need: Need,
    ) -> Result<(), AccessError> {
        if self.may(config, remote, need) {
            return Ok(());
        }
        let scope = match need {
            Need::Read | Need::Open => "read",
            Need::Write => "write",
            Need::Delete => "delete",
            Need::Admin => "admin",
        };
        Err(AccessError::Forbidden {
            token: self.name().to_owned(),
            what: format!("has no {scope} scope on remote {:?}", remote.name),
        })
    }

    /// An error unless the viewer is an admin.
    pub fn require_admin(&self) -> Result<(), AccessError> {
        if self.is_admin() {
            return Ok(());
        }
        Err(AccessError::Forbidden {
            token: self.name().to_owned(),
            what: "is not an admin token, and console actions need one".into(),
        })
    }

    /// The CSRF token the viewer's pages put into forms: its session's, or
    /// the `artgate_csrf` cookie's (`None` when the browser has none yet;
    /// the page then sets one, see [`super::pages`]).
    pub fn csrf<'h>(&'h self, headers: &'h HeaderMap) -> Option<&'h str> {
        match &self.via {
            Via::Session(s) => Some(&s.csrf),
            _ => cookie(headers, CSRF_COOKIE).filter(|c| !c.is_empty()),
        }
    }

    /// Check a request that changes something against forgery; `presented`
    /// is the CSRF token from its form (the `X-CSRF-Token` header is
    /// looked at when it is `None`).
    pub fn check_forgery(
        &self,
        parts: &http::request::Parts,
        public_url: Option<&str>,
        presented: Option<&str>,
    ) -> Result<(), AccessError> {
        let headers = &parts.headers;
        same_origin(
            headers,
            crate::public_url::client_authority(parts),
            public_url,
        )?;
        if matches!(self.via, Via::Bearer) {
            return Ok(());
        }
        let presented =
            presented.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
        match (self.csrf(headers), presented) {
            (Some(expected), Some(p)) if !expected.is_empty() && same_token(expected, p) => Ok(()),
            (None, _) => Err(AccessError::Forgery(
                "the request carries no CSRF cookie: reload the console page and try again",
            )),
            _ => Err(AccessError::Forgery(
                "the request's CSRF token does not match this browser's: reload the console page and try again",
            )),
        }
    }
}

/// Identify a console request (see the module doc).
pub fn identify<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<Viewer<'a>, AccessError> {
    let config = &*state.config;
    if config.tokens.is_empty() {
        return Ok(Viewer {
            token: None,
            via: Via::Open,
        });
    }
    if let Some(token) = auth::presented(config, headers)? {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"));
        return Ok(Viewer {
            token: Some(token),
            via: if bearer { Via::Bearer } else { Via::Basic },
        });
    }
    let session = cookie(headers, SESSION_COOKIE)
        .and_then(|id| state.console.sessions.get(id))
        .ok_or(AccessError::NotLoggedIn)?;
    // A session names its token; a token removed from the configuration
    // (after a restart) ends every session made with it.
    let token = config
        .tokens
        .iter()
        .find(|t| t.name == session.token)
        .ok_or(AccessError::NotLoggedIn)?;
    Ok(Viewer {
        token: Some(token),
        via: Via::Session(session),
    })
}

/// The browser's own word on where a request came from: `Sec-Fetch-Site`
/// must be `same-origin` (or `none`: typed by the user), and an `Origin`
/// must name the host the request was sent to (`authority`: HTTP/2's
/// `:authority`, else `Host`) or the host of `server.public_url` (`also`).
/// Requests without either header (scripts, old browsers) pass; the CSRF
/// token still guards them.
pub fn same_origin(
    headers: &HeaderMap,
    authority: Option<&str>,
    also: Option<&str>,
) -> Result<(), AccessError> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Err(AccessError::Forgery(
            "the browser says this request came from another site; console actions are only taken from the console's own pages",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let origin_host = host_of(origin);
        let matches = |a: Option<&str>| {
            a.is_some_and(|a| !a.is_empty() && origin_host.eq_ignore_ascii_case(a))
        };
        if origin_host.is_empty() || !(matches(authority) || matches(also.map(host_of))) {
            return Err(AccessError::Forgery(
                "the request's Origin is not the gateway's own address; console actions are only taken from the console's own pages",
            ));
        }
    }
    Ok(())
}

/// `host[:port]` of a URL (`scheme://host[:port][/...]`); empty when it
/// has no scheme (`null`).
fn host_of(url: &str) -> &str {
    url.split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let none = headers(&[]);
        assert!(same_origin(&none, None, None).is_ok());
        let h = headers(&[("sec-fetch-site", "same-origin")]);
        assert!(same_origin(&h, None, None).is_ok());
        for site in ["cross-site", "same-site"] {
            let h = headers(&[("sec-fetch-site", site)]);
            assert!(same_origin(&h, Some("gw:8080"), None).is_err());
        }
        let h = headers(&[("origin", "http://gw:8080")]);
        assert!(same_origin(&h, Some("gw:8080"), None).is_ok());
        assert!(same_origin(&h, Some("evil:8080"), None).is_err());
        // HTTP/2 has no Host: the authority comes from the URI.
        assert!(same_origin(&h, None, None).is_err());
        // Behind a proxy that rewrites Host, public_url names the origin.
        assert!(same_origin(&h, Some("10.0.0.5:8080"), Some("http://gw:8080/")).is_ok());
        let h = headers(&[("origin", "null")]);
        assert!(same_origin(&h, Some("gw:8080"), None).is_err());
    }

    fn parts(pairs: &[(&'static str, &str)]) -> http::request::Parts {
        let (mut p, ()) = http::Request::new(()).into_parts();
        p.headers = headers(pairs);
        p
    }

    #[test]
    fn the_csrf_token_must_match_the_cookie_or_the_session() {
        let open = Viewer {
            token: None,
            via: Via::Open,
        };
        let p = parts(&[("cookie", "artgate_csrf=abc")]);
        assert!(open.check_forgery(&p, None, Some("abc")).is_ok());
        assert!(open.check_forgery(&p, None, Some("abd")).is_err());
        assert!(open.check_forgery(&p, None, None).is_err());
        assert!(open.check_forgery(&parts(&[]), None, Some("abc")).is_err());
        let p = parts(&[("cookie", "artgate_csrf=abc"), ("x-csrf-token", "abc")]);
        assert!(open.check_forgery(&p, None, None).is_ok());
        // An empty cookie is no cookie.
        let p = parts(&[("cookie", "artgate_csrf="), ("x-csrf-token", "")]);
        assert!(open.check_forgery(&p, None, None).is_err());
        let bearer = Viewer {
            token: None,
            via: Via::Bearer,
        };
        assert!(bearer.check_forgery(&parts(&[]), None, None).is_ok());
        let cross = parts(&[("sec-fetch-site", "cross-site")]);
        assert!(bearer.check_forgery(&cross, None, None).is_err());
    }
}
