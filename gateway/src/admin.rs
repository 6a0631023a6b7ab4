//! Administration and introspection endpoints: `/`, `/health`, `/config`,
//! `/metrics`, `/plugins`, `PUT /cache/flush`, and the `/v2/` ping.

use crate::body::{self, ResBody};
use crate::routes::AdminRoute;
use crate::state::AppState;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;
use std::sync::Arc;

/// Answer an admin route.
pub async fn handle(state: &Arc<AppState>, route: AdminRoute) -> Response<ResBody> {
    match route {
        AdminRoute::Index => {
            let mut index = json!({
                "name": "artgate",
                "version": env!("CARGO_PKG_VERSION"),
                "remotes": state.config.remotes.iter().map(|r| json!({
                    "name": r.name,
                    "package": r.package,
                    "mode": r.mode.as_str(),
                    "upstream": r.upstreams.first().map(|u| u.to_string().trim_end_matches('/').to_owned()),
                    "upstreams": r.upstreams.iter().map(|u| u.to_string().trim_end_matches('/').to_owned()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            if let Some(shared) = &state.engine.store.shared {
                index["node"] = json!(shared.node());
                index["cluster"] = json!(shared.status().state);
            }
            body::json(StatusCode::OK, &index)
        }
        AdminRoute::Health => {
            let mut health = json!({
                "status": "healthy",
                "adapters": if state.plugins.is_ready() { "ready" } else { "loading" },
            });
            // In a cluster: a degraded shared tier still serves (from the
            // local tier), so the answer stays 200 and says what is wrong.
            if let Some(shared) = &state.engine.store.shared {
                let status = shared.status();
                if status.state != "ok" {
                    health["status"] = json!("degraded");
                }
                health["node"] = json!(status.node);
                health["shared"] = json!(status);
            }
            body::json(StatusCode::OK, &health)
        }
        AdminRoute::Config => body::json(StatusCode::OK, &state.config.redacted_json()),
        AdminRoute::Metrics => {
            state
                .engine
                .metrics
                .set_store_bytes(state.engine.store.meta.total_size());
            state
                .engine
                .metrics
                .set_memory_cache_bytes(state.engine.store.hot.weight());
            for (adapter, in_flight, queued) in state.plugins.lane_loads() {
                state
                    .engine
                    .metrics
                    .set_plugin_calls(&adapter, in_flight, queued);
            }
            let mut r = Response::new(body::full(state.engine.metrics.render()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        AdminRoute::Plugins => {
            // One snapshot, so both lists describe the same rescan.
            let active = state.plugins.ready_active().await;
            body::json(
                StatusCode::OK,
                &json!({
                    "plugin_dir": state.plugins.dir().display().to_string(),
                    "plugins": active.statuses(),
                    "ignored": active.ignored(),
                }),
            )
        }
        AdminRoute::Flush { remote } => flush(state, remote).await,
    }
}

/// `PUT /cache/flush[?remote=R]`.
pub async fn flush(state: &Arc<AppState>, remote: Option<String>) -> Response<ResBody> {
    // Flushing drops *cached* entries: hosted remotes hold the only copy of
    // what was uploaded, so they are never flushed (delete files instead).
    let targets: Vec<String> = match &remote {
        Some(r) => match state.remotes.get(r) {
            None => return body::error(StatusCode::NOT_FOUND, format!("unknown remote {r:?}")),
            Some(rt) if rt.cfg.mode == crate::config::RemoteMode::Hosted => {
                return body::error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "remote {r:?} is hosted and holds the only copy of its files; delete them one by one instead of flushing"
                    ),
                );
            }
            Some(_) => vec![r.clone()],
        },
        None => state
            .remotes
            .values()
            .filter(|rt| rt.cfg.mode != crate::config::RemoteMode::Hosted)
            .map(|rt| rt.cfg.name.clone())
            .collect(),
    };
    match drop_cached(state, targets, None).await {
        Ok((entries, blobs)) => body::json(
            StatusCode::OK,
            &json!({ "flushed": entries, "blobs_deleted": blobs, "remote": remote }),
        ),
        Err(e) => body::error(e.status(), format!("flush failed: {e}")),
    }
}

/// Drop cached entries: every entry of each of `remotes`, or only the
/// entry `key` of them. Blobs no entry references any more are deleted,
/// and the remembered adapter decisions forgotten. Returns the entries
/// and blobs removed. Callers keep hosted remotes out (their entries are
/// the only copy).
pub async fn drop_cached(
    state: &Arc<AppState>,
    remotes: Vec<String>,
    key: Option<String>,
) -> Result<(u64, u64), crate::store::StoreError> {
    // In a cluster the bucket's records go first: a flush the bucket
    // cannot take changes nothing.
    for name in &remotes {
        state
            .engine
            .store
            .flush_shared(name, key.as_deref())
            .await?;
    }
    let result = state
        .engine
        .store
        .run(move |store| {
            let mut n = 0;
            for name in &remotes {
                n += match &key {
                    None => store.meta.remove_all(Some(name))?,
                    Some(k) => u64::from(store.meta.remove_entry(name, k, false)?.is_some()),
                };
            }
            store.meta.flush()?;
            let gone = crate::store::gc(store)?;
            Ok((n, gone.blobs))
        })
        .await;
    state.memo.clear();
    result
}

/// `GET /v2/`: the registry ping clients send before anything else.
pub fn registry_ping() -> Response<ResBody> {
    let mut r = body::json(StatusCode::OK, &json!({}));
    r.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}
