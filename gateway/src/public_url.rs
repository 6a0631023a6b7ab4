//! The base URL clients reach the gateway by, as adapters get it from
//! `gateway-url` (for the full gateway URLs some formats must serve: a
//! cargo registry's download template, npm's tarball links).
//!
//! `server.public_url` decides when it is set: behind a load balancer or a
//! TLS proxy the gateway cannot know the name clients use. Otherwise the
//! listener's scheme (`https` with `tls_cert`) and the request's authority
//! (HTTP/2's `:authority`, else `Host`) give it; an authority that is not
//! a plain `host[:port]` gives none, so an adapter cannot be led to write
//! a URL with credentials or a path in it.

use crate::config::ServerConfig;
use http::request::Parts;
use std::sync::Arc;

/// The gateway's base URL for a request with head `head`, or for a call
/// without a request (`head` none: only `public_url`).
pub fn gateway_url(server: &ServerConfig, head: Option<&Parts>) -> Option<Arc<str>> {
    if let Some(url) = &server.public_url {
        return Some(url.clone());
    }
    let authority = client_authority(head?)?;
    let plain = authority.parse::<http::uri::Authority>().is_ok() && !authority.contains('@');
    if !plain {
        return None;
    }
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    Some(Arc::from(format!(
        "{scheme}://{}",
        authority.to_ascii_lowercase()
    )))
}

/// The authority the client used: HTTP/2's `:authority` (the URI's),
/// else the `Host` header. What `gateway-url` is built from and what a
/// plan's `vary` on `host` remembers decisions by.
pub fn client_authority(head: &Parts) -> Option<&str> {
    match head.uri.authority() {
        Some(a) => Some(a.as_str()),
        None => head.headers.get(http::header::HOST)?.to_str().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn head(uri: &str, host: Option<&str>) -> Parts {
        let mut b = http::Request::get(uri);
        if let Some(h) = host {
            b = b.header(http::header::HOST, h);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// Without `public_url`: the request's authority (HTTP/2's first, then
    /// `Host`) with the listener's scheme; nothing for a missing or odd one.
    #[test]
    fn from_the_request_without_public_url() {
        let c = Config::default_config().unwrap();
        let s = &c.server;
        let url = |h: &Parts| gateway_url(s, Some(h)).map(|u| u.to_string());
        assert_eq!(
            url(&head("/x", Some("Gw.Example:8080"))).as_deref(),
            Some("http://gw.example:8080")
        );
        assert_eq!(
            url(&head("http://h2.example/x", Some("other"))).as_deref(),
            Some("http://h2.example")
        );
        assert_eq!(url(&head("/x", None)), None);
        for odd in ["user@evil.example", "a/b", "", "a b"] {
            assert_eq!(url(&head("/x", Some(odd))), None, "{odd:?}");
        }
        assert_eq!(gateway_url(s, None), None, "no request, no URL");
        let mut tls = s.clone();
        tls.tls = Some(crate::config::TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        });
        assert_eq!(
            gateway_url(&tls, Some(&head("/x", Some("gw:8443")))).as_deref(),
            Some("https://gw:8443")
        );
    }

    /// `public_url` wins over whatever the request says, also without one.
    #[test]
    fn public_url_wins() {
        let mut s = Config::default_config().unwrap().server;
        s.public_url = Some(Arc::from("https://artifacts.example.com/gw"));
        assert_eq!(
            gateway_url(&s, Some(&head("/x", Some("other:1")))).as_deref(),
            Some("https://artifacts.example.com/gw")
        );
        assert_eq!(
            gateway_url(&s, None).as_deref(),
            Some("https://artifacts.example.com/gw")
        );
    }
}
