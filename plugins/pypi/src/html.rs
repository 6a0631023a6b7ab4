//! PEP 503 HTML pages: the anchors of an upstream's page, read as an HTML
//! tokenizer reads start tags, and the clean page written from them.
//!
//! One pass over the page: the tokenizer hands out slices of it (values
//! decoded only when they hold a character reference), and the new page
//! is written into one buffer, so a page of thousands of links costs no
//! allocation per link beyond its digest's entry.

use crate::{Digests, Page};
use artgate_sdk::http;
use artgate_sdk::markup;
use std::borrow::Cow;

/// The attributes of an anchor the adapter reads: `href` and the ones it
/// keeps ([`KEPT`]).
const NAMES: [&str; 6] = [
    "href",
    "data-requires-python",
    "data-yanked",
    "data-core-metadata",
    "data-dist-info-metadata",
    "data-gpg-sig",
];

/// The PEP 503/592/658/714 attributes written again, in this order: the
/// entries of [`NAMES`] after `href`.
const KEPT: std::ops::Range<usize> = 1..NAMES.len();

/// One `<a>` start tag of a page and the text after it, as slices of the
/// page.
pub(crate) struct Anchor<'a> {
    /// The raw (undecoded) value of each of [`NAMES`], the first of a name
    /// counting; `""` for an attribute without a value.
    values: [Option<&'a str>; NAMES.len()],
    /// The raw text up to the anchor's end ([`close_a`]), tags and
    /// character references still in it.
    text: &'a str,
}

impl<'a> Anchor<'a> {
    /// The value of attribute `name` (one of [`NAMES`]), character
    /// references decoded.
    pub(crate) fn attr(&self, name: &str) -> Option<Cow<'a, str>> {
        let i = NAMES.iter().position(|n| *n == name)?;
        self.values.get(i).copied().flatten().map(decode)
    }

    /// Appends the anchor's text, escaped: tags left out, character
    /// references decoded, trimmed.
    fn write_text(&self, out: &mut String) {
        if is_plain(self.text) {
            out.push_str(self.text.trim());
        } else {
            let text = markup::decode_entities(&strip_tags(self.text));
            escape_into(out, text.trim());
        }
    }
}

/// Whether `s` has none of `& " ' < >`: no character reference to
/// decode, no tag, nothing to escape.
fn is_plain(s: &str) -> bool {
    !s.bytes()
        .any(|b| matches!(b, b'&' | b'"' | b'\'' | b'<' | b'>'))
}

/// Appends the raw attribute value `v` with its character references
/// decoded ([`markup::decode_entities`]) and escaped again, as
/// `escape(decode_entities(v))` but without building either.
fn write_value(out: &mut String, v: &str) {
    if is_plain(v) {
        out.push_str(v);
        return;
    }
    let mut rest = v;
    while let Some(i) = rest.find('&') {
        let (plain, tail) = rest.split_at(i);
        escape_into(out, plain);
        let decoded = tail.find(';').and_then(|semi| {
            let c = markup::entity(tail.get(1..semi)?)?;
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                escape_into(out, c.encode_utf8(&mut [0; 4]));
                rest = tail.get(len..).unwrap_or_default();
            }
            None => {
                out.push_str("&amp;");
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    escape_into(out, rest);
}

/// Where the bytes of `b` from `i` on for which `keep` holds end.
fn skip(b: &[u8], i: usize, keep: impl Fn(u8) -> bool) -> usize {
    let rest = b.get(i..).unwrap_or_default();
    i + rest.iter().position(|&c| !keep(c)).unwrap_or(rest.len())
}

/// `s` with its character references decoded, borrowed when it has none.
fn decode(s: &str) -> Cow<'_, str> {
    if s.contains('&') {
        Cow::Owned(markup::decode_entities(s))
    } else {
        Cow::Borrowed(s)
    }
}

/// The `<a>` elements of `html`, read as an HTML tokenizer reads start
/// tags: attribute values double-quoted, single-quoted or unquoted, a `>`
/// inside quotes not ending the tag; comments skipped.
pub(crate) fn anchors(html: &str) -> Anchors<'_> {
    Anchors { html, i: 0 }
}

/// The iterator of [`anchors`].
pub(crate) struct Anchors<'a> {
    html: &'a str,
    /// Where the search for the next tag goes on.
    i: usize,
}

