//! Where a chunked request body ends (RFC 9112 §7.1), so that the bytes
//! after it are read as the next request head. The bytes themselves are
//! left to hyper, which decodes them; this only follows the framing.

/// Position in a chunked body. The states and what each accepts follow
/// hyper's decoder byte for byte (CRLF line ends only, no bare LF), so
/// that both always agree on where a body ends, or both fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Expecting the first hex digit of a chunk size.
    Start,
    /// Reading a chunk size (its value so far).
    Size(u64),
    /// Blanks after a chunk size.
    Lws(u64),
    /// Skipping a chunk extension up to the end of the line.
    Ext(u64),
    /// After the `\r` of a size line.
    SizeLf(u64),
    /// Inside chunk data: bytes left.
    Data(u64),
    /// After chunk data, expecting `\r`.
    DataCr,
    /// After the `\r` that follows chunk data.
    DataLf,
    /// After the last chunk or a trailer line: `\r` or a trailer.
    EndCr,
    /// After the final `\r`.
    EndLf,
    /// Inside a trailer line.
    Trailer,
    /// After the `\r` of a trailer line.
    TrailerLf,
    /// The body has ended.
    Done,
}

/// The framing is not valid chunked encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the chunked request body is malformed")]
pub struct ChunkedError;

impl Chunked {
    /// The start of a chunked body.
    pub fn new() -> Self {
        Chunked::Start
    }

    /// Follow `bytes`; returns how many belong to the body (all of them,
    /// unless the body ends inside `bytes`).
    pub fn advance(&mut self, bytes: &[u8]) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < bytes.len() && *self != Chunked::Done {
            if let Chunked::Data(left) = *self {
                let take = left.min((bytes.len() - i) as u64);
                i += take as usize;
                *self = if take == left {
                    Chunked::DataCr
                } else {
                    Chunked::Data(left - take)
                };
                continue;
            }
            *self = self.step(bytes[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(self, b: u8) -> Result<Chunked, ChunkedError> {
        let hex = (b as char).to_digit(16).map(u64::from);
        Ok(match (self, b) {
            (Chunked::Start, _) => Chunked::Size(hex.ok_or(ChunkedError)?),
            (Chunked::Size(n), _) if hex.is_some() => Chunked::Size(
                n.checked_mul(16)
                    .and_then(|n| n.checked_add(hex.unwrap_or(0)))
                    .ok_or(ChunkedError)?,
            ),
            (Chunked::Size(n) | Chunked::Lws(n), b' ' | b'\t') => Chunked::Lws(n),
            (Chunked::Size(n) | Chunked::Lws(n), b';') => Chunked::Ext(n),
            (Chunked::Size(n) | Chunked::Lws(n) | Chunked::Ext(n), b'\r') => Chunked::SizeLf(n),
            (Chunked::Ext(_), b'\n') => return Err(ChunkedError),
            (Chunked::Ext(n), _) => Chunked::Ext(n),
            (Chunked::SizeLf(0), b'\n') => Chunked::EndCr,
            (Chunked::SizeLf(n), b'\n') => Chunked::Data(n),
            (Chunked::DataCr, b'\r') => Chunked::DataLf,
            (Chunked::DataLf, b'\n') => Chunked::Start,
            (Chunked::EndCr, b'\r') => Chunked::EndLf,
            (Chunked::Trailer, b'\r') => Chunked::TrailerLf,
            (Chunked::EndCr | Chunked::Trailer, _) => Chunked::Trailer,
            (Chunked::TrailerLf, b'\n') => Chunked::EndCr,
            (Chunked::EndLf, b'\n') => Chunked::Done,
            (Chunked::Data(_) | Chunked::Done, _) => self,
            _ => return Err(ChunkedError),
        })
    }
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_a_body_split_anywhere() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
        let next = b"GET / HTTP/1.1\r\n\r\n";
        let all = [&body[..], &next[..]].concat();
        for split in 0..all.len() {
            let mut c = Chunked::new();
            let a = c.advance(&all[..split]).unwrap();
            let b = if c == Chunked::Done {
                0
            } else {
                c.advance(&all[split..]).unwrap()
            };
            assert_eq!(c, Chunked::Done, "split at {split}");
            assert_eq!(a + b, body.len(), "split at {split}");
        }
    }

    #[test]
    fn refuses_what_is_not_chunked() {
        assert!(Chunked::new().advance(b"zz\r\n").is_err());
        assert!(Chunked::new().advance(b"1\r\nab\r\n").is_err());
        assert!(Chunked::new().advance(b"ffffffffffffffffff\r\n").is_err());
        // What hyper refuses too: a blank before the size, bare LF, a
        // digit after a blank.
        assert!(Chunked::new().advance(b" 5\r\n").is_err());
        assert!(Chunked::new().advance(b"5\nhello").is_err());
        assert!(Chunked::new().advance(b"5 5\r\n").is_err());
        assert!(Chunked::new().advance(b"5;a\nb\r\n").is_err());
    }
}
