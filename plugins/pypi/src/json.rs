//! PEP 691 JSON pages: every file's `url` through the gateway.
//!
//! The page is not read into a tree of owned values. `serde_json` reads
//! it once, as an object of raw values ([`RawValue`]), which checks all
//! of its syntax; the files and their small objects are then split where
//! they stand in the page (a few members each, on the stack), and the new
//! page is written into one buffer.
//!
//! It is written as `serde_json` writes a `Value` (what this adapter
//! wrote before): keys in order (the last of a repeated key counting), no
//! white space, strings and numbers in their canonical form. Strings
//! without escapes, literals and plain integers are copied as they are
//! (their canonical form); anything else is read and written by
//! `serde_json`, so a page is refused exactly when `serde_json` cannot
//! read it as a `Value`, nesting limit included.

use crate::{Digests, Page};
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The deepest nesting `serde_json` reads (its recursion limit): a value
/// inside more containers than this is an error.
const MAX_DEPTH: usize = 127;

/// How deep values are split ([`Flat`], [`elements`]); a container
/// nested deeper (never in a real page) is read and written whole by
/// `serde_json`, so no text is split more than this many times.
const SPLIT_DEPTH: usize = 8;

/// The most members of an object split on the stack ([`Flat`]); larger
/// ones are read by `serde_json`.
const FLAT_MAX: usize = 16;

/// An object's members as `serde_json` reads them: in key order, the last
/// of a repeated key counting, values raw.
enum Members<'a> {
    /// Keys without escapes: borrowed from the page.
    Borrowed(BTreeMap<&'a str, &'a RawValue>),
    /// An object with a key that has an escape.
    Owned(BTreeMap<String, &'a RawValue>),
}

impl<'a> Members<'a> {
    /// How many members there are.
    fn len(&self) -> usize {
        match self {
            Members::Borrowed(m) => m.len(),
            Members::Owned(m) => m.len(),
        }
    }

    /// The members in key order.
    fn iter(&self) -> MembersIter<'_, 'a> {
        match self {
            Members::Borrowed(m) => MembersIter::Borrowed(m.iter()),
            Members::Owned(m) => MembersIter::Owned(m.iter()),
        }
    }
}

/// The iterator of [`Members::iter`].
enum MembersIter<'m, 'a> {
    /// Over borrowed keys.
    Borrowed(std::collections::btree_map::Iter<'m, &'a str, &'a RawValue>),
    /// Over owned keys.
    Owned(std::collections::btree_map::Iter<'m, String, &'a RawValue>),
}

impl<'m, 'a> Iterator for MembersIter<'m, 'a> {
    type Item = (&'m str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            MembersIter::Borrowed(i) => i.next().map(|(k, v)| (*k, v.get())),
            MembersIter::Owned(i) => i.next().map(|(k, v)| (k.as_str(), v.get())),
        }
    }
}

/// The members of a small object whose keys have no escape (nearly every
/// object of a page), split where they stand in the page's text, which
/// `serde_json` has checked: sorted by key, no key repeated.
struct Flat<'a> {
    /// How many of `members` there are.
    len: usize,
    /// Each key (as written, so as read: it has no escape) and raw value.
    members: [(&'a str, &'a str); FLAT_MAX],
}

