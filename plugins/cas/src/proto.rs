//! Just enough of the protobuf wire format to find the blobs and trees a
//! few REAPI messages reference: a Bazel `ActionResult` and a `Directory`
//! (REAPI v2, `build.bazel.remote.execution.v2`), and BuildStream's
//! `Artifact` and `Source` (`buildstream.v2`, the values of its Remote
//! Asset references).
//!
//! ```text
//! message ActionResult {
//!   repeated OutputFile output_files = 2;           // path = 1, digest = 2
//!   repeated OutputDirectory output_directories = 3; // path = 1, tree_digest = 3
//!   int32 exit_code = 4;
//!   bytes stdout_raw = 5;
//!   Digest stdout_digest = 6;
//!   bytes stderr_raw = 7;
//!   Digest stderr_digest = 8;
//!   ...                                             // other fields are skipped
//! }
//! message Directory {
//!   repeated FileNode files = 1;        // name = 1, digest = 2, is_executable = 4, node_properties = 6
//!   repeated DirectoryNode directories = 2; // name = 1, digest = 2
//!   repeated SymlinkNode symlinks = 3;  // name = 1, target = 2, node_properties = 4
//!   NodeProperties node_properties = 5;
//! }
//! message Artifact {                    // buildstream/v2/artifact.proto
//!   Digest files = 8;                   // a Directory: required
//!   Digest public_data = 10;            // a blob: required
//!   repeated LogFile logs = 11;         // name = 1, digest = 2 (a blob): required
//!   Digest buildtree = 12;              // a Directory: optional
//!   Digest sources = 13;                // a Directory: optional
//!   Digest low_diversity_meta = 14;     // a blob: required
//!   Digest high_diversity_meta = 15;    // a blob: required
//!   Digest buildroot = 17;              // a Directory: optional
//!   SandboxState buildsandbox = 18;     // optional
//!   ...                                 // scalars 1-7 and 16, build_deps = 9
//! }
//! message Source { int32 version = 1; Digest files = 2; } // buildstream/v2/source.proto
//! message Digest { string hash = 1; int64 size_bytes = 2; }
//! ```
//!
//! The parser is strict about the wire format (every field must be well
//! formed and end inside its message; groups, which these messages never
//! use, are refused; the known fields must have their declared wire types
//! and their strings must be UTF-8) so that arbitrary bytes — ccache's own
//! entries, for instance — are recognised as "not this message" rather
//! than misread. Unknown fields are skipped, as protobuf requires.
//!
//! A singular message field that occurs more than once is merged by
//! protobuf; here every occurrence's digest is reported, which can only
//! ask for more than the merged message names, never less.

use std::collections::BTreeSet;
use std::fmt;

/// Why bytes are not a well-formed `ActionResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The message ends in the middle of a field.
    Truncated,
    /// A varint is longer than 10 bytes.
    VarintTooLong,
    /// Field number 0, or a wire type protobuf does not have (6, 7) or that
    /// REAPI never uses (groups: 3, 4).
    BadTag(u64),
    /// A known field has the wrong wire type.
    WrongType {
        /// Field number.
        field: u32,
    },
    /// A digest's hash is not 64 hex digits (not sha256).
    BadHash,
    /// A string field is not UTF-8.
    BadString {
        /// Field number.
        field: u32,
    },
    /// A node of a `Directory` has no digest.
    MissingDigest {
        /// The `Directory` field of the node (1 files, 2 directories).
        field: u32,
    },
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated => f.write_str("the message is truncated"),
            ProtoError::VarintTooLong => f.write_str("a varint is longer than 10 bytes"),
            ProtoError::BadTag(t) => write!(f, "tag {t} is not a valid field tag"),
            ProtoError::WrongType { field } => write!(f, "field {field} has the wrong wire type"),
            ProtoError::BadHash => f.write_str("a digest's hash is not 64 hex digits"),
            ProtoError::BadString { field } => write!(f, "string field {field} is not UTF-8"),
            ProtoError::MissingDigest { field } => {
                write!(f, "a node in field {field} has no digest")
            }
        }
    }
}

