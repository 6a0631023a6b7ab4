//! Revalidation and what an upstream answer means for a fill: the
//! `HEAD`-compare check before any `GET`, the validators of a conditional
//! request, and the status of the answer — a 304 confirms the stored copy,
//! a 404 may become a negative entry, a 429, a 5xx or no answer at all
//! falls back to the stored copy (stale) when there is one, and only a 200
//! goes on to be read.

use super::fetch::{Answer, Fetched};
use super::stored::{refresh_and_publish, serve_stale, store_not_found};
use super::{FillError, Job, Step};
use crate::cache::Outcome;
use crate::cache::fill::{Failure, Fill};
use crate::cache::plan::Plan;
use crate::plugins::wit_http::outgoing;
use crate::store::{Entry, EntryClass, Validators};
use crate::upstream::UpstreamError;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use std::ops::ControlFlow;
use std::sync::Arc;

/// HEAD-compare revalidation (e.g. a tag's digest) before any GET: when
/// the plan compares a header and the stored entry has its value, ask with
/// `HEAD`. The same value confirms the stored copy; a 5xx or no answer
/// serves it stale; anything else goes on to the `GET`.
pub(super) async fn head_compare(job: &Job, fill: &Arc<Fill>, stored: Option<&Entry>) -> Step<()> {
    let (Some(old), Validators::HeadCompare(h)) = (stored, &job.plan.validator) else {
        return Ok(ControlFlow::Continue(()));
    };
    if old.compare_value.is_none() {
        return Ok(ControlFlow::Continue(()));
    }
    let engine = &job.engine;
    let remote_name = &job.remote.cfg.name;
    let mut out = outgoing(&job.sent);
    out.method = Method::HEAD;
    let published = match engine.upstream.send(&job.remote.cfg, &out).await {
        Ok((resp, _)) if resp.status().is_success() => {
            engine
                .metrics
                .upstream_request(remote_name, resp.status().as_str());
            let now = resp
                .headers()
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if now.is_none() || now != old.compare_value {
                return Ok(ControlFlow::Continue(()));
            }
            refresh_and_publish(job, fill, old.clone(), Outcome::Revalidated).await?
        }
        Ok((resp, _)) if resp.status().is_server_error() => {
            engine
                .metrics
                .upstream_request(remote_name, resp.status().as_str());
            serve_stale(job, fill, old.clone()).await?
        }
        Ok((resp, _)) => {
            engine
                .metrics
                .upstream_request(remote_name, resp.status().as_str());
            return Ok(ControlFlow::Continue(()));
        }
        Err(e) => {
            engine.metrics.upstream_request(remote_name, e.kind());
            serve_stale(job, fill, old.clone()).await?
        }
    };
    Ok(ControlFlow::Break(published))
}

/// The validators a conditional revalidation of the stored entry sends
/// (`If-None-Match`, `If-Modified-Since`), none for other plans, for a
/// negative entry or without a stored entry.
pub(super) fn validators(plan: &Plan, stored: Option<&Entry>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let (Some(old), Validators::Conditional) = (stored, &plan.validator) else {
        return out;
    };
    if old.class == EntryClass::NotFound {
        return out;
    }
    if let Some(v) = old
        .etag
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        out.push((header::IF_NONE_MATCH, v));
    }
    if let Some(v) = old
        .last_modified
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        out.push((header::IF_MODIFIED_SINCE, v));
    }
    out
}

