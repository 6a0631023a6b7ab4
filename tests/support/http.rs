//! HTTP from the test's side: the one client setup, single requests read
//! to the end (or to the point the body broke off) as a [`Got`], and body
//! readers that hash as they go and tell a clean end from an aborted one.

use reqwest::header::HeaderMap;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

/// A response read to the end, or to the point its body broke off.
pub struct Got {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body bytes received (all of them unless `broke_off`); read them
    /// through [`Got::body`], which refuses a broken-off body.
    body: Vec<u8>,
    /// Why reading the body failed (an aborted transfer); `None` when it
    /// ended cleanly.
    pub broke_off: Option<String>,
}

impl Got {
    /// A response with a complete body (for answers read by hand).
    pub fn new(status: u16, headers: HeaderMap, body: Vec<u8>) -> Got {
        Got {
            status,
            headers,
            body,
            broke_off: None,
        }
    }

    /// The complete body (panics when the transfer broke off).
    pub fn body(&self) -> &[u8] {
        match &self.broke_off {
            None => &self.body,
            Some(e) => panic!("the body broke off: {e}"),
        }
    }

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

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(self.body()).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(self.body())
            )
        })
    }

    /// The one-sentence `error` of a JSON error body (panics when it is
    /// missing or empty).
    pub fn error(&self) -> String {
        json_error(&String::from_utf8_lossy(self.body()))
    }

    /// The one-sentence error of a JSON error body: `error`, or the OCI
    /// `errors[0].message` on registry routes. Panics when missing/empty.
    pub fn sentence(&self) -> String {
        let v = self.json();
        let msg = v["error"]
            .as_str()
            .or_else(|| v["errors"][0]["message"].as_str())
            .unwrap_or_else(|| panic!("no error message in {v}"));
        assert!(!msg.trim().is_empty(), "empty error message in {v}");
        msg.to_owned()
    }

    /// The OCI error code of a registry error body (which must carry a
    /// message too).
    pub fn code(&self) -> String {
        let v = self.json();
        let msg = v["errors"][0]["message"].as_str().unwrap_or("");
        assert!(!msg.trim().is_empty(), "no error message in {v}");
        v["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }
}

/// The one-sentence `error` of the JSON error body `text` (panics when
/// it is not JSON, or the sentence is missing or empty).
pub fn json_error(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"));
    assert!(!msg.trim().is_empty(), "empty error message in {v}");
    msg.to_owned()
}

/// A client that never uses a proxy (and lets idle pooled connections go
/// after 2 s); it follows redirects. See [`no_redirect_client`] for one
/// that shows a redirect as it was answered.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("reqwest client")
}

/// A client that never uses a proxy and never follows redirects, so a
/// test sees exactly what the gateway answered.
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Read `r` to the end of its body, or to the point the body broke off.
pub async fn read(mut r: reqwest::Response) -> Got {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let mut body = Vec::new();
    let broke_off = loop {
        match r.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) => break None,
            Err(e) => break Some(format!("{e:?}")),
        }
    };
    Got {
        status,
        headers,
        body,
        broke_off,
    }
}

/// Send `method` to `url` with extra `headers` through `client`, read the
/// whole response.
pub async fn send_with(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut rb = client.request(method.parse().expect("method"), url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    read(r).await
}

/// [`send_with`] through a new [`client`].
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)]) -> Got {
    send_with(&client(), method, url, headers).await
}

/// [`send_with`] through a new [`no_redirect_client`]: a redirect is
/// shown as the gateway answered it.
pub async fn send_exact(method: &str, url: &str, headers: &[(&str, &str)]) -> Got {
    send_with(&no_redirect_client(), method, url, headers).await
}

/// `GET` of `url` through [`send_exact`].
pub async fn get_exact(url: &str, headers: &[(&str, &str)]) -> Got {
    send_exact("GET", url, headers).await
}

/// `GET` of `url` through [`send`]: status, the header `header` (or ""
/// when absent), the whole body.
pub async fn get_header_body(url: &str, header: &str) -> (u16, String, Vec<u8>) {
    let g = send("GET", url, &[]).await;
    let h = g
        .headers
        .get(header)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (g.status, h, g.body().to_vec())
}

/// A response body read as far as it goes, hashed rather than kept.
pub struct Received {
    /// Bytes received.
    pub len: u64,
    /// Their sha256.
    pub sha256: String,
    /// The error that stopped the body (`None`: a clean end).
    pub error: Option<String>,
}

/// Read `resp`'s body to its end or its first error, hashing.
pub async fn drain(resp: reqwest::Response) -> Received {
    drain_progress(resp, Arc::default()).await
}

/// [`drain`], with the count of bytes so far in `progress`.
pub async fn drain_progress(mut resp: reqwest::Response, progress: Arc<AtomicU64>) -> Received {
    let mut h = Sha256::new();
    let mut len = 0u64;
    let error = loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                h.update(&c);
                len += c.len() as u64;
                progress.store(len, SeqCst);
            }
            Ok(None) => break None,
            Err(e) => break Some(format!("{e:?}")),
        }
    };
    Received {
        len,
        sha256: hex::encode(h.finalize()),
        error,
    }
}
