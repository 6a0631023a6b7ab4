//! Remotes: the upstream URLs and mirrors, the `allow` patterns, each
//! remote's keys by mode, and the members of virtual remotes.

use super::secrets::{first_token_key, validate_credentials};
use super::*;

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
            let uri = base_url(raw.split(['?', '#']).next().unwrap_or(raw))
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

/// An upstream URL of a remote of type `package`: a base URL, or for a
/// `cas` remote also `grpc://` (h2c) or `grpcs://` (TLS), kept as `http` /
/// `https`; its path is then the upstream's REAPI instance name.
fn upstream_url(package: &str, raw: &str) -> Result<http::Uri, String> {
    let lower = raw.to_ascii_lowercase();
    if package == "cas" {
        if let Some(rest) = lower.strip_prefix("grpc://").map(|_| &raw[7..]) {
            return base_url(&format!("http://{rest}"));
        }
        if let Some(rest) = lower.strip_prefix("grpcs://").map(|_| &raw[8..]) {
            return base_url(&format!("https://{rest}"));
        }
    }
    base_url(raw)
}

/// A base URL (an upstream, the gateway's `public_url`): `http` or
/// `https`, a host, an optional port and path, no credentials, query or
/// fragment; the path without its trailing `/`.
pub(super) fn base_url(raw: &str) -> Result<http::Uri, String> {
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
            "{raw:?} has a fragment (#...); base URLs take none"
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
        return Err(format!("{raw:?} has a query (?...); base URLs take none"));
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

pub(super) fn validate_remote(
    cx: &Cx<'_>,
    i: usize,
    r: &RawRemote,
) -> Result<RemoteConfig, ConfigError> {
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
            vec![upstream_url(package, u).map_err(|m| invalid(scope, "upstream", m))?]
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
                    upstream_url(package, u)
                        .map_err(|m| invalid(scope, &format!("upstream[{j}]"), m))
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
    let max_size = opt_size(scope, "max_size", &r.max_size)?;
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
        no_cache_revalidates_404: r.no_cache_revalidates_404.unwrap_or(true),
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
pub(super) fn validate_virtuals(remotes: &[RemoteConfig]) -> Result<(), ConfigError> {
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
