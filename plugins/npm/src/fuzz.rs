//! Fuzz entry point for the npm adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz target in `fuzz/` calls it, and the tests below replay the
//! committed corpus through it on stable.

use crate::inspect_with;
use artgate_sdk::fuzz::{remote, request};
use artgate_sdk::prelude::*;
use artgate_sdk::testing::FakeHost;
use serde_json::Value;

/// The gateway URL the rewrites name.
const GW: &str = "http://gw.example:8080";

/// `npm_packument`: the input is a packument from an upstream. It is
/// refused with 502, or rewritten to JSON in which every
/// `versions.*.dist.tarball` is at the gateway or emptied: no client
/// following it can be sent past the gateway, whatever the upstream wrote.
pub fn packument(data: &[u8]) {
    let host = FakeHost::new();
    host.with_gateway_url(GW);
    let mut r = remote("npm", RemoteMode::PullThrough);
    r.upstreams = vec!["https://registry.example/npm".into()];
    let v = inspect_with(
        &host,
        &r,
        &request("GET", "@scope/pkg", None, None),
        &UpstreamResponse::test(200, &[("content-type", "application/json")]),
        data.to_vec(),
    );
    if let Some(fail) = v.fail {
        assert_eq!(fail.status, 502, "{}", fail.message);
        assert!(v.replace.is_none());
        return;
    }
    let out = v
        .replace
        .expect("a packument that is not refused is rewritten");
    let doc: Value = serde_json::from_slice(&out).expect("the rewrite is JSON");
    let Some(versions) = doc.get("versions").and_then(Value::as_object) else {
        return;
    };
    let prefix = format!("{GW}/api/v1/remote/fuzz/");
    for (version, m) in versions {
        if let Some(t) = m
            .get("dist")
            .and_then(|d| d.get("tarball"))
            .and_then(Value::as_str)
        {
            assert!(
                t.is_empty() || t.starts_with(&prefix),
                "version {version}: tarball {t:?} is not at the gateway"
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
        replay(env!("CARGO_MANIFEST_DIR"), "npm_packument", 5, packument);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn packuments_never_leak(
            parts in prop::collection::vec(
                "(\\{|\\}|\\[|\\]|,|:|\"versions\"|\"dist\"|\"tarball\"|\"tarb\\\\u0061ll\"|\"https://evil\"|\"1.0.0\"|\"integrity\"|null|1| )",
                0..40,
            )
        ) {
            packument(parts.concat().as_bytes());
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            packument(&b);
        }
    }
}
