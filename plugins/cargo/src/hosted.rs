//! A hosted cargo registry: the remote's own crates, for `cargo publish`,
//! `cargo yank`, and `cargo add`/`build`/`fetch` from it.
//!
//! ```toml
//! # .cargo/config.toml
//! [registries.own]
//! index = "sparse+http://gateway:8080/api/v1/remote/own/"
//! # token: CARGO_REGISTRIES_OWN_TOKEN="Bearer <token>" (cargo sends it as is)
//! ```
//!
//! | request | answer |
//! | --- | --- |
//! | `GET config.json` | `{"dl": …, "api": …}` at the gateway, as the client reached it |
//! | `GET` an index file | the crate's index lines, one per published version, written by the gateway |
//! | `GET -/dl/{crate}/{version}` | the `.crate` |
//! | `PUT api/v1/crates/new` (`cargo publish`) | the `.crate` is taken out of the request by the core (`unpack-body`, never through the adapter) and stored write-once; its sha256 becomes the index line's `cksum`; publishing an existing version is 409 |
//! | `DELETE api/v1/crates/{crate}/{version}/yank`, `PUT …/unyank` | the version's `yanked` flag |
//!
//! **State.** Each crate's index lines are a [`kvmap`] in the key-value
//! store (`index/{name}`, keyed by publish order), so a crate may have
//! thousands of versions; changes to one crate run one at a time under a
//! lock in the key-value store (`kvlock`; 503 to a change that finds it
//! taken). The first publish fixes the crate's spelling; a
//! name that differs only in case is refused. Errors are in the registry
//! API's form (`{"errors": [{"detail": …}]}`), which cargo prints.
//! Searching and owners are not served (501).

use crate::{DL_PREFIX, is_crate_name, is_index_path};
use artgate_sdk::kvlock;
use artgate_sdk::kvmap;
use artgate_sdk::prelude::*;
use serde_json::{Map, Value, json};

/// Largest publish metadata (the gateway's `max_request_body_inspect`
/// bounds it too).
const META_LIMIT: u32 = 1 << 20;

/// Plans a request on a hosted cargo remote.
pub fn plan(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    let segs: Vec<&str> = req.path.split('/').collect();
    let m = req.method.as_str();
    let result = match (m, segs.as_slice()) {
        ("GET" | "HEAD", ["config.json"]) => config(host, remote),
        ("GET" | "HEAD", ["-", "dl", krate, version]) => download(host, krate, version),
        ("GET" | "HEAD", _) if is_index_path(&req.path) => index_file(host, &req.path),
        ("PUT", ["api", "v1", "crates", "new"]) => publish(host, req),
        ("DELETE", ["api", "v1", "crates", krate, version, "yank"]) => {
            lock(host, krate, req).and_then(|_held| set_yanked(host, krate, version, true))
        }
        ("PUT", ["api", "v1", "crates", krate, version, "unyank"]) => {
            lock(host, krate, req).and_then(|_held| set_yanked(host, krate, version, false))
        }
        (_, ["api", ..]) => Err(api_error(
            501,
            format!(
                "{m} /{} is not served by this registry (it takes publish, yank and unyank).",
                req.path
            ),
        )),
        _ => Err(api_error(
            404,
            format!("'/{}' is not part of this cargo registry.", req.path),
        )),
    };
    result.unwrap_or_else(ApiError::answer)
}

/// A registry API error: a status and what was wrong.
struct ApiError {
    status: u16,
    detail: String,
}

impl ApiError {
    /// The answer, in the form cargo prints (`{"errors": [{"detail": …}]}`).
    fn answer(self) -> Decision {
        json_answer(self.status, &json!({"errors": [{"detail": self.detail}]}))
    }
}

fn api_error(status: u16, detail: String) -> ApiError {
    ApiError { status, detail }
}

fn json_answer(status: u16, body: &Value) -> Decision {
    Decision::respond(
        DirectResponse::new(status, body.to_string())
            .header("content-type", "application/json")
            .header("cache-control", "no-cache"),
    )
}

