//! The built-in `go` adapter: a caching Go module proxy.
//!
//! Package type `go`. A remote is a `GOPROXY` for the `go` command
//! (`GOPROXY=http://gateway/api/v1/remote/{remote}`) in front of another
//! module proxy (`https://proxy.golang.org`, Athens, a GOPROXY directory
//! served over HTTP). Requests follow the GOPROXY protocol; `{module}` and
//! `{version}` are case-encoded as the protocol says (`github.com/!azure`
//! for `github.com/Azure`):
//!
//! | path | class | content type |
//! | --- | --- | --- |
//! | `{module}/@v/list` | mutable | `text/plain; charset=utf-8` |
//! | `{module}/@latest` | mutable | `application/json` |
//! | `{module}/@v/{version}.info` | immutable for a canonical semantic version, else mutable (a query such as `master`) | `application/json` |
//! | `{module}/@v/{version}.mod` | as `.info` | `text/plain; charset=utf-8` |
//! | `{module}/@v/{version}.zip` | as `.info` | `application/zip` |
//! | `sumdb/{name}/supported`, `…/latest`, `…/lookup/{module}@{version}` | mutable | the upstream's |
//! | `sumdb/{name}/tile/…` | immutable | the upstream's |
//!
//! Each is fetched from the same path on the remote's upstreams and cached
//! under it. Mutable entries live for the remote's `mutable_ttl`; a path
//! that one of the remote's `mutable_patterns` matches is mutable whatever
//! the table says. The `sumdb/` paths proxy the checksum database through
//! the upstream proxy (as `proxy.golang.org` does for `sum.golang.org`), so
//! `GOSUMDB` verification works through the gateway; an upstream that does
//! not proxy it answers `supported` with 404, and `go` then asks the
//! checksum database directly.
//!
//! **Not found stays not found.** `go` probes the parents of a package's
//! import path as module paths and treats only 404 and 410 as "no such
//! module"; every other status stops it. An upstream 404 or 410 is answered
//! with 404 and cached for the remote's `negative_ttl`; a path that is not
//! part of the protocol is a 404 too, and one whose case-encoding is broken
//! (an upper-case letter, `!` not before a lower-case letter) a 400.
//!
//! The adapter looks at no upstream answer (`accepts_every_response`) and
//! keeps no state. Other methods are refused with 405; hosted remotes with
//! 400 (the adapter only proxies).

use artgate_sdk::prelude::*;

/// The go adapter.
pub struct Go;

impl Adapter for Go {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("go", env!("CARGO_PKG_VERSION"), ["go"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan(&remote, &req)
    }
}

artgate_sdk::export_adapter!(Go, stateless, accepts_every_response);

/// What a GOPROXY path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask<'a> {
    /// `{module}/@v/list`.
    List,
    /// `{module}/@latest`.
    Latest,
    /// `{module}/@v/{version}.{ext}`: the escaped version and the extension.
    File { version: &'a str, ext: Ext },
}

/// The three files of a module version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    Info,
    Mod,
    Zip,
}

/// Plans a request.
fn plan(remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.mode == RemoteMode::Hosted {
        return Decision::reject(
            400,
            format!(
                "Remote '{}' is hosted, but the go adapter only proxies other module proxies; give it an upstream.",
                remote.name
            ),
        );
    }
    if !req.is_read() {
        return Decision::reject(
            405,
            format!(
                "Remote '{}' is a Go module proxy and only answers GET and HEAD, not {}.",
                remote.name, req.method
            ),
        );
    }
    let (class, content_type) = if let Some(rest) = req.path.strip_prefix("sumdb/") {
        match sumdb_class(rest) {
            Some(class) => (class, None),
            None => return not_a_proxy_path(req),
        }
    } else {
        let Some((module, ask)) = parse(&req.path) else {
            return not_a_proxy_path(req);
        };
        if let Err(why) = unescape(module) {
            return Decision::reject(400, format!("Module path '{module}' is {why}."));
        }
        match ask {
            Ask::List => (CacheClass::Mutable, Some("text/plain; charset=utf-8")),
            Ask::Latest => (CacheClass::Mutable, Some("application/json")),
            Ask::File { version, ext } => {
                let version = match unescape(version) {
                    Ok(v) => v,
                    Err(why) => {
                        return Decision::reject(400, format!("Version '{version}' is {why}."));
                    }
                };
                let class = if is_canonical(&version) {
                    CacheClass::Immutable
                } else {
                    CacheClass::Mutable
                };
                let content_type = match ext {
                    Ext::Info => "application/json",
                    Ext::Mod => "text/plain; charset=utf-8",
                    Ext::Zip => "application/zip",
                };
                (class, Some(content_type))
            }
        }
    };
    let class = match remote.classify_or_reject(&req.path) {
        Ok(PathClass::Mutable) => CacheClass::Mutable,
        Ok(PathClass::Immutable | PathClass::Unmatched) => class,
        Err(refusal) => return *refusal,
    };
    // The protocol has no queries: the path alone is the key and the
    // upstream target, so a query cannot split or bust the cache.
    let mut plan = CachePlan::new(req.path.as_str(), class).cache_not_found(true);
    if let Some(ct) = content_type {
        plan = plan.content_type(ct);
    }
    forward_get(format!("/{}", http::encode_path(&req.path)), plan)
}

