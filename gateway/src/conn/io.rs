//! The IO of one client connection: HTTP/1 request heads are read and
//! checked here ([`super::head`]) before hyper gets them, and bodies are
//! followed by their framing so that every head is checked, pipelined or
//! not. HTTP/2 (recognised by its preface) passes through unchanged.
//!
//! A refused head never reaches hyper: it gets a stand-in head (`GET /`
//! with `Connection: close`) whose request the service answers with the
//! refusal ([`super::ConnGuard::request_started`]), so the error goes out
//! in order after any earlier responses, as JSON, and the connection
//! closes. Nothing after a refused head is passed on; what the client
//! still sends is read and dropped for a moment after the response
//! (bounded in bytes and time), so that closing with unread bytes does not
//! reset the connection before the client has read the refusal.

use super::chunked::Chunked;
use super::head::{self, Framing, Head};
use super::{ConnGuard, Refusal};
use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The first bytes of every HTTP/2 connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long, and how many bytes, a refused client's further bytes are
/// read and dropped before the connection closes.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// What stands in for a refused head.
const STAND_IN: &[u8] = b"GET / HTTP/1.1\r\nhost: artgate\r\nconnection: close\r\n\r\n";

/// Where the bytes read next belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing read yet: HTTP/1 or HTTP/2?
    Start,
    /// A request head.
    Head,
    /// A body of this many more bytes.
    Body(u64),
    /// A chunked body.
    Chunked(Chunked),
    /// HTTP/2: passed through.
    Opaque,
    /// After a refused head: nothing more is read.
    Closed,
}

pin_project_lite::pin_project! {
    /// `inner` with its HTTP/1 request heads checked; see the module docs.
    pub struct GuardedIo<T> {
        #[pin]
        inner: T,
        guard: ConnGuard,
        mode: Mode,
        // Read from `inner`, not yet classified.
        held: BytesMut,
        // Classified, for hyper.
        ready: BytesMut,
        eof: bool,
        shut: bool,
        linger: Option<Pin<Box<tokio::time::Sleep>>>,
        lingered: usize,
    }
}

impl<T> GuardedIo<T> {
    /// Wrap the connection `inner` guarded by `guard`.
    pub fn new(inner: T, guard: ConnGuard) -> Self {
        GuardedIo {
            inner,
            guard,
            mode: Mode::Start,
            held: BytesMut::new(),
            ready: BytesMut::new(),
            eof: false,
            shut: false,
            linger: None,
            lingered: 0,
        }
    }
}

/// Move the first `n` bytes of `held` to `ready`.
fn pass(held: &mut BytesMut, ready: &mut BytesMut, n: usize) {
    let part = held.split_to(n);
    ready.extend_from_slice(&part);
}

/// Classify what `held` holds, moving what hyper may read to `ready`.
/// Returns when more bytes are needed.
fn classify(
    mode: &mut Mode,
    held: &mut BytesMut,
    ready: &mut BytesMut,
    guard: &ConnGuard,
    eof: bool,
) {
    while !held.is_empty() {
        match *mode {
            Mode::Start => {
                let n = held.len().min(H2_PREFACE.len());
                if held[..n] != H2_PREFACE[..n] {
                    *mode = Mode::Head;
                } else if n == H2_PREFACE.len() {
                    *mode = Mode::Opaque;
                } else if eof {
                    *mode = Mode::Head;
                } else {
                    return;
                }
            }
            Mode::Head => match head::check(&held[..], guard.limits()) {
                Head::Partial if eof => {
                    // Let hyper see the truncated head and end the connection.
                    let n = held.len();
                    pass(held, ready, n);
                }
                Head::Partial => return,
                Head::Accepted { len, framing } => {
                    pass(held, ready, len);
                    guard.head_released(None);
                    *mode = match framing {
                        Framing::None => Mode::Head,
                        Framing::Length(n) => Mode::Body(n),
                        Framing::Chunked => Mode::Chunked(Chunked::new()),
                    };
                }
                Head::Refused(r) => refuse(mode, held, ready, guard, r),
            },
            Mode::Body(left) => {
                let n = (held.len() as u64).min(left);
                pass(held, ready, n as usize);
                *mode = if n == left {
                    Mode::Head
                } else {
                    Mode::Body(left - n)
                };
            }
            Mode::Chunked(mut c) => match c.advance(&held[..]) {
                Ok(n) => {
                    pass(held, ready, n);
                    *mode = if c == Chunked::Done {
                        Mode::Head
                    } else {
                        Mode::Chunked(c)
                    };
                }
                Err(_) => {
                    // hyper reads the same bytes and fails the request; the
                    // connection ends after it.
                    let n = held.len();
                    pass(held, ready, n);
                    *mode = Mode::Closed;
                }
            },
            Mode::Opaque => {
                let n = held.len();
                pass(held, ready, n);
            }
            Mode::Closed => held.clear(),
        }
    }
}

fn refuse(
    mode: &mut Mode,
    held: &mut BytesMut,
    ready: &mut BytesMut,
    guard: &ConnGuard,
    r: Refusal,
) {
    held.clear();
    ready.extend_from_slice(STAND_IN);
    guard.head_released(Some(r));
    *mode = Mode::Closed;
}

impl<T: AsyncRead> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if *this.eof {
                return Poll::Ready(Ok(()));
            }
            if *this.mode == Mode::Closed {
                // Not an end of file: hyper would take that for a client
                // gone and drop the refusal. Its own progress wakes it.
                return Poll::Pending;
            }
            // Body bytes and HTTP/2 go straight into hyper's buffer.
            let direct = match *this.mode {
                Mode::Body(left) => Some(usize::try_from(left).unwrap_or(usize::MAX)),
                Mode::Opaque => Some(usize::MAX),
                _ => None,
            };
            if let Some(max) = direct.filter(|_| this.held.is_empty()) {
                let want = buf.remaining().min(max);
                let n = {
                    let mut rb = ReadBuf::new(buf.initialize_unfilled_to(want));
                    ready!(this.inner.as_mut().poll_read(cx, &mut rb))?;
                    rb.filled().len()
                };
                buf.advance(n);
                if n == 0 {
                    *this.eof = true;
                } else if let Mode::Body(left) = *this.mode {
                    let left = left - n as u64;
                    *this.mode = if left == 0 {
                        Mode::Head
                    } else {
                        Mode::Body(left)
                    };
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(this.inner.as_mut().poll_read(cx, &mut rb))?;
            let got = rb.filled();
            if got.is_empty() {
                *this.eof = true;
            } else {
                this.held.extend_from_slice(got);
            }
            classify(this.mode, this.held, this.ready, this.guard, *this.eof);
            if *this.mode == Mode::Head && !this.held.is_empty() {
                // The first bytes of a head are here: its clock starts.
                this.guard.head_started();
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if !*this.shut {
            ready!(this.inner.as_mut().poll_shutdown(cx))?;
            *this.shut = true;
        }
        if *this.mode != Mode::Closed || *this.eof {
            return Poll::Ready(Ok(()));
        }
        let linger = this
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_TIME)));
        while *this.lingered < LINGER_BYTES && linger.as_mut().poll(cx).is_pending() {
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match this.inner.as_mut().poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    *this.lingered += rb.filled().len();
                }
                Poll::Ready(_) => break,
            }
        }
        *this.eof = true;
        Poll::Ready(Ok(()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
