//! The adapter's `plan` round: the call context and the request as the
//! adapter sees it (client credentials hidden), the `plan` call, and the
//! second round when the adapter asks to see the request body
//! (`read-body`: bounded, decoded) before it decides.

use super::error::ServeError;
use super::request::Req;
use super::unpack::RequestUpload;
use crate::config::RemoteMode;
use crate::plugins::{Adapter, CallContext, HostUpload, wit, wit_http};
use crate::reqbody::ClientBody;
use crate::state::AppState;
use http::StatusCode;
use std::sync::Arc;

/// The adapter's decision and what later phases hand back to the adapter.
pub struct Planned {
    /// What the adapter decided (never `read-body`: that round is done).
    pub decision: wit::Decision,
    /// The adapter, its call context and the request as it saw it.
    pub asked: Asked,
}

/// The adapter that planned a request, and the request as it saw it.
pub struct Asked {
    /// The adapter serving the remote's package type.
    pub adapter: Arc<Adapter>,
    /// Its call context (key-value store, `http-send`).
    pub ctx: CallContext,
    /// The request as the adapter saw it (with the body, if it read it).
    pub req: wit::Request,
    /// The client body: buffered when the adapter read it, else unread.
    pub body: ClientBody,
}

/// Ask `adapter` to plan the request, reading the body for it once if it
/// asks to see it.
pub async fn plan(
    req: &Req<'_>,
    adapter: &Arc<Adapter>,
    body: ClientBody,
) -> Result<Planned, ServeError> {
    let (state, parts) = (req.state, req.parts);
    let mut ctx = state.call_context(req.remote, adapter, req.target.request_id, Some(parts));
    // A hosted remote's adapter may take files out of an upload's body
    // (`unpack-body`) while it plans.
    let upload = (req.remote.cfg.mode == RemoteMode::Hosted && !req.is_read())
        .then(|| RequestUpload::new(state, req.remote, adapter.name(), &parts.headers));
    if let Some(u) = &upload {
        ctx.upload = Some(u.clone() as Arc<dyn HostUpload>);
    }
    let mut wreq = wit_http::request(
        req.target.request_id,
        req.target.kind,
        parts,
        req.target.path,
    );
    let mut client_body = match &upload {
        Some(u) => {
            u.lend(body);
            None
        }
        None => Some(body),
    };
    let mut decision = adapter.plan(ctx.clone(), &req.remote.info, &wreq).await;
    // The adapter may ask to see the (bounded, decoded) request body once,
    // and is then asked again.
    if let Ok(wit::Decision::ReadBody(limit)) = &decision {
        if upload.as_ref().is_some_and(|u| u.was_unpacked()) {
            return Err(unpacked_then(state, adapter, "asked to see it"));
        }
        let limit = (*limit).min(state.config.server.max_inspect_bytes) as usize;
        let unread = match (&upload, client_body.take()) {
            (Some(u), _) => u.take_back(),
            (None, b) => b,
        };
        let (b, view) = unread
            .unwrap_or_else(|| ClientBody::Buffered(bytes::Bytes::new()))
            .read_for_adapter(limit, &parts.headers)
            .await
            .map_err(|e| ServeError::new(e.status(), "UNSUPPORTED", e.to_string()))?;
        match &upload {
            Some(u) => u.lend(b),
            None => client_body = Some(b),
        }
        wreq.body = view.body;
        wreq.body_too_large = view.too_large;
        decision = adapter.plan(ctx.clone(), &req.remote.info, &wreq).await;
        if let Ok(wit::Decision::ReadBody(_)) = &decision {
            state
                .engine
                .metrics
                .plugin_error(adapter.name(), "bad_output");
            return Err(ServeError::new(
                StatusCode::BAD_GATEWAY,
                "UNKNOWN",
                format!(
                    "the {} adapter asked for the request body twice",
                    adapter.name()
                ),
            ));
        }
    }
    // Staged files not committed during the call are deleted here.
    if let Some(u) = &upload {
        client_body = u.take_back();
        ctx.upload = None;
        if u.was_unpacked()
            && matches!(decision, Ok(wit::Decision::Hosted(wit::HostedOp::Write(_))))
        {
            return Err(unpacked_then(state, adapter, "asked to store it"));
        }
    }
    let client_body = client_body.unwrap_or_else(|| ClientBody::Buffered(bytes::Bytes::new()));
    let decision = decision.map_err(|e| {
        tracing::error!(remote = req.remote_name(), adapter = adapter.name(), error = %e, "adapter failed");
        ServeError::new(
            e.status(),
            "UNKNOWN",
            format!("the {} adapter failed: {e}", adapter.name()),
        )
    })?;
    Ok(Planned {
        decision,
        asked: Asked {
            adapter: adapter.clone(),
            ctx,
            req: wreq,
            body: client_body,
        },
    })
}

/// The adapter unpacked the request body (`unpack-body`) and then wanted
/// it again (`what`): a 502, counted as bad output.
fn unpacked_then(state: &AppState, adapter: &Adapter, what: &str) -> ServeError {
    state
        .engine
        .metrics
        .plugin_error(adapter.name(), "bad_output");
    ServeError::new(
        StatusCode::BAD_GATEWAY,
        "UNKNOWN",
        format!(
            "the {} adapter unpacked the request body and then {what}",
            adapter.name()
        ),
    )
}
