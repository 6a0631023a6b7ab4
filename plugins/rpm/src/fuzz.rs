//! Fuzz entry points for the rpm adapter (see `artgate_sdk::fuzz`): the
//! cargo-fuzz targets in `fuzz/` call these, and the tests below replay the
//! committed corpora through them on stable.

use crate::{looks_like_repomd, plan, prefetches, repomd, resolve};
use artgate_sdk::fuzz::{check_decision, gateway_clean, remote, request, text, uri_query};
use artgate_sdk::prelude::*;

/// A path the gateway would accept: no dot segments, not absolute, no
/// backslash, `?`, `#` or control characters.
fn stays_inside(p: &str) {
    assert!(!p.is_empty() && !p.starts_with('/'), "{p:?}");
    assert!(
        p.split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
        "{p:?} leaves the remote"
    );
    assert!(
        !p.chars()
            .any(|c| c.is_control() || matches!(c, '\\' | '?' | '#')),
        "{p:?}"
    );
}

/// `rpm_repomd`: the input is a `repomd.xml`. Every `<data>` entry found
/// has a location; every prefetch path (and every location resolved
/// against any root) is a plain remote-relative file path that never
/// leaves the remote, whatever the XML says.
pub fn repomd(data: &[u8]) {
    let _ = looks_like_repomd(data);
    let entries = repomd::data_entries(data);
    for e in &entries {
        assert!(!e.href.is_empty());
        for root in ["", "9/BaseOS/x86_64/os/", "a/"] {
            if let Some(p) = resolve(root, &e.href) {
                stays_inside(&p);
            }
        }
    }
    for option in [None, Some("all"), Some("primary,filelists")] {
        let mut r = remote("rpm", RemoteMode::PullThrough);
        if let Some(o) = option {
            r.options.push(("prefetch".into(), o.into()));
        }
        let paths = prefetches(&r, "9/BaseOS/x86_64/os/repodata/repomd.xml", data);
        assert!(paths.len() <= entries.len());
        for p in &paths {
            stays_inside(p);
        }
    }
}

/// `rpm_path`: the input is a request path (first line) and query (second
/// line). The plan is well formed, and for a path the gateway lets through
/// its upstream target stays under the remote's root.
pub fn path(data: &[u8]) {
    let s = text(data);
    let mut lines = s.split('\n');
    let p = lines.next().unwrap_or("");
    let q = lines.next().and_then(uri_query);
    for method in ["GET", "HEAD", "PUT"] {
        let r = remote("rpm", RemoteMode::PullThrough);
        let d = plan(&r, &request(method, p, q, None));
        check_decision(&d, gateway_clean(p));
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
        replay(DIR, "rpm_repomd", 5, repomd);
        replay(DIR, "rpm_path", 5, path);
    }

    /// Pieces of repomd.xml documents, hostile ones included.
    fn xml() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "<repomd>",
            "</repomd>",
            "<data type=\"primary\">",
            "<data type='other_db'>",
            "</data>",
            "<repo:data type=\"filelists\">",
            "</repo:data>",
            "<location href=\"",
            "\"/>",
            "<location xml:base=\"http://x/\" href='",
            "'/>",
            "repodata/abc-primary.xml.gz",
            "../",
            "../../",
            "..",
            "/",
            "/etc/passwd",
            "http://evil/",
            "&amp;",
            "&#47;",
            "&#x2e;",
            "&#46;&#46;/",
            "&#x0;",
            "&#99999999;",
            "&",
            ";",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<?xml?>",
            "<!DOCTYPE x>",
            ">",
            "<",
            "\"",
            "'",
            " ",
            "\n",
            "é",
            "a%2e%2e/",
            "?q",
            "#f",
            "\\",
            "<data>",
            "<location/>",
        ]);
        prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn repomd_never_panics_nor_escapes(x in xml()) {
            repomd(x.as_bytes());
        }

        #[test]
        fn repomd_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
            repomd(&b);
        }

        #[test]
        fn listed_locations_are_found(hrefs in prop::collection::vec("[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}\\.xml\\.gz", 0..6)) {
            let mut doc = String::from("<?xml version=\"1.0\"?>\n<repomd xmlns=\"x\">\n");
            for (i, h) in hrefs.iter().enumerate() {
                doc.push_str(&format!("<data type=\"t{i}\"><checksum>0</checksum><location href=\"{h}\"/></data>\n"));
            }
            doc.push_str("</repomd>\n");
            let found: Vec<String> = repomd::data_entries(doc.as_bytes()).into_iter().map(|e| e.href).collect();
            prop_assert_eq!(found, hrefs);
        }

        #[test]
        fn resolve_never_escapes(root in "([a-z]{1,3}/){0,3}", href in "([a-z]{1,3}|\\.|\\.\\.|/|%2e|;|é){0,12}") {
            if let Some(p) = resolve(&root, &href) {
                stays_inside(&p);
            }
        }

        #[test]
        fn path_never_panics(p in "([a-z0-9]{1,4}|/|\\.|repodata|repomd\\.xml|\\.rpm|metalink|[0-9a-f]{64}-primary\\.xml\\.gz|é|;|%)*", q in "[a-z=&%]{0,10}") {
            path(format!("{p}\n{q}").as_bytes());
        }
    }
}
