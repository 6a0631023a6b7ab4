//! The REAPI `instance_name` of a call → the `cas` remote of that name,
//! after the token in the call's metadata is checked against the scope the
//! call needs (as `auth.rs` checks HTTP requests). Also records which
//! remote a call was for, for its metrics line.

use super::error::GrpcError;
use super::upstream::RemoteCas;
use crate::auth::{self, Need};
use crate::cache::Outcome;
use crate::config::RemoteMode;
use crate::plugins::Adapter;
use crate::plugins::wit::RouteKind;
use crate::routes::Route;
use crate::state::{AppState, RemoteRuntime};
use http::Method;
use std::sync::{Arc, Mutex};

/// The package type whose remotes the gRPC front serves.
pub const PACKAGE: &str = "cas";

/// A call's remote and outcome, filled in by the service and read by the
/// dispatcher when the call's response starts (metrics, log line).
#[derive(Clone, Default)]
pub struct CallRecord(Arc<Mutex<(Option<String>, Option<Outcome>)>>);

impl CallRecord {
    /// The remote the call was for (`-` before one was resolved) and its
    /// outcome (an error unless the service said otherwise).
    pub fn get(&self) -> (String, Outcome) {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (
            g.0.clone().unwrap_or_else(|| "-".to_owned()),
            g.1.unwrap_or(Outcome::Error),
        )
    }

    fn set_remote(&self, name: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 = Some(name.to_owned());
    }

    /// Record how the call ended.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1 = Some(outcome);
    }
}

/// The remote a call addresses, with the caller's access checked.
pub struct Instance {
    /// The gateway.
    pub state: Arc<AppState>,
    /// The remote (`package = "cas"`, or a virtual remote over such).
    pub remote: Arc<RemoteRuntime>,
    /// The request id (log lines, adapter calls).
    pub request_id: Arc<str>,
    /// Whether the caller may also write (advertised in the capabilities).
    pub may_write: bool,
    /// A pull-through remote's REAPI upstream.
    pub upstream: Option<RemoteCas>,
    /// A virtual remote's members, read in order (empty otherwise).
    pub members: Vec<Instance>,
}

impl Instance {
    /// The remote `name` selects, if the caller may do what `need` says on
    /// it. `record` learns the remote's name.
    pub fn open<T>(
        state: &Arc<AppState>,
        req: &tonic::Request<T>,
        name: &str,
        need: Need,
    ) -> Result<Instance, GrpcError> {
        let record = req.extensions().get::<CallRecord>();
        let request_id: Arc<str> = req
            .extensions()
            .get::<RequestId>()
            .map_or_else(|| Arc::from("-"), |r| r.0.clone());
        let Some(remote) = state.remotes.get(name).cloned() else {
            return Err(GrpcError::InvalidArgument(format!(
                "the instance name {:?} names no remote of this gateway; use the name of a [[remote]] with package = \"cas\"",
                name.chars().take(64).collect::<String>()
            )));
        };
        if let Some(r) = record {
            r.set_remote(name);
        }
        // The same check as an HTTP request to the remote's URL: scopes,
        // anonymous reads, the members a virtual remote reaches.
        let route = Route::Remote {
            kind: RouteKind::RemoteApi,
            remote: name.to_owned(),
            path: String::new(),
        };
        let method = if need == Need::Write {
            Method::PUT
        } else {
            Method::GET
        };
        let headers = req.metadata().clone().into_headers();
        let config = &state.config;
        let token =
            auth::authorize(config, &route, &method, &headers).map_err(|e| match e.status() {
                http::StatusCode::FORBIDDEN => GrpcError::PermissionDenied(e.to_string()),
                _ => GrpcError::Unauthenticated(e.to_string()),
            })?;
        if let Some(t) = token {
            tracing::Span::current().record("token", t.name.as_str());
        }
        // A pull-through cas remote keeps what clients upload locally
        // (BuildStream pushes its builds to the remote it pulls from).
        let may_write = auth::may(config, token, &remote.cfg, Need::Write);
        Instance::build(state, remote, need, request_id, may_write, 0)
    }

    /// The instance of `remote` (access already checked): a virtual
    /// remote's writes go to its `write_to` member, its reads to its
    /// members in order.
    fn build(
        state: &Arc<AppState>,
        remote: Arc<RemoteRuntime>,
        need: Need,
        request_id: Arc<str>,
        may_write: bool,
        depth: usize,
    ) -> Result<Instance, GrpcError> {
        let name = &remote.cfg.name;
        if remote.cfg.mode != RemoteMode::Virtual {
            if remote.cfg.package != PACKAGE {
                return Err(GrpcError::InvalidArgument(format!(
                    "remote {name:?} is a {} remote; the Remote Execution API is served by cas remotes",
                    remote.cfg.package
                )));
            }
            let upstream = match remote.cfg.mode {
                RemoteMode::PullThrough => {
                    RemoteCas::of(&state.engine.upstream, &state.engine.metrics, &remote.cfg)
                }
                _ => None,
            };
            return Ok(Instance {
                state: state.clone(),
                remote,
                request_id,
                may_write,
                upstream,
                members: Vec::new(),
            });
        }
        // Configuration validation refuses cycles; this bounds the walk
        // all the same.
        if depth > 8 {
            return Err(GrpcError::FailedPrecondition(format!(
                "virtual remote {name:?} nests other virtual remotes too deeply"
            )));
        }
        let member = |m: &str| {
            let r = state.remotes.get(m).cloned().ok_or_else(|| {
                GrpcError::Internal(format!("member {m:?} of remote {name:?} does not exist"))
            })?;
            Instance::build(state, r, need, request_id.clone(), may_write, depth + 1)
        };
        if need == Need::Write {
            let Some(target) = &remote.cfg.write_to else {
                return Err(GrpcError::FailedPrecondition(format!(
                    "virtual remote {name:?} has no write_to member, so it is read-only; push to one of its members"
                )));
            };
            return member(target);
        }
        let members = remote
            .cfg
            .members
            .iter()
            .map(|m| member(m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Instance {
            state: state.clone(),
            remote: remote.clone(),
            request_id,
            may_write: may_write && remote.cfg.write_to.is_some(),
            upstream: None,
            members,
        })
    }

    /// The remote's name.
    pub fn name(&self) -> &str {
        &self.remote.cfg.name
    }

    /// The adapter serving `cas` remotes in the active set (the REAPI
    /// message rules are its format knowledge).
    pub async fn adapter(&self) -> Result<Arc<Adapter>, GrpcError> {
        let active = self.state.plugins.ready_active().await;
        active.for_package(PACKAGE).cloned().ok_or_else(|| {
            GrpcError::Internal(format!("no adapter serves package type {PACKAGE:?}"))
        })
    }
}

/// The gateway's id of the request a call came in (a request extension).
#[derive(Clone)]
pub struct RequestId(pub Arc<str>);
