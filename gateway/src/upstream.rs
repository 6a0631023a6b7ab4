//! The upstream HTTP client: hyper-util over rustls (webpki roots plus an
//! optional extra CA file), with connect / first-byte timeouts, retries only
//! before the first body byte of idempotent requests, failover across a
//! remote's upstream list, the configured redirect policy (credentials are
//! never sent to another host), and the remote's credentials attached only
//! on its own hosts.

use crate::body::BoxError;
use crate::config::{Credentials, RedirectPolicy, RemoteConfig, UpstreamConfig};
use crate::upstream_health::UpstreamHealth;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

/// A request body the client can send.
pub type ReqBody = BoxBody<Bytes, BoxError>;

/// `User-Agent` sent upstream.
pub const USER_AGENT: &str = concat!("artgate/", env!("CARGO_PKG_VERSION"));

/// Why an upstream request failed before a usable response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Could not connect (or the connection broke before headers).
    #[error("cannot reach the upstream {url}: {reason}")]
    Unreachable {
        /// What was requested.
        url: String,
        /// Why.
        reason: String,
    },
    /// No response headers in time.
    #[error("the upstream {url} did not answer within {secs:.1}s")]
    Timeout {
        /// What was requested.
        url: String,
        /// The timeout.
        secs: f64,
    },
    /// A redirect the policy does not allow.
    #[error("the upstream redirected to {location}, which follow_redirects does not allow")]
    Redirect {
        /// Where it pointed.
        location: String,
    },
    /// The target is not on one of the remote's upstream hosts.
    #[error("the adapter asked for {url}, which is not on this remote's upstream hosts")]
    Forbidden {
        /// What was asked for.
        url: String,
    },
    /// The target could not be turned into a URL.
    #[error("invalid upstream URL {url}: {reason}")]
    BadUrl {
        /// The offending URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl UpstreamError {
    /// Status for a client that gets this error with nothing cached.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The same error with every URL in it redacted ([`redact_url`]).
    pub fn redacted(self) -> UpstreamError {
        match self {
            UpstreamError::Unreachable { url, reason } => UpstreamError::Unreachable {
                url: redact_url(&url),
                reason,
            },
            UpstreamError::Timeout { url, secs } => UpstreamError::Timeout {
                url: redact_url(&url),
                secs,
            },
            UpstreamError::Forbidden { url } => UpstreamError::Forbidden {
                url: redact_url(&url),
            },
            UpstreamError::BadUrl { url, reason } => UpstreamError::BadUrl {
                url: redact_url(&url),
                reason,
            },
            e @ UpstreamError::Redirect { .. } => e,
        }
    }

    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Unreachable { .. } => "error",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Redirect { .. } => "redirect",
            UpstreamError::Forbidden { .. } => "forbidden",
            UpstreamError::BadUrl { .. } => "bad_url",
        }
    }
}

/// One outgoing request, before base URL resolution.
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// A path (+query) appended to each upstream base in turn, or an
    /// absolute URL on one of the remote's hosts.
    pub target: String,
    /// Headers to send.
    pub headers: HeaderMap,
    /// Attach the remote's credentials (only on its own hosts).
    pub use_credentials: bool,
    /// Body factory: called once per attempt (retries resend it). `None`
    /// sends no body.
    pub body: Option<Bytes>,
}

/// The HTTP/2 client gRPC upstream calls go through (TLS as for HTTP
/// upstreams, with ALPN `h2`).
pub type GrpcClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, tonic::body::Body>;

/// The shared HTTP client.
#[derive(Clone)]
pub struct Upstream {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, ReqBody>,
    /// The same connections' settings for gRPC upstreams (`cas` remotes
    /// over another REAPI server): HTTP/2 only, h2c on `http`.
    grpc: GrpcClient,
    cfg: Arc<UpstreamConfig>,
    /// What the requests sent so far say about each remote's upstreams.
    pub health: Arc<UpstreamHealth>,
}

