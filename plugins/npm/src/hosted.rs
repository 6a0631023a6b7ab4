//! Hosted npm: a registry of the remote's own packages, for `npm publish`,
//! `npm install`, `npm view`, `npm dist-tag` and `npm unpublish`.
//!
//! | request | answer |
//! | --- | --- |
//! | `PUT {name}` with a tarball attached (`npm publish`) | the tarball, taken out of the JSON by the core (`unpack-body`, never through the adapter) and checked against the version's `dist.integrity` or `shasum`, is stored write-once as `{name}/-/{file}`; the version's manifest goes into the key-value store; publishing an existing version is 409 |
//! | `PUT {name}` without one (`npm deprecate`) | the manifests of versions the package has are replaced (their `dist` kept) |
//! | `GET {name}` | the packument, built from the stored manifests, with tarball links at the gateway |
//! | `GET {name}/-/{file}` | the tarball, while its version is published |
//! | `GET`, `PUT`, `DELETE` `-/package/{name}/dist-tags[/{tag}]` | the dist-tags (`npm dist-tag ls/add/rm`) |
//! | `PUT {name}/-rev/{rev}` | the packument without some versions (`npm unpublish {name}@{version}`): those versions are gone |
//! | `DELETE {name}/-rev/{rev}` | the whole package is gone (`npm unpublish {name}`, or its last version) |
//! | `DELETE {name}/-/{file}/-rev/{rev}` | the tarball of an unpublished version is deleted |
//!
//! **State.** `index/{name}` in the key-value store holds the versions
//! (with their publish times) and the dist-tags; `manifest/{name}/{v}` each
//! version's manifest (its `readme` dropped: at most 64 KiB each). A
//! tarball is served only while the index lists its version, so a
//! package unpublished whole is gone even though its tarballs stay stored
//! (and count against the quota) until deleted one by one. An unpublished
//! version cannot be published again (its tarball key is taken), as on
//! npmjs.org. Two publishes of different versions of one package at the
//! same moment may lose one version from the index (the key-value store
//! has no compare-and-swap); the index is read back after each write and
//! merged again if another publish overwrote it.

use crate::packument::Checksum;
use crate::{Name, is_name_part};
use artgate_sdk::prelude::*;
use serde_json::{Map, Value, json};

/// Largest publish body without its tarball (the gateway's
/// `max_request_body_inspect` bounds it too).
const REST_LIMIT: u32 = 16 << 20;

/// Largest stored manifest (a key-value value).
const MANIFEST_LIMIT: usize = 60 << 10;

/// What a request on a hosted npm remote asks for.
#[derive(Debug, PartialEq, Eq)]
enum Op<'a> {
    /// `{name}`.
    Package(Name<'a>),
    /// `{name}/-/{file}`.
    Tarball(Name<'a>, &'a str),
    /// `{name}/-/{file}/-rev/{rev}`.
    TarballRev(Name<'a>, &'a str),
    /// `{name}/-rev/{rev}`.
    Rev(Name<'a>),
    /// `-/package/{name}/dist-tags[/{tag}]`.
    DistTags(Name<'a>, Option<&'a str>),
    /// `-/ping`.
    Ping,
}

/// The package name at the start of `segs`: its length in segments.
fn name_of<'a>(path: &'a str, segs: &[&str]) -> Option<(Name<'a>, usize)> {
    let first = segs.first()?;
    if let Some(scope) = first.strip_prefix('@') {
        let second = segs.get(1)?;
        (is_name_part(scope) && is_name_part(second))
            .then(|| (Name(&path[..first.len() + 1 + second.len()]), 2))
    } else {
        is_name_part(first).then(|| (Name(&path[..first.len()]), 1))
    }
}

fn parse(path: &str) -> Option<Op<'_>> {
    if path == "-/ping" {
        return Some(Op::Ping);
    }
    if let Some(rest) = path.strip_prefix("-/package/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let (name, n) = name_of(rest, &segs)?;
        return match &segs[n..] {
            ["dist-tags"] => Some(Op::DistTags(name, None)),
            ["dist-tags", tag] if !tag.is_empty() => Some(Op::DistTags(name, Some(tag))),
            _ => None,
        };
    }
    let segs: Vec<&str> = path.split('/').collect();
    let (name, n) = name_of(path, &segs)?;
    match &segs[n..] {
        [] => Some(Op::Package(name)),
        ["-", file] if !file.is_empty() => Some(Op::Tarball(name, file)),
        ["-", file, "-rev", _] if !file.is_empty() => Some(Op::TarballRev(name, file)),
        ["-rev", _] => Some(Op::Rev(name)),
        _ => None,
    }
}

