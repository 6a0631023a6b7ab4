//! The one boundary between HTTP types and the WIT's records: headers both
//! ways, the request an adapter is asked to plan, an upstream answer as an
//! adapter sees it, the request an adapter asks the core to send, and a
//! remote as adapters see it. Nothing else builds these records from
//! `http` types by hand.

use super::wit;
use crate::config::{RemoteConfig, RemoteMode};
use crate::upstream::Outgoing;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

/// Request headers never shown to adapters (credentials of the client).
const HIDDEN_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// Adapter headers as a map; invalid names or values are dropped.
pub fn header_map(hs: &[wit::Header]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for x in hs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(x.name.as_bytes()),
            HeaderValue::from_str(&x.value),
        ) {
            h.append(k, v);
        }
    }
    h
}

/// Headers as adapters see them (values that are not text are left out).
pub fn wit_headers(h: &HeaderMap) -> Vec<wit::Header> {
    h.iter().filter_map(wit_header).collect()
}

/// One header as adapters see it; `None` when its value is not text.
fn wit_header((k, v): (&HeaderName, &HeaderValue)) -> Option<wit::Header> {
    Some(wit::Header {
        name: k.as_str().to_owned(),
        value: v.to_str().ok()?.to_owned(),
    })
}

/// The client's headers back as a map (for freshness checks).
pub fn request_headers(req: &wit::Request) -> HeaderMap {
    header_map(&req.headers)
}

/// The request an adapter is asked to plan: the client's method, query and
/// headers (never its credentials), the normalised `path` below the remote,
/// no body yet.
pub fn request(id: &str, kind: wit::RouteKind, parts: &Parts, path: &str) -> wit::Request {
    wit::Request {
        id: id.to_owned(),
        kind,
        method: parts.method.as_str().to_owned(),
        path: path.to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .filter(|(k, _)| !HIDDEN_HEADERS.contains(k))
            .filter_map(wit_header)
            .collect(),
        body: None,
        body_too_large: false,
    }
}

/// An upstream answer's status and headers as an adapter sees them.
pub fn upstream_response(status: StatusCode, headers: &HeaderMap) -> wit::UpstreamResponse {
    wit::UpstreamResponse {
        status: status.as_u16(),
        headers: wit_headers(headers),
    }
}

/// The request the upstream client sends for an adapter's request.
pub fn outgoing(r: &wit::UpstreamRequest) -> Outgoing {
    Outgoing {
        method: Method::from_bytes(r.method.as_bytes()).unwrap_or(Method::GET),
        target: r.target.clone(),
        headers: header_map(&r.headers),
        use_credentials: r.use_credentials,
        body: None,
    }
}

/// A remote as adapters see it.
pub fn remote_info(cfg: &RemoteConfig) -> wit::RemoteInfo {
    wit::RemoteInfo {
        name: cfg.name.clone(),
        package: cfg.package.clone(),
        mode: match cfg.mode {
            RemoteMode::PullThrough => wit::RemoteMode::PullThrough,
            RemoteMode::Hosted => wit::RemoteMode::Hosted,
            // Virtual remotes are served by the core and never reach an
            // adapter; this value is never shown to one.
            RemoteMode::Virtual => wit::RemoteMode::PullThrough,
        },
        upstreams: cfg
            .upstreams
            .iter()
            .map(|u| u.to_string().trim_end_matches('/').to_owned())
            .collect(),
        mutable_ttl_secs: cfg.mutable_ttl.as_secs(),
        negative_ttl_secs: cfg.negative_ttl.as_secs(),
        check_mutable_updates: cfg.check_mutable_updates,
        immutable_patterns: cfg.immutable_patterns.clone(),
        mutable_patterns: cfg.mutable_patterns.clone(),
        options: cfg.options.clone(),
        has_credentials: cfg.credentials.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_credentials_never_reach_an_adapter() {
        let (parts, ()) = http::Request::builder()
            .method("GET")
            .uri("/api/v1/remote/r/a/b?x=1")
            .header("authorization", "Bearer secret")
            .header("cookie", "s=1")
            .header("proxy-authorization", "Basic x")
            .header("accept", "application/json")
            .body(())
            .unwrap()
            .into_parts();
        let r = request("id", wit::RouteKind::RemoteApi, &parts, "a/b");
        let names: Vec<&str> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["accept"]);
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "a/b"));
        assert_eq!(r.query.as_deref(), Some("x=1"));
    }

    #[test]
    fn invalid_adapter_headers_are_dropped_and_repeats_kept() {
        let hs = |n: &str, v: &str| wit::Header {
            name: n.into(),
            value: v.into(),
        };
        let m = header_map(&[
            hs("x-a", "1"),
            hs("bad name", "2"),
            hs("x-a", "3"),
            hs("x-b", "\n"),
        ]);
        let a: Vec<_> = m.get_all("x-a").iter().collect();
        assert_eq!(a, ["1", "3"]);
        assert_eq!(m.len(), 2);
        assert_eq!(wit_headers(&m).len(), 2);
    }
}
