//! Reading a packument without building it: each version's `dist` (its
//! tarball URL's place in the text, its checksum), and the text again
//! with those URLs replaced.
//!
//! A packument may be tens of MB. Parsing it into a tree would take
//! several times that in the adapter's memory; here the document is
//! walked with borrowed raw values, only `versions.*.dist` is decoded, and
//! the output is the input copied once with the tarball URLs spliced in.
//! Everything else stays byte for byte as the registry wrote it.
//!
//! The walk is strict where a lenient one could leak: a duplicate
//! `versions`, `dist` or `tarball` key, or a version that is not an
//! object, makes the whole packument malformed (a client's JSON parser
//! would take one of the duplicates, and the gateway must have rewritten
//! the one it takes).

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// The checksum a tarball must have, as the packument publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// `sha512` or `sha1`.
    pub algorithm: &'static str,
    /// The digest's bytes.
    pub digest: Vec<u8>,
}

impl Checksum {
    /// From `dist.integrity` (Subresource Integrity: space-separated
    /// `algo-base64`, sha512 preferred) or else `dist.shasum` (sha1 hex).
    pub fn from_dist(integrity: Option<&str>, shasum: Option<&str>) -> Option<Checksum> {
        let sri = |want: &'static str, len: usize| {
            integrity?.split_ascii_whitespace().find_map(|item| {
                let (algo, rest) = item.split_once('-')?;
                let b64 = rest.split('?').next()?;
                let digest = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                (algo.eq_ignore_ascii_case(want) && digest.len() == len).then_some(Checksum {
                    algorithm: want,
                    digest,
                })
            })
        };
        sri("sha512", 64).or_else(|| sri("sha1", 20)).or_else(|| {
            let hex = shasum?.trim();
            let digest = artgate_sdk::digest::decode_hex(hex)?;
            (digest.len() == 20).then_some(Checksum {
                algorithm: "sha1",
                digest,
            })
        })
    }

    /// As Subresource Integrity (`sha512-<base64>`), the short form kept in
    /// the key-value store.
    pub fn to_text(&self) -> String {
        format!(
            "{}-{}",
            self.algorithm,
            base64::engine::general_purpose::STANDARD.encode(&self.digest)
        )
    }

    /// The inverse of [`Checksum::to_text`].
    pub fn from_text(text: &str) -> Option<Checksum> {
        Checksum::from_dist(Some(text), None)
    }
}

/// One version's `dist` as found in the text.
#[derive(Debug)]
pub struct Dist {
    /// The version (the key in `versions`).
    pub version: String,
    /// The tarball URL, when `dist.tarball` is a string.
    pub tarball: Option<String>,
    /// Where `dist.tarball`'s value is in the text (byte range).
    pub span: Option<(usize, usize)>,
    /// The published checksum.
    pub checksum: Option<Checksum>,
}

/// Why a packument cannot be read.
#[derive(Debug)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow, default)]
    versions: Option<Versions<'a>>,
}

/// The `versions` object as its entries in order, duplicates kept.
struct Versions<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Versions<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Versions<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of versions")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Versions<'a>, M::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Versions(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Manifest<'a> {
    #[serde(borrow, default)]
    dist: Option<DistFields<'a>>,
}

#[derive(Deserialize)]
struct DistFields<'a> {
    #[serde(borrow, default)]
    tarball: Option<&'a RawValue>,
    #[serde(default)]
    integrity: Option<serde_json::Value>,
    #[serde(default)]
    shasum: Option<serde_json::Value>,
}

/// Every version's `dist` in `text`, in document order.
pub fn dists(text: &str) -> Result<Vec<Dist>, Malformed> {
    let doc: Doc = serde_json::from_str(text).map_err(|e| Malformed(e.to_string()))?;
    let base = text.as_ptr() as usize;
    let mut out = Vec::new();
    for (version, raw) in doc.versions.map(|v| v.0).unwrap_or_default() {
        // serde reads a struct from an array too; a version is an object.
        if !raw.get().starts_with('{') {
            return Err(Malformed(format!("version {version} is not an object")));
        }
        let m: Manifest = serde_json::from_str(raw.get())
            .map_err(|e| Malformed(format!("version {version}: {e}")))?;
        let Some(dist) = m.dist else {
            continue;
        };
        let (tarball, span) = match dist.tarball {
            Some(raw) => {
                let start = raw.get().as_ptr() as usize - base;
                let url = serde_json::from_str::<String>(raw.get()).ok();
                (url, Some((start, start + raw.get().len())))
            }
            None => (None, None),
        };
        let text_of =
            |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v.as_str().map(str::to_owned));
        let (integrity, shasum) = (text_of(&dist.integrity), text_of(&dist.shasum));
        out.push(Dist {
            version: version.into_owned(),
            tarball,
            span,
            checksum: Checksum::from_dist(integrity.as_deref(), shasum.as_deref()),
        });
    }
    Ok(out)
}

/// `text` with the value at each span replaced by the JSON string of its
/// replacement (spans in document order, not overlapping).
pub fn splice(text: &str, replacements: &[((usize, usize), String)]) -> Vec<u8> {
    let extra: usize = replacements.iter().map(|(_, s)| s.len() + 8).sum();
    let mut out = Vec::with_capacity(text.len() + extra);
    let mut at = 0;
    for ((start, end), new) in replacements {
        out.extend_from_slice(&text.as_bytes()[at..*start]);
        // Serialising a string cannot fail.
        out.extend_from_slice(serde_json::to_string(new).unwrap_or_default().as_bytes());
        at = *end;
    }
    out.extend_from_slice(&text.as_bytes()[at..]);
    out
}
