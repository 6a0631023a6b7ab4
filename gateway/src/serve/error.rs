//! The errors of the serving path. [`ServeError`] is the one every phase
//! returns for an early answer; [`super::serve`] renders it once, in the
//! route kind's format ([`RouteKind::error`]), and counts it as
//! [`crate::metrics::Outcome::Error`]. [`HostedError`] is what hosted
//! operations report; it converts into a [`ServeError`] with its own status
//! and sentence.

use crate::body::ResBody;
use crate::cache::Outcome;
use crate::cache::fill::{Abort, Failure};
use crate::plugins::wit;
use crate::plugins::wit::RouteKind;
use crate::store::{Digest, StoreError};
use http::{HeaderValue, Response, StatusCode};
use std::borrow::Cow;

/// An early answer of a serving phase: a status, a format-specific code
/// (sent in the OCI format only) and one sentence for the client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServeError {
    /// Status for the client.
    pub status: StatusCode,
    /// OCI error code (`NAME_UNKNOWN`, `UNSUPPORTED`, …); an adapter's own
    /// codes (a `reject`, a failed fill) are not known in advance, hence
    /// not only `&'static str`.
    pub code: Cow<'static, str>,
    /// One sentence for the client.
    pub message: String,
    /// The `X-Artifact-Source` the answer carries, when it has one (an
    /// upstream's answer, a cached negative entry).
    pub served_from: Option<Outcome>,
}

impl ServeError {
    /// An error with `status`, `code` and `message`.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ServeError {
            status,
            code: code.into(),
            message: message.into(),
            served_from: None,
        }
    }

    /// The same error, answered as `outcome` (its `X-Artifact-Source`).
    pub fn from_source(mut self, outcome: Outcome) -> Self {
        self.served_from = Some(outcome);
        self
    }

    /// A fill (or an upstream `HEAD`) that failed before its headers: its
    /// status and sentence, with the adapter's code when it gave one.
    pub fn fill_failed(f: &Failure) -> Self {
        let code = match &f.code {
            Some(c) => Cow::Owned(c.clone()),
            None if f.status == StatusCode::NOT_FOUND => Cow::Borrowed("NOT_FOUND"),
            None => Cow::Borrowed("UNAVAILABLE"),
        };
        ServeError::new(f.status, code, f.message.clone())
    }

    /// A fill that failed after its headers, before this client's first byte.
    pub fn aborted(why: &Abort) -> Self {
        ServeError::new(why.status, "UNAVAILABLE", why.message())
    }

    /// An adapter's `reject`: its status (if an error status) and code
    /// (`DENIED` when it gave none).
    pub fn rejected(r: wit::Rejection) -> Self {
        let code = r.code.unwrap_or_else(|| "DENIED".into());
        ServeError::new(crate::body::error_status(r.status), code, r.message)
    }

    /// The response for this error on a route of `kind`.
    pub fn render(self, kind: RouteKind) -> Response<ResBody> {
        let mut resp = kind.error(self.status, &self.code, self.message);
        if let Some(source) = self.served_from.and_then(Outcome::source) {
            resp.headers_mut()
                .insert("x-artifact-source", HeaderValue::from_static(source));
        }
        resp
    }
}

impl From<HostedError> for ServeError {
    fn from(e: HostedError) -> Self {
        ServeError::new(e.status(), "UNSUPPORTED", e.to_string())
    }
}

