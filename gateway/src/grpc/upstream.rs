//! A pull-through `cas` remote's upstream: another REAPI server (BuildGrid,
//! another artgate, bazel-remote), reached with the gateway's generated
//! clients over the upstream HTTP/2 client (`upstream = "grpc://host:port/
//! instance"`; `grpcs://` for TLS). Each call has the upstream timeouts of
//! `[upstream]`; blobs are read with ByteStream into a spool, never into
//! memory whole (`flight.rs` makes concurrent misses fetch once).

use super::digest::BlobId;
use super::error::GrpcError;
use super::proto::asset::{FetchBlobRequest, FetchBlobResponse, fetch_client::FetchClient};
use super::proto::bytestream::{ReadRequest, byte_stream_client::ByteStreamClient};
use super::proto::reapi::{
    ActionResult, GetActionResultRequest, action_cache_client::ActionCacheClient,
};
use crate::config::RemoteConfig;
use crate::metrics::Metrics;
use crate::store::{Spool, StoreError};
use crate::upstream::{GrpcClient, Upstream};
use crate::upstream_health::UpstreamHealth;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;

/// One remote's REAPI upstream.
pub struct RemoteCas {
    client: GrpcClient,
    /// The remote's name (metrics, upstream health).
    remote: String,
    metrics: Arc<Metrics>,
    health: Arc<UpstreamHealth>,
    origin: http::Uri,
    /// The upstream's instance name (the URL's path, without `/`).
    instance: String,
    /// Shown in messages and logs.
    shown: String,
    first_byte: Duration,
    idle: Duration,
}

impl RemoteCas {
    /// The upstream of a pull-through `cas` remote (its first URL); `None`
    /// for a remote without one.
    pub fn of(
        upstream: &Upstream,
        metrics: &Arc<Metrics>,
        cfg: &RemoteConfig,
    ) -> Option<RemoteCas> {
        let url = cfg.upstreams.first()?;
        let origin: http::Uri = format!(
            "{}://{}",
            url.scheme_str().unwrap_or("http"),
            url.authority()?.as_str()
        )
        .parse()
        .ok()?;
        let instance = url.path().trim_matches('/').to_owned();
        let shown = format!(
            "{}://{}",
            if url.scheme_str() == Some("https") {
                "grpcs"
            } else {
                "grpc"
            },
            url.authority()?.as_str()
        );
        Some(RemoteCas {
            client: upstream.grpc(),
            remote: cfg.name.clone(),
            metrics: metrics.clone(),
            health: upstream.health.clone(),
            origin,
            instance,
            shown,
            first_byte: upstream.first_byte_timeout(),
            idle: upstream.idle_timeout(),
        })
    }

    /// `fut` bounded by the first-byte timeout, its status mapped.
    async fn unary<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, GrpcError> {
        let sent = std::time::Instant::now();
        let r = match tokio::time::timeout(self.first_byte, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(self.failed(what, &s)),
            Err(_) => Err(GrpcError::Unavailable(format!(
                "upstream {} did not answer {what} within {:?}",
                self.shown, self.first_byte
            ))),
        };
        // Counted as the HTTP upstreams are: an answer (a status the
        // client acts on counts as one) or an error, with its latency.
        let answered = matches!(
            r,
            Ok(_) | Err(GrpcError::NotFound(_) | GrpcError::Unimplemented(_))
        );
        self.metrics
            .upstream_request(&self.remote, if answered { "200" } else { "error" });
        match &r {
            Err(e) if !answered => self.health.failed(&self.remote, &e.to_string()),
            _ => self.health.answered(&self.remote, 200, sent.elapsed()),
        }
        r
    }

    /// An upstream's status as ours: what the client can act on keeps its
    /// code, anything else says the upstream failed.
    fn failed(&self, what: &str, s: &tonic::Status) -> GrpcError {
        let msg = format!(
            "upstream {} answered {what} with {:?}: {}",
            self.shown,
            s.code(),
            s.message().chars().take(300).collect::<String>()
        );
        match s.code() {
            Code::NotFound => GrpcError::NotFound(msg),
            Code::InvalidArgument => GrpcError::InvalidArgument(msg),
            Code::Unimplemented => GrpcError::Unimplemented(msg),
            _ => GrpcError::Unavailable(msg),
        }
    }

    /// The blob `id` streamed from the upstream into `spool` (the caller
    /// verifies and commits it). `NotFound` when the upstream lacks it.
    pub async fn read_into(&self, id: &BlobId, mut spool: Spool) -> Result<Spool, GrpcError> {
        let mut client = ByteStreamClient::with_origin(self.client.clone(), self.origin.clone())
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES);
        let name = if self.instance.is_empty() {
            format!("blobs/{}/{}", id.hash(), id.size)
        } else {
            format!("{}/blobs/{}/{}", self.instance, id.hash(), id.size)
        };
        let req = ReadRequest {
            resource_name: name,
            read_offset: 0,
            read_limit: 0,
        };
        let mut stream = self.unary("ByteStream Read", client.read(req)).await?;
        let mut got: u64 = 0;
        loop {
            let msg = match tokio::time::timeout(self.idle, stream.message()).await {
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => break,
                Ok(Err(s)) => return Err(self.failed("ByteStream Read", &s)),
                Err(_) => {
                    return Err(GrpcError::Unavailable(format!(
                        "upstream {} stalled for {:?} reading blob {id}",
                        self.shown, self.idle
                    )));
                }
            };
            got += msg.data.len() as u64;
            self.metrics
                .upstream_bytes(&self.remote, msg.data.len() as u64);
            if got > id.size {
                return Err(GrpcError::Unavailable(format!(
                    "upstream {} sent more than the {} bytes of blob {id}",
                    self.shown, id.size
                )));
            }
            spool
                .write(&msg.data)
                .map_err(|e| StoreError::io("write spool", spool.path().display(), e))?;
        }
        if got != id.size {
            return Err(GrpcError::Unavailable(format!(
                "upstream {} sent {got} of the {} bytes of blob {id}",
                self.shown, id.size
            )));
        }
        Ok(spool)
    }

    /// The upstream's result for `action`, `None` when it has none.
    pub async fn action_result(&self, action: &BlobId) -> Result<Option<ActionResult>, GrpcError> {
        let mut client = ActionCacheClient::with_origin(self.client.clone(), self.origin.clone())
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES);
        let req = GetActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(action.to_proto()),
            ..Default::default()
        };
        match self
            .unary("GetActionResult", client.get_action_result(req))
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(GrpcError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The upstream's answer to a `FetchBlob`; `None` when it has no such
    /// asset or no Remote Asset API at all (BuildGrid has none).
    pub async fn fetch_blob(
        &self,
        mut req: FetchBlobRequest,
    ) -> Result<Option<FetchBlobResponse>, GrpcError> {
        req.instance_name = self.instance.clone();
        let mut client = FetchClient::with_origin(self.client.clone(), self.origin.clone());
        match self.unary("FetchBlob", client.fetch_blob(req)).await {
            Ok(r) if r.status.as_ref().is_none_or(|s| s.code == 0) => Ok(Some(r)),
            Ok(_) | Err(GrpcError::NotFound(_)) | Err(GrpcError::Unimplemented(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// How the upstream is shown in messages (`grpc://host:port`).
    pub fn shown(&self) -> &str {
        &self.shown
    }
}
