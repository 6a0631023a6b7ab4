//! Fuzz entry point for the alpine adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz target in `fuzz/` calls it, and the test below replays the
//! committed corpus through it on stable. The adapter parses no bodies
//! (nothing is inspected); its input is the request path and query.

use crate::{Kind, content_type, kind, plan};
use artgate_sdk::fuzz::{check_decision, gateway_clean, remote, request, text, uri_query};
use artgate_sdk::prelude::*;

/// `alpine_path`: the input is a request path (first line) and query
/// (second line). Directories are exactly the paths ending in `/` (or
/// empty); every plan is well formed, and for a path the gateway lets
/// through its upstream target stays under the remote's root.
pub fn path(data: &[u8]) {
    let s = text(data);
    let mut lines = s.split('\n');
    let p = lines.next().unwrap_or("");
    let q = lines.next().and_then(uri_query);
    let k = kind(p);
    assert_eq!(k == Kind::Directory, path::is_dir(p), "{p:?}");
    assert_eq!(content_type(p, k).is_none(), k == Kind::Directory);
    for method in ["GET", "HEAD", "DELETE"] {
        let r = remote("alpine", RemoteMode::PullThrough);
        let d = plan(&r, &request(method, p, q, None));
        check_decision(&d, gateway_clean(p));
        if method != "DELETE"
            && gateway_clean(p)
            && let Decision::Forward(f) = &d
        {
            let target = f.upstream.target.split('?').next().unwrap_or("");
            assert_eq!(http::percent_decode(target), format!("/{p}"));
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
        replay(env!("CARGO_MANIFEST_DIR"), "alpine_path", 5, path);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn path_never_panics(p in "([a-z0-9]{1,4}|/|\\.|APKINDEX\\.tar\\.gz|\\.SIGN\\.RSA\\.x|\\.apk|\\.APK|latest|MIRRORS\\.txt|é|;| |%|#|\\?)*", q in "[a-z=&%?#]{0,10}") {
            path(format!("{p}\n{q}").as_bytes());
        }

        #[test]
        fn path_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..100)) {
            path(&b);
        }
    }
}