impl<'a> Flat<'a> {
    /// Splits the object `raw` (JSON text `serde_json` has read); `None`
    /// when it has more than [`FLAT_MAX`] members, a key with an escape or
    /// a repeated key.
    fn split(raw: &'a str) -> Option<Flat<'a>> {
        Flat::split_at(raw, 0).and_then(|(flat, end)| (end == raw.len()).then_some(flat))
    }

    /// [`Flat::split`] for the object at `start` of `text`, and where it
    /// ends.
    fn split_at(text: &'a str, start: usize) -> Option<(Flat<'a>, usize)> {
        let b = text.as_bytes();
        let mut flat = Flat {
            len: 0,
            members: [("", ""); FLAT_MAX],
        };
        if b.get(start) != Some(&b'{') {
            return None;
        }
        let mut i = skip_ws(b, start + 1);
        if b.get(i) == Some(&b'}') {
            return Some((flat, i + 1));
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let end = string_end(b, i)?;
            let key = text.get(i + 1..end - 1)?;
            if key.contains('\\') {
                return None;
            }
            i = skip_ws(b, end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_ws(b, i + 1);
            let end = value_end(b, start)?;
            *flat.members.get_mut(flat.len)? = (key, text.get(start..end)?);
            flat.len += 1;
            i = skip_ws(b, end);
            match b.get(i)? {
                b',' => i = skip_ws(b, i + 1),
                b'}' => break,
                _ => return None,
            }
        }
        let members = flat.members.get_mut(..flat.len)?;
        members.sort_unstable_by(|x, y| x.0.cmp(y.0));
        if members
            .windows(2)
            .any(|w| matches!(w, [x, y] if x.0 == y.0))
        {
            return None;
        }
        Some((flat, i + 1))
    }

    /// The members in key order.
    fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.members.iter().take(self.len).copied()
    }
}

/// An object of a page, its members in key order.
// The split members stay on the stack on purpose: no allocation per object.
#[allow(clippy::large_enum_variant)]
enum Object<'a> {
    /// Split on the stack.
    Flat(Flat<'a>),
    /// Read by `serde_json`.
    Read(Members<'a>),
}

impl<'a> Object<'a> {
    /// The raw value of member `key`.
    fn get(&self, key: &str) -> Option<&'a str> {
        match self {
            Object::Flat(f) => f.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            Object::Read(Members::Borrowed(m)) => m.get(key).map(|v| v.get()),
            Object::Read(Members::Owned(m)) => m.get(key).map(|v| v.get()),
        }
    }

    /// Whether every key is written as it stands (read without an
    /// escape: no quote, backslash or control character in it).
    fn plain_keys(&self) -> bool {
        !matches!(self, Object::Read(Members::Owned(_)))
    }

    /// Calls `f` with each member in key order, while it answers
    /// `Some`.
    fn each(&self, mut f: impl FnMut(&str, &'a str) -> Option<()>) -> Option<()> {
        match self {
            Object::Flat(flat) => flat.iter().try_for_each(|(k, v)| f(k, v)),
            Object::Read(m) => m.iter().try_for_each(|(k, v)| f(k, v)),
        }
    }
}

/// The object `raw` (JSON text `serde_json` has read), a value inside
/// `depth` containers; `None` when it is not one `serde_json` would read
/// as a `Value`.
fn object(raw: &str, depth: usize) -> Option<Object<'_>> {
    if depth >= MAX_DEPTH {
        return None;
    }
    match Flat::split(raw) {
        Some(flat) => Some(Object::Flat(flat)),
        None => read_object(raw, depth).map(Object::Read),
    }
}

/// The object `raw` read by `serde_json`, a value inside `depth`
/// containers; `None` when it is not an object or is one `serde_json`
/// would not read as a `Value`.
fn read_object(raw: &str, depth: usize) -> Option<Members<'_>> {
    if depth >= MAX_DEPTH {
        return None;
    }
    // A key with an escape cannot be borrowed: the object is read again
    // with owned keys.
    let members = match serde_json::from_str::<BTreeMap<&str, &RawValue>>(raw) {
        Ok(m) => Members::Borrowed(m),
        Err(_) => Members::Owned(serde_json::from_str(raw).ok()?),
    };
    // A repeated key's earlier values are not in the map, but serde_json
    // reads them too: such an object (never seen in a real page) is
    // checked as a whole. The text around the values, where the keys
    // are, holds one `:` per member unless a key is repeated.
    let base = raw.as_ptr() as usize;
    let mut spans: Vec<(usize, usize)> = members
        .iter()
        .map(|(_, v)| {
            let start = (v.as_ptr() as usize).wrapping_sub(base);
            (start, start + v.len())
        })
        .collect();
    spans.sort_unstable();
    let mut colons = 0;
    let mut from = 0;
    for (start, end) in spans.into_iter().chain([(raw.len(), raw.len())]) {
        colons += raw.get(from..start).map_or(0, colons_outside_strings);
        from = end;
    }
    if colons != members.len() {
        serde_json::from_str::<Value>(raw).ok()?;
        if depth + nesting(raw) > MAX_DEPTH {
            return None;
        }
    }
    Some(members)
}

