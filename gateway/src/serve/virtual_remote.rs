//! Virtual remotes (`package = "virtual"`): one URL in front of several
//! remotes, served by the core without an adapter of their own.
//!
//! - **Reads** (`GET`, `HEAD`) try `members` in order and serve the first
//!   answer that has the path: for a hosted member the stored entry, for a
//!   pull-through member its normal request path (a cache hit, or a miss
//!   fetched from its upstream). A member that does not have the path (404,
//!   or any other client error such as its `allow` patterns refusing it) is
//!   passed over quietly; a member that fails (5xx: upstream down, adapter
//!   fault) is skipped and logged. When no member has the path the answer
//!   is 404, or 502 when a member failed (the path may be there).
//! - **Writes and deletes** go to `write_to` (a hosted member); without it
//!   they are refused with 400.
//!
//! Responses carry `X-Artifact-Member` naming the member that answered.
//! Access control (`auth.rs`, before this runs) checks the virtual remote
//! and every member the request can reach, so a virtual remote is never
//! more open than a member.

use super::error::ServeError;
use super::request::{Served, Target};
use crate::body::ResBody;
use crate::plugins::wit::RouteKind;
use crate::reqbody::ClientBody;
use crate::state::{AppState, RemoteRuntime};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Response header naming the member that answered.
pub const MEMBER_HEADER: &str = "x-artifact-member";

/// How a member is served: the whole request path of a remote, given by
/// the caller ([`super::serve`]), so that this module does not depend on
/// it. Boxed, as a member may itself be virtual.
pub type ServeMember = for<'a> fn(
    Arc<AppState>,
    Parts,
    ClientBody,
    Target<'a>,
) -> Pin<Box<dyn Future<Output = Served> + Send + 'a>>;

/// Serve a request on the virtual remote `remote`, each member through
/// `serve_member`. Members are asked as `/api/v1/remote/` routes.
pub async fn handle(
    state: Arc<AppState>,
    parts: Parts,
    body: ClientBody,
    remote: &Arc<RemoteRuntime>,
    target: Target<'_>,
    serve_member: ServeMember,
) -> Result<Served, ServeError> {
    let name = &remote.cfg.name;
    let path = target.path;
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let Some(write_to) = remote.cfg.write_to.clone() else {
            return Err(ServeError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!(
                    "virtual remote {name:?} has no write_to member, so it does not accept {}",
                    parts.method
                ),
            ));
        };
        let (mut resp, outcome) =
            serve_member(state, parts, body, on_member(target, &write_to)).await;
        tag(&mut resp, &write_to);
        return Ok((resp, outcome));
    }
    let mut failed: Vec<&str> = Vec::new();
    for member in &remote.cfg.members {
        let (mut resp, outcome) = serve_member(
            state.clone(),
            parts.clone(),
            ClientBody::Buffered(Bytes::new()),
            on_member(target, member),
        )
        .await;
        let status = resp.status();
        if status.is_success()
            || status.is_redirection()
            || status == StatusCode::RANGE_NOT_SATISFIABLE
        {
            tag(&mut resp, member);
            return Ok((resp, outcome));
        }
        if status.is_server_error() {
            tracing::warn!(remote = %name, member = %member, status = status.as_u16(), "member of a virtual remote failed; trying the next");
            failed.push(member);
        } else {
            tracing::debug!(remote = %name, member = %member, status = status.as_u16(), "member does not have the path");
        }
    }
    Err(if failed.is_empty() {
        ServeError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{path} is in none of the members of virtual remote {name:?}"),
        )
    } else {
        ServeError::new(
            StatusCode::BAD_GATEWAY,
            "UNAVAILABLE",
            format!(
                "{path} is in none of the members of virtual remote {name:?} that answered, and {} failed",
                failed.join(", ")
            ),
        )
    })
}

/// `target` on `member`: members are asked as `/api/v1/remote/` routes.
fn on_member<'a>(target: Target<'a>, member: &'a str) -> Target<'a> {
    Target {
        kind: RouteKind::RemoteApi,
        remote: member,
        ..target
    }
}

fn tag(resp: &mut Response<ResBody>, member: &str) {
    if let Ok(v) = HeaderValue::from_str(member) {
        resp.headers_mut().insert(MEMBER_HEADER, v);
    }
}
