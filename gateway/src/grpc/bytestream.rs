//! `google.bytestream.ByteStream` over the CAS: `Read` streams a blob from
//! the store in chunks (offset and limit), `Write` streams a blob into a
//! spool, checks its size and digest and commits it; bytes never leave the
//! core. Resource names are REAPI's: `{instance}/blobs/{hash}/{size}` and
//! `{instance}/uploads/{uuid}/blobs/{hash}/{size}` (anything after the size
//! is ignored, as the spec allows).

use super::Reapi;
use super::digest::BlobId;
use super::error::GrpcError;
use super::instance::Instance;
use super::proto::bytestream::{
    QueryWriteStatusRequest, QueryWriteStatusResponse, ReadRequest, ReadResponse, WriteRequest,
    WriteResponse, byte_stream_server::ByteStream,
};
use crate::auth::Need;
use crate::cache::Outcome;
use crate::store::{BlobRead, StoreError};
use futures_util::stream::BoxStream;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Bytes per `ReadResponse`.
const READ_CHUNK: usize = 256 * 1024;

/// A parsed resource name.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// The instance name (may be empty or contain `/`).
    pub instance: String,
    /// The blob.
    pub blob: BlobId,
}

/// Parse `name`; `upload` says whether it must be an upload name
/// (`uploads/{uuid}/blobs/...`) or a read name (`blobs/...`).
pub fn parse_resource(name: &str, upload: bool) -> Result<Resource, GrpcError> {
    let bad = |why: &str| {
        GrpcError::InvalidArgument(format!(
            "the resource name {:?} {why}",
            name.chars().take(200).collect::<String>()
        ))
    };
    let segs: Vec<&str> = name.split('/').collect();
    let Some(at) = segs
        .iter()
        .position(|s| *s == "blobs" || *s == "compressed-blobs")
    else {
        return Err(bad(
            "is not {instance}/blobs/{hash}/{size} or {instance}/uploads/{uuid}/blobs/{hash}/{size}",
        ));
    };
    if segs[at] == "compressed-blobs" {
        return Err(bad(
            "names a compressed blob; this gateway advertises no compressors",
        ));
    }
    let (instance_segs, tail) = if upload {
        if at < 2 || segs[at - 2] != "uploads" {
            return Err(bad("is not {instance}/uploads/{uuid}/blobs/{hash}/{size}"));
        }
        (&segs[..at - 2], &segs[at + 1..])
    } else {
        (&segs[..at], &segs[at + 1..])
    };
    let [hash, size, ..] = tail else {
        return Err(bad("lacks the hash and size after blobs/"));
    };
    let size: i64 = size
        .parse()
        .map_err(|_| bad("has a size that is not a number"))?;
    Ok(Resource {
        instance: instance_segs.join("/"),
        blob: BlobId::new(hash, size, "resource")?,
    })
}

#[tonic::async_trait]
impl ByteStream for Reapi {
    type ReadStream = BoxStream<'static, Result<ReadResponse, Status>>;

