//! Configuration: the TOML file is parsed into raw serde structs (unknown
//! keys rejected), then [`RawConfig::validate`] turns it into a [`Config`]
//! whose every field is checked and typed. The rest of the gateway only
//! sees [`Config`].
//!
//! Relative paths in the file (`storage.dir`, `tls_cert`, `password_file`,
//! ...) are relative to the working directory of the process, not to the
//! directory of the configuration file: [`load`] leaves them as written.
//! [`parse`] takes a base directory for callers (and tests) that want them
//! anchored elsewhere.
//!
//! Secrets (`password_env`, `token_file`, ...) are read once, during
//! validation; the environment lookup is injectable ([`parse_with_env`]) so
//! tests need not mutate the process environment.
//!
//! Every error names the table or remote and the key, e.g.
//! `remote "alma": mutable_ttl: invalid duration "ten minutes" ...` or
//! `unknown key "upstrem" in [[remote]] #2 ("alma") at line 14`.

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[plugins]`.
    pub plugins: PluginsConfig,
    /// `[upstream]`: defaults for every remote's upstream client.
    pub upstream: UpstreamConfig,
    /// `[[remote]]`, in file order.
    pub remotes: Vec<RemoteConfig>,
    /// `[[token]]`: client access tokens. Empty means access control is off.
    pub tokens: Vec<TokenConfig>,
}

/// One `[[token]]`: a client access token, stored only as its sha256.
#[derive(Clone)]
pub struct TokenConfig {
    /// `name`: shown in logs instead of the token.
    pub name: String,
    /// sha256 of the token (from `token_sha256`, or hashed at startup from
    /// `token_env` / `token_file`).
    pub sha256: [u8; 32],
    /// Which key the token came from (`token_sha256`, `token_env`,
    /// `token_file`), for `GET /config`.
    pub source: &'static str,
    /// `admin`: may use `PUT /cache/flush` and `GET /config`.
    pub admin: bool,
    /// `scopes`: per remote name, or `*` for every remote.
    pub scopes: Vec<(String, Scopes)>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("admin", &self.admin)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// What a token may do on a remote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    /// `read`: `GET` / `HEAD`.
    pub read: bool,
    /// `write`: `PUT` / `POST` (and any other method that is not a read or
    /// a delete).
    pub write: bool,
    /// `delete`: `DELETE`.
    pub delete: bool,
}

impl Scopes {
    /// Both scope sets together.
    pub fn union(self, other: Scopes) -> Scopes {
        Scopes {
            read: self.read || other.read,
            write: self.write || other.write,
            delete: self.delete || other.delete,
        }
    }

    /// The scope names, in the order read, write, delete.
    pub fn names(self) -> Vec<&'static str> {
        [
            ("read", self.read),
            ("write", self.write),
            ("delete", self.delete),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
    }
}

/// `[server]`: listener, TLS and request limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`: address to bind (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `tls_cert` + `tls_key`: PEM files; both or neither.
    pub tls: Option<TlsFiles>,
    /// `max_connections`: concurrent connections (default 4096); more wait
    /// in the accept queue.
    pub max_connections: usize,
    /// `max_header_bytes`: total request header size (default 16 KiB) → 431.
    pub max_header_bytes: usize,
    /// `max_headers`: number of request headers (default 100) → 431.
    pub max_headers: usize,
    /// `max_uri_bytes`: request target length (default 8 KiB) → 414.
    pub max_uri_bytes: usize,
    /// `header_read_timeout`: time to receive request headers (default 10s).
    pub header_read_timeout: Duration,
    /// `idle_timeout`: keep-alive idle time before closing (default 60s).
    pub idle_timeout: Duration,
    /// `shutdown_grace`: how long in-flight requests get on shutdown (default 30s).
    pub shutdown_grace: Duration,
    /// `max_request_body_inspect`: largest request body an adapter may ask to
    /// see (default 1 MiB).
    pub max_inspect_bytes: u32,
}

/// PEM certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `dir`: root of the index and blob tree (default `./artgate-data`).
    pub dir: PathBuf,
    /// `max_size`: LRU eviction above this many bytes (default 50 GiB).
    pub max_size: u64,
}

/// `[plugins]`.
#[derive(Debug, Clone)]
pub struct PluginsConfig {
    /// `dir`: watched plugin directory (default `./plugins`). Missing is fine.
    pub dir: PathBuf,
    /// `cache_dir`: where compiled plugin code is cached (default
    /// `<storage.dir>/plugin-cache`). Only files artgate wrote are loaded.
    pub cache_dir: Option<PathBuf>,
    /// `memory_limit`: linear memory cap per plugin call (default 64 MiB).
    pub memory_limit: u64,
    /// `call_timeout`: time budget per plugin call (default 200ms).
    pub call_timeout: Duration,
    /// `reload_debounce`: quiet time after a change in the plugin dir before
    /// reloading (default 200ms).
    pub reload_debounce: Duration,
    /// `max_instances`: pooling allocator slots (default 256).
    pub max_instances: u32,
    /// `http_timeout`: budget for one `http-send` host call (default 10s).
    pub http_timeout: Duration,
    /// `http_max_body`: largest `http-send` response body (default 1 MiB).
    pub http_max_body: usize,
    /// `warm_instances`: adapter name → how many calls one instance serves
    /// before it is dropped (default: none, a fresh instance per call).
    /// For adapters that are slow to instantiate (componentize-py).
    pub warm_instances: BTreeMap<String, u32>,
}

/// `[upstream]`: the upstream client.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `connect_timeout` (default 10s).
    pub connect_timeout: Duration,
    /// `first_byte_timeout`: time from request sent to response headers
    /// (default 30s) → 504 when nothing is cached.
    pub first_byte_timeout: Duration,
    /// `idle_timeout`: longest pause between body chunks (default 60s).
    pub idle_timeout: Duration,
    /// `retries`: extra attempts before the first body byte for idempotent
    /// requests (default 1).
    pub retries: u32,
    /// `ca_file`: extra PEM CA certificates trusted besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// `max_redirects` (default 5).
    pub max_redirects: u32,
}

/// How a remote is operated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteMode {
    /// Pull-through cache of `upstream`.
    PullThrough,
    /// Hosted repository (`package = "local"`, or a hosted adapter with no
    /// upstream).
    Hosted,
    /// `package = "virtual"`: no store of its own; reads try `members` in
    /// order, writes go to `write_to`.
    Virtual,
}

impl RemoteMode {
    /// `"pull-through"`, `"hosted"` or `"virtual"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteMode::PullThrough => "pull-through",
            RemoteMode::Hosted => "hosted",
            RemoteMode::Virtual => "virtual",
        }
    }
}

/// Redirect policy for upstream responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPolicy {
    /// `follow_redirects = false`: a 3xx is an upstream error.
    Never,
    /// `"same-host"` (default): follow only to the same scheme+host+port.
    SameHost,
    /// `true` / `"any"`: follow to any http(s) host; credentials are
    /// stripped when the host changes.
    Any,
}

/// Upstream credentials; the secret is read at startup from the
/// environment or a file and never printed.
#[derive(Clone)]
pub enum Credentials {
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer`.
    Bearer {
        /// Token.
        token: Secret,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::Bearer { .. } => write!(f, "Bearer(***)"),
        }
    }
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One `[[remote]]`.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// `name`: URL segment, `[a-z0-9][a-z0-9._-]*`, unique.
    pub name: String,
    /// `package`: adapter package type (`generic`, `docker`, `local`, ...).
    pub package: String,
    /// Derived: hosted when `package = "local"` or `hosted = true` (then
    /// there is no upstream); pull-through otherwise.
    pub mode: RemoteMode,
    /// `upstream`: one URL or a list tried in order (http or https, no
    /// query or fragment, trailing `/` removed).
    pub upstreams: Vec<http::Uri>,
    /// `allow`: regexes on the remote-relative path; when non-empty a path
    /// matching none → 403.
    pub allow: Vec<Regex>,
    /// `immutable_patterns`: regexes of paths that never expire.
    pub immutable_patterns: Vec<String>,
    /// `mutable_patterns`: regexes of paths that expire after `mutable_ttl`.
    pub mutable_patterns: Vec<String>,
    /// `mutable_ttl` (default 10m).
    pub mutable_ttl: Duration,
    /// `negative_ttl`: TTL of cached upstream 404s (default 1m; 0 disables).
    pub negative_ttl: Duration,
    /// `check_mutable_updates` (default true): revalidate instead of refetch.
    pub check_mutable_updates: bool,
    /// `follow_redirects` (default same-host).
    pub follow_redirects: RedirectPolicy,
    /// Credentials from `username` + `password` / `password_env` /
    /// `password_file`, or `token` / `token_env` / `token_file`.
    pub credentials: Option<Credentials>,
    /// `options`: adapter-specific table, values rendered as strings.
    pub options: Vec<(String, String)>,
    /// `max_size`: quota for hosted remotes (None: unlimited).
    pub max_size: Option<u64>,
    /// `anonymous_read` (default true): when access control is on, reads
    /// need no token.
    pub anonymous_read: bool,
    /// `members`: the remotes a virtual remote reads from, in order (empty
    /// for other remotes).
    pub members: Vec<String>,
    /// `write_to`: the hosted member a virtual remote writes to.
    pub write_to: Option<String>,
}

impl RemoteConfig {
    /// Whether `path` passes the `allow` patterns.
    pub fn allows(&self, path: &str) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|r| r.is_match(path))
    }
}

impl Config {
    /// The built-in configuration used when `artgate` runs without
    /// `--config`: [`DEFAULT_CONFIG_TOML`] validated with paths relative to
    /// the working directory. It reads no environment and no files.
    pub fn default_config() -> Result<Config, ConfigError> {
        parse_with_env(DEFAULT_CONFIG_TOML, Path::new(""), &|_| None)
    }

    /// The remote called `name`.
    pub fn remote(&self, name: &str) -> Option<&RemoteConfig> {
        self.remotes.iter().find(|r| r.name == name)
    }

    /// Where compiled plugin code is cached: `plugins.cache_dir`, or
    /// `<storage.dir>/plugin-cache` when unset.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugins
            .cache_dir
            .clone()
            .unwrap_or_else(|| self.storage.dir.join("plugin-cache"))
    }

    /// The effective configuration as JSON for `GET /config`, keyed like
    /// the TOML file: every default filled in, durations as humantime
    /// strings (`"10m"`), sizes in bytes, and every secret (passwords,
    /// tokens, option values whose key looks secret) replaced by `"***"`.
    pub fn redacted_json(&self) -> serde_json::Value {
        use serde_json::json;
        let s = &self.server;
        let p = &self.plugins;
        let u = &self.upstream;
        json!({
            "server": {
                "listen": s.listen.to_string(),
                "tls_cert": s.tls.as_ref().map(|t| path_json(&t.cert)),
                "tls_key": s.tls.as_ref().map(|t| path_json(&t.key)),
                "max_connections": s.max_connections,
                "max_header_bytes": s.max_header_bytes,
                "max_headers": s.max_headers,
                "max_uri_bytes": s.max_uri_bytes,
                "header_read_timeout": duration_json(s.header_read_timeout),
                "idle_timeout": duration_json(s.idle_timeout),
                "shutdown_grace": duration_json(s.shutdown_grace),
                "max_request_body_inspect": s.max_inspect_bytes,
            },
            "storage": {
                "dir": path_json(&self.storage.dir),
                "max_size": self.storage.max_size,
            },
            "plugins": {
                "dir": path_json(&p.dir),
                "cache_dir": path_json(&self.plugin_cache_dir()),
                "memory_limit": p.memory_limit,
                "call_timeout": duration_json(p.call_timeout),
                "reload_debounce": duration_json(p.reload_debounce),
                "max_instances": p.max_instances,
                "http_timeout": duration_json(p.http_timeout),
                "http_max_body": p.http_max_body,
                "warm_instances": p.warm_instances,
            },
            "upstream": {
                "connect_timeout": duration_json(u.connect_timeout),
                "first_byte_timeout": duration_json(u.first_byte_timeout),
                "idle_timeout": duration_json(u.idle_timeout),
                "retries": u.retries,
                "ca_file": u.ca_file.as_ref().map(|f| path_json(f)),
                "max_redirects": u.max_redirects,
            },
            "remote": self.remotes.iter().map(RemoteConfig::redacted_json).collect::<Vec<_>>(),
            "token": self.tokens.iter().map(|t| json!({
                "name": t.name,
                "source": t.source,
                "token": REDACTED,
                "admin": t.admin,
                "scopes": t.scopes.iter().map(|(r, s)| (r.clone(), serde_json::Value::from(s.names()))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl RemoteConfig {
    /// This remote as JSON, secrets replaced by `"***"` (see
    /// [`Config::redacted_json`]).
    pub fn redacted_json(&self) -> serde_json::Value {
        use serde_json::json;
        let credentials = match &self.credentials {
            None => serde_json::Value::Null,
            Some(Credentials::Basic { username, .. }) => {
                json!({ "type": "basic", "username": username, "password": REDACTED })
            }
            Some(Credentials::Bearer { .. }) => json!({ "type": "bearer", "token": REDACTED }),
        };
        let options: serde_json::Map<String, serde_json::Value> = self
            .options
            .iter()
            .map(|(k, v)| {
                let v = if looks_secret(k) {
                    REDACTED
                } else {
                    v.as_str()
                };
                (k.clone(), serde_json::Value::from(v))
            })
            .collect();
        json!({
            "name": self.name,
            "package": self.package,
            "mode": self.mode.as_str(),
            "upstream": self.upstreams.iter().map(upstream_display).collect::<Vec<_>>(),
            "allow": self.allow.iter().map(Regex::as_str).collect::<Vec<_>>(),
            "immutable_patterns": self.immutable_patterns,
            "mutable_patterns": self.mutable_patterns,
            "mutable_ttl": duration_json(self.mutable_ttl),
            "negative_ttl": duration_json(self.negative_ttl),
            "check_mutable_updates": self.check_mutable_updates,
            "follow_redirects": match self.follow_redirects {
                RedirectPolicy::Never => "never",
                RedirectPolicy::SameHost => "same-host",
                RedirectPolicy::Any => "any",
            },
            "credentials": credentials,
            "options": options,
            "max_size": self.max_size,
            "anonymous_read": self.anonymous_read,
            "members": self.members,
            "write_to": self.write_to,
        })
    }
}

/// What a redacted secret looks like in `GET /config`.
const REDACTED: &str = "***";

/// Whether an adapter option's key names a secret (redacted in
/// `GET /config`).
fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "apikey",
        "api_key",
        "private",
    ]
    .iter()
    .any(|s| k.contains(s))
}

fn duration_json(d: Duration) -> serde_json::Value {
    serde_json::Value::from(humantime::format_duration(d).to_string())
}

fn path_json(p: &Path) -> serde_json::Value {
    serde_json::Value::from(p.display().to_string())
}

/// An upstream base URL as written (scheme, authority, path; no trailing
/// `/`).
fn upstream_display(u: &http::Uri) -> String {
    u.to_string().trim_end_matches('/').to_owned()
}

/// The built-in configuration (`gateway/src/default.toml`), also the
/// example configuration of the documentation.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default.toml");

/// Largest `password_file` / `token_file` read.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Whether `name` is a valid remote name: 1 to 64 characters from `a-z`,
/// `0-9`, `.`, `_`, `-`, starting with a letter or digit
/// (`^[a-z0-9][a-z0-9._-]{0,63}$`). Used by the config and by the router.
pub fn is_valid_remote_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    b.len() <= 64
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// Whether `package` is a valid package type: non-empty `[a-z0-9_-]+`.
fn is_valid_package(package: &str) -> bool {
    !package.is_empty()
        && package
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Read, parse and validate the configuration file at `path`. Relative
/// paths inside it stay relative to the working directory; secrets come
/// from the process environment and the named files.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { error })?;
    parse(&text, Path::new(""))
}

/// Parse and validate configuration text. Relative paths are joined onto
/// `base_dir` (pass `""` to keep them relative to the working directory, as
/// [`load`] does); `*_env` secrets come from the process environment.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    parse_with_env(text, base_dir, &|name| std::env::var_os(name))
}

/// [`parse`] with the environment lookup injected: `env(name)` returns the
/// value of variable `name`, if set.
pub fn parse_with_env(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    RawConfig::from_toml(text)?.validate(base_dir, env)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a configuration was rejected. Every message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file: {error}")]
    Read {
        /// The I/O error.
        error: std::io::Error,
    },
    /// TOML syntax error, or a value of the wrong type; the message has the
    /// line, the column, a snippet and the key.
    #[error("{}", .0.to_string().trim_end())]
    Toml(Box<toml::de::Error>),
    /// A key artgate does not know (often a typo).
    #[error("unknown key {key:?} in {table} at line {line}{hint}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where: `[server]`, `[[remote]] #2 ("alma")`, `the top level`.
        table: String,
        /// 1-based line of the key.
        line: usize,
        /// `; did you mean "..."?` or the list of known keys.
        hint: String,
    },
    /// A value failed validation.
    #[error("{scope}: {key}: {message}")]
    Invalid {
        /// `[server]`, `remote "alma"`, `[[remote]] #3`, ...
        scope: String,
        /// The key, e.g. `mutable_ttl`, `allow[1]`, `options.x`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl ConfigError {
    /// The offending key, when the error names one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Toml(_) => None,
        }
    }
}

