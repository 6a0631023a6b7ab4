//! Client request bodies: left unread, read (bounded) because the adapter
//! asked to see them (`decision::read-body`), or partly read because they
//! were larger than that bound. The adapter sees a decoded copy (gzip
//! removed, bounded); the upstream always gets the client's original
//! bytes, streamed when they were not buffered whole. Every read of a
//! client body is bounded in time: [`ClientStream`] fails with
//! [`BodyStalled`] (408) when no bytes arrive for `body_read_timeout`.

use crate::body::BoxError;
use crate::upstream::ReqBody;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A client's request body that fails with [`BodyStalled`] when no frame
/// arrives for its stall timeout (a client sending one byte now and then
/// would otherwise hold its connection, an upload slot and a spool file
/// for as long as it likes).
pub struct ClientStream {
    inner: Incoming,
    timeout: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: bool,
}

/// No bytes of the request body arrived within `body_read_timeout`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the request body stalled: nothing arrived for {} ms (server.body_read_timeout)",
    .0.as_millis()
)]
pub struct BodyStalled(pub Duration);

impl BodyStalled {
    /// 408 Request Timeout.
    pub fn status(&self) -> StatusCode {
        StatusCode::REQUEST_TIMEOUT
    }

    /// The stall behind `e`, if that is what it is.
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<BodyStalled> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(s) = err.downcast_ref::<BodyStalled>() {
                return Some(*s);
            }
            cur = err.source();
        }
        None
    }
}

impl ClientStream {
    /// `inner`, failing after `timeout` without a frame.
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        ClientStream {
            inner,
            timeout,
            timer: None,
            stalled: false,
        }
    }
}

impl Body for ClientStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.stalled {
            return Poll::Ready(Some(Err(Box::new(BodyStalled(this.timeout)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                // The clock restarts with every frame.
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(|e| -> BoxError { Box::new(e) })))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.stalled = true;
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(timeout)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a client body stands.
pub enum ClientBody {
    /// Not read yet.
    Unread(ClientStream),
    /// Read completely (it fit the limit).
    Buffered(Bytes),
    /// Larger than the limit: the first bytes and the rest of the stream.
    Partial {
        /// What was read.
        prefix: Bytes,
        /// The remainder, unread.
        rest: ClientStream,
    },
}

/// What the adapter gets to see of a body.
pub struct AdapterView {
    /// The decoded body, when it fit the limit and could be decoded.
    pub body: Option<Vec<u8>>,
    /// True when the body was too large (or in an encoding the host does
    /// not decode) to show.
    pub too_large: bool,
}

/// Reading the client body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client stopped sending.
    #[error(transparent)]
    Stalled(BodyStalled),
    /// The body broke off or was malformed.
    #[error("the request body could not be read: {0}")]
    Broken(String),
}

impl BodyError {
    /// 408 for a stall, else 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::Stalled(s) => s.status(),
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<BoxError> for BodyError {
    fn from(e: BoxError) -> Self {
        match BodyStalled::find(e.as_ref()) {
            Some(s) => BodyError::Stalled(s),
            None => BodyError::Broken(e.to_string()),
        }
    }
}

impl ClientBody {
    /// Read up to `limit` bytes for the adapter. Returns the new state and
    /// the adapter's view.
    pub async fn read_for_adapter(
        self,
        limit: usize,
        headers: &HeaderMap,
    ) -> Result<(ClientBody, AdapterView), BodyError> {
        let mut incoming = match self {
            ClientBody::Unread(b) => b,
            other => {
                // Already read once: show the same view again.
                let view = match &other {
                    ClientBody::Buffered(b) => decode_view(b, headers, limit),
                    _ => AdapterView {
                        body: None,
                        too_large: true,
                    },
                };
                return Ok((other, view));
            }
        };
        let mut buf = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(BodyError::from)?;
            if let Ok(d) = frame.into_data() {
                buf.extend_from_slice(&d);
                if buf.len() > limit {
                    return Ok((
                        ClientBody::Partial {
                            prefix: buf.freeze(),
                            rest: incoming,
                        },
                        AdapterView {
                            body: None,
                            too_large: true,
                        },
                    ));
                }
            }
        }
        let bytes = buf.freeze();
        let view = decode_view(&bytes, headers, limit);
        Ok((ClientBody::Buffered(bytes), view))
    }

    /// The whole body, when it was buffered.
    pub fn buffered(&self) -> Option<Bytes> {
        match self {
            ClientBody::Buffered(b) => Some(b.clone()),
            _ => None,
        }
    }

    /// The original bytes as a streaming upstream body.
    pub fn into_upstream(self) -> ReqBody {
        match self {
            ClientBody::Unread(b) => b.boxed(),
            ClientBody::Buffered(b) => http_body_util::Full::new(b).map_err(|e| match e {}).boxed(),
            ClientBody::Partial { prefix, rest } => {
                let first = futures_util::stream::once(async move {
                    Ok::<_, BoxError>(hyper::body::Frame::data(prefix))
                });
                let rest = http_body_util::BodyStream::new(rest);
                http_body_util::StreamBody::new(futures_util::StreamExt::chain(first, rest)).boxed()
            }
        }
    }
}

/// Decode `content-encoding: gzip` (bounded); identity passes through.
fn decode_view(bytes: &Bytes, headers: &HeaderMap, limit: usize) -> AdapterView {
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => AdapterView {
            body: Some(bytes.to_vec()),
            too_large: false,
        },
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            // Read one byte past the limit to tell "fits" from "too large"
            // without ever inflating more (a gzip bomb stops here).
            let reader = flate2::read::GzDecoder::new(&bytes[..]);
            match reader.take(limit as u64 + 1).read_to_end(&mut out) {
                Ok(_) if out.len() <= limit => AdapterView {
                    body: Some(out),
                    too_large: false,
                },
                _ => AdapterView {
                    body: None,
                    too_large: true,
                },
            }
        }
        Some(_) => AdapterView {
            body: None,
            too_large: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn gzip_is_decoded_within_the_limit() {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        let v = decode_view(&gz(b"0032want abc\n"), &h, 100);
        assert_eq!(v.body.as_deref(), Some(&b"0032want abc\n"[..]));
        assert!(!v.too_large);
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        let v = decode_view(&gz(&vec![0u8; 10 << 20]), &h, 1024);
        assert!(v.body.is_none() && v.too_large);
    }

    #[test]
    fn unknown_encodings_are_not_shown() {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_ENCODING, "br".parse().unwrap());
        let v = decode_view(&Bytes::from_static(b"x"), &h, 10);
        assert!(v.body.is_none() && v.too_large);
    }
}
