//! Fuzz entry point for the deb adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz target `deb_release` in `fuzz/` calls it, and the tests
//! below replay the committed corpus through it on stable.

use crate::state::{Form, want};
use crate::{inspect_with, plan_with, release};
use artgate_sdk::fuzz::{check_decision, gateway_clean, remote, request};
use artgate_sdk::prelude::*;
use artgate_sdk::testing::FakeHost;

/// The release directory the input is fetched as the `InRelease` of.
const DIR: &str = "debian/dists/stable";

/// The Release of [`DIR`] seen before the input (reprepro's).
const SEEN: &[u8] = include_bytes!("../testdata/reprepro-InRelease");

/// Most listed files planned per input (planning is linear; more only
/// slows the fuzzer down).
const MAX_PLANNED: usize = 64;

/// The SDK's checks of a decision; the forward, if it is one.
fn check(d: &Decision, clean: bool) -> Option<Forward> {
    check_decision(d, clean);
    match d {
        Decision::Forward(f) => Some(f.clone()),
        _ => None,
    }
}

/// `deb_release`: the input is an `InRelease` from an upstream. The parser
/// never panics and keeps only plain relative paths with digests of the
/// right length; the adapter refuses the body with 502 exactly when it
/// does not parse (and then changes nothing); it expires only entries of
/// the suite's files; every prefetch it asks for (with every listed file
/// wanted both ways) is a clean path inside the suite that plans to a
/// verified entry, the one a client's request for that path fills; every
/// listed file plans to a well-formed decision keyed inside the suite,
/// whatever the upstream wrote.
pub fn release(data: &[u8]) {
    let data = &data[..data.len().min(artgate_sdk::fuzz::MAX_INPUT)];
    let parsed = release::parse(data);
    if let Ok(r) = &parsed {
        for (path, listed) in &r.files {
            assert!(release::is_plain_relative(path), "{path:?}");
            assert!(gateway_clean(path), "{path:?}");
            for (algo, hex) in &listed.hashes {
                assert!(algo.is_digest(hex) && hex.to_ascii_lowercase() == *hex);
            }
        }
    }
    let host = FakeHost::new();
    let r = remote("deb", RemoteMode::PullThrough);
    let inrelease = request("GET", &format!("{DIR}/InRelease"), None, None);
    // A Release seen before, every file of it asked for by name, and every
    // file of the input asked for both ways.
    let before = inspect_with(&host, &r, &inrelease, SEEN);
    assert!(before.fail.is_none());
    for p in release::parse(SEEN)
        .map(|r| r.files)
        .unwrap_or_default()
        .keys()
    {
        want(&host, DIR, p, Form::Name);
    }
    if let Ok(rel) = &parsed {
        for p in rel.files.keys().take(MAX_PLANNED) {
            want(&host, DIR, p, Form::Name);
            want(&host, DIR, p, Form::ByHash);
        }
    }
    host.next_request();
    let v = inspect_with(&host, &r, &inrelease, data);
    let rel = match (parsed, v.fail) {
        (Err(_), Some(fail)) => {
            assert_eq!(fail.status, 502, "{}", fail.message);
            assert!(v.prefetch.is_empty());
            assert!(host.calls().is_empty(), "a refused Release changes nothing");
            return;
        }
        (Ok(rel), None) => rel,
        (parsed, fail) => panic!("the verdict {fail:?} disagrees with the parser: {parsed:?}"),
    };
    assert!(v.replace.is_none() && v.references.is_empty());
    // Only entries of the suite's files asked for by name are expired.
    for key in host.expired() {
        assert!(
            key.starts_with(&format!("/{DIR}/")) && key.contains('@'),
            "expired {key:?}"
        );
    }
    for p in &v.prefetch {
        assert!(gateway_clean(p), "prefetch {p:?}");
        assert!(p.starts_with(&format!("{DIR}/")), "prefetch {p:?}");
        let d = plan_with(&host, &r, &request("GET", p, None, None));
        let f = check(&d, true).unwrap_or_else(|| panic!("prefetch {p:?}: {d:?}"));
        assert!(f.plan.expected_digest.is_some(), "prefetch {p:?}");
        // It fills the entry a client's request for the same path does: a
        // by-hash name its own, immutable; a name the one keyed by the
        // name and the digest.
        if matches!(crate::layout::kind(p), crate::layout::Kind::ByHash { .. }) {
            assert_eq!(&f.plan.key, p);
            assert_eq!(f.plan.class, CacheClass::Immutable, "prefetch {p:?}");
        } else {
            assert!(
                f.plan.key.starts_with(&format!("/{p}@")),
                "{:?}",
                f.plan.key
            );
            assert_eq!(f.plan.class, CacheClass::Mutable, "prefetch {p:?}");
        }
    }
    for path in rel.files.keys().take(MAX_PLANNED) {
        let full = format!("{DIR}/{path}");
        let d = plan_with(&host, &r, &request("GET", &full, None, None));
        if let Some(f) = check(&d, gateway_clean(&full)) {
            assert!(
                f.plan.key.starts_with(&format!("{DIR}/"))
                    || f.plan.key.starts_with(&format!("/{DIR}/")),
                "{:?}",
                f.plan.key
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artgate_sdk::fuzz::replay;
    use proptest::prelude::*;

    #[test]
    fn corpus_replays() {
        replay(env!("CARGO_MANIFEST_DIR"), "deb_release", 6, release);
    }

    #[test]
    fn the_test_data_passes() {
        for body in [
            &include_bytes!("../testdata/reprepro-InRelease")[..],
            include_bytes!("../testdata/apt-ftparchive-Release"),
            include_bytes!("../testdata/apt-ftparchive-InRelease"),
        ] {
            release(body);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn releases_never_escape(
            parts in prop::collection::vec(
                "(Suite: s\n|Acquire-By-Hash: yes\n|SHA256:\n|SHA512:\n|SHA1:\n|MD5Sum:\n| [0-9a-f]{64} 1 [a-z./;-]{1,8}(/[a-z./;-]{1,8}){0,3}\n| [0-9a-f]{40} 2 main/binary-amd64/Packages\n| [0-9a-f]{128} 3 main/by-hash/x\n| [0-9a-f]{32} 4 InRelease\n|\n)",
                0..24,
            )
        ) {
            release(parts.concat().as_bytes());
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
            release(&b);
        }
    }
}
