//! The npm parts the npm tests share: Verdaccio (installed by `./test.sh`
//! into `target/artgate-npm-tools`, or `$ARTGATE_NPM_TOOLS`) on
//! 127.0.0.1 with its storage in a temp dir and no uplinks, packages
//! written and published by the real `npm`, and `npm` isolated from the
//! machine's configuration and cache.

use super::clients::run_ok;
use super::kit::repo;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The directory with `node_modules/.bin/verdaccio`. Panics (the test
/// fails, it does not skip) when there is none.
pub fn npm_tools() -> PathBuf {
    let dir = std::env::var_os("ARTGATE_NPM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/artgate-npm-tools"));
    assert!(
        dir.join("node_modules/.bin/verdaccio").is_file(),
        "no Verdaccio in {} (set ARTGATE_NPM_TOOLS or run ./test.sh, which installs it)",
        dir.display()
    );
    dir
}

/// `npm ARGS` in `cwd`, with its cache in `cache`, its user configuration
/// `cwd/.npmrc` only, no audit, no update check and no proxy.
pub fn npm(cwd: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("npm");
    c.args(args)
        .current_dir(cwd)
        .env("npm_config_cache", cache)
        .env("npm_config_userconfig", cwd.join(".npmrc"))
        .env("npm_config_globalconfig", "/dev/null")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fetch_retries", "0")
        .env_remove("npm_config_registry")
        .env_remove("NPM_CONFIG_REGISTRY");
    super::clients::without_proxies(&mut c);
    c
}

/// A fresh private project in `dir` (an empty `package.json`) whose
/// `.npmrc` is `npmrc`, for `npm install` into it.
pub fn project(dir: &Path, npmrc: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(".npmrc"), npmrc).unwrap();
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"app","version":"0.0.0","private":true}"#,
    )
    .unwrap();
    dir.to_owned()
}

/// Verdaccio on 127.0.0.1 with a user `alice` who may publish; killed on
/// drop.
pub struct Verdaccio {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Alice's token.
    pub token: String,
    child: Child,
}

impl Verdaccio {
    /// Start one keeping its packages under `work/verdaccio`.
    pub async fn start(work: &Path) -> Verdaccio {
        let tools = npm_tools();
        let dir = work.join("verdaccio");
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let port = crate::support::free_port();
        let config = dir.join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "storage: {storage}\nauth:\n  htpasswd:\n    file: {htpasswd}\n    max_users: 10\nuplinks: {{}}\npackages:\n  '**':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\nlog: {{ type: stdout, format: pretty, level: warn }}\nlisten: 127.0.0.1:{port}\n",
                storage = dir.join("storage").display(),
                htpasswd = dir.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let log = dir.join("verdaccio.log");
        let child = Command::new(tools.join("node_modules/.bin/verdaccio"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start verdaccio");
        let mut server = Verdaccio {
            url: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            child,
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/-/ping", server.url)).send().await
                && r.status() == 200
            {
                let answer = client
                    .put(format!("{}/-/user/org.couchdb.user:alice", server.url))
                    .header("content-type", "application/json")
                    .body(r#"{"name":"alice","password":"alice-secret"}"#)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let created: serde_json::Value = serde_json::from_slice(&answer).unwrap();
                server.token = created["token"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no token from Verdaccio: {created}"))
                    .to_owned();
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Verdaccio did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Write package `name`@`version` (depending on `deps`, name → range)
    /// under `work` and publish it with the real `npm`.
    pub async fn publish(&self, work: &Path, name: &str, version: &str, deps: &[(&str, &str)]) {
        let dir = work.join(format!("pkg-{}-{version}", name.replace('/', "_")));
        std::fs::create_dir_all(&dir).unwrap();
        let deps: serde_json::Map<String, serde_json::Value> = deps
            .iter()
            .map(|(n, r)| ((*n).to_owned(), serde_json::Value::from(*r)))
            .collect();
        let manifest = serde_json::json!({
            "name": name,
            "version": version,
            "main": "index.js",
            "license": "MIT",
            "dependencies": deps,
        });
        std::fs::write(dir.join("package.json"), manifest.to_string()).unwrap();
        std::fs::write(
            dir.join("index.js"),
            format!("module.exports = {:?};\n", format!("{name}@{version}")),
        )
        .unwrap();
        let host = self.url.trim_start_matches("http:");
        std::fs::write(
            dir.join(".npmrc"),
            format!("{host}/:_authToken={}\n", self.token),
        )
        .unwrap();
        let cache = work.join("npm-publish-cache");
        run_ok(npm(
            &dir,
            &cache,
            &["publish", "--registry", &format!("{}/", self.url)],
        ))
        .await;
    }

    /// Stop it (also on drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        self.stop();
    }
}
