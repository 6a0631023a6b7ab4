//! git's pkt-line framing and the `git-upload-pack` requests clients send
//! over smart HTTP: parsed, classified (may the response be cached?) and
//! normalised into the text a cache key is hashed from.
//!
//! Pure functions over bytes: no I/O, no host calls, and no input makes them
//! panic (bad lengths, truncated packets, non-hex prefixes, invalid UTF-8
//! and oversized packets are errors).
//!
//! A pkt-line is four hex digits giving the packet's length (prefix
//! included) and the payload; `0000` is a flush, `0001` a delimiter and
//! `0002` a response end (protocol v2). A protocol-v2 request is
//!
//! ```text
//! command=<name>  capability*  [0001 argument*]  0000
//! ```
//!
//! and a protocol-v0/v1 (stateless) upload-pack request is
//!
//! ```text
//! want <oid> <capabilities>  want <oid>*  (shallow|deepen|deepen-since|deepen-not|filter)*  0000
//! [have <oid> | 0000]*  [done]
//! ```

use std::collections::BTreeSet;
use std::fmt;

/// Largest pkt-line, length prefix included, that git sends or accepts.
pub const MAX_PKT_LEN: usize = 65520;

/// One packet of a pkt-line stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0000`: the end of a message or section.
    Flush,
    /// `0001`: separates the sections of a protocol-v2 message.
    Delim,
    /// `0002`: the end of a protocol-v2 response (stateless connections).
    ResponseEnd,
    /// A data packet's payload, without the length prefix.
    Data(&'a [u8]),
}

impl<'a> Packet<'a> {
    /// The payload of a data packet as text with one trailing LF removed;
    /// `None` for special packets and payloads that are not UTF-8.
    pub fn text(&self) -> Option<&'a str> {
        match self {
            Packet::Data(d) => {
                let d = d.strip_suffix(b"\n").unwrap_or(d);
                std::str::from_utf8(d).ok()
            }
            _ => None,
        }
    }
}

/// Why bytes are not a pkt-line stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PktError {
    /// The four bytes at `offset` are not hex digits.
    BadLength {
        /// Byte offset of the length prefix.
        offset: usize,
    },
    /// The length at `offset` is reserved (`0003`) or above [`MAX_PKT_LEN`].
    InvalidLength {
        /// Byte offset of the length prefix.
        offset: usize,
        /// The length it gives.
        len: usize,
    },
    /// The input ends inside the packet that starts at `offset`.
    Truncated {
        /// Byte offset of the packet.
        offset: usize,
    },
}

impl fmt::Display for PktError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PktError::BadLength { offset } => {
                write!(
                    f,
                    "the pkt-line length at byte {offset} is not four hex digits"
                )
            }
            PktError::InvalidLength { offset, len } => {
                write!(f, "the pkt-line length {len} at byte {offset} is invalid")
            }
            PktError::Truncated { offset } => {
                write!(f, "the pkt-line at byte {offset} is cut short")
            }
        }
    }
}

/// Splits `buf` into packets. The whole input must be packets: bytes left
/// over at the end are [`PktError::Truncated`].
///
/// ```
/// use artgate_git::pktline::{packets, Packet};
/// let p = packets(b"000bwant x\n00010000").unwrap();
/// assert_eq!(p, [Packet::Data(b"want x\n"), Packet::Delim, Packet::Flush]);
/// ```
pub fn packets(buf: &[u8]) -> Result<Vec<Packet<'_>>, PktError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let Some(prefix) = buf.get(pos..pos + 4) else {
            return Err(PktError::Truncated { offset: pos });
        };
        let len = parse_len(prefix).ok_or(PktError::BadLength { offset: pos })?;
        match len {
            0 => out.push(Packet::Flush),
            1 => out.push(Packet::Delim),
            2 => out.push(Packet::ResponseEnd),
            3 => return Err(PktError::InvalidLength { offset: pos, len }),
            n if n > MAX_PKT_LEN => return Err(PktError::InvalidLength { offset: pos, len }),
            n => {
                let payload = buf
                    .get(pos + 4..pos + n)
                    .ok_or(PktError::Truncated { offset: pos })?;
                out.push(Packet::Data(payload));
                pos += n;
                continue;
            }
        }
        pos += 4;
    }
    Ok(out)
}

