//! Package-mirror test helpers: a directory tree served through the
//! in-process [`Upstream`] (so tests can count requests and take it down),
//! and small HTTP helpers for reading gateway responses.

use super::gateway::Gateway;
use super::upstream::{Resource, Upstream};
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// A directory tree served by an in-process upstream below a URL prefix.
pub struct Mirror {
    /// The upstream serving the files (counters, fault switches).
    pub up: Upstream,
    /// URL path prefix the tree is served under, e.g. `/mirror`.
    prefix: String,
    /// Upstream paths loaded by the last [`Mirror::load`].
    loaded: Mutex<BTreeSet<String>>,
}

impl Mirror {
    /// Start an upstream that will serve trees under `prefix` (`/mirror`).
    pub async fn start(prefix: &str) -> Mirror {
        Mirror {
            up: Upstream::start().await,
            prefix: prefix.trim_end_matches('/').to_owned(),
            loaded: Mutex::new(BTreeSet::new()),
        }
    }

    /// The base URL of the served tree (a remote's `upstream`).
    pub fn url(&self) -> String {
        format!("{}{}", self.up.url(), self.prefix)
    }

    /// The upstream path of the remote-relative path `rel`.
    pub fn path(&self, rel: &str) -> String {
        format!("{}/{}", self.prefix, rel.trim_start_matches('/'))
    }

    /// Serve every file below `dir` at `{prefix}/{under}/{relative path}`
    /// (`under` may be empty)
    /// with an `ETag` (from its sha256) and a `Last-Modified` (its mtime);
    /// files served by an earlier load that are gone now answer 404.
    pub fn load(&self, dir: &Path, under: &str) {
        let mut now = BTreeSet::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
                let under = under.trim_matches('/');
                let path = if under.is_empty() {
                    self.path(&rel)
                } else {
                    self.path(&format!("{under}/{rel}"))
                };
                let body = std::fs::read(&p).unwrap();
                let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
                self.up.put(
                    &path,
                    Resource {
                        etag: Some(format!("\"{}\"", &sha256_hex(&body)[..16])),
                        last_modified: Some(httpdate::fmt_http_date(modified)),
                        body: body.into(),
                        ..Default::default()
                    },
                );
                now.insert(path);
            }
        }
        let mut loaded = self.loaded.lock().unwrap();
        for gone in loaded.difference(&now) {
            self.up.remove(gone);
        }
        *loaded = now;
    }

    /// The one loaded upstream path ending with `suffix` (panics unless
    /// exactly one matches).
    pub fn find(&self, suffix: &str) -> String {
        let loaded = self.loaded.lock().unwrap();
        let hits: Vec<&String> = loaded.iter().filter(|p| p.ends_with(suffix)).collect();
        assert_eq!(hits.len(), 1, "files ending with {suffix:?}: {hits:?}");
        hits[0].clone()
    }

    /// Every loaded upstream path.
    pub fn paths(&self) -> Vec<String> {
        self.loaded.lock().unwrap().iter().cloned().collect()
    }
}

/// Lower-case hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A gateway response read to the end (or to the point it broke off).
pub struct Got {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, or why reading it failed (an aborted transfer).
    pub body: Result<Vec<u8>, String>,
}

impl Got {
    /// A header as a string (panics when absent or not text).
    pub fn h(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing; headers: {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// `x-artifact-source`.
    pub fn source(&self) -> &str {
        self.h("x-artifact-source")
    }

    /// The complete body (panics when the transfer broke off).
    pub fn body(&self) -> &[u8] {
        match &self.body {
            Ok(b) => b,
            Err(e) => panic!("the body broke off: {e}"),
        }
    }

    /// The one-sentence `error` of a JSON error body.
    pub fn error(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(self.body())
            .unwrap_or_else(|e| panic!("error body is not JSON: {e}"));
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {v}"));
        assert!(!msg.trim().is_empty(), "empty error message in {v}");
        msg.to_owned()
    }
}

/// Send `method` to `url` with `headers`; read the whole response.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)]) -> Got {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut rb = client.request(method.parse().unwrap(), url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| format!("{e:?}"));
    Got {
        status,
        headers,
        body,
    }
}

/// `GET` of `path` below remote `remote` on `gw`, with `headers`.
pub async fn get_remote(gw: &Gateway, remote: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    send(
        "GET",
        &gw.url(&format!("/api/v1/remote/{remote}/{path}")),
        headers,
    )
    .await
}

/// The sum of the samples of metric `name` on `gw` whose labels contain
/// every one of `labels` (e.g. `remote="el"`); 0 when there is none.
pub async fn metric(gw: &Gateway, name: &str, labels: &[&str]) -> f64 {
    super::metric(&gw.metrics().await, name, labels)
}

/// Poll `cond` every 50 ms until it holds; panic with `what` after
/// `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (bounded) until no upstream fetch is in progress on `gw`
/// (background prefetches included).
pub async fn fills_settled(gw: &Gateway) {
    for _ in 0..500 {
        if metric(gw, "artgate_fills_inflight", &[]).await == 0.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("an upstream fetch is still in progress after 10 s");
}
