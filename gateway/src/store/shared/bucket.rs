//! The bucket client: `object_store`'s S3 implementation over the
//! gateway's own HTTP client (hyper with rustls and ring, the upstream
//! client's TLS set-up), so no second HTTP or TLS stack is linked.

use crate::config::SharedConfig;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    ClientOptions, HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// The TLS-capable connector the upstream client uses.
pub type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The S3 client for `cfg`'s bucket, rooted at its prefix. Requests wait
/// at most `cfg.timeout` for an answer's head and are retried twice
/// (within the same time) when the error is transient.
pub fn connect(cfg: &SharedConfig, https: Https) -> Result<Arc<dyn ObjectStore>, String> {
    let service = Service {
        client: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https),
        timeout: cfg.timeout,
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_access_key_id(&cfg.access_key_id)
        .with_secret_access_key(&cfg.secret_access_key.0)
        .with_allow_http(cfg.allow_http)
        .with_http_connector(Connector(Arc::new(service)))
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: cfg.timeout,
        });
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let s3 = builder.build().map_err(|e| e.to_string())?;
    Ok(if cfg.prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, cfg.prefix.as_str()))
    })
}

/// Hands `object_store` our client.
#[derive(Debug)]
struct Connector(Arc<Service>);

impl object_store::client::HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Forward(self.0.clone())))
    }
}

/// A clone of the one [`Service`] per `connect`.
#[derive(Debug)]
struct Forward(Arc<Service>);

#[async_trait::async_trait]
impl HttpService for Forward {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.0.call(req).await
    }
}

/// One request through hyper, its answer's head within `timeout`.
struct Service {
    client: Client<Https, HttpRequestBody>,
    timeout: Duration,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Service {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        use http_body_util::BodyExt as _;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| {
                HttpError::new(
                    HttpErrorKind::Timeout,
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {:?}", self.timeout),
                    ),
                )
            })?
            .map_err(|e| {
                // Only a connection that was never made is surely unsent:
                // anything later may have reached the store, so it is
                // retried only when the request is idempotent (never a
                // conditional create).
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Interrupted
                };
                HttpError::new(kind, e)
            })?;
        Ok(resp.map(|body| {
            HttpResponseBody::new(body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e)))
        }))
    }
}
