//! The request path of a remote, as named phases (after Pingora's
//! `pingora-cache`). This file is the orchestrator and reads top to bottom:
//!
//! 1. [`resolve`]: find the remote, check the route kind and the `allow`
//!    patterns; a virtual remote is handed to [`virtual_remote`], which runs
//!    this same path for its members; else take the adapter serving the
//!    remote's package type;
//! 2. [`hit`]: a remembered decision maps the request to a key whose entry
//!    is fresh → served from the store; or a fetch of that key is in
//!    progress → joined (no wasm on this path);
//! 3. [`plan`]: otherwise ask the adapter to `plan` the request (twice when
//!    it asks to see the body first);
//! 4. dispatch the decision: `forward` → [`forward`] (the cache, or
//!    [`bypass`] when uncacheable), `respond` → [`respond::direct`],
//!    `reject` → an error, `hosted` → [`hosted`] (uploads: [`upload`]).
//!
//! Answers come from [`respond`] (store entries: conditional GET, `Range`,
//! `HEAD`) and [`fill`] (a fill in progress). Every phase returns a
//! [`ServeError`] for an early answer; [`serve`] renders it once, in the
//! route kind's format ([`RouteKind::error`]), and counts it as [`Outcome::Error`].

mod bypass;
mod error;
mod fill;
mod forward;
mod hit;
mod hosted;
mod peer;
mod plan;
mod request;
mod resolve;
mod respond;
mod route_kind;
mod unpack;
mod upload;
mod virtual_remote;

pub use error::{HostedError, ServeError};
pub use peer::serve_peer as peer;
pub use request::{Served, Target};
pub use respond::{FillOrBlob, respond_from};
pub use upload::{NewEntry, commit as commit_hosted};

use crate::cache::Outcome;
use crate::config::RemoteMode;
use crate::plugins::wit;
use crate::reqbody::{ClientBody, ClientStream};
use crate::state::AppState;
use http::StatusCode;
use http::request::Parts;
use request::Req;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Serve a request for the remote and path `target` names.
pub async fn handle(
    state: Arc<AppState>,
    parts: Parts,
    body: ClientStream,
    target: Target<'_>,
) -> Served {
    serve(state, parts, ClientBody::Unread(body), target).await
}

/// [`handle`] with the client body in any state; virtual remotes call it
/// for their members. The one place an early answer ([`ServeError`]) is
/// rendered and counted as an error.
pub async fn serve(
    state: Arc<AppState>,
    parts: Parts,
    body: ClientBody,
    target: Target<'_>,
) -> Served {
    run(&state, parts, body, target)
        .await
        .unwrap_or_else(|e| (e.render(target.kind), Outcome::Error))
}

/// The phases, in order.
async fn run(
    state: &Arc<AppState>,
    parts: Parts,
    body: ClientBody,
    target: Target<'_>,
) -> Result<Served, ServeError> {
    let remote = resolve::remote(state, target)?;
    if remote.cfg.mode == RemoteMode::Virtual {
        let member = serve_member as virtual_remote::ServeMember;
        return virtual_remote::handle(state.clone(), parts, body, &remote, target, member).await;
    }
    let adapter = resolve::adapter(state, &remote).await?;
    let (parts, remote) = (&parts, &remote);
    let req = Req {
        state,
        engine: &state.engine,
        parts,
        remote,
        target,
    };
    let shape = req.shape(&adapter.sha256);
    if let Some(answer) = hit::remembered(&req, shape).await {
        return answer;
    }
    let planned = plan::plan(&req, &adapter, body).await?;
    let asked = planned.asked;
    match planned.decision {
        wit::Decision::Forward(fwd) => forward::forward(&req, shape, fwd, asked).await,
        wit::Decision::Hosted(op) => hosted::serve(&req, shape, op, asked).await,
        wit::Decision::Respond(r) => respond::direct(&req, &asked.adapter, r),
        wit::Decision::Reject(r) => Err(ServeError::rejected(r)),
        wit::Decision::ReadBody(_) => Err(ServeError::new(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            "the adapter asked for the request body twice",
        )),
    }
}

/// [`serve`] for a member of a virtual remote, boxed (a member may itself
/// be virtual).
fn serve_member(
    state: Arc<AppState>,
    parts: Parts,
    body: ClientBody,
    target: Target<'_>,
) -> Pin<Box<dyn Future<Output = Served> + Send + '_>> {
    Box::pin(serve(state, parts, body, target))
}