/// One field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire types 1 and 5 (skipped).
    Fixed,
    /// Wire type 2.
    Bytes(&'a [u8]),
}

/// Iterates over the fields of one message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(ProtoError::Truncated)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtoError::VarintTooLong)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ProtoError> {
        let n = usize::try_from(n).map_err(|_| ProtoError::Truncated)?;
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// The next `(field number, value)`, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, ProtoError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = u32::try_from(tag >> 3).map_err(|_| ProtoError::BadTag(tag))?;
        if field == 0 || field > 536_870_911 {
            return Err(ProtoError::BadTag(tag));
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(ProtoError::BadTag(tag)),
        };
        Ok(Some((field, value)))
    }
}

/// The embedded message of `field`, or an error when it is not one.
fn message(field: u32, v: Value<'_>) -> Result<&[u8], ProtoError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(ProtoError::WrongType { field }),
    }
}

/// Every field of `buf` well formed; calls `f` for each.
fn each<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u32, Value<'a>) -> Result<(), ProtoError>,
) -> Result<(), ProtoError> {
    let mut fields = Fields::new(buf);
    while let Some((n, v)) = fields.next_field()? {
        f(n, v)?;
    }
    Ok(())
}

/// A `Digest` message: its hash as 64 lowercase hex digits, or `None` for
/// an empty message (an unset digest).
fn digest(buf: &[u8]) -> Result<Option<String>, ProtoError> {
    let mut hash = None;
    each(buf, |n, v| {
        match (n, v) {
            (1, Value::Bytes(h)) => hash = Some(h),
            (1, _) => return Err(ProtoError::WrongType { field: 1 }),
            (2, Value::Varint(_)) => {}
            (2, _) => return Err(ProtoError::WrongType { field: 2 }),
            _ => {}
        }
        Ok(())
    })?;
    match hash {
        None | Some([]) => Ok(None),
        Some(h) if h.len() == 64 && h.iter().all(u8::is_ascii_hexdigit) => {
            Ok(Some(String::from_utf8_lossy(h).to_ascii_lowercase()))
        }
        Some(_) => Err(ProtoError::BadHash),
    }
}

