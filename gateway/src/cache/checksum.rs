//! Digests other than the store's own sha256 that an adapter may expect a
//! body to have, because that is what its format publishes: sha512 (npm's
//! `dist.integrity`, Maven's `.sha512`) and sha1 (npm's `shasum`, Maven's
//! `.sha1`, often the only checksum a Maven repository has).
//!
//! The store still names blobs by sha256; a [`Checksum`] is an extra check
//! of the same bytes, computed while they stream in ([`Hasher`]) and held
//! to the same rule (invariant 4): a body that does not match is never
//! released whole and never stored.

use std::fmt;

/// A digest algorithm besides the store's sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-512 (64 bytes).
    Sha512,
    /// SHA-1 (20 bytes): weak against a chosen collision, still what many
    /// repositories publish; it checks what came over the wire, the store
    /// keeps naming the bytes by sha256.
    Sha1,
}

impl Algorithm {
    /// The name in `name:hex` (`sha512`, `sha1`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha512 => "sha512",
            Algorithm::Sha1 => "sha1",
        }
    }

    fn len(self) -> usize {
        match self {
            Algorithm::Sha512 => 64,
            Algorithm::Sha1 => 20,
        }
    }
}

/// An expected digest: algorithm and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The digest's bytes.
    pub value: Vec<u8>,
}

impl Checksum {
    /// Parse `sha512:<128 hex>` or `sha1:<40 hex>` (hex in either case);
    /// `None` when `s` names another algorithm (the caller tries sha256),
    /// an error when it names one of these with a malformed value.
    pub fn parse(s: &str) -> Option<Result<Checksum, String>> {
        let (name, hex_value) = s.split_once(':')?;
        let algorithm = match name {
            "sha512" => Algorithm::Sha512,
            "sha1" => Algorithm::Sha1,
            _ => return None,
        };
        Some(
            hex::decode(hex_value)
                .ok()
                .filter(|v| v.len() == algorithm.len())
                .map(|value| Checksum { algorithm, value })
                .ok_or_else(|| {
                    format!(
                        "expected {} hexadecimal digits after '{name}:'",
                        algorithm.len() * 2
                    )
                }),
        )
    }

    /// A hasher for this checksum's algorithm.
    pub fn hasher(&self) -> Hasher {
        Hasher::new(self.algorithm)
    }

    /// The checksum of `bytes` in `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Checksum {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), hex::encode(&self.value))
    }
}

/// A running digest of a body in one of the [`Algorithm`]s.
pub enum Hasher {
    /// SHA-512.
    Sha512(Box<sha2::Sha512>),
    /// SHA-1.
    Sha1(Box<sha1::Sha1>),
}

impl Hasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha512 => Hasher::Sha512(Box::default()),
            Algorithm::Sha1 => Hasher::Sha1(Box::default()),
        }
    }

    /// Feed the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Sha512(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
        }
    }

    /// The checksum of everything fed.
    pub fn finish(self) -> Checksum {
        use sha2::Digest as _;
        match self {
            Hasher::Sha512(h) => Checksum {
                algorithm: Algorithm::Sha512,
                value: h.finalize().to_vec(),
            },
            Hasher::Sha1(h) => Checksum {
                algorithm: Algorithm::Sha1,
                value: h.finalize().to_vec(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_knows_and_leaves_the_rest() {
        let sha1 = Checksum::parse("sha1:A9993E364706816ABA3E25717850C26C9CD0D89D")
            .unwrap()
            .unwrap();
        assert_eq!(sha1, Checksum::of(Algorithm::Sha1, b"abc"));
        assert_eq!(
            sha1.to_string(),
            "sha1:a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let sha512 = Checksum::of(Algorithm::Sha512, b"abc");
        assert_eq!(
            Checksum::parse(&sha512.to_string()).unwrap().unwrap(),
            sha512
        );
        assert!(sha512.to_string().starts_with("sha512:ddaf35a193617aba"));
        assert!(Checksum::parse("sha256:00").is_none());
        assert!(Checksum::parse("nothing").is_none());
        for bad in [
            "sha1:abc",
            "sha1:",
            "sha512:zz",
            "sha1:a9993e364706816aba3e25717850c26c9cd0d89d00",
        ] {
            let e = Checksum::parse(bad).unwrap().unwrap_err();
            assert!(e.contains("hexadecimal digits"), "{bad}: {e}");
        }
    }

    #[test]
    fn hashes_in_pieces_as_in_one() {
        for algorithm in [Algorithm::Sha512, Algorithm::Sha1] {
            let whole = Checksum::of(algorithm, b"hello, world");
            let mut h = whole.hasher();
            h.update(b"hello, ");
            h.update(b"world");
            assert_eq!(h.finish(), whole);
        }
    }
}