/// Takes the crate's lock for this request: changes to one crate's index
/// run one at a time. A request that finds it taken gets 503; a lock whose
/// holder failed expires after 30 s.
fn lock<'a>(host: &'a dyn Host, name: &str, req: &Request) -> Result<kvlock::Held<'a>, ApiError> {
    let key = format!("lock/{}", name.to_ascii_lowercase());
    kvlock::lock_or_busy(host, &key, &req.id, 30, &format!("Crate '{name}'"))
        .map_err(|r| api_error(r.status, r.message))
}

fn map_key(name: &str) -> String {
    format!("index/{}", name.to_ascii_lowercase())
}

/// The crate's index lines, in publish order.
fn lines(host: &dyn Host, name: &str) -> Vec<Value> {
    kvmap::entries(host, &map_key(name))
        .into_iter()
        .filter_map(|(_, line)| serde_json::from_str(&line).ok())
        .collect()
}

/// Stores the crate's index lines.
fn store_lines(host: &dyn Host, name: &str, lines: &[Value]) {
    let map = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("{i:08}"), l.to_string()))
        .collect();
    kvmap::store(host, &map_key(name), &map);
}

fn config(host: &dyn Host, remote: &RemoteInfo) -> Result<Decision, ApiError> {
    let gateway = host.gateway_url();
    if gateway.is_empty() {
        return Err(api_error(
            400,
            "The gateway cannot name itself for this request (no usable Host header); set server.public_url.".into(),
        ));
    }
    let base = format!("{gateway}/api/v1/remote/{}", remote.name);
    Ok(json_answer(
        200,
        &json!({"dl": format!("{base}/{DL_PREFIX}{{crate}}/{{version}}"), "api": base}),
    ))
}

fn index_file(host: &dyn Host, path: &str) -> Result<Decision, ApiError> {
    let name = path.rsplit('/').next().unwrap_or_default();
    let lines = lines(host, name);
    if lines.is_empty() {
        return Err(api_error(
            404,
            format!("Crate '{name}' is not in this registry."),
        ));
    }
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    Ok(Decision::respond(
        DirectResponse::new(200, body)
            .header("content-type", "text/plain; charset=utf-8")
            .header("cache-control", "no-cache"),
    ))
}

fn download(host: &dyn Host, krate: &str, version: &str) -> Result<Decision, ApiError> {
    let listed = is_crate_name(krate)
        && lines(host, krate)
            .iter()
            .any(|l| l["vers"].as_str() == Some(version));
    if !listed {
        return Err(api_error(
            404,
            format!("Crate '{krate}' has no version {version} in this registry."),
        ));
    }
    Ok(Decision::hosted_read(
        HostedRead::new(crate_key(krate, version))
            .content_type("application/gzip")
            .header(
                "content-disposition",
                format!("attachment; filename=\"{krate}-{version}.crate\""),
            ),
    ))
}

/// Where a `.crate` is stored: the download path, with the name in lower
/// case.
fn crate_key(krate: &str, version: &str) -> String {
    format!("{DL_PREFIX}{}/{version}", krate.to_ascii_lowercase())
}

/// Whether `v` is a version cargo could have written: semver characters.
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b))
}

