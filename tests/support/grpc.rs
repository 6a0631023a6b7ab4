//! gRPC clients for the gateway's REAPI front, made from the gateway's own
//! generated client code over a plain hyper HTTP/2 client (h2c with prior
//! knowledge, as `grpc://` clients connect).

use artgate::grpc::proto::asset::{fetch_client::FetchClient, push_client::PushClient};
use artgate::grpc::proto::bytestream::{
    ReadRequest, WriteRequest, byte_stream_client::ByteStreamClient,
};
use artgate::grpc::proto::reapi::{
    ActionResult, BatchUpdateBlobsRequest, Digest, GetActionResultRequest,
    UpdateActionResultRequest, action_cache_client::ActionCacheClient, batch_update_blobs_request,
    capabilities_client::CapabilitiesClient,
    content_addressable_storage_client::ContentAddressableStorageClient,
    execution_client::ExecutionClient,
};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;

/// The transport every client uses.
pub type Channel = Client<HttpConnector, tonic::body::Body>;

/// Clients of every service, on one connection pool to `addr`, sending
/// `authorization: Bearer TOKEN` when a token is set.
#[derive(Clone)]
pub struct Grpc {
    channel: Channel,
    origin: http::Uri,
    /// The instance name sent with every call.
    pub instance: String,
    token: Option<String>,
}

impl Grpc {
    /// Clients for `instance` on the gateway at `addr`.
    pub fn new(addr: SocketAddr, instance: &str) -> Grpc {
        let channel = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        Grpc {
            channel,
            origin: format!("http://{addr}").parse().unwrap(),
            instance: instance.to_owned(),
            token: None,
        }
    }

    /// The same clients, sending `token`.
    pub fn with_token(&self, token: &str) -> Grpc {
        Grpc {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// `msg` as a request, with the token.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = &self.token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    /// `Capabilities`.
    pub fn capabilities(&self) -> CapabilitiesClient<Channel> {
        CapabilitiesClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    /// `ContentAddressableStorage`.
    pub fn cas(&self) -> ContentAddressableStorageClient<Channel> {
        ContentAddressableStorageClient::with_origin(self.channel.clone(), self.origin.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// `ByteStream`.
    pub fn bytestream(&self) -> ByteStreamClient<Channel> {
        ByteStreamClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    /// `ActionCache`.
    pub fn action_cache(&self) -> ActionCacheClient<Channel> {
        ActionCacheClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    /// Remote Asset `Fetch`.
    pub fn fetch(&self) -> FetchClient<Channel> {
        FetchClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    /// Remote Asset `Push`.
    pub fn push(&self) -> PushClient<Channel> {
        PushClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    /// `Execution`.
    pub fn execution(&self) -> ExecutionClient<Channel> {
        ExecutionClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    /// `UpdateActionResult` of `result` for `action`.
    pub async fn put_result(
        &self,
        action: &Digest,
        result: &ActionResult,
    ) -> Result<tonic::Response<ActionResult>, tonic::Status> {
        self.action_cache()
            .update_action_result(self.req(UpdateActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(action.clone()),
                action_result: Some(result.clone()),
                ..Default::default()
            }))
            .await
    }

    /// `GetActionResult` for `action`.
    pub async fn get_result(
        &self,
        action: &Digest,
    ) -> Result<tonic::Response<ActionResult>, tonic::Status> {
        self.action_cache()
            .get_action_result(self.req(GetActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(action.clone()),
                ..Default::default()
            }))
            .await
    }

    /// Upload `data` with `BatchUpdateBlobs`; the per-blob status code.
    pub async fn upload(&self, data: &[u8]) -> i32 {
        let r = self
            .cas()
            .batch_update_blobs(self.req(BatchUpdateBlobsRequest {
                instance_name: self.instance.clone(),
                requests: vec![batch_update_blobs_request::Request {
                    digest: Some(digest(data)),
                    data: bytes::Bytes::copy_from_slice(data),
                    compressor: 0,
                }],
                digest_function: 0,
            }))
            .await
            .expect("BatchUpdateBlobs");
        r.into_inner().responses[0].status.as_ref().unwrap().code
    }

    /// Upload `data` with ByteStream `Write` in `chunk`-byte requests.
    pub async fn write(&self, data: &[u8], chunk: usize) -> Result<i64, tonic::Status> {
        let d = digest(data);
        let name = format!(
            "{}/uploads/5f0c1f3e-0000-4000-8000-000000000001/blobs/{}/{}",
            self.instance, d.hash, d.size_bytes
        );
        let mut reqs = Vec::new();
        let mut off = 0;
        loop {
            let end = (off + chunk).min(data.len());
            reqs.push(WriteRequest {
                resource_name: if off == 0 {
                    name.clone()
                } else {
                    String::new()
                },
                write_offset: off as i64,
                finish_write: end == data.len(),
                data: bytes::Bytes::copy_from_slice(&data[off..end]),
            });
            off = end;
            if off == data.len() {
                break;
            }
        }
        self.write_requests(reqs).await
    }

    /// Send `reqs` as one ByteStream `Write`.
    pub async fn write_requests(&self, reqs: Vec<WriteRequest>) -> Result<i64, tonic::Status> {
        self.bytestream()
            .write(self.req(futures_util::stream::iter(reqs)))
            .await
            .map(|r| r.into_inner().committed_size)
    }

    /// ByteStream `Read` of the blob `d` from `offset`, at most `limit`.
    pub async fn read(
        &self,
        d: &Digest,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<u8>, tonic::Status> {
        let mut stream = self
            .bytestream()
            .read(self.req(ReadRequest {
                resource_name: format!("{}/blobs/{}/{}", self.instance, d.hash, d.size_bytes),
                read_offset: offset,
                read_limit: limit,
            }))
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream.message().await? {
            out.extend_from_slice(&m.data);
        }
        Ok(out)
    }
}

/// The REAPI digest of `data`.
pub fn digest(data: &[u8]) -> Digest {
    Digest {
        hash: super::sha256_hex(data),
        size_bytes: data.len() as i64,
    }
}
