//! REAPI digests as the gRPC front checks them: SHA-256 in lower-case hex
//! and a size; the store key and digest of the blob they name.

use super::error::GrpcError;
use super::proto::reapi;
use crate::store::Digest;

/// A REAPI digest, checked: a sha256 (parsed once) and a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobId {
    /// The sha256.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

impl BlobId {
    /// A digest from a message; `what` names it in the error.
    pub fn parse(d: Option<&reapi::Digest>, what: &str) -> Result<BlobId, GrpcError> {
        let d = d.ok_or_else(|| GrpcError::InvalidArgument(format!("the {what} is missing")))?;
        BlobId::new(&d.hash, d.size_bytes, what)
    }

    /// A digest from its hash (hex, either case) and size; `what` names it
    /// in the error.
    pub fn new(hash: &str, size: i64, what: &str) -> Result<BlobId, GrpcError> {
        let parsed = if hash.bytes().any(|b| b.is_ascii_uppercase()) {
            Digest::from_hex(&hash.to_ascii_lowercase())
        } else {
            Digest::from_hex(hash)
        };
        let digest = parsed.map_err(|_| {
            GrpcError::InvalidArgument(format!(
                "the {what} hash {:?} is not a sha256 (64 hex digits); this gateway supports SHA256 digests only",
                hash.chars().take(80).collect::<String>()
            ))
        })?;
        let size = u64::try_from(size).map_err(|_| {
            GrpcError::InvalidArgument(format!("the {what} has a negative size ({size})"))
        })?;
        Ok(BlobId { digest, size })
    }

    /// The hash in lower-case hex.
    pub fn hash(&self) -> String {
        self.digest.hex()
    }

    /// The store key of the blob.
    pub fn key(&self) -> String {
        format!("cas/{}", self.digest.hex())
    }

    /// Whether this is the empty blob, which always exists.
    pub fn is_empty_blob(&self) -> bool {
        self.size == 0 && self.digest == Digest::EMPTY
    }

    /// As a message.
    pub fn to_proto(&self) -> reapi::Digest {
        reapi::Digest {
            hash: self.hash(),
            size_bytes: i64::try_from(self.size).unwrap_or(i64::MAX),
        }
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.digest.hex(), self.size)
    }
}
