//! The console's JSON API, for scripts as much as for the pages: the same
//! values the pages show ([`super::data`]), and the admin actions. Access
//! as for the console: a Bearer or Basic token (or the session cookie);
//! changes made with a cookie or Basic need the CSRF token in
//! `X-CSRF-Token` (see [`super::access`]).
//!
//! | call | what |
//! | --- | --- |
//! | `GET /api/v1/overview` | the last hour, upstream health, fills, adapters (fills and upstreams of the remotes the token may read) |
//! | `GET /api/v1/fills` | upstream fetches in progress (of the remotes the token may read) |
//! | `GET /api/v1/remotes` | every remote with size, requests, hit ratio, errors |
//! | `GET /api/v1/remotes/{r}` | one remote: the above, entries, recent misses and errors (`read`), its redacted configuration (admins) |
//! | `GET /api/v1/remotes/{r}/entries?prefix=&after=&limit=` | a page of entries in key order (`read`; `limit` ≤ 1000, `next_after` for the next page) |
//! | `GET /api/v1/plugins` | adapters with calls, errors, mean time, and the reload history |
//! | `GET /api/v1/storage` | usage, evictions, the last fsck |
//! | `POST /api/v1/remotes/{r}/flush[?key=K]` | flush a pull-through remote, or one entry of it (admin) |
//! | `POST /api/v1/plugins/rescan` | rescan the plugin directory (admin) |

use super::access::Viewer;
use super::form::Form;
use super::{RouteError, data, fail, known_remote_name, readable, store_failed};
use crate::body::ResBody;
use crate::reqbody::ClientStream;
use crate::state::AppState;
use http::request::Parts;
use http::{Method, Response, StatusCode};
use std::sync::Arc;

/// An API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `GET overview`.
    Overview,
    /// `GET fills`.
    Fills,
    /// `GET remotes`.
    Remotes,
    /// `GET remotes/{r}`.
    Remote(String),
    /// `GET remotes/{r}/entries`.
    Entries(String),
    /// `GET plugins`.
    Plugins,
    /// `GET storage`.
    Storage,
    /// `POST remotes/{r}/flush`.
    Flush(String),
    /// `POST plugins/rescan`.
    Rescan,
}

/// Route `rest`, the path after `/api/v1/`.
pub fn route(method: &Method, rest: &str) -> Result<Call, RouteError> {
    let read = matches!(*method, Method::GET | Method::HEAD);
    let want = |call: Call, get: bool| {
        if get == read && (get || *method == Method::POST) {
            Ok(call)
        } else {
            Err(RouteError::Method {
                method: method.as_str().chars().take(16).collect(),
                allowed: if get { "GET, HEAD" } else { "POST" },
            })
        }
    };
    match rest {
        "overview" => return want(Call::Overview, true),
        "fills" => return want(Call::Fills, true),
        "remotes" => return want(Call::Remotes, true),
        "plugins" => return want(Call::Plugins, true),
        "storage" => return want(Call::Storage, true),
        "plugins/rescan" => return want(Call::Rescan, false),
        _ => {}
    }
    let Some(rest) = rest.strip_prefix("remotes/") else {
        return Err(RouteError::NotFound);
    };
    let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
    let name = known_remote_name(name)?;
    match what {
        "" => want(Call::Remote(name), true),
        "entries" => want(Call::Entries(name), true),
        "flush" => want(Call::Flush(name), false),
        _ => Err(RouteError::NotFound),
    }
}

/// Answer an API call.
pub async fn answer(
    state: &Arc<AppState>,
    viewer: &Viewer<'_>,
    call: Call,
    parts: Parts,
    body: ClientStream,
) -> Response<ResBody> {
    let q = match Form::parse(parts.uri.query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return fail(true, e.status(), e.to_string()),
    };
    match call {
        Call::Overview => json(&data::overview(state, &data::visible(state, viewer)).await),
        Call::Fills => json(&data::fills(state, &data::visible(state, viewer))),
        Call::Remotes => match data::remotes(state).await {
            Ok(rows) => json(&rows),
            Err(e) => store_failed(true, &e),
        },
        Call::Remote(name) => {
            let rt = match readable(state, viewer, &name, true) {
                Ok(rt) => rt,
                Err(r) => return *r,
            };
            match data::remote(state, &rt.cfg, viewer.is_admin()).await {
                Ok(d) => json(&d),
                Err(e) => store_failed(true, &e),
            }
        }
        Call::Entries(name) => {
            if let Err(r) = readable(state, viewer, &name, true) {
                return *r;
            }
            let limit = match q.get("limit").map(str::parse::<usize>) {
                None => data::DEFAULT_PAGE,
                Some(Ok(n)) if (1..=data::MAX_PAGE).contains(&n) => n,
                Some(_) => {
                    return fail(
                        true,
                        StatusCode::BAD_REQUEST,
                        format!("limit must be a number from 1 to {}", data::MAX_PAGE),
                    );
                }
            };
            let prefix = q.get("prefix").unwrap_or("");
            match data::entries(state, &name, prefix, q.non_empty("after"), limit).await {
                Ok(page) => json(&page),
                Err(e) => store_failed(true, &e),
            }
        }
        Call::Plugins => json(&data::plugins(state).await),
        Call::Storage => json(&data::storage(state).await),
        Call::Flush(name) => {
            drop(body);
            if let Err(e) =
                viewer.check_forgery(&parts, state.config.server.public_url.as_deref(), None)
            {
                return super::denied(true, &e);
            }
            super::actions::flush_now(state, viewer, &name, q.non_empty("key"), true).await
        }
        Call::Rescan => {
            drop(body);
            if let Err(e) =
                viewer.check_forgery(&parts, state.config.server.public_url.as_deref(), None)
            {
                return super::denied(true, &e);
            }
            super::actions::rescan_now(state, viewer, true).await
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response<ResBody> {
    match serde_json::to_value(value) {
        Ok(v) => crate::body::json(StatusCode::OK, &v),
        Err(e) => fail(
            true,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the answer could not be encoded as JSON: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_calls_route() {
        let (g, p) = (Method::GET, Method::POST);
        assert_eq!(route(&g, "overview").unwrap(), Call::Overview);
        assert_eq!(
            route(&g, "remotes/files/entries").unwrap(),
            Call::Entries("files".into())
        );
        assert_eq!(
            route(&p, "remotes/files/flush").unwrap(),
            Call::Flush("files".into())
        );
        assert_eq!(route(&p, "plugins/rescan").unwrap(), Call::Rescan);
        assert!(matches!(
            route(&g, "plugins/rescan"),
            Err(RouteError::Method { .. })
        ));
        assert!(matches!(
            route(&p, "overview"),
            Err(RouteError::Method { .. })
        ));
        assert!(matches!(
            route(&Method::PUT, "remotes/a/flush"),
            Err(RouteError::Method { .. })
        ));
        assert!(matches!(
            route(&g, "remotes/a/b"),
            Err(RouteError::NotFound)
        ));
        assert!(matches!(route(&g, "nothing"), Err(RouteError::NotFound)));
    }
}
