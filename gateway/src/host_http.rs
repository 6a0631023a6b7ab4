//! `http-send` for adapters: only to the remote's upstream hosts and the
//! auth realms its upstream named in `WWW-Authenticate`, small bodies,
//! bounded time. The realms are learnt from upstream responses here too,
//! and only allowed ones are kept ([`realm_allowed`]): an upstream cannot
//! send the remote's credentials to a host of its choosing. `cache-send`
//! and `cache-expire` reach the same remote's cache
//! ([`crate::cache::shared`]).

use crate::config::RemoteConfig;
use crate::plugins::wit_http::{header_map, wit_headers};
use crate::plugins::{HostHttp, wit};
use crate::state::{AppState, RemoteRuntime};
use crate::upstream::Outgoing;
use bytes::Bytes;
use http::{HeaderMap, Method, header};
use http_body_util::BodyExt;
use std::sync::Arc;

/// Whether an auth realm the upstream named may receive the adapter's token
/// requests (and with them the remote's credentials): it is on the origin
/// of one of the remote's upstreams (same scheme, host and port, so https
/// unless that upstream is plain http), or its origin is listed in the
/// remote's `auth_realms`.
pub fn realm_allowed(remote: &RemoteConfig, realm: &http::Uri) -> bool {
    crate::upstream::on_remote_hosts(remote, realm)
        || remote
            .auth_realms
            .iter()
            .any(|r| crate::upstream::same_origin(r, realm))
}

/// Remember the allowed auth realms named by `WWW-Authenticate` so the
/// adapter's token requests may reach them; others are logged and
/// ignored, so a token request to them fails.
pub fn remember_realm(remote: &RemoteRuntime, h: &HeaderMap) {
    for v in h.get_all(header::WWW_AUTHENTICATE) {
        let Ok(s) = v.to_str() else { continue };
        if let Some(i) = s.find("realm=\"") {
            let rest = &s[i + 7..];
            if let Some(end) = rest.find('"')
                && let Ok(u) = rest[..end].parse::<http::Uri>()
                && let (Some(scheme), Some(auth)) = (u.scheme_str(), u.authority())
            {
                let origin = format!("{scheme}://{auth}");
                if !realm_allowed(&remote.cfg, &u) {
                    tracing::warn!(remote = %remote.cfg.name, realm = %origin, "the upstream named an auth realm that is neither on its own origin nor in auth_realms; it gets no requests");
                    continue;
                }
                if let Ok(mut set) = remote.realms.lock() {
                    set.insert(origin);
                }
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

impl RemoteHttp {
    /// The capability for calls on `remote` ([`crate::state::HttpCapability`]).
    pub fn capability(state: Arc<AppState>, remote: Arc<RemoteRuntime>) -> Arc<dyn HostHttp> {
        Arc::new(RemoteHttp { state, remote })
    }
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
                    "{origin} is neither an upstream host of remote '{}' nor an allowed auth realm it named (a realm on another origin must be listed in the remote's auth_realms)",
                    self.remote.cfg.name
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
                    .engine
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

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(extra: &str) -> RemoteConfig {
        let text = format!(
            "[storage]\ndir = \"/tmp/x\"\n[[remote]]\nname = \"r\"\npackage = \"docker\"\n{extra}\n"
        );
        let c = crate::config::parse(&text, std::path::Path::new("/tmp")).unwrap();
        c.remotes[0].clone()
    }

    fn allowed(cfg: &RemoteConfig, url: &str) -> bool {
        realm_allowed(cfg, &url.parse().unwrap())
    }

    #[test]
    fn realms_are_the_upstreams_origins_or_listed_ones() {
        let tls = remote("upstream = \"https://reg.example\"");
        assert!(allowed(&tls, "https://reg.example/token"));
        assert!(allowed(&tls, "https://REG.example:443/token"));
        assert!(!allowed(&tls, "http://reg.example/token"), "plain http");
        assert!(
            !allowed(&tls, "https://reg.example:8443/token"),
            "other port"
        );
        assert!(!allowed(&tls, "https://evil.example/token"), "other host");
        let listed = remote(
            "upstream = \"https://registry-1.docker.io\"\nauth_realms = [\"https://auth.docker.io/token\"]",
        );
        assert!(allowed(&listed, "https://auth.docker.io/token"));
        assert!(!allowed(&listed, "http://auth.docker.io/token"));
        let plain = remote("upstream = \"http://127.0.0.1:5000\"");
        assert!(allowed(&plain, "http://127.0.0.1:5000/token"));
        assert!(!allowed(&plain, "http://127.0.0.1:5001/token"));
    }
}
