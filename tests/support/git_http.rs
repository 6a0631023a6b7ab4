//! A real git smart-HTTP upstream on 127.0.0.1: a small in-process hyper
//! server that runs `git http-backend` as a CGI program per request, with
//! request counters and a stop switch; plus helpers to run the `git` client
//! isolated from the machine's configuration.
//!
//! Nothing to install beyond `git` itself (`git http-backend` ships with
//! it). Request bodies are small in these tests, so each is read whole
//! (counted by a digest of its decoded bytes) and then piped to the CGI;
//! the CGI's output is streamed back as it is produced. Processes run on
//! plain threads (`std::process`), never blocking the runtime the gateway
//! shares.

use super::serve::Server;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, std::io::Error>;

/// Environment variables that could make a git process (client or CGI)
/// depend on the machine instead of the test.
const SCRUBBED: [&str; 12] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_CONFIG_PARAMETERS",
    "GIT_TRACE",
    "GIT_PROTOCOL",
    "XDG_CONFIG_HOME",
];

/// A `git` command isolated from the machine: `home` as `HOME`, no system
/// or global config, no prompts, no proxies, a fixed identity.
pub fn git_command(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.org")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.org")
        .env("NO_PROXY", "*")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

/// Run `cmd` on a blocking thread (at most `limit`; then it is killed)
/// and return its output.
pub async fn run_for(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(limit, waiting).await {
        Ok(r) => r
            .expect("join")
            .unwrap_or_else(|e| panic!("run {what}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) with the id of the child this call started
            // (not yet reaped: its waiter is still blocked on it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} took longer than {limit:?}")
        }
    }
}

/// Run `cmd` (at most 45 s), panic unless it succeeds, and return its
/// stdout (trimmed).
pub async fn run_ok(cmd: Command) -> String {
    let what = format!("{cmd:?}");
    let out = run_for(cmd, Duration::from_secs(45)).await;
    super::clients::assert_success(&what, &out);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One request the upstream answered (or refused while stopped).
#[derive(Clone, Debug)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query string.
    pub query: String,
    /// First 12 hex digits of the sha256 of the decoded request body.
    pub digest: String,
    /// The decoded (gunzipped) request body.
    pub body: Vec<u8>,
    /// Whether the body arrived with `Content-Encoding: gzip`.
    pub gzip: bool,
}

impl Seen {
    /// Whether this is an upload-pack POST that fetches objects (a
    /// protocol-v2 `fetch` or a v0 request), not a ref listing.
    pub fn is_fetch(&self) -> bool {
        self.method == "POST"
            && self.path.ends_with("/git-upload-pack")
            && !contains(&self.body, b"command=ls-refs")
    }

    /// Whether this is a protocol-v2 `ls-refs` POST.
    pub fn is_ls_refs(&self) -> bool {
        self.method == "POST" && contains(&self.body, b"command=ls-refs")
    }

    /// Whether this is a `GET .../info/refs`.
    pub fn is_info_refs(&self) -> bool {
        self.method == "GET" && self.path.ends_with("/info/refs")
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The running upstream; dropping it stops the server.
pub struct GitHttp {
    seen: Arc<Mutex<Vec<Seen>>>,
    server: Server,
}

impl GitHttp {
    /// Serve the repositories below `root` on 127.0.0.1:0; CGI processes
    /// get `home` as `HOME`.
    pub async fn start(root: &Path, home: &Path) -> GitHttp {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let ctx = Arc::new(Ctx {
            root: root.to_owned(),
            home: home.to_owned(),
            seen: seen.clone(),
        });
        let server = Server::start(move |req, peer| {
            let ctx = ctx.clone();
            async move { serve(&ctx, peer, req).await }
        })
        .await;
        GitHttp { seen, server }
    }

    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Stop answering (connections are closed at once), or start again.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }

    /// Every request answered so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many answered requests satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| pred(s)).count()
    }

    /// Answered requests grouped by (method, path, body digest), with
    /// their number, sorted.
    pub fn counts(&self) -> Vec<((String, String, String), usize)> {
        let mut m = std::collections::BTreeMap::new();
        for s in self.seen.lock().unwrap().iter() {
            *m.entry((s.method.clone(), s.path.clone(), s.digest.clone()))
                .or_insert(0) += 1;
        }
        m.into_iter().collect()
    }
}

struct Ctx {
    root: PathBuf,
    home: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

async fn serve(ctx: &Ctx, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("read body: {e}")),
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let encoding = header("content-encoding");
    let decoded = match encoding.as_deref() {
        Some("gzip") => {
            let mut out = Vec::new();
            let _ = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out);
            out
        }
        _ => body.to_vec(),
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    ctx.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        digest: super::sha256_hex(&decoded)[..12].to_owned(),
        body: decoded,
        gzip: encoding.as_deref() == Some("gzip"),
    });

    let mut cmd = git_command(&ctx.home);
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &ctx.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", &query)
        .env("REMOTE_ADDR", peer.ip().to_string())
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (var, name) in [
        ("CONTENT_TYPE", "content-type"),
        ("HTTP_CONTENT_ENCODING", "content-encoding"),
        ("HTTP_GIT_PROTOCOL", "git-protocol"),
    ] {
        if let Some(v) = header(name) {
            cmd.env(var, v);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("start git http-backend: {e}"),
            );
        }
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    std::thread::spawn(move || {
        // Dropping stdin closes it: the CGI sees the end of the body.
        let _ = stdin.write_all(&body);
    });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let what = format!("{} {path}", parts.method);
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        if !text.trim().is_empty() {
            eprintln!("git http-backend ({what}): {}", text.trim());
        }
    });
    // stdout in chunks through a channel; the child is reaped at its end.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    std::thread::spawn(move || {
        loop {
            let mut chunk = vec![0u8; 64 * 1024];
            match stdout.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    chunk.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        drop(stdout);
        let _ = child.wait();
    });

    // CGI headers, up to the empty line.
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(i) = find_blank_line(&buf) {
            break i;
        }
        match rx.recv().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            _ => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "git http-backend ended before its headers",
                );
            }
        }
        if buf.len() > 64 * 1024 {
            return error(StatusCode::BAD_GATEWAY, "git http-backend headers too long");
        }
    };
    let (head, rest_start) = header_end;
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    for line in String::from_utf8_lossy(&buf[..head]).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            status = v
                .split(' ')
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    let first = Bytes::copy_from_slice(&buf[rest_start..]);
    // The rest of stdout, streamed.
    let stream = futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        if let Some(f) = first.filter(|f| !f.is_empty()) {
            return Some((Ok(Frame::data(f)), (None, rx)));
        }
        let next = rx.recv().await?;
        Some((next.map(Frame::data), (None, rx)))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// The end of the CGI header block: (header length, body start).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}