/// Plans a request on a hosted npm remote.
pub fn plan(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    let Some(op) = parse(&req.path) else {
        return Decision::reject(
            404,
            format!(
                "'/{}' is not a path of a hosted npm registry: expected a package name, a tarball under {{name}}/-/, or -/package/{{name}}/dist-tags.",
                req.path
            ),
        );
    };
    let m = req.method.as_str();
    let result = match (m, op) {
        ("GET" | "HEAD", Op::Ping) => Ok(ok_json(200, json!({}))),
        ("GET" | "HEAD", Op::Package(name)) => packument(host, remote, name),
        ("PUT", Op::Package(name)) => publish(host, name),
        ("GET" | "HEAD", Op::Tarball(name, file)) => tarball(host, name, file),
        ("DELETE", Op::TarballRev(name, file)) => delete_tarball(host, name, file),
        ("PUT", Op::Rev(name)) => match &req.body {
            None => Ok(Decision::read_body(REST_LIMIT)),
            Some(body) => unpublish_versions(host, name, body),
        },
        ("DELETE", Op::Rev(name)) => unpublish_all(host, name),
        ("GET" | "HEAD", Op::DistTags(name, None)) => read_index(host, name).and_then(|i| {
            i.map(|index| ok_json(200, index.tags))
                .ok_or_else(|| no_package(name))
        }),
        ("PUT", Op::DistTags(name, Some(tag))) => match &req.body {
            None => Ok(Decision::read_body(1024)),
            Some(body) => set_tag(host, name, tag, body),
        },
        ("DELETE", Op::DistTags(name, Some(tag))) => delete_tag(host, name, tag),
        (m, _) => Err(Rejection::new(
            405,
            format!("A hosted npm remote does not take {m} on /{}.", req.path),
        )),
    };
    result.unwrap_or_else(Decision::Reject)
}

/// A JSON answer.
fn ok_json(status: u16, body: Value) -> Decision {
    Decision::respond(
        DirectResponse::new(status, body.to_string())
            .header("content-type", "application/json")
            .header("cache-control", "no-cache"),
    )
}

fn no_package(name: Name<'_>) -> Rejection {
    Rejection::new(404, format!("Package {} is not in this registry.", name.0))
}

/// The versions and dist-tags of a package.
struct Index {
    /// Version → publish time.
    versions: Map<String, Value>,
    /// Tag → version.
    tags: Value,
    /// When the package was first published.
    created: Value,
}

impl Index {
    fn to_json(&self) -> Value {
        json!({"versions": self.versions, "dist-tags": self.tags, "created": self.created})
    }
}

fn index_key(name: Name<'_>) -> String {
    format!("index/{}", name.0)
}

fn manifest_key(name: Name<'_>, version: &str) -> String {
    format!("manifest/{}/{version}", name.0)
}

fn read_index(host: &dyn Host, name: Name<'_>) -> Result<Option<Index>, Rejection> {
    let Some(raw) = host.kv_get(&index_key(name)) else {
        return Ok(None);
    };
    let doc: Value = serde_json::from_slice(&raw)
        .map_err(|_| Rejection::new(500, format!("The stored index of {} is damaged.", name.0)))?;
    Ok(Some(Index {
        versions: doc["versions"].as_object().cloned().unwrap_or_default(),
        tags: match &doc["dist-tags"] {
            Value::Object(t) => Value::Object(t.clone()),
            _ => json!({}),
        },
        created: doc["created"].clone(),
    }))
}

/// Writes the index after `change` applied to the stored one, reading it
/// back and applying `change` again when another writer got in between.
fn update_index(
    host: &dyn Host,
    name: Name<'_>,
    change: impl Fn(&mut Index),
    check: impl Fn(&Index) -> bool,
) -> Result<(), Rejection> {
    for _ in 0..3 {
        let mut index = read_index(host, name)?.unwrap_or(Index {
            versions: Map::new(),
            tags: json!({}),
            created: now(),
        });
        change(&mut index);
        let text = index.to_json().to_string();
        if text.len() > MANIFEST_LIMIT {
            return Err(Rejection::new(
                413,
                format!(
                    "Package {} has more versions than this registry keeps.",
                    name.0
                ),
            ));
        }
        host.kv_set(&index_key(name), text.as_bytes(), 0);
        if read_index(host, name)?.is_some_and(|i| check(&i)) {
            return Ok(());
        }
    }
    Err(Rejection::new(
        503,
        format!(
            "Package {} is being changed by another request; try again.",
            name.0
        ),
    ))
}

