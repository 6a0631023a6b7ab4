//! Answers from what the store (or a fill) holds: a stored entry served
//! with conditional GET (`If-None-Match`, `If-Modified-Since`), `Range` and
//! `HEAD` honoured; and an adapter's direct response, checked.

use super::error::ServeError;
use super::request::{Req, Served};
use crate::body::{self, ResBody};
use crate::cache::Engine;
use crate::cache::Outcome;
use crate::cache::head::head_of_entry;
use crate::cache::range::{self, RangeSpec};
use crate::cache::reader;
use crate::cache::{FillState, Head};
use crate::plugins::{Adapter, wit};
use crate::store::{BlobRead, Content, Entry, EntryClass, EntryId};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use std::sync::Arc;

/// Serve a stored entry whose content is open. A negative entry, or a
/// hosted entry one of whose references is missing, is answered 404 here
/// (an answer from the store: it counts as the caller says, not as an
/// error).
pub async fn serve_entry(
    req: &Req<'_>,
    entry: Arc<Entry>,
    data: Content,
    outcome: Outcome,
) -> Response<ResBody> {
    let (engine, parts) = (req.engine, req.parts);
    // Hosted completeness: an entry whose references are missing is absent.
    for reference in &entry.references {
        if engine
            .entry(&EntryId::new(req.remote_name(), reference))
            .await
            .is_none()
        {
            return ServeError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "{} references {reference}, which is missing",
                    parts.uri.path()
                ),
            )
            .render(req.target.kind);
        }
    }
    if entry.class == EntryClass::NotFound {
        return ServeError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{} was not found upstream (cached)", parts.uri.path()),
        )
        .from_source(outcome)
        .render(req.target.kind);
    }
    engine.store.meta.touch(&entry.blob);
    let head = head_of_entry(&entry, outcome);
    respond_from(
        engine,
        parts,
        req.remote_name(),
        head,
        match data {
            Content::Memory(bytes) => FillOrBlob::Memory(bytes),
            Content::Blob(data) => FillOrBlob::Blob(data, entry.size),
        },
    )
}

/// Where a response's bytes come from.
pub enum FillOrBlob {
    /// Bytes in memory.
    Memory(Bytes),
    /// A stored blob of the given length.
    Blob(Arc<dyn BlobRead>, u64),
    /// A fill in progress (or done), read as it grows.
    Fill(tokio::sync::watch::Receiver<FillState>),
}

