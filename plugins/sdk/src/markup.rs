//! Character references and escaping for adapters that read or write XML
//! and HTML (repository metadata, package index pages) without a parser.

/// Decodes `&amp; &lt; &gt; &quot; &apos;` and `&#N;` / `&#xH;`; unknown or
/// broken references are kept as written.
///
/// ```
/// use artgate_sdk::markup::decode_entities;
/// assert_eq!(decode_entities("a&lt;b&gt;c&quot;&apos;"), "a<b>c\"'");
/// assert_eq!(decode_entities("&#65;&#x42;&#X43;"), "ABC");
/// assert_eq!(decode_entities("a & b &bogus; &"), "a & b &bogus; &");
/// ```
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let decoded = tail.find(';').and_then(|semi| {
            let c = entity(&tail[1..semi])?;
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character the reference `&{name};` stands for: the five XML
/// entities and decimal or hexadecimal `#` references; `None` for any
/// other name or a number that is no character.
///
/// ```
/// use artgate_sdk::markup::entity;
/// assert_eq!(entity("amp"), Some('&'));
/// assert_eq!(entity("#x41"), Some('A'));
/// assert_eq!(entity("bogus"), None);
/// ```
pub fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .map(|h| u32::from_str_radix(h, 16))
            .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
            .and_then(Result::ok)
            .and_then(char::from_u32),
    }
}

/// `s` with `& " ' < >` escaped, so it can stand as an attribute value
/// (in either quotes) or as text.
///
/// ```
/// use artgate_sdk::markup::escape;
/// assert_eq!(escape("a&\"b'<c>"), "a&amp;&quot;b&#x27;&lt;c&gt;");
/// ```
pub fn escape(s: &str) -> String {
    if !s.contains(['&', '"', '\'', '<', '>']) {
        return s.to_owned();
    }
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
