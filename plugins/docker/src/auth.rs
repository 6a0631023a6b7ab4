//! Upstream authentication: `WWW-Authenticate` challenges, the Docker
//! token protocol (token URL, token response), and where tokens are kept.

use artgate_sdk::http::encode_component;

/// Token lifetime when the auth service gives none (Docker token spec).
pub const DEFAULT_TOKEN_TTL: u64 = 60;

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Auth scheme, lower-cased (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters in order; names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lower-case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the challenges in one `WWW-Authenticate` value (RFC 9110
/// §11.6.1): `Bearer realm="https://auth.example/token",service="x",
/// scope="repository:a:pull", Basic realm="y"`. Quoted values may contain
/// commas and `\`-escapes. A `token68` after a scheme is skipped.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let b = value.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_tchar =
        |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c) || c == b'/';
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        // Between challenges: whitespace and commas.
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip the junk character.
            i += 1;
            continue;
        }
        let token = &value[start..i];
        skip_ws(&mut i);
        if i < b.len() && b[i] == b'=' {
            // `name=value` where a scheme was expected: a parameter of the
            // previous challenge (after a comma).
            i += 1;
            skip_ws(&mut i);
            let v = read_value(value, &mut i);
            if let Some(last) = out.last_mut() {
                last.params.push((token.to_ascii_lowercase(), v));
            }
            continue;
        }
        out.push(Challenge {
            scheme: token.to_ascii_lowercase(),
            params: Vec::new(),
        });
        // Parameters follow on the same "line": name=value, comma-separated.
        loop {
            skip_ws(&mut i);
            let pstart = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            let name = &value[pstart..i];
            let mut j = i;
            skip_ws(&mut j);
            if name.is_empty() || j >= b.len() || b[j] != b'=' {
                // No parameter here: either a new challenge (rewind) or a
                // token68 (skip it).
                if !name.is_empty() && (j >= b.len() || b[j] == b',') {
                    // A bare token after the scheme: token68-ish, skip.
                    i = j;
                } else {
                    i = pstart;
                }
                break;
            }
            i = j + 1;
            // token68 padding (`abc==`): the value is empty or more `=`.
            if i < b.len() && b[i] == b'=' {
                while i < b.len() && b[i] == b'=' {
                    i += 1;
                }
                break;
            }
            skip_ws(&mut i);
            let v = read_value(value, &mut i);
            if let Some(last) = out.last_mut() {
                last.params.push((name.to_ascii_lowercase(), v));
            }
            skip_ws(&mut i);
            if i < b.len() && b[i] == b',' {
                i += 1;
                continue;
            }
            break;
        }
    }
    out
}

/// Reads a quoted-string or a token at `*i`, advancing past it.
fn read_value(s: &str, i: &mut usize) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    if *i < b.len() && b[*i] == b'"' {
        *i += 1;
        while *i < b.len() {
            match b[*i] {
                b'\\' if *i + 1 < b.len() => {
                    out.push(b[*i + 1]);
                    *i += 2;
                }
                b'"' => {
                    *i += 1;
                    break;
                }
                c => {
                    out.push(c);
                    *i += 1;
                }
            }
        }
    } else {
        while *i < b.len() && !matches!(b[*i], b',' | b' ' | b'\t') {
            out.push(b[*i]);
            *i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first `Bearer` challenge with a `realm` among all `values`.
pub fn bearer_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    values
        .into_iter()
        .flat_map(parse_challenges)
        .find(|c| c.scheme == "bearer" && c.param("realm").is_some_and(|r| !r.is_empty()))
}

/// The scope a pull of repository `name` needs.
pub fn pull_scope(name: &str) -> String {
    format!("repository:{name}:pull")
}

/// The token request URL for a bearer challenge: the realm with `service`
/// and `scope` query parameters. The challenge's scope wins; `fallback` is
/// used when it names none. `None` when the realm is not an http(s) URL.
pub fn token_url(c: &Challenge, fallback_scope: &str) -> Option<String> {
    let realm = c.param("realm")?;
    if !(realm.starts_with("https://") || realm.starts_with("http://")) {
        return None;
    }
    let mut url = realm.to_owned();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    if let Some(service) = c.param("service").filter(|s| !s.is_empty()) {
        url.push(sep);
        url.push_str("service=");
        url.push_str(&encode_component(service));
        sep = '&';
    }
    let scope = c
        .param("scope")
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback_scope);
    // Several scopes are space-separated in a challenge; the token
    // protocol takes one `scope` parameter each.
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        url.push(sep);
        url.push_str("scope=");
        url.push_str(&encode_component(s));
        sep = '&';
    }
    Some(url)
}

/// The scheme, host and port of a URL (for messages; never the path or
/// query, which may carry account names).
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    &url[..end]
}

/// A token from an auth service's JSON answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The bearer token.
    pub token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// Parses a token response: `token` (or `access_token`), optional
