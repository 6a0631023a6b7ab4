//! Just enough of the protobuf wire format to find the blobs a Bazel
//! `ActionResult` (REAPI v2, `build.bazel.remote.execution.v2`) references.
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
//! message Digest { string hash = 1; int64 size_bytes = 2; }
//! ```
//!
//! The parser is strict about the wire format (every field must be well
//! formed and end inside its message; groups, which REAPI never uses, are
//! refused) so that arbitrary bytes — ccache's own entries, for instance —
//! are recognised as "not an action result" rather than misread.

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
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated => f.write_str("the message is truncated"),
            ProtoError::VarintTooLong => f.write_str("a varint is longer than 10 bytes"),
            ProtoError::BadTag(t) => write!(f, "tag {t} is not a valid field tag"),
            ProtoError::WrongType { field } => write!(f, "field {field} has the wrong wire type"),
            ProtoError::BadHash => f.write_str("a digest's hash is not 64 hex digits"),
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
