//! A small, forgiving scanner for `repodata/repomd.xml`: it finds the
//! `<location href="..."/>` of every `<data type="...">` entry.
//!
//! It is not a validating XML parser and does not need to be: repomd.xml is
//! a flat, machine-written document. The scanner skips comments, CDATA
//! sections, processing instructions and declarations, honours both quote
//! styles and any whitespace in tags, ignores namespace prefixes on element
//! names (`<repo:data>` is `data`), decodes the five predefined entities and
//! character references in attribute values, and never panics on malformed
//! input (it returns what it could read).

use artgate_sdk::markup;

/// One `<data>` entry of a repomd.xml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataEntry {
    /// The `type` attribute of `<data>` (`primary`, `filelists`,
    /// `primary_db`, ...); empty when absent.
    pub kind: String,
    /// The `href` attribute of its `<location>`, entities decoded.
    pub href: String,
    /// The `xml:base` attribute of its `<location>`, if any (metadata
    /// stored under another base URL).
    pub base: Option<String>,
}

/// The `<data>` entries of a repomd.xml document, in document order.
/// Entries without a `<location href>` are left out.
pub fn data_entries(xml: &[u8]) -> Vec<DataEntry> {
    let text = String::from_utf8_lossy(xml);
    let s = text.as_ref();
    let mut out = Vec::new();
    // The entry being read (`href` stays empty until its location is seen).
    let mut current: Option<DataEntry> = None;
    let mut pos = 0;
    while let Some(off) = s[pos..].find('<') {
        let start = pos + off;
        let rest = &s[start..];
        let skip_to = |end: &str| rest.find(end).map(|i| start + i + end.len());
        let next = if rest.starts_with("<!--") {
            skip_to("-->")
        } else if rest.starts_with("<![CDATA[") {
            skip_to("]]>")
        } else if rest.starts_with("<?") {
            skip_to("?>")
        } else if rest.starts_with("<!") {
            skip_to(">")
        } else if let Some(tag) = rest.strip_prefix("</") {
            let end = tag.find('>');
            if let Some(e) = end
                && local_name(tag[..e].trim()) == "data"
                && let Some(entry) = current.take()
                && !entry.href.is_empty()
            {
                out.push(entry);
            }
            end.map(|e| start + 2 + e + 1)
        } else {
            match tag_end(rest) {
                None => None,
                Some(e) => {
                    let inner = &rest[1..e];
                    let self_closing = inner.ends_with('/');
                    let inner = inner.strip_suffix('/').unwrap_or(inner);
                    let name_end = inner
                        .find(|c: char| c.is_ascii_whitespace())
                        .unwrap_or(inner.len());
                    let name = local_name(&inner[..name_end]);
                    let attrs = attributes(&inner[name_end..]);
                    match name {
                        "data" if !self_closing => {
                            current = Some(DataEntry {
                                kind: attr(&attrs, "type").unwrap_or_default(),
                                href: String::new(),
                                base: None,
                            });
                        }
                        "location" => {
                            if let (Some(entry), Some(href)) =
                                (current.as_mut(), attr(&attrs, "href"))
                            {
                                entry.href = href;
                                entry.base = attr(&attrs, "xml:base");
                            }
                        }
                        _ => {}
                    }
                    Some(start + e + 1)
                }
            }
        };
        match next {
            Some(n) => pos = n,
            None => break,
        }
    }
    out
}

/// The index of the `>` that ends the tag starting at `tag[0] == '<'`,
/// skipping `>` inside quoted attribute values.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in tag.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// An element name without its namespace prefix.
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// The attributes of a start tag (the text after its name), values decoded.
/// Names are kept as written (`xml:base` keeps its prefix).
fn attributes(s: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(close) = after[1..].find(q) else {
            break;
        };
        out.push((name, markup::decode_entities(&after[1..1 + close])));
        rest = &after[1 + close + 1..];
    }
    out
}

