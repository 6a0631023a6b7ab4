//! The configuration file as written: serde structs with unknown fields
//! denied, and the scalar forms (sizes, durations, upstream lists) they accept.

use super::*;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

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
    /// `[shared]`.
    pub shared: Option<RawShared>,
}

/// `[shared]` as written; see [`SharedConfig`](super::SharedConfig).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShared {
    /// `url`: `s3://bucket` or `s3://bucket/prefix`.
    pub url: Option<String>,
    /// `endpoint`: the S3 endpoint (`http://127.0.0.1:8333`); none: AWS.
    pub endpoint: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `access_key_id`.
    pub access_key_id: Option<String>,
    /// `secret_access_key`: literal (prefer the `_env`/`_file` keys).
    pub secret_access_key: Option<Secret>,
    /// `secret_access_key_env`.
    pub secret_access_key_env: Option<String>,
    /// `secret_access_key_file`.
    pub secret_access_key_file: Option<PathBuf>,
    /// `allow_http`: an `http://` endpoint is allowed.
    pub allow_http: Option<bool>,
    /// `node`: this node's name in the cluster.
    pub node: Option<String>,
    /// `timeout`: longest wait for one bucket request's answer.
    pub timeout: Option<RawDuration>,
    /// `advertise`: the URL other nodes reach this node at.
    pub advertise: Option<String>,
    /// `lease_ttl`: how long a fetch lease lasts without renewal.
    pub lease_ttl: Option<RawDuration>,
    /// `cluster_secret`: literal (prefer the `_env`/`_file` keys).
    pub cluster_secret: Option<Secret>,
    /// `cluster_secret_env`.
    pub cluster_secret_env: Option<String>,
    /// `cluster_secret_file`.
    pub cluster_secret_file: Option<PathBuf>,
    /// `max_size`: the bucket's size limit.
    pub max_size: Option<RawSize>,
    /// `gc_every`: how often the cluster's collection runs.
    pub gc_every: Option<RawDuration>,
    /// `gc_grace`: how old an unreferenced blob must be to be deleted.
    pub gc_grace: Option<RawDuration>,
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
    /// `body_read_timeout`.
    pub body_read_timeout: Option<RawDuration>,
    /// `shutdown_grace`.
    pub shutdown_grace: Option<RawDuration>,
    /// `max_request_body_inspect`.
    pub max_request_body_inspect: Option<RawSize>,
    /// `public_url`.
    pub public_url: Option<String>,
}

/// `[storage]` as written; see [`StorageConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// `dir`.
    pub dir: Option<PathBuf>,
    /// `max_size`.
    pub max_size: Option<RawSize>,
    /// `memory_cache`.
    pub memory_cache: Option<RawSize>,
    /// `memory_cache_max_object`.
    pub memory_cache_max_object: Option<RawSize>,
    /// `index_cache_entries`.
    pub index_cache_entries: Option<u64>,
    /// `min_free`.
    pub min_free: Option<RawSize>,
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
    /// `max_concurrent_calls`.
    pub max_concurrent_calls: Option<u32>,
    /// `queue_timeout`.
    pub queue_timeout: Option<RawDuration>,
    /// `http_timeout`.
    pub http_timeout: Option<RawDuration>,
    /// `http_max_body`.
    pub http_max_body: Option<RawSize>,
    /// `max_file_size`.
    pub max_file_size: Option<RawSize>,
    /// `warm_instances`.
    pub warm_instances: Option<BTreeMap<String, u32>>,
    /// `lane_threads`.
    pub lane_threads: Option<u32>,
    /// `[plugins.adapter.NAME]` tables.
    pub adapter: Option<BTreeMap<String, RawAdapterLimits>>,
}

/// `[plugins.adapter.NAME]` as written; see [`AdapterLimits`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdapterLimits {
    /// `memory_limit`.
    pub memory_limit: Option<RawSize>,
    /// `call_timeout`.
    pub call_timeout: Option<RawDuration>,
    /// `max_concurrent_calls`.
    pub max_concurrent_calls: Option<u32>,
    /// `queue_timeout`.
    pub queue_timeout: Option<RawDuration>,
    /// `lane_threads`.
    pub lane_threads: Option<u32>,
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
    /// `no_cache_revalidates_404`.
    pub no_cache_revalidates_404: Option<bool>,
    /// `follow_redirects`.
    pub follow_redirects: Option<RawRedirects>,
    /// `auth_realms`: token services on other hosts the upstream may name.
    pub auth_realms: Option<Vec<String>>,
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