fn invalid(scope: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        scope: scope.to_owned(),
        key: key.to_owned(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// Raw (serde) structs
// ---------------------------------------------------------------------------

/// The configuration file as written: every key optional, nothing checked
/// beyond TOML types. [`RawConfig::validate`] turns it into a [`Config`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    pub server: Option<RawServer>,
    /// `[storage]`.
    pub storage: Option<RawStorage>,
    /// `[plugins]`.
    pub plugins: Option<RawPlugins>,
    /// `[upstream]`.
    pub upstream: Option<RawUpstream>,
    /// `[[remote]]`.
    pub remote: Option<Vec<RawRemote>>,
    /// `[[token]]`.
    pub token: Option<Vec<RawToken>>,
}

/// One `[[token]]` as written; see [`TokenConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// `name` (required).
    pub name: Option<String>,
    /// `token_sha256`: hex sha256 of the token.
    pub token_sha256: Option<String>,
    /// `token_env`: environment variable holding the token.
    pub token_env: Option<String>,
    /// `token_file`: file holding the token.
    pub token_file: Option<PathBuf>,
    /// `admin`.
    pub admin: Option<bool>,
    /// `scopes`: remote name (or `*`) → list of `read`, `write`, `delete`.
    pub scopes: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// `[server]` as written; see [`ServerConfig`] for meanings and defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `listen`.
    pub listen: Option<String>,
    /// `tls_cert`.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`.
    pub tls_key: Option<PathBuf>,
    /// `max_connections`.
    pub max_connections: Option<u64>,
    /// `max_header_bytes`.
    pub max_header_bytes: Option<RawSize>,
    /// `max_headers`.
    pub max_headers: Option<u64>,
    /// `max_uri_bytes`.
    pub max_uri_bytes: Option<RawSize>,
    /// `header_read_timeout`.
    pub header_read_timeout: Option<RawDuration>,
    /// `idle_timeout`.
    pub idle_timeout: Option<RawDuration>,
    /// `shutdown_grace`.
    pub shutdown_grace: Option<RawDuration>,
    /// `max_request_body_inspect`.
    pub max_request_body_inspect: Option<RawSize>,
}

/// `[storage]` as written; see [`StorageConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// `dir`.
    pub dir: Option<PathBuf>,
    /// `max_size`.
    pub max_size: Option<RawSize>,
}

/// `[plugins]` as written; see [`PluginsConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    /// `dir`.
    pub dir: Option<PathBuf>,
    /// `cache_dir`.
    pub cache_dir: Option<PathBuf>,
    /// `memory_limit`.
    pub memory_limit: Option<RawSize>,
    /// `call_timeout`.
    pub call_timeout: Option<RawDuration>,
    /// `reload_debounce`.
    pub reload_debounce: Option<RawDuration>,
    /// `max_instances`.
    pub max_instances: Option<u32>,
    /// `http_timeout`.
    pub http_timeout: Option<RawDuration>,
    /// `http_max_body`.
    pub http_max_body: Option<RawSize>,
    /// `warm_instances`.
    pub warm_instances: Option<BTreeMap<String, u32>>,
}

/// `[upstream]` as written; see [`UpstreamConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `connect_timeout`.
    pub connect_timeout: Option<RawDuration>,
    /// `first_byte_timeout`.
    pub first_byte_timeout: Option<RawDuration>,
    /// `idle_timeout`.
    pub idle_timeout: Option<RawDuration>,
    /// `retries`.
    pub retries: Option<u32>,
    /// `ca_file`.
    pub ca_file: Option<PathBuf>,
    /// `max_redirects`.
    pub max_redirects: Option<u32>,
}

/// One `[[remote]]` as written; see [`RemoteConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemote {
    /// `name` (required).
    pub name: Option<String>,
    /// `package` (required).
    pub package: Option<String>,
    /// `hosted`: a hosted repository served by a non-`local` adapter
    /// (e.g. `cas`); such a remote has no upstream.
    pub hosted: Option<bool>,
    /// `upstream`: a URL or a list of URLs.
    pub upstream: Option<RawUpstreams>,
    /// `allow`.
    pub allow: Option<Vec<String>>,
    /// `immutable_patterns`.
    pub immutable_patterns: Option<Vec<String>>,
    /// `mutable_patterns`.
    pub mutable_patterns: Option<Vec<String>>,
    /// `mutable_ttl`.
    pub mutable_ttl: Option<RawDuration>,
    /// `negative_ttl`.
    pub negative_ttl: Option<RawDuration>,
    /// `check_mutable_updates`.
    pub check_mutable_updates: Option<bool>,
    /// `follow_redirects`.
    pub follow_redirects: Option<RawRedirects>,
    /// `username` (Basic auth).
    pub username: Option<String>,
    /// `password`: literal password (prefer `password_env`/`password_file`).
    pub password: Option<Secret>,
    /// `password_env`: name of the environment variable holding it.
    pub password_env: Option<String>,
    /// `password_file`: file holding it (trailing newlines dropped).
    pub password_file: Option<PathBuf>,
    /// `token`: literal bearer token (prefer `token_env`/`token_file`).
    pub token: Option<Secret>,
    /// `token_env`.
    pub token_env: Option<String>,
    /// `token_file`.
    pub token_file: Option<PathBuf>,
    /// `options`: adapter-specific scalars.
    pub options: Option<RawOptions>,
    /// `max_size`.
    pub max_size: Option<RawSize>,
    /// `anonymous_read`.
    pub anonymous_read: Option<bool>,
    /// `members` (virtual remotes).
    pub members: Option<Vec<String>>,
    /// `write_to` (virtual remotes).
    pub write_to: Option<String>,
}

/// A size: an integer number of bytes, or a string with a unit such as
/// `"50GiB"` (binary, 1024-based) or `"512MB"` (decimal, 1000-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSize {
    /// An integer: bytes.
    Bytes(u64),
    /// A string with a unit.
    Text(String),
}

/// A duration: an integer number of seconds, or a humantime string such as
/// `"500ms"`, `"10m"`, `"1h30m"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawDuration {
    /// An integer: seconds.
    Seconds(u64),
    /// A humantime string.
    Text(String),
}

/// `upstream = "https://..."` or `upstream = ["https://a", "https://b"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawUpstreams {
    /// One URL.
    One(String),
    /// URLs tried in order.
    Many(Vec<String>),
}

/// `follow_redirects = true | false | "same-host" | "any" | "never"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawRedirects {
    /// `true` (any) or `false` (never).
    Bool(bool),
    /// A policy name.
    Text(String),
}

/// `[remote.options]` / `options = { ... }`, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawOptions(pub Vec<(String, toml::Value)>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

enum IntOrStr {
    Int(u64),
    Str(String),
}

