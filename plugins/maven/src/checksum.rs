//! Maven checksum files: reading the digest out of one, and computing the
//! digests of documents the adapter serves itself.

use crate::layout::Algorithm;
use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha512};

/// The digest a checksum file holds, in lower-case hex: its first
/// whitespace-separated token (`sha1sum` output adds the file name), when
/// that is `alg`'s length of hex digits.
pub fn read(body: &[u8], alg: Algorithm) -> Option<String> {
    let text = std::str::from_utf8(body.get(..body.len().min(1024))?).ok()?;
    let token = text.split_whitespace().next()?;
    (token.len() == alg.hex_len() && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| token.to_ascii_lowercase())
}

/// `data`'s digest by `alg`, in lower-case hex.
pub fn of(alg: Algorithm, data: &[u8]) -> String {
    let bytes: Vec<u8> = match alg {
        Algorithm::Md5 => Md5::digest(data).to_vec(),
        Algorithm::Sha1 => Sha1::digest(data).to_vec(),
        Algorithm::Sha256 => Sha256::digest(data).to_vec(),
        Algorithm::Sha512 => Sha512::digest(data).to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files() {
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        assert_eq!(
            read(sha1.as_bytes(), Algorithm::Sha1).as_deref(),
            Some(sha1)
        );
        let sum = format!("{}  lib-1.0.jar\n", sha1.to_uppercase());
        assert_eq!(read(sum.as_bytes(), Algorithm::Sha1).as_deref(), Some(sha1));
        assert_eq!(read(sha1.as_bytes(), Algorithm::Md5), None);
        assert_eq!(read(b"<html>", Algorithm::Sha1), None);
        assert_eq!(read(b"", Algorithm::Sha1), None);
    }

    #[test]
    fn digests_of_known_inputs() {
        assert_eq!(
            of(Algorithm::Sha1, b""),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            of(Algorithm::Md5, b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            of(Algorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(of(Algorithm::Sha512, b"").len(), 128);
    }
}
