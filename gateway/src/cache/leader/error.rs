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

#[cfg(test)]
mod tests {
    use super::FillError;
    use crate::cache::fill::FillState;
    use crate::plugins::wit;
    use crate::store::StoreError;
    use http::StatusCode;

    /// Each error becomes the fill state its waiters see, with its status,
    /// sentence and code unchanged.
    #[test]
    fn an_error_becomes_the_state_waiters_see() {
        let refused = FillError::rejected(wit::Rejection {
            status: 404,
            message: "no such manifest".into(),
            code: Some("MANIFEST_UNKNOWN".into()),
        });
        assert_eq!(refused.status(), StatusCode::NOT_FOUND);
        match refused.into_state() {
            FillState::Failed(f) => {
                assert_eq!(f.message, "no such manifest");
                assert_eq!(f.code.as_deref(), Some("MANIFEST_UNKNOWN"));
            }
            _ => panic!("a refusal before the head is a failure"),
        }
        let cut = FillError::upstream_abort("the upstream body broke off");
        assert_eq!(cut.status(), StatusCode::BAD_GATEWAY);
        assert!(matches!(cut.into_state(), FillState::Aborted(_)));
    }

    /// An adapter's refusal with a status that is no error is the
    /// upstream's fault (502); a full disk is 507.
    #[test]
    fn statuses_that_are_not_errors_become_errors() {
        let odd = FillError::rejected(wit::Rejection {
            status: 200,
            message: "fine?".into(),
            code: None,
        });
        assert_eq!(odd.status(), StatusCode::BAD_GATEWAY);
        let full = StoreError::io(
            "write spool",
            "/tmp/x",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        let e = FillError::store(full);
        assert_eq!(e.status(), StatusCode::INSUFFICIENT_STORAGE);
        match e {
            FillError::Failed(f) => assert!(
                f.message.starts_with("the gateway's store failed: "),
                "{}",
                f.message
            ),
            FillError::Aborted(_) => panic!("a store failure before the head is a failure"),
        }
    }
}
