//! The route family a request came in on, and the error format of each.

use crate::body::{self, ResBody};
use crate::plugins::wit;
use http::{Response, StatusCode};

/// Which URL family a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/api/v1/remote/...`.
    RemoteApi,
    /// `/v2/...`.
    Registry,
}

impl Family {
    /// An error response in this family's format: OCI
    /// `{"errors":[{code, message}]}` on `/v2/`, `{"error": message}`
    /// elsewhere (where `code` is not sent).
    pub fn error(self, status: StatusCode, code: &str, message: String) -> Response<ResBody> {
        match self {
            Family::Registry => body::oci_error(status, code, message),
            Family::RemoteApi => body::error(status, message),
        }
    }

    /// The route kind adapters see.
    pub fn route_kind(self) -> wit::RouteKind {
        match self {
            Family::RemoteApi => wit::RouteKind::RemoteApi,
            Family::Registry => wit::RouteKind::Registry,
        }
    }
}