/// Where JSON white space after `i` ends.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// Where the string starting at `i` (its opening quote) ends, after its
/// closing quote.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j = quote_or_backslash(b, j)?;
        match b.get(j)? {
            b'"' => return Some(j + 1),
            _ => j += 2,
        }
    }
}

/// The first `"` or `\` in `b` from `i` on. Eight bytes at a time: a
/// page's text is mostly strings, and a wasm byte loop pays a bounds
/// check for every byte.
fn quote_or_backslash(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // The high bit of each byte of `x` that is zero (and maybe of bytes
    // after one that is: the first set bit is exact).
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = zeros(x ^ (ONES * u64::from(b'"'))) | zeros(x ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| i + p)
}

/// Where the value starting at `i` ends, in JSON text `serde_json` has
/// read.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The elements of the array `raw` (JSON text `serde_json` has read).
fn elements(raw: &str) -> Option<Vec<&str>> {
    let b = raw.as_bytes();
    let mut items = Vec::new();
    let mut i = skip_ws(b, 1);
    if b.get(i) == Some(&b']') {
        return Some(items);
    }
    loop {
        let end = value_end(b, i)?;
        items.push(raw.get(i..end)?);
        i = skip_ws(b, end);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b']' => return Some(items),
            _ => return None,
        }
    }
}

/// An element of an array: its text, and its members when it is an
/// object [`Flat`] splits.
type Element<'a> = (&'a str, Option<Flat<'a>>);

/// The elements of the array `raw` (JSON text `serde_json` has read),
/// one at a time, each with its members when it is an object [`Flat`]
/// splits: the files of a page are split once, where they stand.
struct Files<'a> {
    /// The array.
    raw: &'a str,
    /// Where the next element starts; `None` after the last.
    next: Option<usize>,
}

impl<'a> Files<'a> {
    /// The elements of `raw`.
    fn new(raw: &'a str) -> Files<'a> {
        let b = raw.as_bytes();
        let i = skip_ws(b, 1);
        Files {
            raw,
            next: (b.get(i) != Some(&b']')).then_some(i),
        }
    }

    /// The next element and its members, if it is an object `Flat`
    /// splits; `Some(None)` after the last, `None` for text that is not
    /// an array.
    fn next(&mut self) -> Option<Option<Element<'a>>> {
        let Some(start) = self.next else {
            return Some(None);
        };
        let b = self.raw.as_bytes();
        let (flat, end) = match Flat::split_at(self.raw, start) {
            Some((flat, end)) => (Some(flat), end),
            None => (None, value_end(b, start)?),
        };
        let i = skip_ws(b, end);
        self.next = match b.get(i)? {
            b',' => Some(skip_ws(b, i + 1)),
            b']' => None,
            _ => return None,
        };
        Some(Some((self.raw.get(start..end)?, flat)))
    }
}