/// Build the response for a head and a data source, honouring HEAD,
/// `Range`, `If-None-Match` and `If-Modified-Since`; adds what every
/// answer carries (`X-Artifact-Source`, `X-Artifact-Size`, and for a `200`
/// `Accept-Ranges`).
pub fn respond_from(
    engine: &Engine,
    parts: &Parts,
    remote: &str,
    head: Head,
    src: FillOrBlob,
) -> Response<ResBody> {
    let mut resp = Response::new(body::empty());
    *resp.headers_mut() = head.headers;
    let h = resp.headers_mut();
    if let Some(source) = head.outcome.source() {
        h.insert("x-artifact-source", HeaderValue::from_static(source));
    }
    if let Some(size) = head.size {
        h.insert("x-artifact-size", HeaderValue::from(size));
    }
    if head.status != StatusCode::OK {
        *resp.status_mut() = head.status;
        return resp;
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Conditional GET from the client.
    if let (Some(inm), Some(etag)) = (
        parts.headers.get(header::IF_NONE_MATCH),
        resp.headers().get(header::ETAG),
    ) {
        let etag = etag.as_bytes();
        if inm.as_bytes() == b"*"
            || inm
                .to_str()
                .map(|s| {
                    s.split(',')
                        .any(|t| t.trim().trim_start_matches("W/").as_bytes() == etag)
                })
                .unwrap_or(false)
        {
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            return resp;
        }
    }
    // `If-Modified-Since` counts only without `If-None-Match` (RFC 9110
    // 13.1.3); `apk update` sends it for APKINDEX.tar.gz.
    let http_date = |v: &HeaderValue| httpdate::parse_http_date(v.to_str().ok()?).ok();
    if !parts.headers.contains_key(header::IF_NONE_MATCH)
        && let Some(since) = parts
            .headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(http_date)
        && let Some(modified) = resp
            .headers()
            .get(header::LAST_MODIFIED)
            .and_then(http_date)
        && modified <= since
    {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    let range_hdr = parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (start, end, status) = match (head.size, range::parse(range_hdr, head.size.unwrap_or(0))) {
        (Some(len), RangeSpec::Partial { start, end }) if range_hdr.is_some() => {
            (start, Some(end), {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                StatusCode::PARTIAL_CONTENT
            })
        }
        (Some(len), RangeSpec::Unsatisfiable) if range_hdr.is_some() => {
            // The plain JSON error on every route kind (also `/v2/`), as
            // it always was; it carries `Content-Range`, so it is built here
            // rather than as a `ServeError`.
            let mut r = body::error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the requested range is outside the {len}-byte object"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        (size, _) => (0, size, StatusCode::OK),
    };
    *resp.status_mut() = status;
    if let Some(e) = end {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(e - start));
    }
    if parts.method == Method::HEAD {
        return resp;
    }
    let metrics = engine.metrics.clone();
    let remote = remote.to_owned();
    let on_end: reader::OnEnd = Box::new(move |n| metrics.served_bytes(&remote, n));
    *resp.body_mut() = match src {
        FillOrBlob::Memory(bytes) => {
            let len = bytes.len() as u64;
            reader::memory_body(bytes, start, end.unwrap_or(len), on_end)
        }
        FillOrBlob::Blob(data, len) => {
            reader::blob_body(data, len, start, end.unwrap_or(len), on_end)
        }
        FillOrBlob::Fill(rx) => reader::fill_body(rx, start, end, on_end),
    };
    resp
}

/// An adapter's direct response (`respond`), checked: an invalid status or
/// header is refused with 502 (and counted as the adapter's bad output)
/// rather than sent or silently dropped.
pub fn direct(
    req: &Req<'_>,
    adapter: &Adapter,
    r: wit::DirectResponse,
) -> Result<Served, ServeError> {
    let resp = checked(r).map_err(|m| {
        req.engine.metrics.plugin_error(adapter.name(), "bad_output");
        tracing::error!(remote = req.remote_name(), adapter = adapter.name(), error = %m, "adapter returned an invalid direct response");
        ServeError::new(
            StatusCode::BAD_GATEWAY,
            "UNKNOWN",
            format!(
                "the {} adapter returned an invalid response: {m}",
                adapter.name()
            ),
        )
    })?;
    Ok((resp, Outcome::Direct))
}

/// A direct answer from an adapter, checked: an invalid status or header
/// is refused (the caller answers 502) rather than sent or silently dropped.
/// Framing headers are the server's business and are not taken from adapters.
fn checked(r: wit::DirectResponse) -> Result<Response<ResBody>, String> {
    let status = StatusCode::from_u16(r.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| format!("status {} is not an HTTP status from 200 to 599", r.status))?;
    let mut resp = Response::new(body::full(r.body));
    *resp.status_mut() = status;
    for h in r.headers {
        let k = header::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("{:?} is not a valid header name", h.name))?;
        let v = HeaderValue::from_str(&h.value)
            .map_err(|_| format!("the value of header {k} is not a valid header value"))?;
        if k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING || k == header::CONNECTION
        {
            continue;
        }
        resp.headers_mut().append(k, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    //! The answers from a stored head, driven through an [`Engine`] (a
    //! store in a temp dir, fresh metrics) without the HTTP front.
    use super::*;
    use crate::cache::testkit;
    use http::HeaderMap;
    use http_body_util::BodyExt;

    const BODY: &[u8] = b"abcdefghij";

    fn engine(dir: &std::path::Path) -> Engine {
        let config = testkit::config("127.0.0.1:9".parse().unwrap());
        testkit::engine(dir, &config)
    }

    fn head() -> Head {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Wed, 01 Jan 2025 00:00:00 GMT"),
        );
        Head {
            status: StatusCode::OK,
            headers,
            size: Some(BODY.len() as u64),
            outcome: Outcome::Hit,
        }
    }

    fn parts(method: Method, headers: &[(&'static str, &'static str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/r/f");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    async fn answer(
        engine: &Engine,
        method: Method,
        headers: &[(&'static str, &'static str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let src = FillOrBlob::Memory(Bytes::from_static(BODY));
        let resp = respond_from(engine, &parts(method, headers), "r", head(), src);
        let (p, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (p.status, p.headers, bytes)
    }

    #[tokio::test]
    async fn a_whole_answer_carries_the_source_the_size_and_counts_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let (status, h, body) = answer(&engine, Method::GET, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, BODY);
        assert_eq!(h["x-artifact-source"], "cache");
        assert_eq!(h["x-artifact-size"], "10");
        assert_eq!(h["content-length"], "10");
        assert_eq!(h["accept-ranges"], "bytes");
        let metrics = engine.metrics.render();
        assert!(
            metrics.lines().any(|l| l.contains("served_bytes")
                && l.contains("remote=\"r\"")
                && l.ends_with(" 10")),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn head_and_conditional_requests_get_no_body() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let (status, h, body) = answer(&engine, Method::HEAD, &[]).await;
        assert_eq!(
            (status, h["content-length"].to_str().unwrap()),
            (StatusCode::OK, "10")
        );
        assert!(body.is_empty());
        for inm in ["\"v1\"", "W/\"v1\"", "\"v0\", \"v1\"", "*"] {
            let (status, _, body) = answer(&engine, Method::GET, &[("if-none-match", inm)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{inm}");
            assert!(body.is_empty());
        }
        let (status, _, _) = answer(&engine, Method::GET, &[("if-none-match", "\"v0\"")]).await;
        assert_eq!(status, StatusCode::OK);
        let later = ("if-modified-since", "Thu, 02 Jan 2025 00:00:00 GMT");
        let earlier = ("if-modified-since", "Tue, 31 Dec 2024 00:00:00 GMT");
        assert_eq!(
            answer(&engine, Method::GET, &[later]).await.0,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            answer(&engine, Method::GET, &[earlier]).await.0,
            StatusCode::OK
        );
        // If-None-Match decides alone when both are sent (RFC 9110 13.1.3).
        let both = [("if-none-match", "\"v0\""), later];
        assert_eq!(answer(&engine, Method::GET, &both).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn ranges_are_served_and_refused_with_content_range() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let (status, h, body) = answer(&engine, Method::GET, &[("range", "bytes=2-4")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(h["content-range"], "bytes 2-4/10");
        assert_eq!(body, b"cde");
        let (status, _, body) = answer(&engine, Method::GET, &[("range", "bytes=-3")]).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::PARTIAL_CONTENT, &b"hij"[..])
        );
        let (status, h, _) = answer(&engine, Method::GET, &[("range", "bytes=20-")]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(h["content-range"], "bytes */10");
    }
}
