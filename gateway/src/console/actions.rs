//! What the console changes: logging in and out, flushing, rescanning the
//! plugin directory, deleting and uploading files of hosted remotes, and
//! downloading stored files. Each change is checked against forgery
//! ([`Viewer::check_forgery`]), needs its scope, and is logged with the
//! token's name.

use super::access::{AccessError, Via, Viewer, same_origin};
use super::form::{Form, encode};
use super::pages::{ConfirmPage, LoginPage, MessagePage};
use super::session::{CSRF_COOKIE, SESSION_COOKIE, cookie, same_token, set_cookie};
use super::{chrome, denied, fail, html, html_status, redirect, secure, store_failed};
use crate::auth::Need;
use crate::body::ResBody;
use crate::cache::Outcome;
use crate::config::RemoteMode;
use crate::plugins::wit::RouteKind;
use crate::reqbody::{ClientBody, ClientStream};
use crate::serve::Target;
use crate::state::AppState;
use crate::store::EntryId;
use askama::Template;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use std::sync::Arc;

/// `GET /ui/login` (the form) and `POST /ui/login` (a token in, a session
/// cookie out).
pub async fn login(state: &Arc<AppState>, parts: Parts, body: ClientStream) -> Response<ResBody> {
    let config = &state.config;
    let anonymous = Viewer {
        token: None,
        via: Via::Basic,
    };
    if config.tokens.is_empty() {
        return redirect("/ui/");
    }
    let query = Form::parse(parts.uri.query().unwrap_or("")).unwrap_or_default();
    let next = local_target(query.get("next"));
    if parts.method != Method::POST {
        let (c, cookie) = chrome(state, &anonymous, &parts.headers, "Log in", "");
        return html(LoginPage { c, next }.render(), cookie);
    }
    let form = match Form::read(body).await {
        Ok(f) => f,
        Err(e) => return fail(false, e.status(), e.to_string()),
    };
    // Login forgery (logging a victim in as the attacker) is refused like
    // any other: same origin, and the CSRF cookie's token in the form.
    let forged = same_origin(
        &parts.headers,
        crate::public_url::client_authority(&parts),
        config.server.public_url.as_deref(),
    )
    .err()
    .or_else(|| {
        match (cookie(&parts.headers, CSRF_COOKIE), form.get("csrf")) {
            (Some(c), Some(f)) if same_token(c, f) => None,
            _ => Some(AccessError::Forgery(
                "the login form's CSRF token does not match this browser's: reload the login page and try again",
            )),
        }
    });
    if let Some(e) = forged {
        return denied(false, &e);
    }
    let next = local_target(form.get("next"));
    let Some(token) = form
        .non_empty("token")
        .and_then(|t| crate::auth::token_for(config, t))
    else {
        tracing::info!("console login refused: the token is not valid");
        let (mut c, cookie) = chrome(state, &anonymous, &parts.headers, "Log in", "");
        c.notice = Some("That token is not valid.".into());
        return html_status(
            StatusCode::UNAUTHORIZED,
            LoginPage { c, next }.render(),
            cookie,
        );
    };
    let id = match state.console.sessions.open(&token.name) {
        Ok(id) => id,
        Err(e) => return fail(false, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    tracing::info!(token = %token.name, "console login");
    let mut r = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, &id, secure(state), None)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `POST /ui/logout`.
pub async fn logout(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    parts: Parts,
    body: ClientStream,
) -> Response<ResBody> {
    let form = match checked_form(state, viewer, &parts, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    drop(form);
    if let Some(id) = cookie(&parts.headers, SESSION_COOKIE) {
        state.console.sessions.close(id);
    }
    tracing::info!(token = viewer.name(), "console logout");
    let mut r = redirect("/ui/login");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", secure(state), Some(0))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /ui/confirm?action=flush|delete|rescan&remote=R&key=K`: what the
/// action will do, and the button that does it.
pub fn confirm(state: &Arc<AppState>, viewer: &Viewer<'_>, parts: &Parts) -> Response<ResBody> {
    let q = match Form::parse(parts.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return fail(false, e.status(), e.to_string()),
    };
    let (c, cookie) = chrome(state, viewer, &parts.headers, "Confirm", "");
    let remote = q.non_empty("remote").unwrap_or("").to_owned();
    let key = q.non_empty("key").map(str::to_owned);
    let back = if remote.is_empty() {
        "/ui/".to_owned()
    } else {
        format!("/ui/remotes/{}", encode(&remote))
    };
    let mut fields = vec![("remote".to_owned(), remote.clone())];
    if let Some(k) = &key {
        fields.push(("key".to_owned(), k.clone()));
    }
    let page = match q.get("action") {
        Some("flush") => {
            if let Err(e) = viewer.require_admin() {
                return denied(false, &e);
            }
            ConfirmPage {
                c,
                heading: "Flush".into(),
                question: match &key {
                    Some(k) => format!(
                        "Drop the cached entry {k:?} of remote {remote:?}? The next request fetches it from the upstream again."
                    ),
                    None => format!(
                        "Drop every cached entry of remote {remote:?}? Later requests fetch them from the upstream again."
                    ),
                },
                action: "/ui/actions/flush".into(),
                fields,
                button: "Flush".into(),
                back,
            }
        }
        Some("delete") => {
            if let Err(r) = hosted(state, viewer, &remote, Need::Delete, false) {
                return *r;
            }
            let Some(k) = key else {
                return fail(
                    false,
                    StatusCode::BAD_REQUEST,
                    "the key of the file to delete is missing",
                );
            };
            ConfirmPage {
                c,
                heading: "Delete".into(),
                question: format!(
                    "Delete {k:?} from hosted remote {remote:?}? This is the only copy; it cannot be undone."
                ),
                action: format!("/ui/remotes/{}/delete", encode(&remote)),
                fields: vec![("key".to_owned(), k)],
                button: "Delete".into(),
                back,
            }
        }
        Some("rescan") => {
            if let Err(e) = viewer.require_admin() {
                return denied(false, &e);
            }
            ConfirmPage {
                c,
                heading: "Rescan the plugin directory".into(),
                question: "Load new and changed adapter files from the plugin directory now, and forget removed ones?".into(),
                action: "/ui/actions/rescan".into(),
                fields: Vec::new(),
                button: "Rescan".into(),
                back: "/ui/plugins".into(),
            }
        }
        _ => {
            return fail(
                false,
                StatusCode::BAD_REQUEST,
                "the action to confirm must be flush, delete or rescan",
            );
        }
    };
    html(page.render(), cookie)
}

/// `POST /ui/actions/flush` (form: `remote`, optional `key`).
pub async fn flush(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    parts: Parts,
    body: ClientStream,
) -> Response<ResBody> {
    let form = match checked_form(state, viewer, &parts, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let remote = form.get("remote").unwrap_or("").to_owned();
    let r = flush_now(state, viewer, &remote, form.non_empty("key"), false).await;
    if r.status() != StatusCode::OK {
        return r;
    }
    done(
        state,
        viewer,
        &parts,
        "Flushed",
        r,
        &format!("/ui/remotes/{}", encode(&remote)),
    )
    .await
}

/// Flush `remote` (a pull-through one), or its entry `key`; admin only.
/// `api` picks the answer's format: JSON, or a JSON one-liner the caller
/// turns into a page.
pub async fn flush_now(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    remote: &str,
    key: Option<&str>,
    api: bool,
) -> Response<ResBody> {
    if let Err(e) = viewer.require_admin() {
        return denied(api, &e);
    }
    let Some(rt) = state.remotes.get(remote) else {
        return fail(
            api,
            StatusCode::NOT_FOUND,
            format!("there is no remote named {remote:?}"),
        );
    };
    if rt.cfg.mode == RemoteMode::Hosted {
        return fail(
            api,
            StatusCode::BAD_REQUEST,
            format!(
                "remote {remote:?} is hosted and holds the only copy of its files; delete them one by one instead of flushing"
            ),
        );
    }
    match crate::admin::drop_cached(state, vec![remote.to_owned()], key.map(str::to_owned)).await {
        Ok((entries, blobs)) => {
            tracing::info!(
                token = viewer.name(),
                action = "flush",
                remote,
                key = key.unwrap_or(""),
                entries,
                blobs,
                "console action"
            );
            let message = match key {
                Some(k) if entries == 0 => format!("Remote {remote:?} had no entry {k:?}."),
                Some(k) => {
                    format!("Flushed entry {k:?} of remote {remote:?}; {blobs} blobs deleted.")
                }
                None => format!(
                    "Flushed {entries} entries of remote {remote:?}; {blobs} blobs deleted."
                ),
            };
            crate::body::json(
                StatusCode::OK,
                &serde_json::json!({ "flushed": entries, "blobs_deleted": blobs, "remote": remote, "key": key, "message": message }),
            )
        }
        Err(e) => store_failed(api, &e),
    }
}

/// `POST /ui/actions/rescan`.
pub async fn rescan(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    parts: Parts,
    body: ClientStream,
) -> Response<ResBody> {
    if let Err(r) = checked_form(state, viewer, &parts, body).await {
        return *r;
    }
    let r = rescan_now(state, viewer, false).await;
    if r.status() != StatusCode::OK {
        return r;
    }
    done(state, viewer, &parts, "Rescanned", r, "/ui/plugins").await
}

/// Rescan the plugin directory; admin only.
pub async fn rescan_now(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    api: bool,
) -> Response<ResBody> {
    if let Err(e) = viewer.require_admin() {
        return denied(api, &e);
    }
    let changed = state.plugins.rescan().await;
    tracing::info!(
        token = viewer.name(),
        action = "rescan",
        changed,
        "console action"
    );
    let message = if changed {
        "The plugin directory was rescanned; the adapters changed (see the reload history)."
    } else {
        "The plugin directory was rescanned; nothing had changed."
    };
    crate::body::json(
        StatusCode::OK,
        &serde_json::json!({ "changed": changed, "message": message }),
    )
}

/// `POST /ui/remotes/{r}/delete` (form: `key`): a DELETE on the hosted
/// remote, through the same path as any client's.
pub async fn delete(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    remote: &str,
    parts: Parts,
    body: ClientStream,
    request_id: &str,
) -> Response<ResBody> {
    if let Err(r) = hosted(state, viewer, remote, Need::Delete, false) {
        return *r;
    }
    let form = match checked_form(state, viewer, &parts, body).await {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let key = match form.non_empty("key").map(crate::routes::normalize_path) {
        Some(Ok(k)) => k,
        Some(Err(e)) => {
            return fail(
                false,
                StatusCode::BAD_REQUEST,
                format!("the key is not valid: {e}"),
            );
        }
        None => {
            return fail(
                false,
                StatusCode::BAD_REQUEST,
                "the key of the file to delete is missing",
            );
        }
    };
    let inner = inner_parts(&parts, Method::DELETE, remote, &key);
    let target = Target {
        kind: RouteKind::RemoteApi,
        remote,
        path: &key,
        request_id,
    };
    let (r, _) = crate::serve::serve(
        state.clone(),
        inner,
        ClientBody::Buffered(Bytes::new()),
        target,
    )
    .await;
    tracing::info!(token = viewer.name(), action = "delete", remote, key = %key, status = r.status().as_u16(), "console action");
    let back = format!("/ui/remotes/{}/browse", encode(remote));
    if r.status().is_success() {
        let (mut c, cookie) = chrome(state, viewer, &parts.headers, "Deleted", "remotes");
        c.notice = None;
        let page = MessagePage {
            c,
            heading: "Deleted".into(),
            text: format!("Deleted {key:?} from remote {remote:?}."),
            error: false,
            back,
        };
        return html(page.render(), cookie);
    }
    let status = r.status();
    let text = error_text(r).await;
    fail(
        false,
        status,
        format!("The gateway refused to delete {key:?}: {text}"),
    )
}

/// `/ui/remotes/{r}/files/{key}`: `GET` downloads the stored entry `key`
/// (read scope; from the store only, never the upstream); `PUT` uploads a
/// file to `key` of a hosted remote through the same path as any client's
/// upload (write scope; sent by `console.js` with the CSRF header).
pub async fn file(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    remote: &str,
    key: &str,
    parts: Parts,
    body: ClientStream,
    request_id: &str,
) -> Response<ResBody> {
    if parts.method == Method::PUT {
        if let Err(r) = hosted(state, viewer, remote, Need::Write, true) {
            return *r;
        }
        if let Err(e) = viewer.check_forgery(&parts, public_url(state), None) {
            return denied(true, &e);
        }
        let inner = inner_parts(&parts, Method::PUT, remote, key);
        let target = Target {
            kind: RouteKind::RemoteApi,
            remote,
            path: key,
            request_id,
        };
        let (r, outcome) = crate::serve::handle(state.clone(), inner, body, target).await;
        tracing::info!(
            token = viewer.name(),
            action = "upload",
            remote,
            key,
            status = r.status().as_u16(),
            ok = outcome != Outcome::Error,
            "console action"
        );
        return r;
    }
    if let Err(r) = super::readable(state, viewer, remote, false) {
        return *r;
    }
    let engine = &state.engine;
    let found = match engine.entry(&EntryId::new(remote, key)).await {
        Some(e) if e.status == 200 => engine.open(&e.blob).await.map(|d| (e, d)),
        _ => None,
    };
    let Some((entry, data)) = found else {
        return fail(
            false,
            StatusCode::NOT_FOUND,
            format!("remote {remote:?} has no stored file {key:?}"),
        );
    };
    let head = crate::cache::head::head_of_entry(&entry, Outcome::Hit);
    let size = entry.size;
    let mut r = crate::serve::respond_from(
        engine,
        &parts,
        remote,
        head,
        crate::serve::FillOrBlob::Blob(data, size),
    );
    // A stored file is never run as a page of the console's origin.
    let name = key.rsplit('/').next().unwrap_or(key);
    let h = r.headers_mut();
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode(name)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    r
}

/// The hosted remote `name` when the viewer may do `need` on it; the
/// console uploads and deletes only there (cached entries are flushed).
fn hosted(
    state: &AppState,
    viewer: &Viewer<'_>,
    name: &str,
    need: Need,
    api: bool,
) -> Result<(), Box<Response<ResBody>>> {
    let rt = super::allowed(state, viewer, name, need, api)?;
    if rt.cfg.mode == RemoteMode::Hosted {
        return Ok(());
    }
    Err(Box::new(fail(
        api,
        StatusCode::BAD_REQUEST,
        format!(
            "remote {name:?} is not hosted; the console uploads and deletes only files of hosted remotes (flush cached ones)"
        ),
    )))
}

/// A form body, after the forgery checks.
async fn checked_form(
    state: &AppState,
    viewer: &Viewer<'_>,
    parts: &Parts,
    body: ClientStream,
) -> Result<Form, Box<Response<ResBody>>> {
    let form = Form::read(body)
        .await
        .map_err(|e| Box::new(fail(false, e.status(), e.to_string())))?;
    viewer
        .check_forgery(parts, public_url(state), form.get("csrf"))
        .map_err(|e| Box::new(denied(false, &e)))?;
    Ok(form)
}

/// `server.public_url`, which the browser may name as the origin.
fn public_url(state: &AppState) -> Option<&str> {
    state.config.server.public_url.as_deref()
}

/// The page for a done action whose JSON answer is `r`.
async fn done(
    state: &AppState,
    viewer: &Viewer<'_>,
    parts: &Parts,
    heading: &str,
    r: Response<ResBody>,
    back: &str,
) -> Response<ResBody> {
    let text = json_field(r, "message").await;
    let (c, cookie) = chrome(state, viewer, &parts.headers, heading, "");
    let page = MessagePage {
        c,
        heading: heading.into(),
        text,
        error: false,
        back: back.into(),
    };
    html(page.render(), cookie)
}

/// The request head of a console request turned into `method` on the
/// remote's own URL. Of the browser's headers only those describing an
/// uploaded body go along (never its cookies, credentials, origin or
/// fetch metadata, nor a form's framing on a `DELETE`).
fn inner_parts(parts: &Parts, method: Method, remote: &str, key: &str) -> Parts {
    let (mut p, ()) = http::Request::new(()).into_parts();
    p.version = parts.version;
    p.uri = format!("/api/v1/remote/{remote}/{}", super::form::encode_path(key))
        .parse()
        .unwrap_or_default();
    if method == Method::PUT {
        for (name, value) in &parts.headers {
            let body_header = [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
                header::EXPECT,
            ]
            .contains(name)
                || name == "content-md5"
                || name.as_str().starts_with("x-checksum-");
            if body_header {
                p.headers.append(name, value.clone());
            }
        }
    }
    p.method = method;
    p
}

/// The `error` sentence of a JSON error response (or its status).
async fn error_text(r: Response<ResBody>) -> String {
    json_field(r, "error").await
}

async fn json_field(r: Response<ResBody>, field: &str) -> String {
    use http_body_util::BodyExt as _;
    let status = r.status();
    // Gateway answers that carry a message are small JSON documents; a
    // bigger body is cut (and then not JSON).
    let mut body = r.into_body();
    let mut bytes = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > 64 * 1024 {
                break;
            }
            bytes.extend_from_slice(&data);
        }
    }
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v[field].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the gateway answered {status}"))
}

/// `next` when it is a path of the console, else the overview.
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.contains("//") && !n.contains('\\') => n.to_owned(),
        _ => "/ui/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_login_targets() {
        assert_eq!(local_target(Some("/ui/remotes")), "/ui/remotes");
        assert_eq!(local_target(Some("https://evil/ui/")), "/ui/");
        assert_eq!(local_target(Some("//evil/ui/")), "/ui/");
        assert_eq!(local_target(Some("/ui//evil")), "/ui/");
        assert_eq!(local_target(None), "/ui/");
    }
}
