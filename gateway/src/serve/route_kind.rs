//! The route kind a request came in on (the WIT's `route-kind`, which
//! adapters see too), and the error format of each.

use crate::body::{self, ResBody};
use crate::plugins::wit::RouteKind;
use http::{Response, StatusCode};

impl RouteKind {
    /// An error response in this route kind's format: OCI
    /// `{"errors":[{code, message}]}` on `/v2/`, `{"error": message}`
    /// elsewhere (where `code` is not sent).
    pub fn error(self, status: StatusCode, code: &str, message: String) -> Response<ResBody> {
        match self {
            RouteKind::Registry => body::oci_error(status, code, message),
            RouteKind::RemoteApi => body::error(status, message),
        }
    }
}