/// The value of a four-hex-digit length prefix (either case).
fn parse_len(prefix: &[u8]) -> Option<usize> {
    prefix.iter().try_fold(0usize, |acc, &b| {
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(acc * 16 + usize::from(v))
    })
}

/// Whether `s` is an object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex
/// digits.
pub fn is_oid(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A parsed `git-upload-pack` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadRequest {
    /// A protocol-v2 command.
    V2 {
        /// The command (`ls-refs`, `fetch`, `object-info`, ...).
        command: String,
        /// Capability lines after the command (`agent=...`,
        /// `object-format=sha1`, ...), in request order.
        capabilities: Vec<String>,
        /// Argument lines after the delimiter, in request order.
        arguments: Vec<String>,
    },
    /// A protocol-v0/v1 negotiation request.
    V0(V0Request),
}

/// A protocol-v0/v1 upload-pack request (one stateless-RPC round).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V0Request {
    /// Wanted object ids, in request order.
    pub wants: Vec<String>,
    /// Capabilities from the first `want` line.
    pub capabilities: Vec<String>,
    /// `shallow`, `deepen`, `deepen-since`, `deepen-not` and `filter`
    /// lines, in request order.
    pub arguments: Vec<String>,
    /// Object ids the client has.
    pub haves: Vec<String>,
    /// Whether the request ends with `done`.
    pub done: bool,
}

/// Why a body is not an upload-pack request this module understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The body is not a pkt-line stream.
    Framing(PktError),
    /// The body has no packets.
    Empty,
    /// A packet is not UTF-8 text, or a special packet is out of place;
    /// carries the packet's index.
    Unexpected {
        /// Index of the packet.
        index: usize,
    },
    /// A line is not valid at its place; carries its first 64 bytes.
    BadLine {
        /// The line (shortened).
        line: String,
    },
    /// The body ends before the flush that ends the request.
    MissingFlush,
    /// Packets follow the end of the request.
    TrailingData,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Framing(e) => e.fmt(f),
            RequestError::Empty => f.write_str("the request body is empty"),
            RequestError::Unexpected { index } => {
                write!(f, "packet {index} of the request is not expected there")
            }
            RequestError::BadLine { line } => write!(f, "the request line {line:?} is not valid"),
            RequestError::MissingFlush => f.write_str("the request ends before its flush packet"),
            RequestError::TrailingData => f.write_str("packets follow the end of the request"),
        }
    }
}

impl From<PktError> for RequestError {
    fn from(e: PktError) -> Self {
        RequestError::Framing(e)
    }
}