struct IntOrStrVisitor(&'static str);

impl Visitor<'_> for IntOrStrVisitor {
    type Value = IntOrStr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
        Ok(IntOrStr::Int(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
        u64::try_from(v)
            .map(IntOrStr::Int)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
        Ok(IntOrStr::Str(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(IntOrStrVisitor(
            "a size: a number of bytes or a string such as \"512MiB\"",
        ))?;
        Ok(match v {
            IntOrStr::Int(n) => RawSize::Bytes(n),
            IntOrStr::Str(s) => RawSize::Text(s),
        })
    }
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(IntOrStrVisitor(
            "a duration: a number of seconds or a string such as \"10m\" or \"500ms\"",
        ))?;
        Ok(match v {
            IntOrStr::Int(n) => RawDuration::Seconds(n),
            IntOrStr::Str(s) => RawDuration::Text(s),
        })
    }
}

impl<'de> Deserialize<'de> for RawUpstreams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawUpstreams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a URL or an array of URLs")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawUpstreams, E> {
                Ok(RawUpstreams::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawUpstreams, A::Error> {
                let mut urls = Vec::new();
                while let Some(u) = seq.next_element::<String>()? {
                    urls.push(u);
                }
                Ok(RawUpstreams::Many(urls))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawRedirects {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawRedirects;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, \"same-host\", \"any\" or \"never\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawRedirects, E> {
                Ok(RawRedirects::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRedirects, E> {
                Ok(RawRedirects::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawOptions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of strings, numbers and booleans")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawOptions, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, toml::Value>()? {
                    out.push((k, v));
                }
                Ok(RawOptions(out))
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------
// Unknown keys: a pass over the parsed document before serde, so the error
// names the table (and the remote) and the line, and suggests a fix.
// ---------------------------------------------------------------------------

const ROOT_KEYS: &[&str] = &[
    "server", "storage", "plugins", "upstream", "remote", "token",
];
const TOKEN_KEYS: &[&str] = &[
    "name",
    "token_sha256",
    "token_env",
    "token_file",
    "admin",
    "scopes",
];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls_cert",
    "tls_key",
    "max_connections",
    "max_header_bytes",
    "max_headers",
    "max_uri_bytes",
    "header_read_timeout",
    "idle_timeout",
    "shutdown_grace",
    "max_request_body_inspect",
];
const STORAGE_KEYS: &[&str] = &["dir", "max_size"];
const PLUGINS_KEYS: &[&str] = &[
    "dir",
    "cache_dir",
    "memory_limit",
    "call_timeout",
    "reload_debounce",
    "max_instances",
    "http_timeout",
    "http_max_body",
    "warm_instances",
];
const UPSTREAM_KEYS: &[&str] = &[
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "retries",
    "ca_file",
    "max_redirects",
];
const REMOTE_KEYS: &[&str] = &[
    "name",
    "package",
    "hosted",
    "upstream",
    "allow",
    "immutable_patterns",
    "mutable_patterns",
    "mutable_ttl",
    "negative_ttl",
    "check_mutable_updates",
    "follow_redirects",
    "username",
    "password",
    "password_env",
    "password_file",
    "token",
    "token_env",
    "token_file",
    "options",
    "max_size",
    "anonymous_read",
    "members",
    "write_to",
];

type Spanned<T> = toml::Spanned<T>;
type DeTable<'i> = toml::de::DeTable<'i>;
type DeValue<'i> = toml::de::DeValue<'i>;

/// The first (by position) unknown key in `table`, as (key, byte offset).
fn first_unknown<'a>(table: &'a DeTable<'_>, known: &[&str]) -> Option<(&'a str, usize)> {
    table
        .iter()
        .filter(|(k, _)| !known.contains(&k.get_ref().as_ref()))
        .map(|(k, _)| (k.get_ref().as_ref(), k.span().start))
        .min_by_key(|(_, at)| *at)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_key(text: &str, key: &str, at: usize, table: String, known: &[&str]) -> ConfigError {
    let close = known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 2 || (*d == 3 && key.len() >= 5))
        .min_by_key(|(d, _)| *d);
    let hint = match close {
        Some((_, k)) => format!("; did you mean \"{k}\"?"),
        None => format!("; known keys: {}", known.join(", ")),
    };
    ConfigError::UnknownKey {
        key: key.to_owned(),
        table,
        line: line_of(text, at),
        hint,
    }
}

fn check_table(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    known: &[&str],
    label: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if let DeValue::Table(t) = value.get_ref()
        && let Some((key, at)) = first_unknown(t, known)
    {
        return Err(unknown_key(text, key, at, label(), known));
    }
    Ok(())
}

/// Reject unknown keys with the table, remote and line named. Type errors
/// are left to serde, whose messages name the line too.
fn check_keys(text: &str) -> Result<(), ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| ConfigError::Toml(Box::new(e)))?;
    let root = doc.get_ref();
    if let Some((key, at)) = first_unknown(root, ROOT_KEYS) {
        return Err(unknown_key(
            text,
            key,
            at,
            "the top level".into(),
            ROOT_KEYS,
        ));
    }
    for (k, v) in root.iter() {
        let name = k.get_ref().as_ref();
        match name {
            "server" => check_table(text, v, SERVER_KEYS, || "[server]".into())?,
            "storage" => check_table(text, v, STORAGE_KEYS, || "[storage]".into())?,
            "plugins" => check_table(text, v, PLUGINS_KEYS, || "[plugins]".into())?,
            "upstream" => check_table(text, v, UPSTREAM_KEYS, || "[upstream]".into())?,
            "remote" | "token" => {
                let known = if name == "remote" {
                    REMOTE_KEYS
                } else {
                    TOKEN_KEYS
                };
                match v.get_ref() {
                    DeValue::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            check_table(text, item, known, || array_label(name, i, item))?;
                        }
                    }
                    DeValue::Table(_) => {
                        return Err(invalid(
                            "the top level",
                            name,
                            format!(
                                "must be an array of tables (line {}): write [[{name}]], not [{name}]",
                                line_of(text, k.span().start)
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `[[remote]] #2 ("alma")` / `[[token]] #1 ("ci")` (1-based; the name
/// when it is a string).
fn array_label(kind: &str, i: usize, item: &Spanned<DeValue<'_>>) -> String {
    let name = match item.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == "name")
            .and_then(|(_, v)| match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            }),
        _ => None,
    };
    match name {
        Some(n) => format!("[[{kind}]] #{} ({n:?})", i + 1),
        None => format!("[[{kind}]] #{}", i + 1),
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Validation context: where relative paths are anchored and how
/// environment variables are looked up.
struct Cx<'a> {
    base_dir: &'a Path,
    env: &'a dyn Fn(&str) -> Option<OsString>,
}

impl Cx<'_> {
    /// A path from the file, relative ones joined onto `base_dir`.
    fn path(&self, scope: &str, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        if p.as_os_str().is_empty() {
            return Err(invalid(scope, key, "must not be empty"));
        }
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        })
    }

    /// A path that must name an existing regular file.
    fn existing_file(&self, scope: &str, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        let path = self.path(scope, key, p)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            Ok(_) => Err(invalid(
                scope,
                key,
                format!("{:?} is not a regular file", path.display().to_string()),
            )),
            Err(e) => Err(invalid(
                scope,
                key,
                format!("cannot use {:?}: {e}", path.display().to_string()),
            )),
        }
    }
}

impl RawConfig {
    /// Parse TOML text into a `RawConfig`. Syntax errors, wrong types and
    /// unknown keys are rejected here, each with its line.
    pub fn from_toml(text: &str) -> Result<RawConfig, ConfigError> {
        check_keys(text)?;
        toml::from_str(text).map_err(|e| ConfigError::Toml(Box::new(e)))
    }

    /// Check every value, fill in defaults and read secrets. Relative paths
    /// are joined onto `base_dir` (`""` keeps them relative to the working
    /// directory); `env(name)` looks up environment variables.
    pub fn validate(
        &self,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let cx = Cx { base_dir, env };
        let server = validate_server(&cx, &self.server.clone().unwrap_or_default())?;
        let storage = validate_storage(&cx, &self.storage.clone().unwrap_or_default())?;
        let plugins = validate_plugins(&cx, &self.plugins.clone().unwrap_or_default())?;
        let upstream = validate_upstream(&cx, &self.upstream.clone().unwrap_or_default())?;
        let mut remotes: Vec<RemoteConfig> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, raw) in self.remote.iter().flatten().enumerate() {
            let remote = validate_remote(&cx, i, raw)?;
            if let Some(first) = seen.insert(remote.name.clone(), i) {
                return Err(invalid(
                    &format!("remote {:?}", remote.name),
                    "name",
                    format!(
                        "duplicate remote name: [[remote]] #{} and #{} both use it",
                        first + 1,
                        i + 1
                    ),
                ));
            }
            remotes.push(remote);
        }
        validate_virtuals(&remotes)?;
        let tokens = validate_tokens(&cx, self.token.as_deref().unwrap_or_default(), &remotes)?;
        if tokens.is_empty()
            && let Some(r) = remotes.iter().find(|r| !r.anonymous_read)
        {
            return Err(invalid(
                &format!("remote {:?}", r.name),
                "anonymous_read",
                "false needs access control, which is off without [[token]] tables; define at least one token",
            ));
        }
        Ok(Config {
            server,
            storage,
            plugins,
            upstream,
            remotes,
            tokens,
        })
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// Parse a size value, without range checks.
fn parse_size(v: &RawSize) -> Result<u64, String> {
    match v {
        RawSize::Bytes(n) => Ok(*n),
        RawSize::Text(s) => {
            let t = s.trim();
            let ok = t.starts_with(|c: char| c.is_ascii_digit());
            match t.parse::<bytesize::ByteSize>() {
                Ok(b) if ok => Ok(b.as_u64()),
                _ => Err(format!(
                    "invalid size {s:?}; expected a number of bytes or a number with a unit such as \"512MiB\" or \"50GB\""
                )),
            }
        }
    }
}

/// Parse a duration value, without range checks.
fn parse_duration(v: &RawDuration) -> Result<Duration, String> {
    match v {
        RawDuration::Seconds(n) => Ok(Duration::from_secs(*n)),
        RawDuration::Text(s) => humantime::parse_duration(s.trim()).map_err(|e| {
            format!("invalid duration {s:?} ({e}); expected e.g. \"500ms\", \"10m\", \"1h30m\" or a number of seconds")
        }),
    }
}

/// A size > 0 (default `default`).
fn size(scope: &str, key: &str, v: &Option<RawSize>, default: u64) -> Result<u64, ConfigError> {
    let n = match v {
        None => return Ok(default),
        Some(v) => parse_size(v).map_err(|m| invalid(scope, key, m))?,
    };
    if n == 0 {
        return Err(invalid(scope, key, "must be greater than zero"));
    }
    Ok(n)
}

/// A size > 0 that fits in `T`.
fn size_as<T: TryFrom<u64>>(
    scope: &str,
    key: &str,
    v: &Option<RawSize>,
    default: u64,
) -> Result<T, ConfigError> {
    let n = size(scope, key, v, default)?;
    T::try_from(n).map_err(|_| invalid(scope, key, format!("{n} bytes is too large")))
}

/// A count > 0 (default `default`).
fn count<T: TryFrom<u64>>(
    scope: &str,
    key: &str,
    v: Option<u64>,
    default: u64,
) -> Result<T, ConfigError> {
    let n = v.unwrap_or(default);
    if n == 0 {
        return Err(invalid(scope, key, "must be greater than zero"));
    }
    T::try_from(n).map_err(|_| invalid(scope, key, format!("{n} is too large")))
}

/// A duration (default `default`); zero allowed only when `allow_zero`.
fn duration(
    scope: &str,
    key: &str,
    v: &Option<RawDuration>,
    default: Duration,
    allow_zero: bool,
) -> Result<Duration, ConfigError> {
    let d = match v {
        None => return Ok(default),
        Some(v) => parse_duration(v).map_err(|m| invalid(scope, key, m))?,
    };
    if d.is_zero() && !allow_zero {
        return Err(invalid(scope, key, "must be greater than zero"));
    }
    Ok(d)
}

fn validate_server(cx: &Cx<'_>, r: &RawServer) -> Result<ServerConfig, ConfigError> {
    const S: &str = "[server]";
    let listen = match &r.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(s) => s.trim().parse().map_err(|_| {
            invalid(
                S,
                "listen",
                format!("invalid address {s:?}; expected an IP address and port such as \"127.0.0.1:8080\" or \"[::]:8080\""),
            )
        })?,
    };
    let tls = match (&r.tls_cert, &r.tls_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                S,
                "tls_key",
                "missing: tls_cert and tls_key must be given together",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                S,
                "tls_cert",
                "missing: tls_cert and tls_key must be given together",
            ));
        }
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cx.existing_file(S, "tls_cert", cert)?,
            key: cx.existing_file(S, "tls_key", key)?,
        }),
    };
    Ok(ServerConfig {
        listen,
        tls,
        max_connections: count(S, "max_connections", r.max_connections, 4096)?,
        max_header_bytes: size_as(S, "max_header_bytes", &r.max_header_bytes, 16 * KIB)?,
        max_headers: count(S, "max_headers", r.max_headers, 100)?,
        max_uri_bytes: size_as(S, "max_uri_bytes", &r.max_uri_bytes, 8 * KIB)?,
        header_read_timeout: duration(
            S,
            "header_read_timeout",
            &r.header_read_timeout,
            Duration::from_secs(10),
            false,
        )?,
        idle_timeout: duration(
            S,
            "idle_timeout",
            &r.idle_timeout,
            Duration::from_secs(60),
            false,
        )?,
        shutdown_grace: duration(
            S,
            "shutdown_grace",
            &r.shutdown_grace,
            Duration::from_secs(30),
            true,
        )?,
        max_inspect_bytes: size_as(
            S,
            "max_request_body_inspect",
            &r.max_request_body_inspect,
            MIB,
        )?,
    })
}

