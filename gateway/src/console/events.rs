//! `GET /ui/events`: the overview's live updates as server-sent events.
//! Every [`PERIOD`] one `data:` line carries what the overview's numbers,
//! charts and fills table show ([`Live`]); `console.js` puts them into the
//! page. A stream ends by itself after [`LIFETIME`] (the browser's
//! `EventSource` reconnects), so no connection outlives a shutdown's grace
//! period by much or holds a client forever.

use super::chart::{format_bytes, format_rate};
use super::data;
use crate::body::ResBody;
use crate::state::AppState;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt as _;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Time between two updates.
pub const PERIOD: Duration = Duration::from_secs(1);
/// How long one stream lasts.
pub const LIFETIME: Duration = Duration::from_secs(300);

/// One update.
#[derive(Debug, Serialize)]
pub struct Live {
    /// Requests per second, formatted.
    pub rate: String,
    /// Hit ratio of the last hour, formatted.
    pub hit_ratio: String,
    /// Requests of the last hour.
    pub requests: u64,
    /// Bytes served, fetched and saved, formatted.
    pub served: String,
    /// See `served`.
    pub fetched: String,
    /// See `served`.
    pub saved: String,
    /// Requests by outcome.
    pub outcomes: Vec<data::OutcomeCount>,
    /// The charts, as SVG (escaped on the server).
    pub chart_requests: String,
    /// See `chart_requests`.
    pub chart_bytes: String,
    /// Fills in progress.
    pub fills: Vec<LiveFill>,
}

/// A fill, formatted.
#[derive(Debug, Serialize)]
pub struct LiveFill {
    /// Remote.
    pub remote: String,
    /// Key.
    pub key: String,
    /// Phase.
    pub phase: &'static str,
    /// Percent done, when the size is known.
    pub percent: Option<f64>,
    /// Bytes so far / expected, formatted.
    pub progress: String,
    /// Waiting requests.
    pub waiters: usize,
    /// Running time, formatted.
    pub elapsed: String,
}

/// The current update, with the fills of the `visible` remotes.
pub async fn live(state: &AppState, visible: &data::Visible) -> Live {
    let o = data::overview(state, visible).await;
    let (chart_requests, chart_bytes) = data::charts(&o);
    let t = &o.last_hour;
    Live {
        rate: format_rate(o.rate_per_sec),
        hit_ratio: t
            .hit_ratio
            .map_or("-".into(), |r| format!("{:.1} %", r * 100.0)),
        requests: t.requests,
        served: format_bytes(t.served_bytes),
        fetched: format_bytes(t.fetched_bytes),
        saved: format_bytes(t.saved_bytes),
        outcomes: t.by_outcome.clone(),
        chart_requests,
        chart_bytes,
        fills: o
            .fills
            .iter()
            .map(|f| LiveFill {
                remote: f.remote.clone(),
                key: f.key.clone(),
                phase: f.phase,
                percent: f.percent,
                progress: match f.expected {
                    Some(e) => format!("{} / {}", format_bytes(f.bytes), format_bytes(e)),
                    None => format_bytes(f.bytes),
                },
                waiters: f.waiters,
                elapsed: format!("{:.1} s", f.elapsed_ms as f64 / 1000.0),
            })
            .collect(),
    }
}

/// The event stream, showing the `visible` remotes' fills (the viewer's
/// scopes when the stream starts; a stream lasts [`LIFETIME`]).
pub fn stream(state: Arc<AppState>, visible: data::Visible) -> Response<ResBody> {
    let visible = Arc::new(visible);
    let started = tokio::time::Instant::now();
    let events = futures_util::stream::unfold((state, true), move |(state, first)| {
        let visible = visible.clone();
        async move {
            if !first {
                tokio::time::sleep(PERIOD).await;
            }
            if started.elapsed() >= LIFETIME {
                return None;
            }
            let update = live(&state, &visible).await;
            let json = serde_json::to_string(&update).unwrap_or_else(|_| "{}".into());
            // `retry` tells the browser how soon to reconnect once this ends.
            let prefix = if first { "retry: 1000\n" } else { "" };
            let frame = http_body::Frame::data(Bytes::from(format!("{prefix}data: {json}\n\n")));
            Some((Ok::<_, crate::body::BoxError>(frame), (state, false)))
        }
    });
    let mut r = Response::new(http_body_util::StreamBody::new(events).boxed_unsync());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
