//! The operator console at `/ui/` and its JSON API under `/api/v1/`
//! (`docs/console.md`): what the cache is doing, its remotes, their
//! content, the adapters and the store, and the few actions an admin
//! takes (flush, delete, upload, rescan).
//!
//! Everything is rendered on the server ([`pages`], askama templates
//! compiled into the binary) from the values [`data`] gathers, so every
//! view reads without JavaScript; `console.js` ([`assets`]) adds live
//! updates of the overview ([`events`], server-sent events) and uploads.
//! Nothing is loaded from elsewhere: the pages' Content-Security-Policy
//! allows only the gateway's own scripts and styles.
//!
//! | file | what |
//! | --- | --- |
//! | `access.rs` | who is asking (token, session, open) and the CSRF checks |
//! | `session.rs` | login sessions and cookies |
//! | `state.rs` | what the console keeps in the running gateway |
//! | `form.rs` | query strings and form bodies |
//! | `data.rs` | what the views show, as serialisable values |
//! | `pages.rs` | the HTML pages |
//! | `api.rs` | the JSON API |
//! | `actions.rs` | login, logout, flush, rescan, delete, upload, download |
//! | `events.rs` | the overview's live updates |
//! | `assets.rs` | the stylesheet and the script |
//! | `recent.rs`, `timeline.rs`, `chart.rs` | recent misses per remote, the last hour per second, SVG charts |

pub mod access;
pub mod actions;
pub mod api;
pub mod assets;
pub mod chart;
pub mod data;
pub mod events;
pub mod form;
pub mod pages;
pub mod recent;
pub mod session;
pub mod state;
pub mod timeline;

use crate::body::{self, ResBody};
use crate::reqbody::ClientStream;
use crate::state::{AppState, RemoteRuntime};
use access::{AccessError, Via, Viewer};
use askama::Template;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use pages::Chrome;
use std::sync::Arc;

/// What a console URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// `/ui/`.
    Overview,
    /// `/ui/remotes`.
    Remotes,
    /// `/ui/remotes/{r}`.
    Remote(String),
    /// `/ui/remotes/{r}/browse`.
    Browse(String),
    /// `/ui/remotes/{r}/files/{key}`: download (GET), upload (PUT).
    File(String, String),
    /// `POST /ui/remotes/{r}/delete`.
    Delete(String),
    /// `/ui/plugins`.
    Plugins,
    /// `/ui/storage`.
    Storage,
    /// `/ui/confirm?action=...`.
    Confirm,
    /// `/ui/login`.
    Login,
    /// `POST /ui/logout`.
    Logout,
    /// `POST /ui/actions/flush`.
    Flush,
    /// `POST /ui/actions/rescan`.
    Rescan,
    /// `/ui/events`.
    Events,
    /// `/ui/assets/{name}`.
    Asset(String),
    /// `/api/v1/...`.
    Api(api::Call),
}

/// Why a console URL was refused before any work.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No such page.
    #[error("there is no console page or API call at this address")]
    NotFound,
    /// A page that exists, with another method.
    #[error("this console address does not take {method}; use {allowed}")]
    Method {
        /// The method sent.
        method: String,
        /// The methods it takes.
        allowed: &'static str,
    },
    /// A remote that is not configured.
    #[error("there is no remote named {0:?}")]
    UnknownRemote(String),
    /// A key that is not a safe path.
    #[error("the file path is not valid: {0}")]
    BadPath(#[from] crate::routes::PathError),
}

