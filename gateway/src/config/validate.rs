//! Validation: raw structs → the typed [`Config`], every value checked
//! and every error naming its key.

use super::keys::check_keys;
use super::*;
use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * 1024;
pub(super) const GIB: u64 = 1024 * 1024 * 1024;

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

/// A size, zero allowed (default `default`).
fn size_or_zero(
    scope: &str,
    key: &str,
    v: &Option<RawSize>,
    default: u64,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => parse_size(v).map_err(|m| invalid(scope, key, m)),
    }
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
        max_uri_bytes: max_uri_bytes(&r.max_uri_bytes)?,
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
        body_read_timeout: duration(
            S,
            "body_read_timeout",
            &r.body_read_timeout,
            Duration::from_secs(30),
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

/// `max_uri_bytes`: at most 60 KiB (hyper refuses targets over 64 KiB
/// itself, and cache keys, which often are the path, stop at 64 KiB).
fn max_uri_bytes(v: &Option<RawSize>) -> Result<usize, ConfigError> {
    let n: usize = size_as("[server]", "max_uri_bytes", v, 8 * KIB)?;
    if n > 60 * 1024 {
        return Err(invalid(
            "[server]",
            "max_uri_bytes",
            format!("{n} bytes is more than the 60 KiB allowed"),
        ));
    }
    Ok(n)
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
        memory_cache: size_or_zero(S, "memory_cache", &r.memory_cache, 32 * MIB)?,
        memory_cache_max_object: size(
            S,
            "memory_cache_max_object",
            &r.memory_cache_max_object,
            256 * KIB,
        )?,
        index_cache_entries: count(S, "index_cache_entries", r.index_cache_entries, 100_000)?,
        min_free: size_or_zero(S, "min_free", &r.min_free, 256 * MIB)?,
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
    let max_instances: u32 = count(S, "max_instances", r.max_instances.map(u64::from), 256)?;
    // One adapter must not be able to hold every pooled instance.
    let max_concurrent_calls: u32 = count(
        S,
        "max_concurrent_calls",
        r.max_concurrent_calls.map(u64::from),
        u64::from(max_instances.min(16)),
    )?;
    if max_concurrent_calls > max_instances {
        return Err(invalid(
            S,
            "max_concurrent_calls",
            format!(
                "{max_concurrent_calls} is more than max_instances ({max_instances}); one adapter could hold every instance"
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
        max_instances,
        http_timeout: duration(
            S,
            "http_timeout",
            &r.http_timeout,
            Duration::from_secs(10),
            false,
        )?,
        http_max_body: size_as(S, "http_max_body", &r.http_max_body, MIB)?,
        // Well above the largest real adapter (a componentize-py component
        // is ~18 MiB), far below what would stall a rescan.
        max_file_size: size(S, "max_file_size", &r.max_file_size, 64 * MIB)?,
        warm_instances: warm_instances(r.warm_instances.as_ref())?,
        max_concurrent_calls,
        queue_timeout: duration(
            S,
            "queue_timeout",
            &r.queue_timeout,
            Duration::from_secs(2),
            true,
        )?,
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
/// `auth_realms`: http(s) URLs of token services; only their origins are
/// kept. Plain http only when an upstream is plain http too (credentials
/// never travel in clear text to another host of an https registry).
fn auth_realms(
    scope: &str,
    mode: RemoteMode,
    upstreams: &[http::Uri],
    r: &RawRemote,
) -> Result<Vec<http::Uri>, ConfigError> {
    let Some(list) = &r.auth_realms else {
        return Ok(Vec::new());
    };
    if mode != RemoteMode::PullThrough {
        return Err(invalid(
            scope,
            "auth_realms",
            format!(
                "auth realms are for an upstream and this remote is {}",
                mode.as_str()
            ),
        ));
    }
    let any_http = upstreams.iter().any(|u| u.scheme_str() == Some("http"));
    list.iter()
        .enumerate()
        .map(|(j, raw)| {
            let key = format!("auth_realms[{j}]");
            let uri = upstream_url(raw.split(['?', '#']).next().unwrap_or(raw))
                .map_err(|m| invalid(scope, &key, m))?;
            if uri.scheme_str() == Some("http") && !any_http {
                return Err(invalid(
                    scope,
                    &key,
                    format!(
                        "{raw:?} is plain http while every upstream is https; the remote's credentials would cross the network in clear text (use https)"
                    ),
                ));
            }
            let origin = format!(
                "{}://{}",
                uri.scheme_str().unwrap_or("https"),
                uri.authority().map(|a| a.as_str()).unwrap_or_default()
            );
            origin
                .parse()
                .map_err(|e| invalid(scope, &key, format!("invalid URL {raw:?} ({e})")))
        })
        .collect()
}

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
    let auth_realms = auth_realms(scope, mode, &upstreams, r)?;
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
        auth_realms,
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

/// Settings that are valid but probably not what was meant, one sentence
/// each (`artgate check` prints them, the gateway logs them at startup):
/// a virtual remote that looks more open than a remote it reaches. Access
/// control refuses what the member refuses (`auth.rs`), so such reads or
/// writes fail rather than leak; the warning says why before a client
/// finds out.
pub(super) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.tokens.is_empty() {
        return out;
    }
    for v in config
        .remotes
        .iter()
        .filter(|r| r.mode == RemoteMode::Virtual)
    {
        let members = config.reached(v, false);
        if v.anonymous_read
            && let Some(m) = members.iter().find(|m| !m.anonymous_read)
        {
            out.push(format!(
                "remote {:?}: anonymous_read is true but its member {:?} has anonymous_read = false, so anonymous reads through {:?} are refused; set anonymous_read = false on {:?}",
                v.name, m.name, v.name, v.name
            ));
        }
        for t in &config.tokens {
            let on = |r: &RemoteConfig| crate::auth::scopes_on(t, &r.name);
            if on(v).read
                && let Some(m) = members.iter().find(|m| !m.anonymous_read && !on(m).read)
            {
                out.push(format!(
                    "token {:?} has the read scope on virtual remote {:?} but not on its member {:?}, so its reads through {:?} are refused",
                    t.name, v.name, m.name, v.name
                ));
            }
            let Some(m) = v.write_to.as_deref().and_then(|w| config.remote(w)) else {
                continue;
            };
            for (scope, on_virtual, on_member) in [
                ("write", on(v).write, on(m).write),
                ("delete", on(v).delete, on(m).delete),
            ] {
                if on_virtual && !on_member {
                    out.push(format!(
                        "token {:?} has the {scope} scope on virtual remote {:?} but not on its write_to member {:?}, so it cannot {scope} through {:?}",
                        t.name, v.name, m.name, v.name
                    ));
                }
            }
        }
    }
    out
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

/// The sources of one secret that are set, each with its key: the literal,
/// `*_env` and `*_file` keys, in that order.
fn secret_sources<'a>(
    keys: [&'static str; 3],
    literal: Option<&'a Secret>,
    env: Option<&'a str>,
    file: Option<&'a Path>,
) -> Vec<(&'static str, SecretSource<'a>)> {
    [
        literal.map(|s| (keys[0], SecretSource::Literal(s))),
        env.map(|s| (keys[1], SecretSource::Env(s))),
        file.map(|s| (keys[2], SecretSource::File(s))),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Username + one password source, or one token source; secrets read now.
fn validate_credentials(
    cx: &Cx<'_>,
    scope: &str,
    r: &RawRemote,
) -> Result<Option<Credentials>, ConfigError> {
    let passwords = secret_sources(
        ["password", "password_env", "password_file"],
        r.password.as_ref(),
        r.password_env.as_deref(),
        r.password_file.as_deref(),
    );
    let tokens = secret_sources(
        ["token", "token_env", "token_file"],
        r.token.as_ref(),
        r.token_env.as_deref(),
        r.token_file.as_deref(),
    );
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
