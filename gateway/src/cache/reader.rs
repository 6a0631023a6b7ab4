//! A response body that reads a fill (or a stored blob) with positional
//! reads, following the fill's published length until it is done.

use super::fill::FillState;
use crate::body::{BoxError, ResBody};
use crate::store::BlobRead;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::sync::watch;

/// Read size per chunk.
pub const CHUNK: usize = 256 * 1024;

/// Called with the number of body bytes sent when the body ends.
pub type OnEnd = Box<dyn FnOnce(u64) + Send>;

struct ReadState {
    rx: Option<watch::Receiver<FillState>>,
    fixed: Option<(Arc<dyn BlobRead>, u64)>,
    pos: u64,
    end: Option<u64>,
    sent: u64,
    on_end: Option<OnEnd>,
}

impl Drop for ReadState {
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.sent);
        }
    }
}

/// A body that follows a fill from byte `start` up to `end` (exclusive;
/// `None` = to the end of the object).
pub fn fill_body(
    rx: watch::Receiver<FillState>,
    start: u64,
    end: Option<u64>,
    on_end: OnEnd,
) -> ResBody {
    body_from(ReadState {
        rx: Some(rx),
        fixed: None,
        pos: start,
        end,
        sent: 0,
        on_end: Some(on_end),
    })
}

/// A body of bytes `start..end` of a stored blob of length `len`.
pub fn blob_body(
    data: Arc<dyn BlobRead>,
    len: u64,
    start: u64,
    end: u64,
    on_end: OnEnd,
) -> ResBody {
    body_from(ReadState {
        rx: None,
        fixed: Some((data, len)),
        pos: start,
        end: Some(end),
        sent: 0,
        on_end: Some(on_end),
    })
}

/// A body of bytes `start..end` of a blob held in memory; one frame. A
/// range beyond the bytes (an index entry that disagrees with its blob)
/// aborts the body instead of panicking.
pub fn memory_body(bytes: Bytes, start: u64, end: u64, on_end: OnEnd) -> ResBody {
    let part = usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .filter(|(s, e)| s <= e && *e <= bytes.len())
        .map(|(s, e)| bytes.slice(s..e));
    match part {
        Some(b) => {
            on_end(b.len() as u64);
            crate::body::full(b)
        }
        None => {
            on_end(0);
            let err: Result<hyper::body::Frame<Bytes>, BoxError> =
                Err("stored object is shorter than its index entry".into());
            http_body_util::StreamBody::new(futures_util::stream::once(async move { err }))
                .boxed_unsync()
        }
    }
}

fn body_from(state: ReadState) -> ResBody {
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        match next_chunk(&mut st).await {
            Ok(Some(b)) => {
                st.sent += b.len() as u64;
                Some((Ok(hyper::body::Frame::data(b)), st))
            }
            Ok(None) => None,
            Err(e) => {
                // Stop after the error: the connection is aborted.
                st.end = Some(st.pos);
                st.rx = None;
                st.fixed = None;
                Some((Err(e), st))
            }
        }
    });
    http_body_util::StreamBody::new(stream).boxed_unsync()
}

async fn next_chunk(st: &mut ReadState) -> Result<Option<Bytes>, BoxError> {
    loop {
        let (data, available, complete) = if let Some((d, len)) = &st.fixed {
            (d.clone(), *len, true)
        } else {
            let Some(rx) = st.rx.as_mut() else {
                return Ok(None);
            };
            let state = rx.borrow_and_update().clone();
            match state {
                FillState::Streaming { data, readable, .. } => (data, readable, false),
                FillState::Done { data, len, .. } => (data, len, true),
                FillState::Aborted(why) => {
                    return Err(why.message().into());
                }
                FillState::Failed(f) => return Err(f.message.clone().into()),
                FillState::Pending | FillState::Uncacheable => {
                    if rx.changed().await.is_err() {
                        return Err("the upstream fetch ended without a result".into());
                    }
                    continue;
                }
            }
        };
        let limit = match st.end {
            Some(e) => e.min(available),
            None => available,
        };
        if st.pos < limit {
            let want = ((limit - st.pos) as usize).min(CHUNK);
            let buf =
                crate::store::read_chunk(data, st.pos, want)
                    .await
                    .map_err(|e| -> BoxError {
                        format!("reading the stored object failed: {e}").into()
                    })?;
            if buf.is_empty() {
                return Err("stored object is shorter than its index entry".into());
            }
            st.pos += buf.len() as u64;
            return Ok(Some(Bytes::from(buf)));
        }
        if complete || st.end.is_some_and(|e| st.pos >= e) {
            return Ok(None);
        }
        let Some(rx) = st.rx.as_mut() else {
            return Ok(None);
        };
        if rx.changed().await.is_err() {
            // The leader went away; the last published state decides.
            let last = rx.borrow().clone();
            if !matches!(last, FillState::Done { .. }) {
                return Err("the upstream fetch ended before the body was complete".into());
            }
        }
    }
}