impl RouteError {
    /// 404, 405 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            RouteError::NotFound | RouteError::UnknownRemote(_) => StatusCode::NOT_FOUND,
            RouteError::Method { .. } => StatusCode::METHOD_NOT_ALLOWED,
            RouteError::BadPath(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Route a console URL.
pub fn route(method: &Method, path: &str) -> Result<Page, RouteError> {
    let get = |p: Page| check(method, p, &[Method::GET, Method::HEAD], "GET, HEAD");
    let post = |p: Page| check(method, p, &[Method::POST], "POST");
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        return api::route(method, rest).map(Page::Api);
    }
    let Some(rest) = path.strip_prefix("/ui/") else {
        return Err(RouteError::NotFound);
    };
    match rest {
        "" => return get(Page::Overview),
        "remotes" => return get(Page::Remotes),
        "plugins" => return get(Page::Plugins),
        "storage" => return get(Page::Storage),
        "confirm" => return get(Page::Confirm),
        "events" => return get(Page::Events),
        "login" => {
            return check(
                method,
                Page::Login,
                &[Method::GET, Method::HEAD, Method::POST],
                "GET, HEAD, POST",
            );
        }
        "logout" => return post(Page::Logout),
        "actions/flush" => return post(Page::Flush),
        "actions/rescan" => return post(Page::Rescan),
        _ => {}
    }
    if let Some(name) = rest.strip_prefix("assets/") {
        return get(Page::Asset(name.to_owned()));
    }
    let Some(rest) = rest.strip_prefix("remotes/") else {
        return Err(RouteError::NotFound);
    };
    let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let name = known_remote_name(name)?;
    match rest {
        "" => get(Page::Remote(name)),
        "browse" => get(Page::Browse(name)),
        "delete" => post(Page::Delete(name)),
        _ => match rest.strip_prefix("files/") {
            Some(key) => check(
                method,
                Page::File(name, crate::routes::normalize_path(key)?),
                &[Method::GET, Method::HEAD, Method::PUT],
                "GET, HEAD, PUT",
            ),
            None => Err(RouteError::NotFound),
        },
    }
}

/// A remote name as it may appear in a console URL.
pub fn known_remote_name(name: &str) -> Result<String, RouteError> {
    if crate::config::is_valid_remote_name(name) {
        Ok(name.to_owned())
    } else {
        Err(RouteError::UnknownRemote(name.chars().take(64).collect()))
    }
}

fn check(
    method: &Method,
    page: Page,
    allowed: &[Method],
    names: &'static str,
) -> Result<Page, RouteError> {
    if allowed.contains(method) {
        Ok(page)
    } else {
        Err(RouteError::Method {
            method: method.as_str().chars().take(16).collect(),
            allowed: names,
        })
    }
}

/// Answer a console request (routed by `routes.rs` as `Route::Console`).
pub async fn handle(
    state: &Arc<AppState>,
    parts: Parts,
    body: ClientStream,
    request_id: &str,
) -> Response<ResBody> {
    if parts.uri.path() == "/ui" {
        return secured(redirect("/ui/"));
    }
    let api = parts.uri.path().starts_with("/api/v1/");
    let page = match route(&parts.method, parts.uri.path()) {
        Ok(p) => p,
        Err(e) => {
            let mut r = fail(api, e.status(), e.to_string());
            if let RouteError::Method { allowed, .. } = &e {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            return secured(r);
        }
    };
    let resp = match page {
        Page::Asset(name) => assets::serve(&name),
        Page::Login => actions::login(state, parts, body).await,
        page => match access::identify(state, &parts.headers) {
            Ok(viewer) => dispatch(state, &viewer, page, parts, body, request_id).await,
            Err(AccessError::NotLoggedIn) if !api && parts.method != Method::PUT => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/ui/", |p| p.as_str())
                    .to_owned();
                redirect(&format!("/ui/login?next={}", form::encode(&next)))
            }
            Err(e) => denied(api, &e),
        },
    };
    secured(resp)
}

async fn dispatch(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    page: Page,
    parts: Parts,
    body: ClientStream,
    request_id: &str,
) -> Response<ResBody> {
    match page {
        Page::Overview => {
            let (c, cookie) = chrome(state, viewer, &parts.headers, "Overview", "overview");
            let o = data::overview(state, &data::visible(state, viewer)).await;
            html(pages::OverviewPage::new(c, o).render(), cookie)
        }
        Page::Remotes => {
            let (c, cookie) = chrome(state, viewer, &parts.headers, "Remotes", "remotes");
            match data::remotes(state).await {
                Ok(rows) => html(pages::RemotesPage::new(c, rows).render(), cookie),
                Err(e) => store_failed(false, &e),
            }
        }
        Page::Remote(name) => {
            let rt = match readable(state, viewer, &name, false) {
                Ok(rt) => rt,
                Err(r) => return *r,
            };
            let (c, cookie) = chrome(
                state,
                viewer,
                &parts.headers,
                &format!("Remote {name}"),
                "remotes",
            );
            match data::remote(state, &rt.cfg, viewer.is_admin()).await {
                Ok(d) => html(pages::RemotePage::new(c, d).render(), cookie),
                Err(e) => store_failed(false, &e),
            }
        }
        Page::Browse(name) => {
            let rt = match readable(state, viewer, &name, false) {
                Ok(rt) => rt,
                Err(r) => return *r,
            };
            let q = match form::Form::parse(parts.uri.query().unwrap_or("")) {
                Ok(q) => q,
                Err(e) => return fail(false, e.status(), e.to_string()),
            };
            let (c, cookie) = chrome(
                state,
                viewer,
                &parts.headers,
                &format!("Browse {name}"),
                "remotes",
            );
            let prefix = q.get("prefix").unwrap_or("");
            let limit = q
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(data::DEFAULT_PAGE);
            match data::entries(state, &name, prefix, q.non_empty("after"), limit).await {
                Ok(page) => {
                    let hosted = rt.cfg.mode == crate::config::RemoteMode::Hosted;
                    let config = &state.config;
                    let rights = pages::BrowseRights {
                        upload: hosted && viewer.may(config, &rt.cfg, crate::auth::Need::Write),
                        delete: hosted && viewer.may(config, &rt.cfg, crate::auth::Need::Delete),
                        flush: !hosted && viewer.is_admin(),
                    };
                    html(pages::BrowsePage::new(c, page, rights).render(), cookie)
                }
                Err(e) => store_failed(false, &e),
            }
        }
        Page::Plugins => {
            let (c, cookie) = chrome(state, viewer, &parts.headers, "Plugins", "plugins");
            html(
                pages::PluginsPage::new(c, data::plugins(state).await).render(),
                cookie,
            )
        }
        Page::Storage => {
            let (c, cookie) = chrome(state, viewer, &parts.headers, "Storage", "storage");
            html(
                pages::StoragePage::new(c, data::storage(state).await).render(),
                cookie,
            )
        }
        Page::Confirm => actions::confirm(state, viewer, &parts),
        Page::Logout => actions::logout(state, viewer, parts, body).await,
        Page::Flush => actions::flush(state, viewer, parts, body).await,
        Page::Rescan => actions::rescan(state, viewer, parts, body).await,
        Page::Delete(name) => actions::delete(state, viewer, &name, parts, body, request_id).await,
        Page::File(name, key) => {
            actions::file(state, viewer, &name, &key, parts, body, request_id).await
        }
        Page::Events => events::stream(state.clone(), data::visible(state, viewer)),
        Page::Api(call) => api::answer(state, viewer, call, parts, body).await,
        Page::Asset(_) | Page::Login => fail(false, StatusCode::NOT_FOUND, "not found"),
    }
}

/// The remote `name` when the viewer may read it, else the error page
/// (`api`: JSON).
pub fn readable(
    state: &AppState,
    viewer: &Viewer<'_>,
    name: &str,
    api: bool,
) -> Result<Arc<RemoteRuntime>, Box<Response<ResBody>>> {
    allowed(state, viewer, name, crate::auth::Need::Read, api)
}

/// The remote `name` when the viewer may do `need` on it, else the error
/// page (`api`: JSON): 404 for an unknown remote, 401/403 without the
/// scope.
pub fn allowed(
    state: &AppState,
    viewer: &Viewer<'_>,
    name: &str,
    need: crate::auth::Need,
    api: bool,
) -> Result<Arc<RemoteRuntime>, Box<Response<ResBody>>> {
    let Some(rt) = state.remotes.get(name) else {
        let e = RouteError::UnknownRemote(name.to_owned());
        return Err(Box::new(fail(api, e.status(), e.to_string())));
    };
    viewer
        .require(&state.config, &rt.cfg, need)
        .map_err(|e| Box::new(denied(api, &e)))?;
    Ok(rt.clone())
}

/// Whether the console's cookies are `Secure`: the gateway speaks TLS, or
/// clients reach it by an `https` `server.public_url` (a TLS proxy).
pub fn secure(state: &AppState) -> bool {
    let s = &state.config.server;
    s.tls.is_some()
        || s.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https:"))
}

/// The frame of a page for `viewer`, and the `Set-Cookie` value of a new
/// CSRF cookie when the browser has none and no session.
pub fn chrome(
    state: &AppState,
    viewer: &Viewer<'_>,
    headers: &http::HeaderMap,
    title: &str,
    nav: &'static str,
) -> (Chrome, Option<String>) {
    let (csrf, cookie) = match viewer.csrf(headers) {
        Some(t) => (t.to_owned(), None),
        None => match session::random_token() {
            Ok(t) => {
                let cookie = session::set_cookie(session::CSRF_COOKIE, &t, secure(state), None);
                (t, Some(cookie))
            }
            // Forms then fail their check with a clear message.
            Err(_) => (String::new(), None),
        },
    };
    (
        Chrome {
            title: title.to_owned(),
            nav,
            user: viewer.name().to_owned(),
            logged_in: viewer.token.is_some(),
            session: matches!(viewer.via, Via::Session(_)),
            open: viewer.is_open(),
            admin: viewer.is_admin(),
            csrf,
            notice: None,
            version: env!("CARGO_PKG_VERSION"),
        },
        cookie,
    )
}

/// A rendered page (200), with a cookie to set.
pub fn html(rendered: askama::Result<String>, cookie: Option<String>) -> Response<ResBody> {
    html_status(StatusCode::OK, rendered, cookie)
}

/// A rendered page with `status`.
pub fn html_status(
    status: StatusCode,
    rendered: askama::Result<String>,
    cookie: Option<String>,
) -> Response<ResBody> {
    let page = match rendered {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            return body::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the console page could not be rendered: {e}"),
            );
        }
    };
    let mut r = Response::new(body::full(page));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// An error: JSON for the API, a page for the console.