/// `expires_in` (default [`DEFAULT_TOKEN_TTL`]). `None` when there is no
/// usable token.
pub fn parse_token(body: &[u8]) -> Option<Token> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = ["token", "access_token"]
        .iter()
        .filter_map(|k| v.get(k)?.as_str())
        .find(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))?
        .to_owned();
    let expires_in = v
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .filter(|&e| e > 0)
        .unwrap_or(DEFAULT_TOKEN_TTL);
    Some(Token { token, expires_in })
}

/// How long to keep a token: a little less than its lifetime, so it is not
/// used in its last seconds.
pub fn cache_ttl(expires_in: u64) -> u64 {
    if expires_in > 30 {
        expires_in - 10
    } else {
        expires_in.max(1)
    }
}

/// The key-value key of the token for `scope` on a remote: scoped by the
/// remote's name and upstream URLs, so remotes with different credentials
/// never share tokens.
pub fn token_key(remote: &str, upstreams: &[String], scope: &str) -> String {
    let ups = upstreams.join("\n");
    format!(
        "token/{remote}/{:016x}/{scope}",
        crate::fnv64(ups.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn docker_hub_challenge() {
        let v = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenges(v),
            [c(
                "bearer",
                &[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/alpine:pull")
                ]
            )]
        );
    }

    #[test]
    fn several_challenges_quotes_and_tokens() {
        let v = r#"Basic realm="a, \"b\"", Bearer  realm = "http://h:1/t?x=1" , service=svc,scope="repository:a:pull repository:b:pull",error="invalid_token""#;
        let got = parse_challenges(v);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], c("basic", &[("realm", r#"a, "b""#)]));
        assert_eq!(got[1].scheme, "bearer");
        assert_eq!(got[1].param("realm"), Some("http://h:1/t?x=1"));
        assert_eq!(got[1].param("service"), Some("svc"));
        assert_eq!(got[1].param("error"), Some("invalid_token"));
        assert_eq!(bearer_challenge([v]).unwrap().param("service"), Some("svc"));
    }

    #[test]
    fn odd_inputs() {
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Negotiate"), [c("negotiate", &[])]);
        assert_eq!(
            parse_challenges("Negotiate abc==, Basic realm=x"),
            [c("negotiate", &[]), c("basic", &[("realm", "x")])]
        );
        assert_eq!(
            parse_challenges(r#"Bearer realm="unterminated"#),
            [c("bearer", &[("realm", "unterminated")])]
        );
        assert!(bearer_challenge(["Basic realm=\"x\"", "Bearer service=x"]).is_none());
        assert!(bearer_challenge(["Basic realm=\"x\"", "Bearer realm=\"\""]).is_none());
    }

    #[test]
    fn token_urls() {
        let ch = c(
            "bearer",
            &[
                ("realm", "https://auth.example/token"),
                ("service", "reg istry"),
                ("scope", "repository:a/b:pull repository:c:pull"),
            ],
        );
        assert_eq!(
            token_url(&ch, "unused").unwrap(),
            "https://auth.example/token?service=reg%20istry&scope=repository%3Aa%2Fb%3Apull&scope=repository%3Ac%3Apull"
        );
        let bare = c("bearer", &[("realm", "http://h/t?a=1")]);
        assert_eq!(
            token_url(&bare, "repository:x:pull").unwrap(),
            "http://h/t?a=1&scope=repository%3Ax%3Apull"
        );
        assert!(token_url(&c("bearer", &[("realm", "ftp://h/t")]), "s").is_none());
        assert_eq!(
            origin("https://auth.example:8443/token?x=1"),
            "https://auth.example:8443"
        );
        assert_eq!(origin("http://h"), "http://h");
    }

    #[test]
    fn token_responses() {
        assert_eq!(
            parse_token(br#"{"token":"abc","expires_in":300}"#),
            Some(Token {
                token: "abc".into(),
                expires_in: 300
            })
        );
        assert_eq!(
            parse_token(br#"{"access_token":"xyz"}"#),
            Some(Token {
                token: "xyz".into(),
                expires_in: 60
            })
        );
        assert_eq!(
            parse_token(br#"{"token":"","access_token":"t2","expires_in":0}"#),
            Some(Token {
                token: "t2".into(),
                expires_in: 60
            })
        );
        assert_eq!(parse_token(br#"{"token":"a b"}"#), None);
        assert_eq!(parse_token(b"not json"), None);
        assert_eq!(parse_token(br#"{"expires_in":5}"#), None);
        assert_eq!(cache_ttl(300), 290);
        assert_eq!(cache_ttl(20), 20);
        assert_eq!(cache_ttl(0), 1);
    }

    #[test]
    fn token_keys_are_scoped_by_remote_and_upstream() {
        let ups = vec!["https://r.example".to_string()];
        let a = token_key("a", &ups, "repository:x:pull");
        assert!(a.starts_with("token/a/") && a.ends_with("/repository:x:pull"));
        assert_ne!(a, token_key("b", &ups, "repository:x:pull"));
        assert_ne!(
            a,
            token_key("a", &["https://s.example".into()], "repository:x:pull")
        );
    }
}
