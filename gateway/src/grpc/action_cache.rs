//! `ActionCache` over the entries `ac/{hash}` (the same ones the HTTP
//! layout's `/ac/` serves). An action result is returned only while every
//! blob it names exists; the `cas` adapter says which those are, as it does
//! for HTTP uploads.

use super::Reapi;
use super::blobs::BlobId;
use super::closure::Walk;
use super::error::GrpcError;
use super::instance::Instance;
use super::proto::reapi::{
    ActionResult, GetActionResultRequest, UpdateActionResultRequest,
    action_cache_server::ActionCache,
};
use crate::auth::Need;
use crate::cache::Outcome;
use bytes::Bytes;
use prost::Message as _;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl ActionCache for Reapi {
    /// The stored result, or `NOT_FOUND` when there is none, when it is not
    /// an `ActionResult` (a ccache entry), or when a blob it names is gone.
    async fn get_action_result(
        &self,
        req: Request<GetActionResultRequest>,
    ) -> Result<Response<ActionResult>, Status> {
        let rec = super::record(&req);
        let r = async {
            let get = req.get_ref();
            let inst = Instance::open(&self.state, &req, &get.instance_name, Need::Read)?;
            let action = BlobId::parse(get.action_digest.as_ref(), "action digest")?;
            let key = format!("ac/{}", action.hash);
            let not_found = |why: &str| {
                GrpcError::NotFound(format!("no result for action {action} is cached{why}"))
            };
            let (entry, bytes) = inst.read_entry(&key).await?.ok_or_else(|| not_found(""))?;
            let gone = inst.missing_keys(entry.references.clone()).await?;
            if let Some(first) = gone.first() {
                return Err(not_found(&format!(
                    " completely ({first}, which it names, is missing)"
                )));
            }
            ActionResult::decode(bytes.as_ref()).map_err(|_| not_found(" as an ActionResult"))
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// The result stored under the action's digest with the blobs it names
    /// as references (blobs may arrive later; a read checks them).
    async fn update_action_result(
        &self,
        req: Request<UpdateActionResultRequest>,
    ) -> Result<Response<ActionResult>, Status> {
        let rec = super::record(&req);
        let r = async {
            let update = req.get_ref();
            let inst = Instance::open(&self.state, &req, &update.instance_name, Need::Write)?;
            let action = BlobId::parse(update.action_digest.as_ref(), "action digest")?;
            let result = update.action_result.clone().ok_or_else(|| {
                GrpcError::InvalidArgument("the request carries no action_result".into())
            })?;
            let bytes = Bytes::from(result.encode_to_vec());
            let key = format!("ac/{}", action.hash);
            let walk = Walk::new(&inst).await?;
            let refs = walk.inspect(key.clone(), Vec::new(), &bytes).await?;
            // An output directory's tree blob is a reference like any blob.
            let mut references = refs.blobs;
            references.extend(refs.trees.into_iter().map(|h| format!("cas/{h}")));
            inst.put_entry(&key, bytes, references).await?;
            Ok(result)
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }
}
