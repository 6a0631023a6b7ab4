//! The accept loop: plain TCP or TLS (rustls, TLS 1.2+), HTTP/1.1 and
//! HTTP/2, a connection limit, request size limits, header read timeout
//! (slowloris), and graceful shutdown.

use crate::body::{self, ResBody};
use crate::config::ServerConfig;
use crate::metrics::Outcome;
use crate::routes::{self, Route};
use crate::state::AppState;
use crate::{admin, auth, proxy};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
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
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_headers(cfg.max_headers)
        .max_buf_size(cfg.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(cfg.max_header_bytes as u32);
    let builder = Arc::new(builder);
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
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
            });
            let result = match tls {
                Some(acc) => match tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    acc.accept(stream),
                )
                .await
                {
                    Ok(Ok(tls_stream)) => {
                        watcher
                            .watch(
                                builder
                                    .serve_connection_with_upgrades(TokioIo::new(tls_stream), svc)
                                    .into_owned(),
                            )
                            .await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => {
                    watcher
                        .watch(
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .into_owned(),
                        )
                        .await
                }
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

/// One request: id, span, route, dispatch, metrics.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<ResBody> {
    let id = state.request_id();
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.uri().path(), token = tracing::field::Empty);
    async move {
        let started = std::time::Instant::now();
        let (mut resp, remote, outcome) = dispatch(&state, req, &id).await;
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        state.metrics.request(&remote, method.as_str(), outcome);
        tracing::info!(status = resp.status().as_u16(), remote = %remote, outcome = outcome.as_str(), ms = started.elapsed().as_secs_f64() * 1000.0, "served");
        resp
    }
    .instrument(span)
    .await
}

async fn dispatch(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    id: &str,
) -> (Response<ResBody>, String, Outcome) {
    let cfg = &state.config.server;
    if let Some(why) = ambiguous_framing(req.headers()) {
        let mut r = body::error(StatusCode::BAD_REQUEST, why);
        // Whatever follows on this connection cannot be trusted.
        r.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return (r, "-".into(), Outcome::Error);
    }
    let uri_len = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if uri_len > cfg.max_uri_bytes {
        return (
            body::error(
                StatusCode::URI_TOO_LONG,
                format!("the request URI is longer than {} bytes", cfg.max_uri_bytes),
            ),
            "-".into(),
            Outcome::Error,
        );
    }
    let route = match routes::parse(req.method(), req.uri()) {
        Ok(r) => r,
        Err(e) => {
            let mut r = body::error(e.status(), e.to_string());
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
                Route::Registry { remote, .. } | Route::Remote { remote, .. } => remote.clone(),
                _ => "-".into(),
            };
            let oci = matches!(route, Route::Registry { .. } | Route::RegistryPing);
            tracing::info!(error = %e, "access denied");
            return (e.response(oci), remote, Outcome::Error);
        }
    }
    let (mut parts, body) = req.into_parts();
    parts.headers.remove(http::header::AUTHORIZATION);
    match route {
        Route::Admin(a) => (admin::handle(state, a).await, "-".into(), Outcome::Direct),
        Route::RegistryPing => (admin::registry_ping(), "-".into(), Outcome::Direct),
        Route::Registry { remote, path } => {
            let (r, o) = proxy::handle(
                state.clone(),
                parts,
                body,
                proxy::Family::Registry,
                &remote,
                &path,
                id,
            )
            .await;
            (r, remote, o)
        }
        Route::Remote { remote, path } => {
            let (r, o) = proxy::handle(
                state.clone(),
                parts,
                body,
                proxy::Family::RemoteApi,
                &remote,
                &path,
                id,
            )
            .await;
            (r, remote, o)
        }
    }
}

/// Request framing that proxies in front of us might read differently
/// (the raw material of request smuggling). hyper already refuses invalid
/// lengths and codings; this refuses the valid-but-ambiguous rest.
fn ambiguous_framing(h: &http::HeaderMap) -> Option<&'static str> {
    let te = h.get_all(http::header::TRANSFER_ENCODING).iter().count();
    if te > 0 && h.contains_key(http::header::CONTENT_LENGTH) {
        return Some("the request has both Transfer-Encoding and Content-Length");
    }
    if te > 1 {
        return Some("the request has more than one Transfer-Encoding header");
    }
    if h.get_all(http::header::CONTENT_LENGTH).iter().count() > 1 {
        return Some("the request has more than one Content-Length header");
    }
    None
}
