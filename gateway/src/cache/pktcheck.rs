//! A streaming check of git smart-HTTP responses before they are stored
//! (invariant 4 for git: only complete, error-free answers are kept).
//!
//! `git http-backend` and most git servers answer `200` before they know
//! whether `upload-pack` will succeed, so a missing object (`ERR
//! upload-pack: not our ref ...`), a server-side failure (a sideband-3
//! `fatal:` message) or a pack cut short arrives as a clean `200`. Cached
//! under an immutable key, such an answer would be served forever. Bodies
//! whose content type is a git smart-HTTP result
//! (`application/x-git-upload-pack-result` or `-advertisement`) must
//! therefore be a whole pkt-line stream that ends with a flush packet and
//! has no `ERR` packet and no sideband error; a body that fails is still
//! delivered to the clients waiting for it, but not stored.
//!
//! The check looks at the framing and the first bytes of each packet only,
//! in constant memory; the pack itself is verified by the git client.

use http::{HeaderMap, header};

/// Content types whose bodies are checked.
const CHECKED: [&str; 2] = [
    "application/x-git-upload-pack-result",
    "application/x-git-upload-pack-advertisement",
];

/// The check for a response with `headers`, when its content type needs
/// one.
pub fn for_headers(headers: &HeaderMap) -> Option<PktStream> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = ct.split(';').next().unwrap_or("").trim();
    CHECKED
        .iter()
        .any(|c| essence.eq_ignore_ascii_case(c))
        .then(PktStream::default)
}

/// Incremental pkt-line validation of a body fed in arbitrary chunks.
#[derive(Debug, Default)]
pub struct PktStream {
    /// Length-prefix bytes of the packet being read.
    prefix: [u8; 4],
    prefix_len: usize,
    /// Payload bytes still to come in the current packet.
    remaining: usize,
    /// The first payload bytes of the current packet (up to 4).
    head: [u8; 4],
    head_len: usize,
    /// Payload length of the current packet.
    payload_len: usize,
    /// Whether the last complete packet was a flush.
    last_flush: bool,
    /// Packets seen.
    packets: u64,
    /// Why the stream is not storable, once known.
    bad: Option<&'static str>,
}

impl PktStream {
    /// Feed the next bytes of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() && self.bad.is_none() {
            if self.remaining == 0 {
                let take = (4 - self.prefix_len).min(chunk.len());
                self.prefix[self.prefix_len..self.prefix_len + take]
                    .copy_from_slice(&chunk[..take]);
                self.prefix_len += take;
                chunk = &chunk[take..];
                if self.prefix_len == 4 {
                    self.prefix_len = 0;
                    self.start_packet();
                }
                continue;
            }
            let take = self.remaining.min(chunk.len());
            let want_head = (4 - self.head_len).min(take);
            self.head[self.head_len..self.head_len + want_head]
                .copy_from_slice(&chunk[..want_head]);
            self.head_len += want_head;
            self.remaining -= take;
            chunk = &chunk[take..];
            if self.remaining == 0 {
                self.end_data_packet();
            }
        }
    }

    fn start_packet(&mut self) {
        let Some(len) = parse_len(&self.prefix) else {
            self.bad = Some("a pkt-line length is not four hex digits");
            return;
        };
        self.packets += 1;
        match len {
            0 => self.last_flush = true,
            1 | 2 => self.last_flush = false,
            3 => self.bad = Some("a pkt-line has the reserved length 3"),
            n if n > 65520 => self.bad = Some("a pkt-line is longer than 65520 bytes"),
            n => {
                self.last_flush = false;
                self.remaining = n - 4;
                self.payload_len = n - 4;
                self.head_len = 0;
                if self.remaining == 0 {
                    self.end_data_packet();
                }
            }
        }
    }

    fn end_data_packet(&mut self) {
        let head = &self.head[..self.head_len.min(self.payload_len)];
        if head.starts_with(b"ERR ") {
            self.bad = Some("the upstream answered with an ERR packet");
        } else if head.first() == Some(&3) {
            self.bad = Some("the upstream sent an error on sideband 3");
        }
    }

    /// Whether the whole body was a storable answer; the error says why
    /// not.
    pub fn finish(&self) -> Result<(), &'static str> {
        if let Some(why) = self.bad {
            return Err(why);
        }
        if self.prefix_len != 0 || self.remaining != 0 {
            return Err("the body ends inside a pkt-line");
        }
        if self.packets == 0 || !self.last_flush {
            return Err("the body does not end with a flush packet");
        }
        Ok(())
    }
}

