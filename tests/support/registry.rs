//! Registry fixtures for the docker tests: Debian's `docker-registry`
//! (distribution 2.8) as a child process, an in-process auth/fault front
//! before it, OCI image layouts written by the test, and `skopeo`.

use super::serve::Server;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A `docker-registry serve` child process on 127.0.0.1 with its own root
/// directory; killed when dropped.
pub struct Registry {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An anonymous registry.
    pub async fn start() -> Registry {
        Self::launch(None).await
    }

    /// A registry that requires HTTP Basic `user:password` (htpasswd).
    pub async fn start_htpasswd(user: &str, password: &str) -> Registry {
        Self::launch(Some((user, password))).await
    }

    async fn launch(basic: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::free_port();
        let mut auth = String::new();
        if let Some((user, password)) = basic {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: artgate-test\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry (Debian package docker-registry)");
        let reg = Registry {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: Some(child),
            dir,
        };
        for _ in 0..400 {
            if let Ok(r) = reqwest::get(reg.url("/v2/")).await
                && (r.status() == 200 || r.status() == 401)
            {
                return reg;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// URL of `path` on the registry.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `127.0.0.1:PORT`, for image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stop the registry (the port refuses connections afterwards).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// The front: token auth, request counting and tampering before a registry.

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Registry-side view of what the front did.
#[derive(Default)]
struct FrontState {
    registry: Option<SocketAddr>,
    /// The front's own address (the token realm it names).
    me: OnceLock<SocketAddr>,
    /// Require a bearer token issued by `/token` on every `/v2/` request.
    require_token: AtomicBool,
    /// Basic credentials `/token` requires.
    basic: Mutex<Option<(String, String)>>,
    issued: Mutex<HashSet<String>>,
    token_requests: AtomicU64,
    next_token: AtomicU64,
    /// Forwarded (authorised) GET requests per path.
    gets: Mutex<HashMap<String, u64>>,
    /// `Authorization` values seen on `/v2/` paths.
    authorizations: Mutex<Vec<String>>,
    /// Paths whose body is served with one byte flipped (same length).
    tamper: Mutex<HashSet<String>>,
    /// Answer blob GETs with a redirect to this base URL + the path.
    redirect_blobs: Mutex<Option<String>>,
}

/// An in-process HTTP front before a registry: optional Docker-style token
/// auth (`/token`, itself behind Basic credentials), per-path counters of
/// forwarded GETs, and tampering with chosen bodies.
pub struct Front {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<FrontState>,
    _server: Server,
}

impl Front {
    /// A front before `registry`, forwarding everything (no auth).
    pub async fn start(registry: &Registry) -> Front {
        let state = Arc::new(FrontState {
            registry: Some(registry.addr),
            ..FrontState::default()
        });
        let client: Client<HttpConnector, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let st = state.clone();
        let server =
            Server::start(move |req, _| serve_front(st.clone(), client.clone(), req)).await;
        state
            .me
            .set(server.addr)
            .expect("the front's address is set once");
        Front {
            addr: server.addr,
            state,
            _server: server,
        }
    }

    /// Require tokens from `/token`, which requires Basic `user:password`.
    pub fn require_token(&self, user: &str, password: &str) {
        *self.state.basic.lock().unwrap() = Some((user.into(), password.into()));
        self.state.require_token.store(true, Ordering::SeqCst);
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forwarded GETs of `path` (e.g. `/v2/library/app/blobs/sha256:…`).
    pub fn gets(&self, path: &str) -> u64 {
        self.state
            .gets
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Forwarded GETs per path.
    pub fn all_gets(&self) -> HashMap<String, u64> {
        self.state.gets.lock().unwrap().clone()
    }

    /// Tokens issued so far.
    pub fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Every `Authorization` header seen on `/v2/` paths.
    pub fn authorizations(&self) -> Vec<String> {
        self.state.authorizations.lock().unwrap().clone()
    }

    /// Answer blob GETs with `307` to `base` + the request path (another
    /// host, like Docker Hub's CDN).
    pub fn redirect_blobs(&self, base: &str) {
        *self.state.redirect_blobs.lock().unwrap() = Some(base.to_owned());
    }

    /// Serve `path` with one byte flipped (or stop doing so).
    pub fn tamper(&self, path: &str, on: bool) {
        let mut t = self.state.tamper.lock().unwrap();
        if on {
            t.insert(path.to_owned());
        } else {
            t.remove(path);
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_owned()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

/// The repository name in a `/v2/{name}/(manifests|blobs|tags)/…` path.
fn repository(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| rest.rfind(m).map(|i| &rest[..i]))
        .max_by_key(|n| n.len())
}

async fn serve_front(
    st: Arc<FrontState>,
    client: Client<HttpConnector, Empty<Bytes>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let me = *st.me.get().expect("the front's address");
    let path = req.uri().path().to_owned();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if path == "/token" {
        use base64::Engine as _;
        let want = st.basic.lock().unwrap().clone();
        let ok = match (&want, &auth) {
            (Some((u, p)), Some(a)) => {
                a == &format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            }
            (None, _) => true,
            _ => false,
        };
        let query = req.uri().query().unwrap_or("");
        if !ok {
            return text(StatusCode::UNAUTHORIZED, "bad credentials");
        }
        if !query.contains("service=test") || !query.contains("scope=repository") {
            return text(StatusCode::BAD_REQUEST, "service and scope required");
        }
        st.token_requests.fetch_add(1, Ordering::SeqCst);
        let token = format!("tok-{}", st.next_token.fetch_add(1, Ordering::SeqCst));
        st.issued.lock().unwrap().insert(token.clone());
        let mut r = text(
            StatusCode::OK,
            &json!({"token": token, "expires_in": 300}).to_string(),
        );
        r.headers_mut()
            .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        return r;
    }
    if let Some(a) = &auth
        && path.starts_with("/v2/")
    {
        st.authorizations.lock().unwrap().push(a.clone());
    }
    if st.require_token.load(Ordering::SeqCst) {
        let good = auth
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| st.issued.lock().unwrap().contains(t));
        if !good {
            let mut challenge = format!("Bearer realm=\"http://{me}/token\",service=\"test\"");
            if let Some(name) = repository(&path) {
                challenge.push_str(&format!(",scope=\"repository:{name}:pull\""));
            }
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}"#,
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge.parse().unwrap());
            return r;
        }
    }
    if req.method() == http::Method::GET {
        *st.gets.lock().unwrap().entry(path.clone()).or_default() += 1;
    }
    if let Some(base) = st.redirect_blobs.lock().unwrap().clone()
        && path.contains("/blobs/")
    {
        let mut r = text(StatusCode::TEMPORARY_REDIRECT, "");
        r.headers_mut()
            .insert(header::LOCATION, format!("{base}{path}").parse().unwrap());
        return r;
    }
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut up = Request::builder()
        .method(req.method().clone())
        .uri(format!("http://{}{pq}", st.registry.unwrap()));
    for (k, v) in req.headers() {
        if k != header::HOST && k != header::AUTHORIZATION {
            up = up.header(k, v);
        }
    }
    let resp = match client.request(up.body(Empty::new()).unwrap()).await {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_GATEWAY, &format!("registry: {e}")),
    };
    let (parts, body) = resp.into_parts();
    let tampered = parts.status == StatusCode::OK && st.tamper.lock().unwrap().contains(&path);
    let body: Body = if tampered && req.method() == http::Method::GET {
        let mut all = body
            .collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
        if !all.is_empty() {
            let mid = all.len() / 2;
            all[mid] ^= 0xff;
        }
        Full::new(Bytes::from(all)).map_err(|e| match e {}).boxed()
    } else {
        body.map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
            .boxed()
    };
    let mut r = Response::new(body);
    *r.status_mut() = parts.status;
    *r.headers_mut() = parts.headers;
    r
}

// ---------------------------------------------------------------------------
// OCI image layouts.

/// A tar archive (ustar) of regular files, in order.
pub fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        assert!(name.len() < 100, "tar name too long");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let field = |h: &mut [u8; 512], off: usize, s: &str| {
            h[off..off + s.len()].copy_from_slice(s.as_bytes());
        };
        field(&mut h, 100, "0000644\0");
        field(&mut h, 108, "0000000\0");
        field(&mut h, 116, "0000000\0");
        field(&mut h, 124, &format!("{:011o}\0", data.len()));
        field(&mut h, 136, "00000000000\0");
        field(&mut h, 148, "        ");
        h[156] = b'0';
        field(&mut h, 257, "ustar\0");
        field(&mut h, 263, "00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        field(&mut h, 148, &format!("{sum:06o}\0 "));
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// gzip of `data` (deterministic: no name, mtime 0).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An OCI image layout being written to a directory.
pub struct Layout {
    /// The layout directory (`oci:DIR:TAG`).
    pub dir: PathBuf,
    refs: Vec<Value>,
}

/// A descriptor of something written into a layout.
#[derive(Clone, Debug)]
pub struct Written {
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    pub size: usize,
    /// Media type.
    pub media_type: String,
}

impl Written {
    fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

impl Layout {
    /// A new, empty layout at `dir`.
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_owned(),
            refs: Vec::new(),
        }
    }

    /// Store a blob.
    pub fn blob(&self, data: &[u8], media_type: &str) -> Written {
        let digest = sha256(data);
        std::fs::write(
            self.dir
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
            data,
        )
        .unwrap();
        Written {
            digest,
            size: data.len(),
            media_type: media_type.into(),
        }
    }

    /// An image for `arch` with one gzip layer per entry of `layers`
    /// (each a list of files); returns its manifest.
    pub fn image(&self, arch: &str, layers: &[Vec<(&str, Vec<u8>)>]) -> Written {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for files in layers {
            let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
            let t = tar(&refs);
            diff_ids.push(sha256(&t));
            descs.push(
                self.blob(&gzip(&t), "application/vnd.oci.image.layer.v1.tar+gzip")
                    .descriptor(),
            );
        }
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.blob(
            config.to_string().as_bytes(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": descs,
        });
        self.blob(manifest.to_string().as_bytes(), OCI_MANIFEST)
    }

    /// An image index of `(arch, manifest)` pairs.
    pub fn index(&self, images: &[(&str, &Written)]) -> Written {
        let manifests: Vec<Value> = images
            .iter()
            .map(|(arch, m)| {
                let mut d = m.descriptor();
                d["platform"] = json!({"architecture": arch, "os": "linux"});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.blob(index.to_string().as_bytes(), OCI_INDEX)
    }

    /// Name `w` as tag `tag` in `index.json`.
    pub fn tag(&mut self, tag: &str, w: &Written) {
        let mut d = w.descriptor();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(d);
        let index = json!({"schemaVersion": 2, "manifests": self.refs});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// The test images: `v1` (OCI, two layers, one of ~3 MiB) and `multi` (an
/// OCI index for amd64 and arm64), in one layout.
pub struct TestImages {
    /// The layout.
    pub layout: Layout,
    /// Manifest of `v1`.
    pub v1: Written,
    /// Index of `multi`.
    pub multi: Written,
    /// The arm64 manifest in `multi`.
    pub multi_arm64: Written,
}

/// Write the test images into `dir`.
pub fn test_images(dir: &Path) -> TestImages {
    let mut layout = Layout::new(dir);
    let big = super::bytes(3 * 1024 * 1024 + 123, 7);
    let v1 = layout.image(
        "amd64",
        &[
            vec![("hello", b"#!/bin/sh\necho hello\n".to_vec())],
            vec![("data.bin", big)],
        ],
    );
    let amd = layout.image(
        "amd64",
        &[vec![
            ("arch", b"amd64\n".to_vec()),
            ("x", super::bytes(70_000, 1)),
        ]],
    );
    let arm = layout.image(
        "arm64",
        &[vec![
            ("arch", b"arm64\n".to_vec()),
            ("x", super::bytes(80_000, 2)),
        ]],
    );
    let multi = layout.index(&[("amd64", &amd), ("arm64", &arm)]);
    layout.tag("v1", &v1);
    layout.tag("multi", &multi);
    TestImages {
        layout,
        v1,
        multi,
        multi_arm64: arm,
    }
}

// ---------------------------------------------------------------------------
// skopeo.

/// Run `skopeo --insecure-policy ARGS` off the async runtime; returns
/// (success, stdout, stderr).
pub async fn skopeo(args: Vec<String>) -> (bool, Vec<u8>, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("skopeo")
            .arg("--insecure-policy")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run skopeo (Debian package skopeo)");
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Like [`skopeo`], panicking with its stderr on failure; returns stdout.
pub async fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let (ok, out, err) = skopeo(args.iter().map(|s| s.to_string()).collect()).await;
    assert!(ok, "skopeo {args:?} failed: {err}");
    out
}

/// Push the test images to `registry` as `library/{name}`: `v1` (OCI),
/// `v2s2` (the same image as a Docker schema 2 manifest) and `multi`
/// (all platforms). `creds` is `user:password` for an htpasswd registry.
pub async fn push_test_images(
    images: &TestImages,
    registry: &str,
    name: &str,
    creds: Option<&str>,
) {
    let dir = images.layout.dir.display().to_string();
    for (src_tag, dst_tag, extra) in [
        ("v1", "v1", vec![]),
        ("v1", "v2s2", vec!["--format", "v2s2"]),
        ("multi", "multi", vec!["--all"]),
    ] {
        let src = format!("oci:{dir}:{src_tag}");
        let dst = format!("docker://{registry}/library/{name}:{dst_tag}");
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        if let Some(c) = creds {
            args.extend(["--dest-creds", c]);
        }
        args.extend(extra);
        args.extend([src.as_str(), dst.as_str()]);
        skopeo_ok(&args).await;
    }
}

/// Pull `reference` (`docker://…`) into a fresh `dir:` below `parent`
/// with skopeo, with global `flags` (e.g. `--override-arch arm64`) and
/// copy options `opts` (e.g. `--all`); returns the directory.
pub async fn pull_to_dir(
    parent: &Path,
    label: &str,
    reference: &str,
    flags: &[&str],
    opts: &[&str],
) -> Result<PathBuf, String> {
    let dir = parent.join(label);
    let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    args.extend(["copy".into(), "--src-tls-verify=false".into()]);
    args.extend(opts.iter().map(|s| s.to_string()));
    args.push(reference.into());
    args.push(format!("dir:{}", dir.display()));
    let (ok, _, err) = skopeo(args).await;
    if ok { Ok(dir) } else { Err(err) }
}

/// Check a skopeo `dir:` copy: every blob's sha256 matches its file name,
/// and every blob the manifests reference is there. Returns the digest of
/// `manifest.json`.
pub fn verify_dir(dir: &Path) -> String {
    let mut blobs = HashSet::new();
    let mut manifests = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(e.path()).unwrap();
        if name == "manifest.json" || name.ends_with(".manifest.json") {
            manifests.push(data);
        } else if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            assert_eq!(
                sha256(&data),
                format!("sha256:{name}"),
                "blob {name} in {} has the wrong content",
                dir.display()
            );
            blobs.insert(format!("sha256:{name}"));
        }
    }
    assert!(!manifests.is_empty(), "no manifest in {}", dir.display());
    for m in &manifests {
        let v: Value = serde_json::from_slice(m).expect("manifest is JSON");
        let mut wanted: Vec<&str> = Vec::new();
        if let Some(c) = v["config"]["digest"].as_str() {
            wanted.push(c);
        }
        for l in v["layers"].as_array().into_iter().flatten() {
            wanted.push(l["digest"].as_str().unwrap());
        }
        for w in wanted {
            assert!(blobs.contains(w), "blob {w} missing in {}", dir.display());
        }
    }
    sha256(&std::fs::read(dir.join("manifest.json")).unwrap())
}