/// A line, shortened to at most 64 bytes, for error messages.
fn short(line: &str) -> String {
    let mut end = line.len().min(64);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

/// Parses an upload-pack request body (already stripped of any
/// `content-encoding`).
///
/// ```
/// use artgate_git::pktline::{parse_request, UploadRequest};
/// let body = b"0014command=ls-refs\n0013agent=git/2.47\n00010009peel\n0000";
/// match parse_request(body).unwrap() {
///     UploadRequest::V2 { command, arguments, .. } => {
///         assert_eq!(command, "ls-refs");
///         assert_eq!(arguments, ["peel"]);
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn parse_request(body: &[u8]) -> Result<UploadRequest, RequestError> {
    let pkts = packets(body)?;
    let Some(first) = pkts.first() else {
        return Err(RequestError::Empty);
    };
    match first.text() {
        Some(t) if t.starts_with("command=") => parse_v2(&pkts),
        _ => parse_v0(&pkts),
    }
}

/// The text of data packet `index`, or an error.
fn text_at(pkts: &[Packet<'_>], index: usize) -> Result<String, RequestError> {
    pkts[index]
        .text()
        .map(str::to_owned)
        .ok_or(RequestError::Unexpected { index })
}

fn parse_v2(pkts: &[Packet<'_>]) -> Result<UploadRequest, RequestError> {
    let mut command = None;
    let mut capabilities = Vec::new();
    let mut arguments = Vec::new();
    let mut i = 0;
    // Command and capabilities, up to a delimiter or the flush.
    let mut has_args = false;
    loop {
        match pkts.get(i) {
            None => return Err(RequestError::MissingFlush),
            Some(Packet::Flush) => break,
            Some(Packet::Delim) => {
                has_args = true;
                break;
            }
            Some(Packet::ResponseEnd) => return Err(RequestError::Unexpected { index: i }),
            Some(Packet::Data(_)) => {
                let line = text_at(pkts, i)?;
                if let Some(c) = line.strip_prefix("command=") {
                    if command.is_some() || c.is_empty() {
                        return Err(RequestError::BadLine { line: short(&line) });
                    }
                    command = Some(c.to_owned());
                } else if line.is_empty() {
                    return Err(RequestError::BadLine { line });
                } else {
                    capabilities.push(line);
                }
            }
        }
        i += 1;
    }
    i += 1;
    if has_args {
        loop {
            match pkts.get(i) {
                None => return Err(RequestError::MissingFlush),
                Some(Packet::Flush) => break,
                Some(Packet::Data(_)) => {
                    let line = text_at(pkts, i)?;
                    if line.is_empty() {
                        return Err(RequestError::BadLine { line });
                    }
                    arguments.push(line);
                }
                Some(_) => return Err(RequestError::Unexpected { index: i }),
            }
            i += 1;
        }
        i += 1;
    }
    if i < pkts.len() {
        return Err(RequestError::TrailingData);
    }
    let command = command.ok_or(RequestError::Unexpected { index: 0 })?;
    Ok(UploadRequest::V2 {
        command,
        capabilities,
        arguments,
    })
}

fn parse_v0(pkts: &[Packet<'_>]) -> Result<UploadRequest, RequestError> {
    let mut req = V0Request::default();
    let mut i = 0;
    // Wants, shallows, deepen and filter lines, up to the first flush.
    loop {
        match pkts.get(i) {
            None => return Err(RequestError::MissingFlush),
            Some(Packet::Flush) => break,
            Some(Packet::Data(_)) => {
                let line = text_at(pkts, i)?;
                let bad = || RequestError::BadLine { line: short(&line) };
                let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
                match word {
                    "want" => {
                        let mut parts = rest.split(' ');
                        let oid = parts.next().unwrap_or("");
                        if !is_oid(oid) {
                            return Err(bad());
                        }
                        let caps: Vec<&str> = parts.filter(|c| !c.is_empty()).collect();
                        if !caps.is_empty() {
                            // Capabilities ride on the first want only.
                            if !req.wants.is_empty() {
                                return Err(bad());
                            }
                            req.capabilities = caps.into_iter().map(str::to_owned).collect();
                        }
                        req.wants.push(oid.to_owned());
                    }
                    "shallow" if is_oid(rest) => req.arguments.push(line.clone()),
                    "deepen" | "deepen-since"
                        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        req.arguments.push(line.clone())
                    }
                    "deepen-not" | "filter" if !rest.is_empty() => req.arguments.push(line.clone()),
                    _ => return Err(bad()),
                }
            }
            Some(_) => return Err(RequestError::Unexpected { index: i }),
        }
        i += 1;
    }
    i += 1;
    // Haves and flushes, then an optional `done` that ends the request.
    while let Some(p) = pkts.get(i) {
        match p {
            Packet::Flush => {}
            Packet::Data(_) => {
                let line = text_at(pkts, i)?;
                if line == "done" {
                    req.done = true;
                    if i + 1 < pkts.len() {
                        return Err(RequestError::TrailingData);
                    }
                } else if let Some(oid) = line.strip_prefix("have ").filter(|o| is_oid(o)) {
                    req.haves.push(oid.to_owned());
                } else {
                    return Err(RequestError::BadLine { line: short(&line) });
                }
            }
            _ => return Err(RequestError::Unexpected { index: i }),
        }
        i += 1;
    }
    Ok(UploadRequest::V0(req))
}

/// How the gateway may store the response to an upload-pack request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cacheability {
    /// A protocol-v2 `ls-refs`: the refs change, so cache it for the refs
    /// TTL. `canonical` is the normalised request.
    RefList {
        /// Normalised request text (hash it for the key).
        canonical: String,
    },
    /// Wants without haves: the pack for fixed object ids never changes.
    /// `canonical` is the normalised request.
    Pack {
        /// Normalised request text (hash it for the key).
        canonical: String,
    },
    /// Stream the response without storing it.
    Bypass {
        /// Why, for the log.
        reason: String,
    },
}

/// Capabilities that name the client, not what it asks for: dropped from
/// keys.
fn is_identity(cap: &str) -> bool {
    cap.starts_with("agent=") || cap.starts_with("session-id=")
}

/// Whether a `filter` spec selects the same objects for fixed wants
/// whatever the refs are: every spec except `sparse:oid=<ref:path>`, which
/// names a blob through a ref (a raw object id is fine).
pub fn filter_is_stable(spec: &str) -> bool {
    let parts: Vec<String> = match spec.strip_prefix("combine:") {
        Some(rest) => rest.split('+').map(percent_decode).collect(),
        None => vec![spec.to_owned()],
    };
    parts.iter().all(|p| match p.strip_prefix("sparse:") {
        Some(s) => s.strip_prefix("oid=").is_some_and(is_oid),
        None => !p.is_empty(),
    })
}

/// Decodes `%XX` escapes (as in `combine:` filter specs); bad escapes stay.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b.get(i + 1..i + 3).and_then(parse_hex_byte)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_hex_byte(two: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(two).ok()?;
    u8::from_str_radix(s, 16).ok()
}

/// Sorted, de-duplicated lines with a prefix, one per line.
fn lines<'a>(out: &mut String, prefix: &str, items: impl IntoIterator<Item = &'a String>) {
    let set: BTreeSet<&str> = items.into_iter().map(String::as_str).collect();
    for s in set {
        out.push_str(prefix);
        out.push_str(s);
        out.push('\n');
    }
}