/// The sha256 hashes (lowercase hex, in order of appearance, duplicates
/// removed) of the blobs an `ActionResult` references: output files,
/// output directory trees, stdout and stderr.
pub fn action_result_digests(buf: &[u8]) -> Result<Vec<String>, ProtoError> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |d: Option<String>| {
        if let Some(d) = d
            && !out.contains(&d)
        {
            out.push(d);
        }
    };
    each(buf, |n, v| {
        match n {
            // OutputFile { path = 1; digest = 2; ... }
            2 => each(message(n, v)?, |m, w| {
                if m == 2 {
                    push(digest(message(m, w)?)?);
                }
                Ok(())
            })?,
            // OutputDirectory { path = 1; tree_digest = 3; ... }
            3 => each(message(n, v)?, |m, w| {
                if m == 3 {
                    push(digest(message(m, w)?)?);
                }
                Ok(())
            })?,
            // stdout_digest, stderr_digest
            6 | 8 => push(digest(message(n, v)?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// A string field: length-delimited and UTF-8.
fn string(field: u32, v: Value<'_>) -> Result<(), ProtoError> {
    match v {
        Value::Bytes(b) if std::str::from_utf8(b).is_ok() => Ok(()),
        Value::Bytes(_) => Err(ProtoError::BadString { field }),
        _ => Err(ProtoError::WrongType { field }),
    }
}

/// A varint field (integers, booleans, enums).
fn scalar(field: u32, v: Value<'_>) -> Result<(), ProtoError> {
    match v {
        Value::Varint(_) => Ok(()),
        _ => Err(ProtoError::WrongType { field }),
    }
}

/// A message field whose contents are not needed: only its wire format
/// is checked.
fn opaque(field: u32, v: Value<'_>) -> Result<(), ProtoError> {
    each(message(field, v)?, |_, _| Ok(()))
}

/// A message field of string fields only (`NodeProperty`,
/// `EnvironmentVariable`: name = 1, value = 2).
fn strings(field: u32, v: Value<'_>) -> Result<(), ProtoError> {
    each(message(field, v)?, |m, w| match m {
        1 | 2 => string(m, w),
        _ => Ok(()),
    })
}

/// `NodeProperties { repeated NodeProperty properties = 1; Timestamp mtime
/// = 2; UInt32Value unix_mode = 3; }`, checked.
fn node_properties(field: u32, v: Value<'_>) -> Result<(), ProtoError> {
    each(message(field, v)?, |m, w| match m {
        1 => strings(m, w),
        2 | 3 => opaque(m, w),
        _ => Ok(()),
    })
}

/// The digests a message references, by what they name: sha256 hashes as
/// 64 lower-case hex digits, in order of appearance, each once, unset
/// digests left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Blobs (files, logs, metadata).
    pub blobs: Vec<String>,
    /// Directories: the digests of `Directory` messages whose whole tree
    /// is meant.
    pub trees: Vec<String>,
}

/// Builds [`References`] without duplicates (in O(n log n): a `Directory`
/// may list many files).
#[derive(Default)]
struct Collect {
    refs: References,
    seen_blobs: BTreeSet<String>,
    seen_trees: BTreeSet<String>,
}

impl Collect {
    fn blob(&mut self, hash: Option<String>) {
        if let Some(h) = hash
            && self.seen_blobs.insert(h.clone())
        {
            self.refs.blobs.push(h);
        }
    }

    fn tree(&mut self, hash: Option<String>) {
        if let Some(h) = hash
            && self.seen_trees.insert(h.clone())
        {
            self.refs.trees.push(h);
        }
    }
}

/// A `FileNode` (`field` 1: name = 1, digest = 2, is_executable = 4,
/// node_properties = 6) or `DirectoryNode` (`field` 2: name = 1, digest =
/// 2) of a `Directory`: the hashes of its digest (one, unless the field
/// is repeated). A node without a digest is malformed.
fn node(field: u32, v: Value<'_>) -> Result<Vec<String>, ProtoError> {
    let mut hashes = Vec::new();
    each(message(field, v)?, |m, w| {
        match m {
            1 => string(m, w)?,
            2 => hashes.extend(digest(message(m, w)?)?),
            4 if field == 1 => scalar(m, w)?,
            6 if field == 1 => node_properties(m, w)?,
            _ => {}
        }
        Ok(())
    })?;
    if hashes.is_empty() {
        return Err(ProtoError::MissingDigest { field });
    }
    Ok(hashes)
}

/// What a REAPI `Directory` references: the blob of every file
/// ([`References::blobs`]) and the `Directory` of every child directory
/// ([`References::trees`]). Symlinks and node properties are checked
/// for well-formedness and reference nothing.
pub fn directory(buf: &[u8]) -> Result<References, ProtoError> {
    let mut c = Collect::default();
    each(buf, |n, v| {
        match n {
            1 => node(n, v)?.into_iter().for_each(|h| c.blob(Some(h))),
            2 => node(n, v)?.into_iter().for_each(|h| c.tree(Some(h))),
            // SymlinkNode { name = 1; target = 2; node_properties = 4; }
            3 => each(message(n, v)?, |m, w| match m {
                1 | 2 => string(m, w),
                4 => node_properties(m, w),
                _ => Ok(()),
            })?,
            5 => node_properties(n, v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(c.refs)
}

/// What a BuildStream `buildstream.v2.Artifact` needs for a client to
/// count it as pulled: the `files` tree ([`References::trees`]), and
/// `public_data`, every log's digest and the low and high diversity
/// metadata ([`References::blobs`]). `buildtree`, `sources`, `buildroot`
/// and `buildsandbox` are optional (BuildStream fetches them only when
/// asked to and lists them as references even when it never uploaded
/// them): they are checked for well-formedness but not returned.
pub fn artifact(buf: &[u8]) -> Result<References, ProtoError> {
    let mut c = Collect::default();
    each(buf, |n, v| {
        match n {
            // version, build_success, was_workspaced
            1 | 2 | 7 => scalar(n, v)?,
            // build_error, build_error_details, strong_key, weak_key, strict_key
            3..=6 | 16 => string(n, v)?,
            8 => c.tree(digest(message(n, v)?)?),
            // Dependency { project_name = 1; element_name = 2; cache_key = 3; was_workspaced = 4; }
            9 => each(message(n, v)?, |m, w| match m {
                1..=3 => string(m, w),
                4 => scalar(m, w),
                _ => Ok(()),
            })?,
            10 | 14 | 15 => c.blob(digest(message(n, v)?)?),
            // LogFile { name = 1; digest = 2; }
            11 => each(message(n, v)?, |m, w| {
                match m {
                    1 => string(m, w)?,
                    2 => c.blob(digest(message(m, w)?)?),
                    _ => {}
                }
                Ok(())
            })?,
            12 | 13 | 17 => {
                digest(message(n, v)?)?;
            }
            // SandboxState { environment = 1; working_directory = 2;
            // subsandbox_digests = 3; marked_directories = 4; }
            18 => each(message(n, v)?, |m, w| {
                match m {
                    1 => strings(m, w)?,
                    2 | 4 => string(m, w)?,
                    3 => {
                        digest(message(m, w)?)?;
                    }
                    _ => {}
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(c.refs)
}

/// What a BuildStream `buildstream.v2.Source` (an element's staged
/// sources) references: its `files` tree ([`References::trees`]).
pub fn source(buf: &[u8]) -> Result<References, ProtoError> {
    let mut c = Collect::default();
    each(buf, |n, v| {
        match n {
            1 => scalar(n, v)?,
            2 => c.tree(digest(message(n, v)?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(c.refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(n) << 3 | 2, &mut out);
        varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    fn digest_msg(hash: &str, size: u64) -> Vec<u8> {
        let mut d = field(1, hash.as_bytes());
        varint(2 << 3, &mut d);
        varint(size, &mut d);
        d
    }

    #[test]
    fn finds_every_referenced_blob() {
        let (a, b, c, d) = (
            "a".repeat(64),
            "B".repeat(64),
            "c".repeat(64),
            "d".repeat(64),
        );
        let mut file = field(1, b"out/a.o");
        file.extend(field(2, &digest_msg(&a, 10)));
        let mut dir = field(1, b"out/dir");
        dir.extend(field(3, &digest_msg(&b, 20)));
        let mut ar = field(2, &file);
        ar.extend(field(3, &dir));
        ar.extend([4 << 3, 1]); // exit_code = 1
        ar.extend(field(5, b"inline stdout"));
        ar.extend(field(6, &digest_msg(&c, 3)));
        ar.extend(field(8, &digest_msg(&d, 4)));
        ar.extend(field(2, &file)); // a duplicate
        assert_eq!(
            action_result_digests(&ar).unwrap(),
            vec![a, "b".repeat(64), c, d]
        );
    }

    #[test]
    fn empty_and_unset_are_fine() {
        assert_eq!(action_result_digests(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            action_result_digests(&field(6, &[])).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn ccache_entries_and_garbage_are_not_action_results() {
        // The start of a ccache 4.7 entry: magic 0xccac, version, type, ...
        let ccache = [0xcc, 0xac, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00];
        assert!(action_result_digests(&ccache).is_err());
        assert_eq!(action_result_digests(&[0x12]), Err(ProtoError::Truncated));
        assert_eq!(
            action_result_digests(&[0x12, 0x05, 0x00]),
            Err(ProtoError::Truncated)
        );
        assert!(matches!(
            action_result_digests(&[0x0b]),
            Err(ProtoError::BadTag(_))
        ));
        assert_eq!(
            action_result_digests(&[0xff; 11]),
            Err(ProtoError::VarintTooLong)
        );
        assert_eq!(
            action_result_digests(&[6 << 3, 1]),
            Err(ProtoError::WrongType { field: 6 })
        );
        assert_eq!(
            action_result_digests(&field(6, &field(1, b"not-a-sha256"))),
            Err(ProtoError::BadHash)
        );
    }
}
