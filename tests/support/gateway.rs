//! Start artgate in-process on 127.0.0.1:0 with a config written for the
//! test, in a fresh storage and plugin directory.

use super::http::{Got, send};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// A running gateway; dropping it shuts it down.
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Storage, plugin dir and config live here.
    pub dir: Arc<tempfile::TempDir>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A `[[remote]]` table of the `generic` adapter named `name` in front of
/// `upstream`; `extra` (more keys of the table) is appended as is.
pub fn generic_remote(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[remote]]\nname = {name:?}\npackage = \"generic\"\nupstream = {upstream:?}\n{extra}\n"
    )
}

/// The entry of a `/plugins` list for adapter `name` whose source is
/// `source` (`built-in` or a path).
pub fn by_source<'a>(
    list: &'a [serde_json::Value],
    name: &str,
    source: &str,
) -> Option<&'a serde_json::Value> {
    list.iter()
        .find(|p| p["name"] == name && p["source"] == source)
}

/// The directory built adapters (and test fixtures) are in.
pub fn adapters_dir() -> PathBuf {
    PathBuf::from(env!("ARTGATE_ADAPTERS_DIR"))
}

/// Copy the built adapter `file` (e.g. `hostile.wasm`) into the plugin
/// directory of the test directory `dir` (made when missing).
pub fn install_adapter(dir: &std::path::Path, file: &str) {
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(adapters_dir().join(file), dir.join("plugins").join(file))
        .unwrap_or_else(|e| panic!("copy {file}: {e}"));
}

/// A compiled-code cache shared by every test in this process, so each
/// gateway does not recompile the built-ins.
pub fn shared_plugin_cache() -> PathBuf {
    let p = std::env::temp_dir().join(format!("artgate-test-plugin-cache-{}", std::process::id()));
    std::fs::create_dir_all(&p).ok();
    p
}

/// The `[server]`/`[storage]`/`[plugins]`/`[upstream]` head of a test
/// config for `dir`.
pub fn config_head(dir: &std::path::Path) -> String {
    config_head_with(dir, "", "")
}

/// [`config_head`] with extra keys in `[server]` and `[storage]`.
pub fn config_head_with(dir: &std::path::Path, server_extra: &str, storage_extra: &str) -> String {
    config_head_full(dir, server_extra, storage_extra, "")
}

/// [`config_head`] with extra keys in `[server]`, `[storage]` and
/// `[plugins]`.
pub fn config_head_full(
    dir: &std::path::Path,
    server_extra: &str,
    storage_extra: &str,
    plugins_extra: &str,
) -> String {
    // A short debounce, unless the test sets its own.
    let debounce = if plugins_extra.contains("reload_debounce") {
        ""
    } else {
        "reload_debounce = \"50ms\"\n"
    };
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n[storage]\ndir = {:?}\n{storage_extra}\n[plugins]\ndir = {:?}\ncache_dir = {:?}\n{debounce}{plugins_extra}\n[upstream]\nfirst_byte_timeout = \"2s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"2s\"\n",
        dir.join("data"),
        dir.join("plugins"),
        shared_plugin_cache()
    )
}

impl Gateway {
    /// Start with `remotes` (TOML `[[remote]]` tables) appended to a test
    /// head in a new temporary directory.
    pub async fn start(remotes: &str) -> Gateway {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::start_in(dir, remotes).await
    }

