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
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// `[shared]`: the bucket several nodes share (cluster mode); `None`:
    /// a single node on its own disk.
    pub shared: Option<SharedConfig>,
}

/// `[shared]`: an S3-compatible bucket under the local store, shared by
/// every node of a cluster (docs/cluster.md).
#[derive(Debug, Clone)]
pub struct SharedConfig {
    /// The bucket, from `url`.
    pub bucket: String,
    /// The prefix inside the bucket, from `url` (no leading or trailing
    /// `/`; empty: the bucket's root).
    pub prefix: String,
    /// `endpoint`: the S3 endpoint URL; `None`: AWS's, by region.
    pub endpoint: Option<String>,
    /// `region` (default `us-east-1`).
    pub region: String,
    /// `access_key_id`.
    pub access_key_id: String,
    /// From `secret_access_key`, `secret_access_key_env` or
    /// `secret_access_key_file`.
    pub secret_access_key: Secret,
    /// `allow_http`: whether a plain `http://` endpoint is allowed
    /// (default false).
    pub allow_http: bool,
    /// `node`: this node's name in the cluster (default: the host name).
    pub node: String,
    /// `timeout`: longest wait for a bucket request's answer (default
    /// 10s); slower is an error and the shared tier is degraded.
    pub timeout: Duration,
    /// `advertise`: the base URL other nodes reach this node at for fills
    /// in progress (`http://10.0.0.5:8080`); default: the listener's
    /// address when it is a specific one.
    pub advertise: Option<String>,
    /// `lease_ttl`: how long a node's claim to fetch a key lasts unless it
    /// renews it (default 30s); a node that dies mid-fill is replaced
    /// after this.
    pub lease_ttl: Duration,
    /// From `cluster_secret`, `_env` or `_file`: what nodes show each
    /// other on the internal route; default: derived from the bucket's
    /// secret key.
    pub cluster_secret: Option<Secret>,
    /// `max_size`: the bucket's size limit (default none); beyond it the
    /// cluster's collection evicts the least recently used cached entries
    /// (hosted entries are kept: quotas bound them).
    pub max_size: Option<u64>,
    /// `gc_every`: how often one node of the cluster collects (default
    /// 10m): evicts beyond `max_size`, deletes unreferenced blobs and
    /// dead leases, recounts hosted usage.
    pub gc_every: Duration,
    /// `gc_grace`: an unreferenced blob younger than this is kept
    /// (default 1h; at least twice `timeout`): a node may be about to
    /// write the record that references it.
    pub gc_grace: Duration,
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
    /// `idle_timeout`: time a connection may wait between requests before
    /// it is closed (default 60s).
    pub idle_timeout: Duration,
    /// `body_read_timeout`: longest pause while reading a request body
    /// before the request gets 408 (default 30s).
    pub body_read_timeout: Duration,
    /// `shutdown_grace`: how long in-flight requests get on shutdown (default 30s).
    pub shutdown_grace: Duration,
    /// `max_request_body_inspect`: largest request body an adapter may ask to
    /// see (default 1 MiB).
    pub max_inspect_bytes: u32,
    /// `public_url`: the base URL clients reach the gateway by (behind a
    /// load balancer or a TLS proxy), without a trailing `/`; none: the
    /// listener's scheme and each request's `Host` ([`crate::public_url`]).
    pub public_url: Option<Arc<str>>,
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
    /// `memory_cache`: bytes of small blobs kept in memory for hits
    /// (default 32 MiB; 0 turns it off).
    pub memory_cache: u64,
    /// `memory_cache_max_object`: largest blob the memory cache keeps
    /// (default 256 KiB).
    pub memory_cache_max_object: u64,
    /// `index_cache_entries`: index entries kept in memory (default
    /// 100,000).
    pub index_cache_entries: usize,
    /// `min_free`: free space kept on the storage file system for the
    /// index; new content is refused with 507 below it (default 256 MiB;
    /// 0 turns it off).
    pub min_free: u64,
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
    /// `no_cache_revalidates_404` (default true): a client's `no-cache`
    /// asks the upstream again about a remembered 404.
    pub no_cache_revalidates_404: bool,
    /// `follow_redirects` (default same-host).
    pub follow_redirects: RedirectPolicy,
    /// `auth_realms`: origins (`scheme://host:port`) of token services on
    /// other hosts that the upstream may name in `WWW-Authenticate` and
    /// that then receive the remote's credentials (default none: only
    /// realms on an upstream's own origin).
    pub auth_realms: Vec<http::Uri>,
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

