//! Unknown keys: a pass over the parsed document before serde, so the
//! error names the key, its table, the remote and the line, and suggests
//! the key that was probably meant.

use super::*;

// ---------------------------------------------------------------------------
// Unknown keys: a pass over the parsed document before serde, so the error
// names the table (and the remote) and the line, and suggests a fix.
// ---------------------------------------------------------------------------

const ROOT_KEYS: &[&str] = &[
    "server", "storage", "plugins", "upstream", "remote", "token", "shared",
];
const SHARED_KEYS: &[&str] = &[
    "url",
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "secret_access_key_env",
    "secret_access_key_file",
    "allow_http",
    "node",
    "timeout",
    "advertise",
    "lease_ttl",
    "cluster_secret",
    "cluster_secret_env",
    "cluster_secret_file",
    "max_size",
    "gc_every",
    "gc_grace",
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
    "body_read_timeout",
    "shutdown_grace",
    "max_request_body_inspect",
    "public_url",
];
const STORAGE_KEYS: &[&str] = &[
    "dir",
    "max_size",
    "memory_cache",
    "memory_cache_max_object",
    "min_free",
    "index_cache_entries",
];
const PLUGINS_KEYS: &[&str] = &[
    "dir",
    "cache_dir",
    "memory_limit",
    "call_timeout",
    "reload_debounce",
    "max_instances",
    "max_concurrent_calls",
    "queue_timeout",
    "http_timeout",
    "http_max_body",
    "max_file_size",
    "warm_instances",
    "lane_threads",
    "adapter",
];
const ADAPTER_LIMIT_KEYS: &[&str] = &[
    "memory_limit",
    "call_timeout",
    "max_concurrent_calls",
    "queue_timeout",
    "lane_threads",
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
    "no_cache_revalidates_404",
    "follow_redirects",
    "auth_realms",
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
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
pub(super) fn check_keys(text: &str) -> Result<(), ConfigError> {
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
            "plugins" => {
                check_table(text, v, PLUGINS_KEYS, || "[plugins]".into())?;
                if let DeValue::Table(plugins) = v.get_ref()
                    && let Some((_, adapters)) = plugins
                        .iter()
                        .find(|(k, _)| k.get_ref().as_ref() == "adapter")
                    && let DeValue::Table(adapters) = adapters.get_ref()
                {
                    for (name, limits) in adapters.iter() {
                        let name = name.get_ref().as_ref();
                        check_table(text, limits, ADAPTER_LIMIT_KEYS, || {
                            format!("[plugins.adapter.{name}]")
                        })?;
                    }
                }
            }
            "upstream" => check_table(text, v, UPSTREAM_KEYS, || "[upstream]".into())?,
            "shared" => check_table(text, v, SHARED_KEYS, || "[shared]".into())?,
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