fn validate_storage(cx: &Cx<'_>, r: &RawStorage) -> Result<StorageConfig, ConfigError> {
    const S: &str = "[storage]";
    Ok(StorageConfig {
        dir: cx.path(
            S,
            "dir",
            r.dir.as_deref().unwrap_or(Path::new("./artgate-data")),
        )?,
        max_size: size(S, "max_size", &r.max_size, 50 * GIB)?,
    })
}

fn validate_plugins(cx: &Cx<'_>, r: &RawPlugins) -> Result<PluginsConfig, ConfigError> {
    const S: &str = "[plugins]";
    let memory_limit = size(S, "memory_limit", &r.memory_limit, 64 * MIB)?;
    if memory_limit > 4 * GIB {
        return Err(invalid(
            S,
            "memory_limit",
            format!(
                "{memory_limit} bytes is more than a 32-bit WebAssembly memory can hold (4GiB)"
            ),
        ));
    }
    Ok(PluginsConfig {
        dir: cx.path(S, "dir", r.dir.as_deref().unwrap_or(Path::new("./plugins")))?,
        cache_dir: r
            .cache_dir
            .as_deref()
            .map(|p| cx.path(S, "cache_dir", p))
            .transpose()?,
        memory_limit,
        call_timeout: duration(
            S,
            "call_timeout",
            &r.call_timeout,
            Duration::from_millis(200),
            false,
        )?,
        reload_debounce: duration(
            S,
            "reload_debounce",
            &r.reload_debounce,
            Duration::from_millis(200),
            true,
        )?,
        max_instances: count(S, "max_instances", r.max_instances.map(u64::from), 256)?,
        http_timeout: duration(
            S,
            "http_timeout",
            &r.http_timeout,
            Duration::from_secs(10),
            false,
        )?,
        http_max_body: size_as(S, "http_max_body", &r.http_max_body, MIB)?,
        warm_instances: warm_instances(r.warm_instances.as_ref())?,
    })
}

/// `[plugins] warm_instances = { name = calls }`: adapter names as
/// `describe` reports them, at least one call each.
fn warm_instances(r: Option<&BTreeMap<String, u32>>) -> Result<BTreeMap<String, u32>, ConfigError> {
    let Some(map) = r else {
        return Ok(BTreeMap::new());
    };
    for (name, &calls) in map {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok_name {
            return Err(invalid(
                "[plugins]",
                "warm_instances",
                format!("{name:?} is not an adapter name ([a-z0-9_-], at most 64 characters)"),
            ));
        }
        if calls == 0 {
            return Err(invalid(
                "[plugins]",
                "warm_instances",
                format!("{name} = 0: give the number of calls one instance serves (1 or more)"),
            ));
        }
    }
    Ok(map.clone())
}

fn validate_upstream(cx: &Cx<'_>, r: &RawUpstream) -> Result<UpstreamConfig, ConfigError> {
    const S: &str = "[upstream]";
    Ok(UpstreamConfig {
        connect_timeout: duration(
            S,
            "connect_timeout",
            &r.connect_timeout,
            Duration::from_secs(10),
            false,
        )?,
        first_byte_timeout: duration(
            S,
            "first_byte_timeout",
            &r.first_byte_timeout,
            Duration::from_secs(30),
            false,
        )?,
        idle_timeout: duration(
            S,
            "idle_timeout",
            &r.idle_timeout,
            Duration::from_secs(60),
            false,
        )?,
        retries: r.retries.unwrap_or(1),
        ca_file: r
            .ca_file
            .as_deref()
            .map(|p| cx.existing_file(S, "ca_file", p))
            .transpose()?,
        max_redirects: r.max_redirects.unwrap_or(5),
    })
}

/// Check an upstream base URL: http(s), a host, no credentials, query or
/// fragment; trailing `/` removed.
fn upstream_url(raw: &str) -> Result<http::Uri, String> {
    let after_scheme = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        // Never echo the URL: it holds a password.
        return Err("must not contain credentials (user:password@); use username with password_env or password_file".into());
    }
    if raw.contains('#') {
        return Err(format!(
            "{raw:?} has a fragment (#...); upstream URLs take none"
        ));
    }
    let lower = raw.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(format!("{raw:?} must start with http:// or https://"));
    }
    let uri: http::Uri = raw.parse().map_err(|e| {
        format!("invalid URL {raw:?} ({e}); expected e.g. \"https://repo.example.org/path\"")
    })?;
    let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => "http",
        Some("https") => "https",
        _ => return Err(format!("{raw:?} must start with http:// or https://")),
    };
    let Some(authority) = uri.authority() else {
        return Err(format!("{raw:?} has no host"));
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    let after_host = authority
        .as_str()
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, p)| p);
    if after_host.contains(':') && uri.port_u16().is_none() {
        return Err(format!("{raw:?} has an invalid port"));
    }
    if uri.query().is_some() {
        return Err(format!(
            "{raw:?} has a query (?...); upstream URLs take none"
        ));
    }
    let path = uri.path().trim_end_matches('/');
    let clean = format!("{scheme}://{authority}{path}");
    clean
        .parse()
        .map_err(|e| format!("invalid URL {raw:?} ({e})"))
}

fn compile_patterns(
    scope: &str,
    key: &str,
    patterns: &[String],
) -> Result<Vec<Regex>, ConfigError> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Regex::new(p).map_err(|e| {
                invalid(
                    scope,
                    &format!("{key}[{i}]"),
                    format!("invalid regex {p:?}: {e}"),
                )
            })
        })
        .collect()
}

