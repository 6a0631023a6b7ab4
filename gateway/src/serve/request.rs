//! One request on one remote as the serving phases see it, and what
//! serving it produced.

use crate::body::ResBody;
use crate::cache::memo::RequestShape;
use crate::cache::{Engine, Outcome};
use crate::plugins::wit::RouteKind;
use crate::state::{AppState, RemoteRuntime};
use http::request::Parts;
use http::{Method, Response};
use std::sync::Arc;

/// What serving a request produced: the response and how it counts.
pub type Served = (Response<ResBody>, Outcome);

/// What a request addresses: a remote and a path in it, on a route kind.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The route kind, which decides the error format.
    pub kind: RouteKind,
    /// The remote's name, as the URL gives it.
    pub remote: &'a str,
    /// The normalised path within the remote.
    pub path: &'a str,
    /// The request id (log lines, adapter calls).
    pub request_id: &'a str,
}

/// A request on a remote that is not virtual (its body travels apart: it
/// is consumed by one phase).
pub struct Req<'a> {
    /// Shared gateway state: the remotes, the adapters and their call
    /// context, the remembered decisions.
    pub state: &'a Arc<AppState>,
    /// What the store and fill phases use of it (`&state.engine`).
    pub engine: &'a Engine,
    /// The request head.
    pub parts: &'a Parts,
    /// The remote.
    pub remote: &'a Arc<RemoteRuntime>,
    /// What it addresses (route kind, remote name, path, request id).
    pub target: Target<'a>,
}

impl Req<'_> {
    /// The remote's name.
    pub fn remote_name(&self) -> &str {
        &self.remote.cfg.name
    }

    /// What the remembered decisions are looked up by, for `adapter_sha`.
    pub fn shape<'s>(&'s self, adapter_sha: &'s str) -> RequestShape<'s> {
        RequestShape {
            adapter_sha,
            remote: self.remote_name(),
            path: self.target.path,
            query: self.parts.uri.query(),
            headers: &self.parts.headers,
            authority: crate::public_url::client_authority(self.parts),
        }
    }

    /// A `GET` or `HEAD`: a read, which may be answered from the cache.
    pub fn is_read(&self) -> bool {
        self.parts.method == Method::GET || self.parts.method == Method::HEAD
    }
}
