//! Where a chunked request body ends (RFC 9112 §7.1), so that the bytes
//! after it are read as the next request head. The bytes themselves are
//! left to hyper, which decodes them; this only follows the framing.

/// Position in a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a chunk size (hex digits so far).
    Size(u64),
    /// Skipping a chunk extension up to the end of the line.
    Ext(u64),
    /// After the `\r` of a size line.
    SizeLf(u64),
    /// Inside chunk data: bytes left.
    Data(u64),
    /// After chunk data, expecting `\r\n`.
    DataCr,
    /// After the `\r` that follows chunk data.
    DataLf,
    /// In the trailer section: bytes of the current line so far.
    Trailer(u64),
    /// After the `\r` of a trailer line of this many bytes.
    TrailerLf(u64),
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
        Chunked::Size(0)
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
        let end_of_size = |n: u64| {
            if n == 0 {
                Chunked::Trailer(0)
            } else {
                Chunked::Data(n)
            }
        };
        Ok(match self {
            Chunked::Size(n) => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    Chunked::Size(
                        n.checked_mul(16)
                            .and_then(|n| n.checked_add(d))
                            .ok_or(ChunkedError)?,
                    )
                }
                b';' | b' ' | b'\t' => Chunked::Ext(n),
                b'\r' => Chunked::SizeLf(n),
                b'\n' => end_of_size(n),
                _ => return Err(ChunkedError),
            },
            Chunked::Ext(n) => match b {
                b'\r' => Chunked::SizeLf(n),
                b'\n' => end_of_size(n),
                _ => Chunked::Ext(n),
            },
            Chunked::SizeLf(n) => match b {
                b'\n' => end_of_size(n),
                _ => return Err(ChunkedError),
            },
            Chunked::DataCr => match b {
                b'\r' => Chunked::DataLf,
                b'\n' => Chunked::Size(0),
                _ => return Err(ChunkedError),
            },
            Chunked::DataLf => match b {
                b'\n' => Chunked::Size(0),
                _ => return Err(ChunkedError),
            },
            Chunked::Trailer(len) => match b {
                b'\r' => Chunked::TrailerLf(len),
                b'\n' if len == 0 => Chunked::Done,
                b'\n' => Chunked::Trailer(0),
                _ => Chunked::Trailer(len + 1),
            },
            Chunked::TrailerLf(len) => match b {
                b'\n' if len == 0 => Chunked::Done,
                b'\n' => Chunked::Trailer(0),
                _ => return Err(ChunkedError),
            },
            Chunked::Data(_) | Chunked::Done => self,
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
    }
}
