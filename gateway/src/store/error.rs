//! Storage errors, each with the HTTP status the request path answers with.

use super::Digest;
use std::fmt::Display;
use std::io;

/// An error of the metadata index or the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{op} {target}: {source}")]
    Io {
        /// What was being done (e.g. `"rename spool"`).
        op: &'static str,
        /// Which path (or blob) it was done to.
        target: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The disk (or the quota) is full: `ENOSPC` / `EDQUOT`.
    #[error("no space left on the storage device: {op} {target}: {source}")]
    NoSpace {
        /// What was being done.
        op: &'static str,
        /// Which path (or blob) it was done to.
        target: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The index database failed (the backend's own error; a full disk
    /// under the index is [`StoreError::NoSpace`]).
    #[error("index database error: {0}")]
    Index(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An index record could not be decoded.
    #[error("corrupt index record {id}: {reason}")]
    Corrupt {
        /// The record (`entry remote/key`, `blob sha256:…`, `kv plugin/key`).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Streamed content did not hash to the digest it was expected to have.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the content was supposed to have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// The shared tier's bucket failed or did not answer in time.
    #[error("the shared store is unavailable: {op} {target}: {message}")]
    Shared {
        /// What was being done (e.g. `"write record"`).
        op: &'static str,
        /// Which record or blob.
        target: String,
        /// What the bucket (or the connection to it) said.
        message: String,
    },
    /// A remote, plugin or key name the index cannot store (it contains a
    /// NUL byte, which separates the parts of index keys).
    #[error("invalid name {0:?}: names in the index must not contain NUL bytes")]
    InvalidName(String),
}

impl StoreError {
    /// An I/O error with context; `ENOSPC` and `EDQUOT` become
    /// [`StoreError::NoSpace`].
    pub fn io(op: &'static str, target: impl Display, source: io::Error) -> Self {
        let target = target.to_string();
        if is_no_space(&source) {
            StoreError::NoSpace { op, target, source }
        } else {
            StoreError::Io { op, target, source }
        }
    }

    /// The HTTP status the request path answers with: 507 when the disk is
    /// full, 502 when upstream content failed verification, 503 when the
    /// shared tier is unavailable, 500 otherwise.
    pub fn status(&self) -> http::StatusCode {
        match self {
            StoreError::NoSpace { .. } => http::StatusCode::INSUFFICIENT_STORAGE,
            StoreError::DigestMismatch { .. } => http::StatusCode::BAD_GATEWAY,
            StoreError::Shared { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Whether an I/O error means the disk or the quota is full.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_is_mapped_and_507() {
        let e = StoreError::io(
            "write spool",
            "/x/tmp/spool-1",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(matches!(e, StoreError::NoSpace { .. }), "{e:?}");
        assert_eq!(e.status().as_u16(), 507);
        assert!(e.to_string().contains("write spool /x/tmp/spool-1"), "{e}");
        let e = StoreError::io("write", "f", io::Error::from_raw_os_error(libc::EDQUOT));
        assert_eq!(e.status().as_u16(), 507);
    }

    #[test]
    fn statuses() {
        let e = StoreError::io("open", "f", io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, StoreError::Io { .. }));
        assert_eq!(e.status().as_u16(), 500);
        let e = StoreError::DigestMismatch {
            expected: Digest::EMPTY,
            actual: Digest::of(b"x"),
        };
        assert_eq!(e.status().as_u16(), 502);
        assert!(
            e.to_string()
                .starts_with("content digest mismatch: expected sha256:e3b0")
        );
        let e = StoreError::Corrupt {
            id: "entry a/b".into(),
            reason: "bad json".into(),
        };
        assert_eq!(e.status().as_u16(), 500);
    }
}
