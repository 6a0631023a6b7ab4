//! Registry API paths: which object a request names, and the OCI grammar
//! for repository names, tags and digests.

use artgate_sdk::digest::{Digest, DigestError};
use artgate_sdk::path;

/// Longest repository name (distribution's limit for the full name).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag (OCI distribution spec).
pub const MAX_TAG_LEN: usize = 128;

/// What a manifest request names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A tag: mutable, resolved by the upstream.
    Tag(String),
    /// A digest: immutable, verified.
    Digest(Digest),
}

/// The registry object a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `{name}/manifests/{reference}`.
    Manifest {
        /// Repository name as the client wrote it.
        name: String,
        /// Tag or digest.
        reference: Reference,
    },
    /// `{name}/blobs/{digest}`.
    Blob {
        /// Repository name as the client wrote it.
        name: String,
        /// The blob's digest.
        digest: Digest,
    },
    /// `{name}/tags/list`.
    Tags {
        /// Repository name as the client wrote it.
        name: String,
    },
}

impl Target {
    /// The repository name as the client wrote it.
    pub fn name(&self) -> &str {
        match self {
            Target::Manifest { name, .. } | Target::Blob { name, .. } | Target::Tags { name } => {
                name
            }
        }
    }
}

/// Why a path is not a request this adapter serves: an HTTP status, an OCI
/// error code and a one-sentence message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    /// HTTP status.
    pub status: u16,
    /// OCI error code (`NAME_INVALID`, `DIGEST_INVALID`, ...).
    pub code: &'static str,
    /// One sentence saying what was wrong.
    pub message: String,
}

impl RouteError {
    fn new(status: u16, code: &'static str, message: String) -> RouteError {
        RouteError {
            status,
            code,
            message,
        }
    }
}

/// Parses a remote-relative registry path (`library/alpine/manifests/3.20`,
/// `library/alpine/blobs/sha256:…`, `library/alpine/tags/list`) and checks
/// the name, tag and digest against the OCI grammar.
pub fn parse(p: &str) -> Result<Target, RouteError> {
    let target = if let Some(c) = path::match_segments(p, "**/tags/list") {
        Target::Tags {
            name: c[0].to_owned(),
        }
    } else if let Some(c) = path::match_segments(p, "**/manifests/*") {
        Target::Manifest {
            name: c[0].to_owned(),
            reference: parse_reference(c[1])?,
        }
    } else if let Some(c) = path::match_segments(p, "**/blobs/*") {
        Target::Blob {
            name: c[0].to_owned(),
            digest: parse_digest(c[1])?,
        }
    } else {
        return Err(RouteError::new(
            400,
            "UNSUPPORTED",
            format!(
                "Path '{p}' is not a registry pull request; this proxy serves {{name}}/manifests/{{reference}}, {{name}}/blobs/{{digest}} and {{name}}/tags/list."
            ),
        ));
    };
    check_name(target.name())?;
    Ok(target)
}

/// Checks a repository name against the OCI distribution grammar:
/// `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or one
/// or more `-`, at most [`MAX_NAME_LEN`] characters in all.
pub fn check_name(name: &str) -> Result<(), RouteError> {
    if name.len() > MAX_NAME_LEN {
        return Err(RouteError::new(
            400,
            "NAME_INVALID",
            format!(
                "Repository name is {} characters long; at most {MAX_NAME_LEN} are allowed.",
                name.len()
            ),
        ));
    }
    if !name.split('/').all(valid_component) {
        return Err(RouteError::new(
            400,
            "NAME_INVALID",
            format!(
                "Repository name '{name}' is invalid: components are lower-case letters and digits, separated by '.', '_', '__' or dashes."
            ),
        ));
    }
    Ok(())
}

