//! `ActionCache` over the entries `ac/{hash}` (the same ones the HTTP
//! layout's `/ac/` serves). An action result is returned only while every
//! blob it names exists; the `cas` adapter says which those are, as it does
//! for HTTP uploads.

use super::Reapi;
use super::blobs::OCTET_STREAM;
use super::closure::Walk;
use super::digest::BlobId;
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
    /// an `ActionResult` (a ccache entry), or when a blob it names is gone;
    /// a pull-through remote then asks its upstream, a virtual one its
    /// members.
    async fn get_action_result(
        &self,
        req: Request<GetActionResultRequest>,
    ) -> Result<Response<ActionResult>, Status> {
        let rec = super::record(&req);
        let r = async {
            let get = req.get_ref();
            let inst = Instance::open(&self.state, &req, &get.instance_name, Need::Read)?;
            let action = BlobId::parse(get.action_digest.as_ref(), "action digest")?;
            result_of(&inst, &action).await
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
            let key = format!("ac/{}", action.hash());
            let walk = Walk::new(&inst).await?;
            let refs = walk.inspect(key.clone(), Vec::new(), &bytes).await?;
            inst.put_entry(&key, bytes, refs.into_keys()).await?;
            Ok(result)
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }
}

/// The result for `action` at `inst`: stored and complete, else (pull-
/// through) the upstream's, which is kept; a virtual remote asks its
/// members in order.
async fn result_of(inst: &Instance, action: &BlobId) -> Result<ActionResult, GrpcError> {
    let not_found =
        |why: &str| GrpcError::NotFound(format!("no result for action {action} is cached{why}"));
    if !inst.members.is_empty() {
        for m in &inst.members {
            match Box::pin(result_of(m, action)).await {
                Err(GrpcError::NotFound(_)) => continue,
                r => return r,
            }
        }
        return Err(not_found(" in any member"));
    }
    let key = format!("ac/{}", action.hash());
    let local = match inst.read_entry(&key, super::MAX_MESSAGE_BYTES as u64).await {
        Ok(None) => Err(not_found("")),
        // Too large for an action result (a ccache entry).
        Err(GrpcError::FailedPrecondition(_)) => Err(not_found(" as an ActionResult")),
        Err(e) => return Err(e),
        Ok(Some((entry, bytes))) => {
            let gone = inst.missing_keys(entry.references.clone()).await?;
            match gone.first() {
                Some(first) => Err(not_found(&format!(
                    " completely ({first}, which it names, is missing)"
                ))),
                None => ActionResult::decode(bytes.as_ref())
                    .map_err(|_| not_found(" as an ActionResult")),
            }
        }
    };
    match (local, &inst.upstream) {
        (Ok(r), _) => Ok(r),
        // A pull-through remote asks its upstream, and keeps the answer
        // (its outputs are fetched when they are read).
        (Err(GrpcError::NotFound(_)), Some(up)) => {
            let Some(result) = up.action_result(action).await? else {
                return Err(not_found(" here or upstream"));
            };
            let bytes = Bytes::from(result.encode_to_vec());
            let refs = Walk::new(inst)
                .await?
                .inspect(key.clone(), Vec::new(), &bytes)
                .await?;
            inst.keep(&key, bytes, refs.into_keys(), OCTET_STREAM).await;
            Ok(result)
        }
        (Err(e), _) => Err(e),
    }
}
