//! The page rewriting as it was before it was made fast (a tree of
//! owned values for JSON, an allocation per attribute for HTML): the
//! reference the rewriting is compared with, byte for byte.

// The URL join did not change; the reference uses the adapter's own.
use crate::{Page, join};
use artgate_sdk::markup;
use artgate_sdk::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// A link as the gateway serves it, and the path after
/// `files/{project}/` it names; `None` for a link that is not a file
/// on an http(s) host.
pub(super) fn relink(this: &Page, url: &str) -> Option<(String, String)> {
    let absolute = join(&this.url, url);
    let rel = if !this.first_base.is_empty() && absolute.starts_with(&this.first_base) {
        let rest = absolute[this.first_base.len()..]
            .split(['?', '#'])
            .next()
            .unwrap_or("");
        format!("r/{}", http::percent_decode(rest))
    } else {
        let (scheme, rest) = absolute.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https") {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit('@').next().unwrap_or(authority);
        if host.is_empty() {
            return None;
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        format!(
            "u/{scheme}/{}/{}",
            host.to_ascii_lowercase(),
            http::percent_decode(path)
        )
    };
    Some((format!("{}{}", this.prefix, http::encode_path(&rel)), rel))
}

/// A clean PEP 503 page of the page's file links: each anchor read
/// with an HTML tokenizer's rules for start tags ([`anchors`]), its
/// `href` through the gateway, its PEP 503/592/658/714 attributes kept,
/// everything escaped again. Anything else of the upstream's page (a
/// `<base>`, scripts, links the gateway cannot serve) is left out, so
/// a client following the page can only reach the gateway. The sha256
/// of each link.
pub(super) fn rewrite_html(
    this: &Page,
    project: &str,
    text: &str,
) -> (String, BTreeMap<String, String>) {
    const KEPT: [&str; 5] = [
        "data-requires-python",
        "data-yanked",
        "data-core-metadata",
        "data-dist-info-metadata",
        "data-gpg-sig",
    ];
    let mut digests = BTreeMap::new();
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {p}</title></head>\n<body>\n<h1>Links for {p}</h1>\n",
        p = markup::escape(project)
    );
    for anchor in anchors(text) {
        let Some(href) = anchor.attr("href") else {
            continue;
        };
        let (url, fragment) = href.split_once('#').unwrap_or((href, ""));
        let Some((link, rel)) = relink(this, url) else {
            continue;
        };
        if let Some(d) = sha256_of(fragment) {
            digests.insert(rel.clone(), d);
        }
        let metadata = anchor
            .attr("data-core-metadata")
            .or_else(|| anchor.attr("data-dist-info-metadata"));
        if let Some(d) = metadata.and_then(sha256_of) {
            digests.insert(format!("{rel}.metadata"), d);
        }
        let mut new = link;
        if !fragment.is_empty() {
            new.push('#');
            new.push_str(fragment);
        }
        out.push_str(&format!("<a href=\"{}\"", markup::escape(&new)));
        for name in KEPT {
            if let Some(v) = anchor.attr(name) {
                out.push_str(&format!(" {name}=\"{}\"", markup::escape(v)));
            }
        }
        out.push_str(&format!(">{}</a><br>\n", markup::escape(&anchor.text)));
    }
    out.push_str("</body>\n</html>\n");
    (out, digests)
}

/// Every file's `url` through the gateway; the sha256 of each (PEP 691).
pub(super) fn rewrite_json(
    this: &Page,
    body: &[u8],
) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let mut digests = BTreeMap::new();
    let files = doc.get_mut("files")?.as_array_mut()?;
    // A file the gateway cannot serve is left out, never linked to
    // where it is.
    files.retain(|f| {
        f.get("url")
            .and_then(Value::as_str)
            .is_some_and(|u| relink(this, u.split('#').next().unwrap_or(u)).is_some())
    });
    for f in files.iter_mut() {
        let Some(url) = f.get("url").and_then(Value::as_str) else {
            continue;
        };
        let url = url.split('#').next().unwrap_or(url);
        let Some((link, rel)) = relink(this, url) else {
            continue;
        };
        let sha = |v: Option<&Value>| {
            v.and_then(|h| h.get("sha256"))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .filter(|h| Digest::from_hex(h).is_ok())
        };
        if let Some(d) = sha(f.get("hashes")) {
            digests.insert(rel.clone(), d);
        }
        let meta = f
            .get("core-metadata")
            .or_else(|| f.get("dist-info-metadata"));
        if let Some(d) = sha(meta) {
            digests.insert(format!("{rel}.metadata"), d);
        }
        f["url"] = Value::String(link);
    }
    Some((serde_json::to_vec(&doc).ok()?, digests))
}

/// One `<a>` element of a page: its attributes (names in lower case,
/// values with their character references decoded, the first of a name
/// counting) and its text.
struct Anchor {
    attrs: Vec<(String, String)>,
    text: String,
}

impl Anchor {
    /// The value of attribute `name`.
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `<a>` elements of `html`, read as an HTML tokenizer reads start
/// tags: attribute values double-quoted, single-quoted or unquoted, a `>`
/// inside quotes not ending the tag; comments skipped.
fn anchors(html: &str) -> Vec<Anchor> {
    let b = html.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(off) = html.get(i..).and_then(|rest| rest.find('<')) {
        i += off + 1;
        if html[i..].starts_with("!--") {
            i = html[i..].find("-->").map_or(b.len(), |e| i + e + 3);
            continue;
        }
        let is_a = b.get(i).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/');
        if !is_a {
            continue;
        }
        i += 1;
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i = (i + 1).min(b.len());
                break;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !b"=>/".contains(&b[i]) {
                i += 1;
            }
            let name = html[start..i].to_ascii_lowercase();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if b.get(i) == Some(&b'=') {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                let (v_start, v_end) = match b.get(i) {
                    Some(q @ (b'"' | b'\'')) => {
                        let end = html[i + 1..]
                            .find(*q as char)
                            .map_or(b.len(), |e| i + 1 + e);
                        let span = (i + 1, end);
                        i = (end + 1).min(b.len());
                        span
                    }
                    _ => {
                        let start = i;
                        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                            i += 1;
                        }
                        (start, i)
                    }
                };
                value = markup::decode_entities(&html[v_start..v_end]);
            }
            if !name.is_empty() && !attrs.iter().any(|(n, _)| *n == name) {
                attrs.push((name, value));
            }
        }
        let rest = &html[i.min(b.len())..];
        let end = close_a(rest);
        let text = markup::decode_entities(&strip_tags(&rest[..end]))
            .trim()
            .to_owned();
        found.push(Anchor { attrs, text });
    }
    found
}

/// Where the text of an anchor ends in `rest`: its `</a>`, the next
/// tag that opens another anchor, or the end.
fn close_a(rest: &str) -> usize {
    let b = rest.as_bytes();
    let mut j = 0;
    while let Some(off) = rest[j..].find('<') {
        j += off;
        let tag = |k: usize| b.get(j + k).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'));
        let ends = |k: usize| {
            b.get(j + k)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        };
        if (b.get(j + 1) == Some(&b'/') && tag(2) && ends(3)) || (tag(1) && ends(2)) {
            return j;
        }
        j += 1;
    }
    b.len()
}

/// `s` without anything between `<` and `>`.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// `sha256=<hex>` → the hex digest.
fn sha256_of(spec: &str) -> Option<String> {
    let (algo, value) = spec.split_once('=')?;
    let value = value.trim().to_ascii_lowercase();
    (algo.trim().eq_ignore_ascii_case("sha256") && Digest::from_hex(&value).is_ok())
        .then_some(value)
}
