//! The accept loop: plain TCP or TLS (rustls, TLS 1.2+), HTTP/1.1 and
//! HTTP/2, a connection limit, request size limits, the deadlines of a
//! connection (silent, idle, slow head: [`crate::conn`]), and graceful
//! shutdown.

use crate::body::{self, ResBody};
use crate::cache::Outcome;
use crate::config::ServerConfig;
use crate::conn::io::GuardedIo;
use crate::conn::{self, ConnGuard, ConnLimits, Refusal};
use crate::console::recent::{Event, Recent};
use crate::metrics;
use crate::plugins::wit::RouteKind;
use crate::reqbody::ClientStream;
use crate::routes::{self, Route};
use crate::serve::Target;
use crate::state::AppState;
use crate::{admin, auth};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

/// Load the TLS acceptor from PEM files.
pub fn tls_acceptor(cfg: &ServerConfig) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    use rustls_pki_types::pem::PemObject;
    let Some(files) = &cfg.tls else {
        return Ok(None);
    };
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| anyhow::anyhow!("server.tls_cert {}: {e}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("server.tls_cert {}: {e}", files.cert.display()))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("server.tls_key {}: {e}", files.key.display()))?;
    // TLS 1.2 and 1.3 only (rustls never offers 1.0/1.1).
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| anyhow::anyhow!("server TLS certificate/key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Serve connections from `listener` until `shutdown` turns true, then let
/// in-flight requests finish (up to the configured grace period).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = state.config.server.clone();
    let limits = ConnLimits::from_config(&cfg);
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(http_builder(&limits));
    loop {
        let permit = tokio::select! {
            _ = shutdown.changed() => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // The guard's clock starts at the accept: a client that never
            // sends a request is closed after `header_read_timeout`.
            let guard = ConnGuard::new(limits);
            let result = match tls {
                Some(acc) => {
                    let handshake = tokio::time::timeout(
                        limits
                            .header_read_timeout
                            .min(std::time::Duration::from_secs(10)),
                        acc.accept(stream),
                    );
                    match handshake.await {
                        Ok(Ok(tls_stream)) => {
                            drive(tls_stream, &builder, state, watcher, guard).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => drive(stream, &builder, state, watcher, guard).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(cfg.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; dropping remaining connections");
    }
}

/// The HTTP/1 and HTTP/2 settings. hyper's own limits sit above the
/// gateway's, which [`conn`] and [`dispatch`] check first so that every
/// refusal has a JSON body; hyper's HTTP/1 header timer is not used (it
/// also ran on idle keep-alive connections): [`ConnGuard`] keeps time.
/// Streams one HTTP/2 connection may have open at once.
const H2_MAX_STREAMS: u32 = 100;

fn http_builder(limits: &ConnLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_head_bytes() + 8192)
        .keep_alive(true);
    // HTTP/2 counts 32 bytes per header on top of name and value, and the
    // request target travels as a header too.
    let h2_list = limits
        .max_head_bytes()
        .saturating_add(32 * (limits.max_headers + 8));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(h2_list).unwrap_or(u32::MAX))
        // gRPC clients multiplex many calls on one connection; each may
        // hold a request message of up to a few MiB while it arrives.
        .max_concurrent_streams(H2_MAX_STREAMS)
        // A peer that stops answering pings is gone: its streams end.
        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .keep_alive_timeout(std::time::Duration::from_secs(20));
    builder
}

/// Serve one connection until it ends, or until its guard finds it silent,
/// idle or too slow to send a head.
async fn drive<T>(
    io: T,
    builder: &auto::Builder<TokioExecutor>,
    state: Arc<AppState>,
    watcher: Watcher,
    guard: ConnGuard,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = {
        let guard = guard.clone();
        service_fn(move |req| {
            let state = state.clone();
            let guard = guard.clone();
            async move {
                let (held, refusal) = guard.request_started();
                let resp = handle(state, req, refusal).await;
                Ok::<_, std::convert::Infallible>(conn::hold_until_sent(resp, held))
            }
        })
    };
    let io = TokioIo::new(GuardedIo::new(io, guard.clone()));
    let served = watcher.watch(builder.serve_connection(io, svc).into_owned());
    tokio::select! {
        r = served => r,
        () = guard.expired() => {
            tracing::debug!("closing a connection that was silent, idle or slow to send its request");
            Ok(())
        }
    }
}

/// One request: id, span, route, dispatch, metrics. `refusal` answers a
/// request head [`conn`] refused (the request is its stand-in).
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    refusal: Option<Refusal>,
) -> Response<ResBody> {
    let id = state.request_id();
    let method = req.method().clone();
    let version = req.version();
    // For the console's list of recent misses and errors (a cheap clone:
    // the URI's bytes are shared).
    let uri = req.uri().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.uri().path(), token = tracing::field::Empty);
    async move {
        let started = std::time::Instant::now();
        let method_label = match refusal {
            Some(_) => "other",
            None => metrics::method_label(&method),
        };
        let (mut resp, remote, outcome) = match refusal {
            Some(r) => (refused(r), "-".to_owned(), Outcome::Error),
            None => dispatch(&state, req, &id).await,
        };
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        if resp.status() == StatusCode::REQUEST_TIMEOUT && version < http::Version::HTTP_2 {
            // The rest of a stalled body may still come; it is not read.
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        // Only configured remotes become metric labels: names in URLs are
        // chosen by clients, and every label value is a series forever.
        let remote_label = if remote == "-" || state.config.remote(&remote).is_some() {
            remote.as_str()
        } else {
            "other"
        };
        state
            .engine
            .metrics
            .request(remote_label, method_label, outcome);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = resp.status().as_u16();
        if remote_label == remote && remote != "-" {
            // What a remote serves may be a page a browser renders; it
            // never runs in the gateway's origin (where the console is).
            // Appended: a browser enforces every policy it gets, so one an
            // adapter or upstream set cannot lift this one.
            resp.headers_mut().append(
                http::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            );
            if Recent::wanted(outcome, status) {
                state.console.recent.record(
                    &remote,
                    Event {
                        at_ms: crate::store::now_ms(),
                        method: method.as_str().chars().take(16).collect(),
                        path: uri.path().chars().take(1024).collect(),
                        status,
                        outcome: outcome.as_str(),
                        ms,
                    },
                );
            }
        }
        tracing::info!(status, remote = %remote, outcome = outcome.as_str(), ms, "served");
        resp
    }
    .instrument(span)
    .await
}

/// The answer to a refused request head; the connection closes after it.
fn refused(r: Refusal) -> Response<ResBody> {
    let mut resp = body::error(r.status, r.message);
    resp.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

async fn dispatch(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    id: &str,
) -> (Response<ResBody>, String, Outcome) {
    let cfg = &state.config.server;
    if let Some(r) = over_limits(&req, cfg) {
        // Whatever follows on this connection cannot be trusted.
        return (refused(r), "-".into(), Outcome::Error);
    }
    // gRPC (REAPI) calls never reach the URL routes: their paths are
    // service names, and their errors are gRPC statuses.
    if crate::grpc::is_grpc(&req) {
        let (parts, body) = req.into_parts();
        let body = ClientStream::new(body, cfg.body_read_timeout);
        return crate::grpc::handle(state, Request::from_parts(parts, body), id).await;
    }
    let route = match routes::parse(req.method(), req.uri()) {
        Ok(r) => r,
        Err(e) => {
            let kind = routes::kind_of(req.uri().path());
            let mut r = kind.error(e.status(), e.oci_code(), e.to_string());
            if let routes::RouteError::MethodNotAllowed { allowed } = &e
                && let Ok(v) = HeaderValue::from_str(allowed)
            {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            return (r, "-".into(), Outcome::Error);
        }
    };
    // Access control, before any other work. The token's name goes into
    // the request span; the header itself is dropped here so that nothing
    // after this point (adapters, upstream requests, logs) can see it.
    match auth::authorize(&state.config, &route, req.method(), req.headers()) {
        Ok(Some(token)) => {
            tracing::Span::current().record("token", token.name.as_str());
        }
        Ok(None) => {}
        Err(e) => {
            let remote = match &route {
                Route::Remote { remote, .. } => remote.clone(),
                _ => "-".into(),
            };
            let oci = matches!(
                route,
                Route::Remote {
                    kind: RouteKind::Registry,
                    ..
                } | Route::RegistryPing
            );
            tracing::info!(error = %e, "access denied");
            return (e.response(oci), remote, Outcome::Error);
        }
    }
    let (mut parts, body) = req.into_parts();
    let body = ClientStream::new(body, cfg.body_read_timeout);
    // The console checks credentials itself (a session cookie counts) and
    // never passes them on; everything else must not see them from here.
    if route != Route::Console {
        parts.headers.remove(http::header::AUTHORIZATION);
    }
    match route {
        Route::Admin(a) => (admin::handle(state, a).await, "-".into(), Outcome::Direct),
        Route::RegistryPing => (admin::registry_ping(), "-".into(), Outcome::Direct),
        Route::Peer { remote, key } => (
            crate::serve::peer(state, &parts, &remote, &key).await,
            remote,
            Outcome::Direct,
        ),
        Route::Console => (
            crate::console::handle(state, parts, body, id).await,
            "-".into(),
            Outcome::Direct,
        ),
        Route::Remote { kind, remote, path } => {
            let target = Target {
                kind,
                remote: &remote,
                path: &path,
                request_id: id,
            };
            let (r, o) = crate::serve::handle(state.clone(), parts, body, target).await;
            (r, remote, o)
        }
    }
}

/// A request the limits of `[server]` refuse. An HTTP/1 head was checked
/// as sent by [`conn::head`] already (sizes, counts, framing), so only
/// HTTP/2 requests get those checks here, on what hyper parsed. Every
/// request is refused with more than one `Authorization` header (which
/// one counts would be a guess).
fn over_limits(req: &Request<Incoming>, cfg: &crate::config::ServerConfig) -> Option<Refusal> {
    let h = req.headers();
    if h.get_all(http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Some(conn::head::bad_request(
            "the request has more than one Authorization header",
        ));
    }
    if req.version() <= http::Version::HTTP_11 {
        return None;
    }
    let limits = &ConnLimits::from_config(cfg);
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > limits.max_uri_bytes {
        return Some(conn::head::uri_too_long(limits));
    }
    if h.len() > limits.max_headers {
        return Some(conn::head::too_many_headers(limits));
    }
    let bytes: usize = h
        .iter()
        .map(|(n, v)| conn::head::header_size(n.as_str().as_bytes(), v.as_bytes()))
        .sum();
    if bytes > limits.max_header_bytes {
        return Some(conn::head::headers_too_large(limits));
    }
    let count = |n: http::header::HeaderName| h.get_all(n).iter().count();
    let te = count(http::header::TRANSFER_ENCODING);
    let why = if te > 0 && h.contains_key(http::header::CONTENT_LENGTH) {
        "the request has both Transfer-Encoding and Content-Length"
    } else if te > 1 {
        "the request has more than one Transfer-Encoding header"
    } else if count(http::header::CONTENT_LENGTH) > 1 {
        "the request has more than one Content-Length header"
    } else {
        return None;
    };
    Some(conn::head::bad_request(why))
}
