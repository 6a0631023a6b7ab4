//! HTTP helpers: header lookup, query strings, percent-encoding and
//! `content-disposition`.

use crate::types::Header;

/// The value of the first header called `name` (compared
/// case-insensitively), if any.
///
/// ```
/// use artgate_sdk::{http::header, types::Header};
/// let h = [Header::new("Content-Type", "text/plain")];
/// assert_eq!(header(&h, "content-type"), Some("text/plain"));
/// ```
pub fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The values of all headers called `name` (compared case-insensitively), in
/// order.
pub fn header_values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Parses a query string (without `?`) into decoded `(name, value)` pairs in
/// order.
///
/// Pairs are separated by `&` (`;` is not a separator); `+` decodes to a
/// space and `%XX` to its byte; invalid escapes are kept literally and
/// invalid UTF-8 is replaced. A name without `=` has an empty value, so
/// `list&after=x` gives `[("list", ""), ("after", "x")]`. Empty pairs are
/// skipped.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// The decoded value of the first query parameter called `name` (exact,
/// case-sensitive match of the decoded name); `None` when absent. A
/// parameter without `=` has the value `""`.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    parse_query(query?)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Whether the query has a parameter called `name`, with or without a value
/// (`?list`, `?list=`, `?list=1`).
pub fn has_query_param(query: Option<&str>, name: &str) -> bool {
    query_param(query, name).is_some()
}

/// Decodes `%XX` escapes in `s`; `+` stays `+`. Invalid escapes are kept
/// literally; invalid UTF-8 is replaced with U+FFFD.
pub fn percent_decode(s: &str) -> String {
    decode(s, false)
}

fn form_decode(s: &str) -> String {
    decode(s, true)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    if !s.contains('%') && (!plus_is_space || !s.contains('+')) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The origin of an absolute URL as the gateway compares them: scheme and
/// host in lower case, user information dropped, the port only when it is
/// not the scheme's default; `None` without `://`.
///
/// ```
/// use artgate_sdk::http::origin;
/// assert_eq!(origin("HTTPS://U@Reg.example:443/x").as_deref(), Some("https://reg.example"));
/// assert_eq!(origin("http://h:8080?q").as_deref(), Some("http://h:8080"));
/// ```
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    if authority.ends_with(default) {
        authority.truncate(authority.len() - default.len());
    }
    Some(format!("{scheme}://{authority}"))
}

/// Percent-encodes the bytes of `path` that may not appear literally in the
/// path of a URL: controls, space, non-ASCII and ``"#<>?\^`{|}``.
///
/// `/` and `%` are kept, so an already-encoded path passes through
/// unchanged and a decoded one (without a literal `%`) becomes a valid URL
/// path.
///
/// ```
/// use artgate_sdk::http::encode_path;
/// assert_eq!(encode_path("a b/ü?x"), "a%20b/%C3%BC%3Fx");
/// assert_eq!(encode_path("a%20b"), "a%20b");
/// ```
pub fn encode_path(path: &str) -> String {
    let keep = |b: u8| b.is_ascii_graphic() && !b"\"#<>?\\^`{|}".contains(&b);
    encode_with(path, keep)
}

/// Percent-encodes everything but RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), as RFC 5987 `ext-value`s and query values need.
pub fn encode_component(s: &str) -> String {
    encode_with(s, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn encode_with(s: &str, keep: impl Fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// A `content-disposition` value that makes clients save the response as
/// `filename` (RFC 6266).
///
/// Printable ASCII names are sent quoted, with `"` and `\` escaped. Other
/// names get an ASCII fallback `filename="..."` (every other character
/// replaced by `_`) followed by `filename*=UTF-8''<percent-encoded>`.
///
/// ```
/// use artgate_sdk::http::content_disposition;
/// assert_eq!(content_disposition("a.rpm"), r#"attachment; filename="a.rpm""#);
/// assert_eq!(
///     content_disposition("ä.txt"),
///     r#"attachment; filename="_.txt"; filename*=UTF-8''%C3%A4.txt"#
/// );
/// ```
pub fn content_disposition(filename: &str) -> String {
    let plain = filename.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    let mut quoted = String::with_capacity(filename.len() + 2);
    for c in filename.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            ' ' | '!'..='~' => quoted.push(c),
            _ => quoted.push('_'),
        }
    }
    if plain {
        format!("attachment; filename=\"{quoted}\"")
    } else {
        format!(
            "attachment; filename=\"{quoted}\"; filename*=UTF-8''{}",
            encode_component(filename)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_case_insensitive() {
        let h = vec![
            Header::new("X-A", "1"),
            Header::new("x-b", "2"),
            Header::new("x-a", "3"),
        ];
        assert_eq!(header(&h, "x-a"), Some("1"));
        assert_eq!(header(&h, "X-B"), Some("2"));
        assert_eq!(header(&h, "x-c"), None);
        assert_eq!(header_values(&h, "X-a").collect::<Vec<_>>(), ["1", "3"]);
    }

    #[test]
    fn query_parsing() {
        assert_eq!(
            parse_query("list&after=a%2Fb&limit=10&&q=a+b&e="),
            vec![
                ("list".into(), "".into()),
                ("after".into(), "a/b".into()),
                ("limit".into(), "10".into()),
                ("q".into(), "a b".into()),
                ("e".into(), "".into()),
            ]
        );
        assert!(parse_query("").is_empty());
        assert_eq!(query_param(Some("a=1&a=2"), "a").as_deref(), Some("1"));
        assert_eq!(query_param(Some("a=1"), "b"), None);
        assert_eq!(query_param(None, "a"), None);
        assert!(has_query_param(Some("list"), "list"));
        assert!(has_query_param(Some("x=1&list="), "list"));
        assert!(!has_query_param(Some("listing"), "list"));
        assert!(!has_query_param(None, "list"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b+c");
        assert_eq!(percent_decode("%C3%BC"), "ü");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(encode_path("a/b c/d#e?f"), "a/b%20c/d%23e%3Ff");
        assert_eq!(encode_path("x\n"), "x%0A");
        assert_eq!(encode_path("pkg@1.0:+~"), "pkg@1.0:+~");
        assert_eq!(encode_component("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn content_disposition_escapes() {
        assert_eq!(
            content_disposition(r#"a "b"\c.txt"#),
            r#"attachment; filename="a \"b\"\\c.txt""#
        );
        assert_eq!(
            content_disposition("a\tb"),
            r#"attachment; filename="a_b"; filename*=UTF-8''a%09b"#
        );
        assert_eq!(
            content_disposition("日本.iso"),
            r#"attachment; filename="__.iso"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.iso"#
        );
    }
}