/// The `:` of `text` that are not inside a string (`text` starting
/// outside one).
fn colons_outside_strings(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut n, mut i) = (0, 0);
    while let Some(c) = b.get(i) {
        match c {
            b':' => n += 1,
            b'"' => {
                i = string_end(b, i).unwrap_or(b.len());
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    n
}

/// How deeply containers nest in the JSON value `raw`.
fn nesting(raw: &str) -> usize {
    let b = raw.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0, 0);
    while let Some(c) = b.get(i) {
        match c {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                i = string_end(b, i).unwrap_or(b.len());
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    max
}

/// The text of the JSON string `raw`; `None` for any other value.
fn string(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return None;
    }
    if raw.contains('\\') {
        return serde_json::from_str::<String>(raw).ok().map(Cow::Owned);
    }
    raw.get(1..raw.len().checked_sub(1)?).map(Cow::Borrowed)
}

/// Appends the key `k` of an object and its colon; `plain` when it has
/// nothing to escape.
fn write_key(out: &mut Vec<u8>, k: &str, plain: bool) -> Option<()> {
    if plain {
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
    } else {
        write_str(out, k)?;
        out.push(b':');
    }
    Some(())
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        return serde_json::to_writer(&mut *out, s).ok();
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Some(())
}

/// Appends the canonical form of `raw`, a value inside `depth`
/// containers; `None` for a value `serde_json` would not read.
fn write_value(out: &mut Vec<u8>, raw: &str, depth: usize) -> Option<()> {
    let b = raw.as_bytes();
    match b.first()? {
        // No escape: its canonical form (a raw string holds no control
        // character or unescaped quote).
        b'"' if !raw.contains('\\') => out.extend_from_slice(b),
        b't' | b'f' | b'n' => out.extend_from_slice(b),
        // A plain integer that fits a u64 (19 digits always do).
        b'0'..=b'9' if b.len() <= 19 && b.iter().all(u8::is_ascii_digit) => {
            out.extend_from_slice(b)
        }
        b'{' | b'[' if depth >= SPLIT_DEPTH => {
            if depth + nesting(raw) > MAX_DEPTH {
                return None;
            }
            let v = serde_json::from_str::<Value>(raw).ok()?;
            serde_json::to_writer(&mut *out, &v).ok()?;
        }
        b'{' => write_object(out, &object(raw, depth)?, depth)?,
        b'[' => {
            if depth >= MAX_DEPTH {
                return None;
            }
            out.push(b'[');
            for (i, v) in elements(raw)?.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, v, depth + 1)?;
            }
            out.push(b']');
        }
        // Other numbers and strings with escapes, as serde_json writes
        // them.
        _ => {
            let v = serde_json::from_str::<Value>(raw).ok()?;
            serde_json::to_writer(&mut *out, &v).ok()?;
        }
    }
    Some(())
}

/// Appends the canonical form of `object`, inside `depth` containers.
fn write_object(out: &mut Vec<u8>, object: &Object<'_>, depth: usize) -> Option<()> {
    out.push(b'{');
    let plain = object.plain_keys();
    let mut first = true;
    object.each(|k, v| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_key(out, k, plain)?;
        write_value(out, v, depth + 1)
    })?;
    out.push(b'}');
    Some(())
}

/// Appends the canonical form of `raw`, inside `depth` containers, and
/// returns its member `sha256` when `raw` is an object (`hashes`,
/// `core-metadata`) and that is a sha256 (hex digits in either case, white
/// space around them allowed), with whether it has an upper-case letter.
fn write_hashes<'a>(
    out: &mut Vec<u8>,
    raw: &'a str,
    depth: usize,
) -> Option<Option<(Cow<'a, str>, bool)>> {
    if !raw.starts_with('{') {
        write_value(out, raw, depth)?;
        return Some(None);
    }
    let members = object(raw, depth)?;
    write_object(out, &members, depth)?;
    Some(members.get("sha256").and_then(string).and_then(|h| {
        let upper = crate::hex_digest(&h)?;
        Some((h, upper))
    }))
}

