//! `Capabilities.GetCapabilities`: SHA-256 digests, the batch limit, and
//! whether the caller may update the action cache (by its token's scope).

use super::error::GrpcError;
use super::instance::Instance;
use super::proto::build::bazel::semver::SemVer;
use super::proto::reapi::{
    ActionCacheUpdateCapabilities, CacheCapabilities, ExecutionCapabilities,
    GetCapabilitiesRequest, ServerCapabilities, capabilities_server::Capabilities, digest_function,
    symlink_absolute_path_strategy,
};
use super::{MAX_BATCH_BYTES, Reapi};
use crate::auth::Need;
use crate::cache::Outcome;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl Capabilities for Reapi {
    /// What this gateway serves on the instance: caching only, SHA-256,
    /// REAPI 2.0 to 2.3, batches up to [`MAX_BATCH_BYTES`], no compression.
    async fn get_capabilities(
        &self,
        req: Request<GetCapabilitiesRequest>,
    ) -> Result<Response<ServerCapabilities>, Status> {
        let rec = super::record(&req);
        let r = (|| -> Result<ServerCapabilities, GrpcError> {
            let inst = Instance::open(&self.state, &req, &req.get_ref().instance_name, Need::Read)?;
            let version = |minor| SemVer {
                major: 2,
                minor,
                patch: 0,
                prerelease: String::new(),
            };
            Ok(ServerCapabilities {
                cache_capabilities: Some(CacheCapabilities {
                    digest_functions: vec![digest_function::Value::Sha256 as i32],
                    action_cache_update_capabilities: Some(ActionCacheUpdateCapabilities {
                        update_enabled: inst.may_write,
                    }),
                    cache_priority_capabilities: None,
                    max_batch_total_size_bytes: MAX_BATCH_BYTES as i64,
                    symlink_absolute_path_strategy: symlink_absolute_path_strategy::Value::Allowed
                        as i32,
                    supported_compressors: Vec::new(),
                    supported_batch_update_compressors: Vec::new(),
                }),
                execution_capabilities: Some(ExecutionCapabilities {
                    digest_function: digest_function::Value::Sha256 as i32,
                    exec_enabled: false,
                    execution_priority_capabilities: None,
                    supported_node_properties: Vec::new(),
                    digest_functions: vec![digest_function::Value::Sha256 as i32],
                }),
                deprecated_api_version: None,
                low_api_version: Some(version(0)),
                high_api_version: Some(version(3)),
            })
        })();
        super::finish(&rec, r.map(Response::new), Outcome::Direct)
    }
}