    /// Start in an existing directory (restarts keep the store).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, remotes: &str) -> Gateway {
        Self::start_full(dir, "", "", remotes).await
    }

    /// Start with extra `[server]` keys (e.g. TLS files).
    pub async fn start_with_server_extra(server_extra: &str, remotes: &str) -> Gateway {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::start_full(dir, server_extra, "", remotes).await
    }

    /// Start with extra `[storage]` keys (e.g. `max_size`).
    pub async fn start_with_storage_extra(storage_extra: &str, remotes: &str) -> Gateway {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::start_full(dir, "", storage_extra, remotes).await
    }

    /// Start in `dir` with extra `[plugins]` keys (e.g. `warm_instances`).
    pub async fn start_with_plugins_extra(
        dir: Arc<tempfile::TempDir>,
        plugins_extra: &str,
        remotes: &str,
    ) -> Gateway {
        Self::start_full_with(dir, "", "", plugins_extra, remotes).await
    }

    async fn start_full(
        dir: Arc<tempfile::TempDir>,
        server_extra: &str,
        storage_extra: &str,
        remotes: &str,
    ) -> Gateway {
        Self::start_full_with(dir, server_extra, storage_extra, "", remotes).await
    }

    /// Start in `dir` with extra keys in `[server]`, `[storage]` and
    /// `[plugins]`.
    pub async fn start_full_with(
        dir: Arc<tempfile::TempDir>,
        server_extra: &str,
        storage_extra: &str,
        plugins_extra: &str,
        remotes: &str,
    ) -> Gateway {
        std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
        let text = format!(
            "{}\n{}",
            config_head_full(dir.path(), server_extra, storage_extra, plugins_extra),
            remotes
        );
        let config = artgate::config::parse(&text, dir.path())
            .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
        let tls = server_extra.contains("tls_cert");
        // A gateway restarted in the directory of one that just stopped may
        // find the index still locked: sled lets go when the last reference
        // to the old store drops, a moment after its task ends. Then `run`
        // fails at once, and the start is tried again.
        for attempt in 0.. {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().unwrap();
            let (stop, rx) = watch::channel(false);
            let task = tokio::spawn(artgate::run(listener, config.clone(), rx));
            let mut gw = Gateway {
                addr,
                dir: dir.clone(),
                stop,
                task: Some(task),
            };
            // A TLS gateway cannot be probed over plain HTTP; its listener
            // is bound already, so requests simply queue until it serves.
            if tls || gw.wait_ready().await {
                return gw;
            }
            let err = match gw.task.take().expect("task").await {
                Ok(Err(e)) => format!("{e:#}"),
                Ok(Ok(())) => "it stopped".to_owned(),
                Err(e) => format!("it panicked: {e}"),
            };
            assert!(
                attempt < 40 && err.contains("lock"),
                "the gateway did not start: {err}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        unreachable!("the loop returns or panics")
    }

    /// Wait until the gateway answers and its adapters have loaded (they
    /// compile in the background; `GET /plugins` answers after the load),
    /// so that tests time requests, not compilation. False when its task
    /// ended instead (it could not start).
    async fn wait_ready(&self) -> bool {
        for _ in 0..400 {
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                return false;
            }
            if let Ok(r) = reqwest::get(self.url("/health")).await
                && r.status() == 200
            {
                let r = reqwest::get(self.url("/plugins"))
                    .await
                    .expect("GET /plugins");
                assert_eq!(r.status(), 200, "GET /plugins");
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("gateway did not become ready");
    }

    /// URL of `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The `/metrics` text (asserting it is served).
    pub async fn metrics(&self) -> String {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), 200, "GET /metrics");
        r.text().await.expect("metrics body")
    }

    /// The sum of the samples of metric `name` whose labels contain every
    /// one of `labels` (e.g. `remote="el"`); 0 when there is none.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        super::metric(&self.metrics().await, name, labels)
    }

    /// Wait (bounded) until no upstream fetch is in progress (background
    /// prefetches included). A fill releases its verified body before it
    /// commits it, so a request sent the moment a client has the whole
    /// body may still join that fill (`X-Artifact-Source: remote`); after
    /// this it finds the entry.
    pub async fn fills_settled(&self) {
        for _ in 0..500 {
            if self.metric("artgate_fills_inflight", &[]).await == 0.0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("an upstream fetch is still in progress after 10 s");
    }

    /// `GET` of `path` below remote `remote`, with `headers`, read to the
    /// end (or to the point the body broke off). After an answer from the
    /// upstream (`remote`) it waits until no fill is in flight (see
    /// [`Gateway::fills_settled`]), so the next request finds the entry.
    pub async fn get_remote(&self, remote: &str, path: &str, headers: &[(&str, &str)]) -> Got {
        let got = send(
            "GET",
            &self.url(&format!("/api/v1/remote/{remote}/{path}")),
            headers,
        )
        .await;
        if got
            .headers
            .get("x-artifact-source")
            .is_some_and(|v| v == "remote")
        {
            self.fills_settled().await;
        }
        got
    }

    /// The whole `GET /plugins` document (asserting it is served).
    pub async fn plugins_json(&self) -> serde_json::Value {
        let r = reqwest::get(self.url("/plugins"))
            .await
            .expect("GET /plugins");
        assert_eq!(r.status(), 200, "GET /plugins");
        serde_json::from_str(&r.text().await.expect("body")).expect("plugins JSON")
    }

    /// The `plugins` array of `GET /plugins`.
    pub async fn plugin_list(&self) -> Vec<serde_json::Value> {
        self.plugins_json().await["plugins"]
            .as_array()
            .expect("plugins array")
            .clone()
    }

    /// The plugin directory.
    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Stop and wait for shutdown; returns the directory for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), t).await;
        }
        self.dir.clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
