//! The Remote Execution API (REAPI v2) and the Remote Asset API over gRPC,
//! on the gateway's main listener: HTTP/2 requests whose content type is
//! `application/grpc*` come here instead of going to `routes.rs` (h2c with
//! prior knowledge on plain TCP, ALPN `h2` with TLS). The `instance_name`
//! of a call selects the `[[remote]]` of that name, which must have
//! `package = "cas"`; blobs, action results and assets live in its store
//! under the keys the `cas` adapter's HTTP layout uses, so Bazel's HTTP
//! cache, ccache and gRPC clients share one store.
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | which requests are gRPC, the dispatch to the services, limits, the metrics record |
//! | `proto.rs` | the generated messages and service traits (`proto/`, built by `build.rs`) |
//! | `instance.rs` | instance name → remote, the token in the metadata and its scope |
//! | `digest.rs` | `BlobId`: a checked REAPI digest and its store key |
//! | `blobs.rs` | the remote's store as digests: presence, reads (through the upstream on a pull-through remote), verified writes |
//! | `closure.rs` | what a message references (asked of the `cas` adapter) and the Directory walks |
//! | `capabilities.rs`, `cas.rs`, `bytestream.rs`, `action_cache.rs`, `asset.rs`, `execution.rs` | one service each |
//! | `upstream.rs` | a pull-through remote's REAPI upstream (`grpc://`, `grpcs://`) |
//! | `flight.rs` | the per-blob lock: one upstream fetch for concurrent misses |
//! | `error.rs` | `GrpcError`: a status code and one sentence |
//!
//! Blob bytes stream between the client and the store's spool files in the
//! core; only small messages (Directory, ActionResult, a BuildStream
//! `Artifact`) are shown to the adapter.

pub mod action_cache;
pub mod asset;
pub mod blobs;
pub mod bytestream;
pub mod capabilities;
pub mod cas;
pub mod closure;
pub mod digest;
pub mod error;
pub mod execution;
pub mod flight;
pub mod instance;
pub mod proto;
pub mod upstream;

use crate::body::ResBody;
use crate::cache::Outcome;
use crate::reqbody::ClientStream;
use crate::state::AppState;
use error::GrpcError;
use http::{Request, Response};
use http_body_util::BodyExt;
use instance::{CallRecord, RequestId};
use proto::asset::{fetch_server::FetchServer, push_server::PushServer};
use proto::bytestream::byte_stream_server::ByteStreamServer;
use proto::reapi::{
    action_cache_server::ActionCacheServer, capabilities_server::CapabilitiesServer,
    content_addressable_storage_server::ContentAddressableStorageServer,
    execution_server::ExecutionServer,
};
use std::sync::Arc;
use tonic::codegen::Service;
use tonic::server::NamedService;

/// The most blob bytes one batch call may carry (advertised as
/// `max_batch_total_size_bytes`; gRPC's customary 4 MiB message limit).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The largest request message of ByteStream and the action cache: a
/// 4 MiB chunk or action result and its framing. Larger messages are
/// refused by the codec (`OUT_OF_RANGE`).
pub const MAX_MESSAGE_BYTES: usize = MAX_BATCH_BYTES + 1024 * 1024;

/// The largest CAS request: a full batch and its digests, or the digests
/// of a `FindMissingBlobs` of [`cas::MAX_FIND_DIGESTS`] (~75 bytes each).
pub const CAS_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// The largest `PushBlob`/`PushDirectory`: URIs, qualifiers, references.
pub const PUSH_MESSAGE_BYTES: usize = 1024 * 1024;

/// The largest request of the other services (capabilities, fetches,
/// execution): a few names.
pub const SMALL_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest response message: a full `BatchReadBlobs` of many small
/// blobs, with a digest and a status each.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The services, over the gateway's state (one per call, cheap).
#[derive(Clone)]
pub struct Reapi {
    state: Arc<AppState>,
}

