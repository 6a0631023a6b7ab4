//! Content digests: sha256, written `sha256:<64 lowercase hex digits>`.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// The algorithm prefix of every digest artgate stores.
const PREFIX: &str = "sha256:";

/// A sha256 content digest.
///
/// Displayed (and serialised) as `sha256:<64 lowercase hex digits>`, the form
/// OCI registries use; [`Digest::parse`] accepts exactly that form. The value
/// is 32 bytes inline, so it is cheap to copy, hash and compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a valid digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string has no `algorithm:` prefix.
    #[error("digest must look like sha256:<64 lowercase hex digits>, found no algorithm prefix")]
    MissingAlgorithm,
    /// The algorithm is not sha256 (the name is truncated to 32 characters).
    #[error("unsupported digest algorithm {0:?}: only sha256 is supported")]
    UnsupportedAlgorithm(String),
    /// The hex part does not have 64 characters.
    #[error("sha256 digest must have 64 hex digits, found {0}")]
    WrongLength(usize),
    /// The hex part has a character that is not a lowercase hex digit.
    #[error("sha256 digest must be lowercase hex, found {found:?} at position {position}")]
    InvalidHex {
        /// The offending character.
        found: char,
        /// Its position within the hex part (0-based, in characters).
        position: usize,
    },
}

impl Digest {
    /// The digest of the empty blob (sha256 of zero bytes).
    pub const EMPTY: Digest = Digest([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
        0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
        0xb8, 0x55,
    ]);

    /// A digest from its raw 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Finish a sha256 hasher into a digest.
    pub fn from_sha256(hasher: Sha256) -> Self {
        Digest(hasher.finalize().into())
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse `sha256:<64 lowercase hex digits>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((algorithm, hex_part)) = s.split_once(':') else {
            return Err(DigestError::MissingAlgorithm);
        };
        if algorithm != &PREFIX[..PREFIX.len() - 1] {
            return Err(DigestError::UnsupportedAlgorithm(
                algorithm.chars().take(32).collect(),
            ));
        }
        Self::from_hex(hex_part)
    }

    /// Parse the bare 64 lowercase hex digits (no prefix), as blob file
    /// names are written.
    pub fn from_hex(hex_part: &str) -> Result<Self, DigestError> {
        if let Some((position, found)) = hex_part
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(DigestError::InvalidHex { found, position });
        }
        // Only ASCII remains, so byte length == character count.
        if hex_part.len() != 64 {
            return Err(DigestError::WrongLength(hex_part.len()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes)
            .map_err(|_| DigestError::WrongLength(hex_part.len()))?;
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        let mut buf = [0u8; 64];
        // The buffer is exactly twice the input length, so this cannot fail.
        match hex::encode_to_slice(self.0, &mut buf) {
            Ok(()) => f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a digest string sha256:<64 lowercase hex digits>")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_STR: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_constant_matches_sha256() {
        assert_eq!(Digest::of(b""), Digest::EMPTY);
        assert_eq!(Digest::from_sha256(Sha256::new()), Digest::EMPTY);
        assert_eq!(Digest::EMPTY.to_string(), EMPTY_STR);
    }

    #[test]
    fn parse_and_format_round_trip() {
        let d: Digest = EMPTY_STR.parse().unwrap();
        assert_eq!(d, Digest::EMPTY);
        assert_eq!(d.hex(), &EMPTY_STR[7..]);
        assert_eq!(Digest::from_hex(&d.hex()).unwrap(), d);
        assert_eq!(format!("{d:?}"), format!("Digest({EMPTY_STR})"));
        let mut h = Sha256::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(Digest::from_sha256(h), Digest::of(b"hello world"));
    }

    #[test]
    fn rejections() {
        assert_eq!(Digest::parse(""), Err(DigestError::MissingAlgorithm));
        assert_eq!(
            Digest::parse(&EMPTY_STR[7..]),
            Err(DigestError::MissingAlgorithm)
        );
        assert_eq!(
            Digest::parse(&EMPTY_STR.replace("sha256", "sha512")),
            Err(DigestError::UnsupportedAlgorithm("sha512".into()))
        );
        assert_eq!(
            Digest::parse(&EMPTY_STR.replace("sha256", "SHA256")),
            Err(DigestError::UnsupportedAlgorithm("SHA256".into()))
        );
        assert_eq!(
            Digest::parse("sha256:abc"),
            Err(DigestError::WrongLength(3))
        );
        assert_eq!(
            Digest::parse(&format!("{EMPTY_STR}0")),
            Err(DigestError::WrongLength(65))
        );
        assert_eq!(
            Digest::parse(&EMPTY_STR.replace('e', "E")),
            Err(DigestError::InvalidHex {
                found: 'E',
                position: 0
            })
        );
        assert!(matches!(
            Digest::parse("sha256:zz"),
            Err(DigestError::InvalidHex { found: 'z', .. })
        ));
        assert!(matches!(
            Digest::parse(&format!("{EMPTY_STR} ")),
            Err(DigestError::InvalidHex { found: ' ', .. })
        ));
        // Messages say what was wrong.
        let msg = Digest::parse("md5:00").unwrap_err().to_string();
        assert!(
            msg.contains("unsupported digest algorithm \"md5\""),
            "{msg}"
        );
        let long = format!("{}:00", "x".repeat(100));
        match Digest::parse(&long) {
            Err(DigestError::UnsupportedAlgorithm(a)) => assert_eq!(a.len(), 32),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let json = serde_json::to_string(&Digest::EMPTY).unwrap();
        assert_eq!(json, format!("\"{EMPTY_STR}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Digest::EMPTY);
        let err = serde_json::from_str::<Digest>("\"sha256:00\"").unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in any::<[u8; 32]>()) {
            let d = Digest::from_bytes(bytes);
            let s = d.to_string();
            prop_assert_eq!(s.len(), 71);
            prop_assert_eq!(Digest::parse(&s), Ok(d));
            prop_assert_eq!(d.as_bytes(), &bytes);
        }

        #[test]
        fn random_strings_never_panic(s in ".{0,100}") {
            let _ = Digest::parse(&s);
            let _ = Digest::from_hex(&s);
        }

        #[test]
        fn hex_and_prefixed_forms_agree(s in "[0-9a-fA-F]{62,66}|[0-9a-f]{64}") {
            let bare = Digest::from_hex(&s);
            let prefixed = Digest::parse(&format!("sha256:{s}"));
            prop_assert_eq!(&bare, &prefixed);
            if let Ok(d) = bare {
                prop_assert_eq!(d.hex(), s);
                let json = serde_json::to_string(&d).unwrap();
                prop_assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
            }
        }

        #[test]
        fn oversize_input_is_an_error(n in 65usize..10_000, c in "[0-9a-f]") {
            let s = format!("sha256:{}", c.repeat(n));
            prop_assert_eq!(Digest::parse(&s), Err(DigestError::WrongLength(n)));
        }

        #[test]
        fn random_sha256_strings_never_panic(s in "sha256:[0-9a-fA-F\u{e9}]{60,68}") {
            if let Ok(d) = Digest::parse(&s) {
                prop_assert_eq!(d.to_string(), s);
            }
        }
    }
}
