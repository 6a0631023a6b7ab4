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

use crate::body::{self, ResBody};
use crate::metrics::Outcome;
use crate::reqbody::ClientBody;
use crate::serve::{self as proxy, Family};
use crate::state::{AppState, RemoteRuntime};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use std::sync::Arc;

/// Response header naming the member that answered.
pub const MEMBER_HEADER: &str = "x-artifact-member";

/// Serve a request on the virtual remote `remote`.
pub async fn handle(
    state: Arc<AppState>,
    parts: Parts,
    body: ClientBody,
    remote: &Arc<RemoteRuntime>,
    path: &str,
    request_id: &str,
) -> (Response<ResBody>, Outcome) {
    let name = &remote.cfg.name;
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let Some(target) = remote.cfg.write_to.clone() else {
            return (
                body::error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "virtual remote {name:?} has no write_to member, so it does not accept {}",
                        parts.method
                    ),
                ),
                Outcome::Error,
            );
        };
        let (mut resp, outcome) = proxy::serve(
            state,
            parts,
            body,
            Family::RemoteApi,
            &target,
            path,
            request_id,
        )
        .await;
        tag(&mut resp, &target);
        return (resp, outcome);
    }
    let mut failed: Vec<&str> = Vec::new();
    for member in &remote.cfg.members {
        let (mut resp, outcome) = proxy::serve(
            state.clone(),
            parts.clone(),
            ClientBody::Buffered(Bytes::new()),
            Family::RemoteApi,
            member,
            path,
            request_id,
        )
        .await;
        let status = resp.status();
        if status.is_success()
            || status.is_redirection()
            || status == StatusCode::RANGE_NOT_SATISFIABLE
        {
            tag(&mut resp, member);
            return (resp, outcome);
        }
        if status.is_server_error() {
            tracing::warn!(remote = %name, member = %member, status = status.as_u16(), "member of a virtual remote failed; trying the next");
            failed.push(member);
        } else {
            tracing::debug!(remote = %name, member = %member, status = status.as_u16(), "member does not have the path");
        }
    }
    let resp = if failed.is_empty() {
        body::error(
            StatusCode::NOT_FOUND,
            format!("{path} is in none of the members of virtual remote {name:?}"),
        )
    } else {
        body::error(
            StatusCode::BAD_GATEWAY,
            format!(
                "{path} is in none of the members of virtual remote {name:?} that answered, and {} failed",
                failed.join(", ")
            ),
        )
    };
    (resp, Outcome::Error)
}

fn tag(resp: &mut Response<ResBody>, member: &str) {
    if let Ok(v) = HeaderValue::from_str(member) {
        resp.headers_mut().insert(MEMBER_HEADER, v);
    }
}