/// Whether `req` is a gRPC call (HTTP/2 and a gRPC content type).
pub fn is_grpc<B>(req: &Request<B>) -> bool {
    req.version() == http::Version::HTTP_2
        && req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Answer the gRPC call `req`: the response (its status in the trailers),
/// the remote it was for (`-` when none was resolved) and its outcome.
pub async fn handle(
    state: &Arc<AppState>,
    mut req: Request<ClientStream>,
    id: &str,
) -> (Response<ResBody>, String, Outcome) {
    let record = CallRecord::default();
    req.extensions_mut().insert(record.clone());
    req.extensions_mut().insert(RequestId(Arc::from(id)));
    let reapi = Reapi {
        state: state.clone(),
    };
    let service = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned();
    let resp = match service.as_str() {
        CapabilitiesServer::<Reapi>::NAME => {
            call(CapabilitiesServer::new(reapi), SMALL_MESSAGE_BYTES, req).await
        }
        ContentAddressableStorageServer::<Reapi>::NAME => {
            call(
                ContentAddressableStorageServer::new(reapi),
                CAS_MESSAGE_BYTES,
                req,
            )
            .await
        }
        ByteStreamServer::<Reapi>::NAME => {
            call(ByteStreamServer::new(reapi), MAX_MESSAGE_BYTES, req).await
        }
        ActionCacheServer::<Reapi>::NAME => {
            call(ActionCacheServer::new(reapi), MAX_MESSAGE_BYTES, req).await
        }
        FetchServer::<Reapi>::NAME => call(FetchServer::new(reapi), SMALL_MESSAGE_BYTES, req).await,
        PushServer::<Reapi>::NAME => call(PushServer::new(reapi), PUSH_MESSAGE_BYTES, req).await,
        ExecutionServer::<Reapi>::NAME => {
            call(ExecutionServer::new(reapi), SMALL_MESSAGE_BYTES, req).await
        }
        other => {
            let e = GrpcError::Unimplemented(format!(
                "service {:?} is not served here; this gateway serves the REAPI cache services, ByteStream and the Remote Asset API",
                other.chars().take(100).collect::<String>()
            ));
            tonic::Status::from(e).into_http()
        }
    };
    let (remote, outcome) = record.get();
    (
        resp.map(|b| b.map_err(Into::into).boxed_unsync()),
        remote,
        outcome,
    )
}

/// A generated server whose message limits can be set.
trait Limited:
    Service<
        Request<ClientStream>,
        Response = Response<tonic::body::Body>,
        Error = std::convert::Infallible,
    > + Sized
{
    /// The same server decoding at most `max` bytes per request message
    /// and encoding at most [`MAX_RESPONSE_BYTES`] per response message.
    fn limited(self, max: usize) -> Self;
}

macro_rules! limited {
    ($($server:ident),*) => {$(
        impl Limited for $server<Reapi> {
            fn limited(self, max: usize) -> Self {
                self.max_decoding_message_size(max)
                    .max_encoding_message_size(MAX_RESPONSE_BYTES)
            }
        }
    )*};
}

limited!(
    CapabilitiesServer,
    ContentAddressableStorageServer,
    ByteStreamServer,
    ActionCacheServer,
    FetchServer,
    PushServer,
    ExecutionServer
);

/// Run one generated server on `req`, with request messages of at most
/// `max` bytes. The body is `server.body_read_timeout`-bounded: a stream
/// that stalls mid-message ends, and with it what it held.
async fn call<S: Limited>(
    svc: S,
    max: usize,
    req: Request<ClientStream>,
) -> Response<tonic::body::Body> {
    match svc.limited(max).call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// The call's record (a default one when the dispatcher set none, as in
/// unit tests).
fn record<T>(req: &tonic::Request<T>) -> CallRecord {
    req.extensions()
        .get::<CallRecord>()
        .cloned()
        .unwrap_or_default()
}

/// Record how a call ended and turn its error into a status. A call that
/// succeeded counts as `ok`; `NOT_FOUND` (a cache miss to the client)
/// counts as `ok` too, any other error as an error.
fn finish<T>(rec: &CallRecord, r: Result<T, GrpcError>, ok: Outcome) -> Result<T, tonic::Status> {
    match r {
        Ok(v) => {
            rec.set_outcome(ok);
            Ok(v)
        }
        Err(e) => {
            if matches!(e, GrpcError::NotFound(_)) {
                rec.set_outcome(ok);
                tracing::debug!(error = %e, "gRPC call: not found");
            } else {
                tracing::info!(code = ?e.code(), error = %e, "gRPC call failed");
            }
            Err(e.into())
        }
    }
}
