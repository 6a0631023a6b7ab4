//! The first phase: the remote a request names, checked against the route
//! kind and the remote's `allow` patterns, and the adapter that serves
//! its package type.

use super::error::ServeError;
use super::request::Target;
use crate::plugins::Adapter;
use crate::plugins::wit::RouteKind;
use crate::state::{AppState, RemoteRuntime};
use http::StatusCode;
use std::sync::Arc;

/// The remote `target` names, if it exists, is served on its route kind and
/// allows its path.
pub fn remote(state: &AppState, target: Target<'_>) -> Result<Arc<RemoteRuntime>, ServeError> {
    let Target {
        kind,
        remote: name,
        path,
        ..
    } = target;
    let Some(remote) = state.remotes.get(name).cloned() else {
        return Err(ServeError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("unknown remote {name:?}"),
        ));
    };
    let is_docker = remote.cfg.package == "docker";
    if kind == RouteKind::Registry && !is_docker {
        return Err(ServeError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            format!(
                "remote {name:?} is a {} remote, not a docker registry",
                remote.cfg.package
            ),
        ));
    }
    if kind == RouteKind::RemoteApi && is_docker {
        return Err(ServeError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            format!("remote {name:?} is a docker registry; use /v2/{name}/..."),
        ));
    }
    if !remote.cfg.allows(path) {
        return Err(ServeError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            format!("path {path:?} is not allowed on remote {name:?}"),
        ));
    }
    Ok(remote)
}

/// The adapter serving `remote`'s package type in the active set (held
/// for the whole request: a hot reload never changes it under the request).
pub async fn adapter(state: &AppState, remote: &RemoteRuntime) -> Result<Arc<Adapter>, ServeError> {
    let active = state.plugins.ready_active().await;
    active
        .for_package(&remote.cfg.package)
        .cloned()
        .ok_or_else(|| {
            ServeError::new(
                StatusCode::BAD_GATEWAY,
                "UNSUPPORTED",
                format!("no adapter serves package type {:?}", remote.cfg.package),
            )
        })
}
