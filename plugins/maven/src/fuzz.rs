//! Fuzz entry point for the maven adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz target in `fuzz/` calls it, and the tests below replay the
//! committed corpus through it on stable.

use crate::metadata;
use crate::mirror;
use artgate_sdk::fuzz::request;

/// `maven_metadata`: the input is a `maven-metadata.xml` from an upstream
/// or a client. The mirror either refuses it with a 502 or keeps it; a
/// document that parses is written back as one that parses again into the
/// same lists (what the hosted side stores and serves).
pub fn metadata(data: &[u8]) {
    let verdict = mirror::inspect(
        &request("GET", "org/example/lib/maven-metadata.xml", None, None),
        data,
    );
    let parsed = metadata::parse(data);
    match (&verdict.fail, &parsed) {
        (Some(fail), Err(_)) => assert_eq!(fail.status, 502, "{}", fail.message),
        (None, Ok(_)) => {}
        (fail, parsed) => panic!("inspect said {fail:?} of a document parsed as {parsed:?}"),
    }
    if let Ok(m) = parsed {
        let again = metadata::parse(m.render().as_bytes())
            .unwrap_or_else(|e| panic!("the written document does not parse: {e}"));
        assert_eq!(again.versions.len(), m.versions.len());
        assert_eq!(again.snapshot_versions.len(), m.snapshot_versions.len());
        assert_eq!(again.plugins.len(), m.plugins.len());
        assert_eq!(again.snapshot.is_some(), m.snapshot.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artgate_sdk::fuzz::replay;
    use proptest::prelude::*;

    #[test]
    fn corpus_replays() {
        replay(env!("CARGO_MANIFEST_DIR"), "maven_metadata", 3, metadata);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn documents_never_panic(
            parts in prop::collection::vec(
                "(<metadata>|</metadata>|<versioning>|</versioning>|<versions>|</versions>|<version>|</version>|<snapshot>|</snapshot>|<timestamp>|<buildNumber>|<plugins>|<plugin>|</plugin>|<prefix>|1\\.0|-SNAPSHOT|&amp;|&#13;|&#x1;| |<!-- x -->|<!DOCTYPE metadata>|<?xml version=\"1.0\"?>)",
                0..40,
            )
        ) {
            metadata(parts.concat().as_bytes());
        }

        #[test]
        fn bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            metadata(&b);
        }
    }
}
