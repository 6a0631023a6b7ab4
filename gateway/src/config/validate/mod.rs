//! Validation: raw structs → the typed [`Config`], every value checked
//! and every error naming its key.
//!
//! This file holds the context, the value parsers (sizes, durations,
//! counts) and the global sections (`[server]`, `[storage]`, `[plugins]`,
//! `[upstream]`); `remote.rs` the `[[remote]]` tables, `secrets.rs` the
//! tokens and upstream credentials, `warnings.rs` what is valid but
//! probably not meant.

mod remote;
mod secrets;
mod shared;
mod warnings;

use super::keys::check_keys;
use super::*;
use regex::Regex;
use remote::{validate_remote, validate_virtuals};
use secrets::validate_tokens;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub(super) use warnings::warnings;

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
        let shared = match &self.shared {
            Some(r) => Some(shared::validate_shared(&cx, r)?),
            None => None,
        };
        Ok(Config {
            server,
            storage,
            plugins,
            upstream,
            remotes,
            tokens,
            shared,
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

/// A size > 0 when given.
fn opt_size(scope: &str, key: &str, v: &Option<RawSize>) -> Result<Option<u64>, ConfigError> {
    match v {
        None => Ok(None),
        Some(_) => size(scope, key, v, 0).map(Some),
    }
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
        public_url: match &r.public_url {
            None => None,
            Some(u) => Some(Arc::from(
                remote::base_url(u.trim())
                    .map_err(|m| invalid(S, "public_url", m))?
                    .to_string()
                    .trim_end_matches('/'),
            )),
        },
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
    let max_instances: u32 = count(S, "max_instances", r.max_instances.map(u64::from), 256)?;
    let global = adapter_limits(
        S,
        &RawAdapterLimits {
            memory_limit: r.memory_limit.clone(),
            call_timeout: r.call_timeout.clone(),
            max_concurrent_calls: r.max_concurrent_calls,
            queue_timeout: r.queue_timeout.clone(),
            lane_threads: r.lane_threads,
        },
        AdapterLimits {
            memory_limit: 64 * MIB,
            call_timeout: Duration::from_millis(200),
            max_concurrent_calls: max_instances.min(16),
            queue_timeout: Duration::from_secs(2),
            lane_threads: 1,
        },
        max_instances,
    )?;
    let mut adapter = BTreeMap::new();
    for (name, raw) in r.adapter.iter().flatten() {
        let scope = format!("[plugins.adapter.{name}]");
        adapter_name(&scope, "the table name", name)?;
        adapter.insert(
            name.clone(),
            adapter_limits(&scope, raw, global, max_instances)?,
        );
    }
    let AdapterLimits {
        memory_limit,
        call_timeout,
        max_concurrent_calls,
        queue_timeout,
        lane_threads,
    } = global;
    Ok(PluginsConfig {
        dir: cx.path(S, "dir", r.dir.as_deref().unwrap_or(Path::new("./plugins")))?,
        cache_dir: r
            .cache_dir
            .as_deref()
            .map(|p| cx.path(S, "cache_dir", p))
            .transpose()?,
        memory_limit,
        call_timeout,
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
        queue_timeout,
        lane_threads,
        adapter,
    })
}

/// The call limits `r` sets in `scope` (`[plugins]` or one adapter's
/// table), the rest taken from `defaults`.
fn adapter_limits(
    scope: &str,
    r: &RawAdapterLimits,
    defaults: AdapterLimits,
    max_instances: u32,
) -> Result<AdapterLimits, ConfigError> {
    let memory_limit = size(
        scope,
        "memory_limit",
        &r.memory_limit,
        defaults.memory_limit,
    )?;
    if memory_limit > 4 * GIB {
        return Err(invalid(
            scope,
            "memory_limit",
            format!(
                "{memory_limit} bytes is more than a 32-bit WebAssembly memory can hold (4GiB)"
            ),
        ));
    }
    // A count from 1 to `max` (named `what`, with why it is the bound), or
    // the default.
    let bounded = |key: &str, v: Option<u32>, default: u32, (max, what, why): (u32, &str, &str)| {
        let n: u32 = count(scope, key, v.map(u64::from), u64::from(default))?;
        if n > max {
            return Err(invalid(
                scope,
                key,
                format!("{n} is more than {what} ({max}){why}"),
            ));
        }
        Ok(n)
    };
    let max_concurrent_calls = bounded(
        "max_concurrent_calls",
        r.max_concurrent_calls,
        defaults.max_concurrent_calls,
        (
            max_instances,
            "max_instances",
            "; one adapter could hold every instance",
        ),
    )?;
    let lane_threads = bounded(
        "lane_threads",
        r.lane_threads,
        defaults.lane_threads,
        (
            MAX_LANE_THREADS,
            "the threads one adapter's lane may have",
            "",
        ),
    )?;
    Ok(AdapterLimits {
        lane_threads,
        memory_limit,
        call_timeout: duration(
            scope,
            "call_timeout",
            &r.call_timeout,
            defaults.call_timeout,
            false,
        )?,
        max_concurrent_calls,
        queue_timeout: duration(
            scope,
            "queue_timeout",
            &r.queue_timeout,
            defaults.queue_timeout,
            true,
        )?,
    })
}

/// An adapter name as `describe` reports it: `[a-z0-9_-]`, 1 to 64
/// characters.
fn adapter_name(scope: &str, key: &str, name: &str) -> Result<(), ConfigError> {
    if is_adapter_name(name) {
        Ok(())
    } else {
        Err(invalid(
            scope,
            key,
            format!("{name:?} is not an adapter name ([a-z0-9_-], at most 64 characters)"),
        ))
    }
}

/// `[plugins] warm_instances = { name = calls }`: adapter names as
/// `describe` reports them, at least one call each.
fn warm_instances(r: Option<&BTreeMap<String, u32>>) -> Result<BTreeMap<String, u32>, ConfigError> {
    let Some(map) = r else {
        return Ok(BTreeMap::new());
    };
    for (name, &calls) in map {
        adapter_name("[plugins]", "warm_instances", name)?;
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
