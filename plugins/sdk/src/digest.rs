//! Content digests in the `sha256:<64 lowercase hex>` form the WIT uses.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest, always formatted as `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The 64 lowercase hex digits.
    hex: String,
}

/// Why a string is not a valid digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestError {
    /// There is no `algorithm:` prefix.
    MissingAlgorithm,
    /// The algorithm is not `sha256`; carries the algorithm given.
    UnsupportedAlgorithm(String),
    /// The hex part does not have 64 characters; carries its length.
    WrongLength(usize),
    /// The hex part has a character that is not a lowercase hex digit
    /// (upper-case digits are refused in the `sha256:` form; use
    /// [`Digest::from_hex`] for lenient input).
    InvalidHex(char),
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestError::MissingAlgorithm => {
                f.write_str("digest has no algorithm prefix (expected sha256:<64 hex digits>)")
            }
            DigestError::UnsupportedAlgorithm(a) => {
                write!(
                    f,
                    "digest algorithm {a:?} is not supported (expected sha256)"
                )
            }
            DigestError::WrongLength(n) => {
                write!(f, "sha256 digest has {n} hex digits (expected 64)")
            }
            DigestError::InvalidHex(c) => {
                write!(f, "sha256 digest contains {c:?}, not a lowercase hex digit")
            }
        }
    }
}

impl std::error::Error for DigestError {}

impl Digest {
    /// Parses the canonical form `sha256:<64 lowercase hex>` strictly.
    ///
    /// ```
    /// use artgate_sdk::digest::{Digest, DigestError};
    /// let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
    /// assert_eq!(d.hex(), hex);
    /// assert_eq!(Digest::parse(hex), Err(DigestError::MissingAlgorithm));
    /// ```
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (algo, hex) = s.split_once(':').ok_or(DigestError::MissingAlgorithm)?;
        if algo != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(algo.to_owned()));
        }
        check_hex(hex, false)?;
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }

    /// Builds a digest from 64 hex digits without a prefix, as found in
    /// headers such as `x-checksum-sha256`. Upper-case digits are accepted
    /// and normalised to lower case; surrounding whitespace is ignored.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        let hex = hex.trim();
        check_hex(hex, true)?;
        Ok(Digest {
            hex: hex.to_ascii_lowercase(),
        })
    }

    /// Whether `s` is a valid canonical `sha256:<64 lowercase hex>` digest.
    pub fn is_valid(s: &str) -> bool {
        Digest::parse(s).is_ok()
    }

    /// Whether `s` is an `expected-digest` the gateway verifies: a
    /// canonical sha256 digest, or `sha512:`/`sha1:` and that many
    /// lower-case hex digits (as [`CachePlan::expected_checksum`] writes
    /// them).
    ///
    /// [`CachePlan::expected_checksum`]: crate::types::CachePlan::expected_checksum
    pub fn is_valid_expected(s: &str) -> bool {
        let (hex, len) = match s.split_once(':') {
            Some(("sha512", hex)) => (hex, 128),
            Some(("sha1", hex)) => (hex, 40),
            _ => return Digest::is_valid(s),
        };
        hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

/// Hex digits (either case) as bytes: `None` for an odd length or a
/// character that is not a hex digit. For the checksums formats publish
/// in hex (`shasum`, Maven's `.sha1`), passed on as
/// [`CachePlan::expected_checksum`](crate::types::CachePlan::expected_checksum).
///
/// ```
/// assert_eq!(artgate_sdk::digest::decode_hex("00fF"), Some(vec![0, 255]));
/// assert_eq!(artgate_sdk::digest::decode_hex("0"), None);
/// assert_eq!(artgate_sdk::digest::decode_hex("zz"), None);
/// ```
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn check_hex(hex: &str, allow_upper: bool) -> Result<(), DigestError> {
    if let Some(c) = hex.chars().find(|c| {
        !(c.is_ascii_digit() || matches!(c, 'a'..='f') || (allow_upper && matches!(c, 'A'..='F')))
    }) {
        return Err(DigestError::InvalidHex(c));
    }
    if hex.len() != 64 {
        return Err(DigestError::WrongLength(hex.len()));
    }
    Ok(())
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn round_trip() {
        let s = format!("sha256:{HEX}");
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(String::from(d.clone()), s);
        assert!(Digest::is_valid(&s));
        assert!(Digest::is_valid_expected(&s));
        assert!(Digest::is_valid_expected(&format!(
            "sha1:{}",
            "ab".repeat(20)
        )));
        assert!(Digest::is_valid_expected(&format!(
            "sha512:{}",
            "0".repeat(128)
        )));
        assert!(!Digest::is_valid_expected(&format!(
            "sha512:{}",
            "A".repeat(128)
        )));
        assert!(!Digest::is_valid_expected("sha1:00"));
        assert!(!Digest::is_valid_expected(&format!(
            "md5:{}",
            "0".repeat(32)
        )));
    }

    #[test]
    fn strict_errors() {
        assert_eq!(Digest::parse(HEX), Err(DigestError::MissingAlgorithm));
        assert_eq!(
            Digest::parse(&format!("sha512:{HEX}")),
            Err(DigestError::UnsupportedAlgorithm("sha512".into()))
        );
        assert_eq!(
            Digest::parse("sha256:abc"),
            Err(DigestError::WrongLength(3))
        );
        assert_eq!(Digest::parse("sha256:"), Err(DigestError::WrongLength(0)));
        assert_eq!(
            Digest::parse(&format!("sha256:{}", HEX.to_uppercase())),
            Err(DigestError::InvalidHex('E'))
        );
        assert_eq!(
            Digest::parse(&format!("sha256:{}g", &HEX[1..])),
            Err(DigestError::InvalidHex('g'))
        );
        assert_eq!(
            Digest::parse(&format!("SHA256:{HEX}")),
            Err(DigestError::UnsupportedAlgorithm("SHA256".into()))
        );
    }

    #[test]
    fn lenient_hex() {
        let d = Digest::from_hex(&format!(" {} ", HEX.to_uppercase())).unwrap();
        assert_eq!(d.hex(), HEX);
        assert_eq!(Digest::from_hex("xyz"), Err(DigestError::InvalidHex('x')));
        assert_eq!(Digest::from_hex("abcd"), Err(DigestError::WrongLength(4)));
    }

    #[test]
    fn errors_are_sentences() {
        let e = Digest::parse("sha256:abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sha256 digest has 3 hex digits (expected 64)"
        );
    }
}
