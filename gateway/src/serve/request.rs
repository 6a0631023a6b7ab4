//! One request on one remote as the serving phases see it, and what
//! serving it produced.

use super::family::Family;
use crate::body::ResBody;
use crate::metrics::Outcome;
use crate::state::{AppState, RemoteRuntime};
use http::request::Parts;
use http::{Method, Response};
use std::sync::Arc;

/// What serving a request produced: the response and how it counts.
pub type Served = (Response<ResBody>, Outcome);

/// A request on a remote that is not virtual (its body travels apart: it
/// is consumed by one phase).
pub struct Req<'a> {
    /// Shared gateway state.
    pub state: &'a Arc<AppState>,
    /// The request head.
    pub parts: &'a Parts,
    /// The remote.
    pub remote: &'a Arc<RemoteRuntime>,
    /// The route family, which decides the error format.
    pub family: Family,
    /// The normalised path within the remote.
    pub path: &'a str,
    /// The request id (log lines, adapter calls).
    pub request_id: &'a str,
}

impl Req<'_> {
    /// The remote's name.
    pub fn remote_name(&self) -> &str {
        &self.remote.cfg.name
    }

    /// A `GET` or `HEAD`: a read, which may be answered from the cache.
    pub fn is_read(&self) -> bool {
        self.parts.method == Method::GET || self.parts.method == Method::HEAD
    }
}
