//! Requests that are not cached: streamed straight through to the
//! upstream and back (`no-store`, or a method other than GET/HEAD whose
//! body is not known whole), with only the representation headers kept.

use super::error::ServeError;
use super::request::{Req, Served};
use crate::body;
use crate::cache::Outcome;
use crate::cache::head::REPRESENTATION_HEADERS;
use crate::plugins::wit;
use crate::plugins::wit_http::outgoing;
use crate::reqbody::ClientBody;
use http::{HeaderValue, Method, Response, header};

/// Stream an uncacheable request straight through (`no-store`, or a
/// method other than GET/HEAD).
pub async fn bypass(
    req: &Req<'_>,
    up: &wit::UpstreamRequest,
    client_body: ClientBody,
) -> Result<Served, ServeError> {
    let (engine, parts, remote) = (req.engine, req.parts, req.remote);
    let mut out = outgoing(up);
    let sent = match (up.forward_body, client_body) {
        (false, _) => engine.upstream.send(&remote.cfg, &out).await,
        (true, ClientBody::Buffered(b)) => {
            out.body = Some(b);
            engine.upstream.send(&remote.cfg, &out).await
        }
        // Not buffered whole: stream it (no retries, no failover).
        (true, body) => {
            engine
                .upstream
                .send_streaming(
                    &remote.cfg,
                    out.method.clone(),
                    &out.target,
                    &out.headers,
                    out.use_credentials,
                    body.into_upstream(),
                )
                .await
        }
    };
    match sent {
        Err(e) => {
            engine.metrics.upstream_request(&remote.cfg.name, e.kind());
            Err(ServeError::new(e.status(), "UNAVAILABLE", e.to_string()))
        }
        Ok((resp, _)) => {
            engine
                .metrics
                .upstream_request(&remote.cfg.name, resp.status().as_str());
            let (rparts, incoming) = resp.into_parts();
            let mut r = Response::new(body::empty());
            *r.status_mut() = rparts.status;
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::ETAG,
                header::LAST_MODIFIED,
                header::CACHE_CONTROL,
            ]
            .into_iter()
            .chain(REPRESENTATION_HEADERS)
            {
                for v in rparts.headers.get_all(&name) {
                    r.headers_mut().append(name.clone(), v.clone());
                }
            }
            if let Some(source) = Outcome::Bypass.source() {
                r.headers_mut()
                    .insert("x-artifact-source", HeaderValue::from_static(source));
            }
            if parts.method != Method::HEAD {
                use http_body_util::BodyExt;
                *r.body_mut() = incoming
                    .map_err(|e| -> body::BoxError { Box::new(e) })
                    .boxed_unsync();
            }
            Ok((r, Outcome::Bypass))
        }
    }
}