/// `cargo publish`: a 32-bit length and the metadata JSON, then a 32-bit
/// length and the `.crate`.
fn publish(host: &dyn Host, req: &Request) -> Result<Decision, ApiError> {
    let bad = |detail: String| api_error(400, detail);
    let unpacked = host
        .unpack_body(&BodyLayout::LengthPrefixed(vec![1]), META_LIMIT)
        .map_err(|r| api_error(r.status, r.message))?;
    let meta = unpacked
        .rest
        .get(4..)
        .and_then(|m| serde_json::from_slice::<Value>(m).ok())
        .ok_or_else(|| bad("The publish request's metadata is not JSON.".into()))?;
    let [file] = unpacked.files.as_slice() else {
        return Err(bad("The publish request carries no .crate file.".into()));
    };
    let name = meta["name"].as_str().unwrap_or_default().to_owned();
    let vers = meta["vers"].as_str().unwrap_or_default().to_owned();
    if !is_crate_name(&name) || name.len() > 64 || !is_version(&vers) {
        return Err(bad(format!(
            "The crate name {name:?} or version {vers:?} is not valid."
        )));
    }
    let _held = lock(host, &name, req)?;
    let mut lines = lines(host, &name);
    if let Some(first) = lines.first().and_then(|l| l["name"].as_str())
        && first != name
    {
        return Err(bad(format!(
            "This registry has the crate as '{first}'; publish it under that name."
        )));
    }
    let exists = || {
        api_error(
            409,
            format!("Crate version `{name}@{vers}` is already uploaded."),
        )
    };
    if lines
        .iter()
        .any(|l| l["vers"].as_str() == Some(vers.as_str()))
    {
        return Err(exists());
    }
    let line = index_line(
        &meta,
        &name,
        &vers,
        file.sha256.trim_start_matches("sha256:"),
    )
    .map_err(bad)?;
    // Refused before the commit, which would take the version for good.
    if !kvmap::fits(&format!("{:08}", lines.len()), &line.to_string()) {
        return Err(api_error(
            413,
            format!(
                "The index line of {name} {vers} is larger than this registry keeps (about 60 kB)."
            ),
        ));
    }
    host.hosted_commit(0, &crate_key(&name, &vers), Some("application/gzip"), true)
        .map_err(|r| {
            if r.status == 409 {
                exists()
            } else {
                api_error(r.status, r.message)
            }
        })?;
    lines.push(line);
    store_lines(host, &name, &lines);
    info!("published {name}@{vers} ({} bytes)", file.size);
    Ok(json_answer(
        200,
        &json!({"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}}),
    ))
}

/// The index line of a publish: dependencies renamed as the index spells
/// them, features split into `features` and `features2` (the newer
/// syntax), `cksum` the `.crate`'s sha256.
fn index_line(meta: &Value, name: &str, vers: &str, cksum: &str) -> Result<Value, String> {
    let mut deps = Vec::new();
    for d in meta["deps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let dep_name = d["name"].as_str().ok_or("A dependency has no name.")?;
        let (index_name, package) = match d["explicit_name_in_toml"].as_str() {
            Some(renamed) => (renamed, Some(dep_name)),
            None => (dep_name, None),
        };
        deps.push(json!({
            "name": index_name,
            "req": d["version_req"].as_str().unwrap_or("*"),
            "features": d["features"].as_array().cloned().unwrap_or_default(),
            "optional": d["optional"].as_bool().unwrap_or(false),
            "default_features": d["default_features"].as_bool().unwrap_or(true),
            "target": d["target"].clone(),
            "kind": d["kind"].as_str().unwrap_or("normal"),
            "registry": d["registry"].clone(),
            "package": package,
        }));
    }
    let mut features = Map::new();
    let mut features2 = Map::new();
    if let Some(all) = meta["features"].as_object() {
        for (k, v) in all {
            let new_syntax = v.as_array().is_some_and(|vs| {
                vs.iter()
                    .filter_map(Value::as_str)
                    .any(|s| s.starts_with("dep:") || s.contains("?/"))
            });
            if new_syntax {
                features2.insert(k.clone(), v.clone());
            } else {
                features.insert(k.clone(), v.clone());
            }
        }
    }
    let mut line = json!({
        "name": name,
        "vers": vers,
        "deps": deps,
        "cksum": cksum,
        "features": features,
        "yanked": false,
        "links": meta["links"].clone(),
    });
    if !features2.is_empty() {
        line["features2"] = Value::Object(features2);
        line["v"] = json!(2);
    }
    if let Some(rv) = meta["rust_version"].as_str() {
        line["rust_version"] = json!(rv);
    }
    Ok(line)
}

/// `cargo yank` and `cargo yank --undo`.
fn set_yanked(
    host: &dyn Host,
    krate: &str,
    version: &str,
    yanked: bool,
) -> Result<Decision, ApiError> {
    let mut lines = lines(host, krate);
    let Some(line) = lines
        .iter_mut()
        .find(|l| l["vers"].as_str() == Some(version))
    else {
        return Err(api_error(
            404,
            format!("Crate '{krate}' has no version {version} in this registry."),
        ));
    };
    line["yanked"] = json!(yanked);
    store_lines(host, krate, &lines);
    Ok(json_answer(200, &json!({"ok": true})))
}

#[cfg(test)]
mod tests;