    /// The blob from `read_offset`, at most `read_limit` bytes (0: to the
    /// end), in chunks read from the store as the client takes them.
    async fn read(&self, req: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let rec = super::record(&req);
        let r = async {
            let read = req.get_ref();
            let res = parse_resource(&read.resource_name, false)?;
            let inst = Instance::open(&self.state, &req, &res.instance, Need::Read)?;
            let size = res.blob.size;
            let offset = u64::try_from(read.read_offset)
                .ok()
                .filter(|o| *o <= size)
                .ok_or_else(|| {
                    GrpcError::OutOfRange(format!(
                        "read_offset {} is outside blob {} ({size} bytes)",
                        read.read_offset, res.blob
                    ))
                })?;
            let end = match u64::try_from(read.read_limit) {
                Ok(0) => size,
                Ok(limit) => offset.saturating_add(limit).min(size),
                Err(_) => {
                    return Err(GrpcError::OutOfRange(format!(
                        "read_limit {} is negative",
                        read.read_limit
                    )));
                }
            };
            let data = inst.open_blob(&res.blob).await?;
            let stream: Self::ReadStream = match data {
                None => Box::pin(futures_util::stream::empty()),
                Some(data) => chunks(data, offset, end),
            };
            Ok(stream)
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// The blob streamed into a spool; each request's `write_offset` must be
    /// where the previous one ended, the size must be the resource's, and
    /// the bytes must hash to its digest before it is committed. A blob the
    /// store holds already is answered at once with its size.
    async fn write(
        &self,
        req: Request<Streaming<WriteRequest>>,
    ) -> Result<Response<WriteResponse>, Status> {
        let rec = super::record(&req);
        let r = write(self, req).await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }

    /// A blob the store holds is complete; any other resource is
    /// `NOT_FOUND` (an interrupted write is not kept: the client writes it
    /// again from the start).
    async fn query_write_status(
        &self,
        req: Request<QueryWriteStatusRequest>,
    ) -> Result<Response<QueryWriteStatusResponse>, Status> {
        let rec = super::record(&req);
        let r = async {
            let res = parse_resource(&req.get_ref().resource_name, true)?;
            let inst = Instance::open(&self.state, &req, &res.instance, Need::Write)?;
            if inst.missing(vec![res.blob.clone()]).await?.is_empty() {
                Ok(QueryWriteStatusResponse {
                    committed_size: i64::try_from(res.blob.size).unwrap_or(i64::MAX),
                    complete: true,
                })
            } else {
                Err(GrpcError::NotFound(format!(
                    "no write of blob {} is in progress or complete",
                    res.blob
                )))
            }
        }
        .await;
        super::finish(&rec, r.map(Response::new), Outcome::Hosted)
    }
}

/// `data[offset..end]` as a stream of responses, each chunk read when the
/// client wants it.
fn chunks(
    data: Arc<dyn BlobRead>,
    offset: u64,
    end: u64,
) -> BoxStream<'static, Result<ReadResponse, Status>> {
    Box::pin(futures_util::stream::unfold(
        (data, offset),
        move |(data, pos)| async move {
            if pos >= end {
                return None;
            }
            let want = usize::try_from(end - pos).map_or(READ_CHUNK, |n| n.min(READ_CHUNK));
            match crate::store::read_chunk(data.clone(), pos, want).await {
                Ok(buf) if !buf.is_empty() => {
                    let next = pos + buf.len() as u64;
                    Some((
                        Ok(ReadResponse {
                            data: bytes::Bytes::from(buf),
                        }),
                        (data, next),
                    ))
                }
                Ok(_) => Some((
                    Err(Status::data_loss("the stored blob ended early")),
                    (data, end),
                )),
                Err(e) => Some((
                    Err(Status::internal(format!(
                        "reading the stored blob failed: {e}"
                    ))),
                    (data, end),
                )),
            }
        },
    ))
}

async fn write(
    svc: &Reapi,
    req: Request<Streaming<WriteRequest>>,
) -> Result<WriteResponse, GrpcError> {
    let (meta, ext, mut stream) = req.into_parts();
    let first = match stream.message().await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(GrpcError::InvalidArgument(
                "the write stream ended before its first request".into(),
            ));
        }
        Err(s) => {
            return Err(GrpcError::InvalidArgument(format!(
                "the write stream failed: {}",
                s.message()
            )));
        }
    };
    let res = parse_resource(&first.resource_name, true)?;
    let head = Request::from_parts(meta, ext, ());
    let inst = Instance::open(&svc.state, &head, &res.instance, Need::Write)?;
    let blob = res.blob;
    let done = WriteResponse {
        committed_size: i64::try_from(blob.size).unwrap_or(i64::MAX),
    };
    if inst.missing(vec![blob.clone()]).await?.is_empty() {
        return Ok(done);
    }
    if let Some(limit) = inst.remote.cfg.max_size {
        let used = inst.state.engine.store.remote_size(inst.name()).await?;
        if used.saturating_add(blob.size) > limit {
            return Err(GrpcError::ResourceExhausted(format!(
                "blob {blob} would exceed remote {:?}'s quota of {limit} bytes",
                inst.name()
            )));
        }
    }
    let mut spool = inst.state.engine.store.create_spool().await?;
    let mut received: u64 = 0;
    let mut msg = first;
    loop {
        if msg.write_offset != i64::try_from(received).unwrap_or(i64::MAX) {
            return Err(GrpcError::InvalidArgument(format!(
                "write_offset {} is not where the write stands ({received} bytes); nothing was stored (interrupted writes are not kept: start again from offset 0)",
                msg.write_offset
            )));
        }
        received += msg.data.len() as u64;
        if received > blob.size {
            return Err(GrpcError::InvalidArgument(format!(
                "the write sent more than the {} bytes of blob {blob}; nothing was stored",
                blob.size
            )));
        }
        spool
            .write(&msg.data)
            .map_err(|e| StoreError::io("write spool", spool.path().display(), e))?;
        if msg.finish_write {
            break;
        }
        msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(GrpcError::InvalidArgument(format!(
                    "the write of blob {blob} ended without finish_write after {received} bytes; nothing was stored"
                )));
            }
            Err(s) => {
                return Err(GrpcError::InvalidArgument(format!(
                    "the write of blob {blob} broke off after {received} bytes ({}); nothing was stored",
                    s.message()
                )));
            }
        };
    }
    if received != blob.size {
        return Err(GrpcError::InvalidArgument(format!(
            "the write of blob {blob} finished after {received} bytes, not {}; nothing was stored",
            blob.size
        )));
    }
    inst.commit_blob(&blob, spool).await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn read_names_with_and_without_instance() {
        let r = parse_resource(&format!("builds/blobs/{H}/0"), false).unwrap();
        assert_eq!(r.instance, "builds");
        assert_eq!(r.blob.size, 0);
        let r = parse_resource(&format!("a/b/blobs/{H}/5/extra"), false).unwrap();
        assert_eq!(r.instance, "a/b");
        let r = parse_resource(&format!("blobs/{H}/7"), false).unwrap();
        assert_eq!(r.instance, "");
    }

    #[test]
    fn upload_names() {
        let r = parse_resource(&format!("builds/uploads/1234-uuid/blobs/{H}/9"), true).unwrap();
        assert_eq!(r.instance, "builds");
        assert_eq!(r.blob.size, 9);
        assert!(parse_resource(&format!("builds/blobs/{H}/9"), true).is_err());
    }

    #[test]
    fn bad_names_are_invalid_arguments() {
        for name in [
            "builds/blobs/xyz/1".to_owned(),
            format!("builds/blobs/{H}"),
            format!("builds/blobs/{H}/-1"),
            format!("builds/blobs/{H}/ten"),
            format!("builds/compressed-blobs/zstd/{H}/1"),
            "nothing".to_owned(),
        ] {
            let e = parse_resource(&name, false).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{name}");
        }
    }
}