fn validate_remote(cx: &Cx<'_>, i: usize, r: &RawRemote) -> Result<RemoteConfig, ConfigError> {
    let numbered = format!("[[remote]] #{}", i + 1);
    let Some(name) = &r.name else {
        return Err(invalid(
            &numbered,
            "name",
            "missing; every remote needs a name",
        ));
    };
    if !is_valid_remote_name(name) {
        return Err(invalid(
            &numbered,
            "name",
            format!(
                "invalid remote name {name:?}: use 1 to 64 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
            ),
        ));
    }
    let scope = format!("remote {name:?}");
    let scope = scope.as_str();
    let Some(package) = &r.package else {
        return Err(invalid(
            scope,
            "package",
            "missing; every remote needs a package type (generic, docker, rpm, alpine, git, local, ...)",
        ));
    };
    if !is_valid_package(package) {
        return Err(invalid(
            scope,
            "package",
            format!("invalid package type {package:?}: use a-z, 0-9, '_' and '-'"),
        ));
    }
    let local = package == "local";
    let mode = match (package == "virtual", local, r.hosted) {
        (true, _, Some(_)) => {
            return Err(invalid(
                scope,
                "hosted",
                "a virtual remote has no store of its own; remove hosted",
            ));
        }
        (true, _, None) => RemoteMode::Virtual,
        (false, true, Some(false)) => {
            return Err(invalid(
                scope,
                "hosted",
                "package \"local\" is always hosted; remove hosted = false",
            ));
        }
        (false, true, _) | (false, false, Some(true)) => RemoteMode::Hosted,
        (false, false, _) => RemoteMode::PullThrough,
    };
    let upstreams = match (mode, &r.upstream) {
        (RemoteMode::Hosted, Some(_)) if local => {
            return Err(invalid(
                scope,
                "upstream",
                "a \"local\" remote is hosted and has no upstream; remove upstream",
            ));
        }
        (RemoteMode::Hosted, Some(_)) => {
            return Err(invalid(
                scope,
                "upstream",
                "a hosted remote (hosted = true) has no upstream; remove one of them",
            ));
        }
        (RemoteMode::Hosted, None) | (RemoteMode::Virtual, None) => Vec::new(),
        (RemoteMode::Virtual, Some(_)) => {
            return Err(invalid(
                scope,
                "upstream",
                "a virtual remote reads from its members and has no upstream; remove upstream",
            ));
        }
        (RemoteMode::PullThrough, None) => {
            return Err(invalid(
                scope,
                "upstream",
                format!(
                    "missing; a {package:?} remote needs an upstream URL (or hosted = true for a hosted repository)"
                ),
            ));
        }
        (RemoteMode::PullThrough, Some(RawUpstreams::One(u))) => {
            vec![upstream_url(u).map_err(|m| invalid(scope, "upstream", m))?]
        }
        (RemoteMode::PullThrough, Some(RawUpstreams::Many(list))) => {
            if list.is_empty() {
                return Err(invalid(
                    scope,
                    "upstream",
                    "the list is empty; give at least one URL",
                ));
            }
            list.iter()
                .enumerate()
                .map(|(j, u)| {
                    upstream_url(u).map_err(|m| invalid(scope, &format!("upstream[{j}]"), m))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let allow = compile_patterns(scope, "allow", r.allow.as_deref().unwrap_or_default())?;
    let immutable_patterns = r.immutable_patterns.clone().unwrap_or_default();
    compile_patterns(scope, "immutable_patterns", &immutable_patterns)?;
    let mutable_patterns = r.mutable_patterns.clone().unwrap_or_default();
    compile_patterns(scope, "mutable_patterns", &mutable_patterns)?;
    let follow_redirects = match &r.follow_redirects {
        None => RedirectPolicy::SameHost,
        Some(RawRedirects::Bool(true)) => RedirectPolicy::Any,
        Some(RawRedirects::Bool(false)) => RedirectPolicy::Never,
        Some(RawRedirects::Text(t)) => match t.as_str() {
            "same-host" => RedirectPolicy::SameHost,
            "any" => RedirectPolicy::Any,
            "never" => RedirectPolicy::Never,
            _ => {
                return Err(invalid(
                    scope,
                    "follow_redirects",
                    format!(
                        "invalid value {t:?}; expected true, false, \"same-host\", \"any\" or \"never\""
                    ),
                ));
            }
        },
    };
    let credentials = validate_credentials(cx, scope, r)?;
    if credentials.is_some() && mode != RemoteMode::PullThrough {
        let key = if r.username.is_some() {
            "username"
        } else {
            first_token_key(r).unwrap_or("token")
        };
        return Err(invalid(
            scope,
            key,
            format!(
                "credentials are for an upstream and this remote is {}",
                mode.as_str()
            ),
        ));
    }
    let (members, write_to) = virtual_keys(scope, mode, r)?;
    let mut options = Vec::new();
    for (k, v) in r
        .options
        .as_ref()
        .map(|o| o.0.as_slice())
        .unwrap_or_default()
    {
        let s = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err(invalid(
                    scope,
                    &format!("options.{k}"),
                    "must be a string, number or boolean",
                ));
            }
        };
        options.push((k.clone(), s));
    }
    let max_size = match &r.max_size {
        None => None,
        Some(v) => Some(size(scope, "max_size", &Some(v.clone()), 0)?),
    };
    Ok(RemoteConfig {
        name: name.clone(),
        package: package.clone(),
        mode,
        upstreams,
        allow,
        immutable_patterns,
        mutable_patterns,
        mutable_ttl: duration(
            scope,
            "mutable_ttl",
            &r.mutable_ttl,
            Duration::from_secs(600),
            true,
        )?,
        negative_ttl: duration(
            scope,
            "negative_ttl",
            &r.negative_ttl,
            Duration::from_secs(60),
            true,
        )?,
        check_mutable_updates: r.check_mutable_updates.unwrap_or(true),
        follow_redirects,
        credentials,
        options,
        max_size,
        anonymous_read: r.anonymous_read.unwrap_or(true),
        members,
        write_to,
    })
}

/// `members` and `write_to`: required (members) on virtual remotes, refused
/// on every other remote. Cross-remote checks are in [`validate_virtuals`].
fn virtual_keys(
    scope: &str,
    mode: RemoteMode,
    r: &RawRemote,
) -> Result<(Vec<String>, Option<String>), ConfigError> {
    if mode != RemoteMode::Virtual {
        for (key, set) in [
            ("members", r.members.is_some()),
            ("write_to", r.write_to.is_some()),
        ] {
            if set {
                return Err(invalid(
                    scope,
                    key,
                    "only virtual remotes (package = \"virtual\") have this key",
                ));
            }
        }
        return Ok((Vec::new(), None));
    }
    let members = r.members.clone().unwrap_or_default();
    if members.is_empty() {
        return Err(invalid(
            scope,
            "members",
            "missing or empty; a virtual remote needs members = [\"remote\", ...]",
        ));
    }
    for (j, m) in members.iter().enumerate() {
        if members[..j].contains(m) {
            return Err(invalid(
                scope,
                &format!("members[{j}]"),
                format!("{m:?} is listed twice"),
            ));
        }
    }
    Ok((members, r.write_to.clone()))
}

/// Virtual remotes: members exist, are not docker registries, form no
/// cycle, and `write_to` names a hosted member.
fn validate_virtuals(remotes: &[RemoteConfig]) -> Result<(), ConfigError> {
    let find = |name: &str| remotes.iter().find(|r| r.name == name);
    for v in remotes.iter().filter(|r| r.mode == RemoteMode::Virtual) {
        let scope = format!("remote {:?}", v.name);
        for (j, m) in v.members.iter().enumerate() {
            let key = format!("members[{j}]");
            match find(m) {
                None => {
                    return Err(invalid(&scope, &key, format!("unknown remote {m:?}")));
                }
                Some(r) if r.package == "docker" => {
                    return Err(invalid(
                        &scope,
                        &key,
                        format!(
                            "{m:?} is a docker registry, served at /v2/, and cannot be a member of a virtual remote"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(w) = &v.write_to {
            if !v.members.contains(w) {
                return Err(invalid(
                    &scope,
                    "write_to",
                    format!("{w:?} is not one of the members"),
                ));
            }
            if let Some(r) = find(w)
                && r.mode != RemoteMode::Hosted
            {
                return Err(invalid(
                    &scope,
                    "write_to",
                    format!(
                        "{w:?} is a {} remote; writes need a hosted member",
                        r.mode.as_str()
                    ),
                ));
            }
        }
        // Depth-first search for a path back to `v`.
        let mut stack: Vec<Vec<&str>> = vec![vec![v.name.as_str()]];
        while let Some(path) = stack.pop() {
            let last = path[path.len() - 1];
            for m in find(last).map(|r| r.members.as_slice()).unwrap_or_default() {
                if m == &v.name {
                    return Err(invalid(
                        &scope,
                        "members",
                        format!("cycle: {} -> {m}", path.join(" -> ")),
                    ));
                }
                if !path.contains(&m.as_str()) {
                    let mut next = path.clone();
                    next.push(m);
                    stack.push(next);
                }
            }
        }
    }
    Ok(())
}

/// `[[token]]` tables: a unique name, exactly one source, scopes on known
/// remotes. Tokens from `token_env` / `token_file` are read and hashed now;
/// only their sha256 is kept.
fn validate_tokens(
    cx: &Cx<'_>,
    raw: &[RawToken],
    remotes: &[RemoteConfig],
) -> Result<Vec<TokenConfig>, ConfigError> {
    let mut out: Vec<TokenConfig> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let numbered = format!("[[token]] #{}", i + 1);
        let name = match &t.name {
            Some(n) if !n.trim().is_empty() && !n.chars().any(char::is_control) => n.clone(),
            Some(_) => {
                return Err(invalid(
                    &numbered,
                    "name",
                    "must be non-empty, without control characters",
                ));
            }
            None => {
                return Err(invalid(
                    &numbered,
                    "name",
                    "missing; every token needs a name (it is logged instead of the token)",
                ));
            }
        };
        let scope = format!("token {name:?}");
        let scope = scope.as_str();
        if out.iter().any(|o| o.name == name) {
            return Err(invalid(scope, "name", "duplicate token name"));
        }
        let sources: Vec<&'static str> = [
            ("token_sha256", t.token_sha256.is_some()),
            ("token_env", t.token_env.is_some()),
            ("token_file", t.token_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        let source = match sources.as_slice() {
            [one] => *one,
            [] => {
                return Err(invalid(
                    scope,
                    "token_sha256",
                    "missing; give exactly one of token_sha256, token_env, token_file",
                ));
            }
            [first, second, ..] => {
                return Err(invalid(
                    scope,
                    second,
                    format!(
                        "{first} is set too; give exactly one of token_sha256, token_env, token_file"
                    ),
                ));
            }
        };
        let sha256: [u8; 32] = match (&t.token_sha256, &t.token_env, &t.token_file) {
            (Some(hex), ..) => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(hex.trim(), &mut d).map_err(|_| {
                    invalid(
                        scope,
                        "token_sha256",
                        "must be 64 hex digits: the sha256 of the token (e.g. `printf %s TOKEN | sha256sum`)",
                    )
                })?;
                d
            }
            (None, Some(var), _) => hash_token(cx, scope, source, &SecretSource::Env(var))?,
            (None, None, file) => {
                let file = file.as_deref().unwrap_or(Path::new(""));
                hash_token(cx, scope, source, &SecretSource::File(file))?
            }
        };
        if let Some(o) = out.iter().find(|o| o.sha256 == sha256) {
            return Err(invalid(
                scope,
                source,
                format!("is the same token as token {:?}", o.name),
            ));
        }
        let mut scopes = Vec::new();
        for (remote, names) in t.scopes.iter().flatten() {
            let key = format!("scopes.{remote}");
            if remote != "*" && !remotes.iter().any(|r| &r.name == remote) {
                return Err(invalid(
                    scope,
                    &key,
                    format!("unknown remote {remote:?}; use a remote's name or \"*\" for all"),
                ));
            }
            let mut s = Scopes::default();
            for n in names {
                match n.as_str() {
                    "read" => s.read = true,
                    "write" => s.write = true,
                    "delete" => s.delete = true,
                    other => {
                        return Err(invalid(
                            scope,
                            &key,
                            format!(
                                "unknown scope {other:?}; expected \"read\", \"write\" or \"delete\""
                            ),
                        ));
                    }
                }
            }
            scopes.push((remote.clone(), s));
        }
        out.push(TokenConfig {
            name,
            sha256,
            source,
            admin: t.admin.unwrap_or(false),
            scopes,
        });
    }
    Ok(out)
}

/// Shortest token accepted from `token_env` / `token_file`.
const MIN_TOKEN_LEN: usize = 16;

/// Read a token from its source and return its sha256.
fn hash_token(
    cx: &Cx<'_>,
    scope: &str,
    key: &str,
    source: &SecretSource<'_>,
) -> Result<[u8; 32], ConfigError> {
    use sha2::Digest as _;
    let token = read_secret(cx, scope, key, source)?;
    if token.0.len() < MIN_TOKEN_LEN {
        return Err(invalid(
            scope,
            key,
            format!(
                "the token is shorter than {MIN_TOKEN_LEN} characters; use a long random token"
            ),
        ));
    }
    if token.0.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(
            scope,
            key,
            "the token contains spaces or control characters",
        ));
    }
    Ok(sha2::Sha256::digest(token.0.as_bytes()).into())
}

fn first_token_key(r: &RawRemote) -> Option<&'static str> {
    [
        ("token", r.token.is_some()),
        ("token_env", r.token_env.is_some()),
        ("token_file", r.token_file.is_some()),
    ]
    .into_iter()
    .find_map(|(k, set)| set.then_some(k))
}

/// Where a secret comes from.
enum SecretSource<'a> {
    Literal(&'a Secret),
    Env(&'a str),
    File(&'a Path),
}

/// Username + one password source, or one token source; secrets read now.
fn validate_credentials(
    cx: &Cx<'_>,
    scope: &str,
    r: &RawRemote,
) -> Result<Option<Credentials>, ConfigError> {
    let passwords: Vec<(&str, SecretSource<'_>)> = [
        r.password
            .as_ref()
            .map(|s| ("password", SecretSource::Literal(s))),
        r.password_env
            .as_deref()
            .map(|s| ("password_env", SecretSource::Env(s))),
        r.password_file
            .as_deref()
            .map(|s| ("password_file", SecretSource::File(s))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let tokens: Vec<(&str, SecretSource<'_>)> = [
        r.token
            .as_ref()
            .map(|s| ("token", SecretSource::Literal(s))),
        r.token_env
            .as_deref()
            .map(|s| ("token_env", SecretSource::Env(s))),
        r.token_file
            .as_deref()
            .map(|s| ("token_file", SecretSource::File(s))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some((key, _)) = tokens.first()
        && (r.username.is_some() || !passwords.is_empty())
    {
        return Err(invalid(
            scope,
            key,
            "use either username with a password or a token, not both",
        ));
    }
    if let [(first, _), (second, _), ..] = tokens.as_slice() {
        return Err(invalid(
            scope,
            second,
            format!("{first} is set too; give exactly one of token, token_env, token_file"),
        ));
    }
    if let [(first, _), (second, _), ..] = passwords.as_slice() {
        return Err(invalid(
            scope,
            second,
            format!(
                "{first} is set too; give exactly one of password, password_env, password_file"
            ),
        ));
    }
    match (&r.username, passwords.first(), tokens.first()) {
        (None, None, None) => Ok(None),
        (Some(_), None, _) => Err(invalid(
            scope,
            "username",
            "needs a password: set one of password, password_env, password_file",
        )),
        (None, Some((key, _)), _) => Err(invalid(scope, key, "needs a username")),
        (Some(user), Some((key, source)), _) => {
            if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                return Err(invalid(
                    scope,
                    "username",
                    "must be non-empty, without ':' or control characters (HTTP Basic)",
                ));
            }
            Ok(Some(Credentials::Basic {
                username: user.clone(),
                password: read_secret(cx, scope, key, source)?,
            }))
        }
        (None, None, Some((key, source))) => {
            let token = read_secret(cx, scope, key, source)?;
            if http::HeaderValue::from_str(&format!("Bearer {}", token.0)).is_err() {
                return Err(invalid(
                    scope,
                    key,
                    "the token has characters not allowed in an HTTP header",
                ));
            }
            Ok(Some(Credentials::Bearer { token }))
        }
    }
}

/// Read a secret. Error messages never contain the secret.
fn read_secret(
    cx: &Cx<'_>,
    scope: &str,
    key: &str,
    source: &SecretSource<'_>,
) -> Result<Secret, ConfigError> {
    let value = match source {
        SecretSource::Literal(s) => s.0.clone(),
        SecretSource::Env(var) => {
            if var.is_empty() {
                return Err(invalid(
                    scope,
                    key,
                    "the environment variable name is empty",
                ));
            }
            match (cx.env)(var) {
                None => {
                    return Err(invalid(
                        scope,
                        key,
                        format!("environment variable {var:?} is not set"),
                    ));
                }
                Some(v) => v.into_string().map_err(|_| {
                    invalid(
                        scope,
                        key,
                        format!("environment variable {var:?} is not valid UTF-8"),
                    )
                })?,
            }
        }
        SecretSource::File(p) => {
            let path = cx.path(scope, key, p)?;
            let shown = path.display().to_string();
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes))
                .map_err(|e| invalid(scope, key, format!("cannot read {shown:?}: {e}")))?;
            if bytes.len() as u64 > MAX_SECRET_FILE {
                return Err(invalid(
                    scope,
                    key,
                    format!("{shown:?} is larger than 64 KiB"),
                ));
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(scope, key, format!("{shown:?} is not valid UTF-8")))?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if value.is_empty() {
        return Err(invalid(scope, key, "the secret is empty"));
    }
    Ok(Secret(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn ok(text: &str) -> Config {
        match parse_with_env(text, Path::new(""), &no_env) {
            Ok(c) => c,
            Err(e) => panic!("config rejected: {e}\n---\n{text}"),
        }
    }

    /// The error message for `text`; panics when it is accepted.
    fn err(text: &str) -> String {
        err_env(text, &no_env)
    }

    fn err_env(text: &str, env: &dyn Fn(&str) -> Option<OsString>) -> String {
        match parse_with_env(text, Path::new(""), env) {
            Ok(_) => panic!("config accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_contains(msg: &str, parts: &[&str]) {
        for p in parts {
            assert!(msg.contains(p), "{p:?} not in error message:\n{msg}");
        }
    }

    fn remote(body: &str) -> String {
        format!(
            "[[remote]]\nname = \"alma\"\npackage = \"rpm\"\nupstream = \"https://repo.example.org/alma\"\n{body}\n"
        )
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = ok("");
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(c.server.tls.is_none());
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.server.max_header_bytes, 16 * 1024);
        assert_eq!(c.server.max_headers, 100);
        assert_eq!(c.server.max_uri_bytes, 8 * 1024);
        assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.server.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.server.max_inspect_bytes, 1024 * 1024);
        assert_eq!(c.storage.dir, PathBuf::from("./artgate-data"));
        assert_eq!(c.storage.max_size, 50 * GIB);
        assert_eq!(c.plugins.dir, PathBuf::from("./plugins"));
        assert_eq!(c.plugins.cache_dir, None);
        assert_eq!(
            c.plugin_cache_dir(),
            PathBuf::from("./artgate-data/plugin-cache")
        );
        assert_eq!(c.plugins.memory_limit, 64 * MIB);
        assert_eq!(c.plugins.call_timeout, Duration::from_millis(200));
        assert_eq!(c.plugins.reload_debounce, Duration::from_millis(200));
        assert_eq!(c.plugins.max_instances, 256);
        assert_eq!(c.plugins.http_timeout, Duration::from_secs(10));
        assert_eq!(c.plugins.http_max_body, 1024 * 1024);
        assert_eq!(c.upstream.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.upstream.first_byte_timeout, Duration::from_secs(30));
        assert_eq!(c.upstream.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.upstream.retries, 1);
        assert!(c.upstream.ca_file.is_none());
        assert_eq!(c.upstream.max_redirects, 5);
        assert!(c.remotes.is_empty());
    }

    #[test]
    fn remote_defaults() {
        let c = ok(&remote(""));
        let r = &c.remotes[0];
        assert_eq!(r.mode, RemoteMode::PullThrough);
        assert_eq!(r.mutable_ttl, Duration::from_secs(600));
        assert_eq!(r.negative_ttl, Duration::from_secs(60));
        assert!(r.check_mutable_updates);
        assert_eq!(r.follow_redirects, RedirectPolicy::SameHost);
        assert!(r.credentials.is_none());
        assert!(r.allow.is_empty() && r.allows("anything"));
        assert!(r.options.is_empty());
        assert_eq!(r.max_size, None);
        assert_eq!(c.remote("alma").map(|r| r.package.as_str()), Some("rpm"));
        assert!(c.remote("nope").is_none());
    }

    #[test]
    fn every_key_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["cert.pem", "key.pem", "ca.pem"] {
            std::fs::write(dir.path().join(f), "pem").unwrap();
        }
        std::fs::write(dir.path().join("token"), "tok-from-file\n").unwrap();
        let text = r#"
[server]
listen = "[::]:9090"
tls_cert = "cert.pem"
tls_key = "key.pem"
max_connections = 10
max_header_bytes = "32KiB"
max_headers = 50
max_uri_bytes = 4096
header_read_timeout = "5s"
idle_timeout = 120
shutdown_grace = "0s"
max_request_body_inspect = "2MiB"

[storage]
dir = "/srv/artgate"
max_size = "512MB"

[plugins]
dir = "plugins.d"
cache_dir = "/var/cache/artgate"
memory_limit = "128MiB"
call_timeout = "1s"
reload_debounce = "500ms"
max_instances = 32
http_timeout = "1m"
http_max_body = 65536

[upstream]
connect_timeout = "3s"
first_byte_timeout = "1h30m"
idle_timeout = "90s"
retries = 0
ca_file = "ca.pem"
max_redirects = 2

[[remote]]
name = "alma"
package = "rpm"
upstream = ["https://a.example.org/alma/", "http://b.example.org:8081/x"]
allow = ["^9/", "^8/"]
immutable_patterns = ['\.rpm$']
mutable_patterns = ['repomd\.xml$']
mutable_ttl = "30m"
negative_ttl = 0
check_mutable_updates = false
follow_redirects = "any"
username = "me"
password = "hunter2"
max_size = "1GiB"

[remote.options]
arch = "x86_64"
depth = 3
ratio = 0.5
strict = true

[[remote]]
name = "ghcr"
package = "docker"
upstream = "https://ghcr.io"
token_file = "token"
follow_redirects = false

[[remote]]
name = "cas"
package = "cas"
hosted = true
"#;
        let c = parse_with_env(text, dir.path(), &no_env).unwrap();
        let s = &c.server;
        assert_eq!(s.listen, "[::]:9090".parse().unwrap());
        let tls = s.tls.as_ref().unwrap();
        assert_eq!(tls.cert, dir.path().join("cert.pem"));
        assert_eq!(tls.key, dir.path().join("key.pem"));
        assert_eq!(s.max_connections, 10);
        assert_eq!(s.max_header_bytes, 32 * 1024);
        assert_eq!(s.max_headers, 50);
        assert_eq!(s.max_uri_bytes, 4096);
        assert_eq!(s.header_read_timeout, Duration::from_secs(5));
        assert_eq!(s.idle_timeout, Duration::from_secs(120));
        assert_eq!(s.shutdown_grace, Duration::ZERO);
        assert_eq!(s.max_inspect_bytes, 2 * 1024 * 1024);
        assert_eq!(c.storage.dir, PathBuf::from("/srv/artgate"));
        assert_eq!(c.storage.max_size, 512_000_000);
        assert_eq!(c.plugins.dir, dir.path().join("plugins.d"));
        assert_eq!(
            c.plugins.cache_dir,
            Some(PathBuf::from("/var/cache/artgate"))
        );
        assert_eq!(c.plugin_cache_dir(), PathBuf::from("/var/cache/artgate"));
        assert_eq!(c.plugins.memory_limit, 128 * MIB);
        assert_eq!(c.plugins.call_timeout, Duration::from_secs(1));
        assert_eq!(c.plugins.reload_debounce, Duration::from_millis(500));
        assert_eq!(c.plugins.max_instances, 32);
        assert_eq!(c.plugins.http_timeout, Duration::from_secs(60));
        assert_eq!(c.plugins.http_max_body, 65536);
        assert_eq!(c.upstream.connect_timeout, Duration::from_secs(3));
        assert_eq!(c.upstream.first_byte_timeout, Duration::from_secs(5400));
        assert_eq!(c.upstream.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.upstream.retries, 0);
        assert_eq!(c.upstream.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(c.upstream.max_redirects, 2);

        let alma = &c.remotes[0];
        assert_eq!(alma.name, "alma");
        assert_eq!(alma.package, "rpm");
        assert_eq!(alma.mode, RemoteMode::PullThrough);
        let ups: Vec<String> = alma.upstreams.iter().map(upstream_display).collect();
        assert_eq!(
            ups,
            ["https://a.example.org/alma", "http://b.example.org:8081/x"]
        );
        assert!(alma.allows("9/BaseOS/repodata/repomd.xml") && !alma.allows("7/os"));
        assert_eq!(alma.immutable_patterns, [r"\.rpm$"]);
        assert_eq!(alma.mutable_patterns, [r"repomd\.xml$"]);
        assert_eq!(alma.mutable_ttl, Duration::from_secs(1800));
        assert_eq!(alma.negative_ttl, Duration::ZERO);
        assert!(!alma.check_mutable_updates);
        assert_eq!(alma.follow_redirects, RedirectPolicy::Any);
        match &alma.credentials {
            Some(Credentials::Basic { username, password }) => {
                assert_eq!(username, "me");
                assert_eq!(password.0, "hunter2");
            }
            other => panic!("{other:?}"),
        }
        let opts: Vec<(&str, &str)> = alma
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            opts,
            [
                ("arch", "x86_64"),
                ("depth", "3"),
                ("ratio", "0.5"),
                ("strict", "true")
            ]
        );
        assert_eq!(alma.max_size, Some(GIB));

        let ghcr = &c.remotes[1];
        assert_eq!(ghcr.follow_redirects, RedirectPolicy::Never);
        match &ghcr.credentials {
            Some(Credentials::Bearer { token }) => assert_eq!(token.0, "tok-from-file"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.remotes[2].mode, RemoteMode::Hosted);
        assert!(c.remotes[2].upstreams.is_empty());
    }

    #[test]
    fn unknown_keys_are_named_with_table_and_line() {
        let m = err("sever = 1\n");
        assert_contains(
            &m,
            &[
                "unknown key \"sever\"",
                "the top level",
                "line 1",
                "did you mean \"server\"",
            ],
        );
        let m = err("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
        assert_contains(&m, &["\"lisen\"", "[server]", "line 3", "\"listen\""]);
        let m = err("[storage]\nsize = 1\n");
        assert_contains(&m, &["\"size\"", "[storage]", "line 2"]);
        let m = err("[plugins]\nwatch = true\n");
        assert_contains(
            &m,
            &["\"watch\"", "[plugins]", "known keys: dir, cache_dir"],
        );
        let m = err("[upstream]\nretry = 3\n");
        assert_contains(&m, &["\"retry\"", "[upstream]", "did you mean \"retries\""]);
        let text = format!(
            "{}[[remote]]\nname = \"alma2\"\npackage = \"rpm\"\nupstrem = \"https://x\"\n",
            remote("")
        );
        let m = err(&text);
        assert_contains(
            &m,
            &[
                "unknown key \"upstrem\" in [[remote]] #2 (\"alma2\")",
                "line 9",
                "did you mean \"upstream\"",
            ],
        );
        // Dotted keys and inline tables are checked too.
        let m = err("server.bogus = 1\n");
        assert_contains(&m, &["\"bogus\"", "[server]"]);
        // The error variant carries the key.
        let e = parse_with_env("[storage]\nsize = 1\n", Path::new(""), &no_env).unwrap_err();
        assert_eq!(e.key(), Some("size"));
        // Options are free-form.
        ok(&remote("[remote.options]\nanything_goes = 1\n"));
    }

    #[test]
    fn remote_as_single_table_is_explained() {
        let m = err("[remote]\nname = \"x\"\n");
        assert_contains(&m, &["remote", "[[remote]]"]);
    }

    #[test]
    fn type_errors_name_the_line() {
        let m = err("[server]\n\nlisten = 5\n");
        assert_contains(&m, &["line 3", "listen"]);
        let m = err("[storage]\nmax_size = -1\n");
        assert_contains(&m, &["line 2", "max_size", "size"]);
        let m = err(&remote("check_mutable_updates = \"yes\""));
        assert_contains(&m, &["check_mutable_updates", "line"]);
        let m = err("[server\n");
        assert_contains(&m, &["line 1"]);
    }

    #[test]
    fn bad_durations_are_rejected_naming_the_key() {
        let m = err(&remote("mutable_ttl = \"ten minutes\""));
        assert_contains(
            &m,
            &["remote \"alma\": mutable_ttl: invalid duration \"ten minutes\""],
        );
        let m = err("[server]\nheader_read_timeout = \"5 parsecs\"\n");
        assert_contains(
            &m,
            &["[server]: header_read_timeout: invalid duration \"5 parsecs\""],
        );
        let m = err("[plugins]\ncall_timeout = \"0s\"\n");
        assert_contains(&m, &["[plugins]: call_timeout: must be greater than zero"]);
        let m = err("[upstream]\nconnect_timeout = 0\n");
        assert_contains(
            &m,
            &["[upstream]: connect_timeout: must be greater than zero"],
        );
        // Durations that may be zero.
        let c = ok(&remote("mutable_ttl = 0\nnegative_ttl = \"0s\""));
        assert_eq!(c.remotes[0].mutable_ttl, Duration::ZERO);
        assert_eq!(
            ok("[server]\nidle_timeout = \"1h 30m\"\n")
                .server
                .idle_timeout,
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn bad_sizes_are_rejected_naming_the_key() {
        let m = err("[storage]\nmax_size = \"lots\"\n");
        assert_contains(&m, &["[storage]: max_size: invalid size \"lots\""]);
        let m = err("[storage]\nmax_size = \"GiB\"\n");
        assert_contains(&m, &["[storage]: max_size: invalid size"]);
        let m = err("[storage]\nmax_size = 0\n");
        assert_contains(&m, &["[storage]: max_size: must be greater than zero"]);
        let m = err("[plugins]\nmemory_limit = \"5GiB\"\n");
        assert_contains(&m, &["[plugins]: memory_limit:", "4GiB"]);
        let m = err("[server]\nmax_request_body_inspect = \"5GiB\"\n");
        assert_contains(&m, &["[server]: max_request_body_inspect: ", "too large"]);
        let m = err(&remote("max_size = \"12 parsecs\""));
        assert_contains(&m, &["remote \"alma\": max_size: invalid size"]);
        assert_eq!(
            ok("[storage]\nmax_size = \"1.5 KiB\"\n").storage.max_size,
            1536
        );
        assert_eq!(ok("[storage]\nmax_size = \"2k\"\n").storage.max_size, 2000);
    }

    #[test]
    fn limits_must_be_positive() {
        for key in [
            "max_connections",
            "max_headers",
            "max_header_bytes",
            "max_uri_bytes",
        ] {
            let m = err(&format!("[server]\n{key} = 0\n"));
            assert_contains(
                &m,
                &[&format!("[server]: {key}: must be greater than zero")],
            );
        }
        let m = err("[plugins]\nmax_instances = 0\n");
        assert_contains(&m, &["[plugins]: max_instances: must be greater than zero"]);
        let m = err("[plugins]\nhttp_max_body = 0\n");
        assert_contains(&m, &["[plugins]: http_max_body:"]);
    }

    #[test]
    fn warm_instances_name_adapters_and_count_calls() {
        let c = ok("[plugins]\nwarm_instances = { pypi = 64, my-format = 2 }\n");
        assert_eq!(c.plugins.warm_instances.get("pypi"), Some(&64));
        assert_eq!(c.plugins.warm_instances.get("my-format"), Some(&2));
        assert!(ok("").plugins.warm_instances.is_empty());
        let m = err("[plugins]\nwarm_instances = { pypi = 0 }\n");
        assert_contains(&m, &["[plugins]: warm_instances:", "pypi = 0"]);
        let m = err("[plugins]\nwarm_instances = { \"Py Pi\" = 3 }\n");
        assert_contains(&m, &["[plugins]: warm_instances:", "not an adapter name"]);
    }

    #[test]
    fn bad_listen_address() {
        let m = err("[server]\nlisten = \"localhost:8080\"\n");
        assert_contains(
            &m,
            &["[server]: listen: invalid address \"localhost:8080\""],
        );
    }

    #[test]
    fn bad_regexes_name_the_pattern() {
        let m = err(&remote("allow = [\"^ok/\", \"(unclosed\"]"));
        assert_contains(
            &m,
            &["remote \"alma\": allow[1]: invalid regex \"(unclosed\""],
        );
        let m = err(&remote("mutable_patterns = [\"[z-a]\"]"));
        assert_contains(
            &m,
            &["remote \"alma\": mutable_patterns[0]: invalid regex \"[z-a]\""],
        );
        let m = err(&remote("immutable_patterns = [\"*x\"]"));
        assert_contains(
            &m,
            &["remote \"alma\": immutable_patterns[0]: invalid regex"],
        );
    }

    fn with_upstream(u: &str) -> String {
        format!("[[remote]]\nname = \"r\"\npackage = \"generic\"\nupstream = {u}\n")
    }

    #[test]
    fn bad_upstream_urls_are_rejected() {
        for (u, expect) in [
            ("\"ftp://x.example.org/\"", "http:// or https://"),
            ("\"repo.example.org/x\"", "http:// or https://"),
            ("\"https://x.example.org/a?b=1\"", "query"),
            ("\"https://x.example.org/a#frag\"", "fragment"),
            ("\"https://x.example.org:99999/\"", "port"),
            ("\"https:///path\"", "remote \"r\": upstream: invalid URL"),
            ("\"https://x y/\"", "invalid URL"),
            ("[]", "empty"),
            (
                "[\"https://ok.example.org\", \"gopher://x\"]",
                "upstream[1]",
            ),
        ] {
            let m = err(&with_upstream(u));
            assert_contains(&m, &["remote \"r\": upstream", expect]);
        }
        for u in [
            "https://user:s3cr3t@x.example.org/",
            "ftp://u:s3cr3t@x y/#f",
            "https://u:s3cr3t@x?a",
        ] {
            let m = err(&with_upstream(&format!("{u:?}")));
            assert_contains(
                &m,
                &["remote \"r\": upstream: must not contain credentials"],
            );
            assert!(!m.contains("s3cr3t"), "{m}");
        }
        // An @ in the path is fine (npm scopes).
        ok(&with_upstream("\"https://registry.example.org/@scope\""));
    }

    #[test]
    fn upstream_urls_are_cleaned() {
        let c = ok(&with_upstream("\"HTTPS://Repo.Example.org/debian///\""));
        let u = &c.remotes[0].upstreams[0];
        assert_eq!(u.scheme_str(), Some("https"));
        assert_eq!(upstream_display(u), "https://Repo.Example.org/debian");
        let c = ok(&with_upstream("\"http://[::1]:8080/\""));
        assert_eq!(
            upstream_display(&c.remotes[0].upstreams[0]),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn remote_names() {
        for good in ["a", "0", "files", "a.b_c-d", &"x".repeat(64)] {
            assert!(is_valid_remote_name(good), "{good}");
            ok(&format!(
                "[[remote]]\nname = \"{good}\"\npackage = \"local\"\n"
            ));
        }
        for bad in [
            "",
            "Alma",
            "-x",
            ".x",
            "_x",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_remote_name(bad), "{bad}");
            let m = err(&format!(
                "[[remote]]\nname = \"{bad}\"\npackage = \"local\"\n"
            ));
            assert_contains(&m, &["[[remote]] #1: name: invalid remote name"]);
        }
        let m = err("[[remote]]\npackage = \"local\"\n");
        assert_contains(&m, &["[[remote]] #1: name: missing"]);
    }

    #[test]
    fn packages() {
        let m = err("[[remote]]\nname = \"x\"\n");
        assert_contains(&m, &["remote \"x\": package: missing"]);
        for bad in ["", "Docker", "a.b", "a b"] {
            let m = err(&format!(
                "[[remote]]\nname = \"x\"\npackage = \"{bad}\"\nhosted = true\n"
            ));
            assert_contains(&m, &["remote \"x\": package: invalid package type"]);
        }
    }

    #[test]
    fn duplicate_remote_names() {
        let text = "[[remote]]\nname = \"x\"\npackage = \"local\"\n[[remote]]\nname = \"y\"\npackage = \"local\"\n[[remote]]\nname = \"x\"\npackage = \"local\"\n";
        let m = err(text);
        assert_contains(&m, &["remote \"x\": name: duplicate", "#1 and #3"]);
    }

    #[test]
    fn modes() {
        let local = ok("[[remote]]\nname = \"b\"\npackage = \"local\"\n");
        assert_eq!(local.remotes[0].mode, RemoteMode::Hosted);
        let local = ok("[[remote]]\nname = \"b\"\npackage = \"local\"\nhosted = true\n");
        assert_eq!(local.remotes[0].mode, RemoteMode::Hosted);
        let m = err("[[remote]]\nname = \"b\"\npackage = \"local\"\nupstream = \"https://x\"\n");
        assert_contains(&m, &["remote \"b\": upstream:", "hosted"]);
        let m = err("[[remote]]\nname = \"b\"\npackage = \"local\"\nhosted = false\n");
        assert_contains(&m, &["remote \"b\": hosted:"]);
        let m = err(
            "[[remote]]\nname = \"c\"\npackage = \"cas\"\nhosted = true\nupstream = \"https://x\"\n",
        );
        assert_contains(&m, &["remote \"c\": upstream:"]);
        let m = err("[[remote]]\nname = \"g\"\npackage = \"generic\"\n");
        assert_contains(&m, &["remote \"g\": upstream: missing"]);
        let m = err("[[remote]]\nname = \"g\"\npackage = \"generic\"\nhosted = false\n");
        assert_contains(&m, &["remote \"g\": upstream: missing"]);
        let pt = ok(
            "[[remote]]\nname = \"g\"\npackage = \"generic\"\nhosted = false\nupstream = \"https://x\"\n",
        );
        assert_eq!(pt.remotes[0].mode, RemoteMode::PullThrough);
        let m = err(
            "[[remote]]\nname = \"b\"\npackage = \"local\"\nusername = \"u\"\npassword = \"p\"\n",
        );
        assert_contains(
            &m,
            &["remote \"b\": username: credentials are for an upstream"],
        );
    }

    #[test]
    fn follow_redirects_values() {
        for (v, p) in [
            ("true", RedirectPolicy::Any),
            ("false", RedirectPolicy::Never),
            ("\"any\"", RedirectPolicy::Any),
            ("\"never\"", RedirectPolicy::Never),
            ("\"same-host\"", RedirectPolicy::SameHost),
        ] {
            assert_eq!(
                ok(&remote(&format!("follow_redirects = {v}"))).remotes[0].follow_redirects,
                p
            );
        }
        let m = err(&remote("follow_redirects = \"sometimes\""));
        assert_contains(
            &m,
            &["remote \"alma\": follow_redirects: invalid value \"sometimes\""],
        );
        let m = err(&remote("follow_redirects = 3"));
        assert_contains(&m, &["follow_redirects", "line"]);
    }

    #[test]
    fn options_must_be_scalars() {
        let m = err(&remote("options = { list = [1, 2] }"));
        assert_contains(
            &m,
            &["remote \"alma\": options.list: must be a string, number or boolean"],
        );
        let c = ok(&remote("options = { when = 1979-05-27T07:32:00Z }"));
        assert_eq!(
            c.remotes[0].options,
            [("when".to_owned(), "1979-05-27T07:32:00Z".to_owned())]
        );
    }

    #[test]
    fn tls_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.pem"), "x").unwrap();
        std::fs::write(dir.path().join("k.pem"), "x").unwrap();
        let p = |t: &str| parse_with_env(t, dir.path(), &no_env).map_err(|e| e.to_string());
        let m = p("[server]\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert_contains(&m, &["[server]: tls_key: missing"]);
        let m = p("[server]\ntls_key = \"k.pem\"\n").unwrap_err();
        assert_contains(&m, &["[server]: tls_cert: missing"]);
        let m = p("[server]\ntls_cert = \"c.pem\"\ntls_key = \"nope.pem\"\n").unwrap_err();
        assert_contains(&m, &["[server]: tls_key: cannot use", "nope.pem"]);
        let m = p("[server]\ntls_cert = \".\"\ntls_key = \"k.pem\"\n").unwrap_err();
        assert_contains(&m, &["[server]: tls_cert:", "not a regular file"]);
        let c = p("[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
        assert!(c.server.tls.is_some());
        let m = p("[upstream]\nca_file = \"missing.pem\"\n").unwrap_err();
        assert_contains(&m, &["[upstream]: ca_file: cannot use"]);
        let m = p("[storage]\ndir = \"\"\n").unwrap_err();
        assert_contains(&m, &["[storage]: dir: must not be empty"]);
    }

    #[test]
    fn relative_paths_stay_relative_unless_anchored() {
        let c = ok("[storage]\ndir = \"data\"\n[plugins]\ndir = \"/abs/plugins\"\n");
        assert_eq!(c.storage.dir, PathBuf::from("data"));
        let c = parse_with_env(
            "[storage]\ndir = \"data\"\n[plugins]\ndir = \"/abs/plugins\"\n",
            Path::new("/base"),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.storage.dir, PathBuf::from("/base/data"));
        assert_eq!(c.plugins.dir, PathBuf::from("/abs/plugins"));
    }

    fn creds(
        body: &str,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Option<Credentials>, String> {
        parse_with_env(&remote(body), Path::new(""), env)
            .map(|c| c.remotes[0].credentials.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn credentials_from_env() {
        let env = |k: &str| match k {
            "ALMA_PW" => Some(OsString::from("pw-from-env")),
            "ALMA_TOKEN" => Some(OsString::from("tok-from-env")),
            "EMPTY" => Some(OsString::new()),
            _ => None,
        };
        match creds("username = \"u\"\npassword_env = \"ALMA_PW\"", &env).unwrap() {
            Some(Credentials::Basic { username, password }) => {
                assert_eq!(username, "u");
                assert_eq!(password.0, "pw-from-env");
            }
            other => panic!("{other:?}"),
        }
        match creds("token_env = \"ALMA_TOKEN\"", &env).unwrap() {
            Some(Credentials::Bearer { token }) => assert_eq!(token.0, "tok-from-env"),
            other => panic!("{other:?}"),
        }
        let m = creds("username = \"u\"\npassword_env = \"NOPE\"", &env).unwrap_err();
        assert_contains(
            &m,
            &["remote \"alma\": password_env: environment variable \"NOPE\" is not set"],
        );
        let m = creds("token_env = \"EMPTY\"", &env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": token_env:", "empty"]);
    }

    #[cfg(unix)]
    #[test]
    fn credentials_env_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let env = |_: &str| Some(OsString::from_vec(vec![0xff, 0xfe]));
        let m = creds("token_env = \"BIN\"", &env).unwrap_err();
        assert_contains(
            &m,
            &["token_env: environment variable \"BIN\" is not valid UTF-8"],
        );
    }

    #[test]
    fn credentials_from_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "pw-from-file").unwrap();
        let path = f.path().display().to_string();
        match creds(
            &format!("username = \"u\"\npassword_file = '{path}'"),
            &no_env,
        )
        .unwrap()
        {
            Some(Credentials::Basic { password, .. }) => assert_eq!(password.0, "pw-from-file"),
            other => panic!("{other:?}"),
        }
        let m = creds("token_file = \"/nonexistent/artgate/token\"", &no_env).unwrap_err();
        assert_contains(
            &m,
            &["remote \"alma\": token_file: cannot read \"/nonexistent/artgate/token\""],
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        let m = creds(
            &format!("token_file = '{}'", empty.path().display()),
            &no_env,
        )
        .unwrap_err();
        assert_contains(&m, &["remote \"alma\": token_file: the secret is empty"]);
        let mut big = tempfile::NamedTempFile::new().unwrap();
        big.write_all(&vec![b'a'; 70 * 1024]).unwrap();
        let m = creds(&format!("token_file = '{}'", big.path().display()), &no_env).unwrap_err();
        assert_contains(&m, &["token_file:", "larger than 64 KiB"]);
    }

    #[test]
    fn credential_combinations() {
        let m = creds("username = \"u\"", &no_env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": username: needs a password"]);
        let m = creds("password = \"p\"", &no_env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": password: needs a username"]);
        let m = creds(
            "username = \"u\"\npassword = \"p\"\npassword_env = \"X\"",
            &no_env,
        )
        .unwrap_err();
        assert_contains(&m, &["remote \"alma\": password_env: password is set too"]);
        let m = creds("token = \"t\"\ntoken_file = \"f\"", &no_env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": token_file: token is set too"]);
        let m = creds("username = \"u\"\ntoken = \"t\"", &no_env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": token: use either"]);
        let m = creds("username = \"a:b\"\npassword = \"p\"", &no_env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": username: must be"]);
        let m = creds("token = \"a\\nb\"", &no_env).unwrap_err();
        assert_contains(&m, &["remote \"alma\": token: the token has characters"]);
        assert!(!m.contains("a\nb"));
        assert!(creds("", &no_env).unwrap().is_none());
    }

    #[test]
    fn secrets_never_show() {
        let env = |k: &str| (k == "PW").then(|| OsString::from("env-secret-3"));
        let text = format!(
            "{}[[remote]]\nname = \"two\"\npackage = \"docker\"\nupstream = \"https://x\"\ntoken = \"literal-secret-2\"\n[remote.options]\napi_token = \"opt-secret-4\"\nregion = \"eu\"\n\n[[remote]]\nname = \"three\"\npackage = \"docker\"\nupstream = \"https://y\"\nusername = \"bob\"\npassword_env = \"PW\"\n",
            remote("username = \"alice\"\npassword = \"literal-secret-1\"")
        );
        let c = parse_with_env(&text, Path::new(""), &env).unwrap();
        let json = serde_json::to_string(&c.redacted_json()).unwrap();
        let debug = format!("{c:?}");
        for secret in [
            "literal-secret-1",
            "literal-secret-2",
            "env-secret-3",
            "opt-secret-4",
        ] {
            assert!(!json.contains(secret), "{secret} in {json}");
            if secret != "opt-secret-4" {
                assert!(!debug.contains(secret), "{secret} in {debug}");
            }
        }
        let raw = RawConfig::from_toml(&text).unwrap();
        assert!(!format!("{raw:?}").contains("literal-secret"));
        let v = c.redacted_json();
        assert_eq!(v["remote"][0]["credentials"]["username"], "alice");
        assert_eq!(v["remote"][0]["credentials"]["password"], "***");
        assert_eq!(v["remote"][1]["credentials"]["token"], "***");
        assert_eq!(v["remote"][1]["options"]["api_token"], "***");
        assert_eq!(v["remote"][1]["options"]["region"], "eu");
        assert_eq!(v["remote"][2]["credentials"]["username"], "bob");
    }

    #[test]
    fn redacted_json_shape() {
        let c = ok(&remote("mutable_ttl = \"1h30m\"\nallow = [\"^9/\"]"));
        let v = c.redacted_json();
        assert_eq!(v["server"]["listen"], "127.0.0.1:8080");
        assert_eq!(v["server"]["header_read_timeout"], "10s");
        assert_eq!(v["storage"]["max_size"], 50 * GIB);
        assert_eq!(v["plugins"]["call_timeout"], "200ms");
        assert_eq!(v["plugins"]["cache_dir"], "./artgate-data/plugin-cache");
        assert_eq!(v["upstream"]["ca_file"], serde_json::Value::Null);
        let r = &v["remote"][0];
        assert_eq!(r["name"], "alma");
        assert_eq!(r["mode"], "pull-through");
        assert_eq!(r["upstream"][0], "https://repo.example.org/alma");
        assert_eq!(r["allow"][0], "^9/");
        assert_eq!(r["mutable_ttl"], "1h 30m");
        assert_eq!(r["follow_redirects"], "same-host");
        assert_eq!(r["credentials"], serde_json::Value::Null);
        assert_eq!(r["max_size"], serde_json::Value::Null);
    }

    #[test]
    fn default_config_validates() {
        let c = Config::default_config().unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.storage.dir, PathBuf::from("./artgate-data"));
        assert_eq!(c.plugins.dir, PathBuf::from("./plugins"));
        let names: Vec<&str> = c.remotes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["files", "dockerhub", "alma", "alpine", "builds"]);
        let files = c.remote("files").unwrap();
        assert_eq!(files.package, "generic");
        let re: Vec<Regex> = files
            .mutable_patterns
            .iter()
            .map(|p| Regex::new(p).unwrap())
            .collect();
        for m in [
            "dists/bookworm/InRelease",
            "dists/bookworm/main/binary-amd64/Packages.xz",
            "Release",
        ] {
            assert!(re.iter().any(|r| r.is_match(m)), "{m}");
        }
        assert!(
            !re.iter()
                .any(|r| r.is_match("pool/main/h/hello/hello_2.10-3_amd64.deb"))
        );
        let hub = c.remote("dockerhub").unwrap();
        assert!(
            hub.allows("library/alpine/manifests/3.20") && !hub.allows("someone/x/manifests/1")
        );
        assert_eq!(c.remote("builds").unwrap().mode, RemoteMode::Hosted);
        assert_eq!(c.remote("alma").unwrap().package, "rpm");
        assert_eq!(c.remote("alpine").unwrap().package, "alpine");
    }

    #[test]
    fn load_reads_a_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(DEFAULT_CONFIG_TOML.as_bytes()).unwrap();
        assert_eq!(load(f.path()).unwrap().remotes.len(), 5);
        let e = load(Path::new("/nonexistent/artgate.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert_contains(&e.to_string(), &["cannot read the configuration file"]);
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("upstrem", "upstream"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    const HOSTED: &str = "[[remote]]\nname = \"builds\"\npackage = \"local\"\n[[remote]]\nname = \"mirror\"\npackage = \"generic\"\nupstream = \"https://example.org\"\n";

    fn token(body: &str) -> String {
        format!("{HOSTED}[[token]]\nname = \"ci\"\n{body}\n")
    }

    #[test]
    fn tokens_from_every_source() {
        use sha2::Digest as _;
        let hex = hex::encode(sha2::Sha256::digest(b"t"));
        let c = ok(&token(&format!(
            "token_sha256 = \"{}\"\nadmin = true\nscopes = {{ builds = [\"read\", \"write\"], \"*\" = [\"read\"] }}",
            hex.to_uppercase()
        )));
        let t = &c.tokens[0];
        assert_eq!(t.name, "ci");
        assert!(t.admin);
        assert_eq!(t.source, "token_sha256");
        assert_eq!(t.sha256.as_slice(), sha2::Sha256::digest(b"t").as_slice());
        assert_eq!(
            crate::auth::scopes_on(t, "builds").names(),
            ["read", "write"]
        );
        assert_eq!(crate::auth::scopes_on(t, "mirror").names(), ["read"]);
        let env = |n: &str| (n == "CI_TOKEN").then(|| OsString::from("0123456789abcdefXYZ"));
        let c = parse_with_env(&token("token_env = \"CI_TOKEN\""), Path::new(""), &env).unwrap();
        assert_eq!(
            c.tokens[0].sha256.as_slice(),
            sha2::Sha256::digest(b"0123456789abcdefXYZ").as_slice()
        );
        assert!(!c.tokens[0].admin);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "fedcba9876543210-file").unwrap();
        let c = ok(&token(&format!("token_file = {:?}", f.path())));
        assert_eq!(
            c.tokens[0].sha256.as_slice(),
            sha2::Sha256::digest(b"fedcba9876543210-file").as_slice()
        );
        // GET /config shows neither the token nor its hash.
        let json = c.redacted_json().to_string();
        assert!(json.contains("\"token\":\"***\""), "{json}");
        assert!(!json.contains("fedcba") && !json.contains(&hex::encode(c.tokens[0].sha256)));
    }

    #[test]
    fn token_errors_name_the_key() {
        let h = "a".repeat(64);
        assert_contains(&err(&token("")), &["token \"ci\": token_sha256: missing"]);
        assert_contains(
            &err(&token(&format!(
                "token_sha256 = \"{h}\"\ntoken_env = \"X\""
            ))),
            &["token \"ci\": token_env:", "exactly one"],
        );
        assert_contains(
            &err(&token("token_sha256 = \"abc\"")),
            &["token_sha256: must be 64 hex"],
        );
        assert_contains(
            &err(&token(&format!(
                "token_sha256 = \"{h}\"\nscopes = {{ nope = [\"read\"] }}"
            ))),
            &["scopes.nope: unknown remote \"nope\""],
        );
        assert_contains(
            &err(&token(&format!(
                "token_sha256 = \"{h}\"\nscopes = {{ builds = [\"admin\"] }}"
            ))),
            &["scopes.builds: unknown scope \"admin\""],
        );
        let short = |n: &str| (n == "T").then(|| OsString::from("short"));
        assert_contains(
            &err_env(&token("token_env = \"T\""), &short),
            &["token_env: the token is shorter than 16"],
        );
        assert_contains(
            &err(&format!(
                "{}[[token]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\n",
                token(&format!("token_sha256 = \"{h}\"")),
                "b".repeat(64)
            )),
            &["duplicate token name"],
        );
        assert_contains(
            &err(&format!(
                "{}[[token]]\nname = \"other\"\ntoken_sha256 = \"{h}\"\n",
                token(&format!("token_sha256 = \"{h}\""))
            )),
            &["same token as token \"ci\""],
        );
        assert_contains(
            &err(&token(&format!("token_sha256 = \"{h}\"\nscope = {{}}"))),
            &[
                "unknown key \"scope\" in [[token]] #1 (\"ci\")",
                "did you mean \"scopes\"",
            ],
        );
        assert_contains(
            &err("[[remote]]\nname = \"b\"\npackage = \"local\"\nanonymous_read = false\n"),
            &["remote \"b\": anonymous_read:", "[[token]]"],
        );
    }

    #[test]
    fn virtual_remotes() {
        let v = |body: &str| {
            format!("{HOSTED}[[remote]]\nname = \"all\"\npackage = \"virtual\"\n{body}\n")
        };
        let c = ok(&v(
            "members = [\"builds\", \"mirror\"]\nwrite_to = \"builds\"",
        ));
        let all = c.remote("all").unwrap();
        assert_eq!(all.mode, RemoteMode::Virtual);
        assert_eq!(all.members, ["builds", "mirror"]);
        assert_eq!(all.write_to.as_deref(), Some("builds"));
        assert_eq!(c.redacted_json()["remote"][2]["mode"], "virtual");
        ok(&v("members = [\"mirror\"]"));
        assert_contains(&err(&v("")), &["remote \"all\": members: missing"]);
        assert_contains(
            &err(&v("members = [\"nope\"]")),
            &["members[0]: unknown remote \"nope\""],
        );
        assert_contains(
            &err(&v("members = [\"builds\", \"builds\"]")),
            &["members[1]:", "twice"],
        );
        assert_contains(
            &err(&v("members = [\"builds\"]\nwrite_to = \"mirror\"")),
            &["write_to: \"mirror\" is not one of the members"],
        );
        assert_contains(
            &err(&v("members = [\"mirror\"]\nwrite_to = \"mirror\"")),
            &["write_to: \"mirror\" is a pull-through remote"],
        );
        assert_contains(
            &err(&v("members = [\"builds\"]\nupstream = \"https://x.org\"")),
            &["upstream: a virtual remote"],
        );
        assert_contains(
            &err(&v("members = [\"builds\"]\nhosted = true")),
            &["hosted:"],
        );
        assert_contains(
            &err(&format!(
                "{HOSTED}[[remote]]\nname = \"x\"\npackage = \"local\"\nmembers = [\"builds\"]\n"
            )),
            &["remote \"x\": members: only virtual remotes"],
        );
        let cycle = format!(
            "{HOSTED}[[remote]]\nname = \"a\"\npackage = \"virtual\"\nmembers = [\"builds\", \"b\"]\n[[remote]]\nname = \"b\"\npackage = \"virtual\"\nmembers = [\"a\"]\n"
        );
        assert_contains(&err(&cycle), &["members: cycle: a -> b -> a"]);
        let docker = "[[remote]]\nname = \"hub\"\npackage = \"docker\"\nupstream = \"https://r.example\"\n[[remote]]\nname = \"v\"\npackage = \"virtual\"\nmembers = [\"hub\"]\n";
        assert_contains(&err(docker), &["members[0]:", "docker registry"]);
    }
}