    /// The remotes a request on `remote` reaches, `remote` first: for a
    /// virtual remote also every member a read may try (members of member
    /// virtuals included), or with `write` the `write_to` member. Access
    /// control checks each of them.
    pub fn reached<'a>(&'a self, remote: &'a RemoteConfig, write: bool) -> Vec<&'a RemoteConfig> {
        let mut out = vec![remote];
        let mut i = 0;
        while let Some(r) = out.get(i).copied() {
            i += 1;
            let next: Vec<&str> = if write {
                r.write_to.iter().map(String::as_str).collect()
            } else {
                r.members.iter().map(String::as_str).collect()
            };
            for name in next {
                if let Some(m) = self.remote(name)
                    && !out.iter().any(|o| o.name == m.name)
                {
                    out.push(m);
                }
            }
        }
        out
    }

    /// What `artgate check` warns about: settings that are valid but
    /// probably not what was meant (see `validate::warnings`).
    pub fn warnings(&self) -> Vec<String> {
        validate::warnings(self)
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
                "body_read_timeout": duration_json(s.body_read_timeout),
                "shutdown_grace": duration_json(s.shutdown_grace),
                "max_request_body_inspect": s.max_inspect_bytes,
                "public_url": s.public_url.as_deref(),
            },
            "storage": {
                "dir": path_json(&self.storage.dir),
                "max_size": self.storage.max_size,
                "memory_cache": self.storage.memory_cache,
                "memory_cache_max_object": self.storage.memory_cache_max_object,
                "index_cache_entries": self.storage.index_cache_entries,
                "min_free": self.storage.min_free,
            },
            "plugins": {
                "dir": path_json(&p.dir),
                "cache_dir": path_json(&self.plugin_cache_dir()),
                "memory_limit": p.memory_limit,
                "call_timeout": duration_json(p.call_timeout),
                "reload_debounce": duration_json(p.reload_debounce),
                "max_instances": p.max_instances,
                "max_concurrent_calls": p.max_concurrent_calls,
                "queue_timeout": duration_json(p.queue_timeout),
                "lane_threads": p.lane_threads,
                "http_timeout": duration_json(p.http_timeout),
                "http_max_body": p.http_max_body,
                "max_file_size": p.max_file_size,
                "warm_instances": p.warm_instances,
                "adapter": p.adapter.iter().map(|(name, l)| (name.clone(), serde_json::json!({
                    "memory_limit": l.memory_limit,
                    "call_timeout": duration_json(l.call_timeout),
                    "max_concurrent_calls": l.max_concurrent_calls,
                    "queue_timeout": duration_json(l.queue_timeout),
                    "lane_threads": l.lane_threads,
                }))).collect::<serde_json::Map<_, _>>(),
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
            "shared": self.shared.as_ref().map(|c| json!({
                "url": if c.prefix.is_empty() { format!("s3://{}", c.bucket) } else { format!("s3://{}/{}", c.bucket, c.prefix) },
                "endpoint": c.endpoint,
                "region": c.region,
                "access_key_id": c.access_key_id,
                "secret_access_key": REDACTED,
                "allow_http": c.allow_http,
                "node": c.node,
                "timeout": duration_json(c.timeout),
                "advertise": c.advertise,
                "lease_ttl": duration_json(c.lease_ttl),
                "cluster_secret": c.cluster_secret.as_ref().map(|_| REDACTED),
                "max_size": c.max_size,
                "gc_every": duration_json(c.gc_every),
                "gc_grace": duration_json(c.gc_grace),
            })),
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
            "no_cache_revalidates_404": self.no_cache_revalidates_404,
            "follow_redirects": match self.follow_redirects {
                RedirectPolicy::Never => "never",
                RedirectPolicy::SameHost => "same-host",
                RedirectPolicy::Any => "any",
            },
            "auth_realms": self.auth_realms.iter().map(upstream_display).collect::<Vec<_>>(),
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

/// The built-in configuration (`gateway/src/config/default.toml`), also the
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

mod keys;
mod plugins;
mod raw;
mod validate;

pub use plugins::*;
pub use raw::*;

#[cfg(test)]
mod tests;
