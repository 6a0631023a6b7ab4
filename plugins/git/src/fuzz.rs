//! Fuzz entry points for the git adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz targets in `fuzz/` call these, and the tests below replay the
//! committed corpora through them on stable.

use crate::pktline::{self, Cacheability, MAX_PKT_LEN, Packet};
use crate::plan_with;
use artgate_sdk::fuzz::{check_decision, gateway_clean, remote, request, text, uri_query};
use artgate_sdk::prelude::*;
use artgate_sdk::testing::FakeHost;

/// A host whose cache is unreachable: `ls-refs` falls back to streaming.
fn no_cache() -> FakeHost {
    let host = FakeHost::new();
    host.answer_cache(Err("no cache while fuzzing".into()));
    host
}

/// The pkt-line encoding of `packets`.
pub fn encode(packets: &[Packet<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        match p {
            Packet::Flush => out.extend_from_slice(b"0000"),
            Packet::Delim => out.extend_from_slice(b"0001"),
            Packet::ResponseEnd => out.extend_from_slice(b"0002"),
            Packet::Data(d) => {
                out.extend_from_slice(format!("{:04x}", d.len() + 4).as_bytes());
                out.extend_from_slice(d);
            }
        }
    }
    out
}

/// `git_pktline`: the input is an upload-pack request body. What splits
/// into packets encodes back to the same bytes (up to the case of the hex
/// digits) and splits the same way again; a request that parses
/// classifies deterministically, and the plan for it as a `POST` body is
/// well formed.
pub fn pktline(data: &[u8]) {
    if let Ok(pkts) = pktline::packets(data) {
        let again = encode(&pkts);
        assert!(again.eq_ignore_ascii_case(data), "round trip");
        assert_eq!(pktline::packets(&again), Ok(pkts.clone()));
        for p in &pkts {
            if let Packet::Data(d) = p {
                assert!(d.len() + 4 <= MAX_PKT_LEN);
            }
        }
    }
    if let Ok(req) = pktline::parse_request(data) {
        let c = pktline::classify(&req);
        assert_eq!(pktline::classify(&req), c, "deterministic");
        match &c {
            Cacheability::RefList { canonical } | Cacheability::Pack { canonical } => {
                assert!(!canonical.is_empty());
            }
            Cacheability::Bypass { reason } => assert!(!reason.is_empty()),
        }
    }
    let r = remote("git", RemoteMode::PullThrough);
    let d = plan_with(
        &no_cache(),
        &r,
        &request("POST", "o/r.git/git-upload-pack", None, Some(data.to_vec())),
    );
    check_decision(&d, true);
    assert!(
        matches!(d, Decision::Forward(_)),
        "a POST with a body is forwarded"
    );
}

/// `git_request`: the input is a request path (first line) and query
/// (second line), planned as `GET` and as `POST` without a body: every
/// decision is well formed and stays under the remote's root.
pub fn request_path(data: &[u8]) {
    let s = text(data);
    let mut lines = s.split('\n');
    let p = lines.next().unwrap_or("");
    let q = lines.next().and_then(uri_query);
    for m in ["GET", "POST", "HEAD"] {
        let r = remote("git", RemoteMode::PullThrough);
        let d = plan_with(&no_cache(), &r, &request(m, p, q, None));
        check_decision(&d, gateway_clean(p));
    }
    let _ = crate::parse_path(p);
}

#[cfg(test)]
mod tests {
    use super::*;
    use artgate_sdk::fuzz::replay;
    use proptest::prelude::*;

    const DIR: &str = env!("CARGO_MANIFEST_DIR");

    #[test]
    fn corpora_replay() {
        replay(DIR, "git_pktline", 5, pktline);
        replay(DIR, "git_request", 5, request_path);
    }

    fn data_pkt(s: &str) -> Vec<u8> {
        let mut v = format!("{:04x}", s.len() + 5).into_bytes();
        v.extend_from_slice(s.as_bytes());
        v.push(b'\n');
        v
    }

    fn oid() -> impl Strategy<Value = String> {
        "[0-9a-f]{40}"
    }

    /// A v2 fetch: capabilities, then arguments, in the given order.
    fn fetch(caps: &[String], args: &[String]) -> Vec<u8> {
        let mut b = data_pkt("command=fetch");
        for c in caps {
            b.extend(data_pkt(c));
        }
        b.extend_from_slice(b"0001");
        for a in args {
            b.extend(data_pkt(a));
        }
        b.extend_from_slice(b"0000");
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn packets_round_trip(items in prop::collection::vec(prop_oneof![
            Just(None), prop::collection::vec(any::<u8>(), 0..40).prop_map(Some)
        ], 0..10)) {
            let mut buf = Vec::new();
            for i in &items {
                match i {
                    None => buf.extend_from_slice(b"0000"),
                    Some(d) => {
                        buf.extend_from_slice(format!("{:04X}", d.len() + 4).as_bytes());
                        buf.extend_from_slice(d);
                    }
                }
            }
            let pkts = pktline::packets(&buf).unwrap();
            prop_assert_eq!(pkts.len(), items.len());
            pktline(&buf);
        }

        #[test]
        fn argument_order_does_not_change_the_key(
            wants in prop::collection::vec(oid(), 1..5),
            opts in prop::sample::subsequence(vec!["thin-pack", "ofs-delta", "no-progress", "include-tag"], 0..4),
            seed in any::<u64>(),
        ) {
            let mut args: Vec<String> = wants.iter().map(|w| format!("want {w}")).collect();
            args.extend(opts.iter().map(|o| (*o).to_owned()));
            args.push("done".into());
            let caps = vec!["agent=git/2.45".to_owned(), "object-format=sha1".to_owned()];
            let a = pktline::classify(&pktline::parse_request(&fetch(&caps, &args)).unwrap());
            prop_assert!(matches!(a, Cacheability::Pack { .. }), "{:?}", a);
            // Another order, another agent: the same pack.
            let mut shuffled = args.clone();
            let n = shuffled.len();
            shuffled.rotate_left((seed as usize) % n);
            shuffled.reverse();
            let caps2 = vec!["object-format=sha1".to_owned(), "agent=JGit/6".to_owned()];
            let b = pktline::classify(&pktline::parse_request(&fetch(&caps2, &shuffled)).unwrap());
            prop_assert_eq!(&a, &b);
            // A `have` makes it uncacheable.
            args.push(format!("have {}", wants[0]));
            let c = pktline::classify(&pktline::parse_request(&fetch(&caps, &args)).unwrap());
            prop_assert!(matches!(c, Cacheability::Bypass { .. }), "{:?}", c);
        }

        #[test]
        fn mangled_requests_never_panic(wants in prop::collection::vec(oid(), 1..3), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let args: Vec<String> = wants.iter().map(|w| format!("want {w}")).collect();
            let mut b = fetch(&["agent=x".to_owned()], &args);
            let i = at.index(b.len());
            b[i] = byte;
            pktline(&b);
            let end = cut.index(b.len() + 1);
            pktline(&b[..end]);
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            pktline(&b);
        }

        #[test]
        fn paths_never_panic(p in "([a-z]{1,4}|/|\\.git|info/refs|git-upload-pack|git-receive-pack|objects|\\.|é|%)*", q in "(service=git-upload-pack|service=git-receive-pack|[a-z=&%]{0,8})") {
            request_path(format!("{p}\n{q}").as_bytes());
        }
    }
}
