//! Client request bodies: left unread, read (bounded) because the adapter
//! asked to see them (`decision::read-body`), or partly read because they
//! were larger than that bound. The adapter sees a decoded copy (gzip
//! removed, bounded); the upstream always gets the client's original
//! bytes, streamed when they were not buffered whole.

use crate::upstream::{BoxError, ReqBody};
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::io::Read;

/// Where a client body stands.
pub enum ClientBody {
    /// Not read yet.
    Unread(Incoming),
    /// Read completely (it fit the limit).
    Buffered(Bytes),
    /// Larger than the limit: the first bytes and the rest of the stream.
    Partial {
        /// What was read.
        prefix: Bytes,
        /// The remainder, unread.
        rest: Incoming,
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
#[error("the request body could not be read: {0}")]
pub struct BodyError(String);

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
            let frame = frame.map_err(|e| BodyError(e.to_string()))?;
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
            ClientBody::Unread(b) => b.map_err(|e| -> BoxError { Box::new(e) }).boxed(),
            ClientBody::Buffered(b) => http_body_util::Full::new(b).map_err(|e| match e {}).boxed(),
            ClientBody::Partial { prefix, rest } => {
                let first = futures_util::stream::once(async move {
                    Ok::<_, BoxError>(hyper::body::Frame::data(prefix))
                });
                let rest =
                    http_body_util::BodyStream::new(rest.map_err(|e| -> BoxError { Box::new(e) }));
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
