//! A parser for Debian `Release` and `InRelease` files: the hash lists
//! (`MD5Sum:`, `SHA1:`, `SHA256:`, `SHA512:`) and `Acquire-By-Hash`.
//!
//! A Release file is one deb822 paragraph: `Field: value` lines, each
//! continued by lines that start with a space or a tab. A hash field's
//! continuation lines are ` <hex> <size> <path>`, the path relative to the
//! directory that holds the Release file. An `InRelease` is the same text
//! inside an OpenPGP cleartext signature (`-----BEGIN PGP SIGNED
//! MESSAGE-----`, armor headers, a blank line, the dash-escaped text, then
//! `-----BEGIN PGP SIGNATURE-----`); the signature itself is apt's to check
//! and is not read here.
//!
//! The parser is strict where a wrong answer would be stored (a page that
//! is not a Release file, a hash of the wrong length, a size that is not a
//! number) and lenient where apt is (unknown fields, field-name case,
//! `\r\n` line ends, text after the paragraph). It never panics: every
//! problem is a [`ReleaseError`].

use std::collections::BTreeMap;
use std::fmt;

/// A hash algorithm of a Release file's hash lists (and of a `by-hash/`
/// directory name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algo {
    /// `MD5Sum` (the core cannot verify it).
    Md5,
    /// `SHA1`.
    Sha1,
    /// `SHA256`.
    Sha256,
    /// `SHA512`.
    Sha512,
}

impl Algo {
    /// Every algorithm, strongest first (apt's order of preference, so the
    /// first one a file has is the one apt asks `by-hash/` for).
    pub const STRONGEST_FIRST: [Algo; 4] = [Algo::Sha512, Algo::Sha256, Algo::Sha1, Algo::Md5];

    /// The field name in a Release file, which is also the `by-hash/`
    /// directory name (`SHA256`, `MD5Sum`).
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "MD5Sum",
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
            Algo::Sha512 => "SHA512",
        }
    }

    /// The algorithm a field name (any case) or `by-hash/` directory names.
    pub fn from_name(name: &str) -> Option<Algo> {
        Algo::STRONGEST_FIRST
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Hex digits of a digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algo::Md5 => 32,
            Algo::Sha1 => 40,
            Algo::Sha256 => 64,
            Algo::Sha512 => 128,
        }
    }

    /// The algorithm's name in the core's expected digests (`sha256:…`),
    /// for those the core verifies; `None` for MD5.
    pub fn core_name(self) -> Option<&'static str> {
        match self {
            Algo::Md5 => None,
            Algo::Sha1 => Some("sha1"),
            Algo::Sha256 => Some("sha256"),
            Algo::Sha512 => Some("sha512"),
        }
    }

    /// Whether `hex` is a digest of this algorithm: the right number of hex
    /// digits (either case).
    pub fn is_digest(self, hex: &str) -> bool {
        hex.len() == self.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// What a Release file says about one file it lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    /// Size in bytes (from the first hash list that names the file).
    pub size: u64,
    /// Lower-case hex digest per algorithm.
    pub hashes: BTreeMap<Algo, String>,
}

impl Listed {
    /// The strongest digest the core can verify (SHA512, then SHA256, then
    /// SHA1): the one apt asks `by-hash/` for, and the one the adapter
    /// names the file's cache entry by. `None` when only MD5 is listed.
    pub fn best(&self) -> Option<(Algo, &str)> {
        Algo::STRONGEST_FIRST
            .into_iter()
            .filter(|a| a.core_name().is_some())
            .find_map(|a| self.hashes.get(&a).map(|h| (a, h.as_str())))
    }
}

/// A parsed Release file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Release {
    /// `Acquire-By-Hash: yes`: the archive keeps each index file under
    /// `…/by-hash/<algorithm>/<hex>` too, and apt asks for it there.
    pub acquire_by_hash: bool,
    /// The listed files by path (relative to the Release's directory).
    pub files: BTreeMap<String, Listed>,
    /// Entries left out because their path is not a plain relative path
    /// (absolute, `..`, empty segments, control characters).
    pub skipped: usize,
}

/// Why a body is not a Release file. Each message is one sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseError {
    /// The body is empty or blank.
    Empty,
    /// A cleartext-signed message without its signature block.
    UnterminatedSignature,
    /// An OpenPGP armor that is not a cleartext-signed message (a detached
    /// signature, a key).
    OtherArmor,
    /// A line (1-based) is neither a field nor a continuation.
    NotAField(usize),
    /// The first line of the paragraph is a continuation line.
    ContinuationFirst(usize),
    /// A hash list entry (1-based line) is not `<hex> <size> <path>`.
    BadEntry {
        /// The hash field it belongs to.
        field: &'static str,
        /// Its line.
        line: usize,
    },
    /// Fields, but none a Release file has (`Suite`, `Codename`, `Date`,
    /// a hash list, …).
    NoReleaseFields,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Empty => f.write_str("the body is empty"),
            ReleaseError::UnterminatedSignature => {
                f.write_str("the signed message has no signature block")
            }
            ReleaseError::OtherArmor => {
                f.write_str("the body is OpenPGP data but not a signed message")
            }
            ReleaseError::NotAField(n) => write!(f, "line {n} is not a field"),
            ReleaseError::ContinuationFirst(n) => {
                write!(f, "line {n} continues a field that was never started")
            }
            ReleaseError::BadEntry { field, line } => write!(
                f,
                "line {line} of the {field} list is not a hash, a size and a path"
            ),
            ReleaseError::NoReleaseFields => {
                f.write_str("it has none of the fields of a Release file")
            }
        }
    }
}

