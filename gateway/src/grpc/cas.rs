//! `ContentAddressableStorage`: which blobs are missing, batch uploads and
//! reads of small blobs, and `GetTree` (the Directory closure of a root,
//! walked with the `cas` adapter's rules, paged).

use super::closure::Walk;
use super::digest::BlobId;
use super::error::{GrpcError, ok_status};
use super::instance::Instance;
use super::proto::reapi::{
    BatchReadBlobsRequest, BatchReadBlobsResponse, BatchUpdateBlobsRequest,
    BatchUpdateBlobsResponse, Directory, FindMissingBlobsRequest, FindMissingBlobsResponse,
    GetTreeRequest, GetTreeResponse, batch_read_blobs_response, batch_update_blobs_response,
    compressor, content_addressable_storage_server::ContentAddressableStorage,
};
use super::{MAX_BATCH_BYTES, Reapi};
use crate::auth::Need;
use crate::cache::Outcome;
use futures_util::stream::BoxStream;
use prost::Message as _;
use tonic::{Request, Response, Status};

/// Most digests one `FindMissingBlobs` may ask about.
pub const MAX_FIND_DIGESTS: usize = 100_000;

/// Most directories one page of `GetTree` holds, whatever the client asks.
const MAX_TREE_PAGE: usize = 1_000;

#[tonic::async_trait]
impl ContentAddressableStorage for Reapi {
    /// The blobs of the request the store does not hold, in one index pass.
    async fn find_missing_blobs(
        &self,
        req: Request<FindMissingBlobsRequest>,
    ) -> Result<Response<FindMissingBlobsResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let inst = Instance::open(&self.state, &req, &req.get_ref().instance_name, Need::Read)?;
            let digests = &req.get_ref().blob_digests;
            if digests.len() > MAX_FIND_DIGESTS {
                return Err(GrpcError::ResourceExhausted(format!(
                    "the request asks about {} digests; at most {MAX_FIND_DIGESTS} per call",
                    digests.len()
                )));
            }
            let ids = digests
                .iter()
                .map(|d| BlobId::parse(Some(d), "blob digest"))
                .collect::<Result<Vec<_>, _>>()?;
            let missing = inst.missing(ids).await?;
            Ok(FindMissingBlobsResponse {
                missing_blob_digests: missing.iter().map(BlobId::to_proto).collect(),
            })
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// Each blob verified against its digest and committed on its own; a
    /// per-blob status says which failed.
    async fn batch_update_blobs(
        &self,
        req: Request<BatchUpdateBlobsRequest>,
    ) -> Result<Response<BatchUpdateBlobsResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let inst =
                Instance::open(&self.state, &req, &req.get_ref().instance_name, Need::Write)?;
            let total: usize = req.get_ref().requests.iter().map(|r| r.data.len()).sum();
            if total > MAX_BATCH_BYTES {
                return Err(GrpcError::InvalidArgument(format!(
                    "the batch holds {total} bytes, more than max_batch_total_size_bytes ({MAX_BATCH_BYTES}); send larger blobs with ByteStream Write"
                )));
            }
            let mut responses = Vec::with_capacity(req.get_ref().requests.len());
            for one in &req.get_ref().requests {
                let result = async {
                    let id = BlobId::parse(one.digest.as_ref(), "blob digest")?;
                    if one.compressor != compressor::Value::Identity as i32 {
                        return Err(GrpcError::InvalidArgument(
                            "compressed uploads are not supported; send the blob uncompressed"
                                .into(),
                        ));
                    }
                    inst.put(&id, one.data.clone()).await
                }
                .await;
                responses.push(batch_update_blobs_response::Response {
                    digest: one.digest.clone(),
                    status: Some(match result {
                        Ok(()) => ok_status(),
                        Err(e) => e.rpc_status(),
                    }),
                });
            }
            Ok(BatchUpdateBlobsResponse { responses })
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// Each blob read whole; a missing one gets `NOT_FOUND` in its status.
    async fn batch_read_blobs(
        &self,
        req: Request<BatchReadBlobsRequest>,
    ) -> Result<Response<BatchReadBlobsResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let inst =
                Instance::open(&self.state, &req, &req.get_ref().instance_name, Need::Read)?;
            let ids = req
                .get_ref()
                .digests
                .iter()
                .map(|d| BlobId::parse(Some(d), "blob digest"))
                .collect::<Result<Vec<_>, _>>()?;
            let total: u64 = ids.iter().map(|d| d.size).sum();
            if total > MAX_BATCH_BYTES as u64 {
                return Err(GrpcError::InvalidArgument(format!(
                    "the blobs asked for total {total} bytes, more than max_batch_total_size_bytes ({MAX_BATCH_BYTES}); read larger blobs with ByteStream Read"
                )));
            }
            let mut responses = Vec::with_capacity(ids.len());
            for id in ids {
                let (data, status) = match inst.read(&id).await {
                    Ok(data) => (data, ok_status()),
                    Err(e) => (bytes::Bytes::new(), e.rpc_status()),
                };
                responses.push(batch_read_blobs_response::Response {
                    digest: Some(id.to_proto()),
                    data,
                    compressor: compressor::Value::Identity as i32,
                    status: Some(status),
                });
            }
            Ok(BatchReadBlobsResponse { responses })
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    type GetTreeStream = BoxStream<'static, Result<GetTreeResponse, Status>>;

    /// The Directory messages under a root, breadth first, streamed in
    /// pages of `page_size`; a page token is the number of directories
    /// before the page (a client resumes with it). A directory the store
    /// lacks fails the call with `NOT_FOUND`.
    async fn get_tree(
        &self,
        req: Request<GetTreeRequest>,
    ) -> Result<Response<Self::GetTreeStream>, Status> {
        let rec = super::record(&req);
        let r = async {
            let inst = Instance::open(&self.state, &req, &req.get_ref().instance_name, Need::Read)?;
            let get = req.get_ref();
            let root = BlobId::parse(get.root_digest.as_ref(), "root digest")?;
            let skip: usize = if get.page_token.is_empty() {
                0
            } else {
                get.page_token.parse().map_err(|_| {
                    GrpcError::InvalidArgument(format!(
                        "the page token {:?} is not one this gateway gave",
                        get.page_token.chars().take(32).collect::<String>()
                    ))
                })?
            };
            let page = match usize::try_from(get.page_size) {
                Ok(0) | Err(_) => MAX_TREE_PAGE,
                Ok(n) => n.min(MAX_TREE_PAGE),
            };
            let walk = Walk::new(&inst).await?;
            let dirs = walk.tree(&root, skip).await?;
            let mut pages = Vec::new();
            let mut sent = skip;
            for chunk in dirs.chunks(page) {
                let mut directories = Vec::with_capacity(chunk.len());
                for bytes in chunk {
                    directories.push(Directory::decode(bytes.as_ref()).map_err(|e| {
                        GrpcError::FailedPrecondition(format!(
                            "a directory of the tree is not a Directory message: {e}"
                        ))
                    })?);
                }
                sent += chunk.len();
                let next_page_token = if sent < skip + dirs.len() {
                    sent.to_string()
                } else {
                    String::new()
                };
                pages.push(Ok(GetTreeResponse {
                    directories,
                    next_page_token,
                }));
            }
            let stream: Self::GetTreeStream = Box::pin(futures_util::stream::iter(pages));
            Ok(stream)
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }
}
