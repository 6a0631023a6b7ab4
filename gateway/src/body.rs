//! Response bodies and error responses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

/// Error type of streamed bodies, request and response alike; an error
/// aborts the connection.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body the gateway sends.
pub type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ResBody {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// `body` with its first frame already read: `Err` when the body fails
/// before yielding a byte. A response whose bytes come from a fill still
/// in progress is primed before its head is sent, so a fill that fails
/// that early becomes an error status instead of a connection closed
/// with no answer at all.
pub async fn primed(mut body: ResBody) -> Result<ResBody, BoxError> {
    let first = match body.frame().await {
        None => return Ok(empty()),
        Some(frame) => frame?,
    };
    let rest = http_body_util::BodyStream::new(body);
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter([Ok(first)]), rest);
    Ok(http_body_util::StreamBody::new(stream).boxed_unsync())
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<ResBody> {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A plain-text error response: one sentence saying what was wrong, as
/// `{"error": "...", "status": N}` JSON.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response<ResBody> {
    let message = message.into();
    json(
        status,
        &serde_json::json!({ "error": message, "status": status.as_u16() }),
    )
}

/// An error in the OCI distribution format (`{"errors":[{code,message}]}`).
pub fn oci_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<ResBody> {
    let mut r = json(
        status,
        &serde_json::json!({ "errors": [{ "code": code, "message": message.into(), "detail": null }] }),
    );
    r.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

/// The status for an error an adapter reported: its own when that is a
/// 4xx or 5xx, else 502 (an adapter cannot make an error look like success).
pub fn error_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}