/// The time now as npm writes it (RFC 3339), or null.
fn now() -> Value {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Value::String(rfc3339(d.as_secs())))
        .unwrap_or(Value::Null)
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS.000Z`.
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The tarball file name of `version`: `{name without scope}-{version}.tgz`.
fn file_of(name: Name<'_>, version: &str) -> String {
    let base = name.0.rsplit('/').next().unwrap_or(name.0);
    format!("{base}-{version}.tgz")
}

fn tarball_key(name: Name<'_>, file: &str) -> String {
    format!("{}/-/{file}", name.0)
}

/// `npm publish`.
fn publish(host: &dyn Host, name: Name<'_>) -> Result<Decision, Rejection> {
    let unpacked = host.unpack_body(
        &BodyLayout::JsonBase64(vec!["_attachments.*.data".into()]),
        REST_LIMIT,
    )?;
    let bad = |why: String| Rejection::new(400, why);
    let doc: Value = serde_json::from_slice(&unpacked.rest)
        .map_err(|e| bad(format!("The publish body is not JSON: {e}.")))?;
    if doc["name"].as_str() != Some(name.0) {
        return Err(bad(format!(
            "The publish body names package {}, not {}.",
            doc["name"], name.0
        )));
    }
    let versions = doc["versions"]
        .as_object()
        .ok_or_else(|| bad("The publish body has no \"versions\".".into()))?;
    let attachments = doc["_attachments"].as_object().filter(|a| !a.is_empty());
    let Some(attachments) = attachments else {
        return update_manifests(host, name, versions);
    };
    let (version, manifest) = match versions.iter().collect::<Vec<_>>().as_slice() {
        [one] => *one,
        _ => {
            return Err(bad(
                "A publish must carry exactly one version with its tarball.".into(),
            ));
        }
    };
    // npm names the attachment after the package with its scope
    // (`acme-private-1.0.0.tgz`); it is stored at the registry's
    // conventional path (`@acme/private/-/private-1.0.0.tgz`).
    let (attached, attachment) = match attachments.iter().collect::<Vec<_>>().as_slice() {
        [one] if is_name_part(version) => *one,
        _ => {
            return Err(bad(format!(
                "The publish of {}@{version} must attach exactly one tarball.",
                name.0
            )));
        }
    };
    let file = file_of(name, version);
    let origin = format!("_attachments.{attached}.data");
    let Some((index, staged)) = unpacked
        .files
        .iter()
        .enumerate()
        .find(|(_, f)| f.origin == origin)
    else {
        return Err(bad(format!("The attachment {attached} has no data.")));
    };
    if let Some(len) = attachment["length"].as_u64()
        && len != staged.size
    {
        return Err(bad(format!(
            "The attachment {attached} is {} bytes, not the {len} it declares.",
            staged.size
        )));
    }
    let dist = &manifest["dist"];
    let checksum = Checksum::from_dist(dist["integrity"].as_str(), dist["shasum"].as_str())
        .ok_or_else(|| {
            bad(format!(
                "Version {version} has no dist.integrity or dist.shasum."
            ))
        })?;
    let actual = if checksum.algorithm == "sha512" {
        &staged.sha512
    } else {
        &staged.sha1
    };
    if *actual != hex(&checksum.digest) {
        return Err(bad(format!(
            "The tarball of {}@{version} does not match its {}.",
            name.0, checksum.algorithm
        )));
    }
    let stored = stored_manifest(manifest)?;
    if read_index(host, name)?.is_some_and(|i| i.versions.contains_key(version)) {
        return Err(exists(name, version));
    }
    host.hosted_commit(
        index as u32,
        &tarball_key(name, &file),
        Some("application/octet-stream"),
        true,
    )
    .map_err(|r| {
        if r.status == 409 {
            exists(name, version)
        } else {
            r
        }
    })?;
    host.kv_set(&manifest_key(name, version), stored.as_bytes(), 0);
    let tags: Vec<(String, String)> = match &doc["dist-tags"] {
        Value::Object(t) => t
            .iter()
            .filter(|(_, v)| v.as_str() == Some(version))
            .map(|(k, _)| (k.clone(), version.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let time = now();
    update_index(
        host,
        name,
        |i| {
            i.versions.insert(version.clone(), time.clone());
            for (tag, v) in &tags {
                i.tags[tag] = Value::String(v.clone());
            }
            if i.tags.get("latest").is_none() {
                i.tags["latest"] = Value::String(version.clone());
            }
        },
        |i| i.versions.contains_key(version),
    )?;
    info!("published {}@{version}", name.0);
    Ok(ok_json(201, json!({"ok": true, "id": name.0})))
}

fn exists(name: Name<'_>, version: &str) -> Rejection {
    Rejection::new(
        409,
        format!(
            "Version {version} of {} is already published (or was, and was unpublished); publish a new version.",
            name.0
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest as stored: without `readme` (packuments carry none per
/// version) and `dist.tarball` (written when served); at most
/// [`MANIFEST_LIMIT`].
fn stored_manifest(manifest: &Value) -> Result<String, Rejection> {
    let mut m = manifest.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("readme");
        o.remove("readmeFilename");
        o.remove("_attachments");
    } else {
        return Err(Rejection::new(
            400,
            "A version's manifest is not an object.",
        ));
    }
    if let Some(d) = m.get_mut("dist").and_then(Value::as_object_mut) {
        d.remove("tarball");
    }
    let text = m.to_string();
    if text.len() > MANIFEST_LIMIT {
        return Err(Rejection::new(
            413,
            format!(
                "A version's manifest is larger than the {MANIFEST_LIMIT} bytes this registry keeps."
            ),
        ));
    }
    Ok(text)
}

/// A publish without a tarball (`npm deprecate`): the manifests of known
/// versions replaced, their `dist` kept.
fn update_manifests(
    host: &dyn Host,
    name: Name<'_>,
    versions: &Map<String, Value>,
) -> Result<Decision, Rejection> {
    let index = read_index(host, name)?.ok_or_else(|| no_package(name))?;
    for (version, manifest) in versions {
        if !index.versions.contains_key(version) {
            return Err(Rejection::new(
                400,
                format!(
                    "Version {version} of {} is not published; attach its tarball to publish it.",
                    name.0
                ),
            ));
        }
        let Some(old) = host.kv_get(&manifest_key(name, version)) else {
            continue;
        };
        let old: Value = serde_json::from_slice(&old).unwrap_or_default();
        let mut new = manifest.clone();
        new["dist"] = old["dist"].clone();
        let text = stored_manifest(&new)?;
        host.kv_set(&manifest_key(name, version), text.as_bytes(), 0);
    }
    Ok(ok_json(200, json!({"ok": true, "id": name.0})))
}

/// The packument of a hosted package.
fn packument(host: &dyn Host, remote: &RemoteInfo, name: Name<'_>) -> Result<Decision, Rejection> {
    let gateway = host.gateway_url();
    if gateway.is_empty() {
        return Err(Rejection::new(
            400,
            "The gateway cannot name itself for this request (no usable Host header), so it cannot write tarball links; set server.public_url.",
        ));
    }
    let index = read_index(host, name)?.ok_or_else(|| no_package(name))?;
    let mut versions = Map::new();
    let mut time = Map::new();
    for (version, published) in &index.versions {
        let Some(raw) = host.kv_get(&manifest_key(name, version)) else {
            continue;
        };
        let Ok(mut m) = serde_json::from_slice::<Value>(&raw) else {
            continue;
        };
        let path = tarball_key(name, &file_of(name, version));
        m["dist"]["tarball"] = Value::String(format!(
            "{gateway}/api/v1/remote/{}/{}",
            remote.name,
            http::encode_path(&path)
        ));
        versions.insert(version.clone(), m);
        time.insert(version.clone(), published.clone());
    }
    time.insert("created".into(), index.created.clone());
    let modified = time
        .values()
        .filter_map(Value::as_str)
        .max()
        .map(str::to_owned);
    if let Some(m) = modified {
        time.insert("modified".into(), Value::String(m));
    }
    let doc = json!({
        "_id": name.0,
        "name": name.0,
        "_rev": format!("{}-artgate", versions.len()),
        "dist-tags": index.tags,
        "versions": versions,
        "time": time,
    });
    Ok(ok_json(200, doc))
}

/// A tarball, while its version is published.
fn tarball(host: &dyn Host, name: Name<'_>, file: &str) -> Result<Decision, Rejection> {
    let listed = read_index(host, name)?
        .is_some_and(|i| i.versions.keys().any(|v| file_of(name, v) == file));
    if !listed {
        return Err(Rejection::new(
            404,
            format!("{file} is not a published tarball of {}.", name.0),
        ));
    }
    Ok(Decision::hosted_read(
        HostedRead::new(tarball_key(name, file)).content_type("application/octet-stream"),
    ))
}

/// The tarball of a version no longer published.
fn delete_tarball(host: &dyn Host, name: Name<'_>, file: &str) -> Result<Decision, Rejection> {
    if read_index(host, name)?.is_some_and(|i| i.versions.keys().any(|v| file_of(name, v) == file))
    {
        return Err(Rejection::new(
            400,
            format!(
                "{file} belongs to a published version of {}; unpublish it first.",
                name.0
            ),
        ));
    }
    Ok(Decision::hosted_delete(tarball_key(name, file)))
}

/// `npm unpublish {name}@{version}`: the packument without some versions.
fn unpublish_versions(host: &dyn Host, name: Name<'_>, body: &[u8]) -> Result<Decision, Rejection> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| Rejection::new(400, format!("The packument sent is not JSON: {e}.")))?;
    let keep: Vec<String> = doc["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let index = read_index(host, name)?.ok_or_else(|| no_package(name))?;
    let gone: Vec<String> = index
        .versions
        .keys()
        .filter(|v| !keep.contains(v))
        .cloned()
        .collect();
    if keep.is_empty() {
        return unpublish_all(host, name);
    }
    let tags = doc["dist-tags"].clone();
    update_index(
        host,
        name,
        |i| {
            i.versions.retain(|v, _| !gone.contains(v));
            if let Value::Object(t) = &tags {
                i.tags = Value::Object(
                    t.iter()
                        .filter(|(_, v)| v.as_str().is_some_and(|v| i.versions.contains_key(v)))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                );
            }
        },
        |i| gone.iter().all(|v| !i.versions.contains_key(v)),
    )?;
    for v in &gone {
        host.kv_delete(&manifest_key(name, v));
    }
    info!("unpublished {} version(s) of {}", gone.len(), name.0);
    Ok(ok_json(200, json!({"ok": true})))
}

/// `npm unpublish {name}`: every version.
fn unpublish_all(host: &dyn Host, name: Name<'_>) -> Result<Decision, Rejection> {
    let index = read_index(host, name)?.ok_or_else(|| no_package(name))?;
    host.kv_delete(&index_key(name));
    for v in index.versions.keys() {
        host.kv_delete(&manifest_key(name, v));
    }
    info!("unpublished {}", name.0);
    Ok(ok_json(200, json!({"ok": true})))
}

/// `npm dist-tag add {name}@{version} {tag}`: the body is the version as
/// a JSON string.
fn set_tag(host: &dyn Host, name: Name<'_>, tag: &str, body: &[u8]) -> Result<Decision, Rejection> {
    let version: String = serde_json::from_slice(body).map_err(|_| {
        Rejection::new(
            400,
            "The body of a dist-tag change must be the version as a JSON string.",
        )
    })?;
    let index = read_index(host, name)?.ok_or_else(|| no_package(name))?;
    if !index.versions.contains_key(&version) {
        return Err(Rejection::new(
            404,
            format!("{} has no published version {version}.", name.0),
        ));
    }
    update_index(
        host,
        name,
        |i| i.tags[tag] = Value::String(version.clone()),
        |i| i.tags[tag].as_str() == Some(version.as_str()),
    )?;
    Ok(ok_json(201, json!({"ok": true})))
}

/// `npm dist-tag rm {name} {tag}`.
fn delete_tag(host: &dyn Host, name: Name<'_>, tag: &str) -> Result<Decision, Rejection> {
    if tag == "latest" {
        return Err(Rejection::new(400, "The latest tag cannot be removed."));
    }
    read_index(host, name)?.ok_or_else(|| no_package(name))?;
    update_index(
        host,
        name,
        |i| {
            if let Value::Object(t) = &mut i.tags {
                t.remove(tag);
            }
        },
        |i| i.tags.get(tag).is_none(),
    )?;
    Ok(ok_json(200, json!({"ok": true})))
}

#[cfg(test)]
mod tests;
