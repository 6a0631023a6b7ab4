//! The one accept loop of the tests' HTTP servers: a hyper server (HTTP/1
//! and HTTP/2) on 127.0.0.1:0 that answers every request through a
//! handler, can be taken "down" (new connections closed at once, open ones
//! dropped), and stops when its [`Server`] is dropped.

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// A running server; dropping it stops accepting.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    down: Arc<AtomicBool>,
    down_tx: Arc<watch::Sender<bool>>,
    _stop: watch::Sender<bool>,
}

impl Server {
    /// Listen on 127.0.0.1:0 and answer each request with
    /// `handler(request, peer address)`.
    pub async fn start<H, F, B>(handler: H) -> Server
    where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
        F: Future<Output = Response<B>> + Send + 'static,
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test server");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let down_tx = Arc::new(watch::Sender::new(false));
        let (stop, mut stop_rx) = watch::channel(false);
        let handler = Arc::new(handler);
        let (d2, dt2) = (down.clone(), down_tx.clone());
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = stop_rx.changed() => break,
                    r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                };
                if d2.load(Ordering::SeqCst) {
                    // "Down": close the connection at once, before any
                    // response (the client sees a connection error).
                    drop(stream);
                    continue;
                }
                let handler = handler.clone();
                let mut down_rx = dt2.subscribe();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let answer = handler(req, peer);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    // Going "down" also drops kept-alive connections, so a
                    // client's connection pool cannot reach a down server.
                    tokio::select! {
                        _ = conn => {}
                        _ = down_rx.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        Server {
            addr,
            down,
            down_tx,
            _stop: stop,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Close every connection from now on, and the open ones (or stop
    /// doing so).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        self.down_tx.send_replace(down);
    }
}