/// The value of the attribute `name` (exact) or, for unprefixed names, of a
/// prefixed attribute with that local name.
fn attr(attrs: &[(&str, String)], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| {
            (!name.contains(':'))
                .then(|| attrs.iter().find(|(n, _)| local_name(n) == name))
                .flatten()
        })
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repomd.xml as createrepo_c 0.17 writes it (shortened).
    const CREATEREPO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1795309340</revision>
  <data type="primary">
    <checksum type="sha256">5a36351b123ac54f25fa318609e06b677af2b9e18b85971d0772245dd53027f8</checksum>
    <open-checksum type="sha256">01e81b950e55820265499cc14030f719240d2e9cc67110715be9b97b1761cb0d</open-checksum>
    <location href="repodata/5a36351b123ac54f25fa318609e06b677af2b9e18b85971d0772245dd53027f8-primary.xml.gz"/>
    <timestamp>1795309340</timestamp>
    <size>540</size>
  </data>
  <data type="filelists">
    <checksum type="sha256">27a6a5a4ad9a5c2c242e905fbb74f9696efe1f0acbb3694af37da430a9eaebba</checksum>
    <location href="repodata/27a6a5a4ad9a5c2c242e905fbb74f9696efe1f0acbb3694af37da430a9eaebba-filelists.xml.gz"/>
  </data>
  <data type="primary_db">
    <location href="repodata/eaf88bbd2b4355c375499dc0fb0a61e85f5a6bbac59b569ea1e0b255c1f8349c-primary.sqlite.bz2"/>
    <database_version>10</database_version>
  </data>
</repomd>
"#;

    fn hrefs(xml: &str) -> Vec<(String, String)> {
        data_entries(xml.as_bytes())
            .into_iter()
            .map(|e| (e.kind, e.href))
            .collect()
    }

    #[test]
    fn createrepo_output() {
        let got = hrefs(CREATEREPO);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "primary");
        assert_eq!(
            got[0].1,
            "repodata/5a36351b123ac54f25fa318609e06b677af2b9e18b85971d0772245dd53027f8-primary.xml.gz"
        );
        assert_eq!(got[1].0, "filelists");
        assert_eq!(got[2].0, "primary_db");
        assert!(data_entries(CREATEREPO.as_bytes())[0].base.is_none());
    }

    #[test]
    fn quirks_of_real_documents() {
        let xml = r#"<?xml version='1.0'?>
<!DOCTYPE repomd>
<!-- <data type="commented"><location href="no"/></data> -->
<repo:repomd xmlns:repo="http://linux.duke.edu/metadata/repo">
  <repo:data   type = 'group' >
    <![CDATA[ <location href="cdata"/> ]]>
    <repo:location
        xml:base="http://other.example/base/"
        href='repodata/comps&amp;more &#x41;&#66;.xml' />
  </repo:data>
  <data type="updateinfo"><location href="repodata/u.xml.zst" /></data>
  <data type="no-location"><checksum>1</checksum></data>
  <data type="gt"><location note="a > b" href="repodata/g.xml"/></data>
</repo:repomd>"#;
        let got = data_entries(xml.as_bytes());
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].kind, "group");
        assert_eq!(got[0].href, "repodata/comps&more AB.xml");
        assert_eq!(got[0].base.as_deref(), Some("http://other.example/base/"));
        assert_eq!(got[1].href, "repodata/u.xml.zst");
        assert_eq!(got[2].href, "repodata/g.xml");
    }

    #[test]
    fn garbage_and_truncation_do_not_panic() {
        for xml in [
            "",
            "<",
            "<data",
            "<data type=\"x\"><location href=\"a",
            "<data type=\"x\"><location href=\"a\"/>",
            "</data>",
            "<!--",
            "&amp;<data type='&#xZZ;'><location href='&bogus;&#99999999;&'/></data>",
            "\u{feff}<ü><data type='ü'><location href='ü/ü'/></data>",
        ] {
            let _ = data_entries(xml.as_bytes());
        }
        let got = data_entries(b"<data type='&#xZZ;'><location href='&bogus;&'/></data>");
        assert_eq!(got[0].kind, "&#xZZ;");
        assert_eq!(got[0].href, "&bogus;&");
        assert_eq!(data_entries(&[0xff, 0xfe, b'<']), vec![]);
    }
}