/// Decides how a parsed request may be cached, and normalises it.
///
/// The normalised text is the protocol, the command, the sorted set of
/// capabilities without `agent=` and `session-id=`, and the sorted set of
/// arguments (wants, shallows, deepen options, filter, pack options,
/// `done`). Two requests with the same text get the same response from the
/// same repository.
///
/// - v2 `ls-refs` → [`Cacheability::RefList`];
/// - v2 `fetch` and v0 requests with at least one `want` and no `have`,
///   `want-ref`, `deepen-not` or ref-dependent filter →
///   [`Cacheability::Pack`];
/// - everything else → [`Cacheability::Bypass`].
pub fn classify(req: &UploadRequest) -> Cacheability {
    let bypass = |reason: &str| Cacheability::Bypass {
        reason: reason.to_owned(),
    };
    match req {
        UploadRequest::V2 {
            command,
            capabilities,
            arguments,
        } => {
            let mut canonical = format!("git-upload-pack v2\ncommand={command}\n");
            lines(
                &mut canonical,
                "cap ",
                capabilities.iter().filter(|c| !is_identity(c)),
            );
            lines(&mut canonical, "arg ", arguments);
            match command.as_str() {
                "ls-refs" => Cacheability::RefList { canonical },
                "fetch" => {
                    let mut wants = 0;
                    for a in arguments {
                        let (word, rest) = a.split_once(' ').unwrap_or((a, ""));
                        match word {
                            "want" if is_oid(rest) => wants += 1,
                            "want" => return bypass("a want line has no valid object id"),
                            "have" => {
                                return bypass("the client sends haves (an incremental fetch)");
                            }
                            "want-ref" => return bypass("the client wants refs by name"),
                            "deepen-not" => return bypass("deepen-not names refs"),
                            "filter" if !filter_is_stable(rest) => {
                                return bypass("the filter names a blob through a ref");
                            }
                            _ => {}
                        }
                    }
                    if wants == 0 {
                        return bypass("the fetch wants nothing");
                    }
                    Cacheability::Pack { canonical }
                }
                other => Cacheability::Bypass {
                    reason: format!("command {other} is not cached"),
                },
            }
        }
        UploadRequest::V0(r) => {
            if r.wants.is_empty() {
                return bypass("the request wants nothing");
            }
            if !r.haves.is_empty() {
                return bypass("the client sends haves (an incremental fetch)");
            }
            for a in &r.arguments {
                let (word, rest) = a.split_once(' ').unwrap_or((a, ""));
                match word {
                    "deepen-not" => return bypass("deepen-not names refs"),
                    "filter" if !filter_is_stable(rest) => {
                        return bypass("the filter names a blob through a ref");
                    }
                    _ => {}
                }
            }
            let mut canonical = String::from("git-upload-pack v0\n");
            lines(
                &mut canonical,
                "cap ",
                r.capabilities.iter().filter(|c| !is_identity(c)),
            );
            let wants: Vec<String> = r.wants.iter().map(|w| format!("want {w}")).collect();
            lines(&mut canonical, "arg ", wants.iter().chain(&r.arguments));
            if r.done {
                canonical.push_str("done\n");
            }
            Cacheability::Pack { canonical }
        }
    }
}

#[cfg(test)]
mod tests;