/// Whether one path component of a repository name matches
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or `-+`, followed by alnum.
        let start = i;
        let first = b[i];
        while i < b.len() && b[i] == first {
            i += 1;
        }
        let run = i - start;
        let ok = match first {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

/// A manifest reference: a digest when it contains `:`, else a tag.
pub fn parse_reference(r: &str) -> Result<Reference, RouteError> {
    if r.contains(':') {
        return parse_digest(r).map(Reference::Digest);
    }
    if !valid_tag(r) {
        return Err(RouteError::new(
            400,
            "TAG_INVALID",
            format!(
                "Tag '{r}' is invalid: tags are 1 to {MAX_TAG_LEN} letters, digits, '_', '.' or '-' and start with a letter, digit or '_'."
            ),
        ));
    }
    Ok(Reference::Tag(r.to_owned()))
}

/// A `sha256:<64 lowercase hex>` digest; anything else is `DIGEST_INVALID`.
pub fn parse_digest(d: &str) -> Result<Digest, RouteError> {
    Digest::parse(d).map_err(|e| {
        let message = match e {
            DigestError::UnsupportedAlgorithm(a) => format!(
                "Digest algorithm '{a}' is not supported; this registry proxy only supports sha256 digests."
            ),
            other => format!("Digest '{d}' is invalid: {other}."),
        };
        RouteError::new(400, "DIGEST_INVALID", message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn paths() {
        assert_eq!(
            parse("library/alpine/manifests/3.20"),
            Ok(Target::Manifest {
                name: "library/alpine".into(),
                reference: Reference::Tag("3.20".into())
            })
        );
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            parse(&format!("a/b/c/manifests/sha256:{HEX}")),
            Ok(Target::Manifest {
                name: "a/b/c".into(),
                reference: Reference::Digest(d.clone())
            })
        );
        assert_eq!(
            parse(&format!("alpine/blobs/sha256:{HEX}")),
            Ok(Target::Blob {
                name: "alpine".into(),
                digest: d
            })
        );
        assert_eq!(parse("x/tags/list"), Ok(Target::Tags { name: "x".into() }));
        // Names may contain the API's words as components.
        assert_eq!(
            parse("manifests/tags/list"),
            Ok(Target::Tags {
                name: "manifests".into()
            })
        );
        assert_eq!(
            parse("tags/manifests/list"),
            Ok(Target::Manifest {
                name: "tags".into(),
                reference: Reference::Tag("list".into())
            })
        );
        for bad in [
            "",
            "alpine",
            "manifests/latest",
            "alpine/blobs/uploads/abc",
            "alpine/tags",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, "UNSUPPORTED", "{bad}");
        }
    }

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/alpine",
            "a.b_c__d-e---f/g0",
            "0/1/2",
            &"a".repeat(255),
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "A",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a/",
            "/a",
            "a//b",
            "a_.b",
            "a b",
            "ü",
            &"a".repeat(256),
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!((e.status, e.code), (400, "NAME_INVALID"), "{bad}");
        }
        assert_eq!(
            parse("Library/x/manifests/1").unwrap_err().code,
            "NAME_INVALID"
        );
    }

    #[test]
    fn tags() {
        for ok in ["latest", "3.20", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a+b", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        assert_eq!(parse("a/manifests/-x").unwrap_err().code, "TAG_INVALID");
    }

    #[test]
    fn digests() {
        let e = parse(&format!("a/blobs/sha512:{HEX}")).unwrap_err();
        assert_eq!((e.status, e.code), (400, "DIGEST_INVALID"));
        assert!(e.message.contains("only supports sha256"), "{}", e.message);
        for bad in [
            "sha256:abc",
            "abc",
            "sha256:",
            &format!("sha256:{}", HEX.to_uppercase()),
        ] {
            let e = parse(&format!("a/blobs/{bad}")).unwrap_err();
            assert_eq!(e.code, "DIGEST_INVALID", "{bad}");
        }
        assert_eq!(
            parse("a/manifests/sha256:zz").unwrap_err().code,
            "DIGEST_INVALID"
        );
    }
}
