//! Golden case files for `artgate plugin check`: one call into an adapter
//! (a request in) and the answer expected (a decision out), as TOML or
//! JSON.
//!
//! ```toml
//! description = "a versioned file is immutable"
//! # call = "plan" (default) | "on-response" | "inspect-body"
//!
//! [remote]                 # every field optional; defaults below
//! name = "test"
//! upstreams = ["https://upstream.example"]
//! options = { refs_ttl = "60" }
//!
//! [request]
//! method = "GET"           # default GET
//! path = "pkgs/tool-1.0.tar.gz"
//! query = "x=1"            # optional
//! headers = { accept = "*/*" }
//!
//! [expect.forward.plan]    # only the fields given are compared
//! class = "immutable"
//! key = "pkgs/tool-1.0.tar.gz"
//! ```
//!
//! Field names are the WIT names (`mutable-ttl-secs`, `content-type`);
//! snake_case spellings are accepted in the input tables too. The JSON
//! form of outputs is described in [`super::render`].

use super::wit;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which adapter function a case calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `plan(remote, request)` → the decision.
    Plan,
    /// `on-response(remote, request, sent, response, attempt)`; `sent`
    /// defaults to the upstream request of the case's own `plan` forward.
    OnResponse,
    /// `inspect-body(remote, request, response, body)`.
    InspectBody,
}

/// One parsed case.
#[derive(Debug, Clone)]
pub struct Case {
    /// File name without extension.
    pub name: String,
    /// Free text shown next to the name.
    pub description: Option<String>,
    /// The function to call.
    pub call: Call,
    /// The remote the request is for.
    pub remote: wit::RemoteInfo,
    /// The client request.
    pub request: wit::Request,
    /// The upstream request (on-response only; none: from `plan`).
    pub sent: Option<wit::UpstreamRequest>,
    /// The upstream response (on-response, inspect-body).
    pub response: wit::UpstreamResponse,
    /// The upstream body (inspect-body).
    pub response_body: Vec<u8>,
    /// `attempt` for on-response.
    pub attempt: u32,
    /// The expected output, compared field by field.
    pub expect: Option<Value>,
    /// A substring the call's error must contain (the call must fail).
    pub expect_error: Option<String>,
    /// What `gateway-url` answers during the call (default
    /// [`DEFAULT_GATEWAY_URL`]).
    pub gateway_url: String,
}

