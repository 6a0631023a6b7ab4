//! `http-send` for adapters: only to the remote's upstream hosts and the
//! auth realms its upstream named in `WWW-Authenticate`, small bodies,
//! bounded time. The realms are learnt from upstream responses here too.
//! `cache-send` and `cache-expire` reach the same remote's cache
//! ([`crate::cache::shared`]).

use crate::cache::head::{header_map, wit_headers};
use crate::plugins::{HostHttp, wit};
use crate::state::{AppState, RemoteRuntime};
use crate::upstream::Outgoing;
use bytes::Bytes;
use http::{HeaderMap, Method, header};
use http_body_util::BodyExt;
use std::sync::Arc;

/// Remember auth realms named by `WWW-Authenticate` so the adapter's token
/// requests may reach them.
pub fn remember_realm(remote: &RemoteRuntime, h: &HeaderMap) {
    for v in h.get_all(header::WWW_AUTHENTICATE) {
        let Ok(s) = v.to_str() else { continue };
        if let Some(i) = s.find("realm=\"") {
            let rest = &s[i + 7..];
            if let Some(end) = rest.find('"')
                && let Ok(u) = rest[..end].parse::<http::Uri>()
                && let (Some(scheme), Some(auth)) = (u.scheme_str(), u.authority())
                && let Ok(mut set) = remote.realms.lock()
            {
                set.insert(format!("{scheme}://{auth}"));
            }
        }
    }
}

/// `http-send` for adapters: only to the remote's upstream hosts and the
/// auth realms it named, small bodies, bounded time.
pub struct RemoteHttp {
    /// Shared state (client, limits).
    pub state: Arc<AppState>,
    /// The remote whose hosts are allowed.
    pub remote: Arc<RemoteRuntime>,
}

impl HostHttp for RemoteHttp {
    fn send(
        &self,
        req: wit::OutgoingRequest,
    ) -> crate::plugins::host::BoxFuture<'_, Result<wit::IncomingResponse, String>> {
        Box::pin(async move {
            let uri: http::Uri = req
                .url
                .parse()
                .map_err(|e| format!("invalid URL {:?}: {e}", req.url))?;
            let origin = format!(
                "{}://{}",
                uri.scheme_str().unwrap_or(""),
                uri.authority().map(|a| a.as_str()).unwrap_or("")
            );
            let own = crate::upstream::on_remote_hosts(&self.remote.cfg, &uri);
            let realm = self
                .remote
                .realms
                .lock()
                .map(|s| s.contains(&origin))
                .unwrap_or(false);
            if !own && !realm {
                return Err(format!(
                    "{origin} is neither an upstream host of this remote nor an auth realm it named"
                ));
            }
            let cfg = &self.state.config.plugins;
            let out = Outgoing {
                method: Method::from_bytes(req.method.as_bytes())
                    .map_err(|_| format!("invalid method {:?}", req.method))?,
                target: req.url.clone(),
                headers: header_map(&req.headers),
                use_credentials: req.use_credentials,
                body: if req.body.is_empty() {
                    None
                } else {
                    Some(Bytes::from(req.body))
                },
            };
            // Realm hosts get the remote's credentials too (token
            // endpoints need them) but only when asked and only there.
            let mut remote_cfg = self.remote.cfg.clone();
            if realm
                && !own
                && let Ok(u) = origin.parse()
            {
                remote_cfg.upstreams = vec![u];
            }
            let fut = async {
                let (resp, _) = self
                    .state
                    .upstream
                    .send(&remote_cfg, &out)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                let headers = wit_headers(resp.headers());
                let limited = http_body_util::Limited::new(resp.into_body(), cfg.http_max_body);
                let body = limited
                    .collect()
                    .await
                    .map_err(|e| format!("reading the response failed: {e}"))?
                    .to_bytes();
                Ok(wit::IncomingResponse {
                    status,
                    headers,
                    body: body.to_vec(),
                })
            };
            tokio::time::timeout(cfg.http_timeout, fut)
                .await
                .map_err(|_| format!("no complete answer within {:?}", cfg.http_timeout))?
        })
    }

    fn cache_send(
        &self,
        req: wit::OutgoingRequest,
        plan: wit::CachePlan,
        limit: u32,
    ) -> crate::plugins::host::BoxFuture<'_, Result<wit::IncomingResponse, String>> {
        Box::pin(async move {
            crate::cache::shared::send(&self.state, &self.remote, req, plan, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn cache_expire(&self, key: &str) {
        if let Err(e) = crate::cache::shared::expire(&self.state, &self.remote.cfg.name, key) {
            tracing::warn!(remote = %self.remote.cfg.name, key, error = %e, "expiring an entry for the adapter failed");
        }
    }
}