impl std::error::Error for ReleaseError {}

/// Fields that only a Release file (of the deb822 documents an archive
/// serves) has; at least one must be present.
const RELEASE_FIELDS: [&str; 11] = [
    "Suite",
    "Codename",
    "Date",
    "Valid-Until",
    "Architectures",
    "Components",
    "Acquire-By-Hash",
    "MD5Sum",
    "SHA1",
    "SHA256",
    "SHA512",
];

const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";

/// Parses a `Release` or `InRelease` body.
pub fn parse(body: &[u8]) -> Result<Release, ReleaseError> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .skip_while(|(_, l)| l.trim().is_empty())
        .peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err(ReleaseError::Empty);
    };
    if first.trim_end() == BEGIN_SIGNED {
        // Armor headers (`Hash: SHA512`) up to the first blank line, then
        // the dash-escaped text up to the signature.
        lines.next();
        for (_, l) in lines.by_ref() {
            if l.trim().is_empty() {
                break;
            }
        }
        let mut signed = Vec::new();
        let mut terminated = false;
        for (n, l) in lines {
            if l.trim_end() == BEGIN_SIGNATURE {
                terminated = true;
                break;
            }
            signed.push((n, l.strip_prefix("- ").unwrap_or(l)));
        }
        if !terminated {
            return Err(ReleaseError::UnterminatedSignature);
        }
        return paragraph(signed);
    }
    if first.starts_with("-----BEGIN PGP") {
        return Err(ReleaseError::OtherArmor);
    }
    paragraph(lines.collect())
}

/// What the field being read is.
enum Current {
    /// Nothing yet.
    None,
    /// A hash list.
    Hashes(Algo),
    /// Any other field (its continuation lines are skipped).
    Other,
}

/// Parses the first paragraph of `lines` (numbered lines).
fn paragraph(lines: Vec<(usize, &str)>) -> Result<Release, ReleaseError> {
    let mut out = Release::default();
    let mut current = Current::None;
    let mut release_fields = 0usize;
    let mut started = false;
    for (n, line) in lines {
        if line.trim().is_empty() {
            if started {
                // apt reads the first paragraph only.
                break;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match current {
                Current::None => return Err(ReleaseError::ContinuationFirst(n)),
                Current::Other => {}
                Current::Hashes(algo) => entry(&mut out, algo, line, n)?,
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReleaseError::NotAField(n));
        };
        if !is_field_name(name) {
            return Err(ReleaseError::NotAField(n));
        }
        started = true;
        // A hash list has its entries on continuation lines; a digest on
        // the field's own line (`SHA256: <hex>`) is a Packages or Sources
        // stanza's field, not a Release file's.
        let list = Algo::from_name(name).filter(|_| value.trim().is_empty());
        let release_field = match Algo::from_name(name) {
            Some(_) => list.is_some(),
            None => RELEASE_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)),
        };
        if release_field {
            release_fields += 1;
        }
        current = match list {
            Some(algo) => Current::Hashes(algo),
            None => Current::Other,
        };
        if name.eq_ignore_ascii_case("Acquire-By-Hash") {
            out.acquire_by_hash = value.trim().eq_ignore_ascii_case("yes");
        }
    }
    if !started {
        return Err(ReleaseError::Empty);
    }
    if release_fields == 0 {
        return Err(ReleaseError::NoReleaseFields);
    }
    Ok(out)
}

/// Whether `name` is a deb822 field name: printable ASCII without spaces
/// or `:`, not starting with `#` or `-`.
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Adds one ` <hex> <size> <path>` line of the `algo` list.
fn entry(out: &mut Release, algo: Algo, line: &str, n: usize) -> Result<(), ReleaseError> {
    let bad = || ReleaseError::BadEntry {
        field: algo.name(),
        line: n,
    };
    let mut parts = line.split_ascii_whitespace();
    let (Some(hex), Some(size), Some(path), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !algo.is_digest(hex) {
        return Err(bad());
    }
    let size: u64 = size.parse().map_err(|_| bad())?;
    if !is_plain_relative(path) {
        out.skipped += 1;
        return Ok(());
    }
    let listed = out.files.entry(path.to_owned()).or_insert_with(|| Listed {
        size,
        hashes: BTreeMap::new(),
    });
    listed
        .hashes
        .entry(algo)
        .or_insert_with(|| hex.to_ascii_lowercase());
    Ok(())
}

/// Whether `path` is a relative file path that stays below its directory
/// and that the gateway would take as a request path: not absolute, no
/// empty segments, none made of dots only (`.`, `..`, `...`, also before a
/// `;`), no backslash, `?`, `#`, `%` or control characters.
pub fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path
            .chars()
            .any(|c| c.is_control() || matches!(c, '\\' | '?' | '#' | '%'))
        && path.split('/').all(|s| {
            let base = s.split(';').next().unwrap_or(s);
            !s.is_empty() && !base.bytes().all(|b| b == b'.')
        })
}