pub fn fail(api: bool, status: StatusCode, message: impl Into<String>) -> Response<ResBody> {
    let message = message.into();
    if api {
        return body::error(status, message);
    }
    let c = Chrome {
        title: "Error".into(),
        nav: "",
        user: String::new(),
        logged_in: false,
        session: false,
        open: false,
        admin: false,
        csrf: String::new(),
        notice: None,
        version: env!("CARGO_PKG_VERSION"),
    };
    let page = pages::MessagePage {
        c,
        heading: status.canonical_reason().unwrap_or("Error").to_owned(),
        text: message,
        error: true,
        back: "/ui/".into(),
    };
    html_status(status, page.render(), None)
}

/// A refusal by [`access`].
pub fn denied(api: bool, e: &AccessError) -> Response<ResBody> {
    let mut r = fail(api, e.status(), e.to_string());
    if e.status() == StatusCode::UNAUTHORIZED && api {
        r.headers_mut().append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"artgate\""),
        );
    }
    r
}

/// The store failed under a view.
pub fn store_failed(api: bool, e: &crate::store::StoreError) -> Response<ResBody> {
    tracing::error!(error = %e, "console: reading the index failed");
    fail(
        api,
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the gateway could not read its index: {e}"),
    )
}

/// `303 See Other` to `to`.
pub fn redirect(to: &str) -> Response<ResBody> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Headers every console answer carries: only the gateway's own scripts,
/// styles and connections; never framed; not cached (pages show live
/// state and may show what a token may see); no type sniffing. Answers
/// that set their own (downloads, assets) keep theirs.
fn secured(mut r: Response<ResBody>) -> Response<ResBody> {
    let h = r.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_urls_route() {
        let (g, p) = (Method::GET, Method::POST);
        let ok = |m: &Method, path: &str| route(m, path).unwrap();
        assert_eq!(ok(&g, "/ui/"), Page::Overview);
        assert_eq!(ok(&g, "/ui/remotes"), Page::Remotes);
        assert_eq!(ok(&g, "/ui/remotes/files"), Page::Remote("files".into()));
        assert_eq!(
            ok(&g, "/ui/remotes/files/browse"),
            Page::Browse("files".into())
        );
        assert_eq!(
            ok(&Method::PUT, "/ui/remotes/files/files/a%20b/c.txt"),
            Page::File("files".into(), "a b/c.txt".into())
        );
        assert_eq!(ok(&p, "/ui/actions/flush"), Page::Flush);
        assert_eq!(ok(&p, "/ui/login"), Page::Login);
        assert_eq!(
            ok(&g, "/ui/assets/console.css"),
            Page::Asset("console.css".into())
        );
        assert!(matches!(
            route(&g, "/ui/actions/flush"),
            Err(RouteError::Method { .. })
        ));
        assert!(matches!(route(&p, "/ui/"), Err(RouteError::Method { .. })));
        assert!(matches!(
            route(&g, "/ui/nothing"),
            Err(RouteError::NotFound)
        ));
        assert!(matches!(
            route(&g, "/ui/remotes/Bad!/browse"),
            Err(RouteError::UnknownRemote(_))
        ));
        assert!(matches!(
            route(&g, "/ui/remotes/files/files/../config"),
            Err(RouteError::BadPath(_))
        ));
    }
}
