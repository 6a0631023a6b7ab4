//! Fuzz entry points for the cas adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz targets in `fuzz/` call these, and the tests below replay the
//! committed corpora through them on stable.

use crate::{Cas, EMPTY_SHA256, parse_path, proto, references};
use artgate_sdk::fuzz::{check_decision, gateway_clean, remote, request, text};
use artgate_sdk::prelude::*;

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `cas_proto`: the input is an `/ac/` upload. A well-formed
/// `ActionResult` gives unique lower-case sha256 hashes; the references
/// are `cas/{hash}` keys without the empty blob; anything else is an error,
/// never a panic.
pub fn proto(data: &[u8]) {
    if let Ok(digests) = proto::action_result_digests(data) {
        for (i, d) in digests.iter().enumerate() {
            assert!(is_sha256_hex(d), "{d:?}");
            assert!(!digests[..i].contains(d), "duplicate {d}");
        }
    }
    for r in references("ac/fuzz", data) {
        let hash = r.strip_prefix("cas/").expect("a cas/ key");
        assert!(is_sha256_hex(hash) && hash != EMPTY_SHA256, "{r:?}");
    }
}

/// `cas_path`: the input is a request path; each line after the first is
/// a method to plan it with. A parsed path is `cas/` or `ac/` and a
/// lower-case sha256; every decision is well formed, and hosted keys are
/// the store and the hash only.
pub fn path(data: &[u8]) {
    let s = text(data);
    let mut lines = s.split('\n');
    let p = lines.next().unwrap_or("");
    if let Ok((_, hash)) = parse_path(p) {
        assert!(is_sha256_hex(&hash));
    }
    let mut methods: Vec<&str> = lines.take(4).collect();
    methods.extend(["GET", "PUT", "DELETE"]);
    for m in methods {
        let r = remote("cas", RemoteMode::Hosted);
        let d = <Cas as Adapter>::plan(r, request(m, p, None, None));
        check_decision(&d, gateway_clean(p));
        if let Decision::Hosted(op) = &d {
            let key = match op {
                HostedOp::Read(r) => &r.key,
                HostedOp::Write(w) => &w.key,
                HostedOp::Delete(k) => k,
                HostedOp::List(_) => panic!("cas never lists"),
            };
            let (store, hash) = key.split_once('/').expect("store/hash");
            assert!(
                matches!(store, "cas" | "ac") && is_sha256_hex(hash),
                "{key:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artgate_sdk::fuzz::replay;
    use proptest::prelude::*;

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    #[test]
    fn corpora_replay() {
        replay(DIR, "cas_proto", 5, proto);
        replay(DIR, "cas_path", 5, path);
    }

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

    fn field(n: u32, payload: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(n) << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn digest_msg(hash: &str, size: u64) -> Vec<u8> {
        let mut m = Vec::new();
        field(1, hash.as_bytes(), &mut m);
        varint(2 << 3, &mut m);
        varint(size, &mut m);
        m
    }

    /// One referencing field of an `ActionResult`: which (2 output file,
    /// 3 output directory, 6 stdout, 8 stderr) and the hash.
    fn reference() -> impl Strategy<Value = (u32, String)> {
        (
            prop::sample::select(vec![2u32, 3, 6, 8]),
            prop_oneof![
                "[0-9a-f]{64}",
                Just(EMPTY_SHA256.to_owned()),
                Just("ab".repeat(32))
            ],
        )
    }

    /// Encodes an `ActionResult` with these references, an exit code and
    /// stdout bytes in between.
    fn encode(refs: &[(u32, String)], upper: bool) -> Vec<u8> {
        let mut out = Vec::new();
        varint(4 << 3, &mut out);
        varint(1, &mut out);
        for (n, h) in refs {
            let h = if upper { h.to_uppercase() } else { h.clone() };
            let d = digest_msg(&h, 42);
            match n {
                2 => {
                    let mut f = Vec::new();
                    field(1, b"out/a.o", &mut f);
                    field(2, &d, &mut f);
                    field(2, &f, &mut out);
                }
                3 => {
                    let mut f = Vec::new();
                    field(1, b"out/dir", &mut f);
                    field(3, &d, &mut f);
                    field(3, &f, &mut out);
                }
                _ => field(*n, &d, &mut out),
            }
            field(5, b"stdout bytes", &mut out);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn encoded_action_results_round_trip(refs in prop::collection::vec(reference(), 0..8), upper in any::<bool>()) {
            let buf = encode(&refs, upper);
            let mut want: Vec<String> = Vec::new();
            for (_, h) in &refs {
                if !want.contains(h) {
                    want.push(h.clone());
                }
            }
            prop_assert_eq!(proto::action_result_digests(&buf), Ok(want.clone()));
            let refs_want: Vec<String> = want.iter().filter(|h| *h != EMPTY_SHA256).map(|h| format!("cas/{h}")).collect();
            prop_assert_eq!(references("ac/x", &buf), refs_want);
            proto(&buf);
            // Every truncation parses or is refused, never a panic.
            for end in 0..buf.len() {
                proto(&buf[..end]);
            }
        }

        #[test]
        fn corrupted_action_results_never_panic(refs in prop::collection::vec(reference(), 1..4), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut buf = encode(&refs, false);
            let i = at.index(buf.len());
            buf[i] = byte;
            proto(&buf);
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            proto(&b);
        }

        #[test]
        fn paths_never_panic(p in "(cas|ac|x)?/?([0-9a-fA-F]{0,70}|\\.\\.|/|é)*", m in "(GET|HEAD|PUT|DELETE|POST|get|)") {
            path(format!("{p}\n{m}").as_bytes());
        }
    }
}
