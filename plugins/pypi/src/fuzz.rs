//! Fuzz entry point for the pypi adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz target in `fuzz/` calls it, and the tests below replay the
//! committed corpus through it on stable.

use crate::html::anchors;
use crate::inspect_with;
use artgate_sdk::fuzz::{remote, request};
use artgate_sdk::prelude::*;
use artgate_sdk::testing::FakeHost;
use serde_json::Value;

/// `pypi_page`: the input is a project page from an upstream, read as
/// HTML and as PEP 691 JSON. A page the gateway serves links only back
/// through the gateway (`../../files/{project}/...`): no anchor of the
/// HTML it writes, read again with the same tokenizer, and no JSON file
/// URL points anywhere else, whatever the upstream wrote.
pub fn page(data: &[u8]) {
    for content_type in ["text/html", "application/vnd.pypi.simple.v1+json"] {
        let host = FakeHost::new();
        let mut r = remote("pypi", RemoteMode::PullThrough);
        r.upstreams = vec!["https://index.example/pypi".into()];
        let v = inspect_with(
            &host,
            &r,
            &request("GET", "simple/demo/", None, None),
            &UpstreamResponse::test(200, &[("content-type", content_type)]),
            data.to_vec(),
        );
        if let Some(fail) = v.fail {
            assert_eq!(fail.status, 502, "{}", fail.message);
            continue;
        }
        let out = v.replace.expect("a page that is not refused is rewritten");
        if content_type == "text/html" {
            let text = String::from_utf8(out).expect("the rewrite is UTF-8");
            for a in anchors(&text) {
                let href = a.attr("href").unwrap_or_default();
                assert!(
                    href.starts_with("../../files/demo/"),
                    "a rewritten link leaves the gateway: {href:?}"
                );
            }
        } else {
            let doc: Value = serde_json::from_slice(&out).expect("the rewrite is JSON");
            for f in doc["files"].as_array().into_iter().flatten() {
                let url = f["url"].as_str().unwrap_or_default();
                assert!(
                    url.starts_with("../../files/demo/"),
                    "a rewritten file URL leaves the gateway: {url:?}"
                );
            }
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
        replay(env!("CARGO_MANIFEST_DIR"), "pypi_page", 5, page);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn pages_never_leak(
            parts in prop::collection::vec(
                "(<a |<A |href=|HREF=|\"|'|>|</a>|<base href=x>|<!--|-->|https://evil/x|//evil/y|javascript:z|\\.\\./\\.\\./|&quot;|&#104;|#sha256=ab| |\\{\"files\":\\[\\{\"url\":|\\}\\]\\})",
                0..40,
            )
        ) {
            page(parts.concat().as_bytes());
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            page(&b);
        }
    }
}