impl Upstream {
    /// Build the client; reads `ca_file` if configured.
    pub fn new(cfg: &UpstreamConfig) -> anyhow::Result<Upstream> {
        let https = https_connector(cfg)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https.clone());
        let grpc = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_only(true)
            .http2_adaptive_window(true)
            .build(https);
        Ok(Upstream {
            client,
            grpc,
            cfg: Arc::new(cfg.clone()),
            health: Arc::default(),
        })
    }

    /// The HTTP/2 client for gRPC upstreams (cheap to clone).
    pub fn grpc(&self) -> GrpcClient {
        self.grpc.clone()
    }

    /// Longest wait for an upstream's response headers.
    pub fn first_byte_timeout(&self) -> Duration {
        self.cfg.first_byte_timeout
    }

    /// Longest pause allowed between body chunks.
    pub fn idle_timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    /// Send `req` for `remote`: resolve the target against each upstream
    /// base in turn, retry idempotent requests before the first byte,
    /// follow redirects by policy. Returns the response (any status but
    /// followed redirects) and the URL that answered.
    pub async fn send(
        &self,
        remote: &RemoteConfig,
        req: &Outgoing,
    ) -> Result<(Response<Incoming>, Uri), UpstreamError> {
        let urls = resolve(remote, &req.target)?;
        let idempotent = matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let attempts = if idempotent { 1 + self.cfg.retries } else { 1 };
        let mut last_err = None;
        for url in &urls {
            for attempt in 0..attempts {
                let sent = std::time::Instant::now();
                let result = self.send_following(remote, req, url.clone()).await;
                self.note(
                    remote,
                    result.as_ref().map(|(r, _)| r.status().as_u16()),
                    sent,
                );
                match result {
                    // A 5xx from one base moves on to the next base, but is
                    // returned as is when it is the last one.
                    Ok((resp, at))
                        if resp.status().is_server_error()
                            && urls.len() > 1
                            && url != urls.last().unwrap_or(url) =>
                    {
                        tracing::warn!(url = %at, status = resp.status().as_u16(), "upstream answered 5xx; trying the next upstream");
                        last_err = Some(UpstreamError::Unreachable {
                            url: at.to_string(),
                            reason: format!("answered {}", resp.status()),
                        });
                        break;
                    }
                    Ok(r) => return Ok(r),
                    Err(
                        e @ (UpstreamError::Unreachable { .. } | UpstreamError::Timeout { .. }),
                    ) => {
                        tracing::debug!(url = %url, attempt, error = %e, "upstream attempt failed");
                        last_err = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last_err.unwrap_or_else(|| UpstreamError::BadUrl {
            url: req.target.clone(),
            reason: "no upstream configured".into(),
        }))
    }

    async fn send_following(
        &self,
        remote: &RemoteConfig,
        req: &Outgoing,
        first: Uri,
    ) -> Result<(Response<Incoming>, Uri), UpstreamError> {
        let origin = first.clone();
        let mut url = first;
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        for _ in 0..=self.cfg.max_redirects {
            let creds = if req.use_credentials && on_remote_hosts(remote, &url) {
                remote.credentials.as_ref()
            } else {
                None
            };
            // An `Authorization` the adapter set itself (a registry token)
            // is for the host it asked for, never for a redirect target
            // elsewhere (a CDN or object store).
            let own_auth = same_origin(&origin, &url);
            let resp = self
                .send_once(
                    &method,
                    &url,
                    &req.headers,
                    creds,
                    own_auth,
                    full_body(body.clone()),
                )
                .await
                // A redirect target's URL is the upstream's, not ours: it
                // may be signed.
                .map_err(|e| if url == origin { e } else { e.redacted() })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok((resp, url));
            }
            let Some(loc) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok((resp, url));
            };
            let next = join_location(&url, loc).ok_or_else(|| UpstreamError::Redirect {
                location: redact_url(loc),
            })?;
            let allowed = match remote.follow_redirects {
                RedirectPolicy::Never => false,
                RedirectPolicy::SameHost => same_origin(&url, &next),
                RedirectPolicy::Any => true,
            };
            if !allowed {
                return Err(UpstreamError::Redirect {
                    location: redact_url(&next.to_string()),
                });
            }
            tracing::debug!(from = %redact_url(&url.to_string()), to = %redact_url(&next.to_string()), "following upstream redirect");
            if resp.status() == StatusCode::SEE_OTHER {
                method = Method::GET;
                body = None;
            }
            url = next;
        }
        Err(UpstreamError::Redirect {
            location: format!(
                "{} (more than {} redirects)",
                redact_url(&url.to_string()),
                self.cfg.max_redirects
            ),
        })
    }

    /// One request to one URL: headers (the remote's credentials replace
    /// any `authorization`; an adapter's own one is kept only on its
    /// origin), `User-Agent`, and the first-byte timeout.
    async fn send_once(
        &self,
        method: &Method,
        url: &Uri,
        headers: &HeaderMap,
        creds: Option<&Credentials>,
        keep_authorization: bool,
        body: ReqBody,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut builder = Request::builder().method(method.clone()).uri(url.clone());
        if let Some(h) = builder.headers_mut() {
            for (k, v) in headers {
                if k != header::AUTHORIZATION || (creds.is_none() && keep_authorization) {
                    h.append(k.clone(), v.clone());
                }
            }
            h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
            if let Some(c) = creds
                && let Some(v) = auth_header(c)
            {
                h.insert(header::AUTHORIZATION, v);
            }
        }
        let request = builder.body(body).map_err(|e| UpstreamError::BadUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        match tokio::time::timeout(self.cfg.first_byte_timeout, self.client.request(request)).await
        {
            Err(_) => Err(UpstreamError::Timeout {
                url: url.to_string(),
                secs: self.cfg.first_byte_timeout.as_secs_f64(),
            }),
            Ok(Err(e)) => Err(UpstreamError::Unreachable {
                url: url.to_string(),
                reason: error_chain(&e),
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// `GET url` with `headers` to another node of the cluster (its
    /// internal route): no credentials, retries, failover or redirects,
    /// the same first-byte timeout as upstreams.
    pub async fn send_peer(
        &self,
        url: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response<Incoming>, UpstreamError> {
        self.send_once(&Method::GET, url, headers, None, false, full_body(None))
            .await
    }

    /// Send a request with a streamed body (not retried, no failover, no
    /// redirects): used to forward client bodies such as git negotiation.
    pub async fn send_streaming(
        &self,
        remote: &RemoteConfig,
        method: Method,
        target: &str,
        headers: &HeaderMap,
        use_credentials: bool,
        body: ReqBody,
    ) -> Result<(Response<Incoming>, Uri), UpstreamError> {
        let urls = resolve(remote, target)?;
        let Some(url) = urls.into_iter().next() else {
            return Err(UpstreamError::BadUrl {
                url: target.to_owned(),
                reason: "no upstream configured".into(),
            });
        };
        let creds = if use_credentials && on_remote_hosts(remote, &url) {
            remote.credentials.as_ref()
        } else {
            None
        };
        let sent = std::time::Instant::now();
        let result = self
            .send_once(&method, &url, headers, creds, true, body)
            .await;
        self.note(remote, result.as_ref().map(|r| r.status().as_u16()), sent);
        Ok((result?, url))
    }

    /// Record an attempt's result (its status, or why it got none) in
    /// [`Upstream::health`].
    fn note(
        &self,
        remote: &RemoteConfig,
        result: Result<u16, &UpstreamError>,
        sent: std::time::Instant,
    ) {
        match result {
            Ok(status) => self.health.answered(&remote.name, status, sent.elapsed()),
            Err(e) => self
                .health
                .failed(&remote.name, &e.clone().redacted().to_string()),
        }
    }
}

/// The connector of every outgoing connection (upstreams, gRPC upstreams,
/// the shared tier's bucket): TLS with rustls and ring, the webpki roots
/// and `ca_file`, HTTP/1.1 and HTTP/2 by ALPN, plain `http` allowed.
pub fn https_connector(
    cfg: &UpstreamConfig,
) -> anyhow::Result<hyper_rustls::HttpsConnector<HttpConnector>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &cfg.ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca)
            .map_err(|e| anyhow::anyhow!("upstream.ca_file {}: {e}", ca.display()))?;
        for c in certs {
            let c = c.map_err(|e| anyhow::anyhow!("upstream.ca_file {}: {e}", ca.display()))?;
            roots
                .add(c)
                .map_err(|e| anyhow::anyhow!("upstream.ca_file {}: {e}", ca.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(cfg.connect_timeout));
    http.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http))
}

/// Whether a response's body has a framed end, so that a clean end of the
/// body is the whole body: HTTP/2 and later frame every body; HTTP/1 frames
/// it with `Content-Length` (hyper errors when fewer bytes arrive) or with
/// `chunked` (hyper errors without the terminating chunk). A body without
/// either is delimited by the connection's close (HTTP/1.0 style), and a
/// connection cut short ends it just as cleanly as the real end: such a
/// body cannot be told whole without a digest.
pub fn body_is_framed<B>(resp: &Response<B>) -> bool {
    if resp.version() >= http::Version::HTTP_2
        || resp.headers().contains_key(header::CONTENT_LENGTH)
    {
        return true;
    }
    // `chunked` must be the last transfer coding (RFC 9112 6.1).
    resp.headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// A buffered body (or none) as a request body.
fn full_body(body: Option<Bytes>) -> ReqBody {
    match body {
        Some(b) => http_body_util::Full::new(b).map_err(|e| match e {}).boxed(),
        None => Empty::new().map_err(|e| match e {}).boxed(),
    }
}

fn auth_header(c: &Credentials) -> Option<HeaderValue> {
    use base64::Engine as _;
    let v = match c {
        Credentials::Basic { username, password } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.0))
        ),
        Credentials::Bearer { token } => format!("Bearer {}", token.0),
    };
    let mut hv = HeaderValue::from_str(&v).ok()?;
    hv.set_sensitive(true);
    Some(hv)
}

/// The URLs to try for a target, in order.
pub fn resolve(remote: &RemoteConfig, target: &str) -> Result<Vec<Uri>, UpstreamError> {
    if target.starts_with("http://") || target.starts_with("https://") {
        let uri: Uri =
            target
                .parse()
                .map_err(|e: http::uri::InvalidUri| UpstreamError::BadUrl {
                    url: target.to_owned(),
                    reason: e.to_string(),
                })?;
        if !on_remote_hosts(remote, &uri) {
            return Err(UpstreamError::Forbidden {
                url: target.to_owned(),
            });
        }
        return Ok(vec![uri]);
    }
    let path = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    let encoded = encode_path(&path);
    remote
        .upstreams
        .iter()
        .map(|base| {
            let b = base.to_string();
            let joined = format!("{}{}", b.trim_end_matches('/'), encoded);
            joined.parse::<Uri>().map_err(|e| UpstreamError::BadUrl {
                url: joined.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Percent-encode characters that may not appear raw in a URL (spaces,
/// quotes, brackets, ...). `%` is left alone so a target an adapter already
/// encoded passes unchanged (the router rejects decoded `%XX` sequences, so
/// no path can smuggle a second decoding through here).
fn encode_path(target: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'<')
        .add(b'>')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'#')
        .add(b'^')
        .add(b'|')
        .add(b'[')
        .add(b']')
        .add(b'\\');
    const QUERY: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'<')
        .add(b'>')
        .add(b'#')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    match target.split_once('?') {
        Some((p, q)) => format!(
            "{}?{}",
            utf8_percent_encode(p, PATH),
            utf8_percent_encode(q, QUERY)
        ),
        None => utf8_percent_encode(target, PATH).to_string(),
    }
}

/// Whether a URL is on one of the remote's upstream hosts (scheme, host and
/// port all equal).
pub fn on_remote_hosts(remote: &RemoteConfig, url: &Uri) -> bool {
    remote.upstreams.iter().any(|b| same_origin(b, url))
}

/// Same scheme, host and (effective) port.
pub fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme() == b.scheme()
        && a.host().map(|h| h.to_ascii_lowercase()) == b.host().map(|h| h.to_ascii_lowercase())
        && effective_port(a) == effective_port(b)
}

fn effective_port(u: &Uri) -> Option<u16> {
    u.port_u16().or(match u.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    })
}

/// A URL as it may appear in messages and logs: without userinfo and with
/// its query string and fragment replaced by `?…`. Redirect targets are
/// often signed URLs (object stores, CDNs) whose query is a credential.
pub fn redact_url(url: &str) -> String {
    let (before_query, had_query) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], true),
        None => (url, false),
    };
    let after_scheme = before_query.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = before_query[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(before_query.len());
    let mut out = String::with_capacity(before_query.len() + 2);
    out.push_str(&before_query[..after_scheme]);
    let authority = &before_query[after_scheme..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("…@");
            out.push_str(&authority[at + 1..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&before_query[authority_end..]);
    if had_query {
        out.push_str("?…");
    }
    out
}

/// Resolve a `Location` header against the URL that sent it; only http(s).
fn join_location(base: &Uri, loc: &str) -> Option<Uri> {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.parse().ok();
    }
    // Any other scheme is refused, also without `//` (`file:/etc/passwd`):
    // a reference that starts with `scheme:` is absolute (RFC 3986 4.2),
    // never a path relative to the upstream.
    if loc.contains("://") || loc.starts_with("//") || has_scheme(loc) {
        return None;
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let path = if loc.starts_with('/') {
        loc.to_owned()
    } else {
        let bp = base.path();
        let dir = &bp[..bp.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{dir}{loc}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

/// Whether `loc` starts with `scheme ":"` (RFC 3986: a letter, then
/// letters, digits, `+`, `-`, `.`).
fn has_scheme(loc: &str) -> bool {
    loc.split_once(':').is_some_and(|(s, _)| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_joining() {
        let base: Uri = "http://a.example:8080/x/y/z".parse().unwrap();
        assert_eq!(
            join_location(&base, "/p").unwrap().to_string(),
            "http://a.example:8080/p"
        );
        assert_eq!(
            join_location(&base, "q").unwrap().to_string(),
            "http://a.example:8080/x/y/q"
        );
        assert_eq!(
            join_location(&base, "https://b.example/r")
                .unwrap()
                .to_string(),
            "https://b.example/r"
        );
        assert!(join_location(&base, "file:///etc/passwd").is_none());
        assert!(join_location(&base, "file:/etc/passwd").is_none());
        assert!(join_location(&base, "gopher:x").is_none());
        assert_eq!(
            join_location(&base, "q/a:b").unwrap().to_string(),
            "http://a.example:8080/x/y/q/a:b"
        );
        assert!(join_location(&base, "//evil.example/x").is_none());
    }

    #[test]
    fn origins() {
        let a: Uri = "http://h:80/a".parse().unwrap();
        let b: Uri = "http://H/b".parse().unwrap();
        let c: Uri = "https://h/b".parse().unwrap();
        assert!(same_origin(&a, &b));
        assert!(!same_origin(&a, &c));
    }

    #[test]
    fn framing() {
        let resp = |version, headers: &[(&str, &str)]| {
            let mut b = Response::builder().version(version);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap()
        };
        use http::Version;
        assert!(body_is_framed(&resp(
            Version::HTTP_11,
            &[("content-length", "3")]
        )));
        assert!(body_is_framed(&resp(
            Version::HTTP_11,
            &[("transfer-encoding", "chunked")]
        )));
        assert!(body_is_framed(&resp(
            Version::HTTP_11,
            &[("transfer-encoding", "gzip, Chunked")]
        )));
        assert!(body_is_framed(&resp(Version::HTTP_2, &[])));
        assert!(!body_is_framed(&resp(Version::HTTP_11, &[])));
        assert!(!body_is_framed(&resp(Version::HTTP_10, &[])));
        assert!(!body_is_framed(&resp(
            Version::HTTP_11,
            &[("transfer-encoding", "chunked, gzip")]
        )));
    }

    #[test]
    fn redacted_urls_keep_no_userinfo_or_query() {
        assert_eq!(
            redact_url("https://u:p@cdn.example:8443/b/o?X-Amz-Signature=abc&x=1#f"),
            "https://…@cdn.example:8443/b/o?…"
        );
        assert_eq!(redact_url("http://h/a/b"), "http://h/a/b");
        assert_eq!(redact_url("/rel?sig=1"), "/rel?…");
        assert_eq!(redact_url("http://a@b@h?q"), "http://…@h?…");
        let e = UpstreamError::Redirect {
            location: redact_url("https://user:pw@s3.example/o?Signature=SECRET"),
        };
        let shown = e.to_string();
        assert!(
            !shown.contains("SECRET") && !shown.contains("pw"),
            "{shown}"
        );
    }

    #[test]
    fn path_encoding_keeps_query() {
        assert_eq!(encode_path("/a b/c%20d?x=1 2"), "/a%20b/c%20d?x=1%202");
    }
}
