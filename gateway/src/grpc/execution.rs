//! `Execution`: this gateway caches and does not execute; both calls
//! answer `UNIMPLEMENTED` with a sentence saying so.

use super::Reapi;
use super::error::GrpcError;
use super::proto::google::longrunning::Operation;
use super::proto::reapi::{ExecuteRequest, WaitExecutionRequest, execution_server::Execution};
use futures_util::stream::BoxStream;
use tonic::{Request, Response, Status};

/// Why execution calls fail.
const NO_EXECUTION: &str = "this gateway is a remote cache and does not execute actions; use --remote_cache (Bazel) or a cache-only remote (BuildStream)";

#[tonic::async_trait]
impl Execution for Reapi {
    type ExecuteStream = BoxStream<'static, Result<Operation, Status>>;
    type WaitExecutionStream = BoxStream<'static, Result<Operation, Status>>;

    /// Always `UNIMPLEMENTED`.
    async fn execute(
        &self,
        req: Request<ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        let rec = super::record(&req);
        super::finish(
            &rec,
            Err(GrpcError::Unimplemented(NO_EXECUTION.into())),
            crate::cache::Outcome::Direct,
        )
    }

    /// Always `UNIMPLEMENTED`.
    async fn wait_execution(
        &self,
        req: Request<WaitExecutionRequest>,
    ) -> Result<Response<Self::WaitExecutionStream>, Status> {
        let rec = super::record(&req);
        super::finish(
            &rec,
            Err(GrpcError::Unimplemented(NO_EXECUTION.into())),
            crate::cache::Outcome::Direct,
        )
    }
}