impl<'a> Iterator for Anchors<'a> {
    type Item = Anchor<'a>;

    fn next(&mut self) -> Option<Anchor<'a>> {
        let html = self.html;
        let b = html.as_bytes();
        loop {
            let off = html.get(self.i..)?.find('<')?;
            let mut i = self.i + off + 1;
            if b.get(i..).is_some_and(|r| r.starts_with(b"!--")) {
                self.i = html
                    .get(i..)
                    .and_then(|r| r.find("-->"))
                    .map_or(b.len(), |e| i + e + 3);
                continue;
            }
            let is_a = b.get(i).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
                && b.get(i + 1)
                    .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/');
            if !is_a {
                self.i = i;
                continue;
            }
            i += 1;
            let mut values = [None; NAMES.len()];
            loop {
                i = skip(b, i, |c| c.is_ascii_whitespace() || c == b'/');
                if b.get(i).is_none_or(|c| *c == b'>') {
                    i = (i + 1).min(b.len());
                    break;
                }
                let start = i;
                i = skip(b, i, |c| {
                    !c.is_ascii_whitespace() && !matches!(c, b'=' | b'>' | b'/')
                });
                let name = html.get(start..i).unwrap_or_default();
                i = skip(b, i, |c| c.is_ascii_whitespace());
                let mut value = "";
                if b.get(i) == Some(&b'=') {
                    i = skip(b, i + 1, |c| c.is_ascii_whitespace());
                    let (v_start, v_end) = match b.get(i) {
                        Some(q @ (b'"' | b'\'')) => {
                            let end = html
                                .get(i + 1..)
                                .and_then(|r| r.find(*q as char))
                                .map_or(b.len(), |e| i + 1 + e);
                            let span = (i + 1, end);
                            i = (end + 1).min(b.len());
                            span
                        }
                        _ => {
                            let start = i;
                            i = skip(b, i, |c| !c.is_ascii_whitespace() && c != b'>');
                            (start, i)
                        }
                    };
                    value = html.get(v_start..v_end).unwrap_or_default();
                }
                if let Some(slot) = NAMES
                    .iter()
                    .position(|n| n.eq_ignore_ascii_case(name))
                    .and_then(|k| values.get_mut(k))
                    && slot.is_none()
                {
                    *slot = Some(value);
                }
            }
            let rest = html.get(i..).unwrap_or_default();
            let (end, plain) = close_a(rest);
            let text = rest.get(..end).unwrap_or_default();
            // A text without a tag: the search for the next one goes on
            // at its end (where it stands), not through it again.
            self.i = if plain { i + end } else { i };
            return Some(Anchor { values, text });
        }
    }
}

/// Where the text of an anchor ends in `rest`: its `</a>`, the next
/// tag that opens another anchor, or the end; and whether that is the
/// first `<` of `rest` (no other tag in the text).
fn close_a(rest: &str) -> (usize, bool) {
    let b = rest.as_bytes();
    let mut j = 0;
    let mut first = true;
    while let Some(off) = rest.get(j..).and_then(|r| r.find('<')) {
        j += off;
        let tag = |k: usize| b.get(j + k).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'));
        let ends = |k: usize| {
            b.get(j + k)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        };
        if (b.get(j + 1) == Some(&b'/') && tag(2) && ends(3)) || (tag(1) && ends(2)) {
            return (j, first);
        }
        first = false;
        j += 1;
    }
    (b.len(), first)
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

/// Appends `s` to `out` with `& " ' < >` escaped, as
/// [`markup::escape`] writes it.
fn escape_into(out: &mut String, s: &str) {
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => continue,
        };
        // `i` is at an ASCII character: a character boundary.
        out.push_str(s.get(plain..i).unwrap_or_default());
        out.push_str(escaped);
        plain = i + 1;
    }
    out.push_str(s.get(plain..).unwrap_or_default());
}

/// `sha256=<hex>` → the hex digest (trimmed), and whether it has an
/// upper-case letter.
fn sha256_of(spec: &str) -> Option<(&str, bool)> {
    let (algo, value) = spec.split_once('=')?;
    let value = value.trim();
    if !algo.trim().eq_ignore_ascii_case("sha256") {
        return None;
    }
    Some((value, crate::hex_digest(value)?))
}