fn parse_len(p: &[u8; 4]) -> Option<usize> {
    p.iter().try_fold(0usize, |acc, &b| {
        let v = (b as char).to_digit(16)?;
        Some(acc * 16 + v as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(payload: &[u8]) -> Vec<u8> {
        let mut v = format!("{:04x}", payload.len() + 4).into_bytes();
        v.extend_from_slice(payload);
        v
    }

    /// Check `body` fed whole and in every split into two or byte by byte.
    fn check(body: &[u8]) -> Result<(), &'static str> {
        let mut whole = PktStream::default();
        whole.feed(body);
        for cut in 0..=body.len() {
            let mut s = PktStream::default();
            s.feed(&body[..cut]);
            s.feed(&body[cut..]);
            assert_eq!(s.finish(), whole.finish(), "split at {cut}");
        }
        let mut bytes = PktStream::default();
        for b in body {
            bytes.feed(std::slice::from_ref(b));
        }
        assert_eq!(bytes.finish(), whole.finish());
        whole.finish()
    }

    #[test]
    fn good_answers_pass() {
        // A v2 fetch answer: section header, sideband data and progress,
        // the final flush.
        let mut body = pkt(b"packfile\n");
        body.extend(pkt(b"\x02Enumerating objects: 3\n"));
        body.extend(pkt(b"\x01PACK\x00\x00\x00\x02\x00\x00\x00\x03xyz"));
        body.extend(pkt(b"\x01"));
        body.extend(b"0000");
        assert_eq!(check(&body), Ok(()));
        // An ls-refs answer and a v0 advertisement (a flush in the middle).
        let mut refs = pkt(b"# service=git-upload-pack\n");
        refs.extend(b"0000");
        refs.extend(pkt(
            b"1111111111111111111111111111111111111111 HEAD\0side-band-64k\n",
        ));
        refs.extend(b"0000");
        assert_eq!(check(&refs), Ok(()));
    }

    #[test]
    fn bad_answers_fail() {
        let mut err = pkt(b"ERR upload-pack: not our ref 1111\n");
        err.extend(b"0000");
        assert_eq!(check(&err), Err("the upstream answered with an ERR packet"));
        let mut fatal = pkt(b"packfile\n");
        fatal.extend(pkt(b"\x03fatal: out of memory\n"));
        fatal.extend(b"0000");
        assert_eq!(
            check(&fatal),
            Err("the upstream sent an error on sideband 3")
        );
        let mut cut = pkt(b"packfile\n");
        cut.extend(pkt(b"\x01PACK"));
        assert_eq!(
            check(&cut),
            Err("the body does not end with a flush packet")
        );
        assert_eq!(
            check(&cut[..cut.len() - 2]),
            Err("the body ends inside a pkt-line")
        );
        assert_eq!(check(b"000"), Err("the body ends inside a pkt-line"));
        assert_eq!(check(b""), Err("the body does not end with a flush packet"));
        assert_eq!(
            check(b"PACK0000"),
            Err("a pkt-line length is not four hex digits")
        );
        assert_eq!(check(b"0003"), Err("a pkt-line has the reserved length 3"));
        assert_eq!(check(b"fff5"), Err("a pkt-line is longer than 65520 bytes"));
        // Short packets are checked too.
        assert_eq!(
            check(b"0005\x030000"),
            Err("the upstream sent an error on sideband 3")
        );
    }

    /// A random packet: data (never starting with `ERR ` or byte 3),
    /// flush, delim or response-end.
    fn packet() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|mut p| {
                if p.first() == Some(&3) || p.starts_with(b"ERR ") {
                    p[0] = 1;
                }
                pkt(&p)
            }),
            1 => Just(b"0000".to_vec()),
            1 => Just(b"0001".to_vec()),
            1 => Just(b"0002".to_vec()),
        ]
    }

    /// Feeds `body` in the chunks `cuts` makes of it.
    fn chunked(body: &[u8], cuts: &[proptest::sample::Index]) -> Result<(), &'static str> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        at.push(0);
        at.push(body.len());
        at.sort_unstable();
        let mut s = PktStream::default();
        for w in at.windows(2) {
            s.feed(&body[w[0]..w[1]]);
        }
        s.finish()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        #[test]
        fn whole_streams_ending_in_a_flush_pass(
            pkts in proptest::collection::vec(packet(), 0..12),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..6),
        ) {
            let mut body = pkts.concat();
            body.extend_from_slice(b"0000");
            proptest::prop_assert_eq!(chunked(&body, &cuts), Ok(()));
            // Cut anywhere inside or before the final flush: never storable.
            let cut = cuts.first().map_or(0, |c| c.index(body.len()));
            proptest::prop_assert!(chunked(&body[..cut], &cuts).is_err() || body[..cut].ends_with(b"0000"));
        }

        #[test]
        fn an_error_packet_anywhere_fails(
            before in proptest::collection::vec(packet(), 0..6),
            after in proptest::collection::vec(packet(), 0..6),
            sideband in proptest::prelude::any::<bool>(),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..6),
        ) {
            let mut body = before.concat();
            body.extend(if sideband { pkt(b"\x03fatal: x\n") } else { pkt(b"ERR not our ref\n") });
            body.extend(after.concat());
            body.extend_from_slice(b"0000");
            proptest::prop_assert!(chunked(&body, &cuts).is_err());
        }

        #[test]
        fn any_bytes_in_any_chunks_agree(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..6),
        ) {
            let mut whole = PktStream::default();
            whole.feed(&body);
            proptest::prop_assert_eq!(chunked(&body, &cuts), whole.finish());
        }
    }

    #[test]
    fn chosen_by_content_type() {
        let mut h = HeaderMap::new();
        assert!(for_headers(&h).is_none());
        h.insert(
            header::CONTENT_TYPE,
            "application/octet-stream".parse().unwrap(),
        );
        assert!(for_headers(&h).is_none());
        h.insert(
            header::CONTENT_TYPE,
            "Application/x-git-upload-pack-result; charset=x"
                .parse()
                .unwrap(),
        );
        assert!(for_headers(&h).is_some());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-git-upload-pack-advertisement"
                .parse()
                .unwrap(),
        );
        assert!(for_headers(&h).is_some());
    }
}
