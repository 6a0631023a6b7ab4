//! Single HTTP requests read to the end, for tests that check the status,
//! headers and body of one response.

use reqwest::header::HeaderMap;

/// A response read to the end.
pub struct Got {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
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

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Send `method` to `url` with extra `headers` through `client`, read the
/// whole response.
pub async fn send_with(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Got {
    let mut rb = client.request(method.clone(), url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("body").to_vec();
    Got {
        status,
        headers,
        body,
    }
}
