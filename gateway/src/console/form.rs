//! Query strings and `application/x-www-form-urlencoded` bodies: the
//! console's only request formats besides file uploads.

use crate::reqbody::ClientStream;
use http_body_util::BodyExt as _;
use percent_encoding::percent_decode_str;

/// The largest form body the console reads.
pub const MAX_FORM: usize = 64 * 1024;

/// Decoded `name=value` pairs, in order.
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

/// Why a form could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// More than [`MAX_FORM`] bytes (→ 413).
    #[error("the form is larger than {MAX_FORM} bytes")]
    TooLarge,
    /// Not UTF-8 once decoded (→ 400).
    #[error("the form or query is not valid UTF-8 once percent-decoded")]
    NotUtf8,
    /// The body could not be read (→ 400).
    #[error("the form could not be read: {0}")]
    Read(String),
}

impl FormError {
    /// The status to answer with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            FormError::TooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl Form {
    /// Parse `a=1&b=two+words` (`+` is a space, `%XX` a byte).
    pub fn parse(s: &str) -> Result<Form, FormError> {
        let mut out = Vec::new();
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((decode(k)?, decode(v)?));
        }
        Ok(Form(out))
    }

    /// Read and parse a form body.
    pub async fn read(body: ClientStream) -> Result<Form, FormError> {
        let limited = http_body_util::Limited::new(body, MAX_FORM);
        let bytes = match limited.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(FormError::TooLarge);
            }
            Err(e) => return Err(FormError::Read(e.to_string())),
        };
        let s = std::str::from_utf8(&bytes).map_err(|_| FormError::NotUtf8)?;
        Form::parse(s)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, `None` when absent or empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

fn decode(s: &str) -> Result<String, FormError> {
    let s = s.replace('+', " ");
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| FormError::NotUtf8)
}

/// Percent-encode `s` for a query value or a path segment.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// Percent-encode a path, keeping its `/` separators.
pub fn encode_path(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH).to_string()
}

/// Everything but unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// [`COMPONENT`], keeping `/`.
const PATH: &percent_encoding::AsciiSet = &COMPONENT.remove(b'/');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_encode() {
        let f = Form::parse("a=1&b=two+words&c=%2Fx%20y&d&a=2").unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("two words"));
        assert_eq!(f.get("c"), Some("/x y"));
        assert_eq!(f.get("d"), Some(""));
        assert_eq!(f.non_empty("d"), None);
        assert!(Form::parse("a=%ff").is_err());
        assert_eq!(encode("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(encode_path("a b/c?"), "a%20b/c%3F");
        assert_eq!(Form::parse(&encode("x&y=z")).unwrap().0[0].0, "x&y=z");
    }
}
