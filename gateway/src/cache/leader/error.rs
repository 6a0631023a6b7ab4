//! Why a fill ended without a body to serve. Every phase returns a
//! [`FillError`] with `?`; [`run`](super::run) turns it into the
//! [`FillState`] its waiters see, in one place.

use crate::cache::fill::{Abort, Failure, FillState};
use crate::plugins::wit;
use crate::store::StoreError;
use http::StatusCode;
use std::sync::Arc;

/// A fill's failure, before or after its head was published.
#[derive(Debug)]
pub enum FillError {
    /// Nothing was published yet: every waiter answers with this status
    /// and sentence ([`FillState::Failed`]).
    Failed(Failure),
    /// The head was published: every waiter's body aborts
    /// ([`FillState::Aborted`]).
    Aborted(Arc<Abort>),
}

impl FillError {
    /// A failure before the head with `status` and one sentence.
    pub fn new(status: StatusCode, message: impl Into<String>) -> FillError {
        FillError::Failed(Failure {
            status,
            message: message.into(),
            code: None,
        })
    }

    /// A failure before the head that is the upstream's (502).
    pub fn bad_gateway(message: impl Into<String>) -> FillError {
        FillError::new(StatusCode::BAD_GATEWAY, message)
    }

    /// An adapter's refusal; a status that is not an error becomes 502.
    pub fn rejected(r: wit::Rejection) -> FillError {
        FillError::Failed(Failure {
            status: crate::body::error_status(r.status),
            message: r.message,
            code: r.code,
        })
    }

    /// The store failed before the head (507 for a full disk, else 500),
    /// logged here. Not a `From`: after the head a store failure is an
    /// [`Abort::store`], and `?` must not pick the wrong one silently.
    pub fn store(e: StoreError) -> FillError {
        tracing::error!(error = %e, "store failure during a fill");
        FillError::new(e.status(), format!("the gateway's store failed: {e}"))
    }

    /// The upstream failed after the head (502 for later joiners).
    pub fn upstream_abort(reason: impl Into<String>) -> FillError {
        FillError::Aborted(Abort::upstream(reason))
    }

    /// The status a client that has not received the head gets.
    pub fn status(&self) -> StatusCode {
        match self {
            FillError::Failed(f) => f.status,
            FillError::Aborted(a) => a.status,
        }
    }

    /// The state every waiter of the fill is left in.
    pub fn into_state(self) -> FillState {
        match self {
            FillError::Failed(f) => FillState::Failed(Arc::new(f)),
            FillError::Aborted(a) => FillState::Aborted(a),
        }
    }
}
