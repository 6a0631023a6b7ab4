//! How each remote's upstreams are doing, from the requests the gateway
//! sends them: the last success, the last error with its message, and the
//! latency to response headers. Kept in memory for the operator console
//! (`console/`); `/metrics` has the counters.

use crate::store::now_ms;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What is known about one remote's upstreams.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RemoteHealth {
    /// Requests sent (each attempt of a retried request counts once).
    pub requests: u64,
    /// Requests that failed without an HTTP answer, or answered 5xx.
    pub errors: u64,
    /// When an upstream last answered below 500, unix milliseconds.
    pub last_success_ms: Option<u64>,
    /// When the last error happened, unix milliseconds.
    pub last_error_ms: Option<u64>,
    /// The last error, one sentence (URLs with credentials redacted).
    pub last_error: Option<String>,
    /// Time to response headers of the last answered request, milliseconds.
    pub last_latency_ms: Option<f64>,
    /// Moving average of the time to response headers, milliseconds
    /// (each new answer weighs 1/8).
    pub avg_latency_ms: Option<f64>,
}

/// [`RemoteHealth`] of every remote that has sent an upstream request.
#[derive(Default)]
pub struct UpstreamHealth {
    by_remote: Mutex<HashMap<String, RemoteHealth>>,
}

impl UpstreamHealth {
    /// Record an answer with `status` after `latency`.
    pub fn answered(&self, remote: &str, status: u16, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        self.update(remote, |h| {
            h.last_latency_ms = Some(ms);
            h.avg_latency_ms = Some(match h.avg_latency_ms {
                Some(avg) => avg + (ms - avg) / 8.0,
                None => ms,
            });
            if status >= 500 {
                h.errors += 1;
                h.last_error_ms = Some(now_ms());
                h.last_error = Some(format!("the upstream answered {status}"));
            } else {
                h.last_success_ms = Some(now_ms());
            }
        });
    }

    /// Record a request that got no HTTP answer (`error` says why).
    pub fn failed(&self, remote: &str, error: &str) {
        self.update(remote, |h| {
            h.errors += 1;
            h.last_error_ms = Some(now_ms());
            h.last_error = Some(error.to_owned());
        });
    }

    /// The health of `remote`, if it ever sent a request.
    pub fn get(&self, remote: &str) -> Option<RemoteHealth> {
        self.lock().get(remote).cloned()
    }

    fn update(&self, remote: &str, f: impl FnOnce(&mut RemoteHealth)) {
        let mut map = self.lock();
        let h = match map.get_mut(remote) {
            Some(h) => h,
            None => map.entry(remote.to_owned()).or_default(),
        };
        h.requests += 1;
        f(h);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RemoteHealth>> {
        self.by_remote.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_failures_are_kept_per_remote() {
        let h = UpstreamHealth::default();
        assert!(h.get("a").is_none());
        h.answered("a", 200, Duration::from_millis(8));
        h.answered("a", 200, Duration::from_millis(16));
        let a = h.get("a").unwrap();
        assert_eq!((a.requests, a.errors), (2, 0));
        assert_eq!(a.last_latency_ms, Some(16.0));
        assert_eq!(a.avg_latency_ms, Some(9.0));
        assert!(a.last_success_ms.is_some() && a.last_error.is_none());
        h.failed("b", "connection refused");
        h.answered("b", 503, Duration::from_millis(1));
        let b = h.get("b").unwrap();
        assert_eq!((b.requests, b.errors), (2, 2));
        assert_eq!(b.last_error.as_deref(), Some("the upstream answered 503"));
        assert!(b.last_success_ms.is_none());
        assert_eq!(h.get("a").unwrap().requests, 2);
    }
}
