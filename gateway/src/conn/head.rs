//! An HTTP/1 request head read before hyper sees it: the limits of
//! `[server]` checked on the bytes as sent, and the framing of the body
//! that follows, so that the next head is found too.
//!
//! hyper answers its own limits with an empty body, and resolves a
//! `Content-Length` next to a `Transfer-Encoding` by dropping the length
//! before the service can see it. Checking the head here gives every
//! refusal the JSON body of any other error, and refuses ambiguous framing
//! (the raw material of request smuggling) instead of guessing.

use super::{ConnLimits, Refusal};
use http::StatusCode;

/// How the body after an accepted head is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: the next head follows at once.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the bytes read so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A head still incomplete and within the limits.
    Partial,
    /// A whole head of `len` bytes within the limits.
    Accepted {
        /// Bytes of the head, up to and including its empty line.
        len: usize,
        /// The body after it.
        framing: Framing,
    },
    /// A head that breaks a limit or is not valid HTTP/1.1.
    Refused(Refusal),
}

/// The refusal of a request target longer than `max_uri_bytes`.
pub fn uri_too_long(l: &ConnLimits) -> Refusal {
    refusal(
        StatusCode::URI_TOO_LONG,
        format!("the request URI is longer than {} bytes", l.max_uri_bytes),
    )
}

/// The refusal of a header block larger than `max_header_bytes`.
pub fn headers_too_large(l: &ConnLimits) -> Refusal {
    refusal(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        format!(
            "the request headers are larger than {} bytes",
            l.max_header_bytes
        ),
    )
}

/// The refusal of more than `max_headers` headers.
pub fn too_many_headers(l: &ConnLimits) -> Refusal {
    refusal(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        format!("the request has more than {} headers", l.max_headers),
    )
}

/// A 400 with `message`.
pub fn bad_request(message: &str) -> Refusal {
    refusal(StatusCode::BAD_REQUEST, message.to_owned())
}

fn refusal(status: StatusCode, message: String) -> Refusal {
    Refusal { status, message }
}

/// The size a header counts toward `max_header_bytes`: name, value, and
/// the `: ` and line end around them.
pub fn header_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 4
}

/// Check the start of `buf`, the bytes of a head read so far.
pub fn check(buf: &[u8], limits: &ConnLimits) -> Head {
    // A request line longer than the longest target plus a method and a
    // version is refused before the rest of it arrives.
    let line = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    if line > limits.max_uri_bytes + 64 {
        return Head::Refused(uri_too_long(limits));
    }
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes() => {
            return Head::Refused(headers_too_large(limits));
        }
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(httparse::Error::TooManyHeaders) => return Head::Refused(too_many_headers(limits)),
        Err(_) => return Head::Refused(bad_request("the request head is not valid HTTP/1.1")),
    };
    if req.path.map_or(0, str::len) > limits.max_uri_bytes {
        return Head::Refused(uri_too_long(limits));
    }
    let header_bytes: usize = req
        .headers
        .iter()
        .map(|h| header_size(h.name.as_bytes(), h.value))
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Head::Refused(headers_too_large(limits));
    }
    match framing(&req) {
        Ok(framing) => Head::Accepted { len, framing },
        Err(r) => Head::Refused(r),
    }
}

/// The body framing a parsed head declares, or why it is ambiguous.
fn framing(req: &httparse::Request<'_, '_>) -> Result<Framing, Refusal> {
    let named = |n: &'static str| {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(n))
    };
    let te: Vec<&[u8]> = named("transfer-encoding").map(|h| h.value).collect();
    let cl: Vec<&[u8]> = named("content-length").map(|h| h.value).collect();
    if !te.is_empty() && !cl.is_empty() {
        return Err(bad_request(
            "the request has both Transfer-Encoding and Content-Length",
        ));
    }
    if te.len() > 1 {
        return Err(bad_request(
            "the request has more than one Transfer-Encoding header",
        ));
    }
    if cl.len() > 1 {
        return Err(bad_request(
            "the request has more than one Content-Length header",
        ));
    }
    let body = if let Some(te) = te.first() {
        if req.version != Some(1) {
            return Err(bad_request(
                "an HTTP/1.0 request cannot have a Transfer-Encoding",
            ));
        }
        // Only `chunked` alone: other codings are not decoded here.
        if !te.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            return Err(bad_request(
                "the request's Transfer-Encoding is not chunked",
            ));
        }
        Framing::Chunked
    } else if let Some(cl) = cl.first() {
        let digits = cl.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad_request("the request's Content-Length is not a number"));
        }
        let n = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad_request("the request's Content-Length is too large"))?;
        if n == 0 {
            Framing::None
        } else {
            Framing::Length(n)
        }
    } else {
        Framing::None
    };
    // An `Upgrade` header or `CONNECT` changes nothing: the gateway never
    // grants either, so the connection stays HTTP/1.1 and the next head is
    // checked like any other (stopping here would let it through unread).
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_uri_bytes: 100,
            max_header_bytes: 200,
            max_headers: 5,
        }
    }

    fn status(buf: &[u8]) -> Option<u16> {
        match check(buf, &limits()) {
            Head::Refused(r) => Some(r.status.as_u16()),
            _ => None,
        }
    }

    #[test]
    fn framing_is_read_from_the_head() {
        let h = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            check(h, &limits()),
            Head::Accepted {
                len: h.len() - 5,
                framing: Framing::Length(5)
            }
        );
        let h = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            check(h, &limits()),
            Head::Accepted {
                framing: Framing::Chunked,
                ..
            }
        ));
        assert_eq!(
            check(b"GET /x HTTP/1.1\r\nHost: a\r\n", &limits()),
            Head::Partial
        );
    }

    #[test]
    fn limits_and_ambiguity_are_refused() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(150));
        assert_eq!(status(long.as_bytes()), Some(414));
        // Refused before the line ends.
        assert_eq!(status("a".repeat(400).as_bytes()), Some(414));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(6));
        assert_eq!(status(many.as_bytes()), Some(431));
        let big = format!("GET / HTTP/1.1\r\nA: {}\r\n\r\n", "b".repeat(300));
        assert_eq!(status(big.as_bytes()), Some(431));
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
            Some(400)
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"), Some(400));
    }
}