/// What `gateway-url` answers in a case that does not set `gateway-url`:
/// the built-in configuration's listener.
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8080";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCase {
    description: Option<String>,
    call: Option<String>,
    #[serde(default)]
    remote: RawRemote,
    request: RawRequest,
    sent: Option<RawUpstreamRequest>,
    response: Option<RawResponse>,
    #[serde(default)]
    attempt: u32,
    expect: Option<Value>,
    #[serde(alias = "expect_error")]
    expect_error: Option<String>,
    #[serde(alias = "gateway_url")]
    gateway_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRemote {
    name: Option<String>,
    package: Option<String>,
    mode: Option<String>,
    upstreams: Option<Vec<String>>,
    #[serde(alias = "mutable_ttl_secs")]
    mutable_ttl_secs: Option<u64>,
    #[serde(alias = "negative_ttl_secs")]
    negative_ttl_secs: Option<u64>,
    #[serde(alias = "check_mutable_updates")]
    check_mutable_updates: Option<bool>,
    #[serde(alias = "immutable_patterns")]
    immutable_patterns: Option<Vec<String>>,
    #[serde(alias = "mutable_patterns")]
    mutable_patterns: Option<Vec<String>>,
    #[serde(default)]
    options: BTreeMap<String, Value>,
    #[serde(alias = "has_credentials")]
    has_credentials: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRequest {
    id: Option<String>,
    kind: Option<String>,
    method: Option<String>,
    path: String,
    query: Option<String>,
    #[serde(default)]
    headers: RawHeaders,
    body: Option<String>,
    #[serde(alias = "body_base64")]
    body_base64: Option<String>,
    #[serde(alias = "body_file")]
    body_file: Option<PathBuf>,
    #[serde(alias = "body_too_large", default)]
    body_too_large: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawUpstreamRequest {
    method: Option<String>,
    target: String,
    #[serde(default)]
    headers: RawHeaders,
    #[serde(alias = "forward_body", default)]
    forward_body: bool,
    #[serde(alias = "use_credentials", default)]
    use_credentials: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawResponse {
    status: Option<u16>,
    #[serde(default)]
    headers: RawHeaders,
    body: Option<String>,
    #[serde(alias = "body_base64")]
    body_base64: Option<String>,
    #[serde(alias = "body_file")]
    body_file: Option<PathBuf>,
}

/// A body as text, base64 or a file next to the case.
struct RawBody {
    body: Option<String>,
    body_base64: Option<String>,
    body_file: Option<PathBuf>,
}

/// Headers as a table (`{name = "value"}` or `{name = ["a", "b"]}`) or a
/// list of `[name, value]` pairs.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawHeaders {
    Table(BTreeMap<String, OneOrMany>),
    Pairs(Vec<(String, String)>),
}

impl Default for RawHeaders {
    fn default() -> Self {
        RawHeaders::Pairs(Vec::new())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl RawHeaders {
    fn into_wit(self) -> Vec<wit::Header> {
        let pair = |name: String, value: String| wit::Header {
            name: name.to_ascii_lowercase(),
            value,
        };
        match self {
            RawHeaders::Pairs(p) => p.into_iter().map(|(n, v)| pair(n, v)).collect(),
            RawHeaders::Table(t) => t
                .into_iter()
                .flat_map(|(n, v)| match v {
                    OneOrMany::One(v) => vec![pair(n, v)],
                    OneOrMany::Many(vs) => vs.into_iter().map(|v| pair(n.clone(), v)).collect(),
                })
                .collect(),
        }
    }
}

impl RawBody {
    fn read(self, dir: &Path) -> Result<Option<Vec<u8>>, String> {
        match (self.body, self.body_base64, self.body_file) {
            (None, None, None) => Ok(None),
            (Some(t), None, None) => Ok(Some(t.into_bytes())),
            (None, Some(b), None) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map(Some)
                .map_err(|e| format!("body-base64 is not base64: {e}")),
            (None, None, Some(f)) => {
                let p = dir.join(&f);
                std::fs::read(&p)
                    .map(Some)
                    .map_err(|e| format!("body-file {}: {e}", p.display()))
            }
            _ => Err("give at most one of body, body-base64, body-file".into()),
        }
    }
}

/// Every `*.toml` and `*.json` file directly in `dir`, by file name.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "json")
            )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Read and parse one case file; `package` is the default package type of
/// the remote (the adapter's first).
pub fn load(path: &Path, package: &str) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{e}"))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw: RawCase = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    build(name, raw, package, dir)
}

/// Parse a case from TOML text (for tests and tools).
pub fn parse_toml(name: &str, text: &str, package: &str, dir: &Path) -> Result<Case, String> {
    let raw: RawCase = toml::from_str(text).map_err(|e| e.to_string())?;
    build(name.to_owned(), raw, package, dir)
}

/// The option named by `value` (kebab-case, or the same with `_`), the
/// first option when `value` is absent.
fn pick<T: Clone>(
    value: Option<&str>,
    options: &[(&str, T)],
    unknown: impl FnOnce(&str) -> String,
) -> Result<T, String> {
    let Some(v) = value else {
        return Ok(options[0].1.clone());
    };
    options
        .iter()
        .find(|(name, _)| *name == v || name.replace('-', "_") == v)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| unknown(v))
}

fn build(name: String, raw: RawCase, package: &str, dir: &Path) -> Result<Case, String> {
    let call = pick(
        raw.call.as_deref(),
        &[
            ("plan", Call::Plan),
            ("on-response", Call::OnResponse),
            ("inspect-body", Call::InspectBody),
        ],
        |other| format!("call = {other:?}: use \"plan\", \"on-response\" or \"inspect-body\""),
    )?;
    if raw.expect.is_none() && raw.expect_error.is_none() {
        return Err("the case has neither `expect` nor `expect-error`".into());
    }
    let r = raw.remote;
    let mode = pick(
        r.mode.as_deref(),
        &[
            ("pull-through", wit::RemoteMode::PullThrough),
            ("hosted", wit::RemoteMode::Hosted),
        ],
        |other| format!("remote.mode = {other:?}: use pull-through or hosted"),
    )?;
    let remote = wit::RemoteInfo {
        name: r.name.unwrap_or_else(|| "test".into()),
        package: r.package.unwrap_or_else(|| package.to_owned()),
        mode,
        upstreams: r.upstreams.unwrap_or_else(|| match mode {
            wit::RemoteMode::PullThrough => vec!["https://upstream.example".into()],
            wit::RemoteMode::Hosted => Vec::new(),
        }),
        mutable_ttl_secs: r.mutable_ttl_secs.unwrap_or(600),
        negative_ttl_secs: r.negative_ttl_secs.unwrap_or(60),
        check_mutable_updates: r.check_mutable_updates.unwrap_or(true),
        immutable_patterns: r.immutable_patterns.unwrap_or_default(),
        mutable_patterns: r.mutable_patterns.unwrap_or_default(),
        options: r
            .options
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        has_credentials: r.has_credentials.unwrap_or(false),
    };
    let q = raw.request;
    let kind = pick(
        q.kind.as_deref(),
        &[
            ("remote-api", wit::RouteKind::RemoteApi),
            ("registry", wit::RouteKind::Registry),
        ],
        |other| format!("request.kind = {other:?}: use remote-api or registry"),
    )?;
    let request = wit::Request {
        id: q.id.unwrap_or_else(|| format!("check-{name}")),
        kind,
        method: q
            .method
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase(),
        path: q.path.trim_start_matches('/').to_owned(),
        query: q.query,
        headers: q.headers.into_wit(),
        body: RawBody {
            body: q.body,
            body_base64: q.body_base64,
            body_file: q.body_file,
        }
        .read(dir)?,
        body_too_large: q.body_too_large,
    };
    let sent = raw.sent.map(|s| wit::UpstreamRequest {
        method: s.method.unwrap_or_else(|| "GET".into()),
        target: s.target,
        headers: s.headers.into_wit(),
        forward_body: s.forward_body,
        use_credentials: s.use_credentials,
    });
    let (response, response_body) = match raw.response {
        Some(r) => (
            wit::UpstreamResponse {
                status: r.status.unwrap_or(200),
                headers: r.headers.into_wit(),
            },
            RawBody {
                body: r.body,
                body_base64: r.body_base64,
                body_file: r.body_file,
            }
            .read(dir)?
            .unwrap_or_default(),
        ),
        None => (
            wit::UpstreamResponse {
                status: 200,
                headers: Vec::new(),
            },
            Vec::new(),
        ),
    };
    Ok(Case {
        name,
        description: raw.description,
        call,
        remote,
        request,
        sent,
        response,
        response_body,
        attempt: raw.attempt,
        expect: raw.expect,
        expect_error: raw.expect_error,
        gateway_url: raw
            .gateway_url
            .unwrap_or_else(|| DEFAULT_GATEWAY_URL.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_case_with_defaults() {
        let c = parse_toml(
            "a",
            "[request]\npath = \"/x/y\"\nheaders = { Accept = \"*/*\" }\n[expect.reject]\nstatus = 404\n",
            "pkg",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.call, Call::Plan);
        assert_eq!(c.remote.package, "pkg");
        assert_eq!(c.remote.upstreams, vec!["https://upstream.example"]);
        assert_eq!(c.request.path, "x/y");
        assert_eq!(c.request.method, "GET");
        assert_eq!(c.request.headers[0].name, "accept");
        assert_eq!(
            c.expect,
            Some(serde_json::json!({"reject": {"status": 404}}))
        );
    }

    #[test]
    fn rejects_unknown_fields_and_missing_expectations() {
        assert!(
            parse_toml("a", "[request]\npath = \"x\"\n", "p", Path::new("."))
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            parse_toml(
                "a",
                "[request]\npath = \"x\"\nbogus = 1\n[expect]\nx = 1\n",
                "p",
                Path::new(".")
            )
            .is_err()
        );
    }
}