impl Page {
    /// Every file's `url` through the gateway, the sha256 of each into
    /// `digests` (PEP 691); `None` for a page that is not PEP 691 JSON.
    pub(crate) fn rewrite_json(&self, body: &[u8], digests: &mut Digests) -> Option<Vec<u8>> {
        // Reading the page as raw values checks its syntax, all of it.
        let top = read_object(std::str::from_utf8(body).ok()?, 0)?;
        let files_raw = match &top {
            Members::Borrowed(m) => m.get("files"),
            Members::Owned(m) => m.get("files"),
        }?
        .get();
        if !files_raw.starts_with('[') {
            return None;
        }
        let mut out = Vec::with_capacity(body.len() + body.len() / 4 + 64);
        // What is left out is read all the same: a page serde_json could
        // not read is refused whole.
        let mut dropped = Vec::new();
        let mut rel = String::new();
        let mut link = String::new();
        let plain_prefix = self
            .prefix
            .bytes()
            .all(|b| b >= 0x20 && b != b'"' && b != b'\\');
        let top_plain = matches!(top, Members::Borrowed(_));
        out.push(b'{');
        for (i, (key, value)) in top.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_key(&mut out, key, top_plain)?;
            if key != "files" {
                write_value(&mut out, value, 1)?;
                continue;
            }
            out.push(b'[');
            let mut first = true;
            let mut files = Files::new(files_raw);
            while let Some((f, flat)) = files.next()? {
                let file = match flat {
                    Some(flat) => Some(Object::Flat(flat)),
                    None if f.starts_with('{') => Some(object(f, 2)?),
                    None => None,
                };
                let url = file.as_ref().and_then(|m| m.get("url")).and_then(string);
                let url = url.as_deref().map(|u| u.split('#').next().unwrap_or(u));
                let plain = url.and_then(|u| self.rel_of(u, &mut rel));
                let file = match file {
                    Some(m) if plain.is_some() => m,
                    // A file the gateway cannot serve is left out, never
                    // linked to where it is.
                    Some(m) => {
                        dropped.clear();
                        write_object(&mut dropped, &m, 2)?;
                        continue;
                    }
                    None => {
                        dropped.clear();
                        write_value(&mut dropped, f, 2)?;
                        continue;
                    }
                };
                link.clear();
                self.link_into(&rel, plain == Some(true), &mut link);
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'{');
                let mut hash = None;
                let mut meta = None;
                let core_metadata = file.get("core-metadata").is_some();
                let plain = file.plain_keys();
                let mut first_member = true;
                file.each(|k, v| {
                    if !first_member {
                        out.push(b',');
                    }
                    first_member = false;
                    write_key(&mut out, k, plain)?;
                    match k {
                        // An encoded path has no quote, backslash or
                        // control character.
                        "url" if plain_prefix => {
                            out.push(b'"');
                            out.extend_from_slice(link.as_bytes());
                            out.push(b'"');
                        }
                        "url" => write_str(&mut out, &link)?,
                        "hashes" => hash = write_hashes(&mut out, v, 3)?,
                        "core-metadata" => meta = write_hashes(&mut out, v, 3)?,
                        "dist-info-metadata" if !core_metadata => {
                            meta = write_hashes(&mut out, v, 3)?
                        }
                        _ => write_value(&mut out, v, 3)?,
                    }
                    Some(())
                })?;
                out.push(b'}');
                if let Some((d, upper)) = hash {
                    digests.push(&rel, "", &d, upper);
                }
                if let Some((d, upper)) = meta {
                    digests.push(&rel, ".metadata", &d, upper);
                }
            }
            out.push(b']');
        }
        out.push(b'}');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_are_split_in_key_order() {
        let raw = r#"{ "b" : [1, {"x": "]"}] ,"a":"s\"}" , "c":-1.5e3,"d":{}}"#;
        let flat = Flat::split(raw).expect("split");
        let members: Vec<_> = flat.iter().collect();
        assert_eq!(
            members,
            [
                ("a", r#""s\"}""#),
                ("b", r#"[1, {"x": "]"}]"#),
                ("c", "-1.5e3"),
                ("d", "{}")
            ]
        );
        assert!(Flat::split(r#"{"a":1,"a":2}"#).is_none(), "a repeated key");
        assert!(
            Flat::split(r#"{"\u0061":1}"#).is_none(),
            "a key with an escape"
        );
        let many: Vec<String> = (0..=FLAT_MAX).map(|i| format!("\"k{i}\":{i}")).collect();
        assert!(Flat::split(&format!("{{{}}}", many.join(","))).is_none());
        assert_eq!(Flat::split("{ }").map(|f| f.len), Some(0));
        assert_eq!(
            elements(r#"[ 1 ,"a,b", [2,3] ,{"c":"]"}]"#),
            Some(vec!["1", r#""a,b""#, "[2,3]", r#"{"c":"]"}"#])
        );
        assert_eq!(elements("[ ]"), Some(vec![]));
        for (text, at) in [
            ("", None),
            ("abc", None),
            ("\"", Some(0)),
            ("abcdefgh\\", Some(8)),
            ("abcdefghijklmnop\"", Some(16)),
            ("abcd\"fgh\\", Some(4)),
            ("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\\x", Some(10)),
            ("\u{7f}\u{80}\u{ff}\u{2222}\u{5c5c}\\", Some(11)),
        ] {
            assert_eq!(quote_or_backslash(text.as_bytes(), 0), at, "{text:?}");
        }
        assert_eq!(quote_or_backslash(b"\"abcdefgh\"", 1), Some(9));
    }
}
