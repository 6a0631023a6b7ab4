//! A package mirror for the adapters' tests: a directory tree served
//! through the in-process [`Upstream`] (so tests can count requests and
//! take it down).

use super::sha256_hex;
use super::upstream::{Resource, Upstream};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

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
