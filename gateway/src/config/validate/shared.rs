//! `[shared]`: the bucket a cluster shares (docs/cluster.md).

use super::secrets::one_secret;
use super::*;

/// Check `[shared]`: the `s3://` URL, an endpoint that is a plain
/// `http(s)` URL (`http` only with `allow_http`), the key pair, the node
/// name.
pub(super) fn validate_shared(cx: &Cx<'_>, r: &RawShared) -> Result<SharedConfig, ConfigError> {
    const S: &str = "[shared]";
    let url = r
        .url
        .as_deref()
        .ok_or_else(|| invalid(S, "url", "is required: s3://BUCKET or s3://BUCKET/PREFIX"))?;
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        invalid(
            S,
            "url",
            format!("{url:?} is not an s3://BUCKET/PREFIX URL"),
        )
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(invalid(
            S,
            "url",
            format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
            ),
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..")
        || prefix.contains("//")
        || prefix.chars().any(|c| c.is_control() || c == '\\')
    {
        return Err(invalid(
            S,
            "url",
            format!("the prefix {prefix:?} must be plain path segments"),
        ));
    }
    let allow_http = r.allow_http.unwrap_or(false);
    let endpoint = match r.endpoint.as_deref() {
        None => None,
        Some(e) => {
            let (url, uri) = http_url("endpoint", e)?;
            if uri.scheme_str() == Some("http") && !allow_http {
                return Err(invalid(
                    S,
                    "endpoint",
                    "is plain http: set allow_http = true to use it (credentials and data cross the network unencrypted)",
                ));
            }
            Some(url)
        }
    };
    let access_key_id = match r.access_key_id.as_deref() {
        Some(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_graphic()) => k.to_owned(),
        Some(_) => {
            return Err(invalid(
                S,
                "access_key_id",
                "must be printable ASCII without spaces",
            ));
        }
        None => return Err(invalid(S, "access_key_id", "is required")),
    };
    let secret_access_key = one_secret(
        cx,
        S,
        [
            "secret_access_key",
            "secret_access_key_env",
            "secret_access_key_file",
        ],
        r.secret_access_key.as_ref(),
        r.secret_access_key_env.as_deref(),
        r.secret_access_key_file.as_deref(),
    )?
    .ok_or_else(|| {
        invalid(
            S,
            "secret_access_key_env",
            "is required: set one of secret_access_key, secret_access_key_env, secret_access_key_file",
        )
    })?;
    let node = match r.node.as_deref() {
        Some(n) => n.to_owned(),
        None => host_name(),
    };
    if node.is_empty()
        || node.len() > 64
        || !node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(
            S,
            "node",
            format!("{node:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
        ));
    }
    let advertise = match r.advertise.as_deref() {
        None => None,
        Some(a) => {
            let (url, uri) = http_url("advertise", a)?;
            if !uri.path().trim_end_matches('/').is_empty() {
                return Err(invalid(
                    S,
                    "advertise",
                    format!("{a:?} must be a base URL, without a path"),
                ));
            }
            Some(url)
        }
    };
    let cluster_secret = one_secret(
        cx,
        S,
        [
            "cluster_secret",
            "cluster_secret_env",
            "cluster_secret_file",
        ],
        r.cluster_secret.as_ref(),
        r.cluster_secret_env.as_deref(),
        r.cluster_secret_file.as_deref(),
    )?;
    if let Some(secret) = &cluster_secret
        && !secret.0.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid(
            S,
            "cluster_secret",
            "must be printable ASCII without spaces (it is sent in an HTTP header)",
        ));
    }
    let timeout = duration(S, "timeout", &r.timeout, Duration::from_secs(10), false)?;
    let gc_grace = duration(S, "gc_grace", &r.gc_grace, Duration::from_secs(3600), false)?;
    if gc_grace < 2 * timeout {
        return Err(invalid(
            S,
            "gc_grace",
            format!(
                "{} must be at least twice timeout ({}): a node writes a blob's record up to a timeout after it checked the blob",
                humantime::format_duration(gc_grace),
                humantime::format_duration(timeout)
            ),
        ));
    }
    let max_size = opt_size(S, "max_size", &r.max_size)?;
    Ok(SharedConfig {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        endpoint,
        region: r.region.clone().unwrap_or_else(|| "us-east-1".to_owned()),
        access_key_id,
        secret_access_key,
        allow_http,
        node,
        timeout,
        advertise,
        lease_ttl: duration(S, "lease_ttl", &r.lease_ttl, Duration::from_secs(30), false)?,
        cluster_secret,
        max_size,
        gc_every: duration(S, "gc_every", &r.gc_every, Duration::from_secs(600), false)?,
        gc_grace,
    })
}

/// `value` of `[shared]`'s `key` as an `http://` or `https://` URL with a
/// host: without its trailing `/`, and parsed.
fn http_url(key: &str, value: &str) -> Result<(String, http::Uri), ConfigError> {
    const S: &str = "[shared]";
    let uri: http::Uri = value
        .parse()
        .map_err(|_| invalid(S, key, format!("{value:?} is not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(invalid(
            S,
            key,
            format!("{value:?} must be an http:// or https:// URL with a host"),
        ));
    }
    Ok((value.trim_end_matches('/').to_owned(), uri))
}

/// The host name (`node`'s default), `"artgate"` when it cannot be read.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if rc == 0 && !h.is_empty() => h.split('.').next().unwrap_or(h).to_owned(),
        _ => "artgate".to_owned(),
    }
}
