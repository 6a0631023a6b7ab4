//! `GET /ui/events`: the overview's live updates as server-sent events.
//! Every [`PERIOD`] one `data:` line carries what the overview's numbers,
//! charts and fills table show ([`Figures`]); `console.js` puts them into
//! the page. A stream ends by itself after [`LIFETIME`] (the browser's
//! `EventSource` reconnects), so no connection outlives a shutdown's grace
//! period by much or holds a client forever.

use super::data;
use super::pages::Figures;
use crate::body::ResBody;
use crate::state::AppState;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt as _;
use std::sync::Arc;
use std::time::Duration;

/// Time between two updates.
pub const PERIOD: Duration = Duration::from_secs(1);
/// How long one stream lasts.
pub const LIFETIME: Duration = Duration::from_secs(300);

/// The current update: the overview's figures, with the fills of the
/// `visible` remotes.
pub async fn live(state: &AppState, visible: &data::Visible) -> Figures {
    Figures::of(&data::overview(state, visible).await)
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