/// Why a hosted operation failed; every variant carries one sentence.
#[derive(Debug, thiserror::Error)]
pub enum HostedError {
    /// The remote is a pull-through cache.
    #[error(
        "remote {0:?} is a pull-through cache; uploads and deletes need a hosted remote (use PUT /cache/flush to drop cached entries)"
    )]
    NotHosted(String),
    /// Nothing stored under the key.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Overwrites are refused and the key exists.
    #[error("{0} already exists and this remote refuses overwrites")]
    Exists(String),
    /// The upload did not match its declared digest.
    #[error("the uploaded content has digest {actual}, but {expected} was declared")]
    Mismatch {
        /// Declared.
        expected: Digest,
        /// Received.
        actual: Digest,
    },
    /// The upload did not match its `Content-MD5`.
    #[error("the uploaded content does not match its Content-MD5 header")]
    Md5Mismatch,
    /// The upload was malformed (bad `Content-MD5`, multipart without a
    /// `file` field, ...).
    #[error("{0}")]
    BadUpload(String),
    /// The upload would exceed the remote's quota.
    #[error("the upload would exceed remote {remote:?}'s quota of {limit} bytes")]
    Quota {
        /// Remote.
        remote: String,
        /// Quota.
        limit: u64,
    },
    /// The client's body broke off.
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The client stopped sending the upload (`body_read_timeout`).
    #[error(transparent)]
    Stalled(crate::reqbody::BodyStalled),
    /// The upload is larger than the adapter's `inspect-limit`.
    #[error("the upload is larger than the {limit} bytes this path accepts")]
    TooLarge {
        /// The limit.
        limit: u32,
    },
    /// The adapter failed while inspecting the upload.
    #[error("the {adapter} adapter failed while checking the upload: {message}")]
    Adapter {
        /// Adapter name.
        adapter: String,
        /// What happened.
        message: String,
        /// Status for the client (502 for traps and timeouts).
        status: StatusCode,
    },
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl HostedError {
    /// Status code for the client.
    pub fn status(&self) -> StatusCode {
        match self {
            HostedError::NotHosted(_)
            | HostedError::Md5Mismatch
            | HostedError::BadUpload(_)
            | HostedError::Mismatch { .. }
            | HostedError::Interrupted(_) => StatusCode::BAD_REQUEST,
            HostedError::NotFound(_) => StatusCode::NOT_FOUND,
            HostedError::Exists(_) => StatusCode::CONFLICT,
            HostedError::Quota { .. } => StatusCode::INSUFFICIENT_STORAGE,
            HostedError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            HostedError::Stalled(s) => s.status(),
            HostedError::Adapter { status, .. } => *status,
            HostedError::Store(e) => e.status(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(resp: Response<ResBody>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn renders_per_route_kind() {
        let e = || {
            ServeError::new(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "unknown remote \"x\"",
            )
        };
        let oci = e().render(RouteKind::Registry);
        assert_eq!(oci.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            oci.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        let v = body_of(oci).await;
        assert_eq!(v["errors"][0]["code"], "NAME_UNKNOWN");
        assert_eq!(v["errors"][0]["message"], "unknown remote \"x\"");
        let json = e().render(RouteKind::RemoteApi);
        assert!(
            !json
                .headers()
                .contains_key("docker-distribution-api-version")
        );
        let v = body_of(json).await;
        assert_eq!(v["error"], "unknown remote \"x\"");
        assert_eq!(v["status"], 404);
    }

    #[tokio::test]
    async fn a_source_is_carried_and_codes_follow_the_failure() {
        let resp = ServeError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "gone")
            .from_source(Outcome::Miss)
            .render(RouteKind::RemoteApi);
        assert_eq!(resp.headers()["x-artifact-source"], "remote");
        let failure = |status, code: Option<&str>| Failure {
            status,
            message: "m".into(),
            code: code.map(str::to_owned),
        };
        let code = |f: Failure| ServeError::fill_failed(&f).code.into_owned();
        assert_eq!(code(failure(StatusCode::NOT_FOUND, None)), "NOT_FOUND");
        assert_eq!(code(failure(StatusCode::BAD_GATEWAY, None)), "UNAVAILABLE");
        assert_eq!(
            code(failure(StatusCode::NOT_FOUND, Some("MANIFEST_UNKNOWN"))),
            "MANIFEST_UNKNOWN"
        );
        let hosted: ServeError = HostedError::Exists("k".into()).into();
        assert_eq!(hosted.status, StatusCode::CONFLICT);
        assert_eq!(hosted.code, "UNSUPPORTED");
        assert_eq!(
            hosted.message,
            "k already exists and this remote refuses overwrites"
        );
    }
}
