//! What can go wrong in a gRPC call: one variant per status code a REAPI
//! client acts on, each carrying one sentence for the client.

use crate::serve::HostedError;
use crate::store::StoreError;
use tonic::{Code, Status};

/// A failed gRPC call: its status code and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// A malformed request: a bad digest or resource name, a digest or size
    /// that does not match the bytes (nothing was stored).
    #[error("{0}")]
    InvalidArgument(String),
    /// A read offset outside the blob.
    #[error("{0}")]
    OutOfRange(String),
    /// The blob, action result or asset is not in the store (clients read
    /// it as "not cached").
    #[error("{0}")]
    NotFound(String),
    /// No token, or one the gateway does not know.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token lacks the scope the call needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// A quota or a message size limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Something the call needs is missing (a directory a pushed asset
    /// references).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The upstream is unreachable or failed, and nothing is cached.
    #[error("{0}")]
    Unavailable(String),
    /// The store or an adapter failed.
    #[error("{0}")]
    Internal(String),
    /// What this gateway does not do (remote execution).
    #[error("{0}")]
    Unimplemented(String),
}

impl GrpcError {
    /// The status code.
    pub fn code(&self) -> Code {
        match self {
            GrpcError::InvalidArgument(_) => Code::InvalidArgument,
            GrpcError::OutOfRange(_) => Code::OutOfRange,
            GrpcError::NotFound(_) => Code::NotFound,
            GrpcError::Unauthenticated(_) => Code::Unauthenticated,
            GrpcError::PermissionDenied(_) => Code::PermissionDenied,
            GrpcError::ResourceExhausted(_) => Code::ResourceExhausted,
            GrpcError::FailedPrecondition(_) => Code::FailedPrecondition,
            GrpcError::Unavailable(_) => Code::Unavailable,
            GrpcError::Internal(_) => Code::Internal,
            GrpcError::Unimplemented(_) => Code::Unimplemented,
        }
    }

    /// The same error as a `google.rpc.Status` (per-blob results of the
    /// batch calls).
    pub fn rpc_status(&self) -> super::proto::google::rpc::Status {
        super::proto::google::rpc::Status {
            code: self.code() as i32,
            message: self.to_string(),
            details: Vec::new(),
        }
    }
}

impl From<GrpcError> for Status {
    fn from(e: GrpcError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

impl From<StoreError> for GrpcError {
    fn from(e: StoreError) -> GrpcError {
        if matches!(e, StoreError::NoSpace { .. }) {
            tracing::warn!(error = %e, "the store is full");
            return GrpcError::ResourceExhausted(format!("the gateway's disk is full: {e}"));
        }
        tracing::error!(error = %e, "the store failed in a gRPC call");
        GrpcError::Internal(format!("the gateway's store failed: {e}"))
    }
}

impl From<HostedError> for GrpcError {
    fn from(e: HostedError) -> GrpcError {
        let text = e.to_string();
        match e {
            HostedError::Quota { .. } => GrpcError::ResourceExhausted(text),
            HostedError::Store(s) => s.into(),
            HostedError::NotFound(_) => GrpcError::NotFound(text),
            HostedError::Mismatch { .. } | HostedError::BadUpload(_) => {
                GrpcError::InvalidArgument(text)
            }
            _ => GrpcError::Internal(text),
        }
    }
}

/// The `google.rpc.Status` of success.
pub fn ok_status() -> super::proto::google::rpc::Status {
    super::proto::google::rpc::Status {
        code: Code::Ok as i32,
        message: String::new(),
        details: Vec::new(),
    }
}