impl Page {
    /// A clean PEP 503 page of the page's file links: each anchor read
    /// with an HTML tokenizer's rules for start tags ([`anchors`]), its
    /// `href` through the gateway, its PEP 503/592/658/714 attributes kept,
    /// everything escaped again. Anything else of the upstream's page (a
    /// `<base>`, scripts, links the gateway cannot serve) is left out, so
    /// a client following the page can only reach the gateway. The sha256
    /// of each link goes into `digests`.
    pub(crate) fn rewrite_html(&self, project: &str, text: &str, digests: &mut Digests) -> String {
        // The rewritten page is about as long as the upstream's.
        let mut out = String::with_capacity(text.len() + text.len() / 4 + 512);
        out.push_str("<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for ");
        escape_into(&mut out, project);
        out.push_str("</title></head>\n<body>\n<h1>Links for ");
        escape_into(&mut out, project);
        out.push_str("</h1>\n");
        let mut prefix = String::new();
        escape_into(&mut prefix, &self.prefix);
        let mut rel = String::new();
        for anchor in anchors(text) {
            let Some(href) = anchor.attr("href") else {
                continue;
            };
            let (url, fragment) = href.split_once('#').unwrap_or((&href, ""));
            let Some(plain) = self.rel_of(url, &mut rel) else {
                continue;
            };
            let sha256 = sha256_of(fragment);
            if let Some((d, upper)) = sha256 {
                digests.push(&rel, "", d, upper);
            }
            let metadata = anchor
                .attr("data-core-metadata")
                .or_else(|| anchor.attr("data-dist-info-metadata"));
            if let Some((d, upper)) = metadata.as_deref().and_then(sha256_of) {
                digests.push(&rel, ".metadata", d, upper);
            }
            // The link (`prefix` and `rel` percent-encoded), escaped.
            out.push_str("<a href=\"");
            out.push_str(&prefix);
            if plain {
                out.push_str(&rel);
            } else {
                escape_into(&mut out, &http::encode_path(&rel));
            }
            if sha256.is_some() {
                // `sha256=` and hex digits, white space around them:
                // nothing to escape.
                out.push('#');
                out.push_str(fragment);
            } else if !fragment.is_empty() {
                out.push('#');
                escape_into(&mut out, fragment);
            }
            out.push('"');
            for k in KEPT {
                let (Some(name), Some(Some(v))) = (NAMES.get(k), anchor.values.get(k)) else {
                    continue;
                };
                out.push(' ');
                out.push_str(name);
                out.push_str("=\"");
                write_value(&mut out, v);
                out.push('"');
            }
            out.push('>');
            anchor.write_text(&mut out);
            out.push_str("</a><br>\n");
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_escaping_match_markup() {
        for s in [
            "",
            "&gt;=3.8",
            "a&b",
            "&amp;&lt;&gt;&quot;&apos;",
            "&#65;&#x42;&#X43;&#x+44;&#+45;",
            "&bogus; & &;",
            "&#xD800; &#1114112; &#0;",
            "x;&gt",
            "&&gt;;",
            "ü&#252;\"'<>",
        ] {
            let mut out = String::from("x");
            write_value(&mut out, s);
            assert_eq!(
                out,
                format!("x{}", markup::escape(&markup::decode_entities(s))),
                "{s:?}"
            );
        }
    }

    #[test]
    fn escaping_matches_markup() {
        for s in ["", "plain", "a&\"b'<c>", "&&", "ü<ß>€'", "\"'"] {
            let mut out = String::from("x");
            escape_into(&mut out, s);
            assert_eq!(out, format!("x{}", markup::escape(s)), "{s:?}");
        }
    }

    #[test]
    fn anchors_read_as_a_tokenizer_does() {
        let page = "<A HREF=x Href=y data-yanked>one &amp; <b>two</b></a>\
                    <a/href='z'>three<a href=\"w\">four";
        let found: Vec<_> = anchors(page).collect();
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].attr("href").as_deref(), Some("x"));
        assert_eq!(found[0].attr("data-yanked").as_deref(), Some(""));
        let text = |a: &Anchor<'_>| {
            let mut out = String::new();
            a.write_text(&mut out);
            out
        };
        assert_eq!(text(&found[0]), "one &amp; two");
        assert_eq!(found[1].attr("href").as_deref(), Some("z"));
        assert_eq!(text(&found[1]), "three");
        assert_eq!(text(&found[2]), "four");
        assert_eq!(found[2].attr("data-gpg-sig"), None);
    }
}