/// The 404 for a path outside the protocol.
fn not_a_proxy_path(req: &Request) -> Decision {
    Decision::reject(
        404,
        format!(
            "'/{}' is not a Go module proxy path: expected {{module}}/@v/list, {{module}}/@latest, {{module}}/@v/{{version}}.info, .mod or .zip, or sumdb/{{name}}/….",
            req.path
        ),
    )
}

/// Splits a GOPROXY path into the escaped module path and what it asks
/// for; `None` for any other path.
fn parse(path: &str) -> Option<(&str, Ask<'_>)> {
    if let Some(module) = path.strip_suffix("/@latest") {
        return (!module.is_empty()).then_some((module, Ask::Latest));
    }
    let (module, file) = path.rsplit_once("/@v/")?;
    if module.is_empty() || file.contains('/') {
        return None;
    }
    if file == "list" {
        return Some((module, Ask::List));
    }
    let (version, ext) = file.rsplit_once('.')?;
    let ext = match ext {
        "info" => Ext::Info,
        "mod" => Ext::Mod,
        "zip" => Ext::Zip,
        _ => return None,
    };
    (!version.is_empty()).then_some((module, Ask::File { version, ext }))
}

/// The class of a `sumdb/{name}/…` path (given without `sumdb/`); `None`
/// when it is not one the checksum database protocol has.
fn sumdb_class(rest: &str) -> Option<CacheClass> {
    let (name, what) = rest.split_once('/')?;
    let host_like = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
    };
    if !host_like(name) {
        return None;
    }
    match what {
        "supported" | "latest" => Some(CacheClass::Mutable),
        _ if what
            .strip_prefix("lookup/")
            .is_some_and(|m| m.contains('@')) =>
        {
            Some(CacheClass::Mutable)
        }
        // Tiles, full or partial (`…/x001/234.p/5`), never change once
        // published.
        _ if what.starts_with("tile/") && what.len() > "tile/".len() => Some(CacheClass::Immutable),
        _ => None,
    }
}

/// Decodes the protocol's case-encoding (`!a` is `A`): the module path or
/// version it names, or why it is not a valid encoding.
fn unescape(escaped: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if bang {
            if !c.is_ascii_lowercase() {
                return Err(
                    "not case-encoded correctly ('!' must come before a lower-case letter)",
                );
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return Err(
                "not case-encoded (upper-case letters are written as '!' and the lower-case letter)",
            );
        } else if c.is_ascii_alphanumeric() || "-._~/+".contains(c) {
            out.push(c);
        } else {
            return Err(
                "not a valid module path or version (a character outside letters, digits and -._~/+)",
            );
        }
    }
    if bang {
        return Err("not case-encoded correctly (it ends in '!')");
    }
    if out.split('/').any(str::is_empty) {
        return Err("not a valid module path or version (an empty path element)");
    }
    Ok(out)
}

/// Whether `v` is a canonical semantic version as Go writes them:
/// `vMAJOR.MINOR.PATCH`, an optional pre-release, and no build metadata
/// but `+incompatible`. Such a version names the same files forever; any
/// other name (a branch, a commit prefix) is a query whose answer moves.
fn is_canonical(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let rest = rest.strip_suffix("+incompatible").unwrap_or(rest);
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |n: &str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    let mut parts = core.split('.');
    let three = (0..3).all(|_| parts.next().is_some_and(numeric)) && parts.next().is_none();
    let pre_ok = pre.is_none_or(|p| {
        p.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        })
    });
    three && pre_ok
}

#[cfg(test)]
mod tests;