/// What the upstream's answer means for the fill: only a 200 goes on to
/// be read; every other answer publishes the stored copy, a negative
/// entry, or fails the fill.
pub(super) async fn answer(
    job: &Job,
    fill: &Arc<Fill>,
    answer: Answer,
    stored: Option<&Entry>,
) -> Step<Fetched> {
    let fetched = match (answer, stored) {
        (Answer::Response(fetched), _) => *fetched,
        (
            Answer::Unanswered(UpstreamError::Unreachable { .. } | UpstreamError::Timeout { .. }),
            Some(old),
        ) => {
            return serve_stale(job, fill, old.clone())
                .await
                .map(ControlFlow::Break);
        }
        (Answer::Unanswered(e), _) => return Err(FillError::new(e.status(), e.to_string())),
    };
    let status = fetched.resp.status();
    let neg_ttl = job.remote.cfg.negative_ttl;
    let published = match (status, stored) {
        (StatusCode::OK, _) => return Ok(ControlFlow::Continue(fetched)),
        (StatusCode::NOT_MODIFIED, Some(old)) => {
            refresh_and_publish(job, fill, old.clone(), Outcome::Revalidated).await
        }
        (StatusCode::NOT_MODIFIED, None) => Err(FillError::bad_gateway(
            "the upstream answered 304 Not Modified to an unconditional request",
        )),
        (StatusCode::NOT_FOUND | StatusCode::GONE, _)
            if fetched.plan.cache_not_found && !neg_ttl.is_zero() =>
        {
            store_not_found(job, fill, neg_ttl).await
        }
        (StatusCode::NOT_FOUND | StatusCode::GONE, _) => Err(FillError::new(
            StatusCode::NOT_FOUND,
            format!("{} was not found upstream", job.req.path),
        )),
        // Rate limited (Docker Hub's pull limits): a stored copy is better
        // than nothing; without one the client learns why.
        (StatusCode::TOO_MANY_REQUESTS, Some(old)) => serve_stale(job, fill, old.clone()).await,
        (StatusCode::TOO_MANY_REQUESTS, None) => Err(FillError::Failed(Failure {
            status,
            message: "the upstream is rate-limiting this gateway (429 Too Many Requests); try again later".into(),
            code: Some("TOOMANYREQUESTS".into()),
        })),
        (s, Some(old)) if s.is_server_error() => serve_stale(job, fill, old.clone()).await,
        (s, None) if s.is_server_error() => Err(FillError::bad_gateway(format!(
            "the upstream answered {status}"
        ))),
        _ => Err(FillError::bad_gateway(format!(
            "the upstream answered {status}, which this remote cannot cache"
        ))),
    };
    published.map(ControlFlow::Break)
}

#[cfg(test)]
mod tests {
    use super::validators;
    use crate::cache::testkit::plan;
    use crate::store::{Digest, Entry, EntryClass, Validators};
    use http::{HeaderValue, header};

    /// A stored entry with both validators.
    fn with_validators() -> Entry {
        Entry {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Sun, 06 Dec 2026 10:00:00 GMT".into()),
            ..Entry::fetched(EntryClass::Mutable, Validators::Conditional, "/i".into())
        }
    }

    /// A conditional plan sends the stored entry's `ETag` and
    /// `Last-Modified` back, in that order.
    #[test]
    fn a_conditional_revalidation_sends_the_stored_validators() {
        let p = plan("i", EntryClass::Mutable, Validators::Conditional);
        let got = validators(&p, Some(&with_validators()));
        assert_eq!(
            got,
            [
                (header::IF_NONE_MATCH, HeaderValue::from_static("\"v1\"")),
                (
                    header::IF_MODIFIED_SINCE,
                    HeaderValue::from_static("Sun, 06 Dec 2026 10:00:00 GMT")
                ),
            ]
        );
    }

    /// Without a stored entry, for a negative entry, for another validator
    /// or with a value that is no header value, nothing is sent.
    #[test]
    fn no_validators_without_a_stored_response_to_confirm() {
        let conditional = plan("i", EntryClass::Mutable, Validators::Conditional);
        assert!(validators(&conditional, None).is_empty());
        let negative = Entry::negative(Digest::EMPTY, 1, 1, "/i".into());
        assert!(validators(&conditional, Some(&negative)).is_empty());
        let refetch = plan("i", EntryClass::Mutable, Validators::Refetch);
        assert!(validators(&refetch, Some(&with_validators())).is_empty());
        let broken = Entry {
            etag: Some("bad\nvalue".into()),
            last_modified: None,
            ..with_validators()
        };
        assert!(validators(&conditional, Some(&broken)).is_empty());
    }
}
