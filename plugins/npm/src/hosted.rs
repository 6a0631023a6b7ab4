//! Hosted npm: a registry of the remote's own packages, for `npm publish`,
//! `npm install`, `npm view`, `npm dist-tag`, `npm deprecate` and
//! `npm unpublish`.
//!
//! | request | answer |
//! | --- | --- |
//! | `PUT {name}` with a tarball attached (`npm publish`) | the tarball, taken out of the JSON by the core (`unpack-body`, never through the adapter) and checked against the version's `dist.integrity` (sha512) and `shasum`, is stored write-once as `{name}/-/{file}`; the version's manifest is kept; publishing a version the package has or had is 409 |
//! | `PUT {name}` without one (`npm deprecate`) | the `deprecated` messages of published versions are set; nothing else of a manifest changes |
//! | `GET {name}` | the packument, built from the kept manifests, with tarball links at the gateway |
//! | `GET {name}/-/{file}` | the tarball, while its version is published |
//! | `GET`, `PUT`, `DELETE` `-/package/{name}/dist-tags[/{tag}]` | the dist-tags (`npm dist-tag ls/add/rm`) |
//! | `PUT {name}/-rev/{rev}` | the packument without some versions (`npm unpublish {name}@{version}`): those versions are unpublished |
//! | `DELETE {name}/-rev/{rev}` | every version is unpublished (`npm unpublish {name}`, or its last version) |
//! | `DELETE {name}/-/{file}/-rev/{rev}` | the tarball of an unpublished version is deleted |
//! | `GET -/ping` | `{}` (`npm ping`) |
//!
//! **Revisions.** A packument's `_rev` names the state of its versions and
//! tags; a change sent with another `_rev` (built from a packument read
//! before a publish or another change) is refused with 409, so an
//! unpublish never drops a version it did not see.
//!
//! **State.** `index/{name}` in the key-value store holds the published
//! versions (with their times), the unpublished ones, and the dist-tags;
//! the manifests are a [`kvmap`] (`manifests/{name}`, each at most about
//! 60 KiB once its `readme` is dropped). An unpublished version stays
//! unpublishable, as on npmjs.org, and its tarball is served no more.
//! Changes to one package run one at a time under a lock in the
//! key-value store (`kvlock`, taken with `kv-compare-and-set`); a change
//! that finds it taken gets 503 (try again), and the lock of a request
//! that failed half-way expires after 30 s.

use crate::packument::Checksum;
use crate::{Name, is_name_part};
use artgate_sdk::kvlock;
use artgate_sdk::kvmap;
use artgate_sdk::prelude::*;
use serde_json::{Map, Value, json};

/// Largest publish body without its tarball (the gateway's
/// `max_request_body_inspect` bounds it too).
const REST_LIMIT: u32 = 16 << 20;

/// Largest index of versions and tags (one key-value value).
const INDEX_LIMIT: usize = 60_000;

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
    Rev(Name<'a>, &'a str),
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
        ["-rev", rev] => Some(Op::Rev(name, rev)),
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
    let _lock = match (m, &op) {
        ("GET" | "HEAD", _) | (_, Op::Ping) => None,
        (
            _,
            Op::Package(n)
            | Op::Tarball(n, _)
            | Op::TarballRev(n, _)
            | Op::Rev(n, _)
            | Op::DistTags(n, _),
        ) => match lock(host, *n, req) {
            Ok(l) => Some(l),
            Err(r) => return Decision::Reject(r),
        },
    };
    let result = match (m, op) {
        ("GET" | "HEAD", Op::Ping) => Ok(ok_json(200, json!({}))),
        ("GET" | "HEAD", Op::Package(name)) => packument(host, remote, name),
        ("PUT", Op::Package(name)) => publish(host, name),
        ("GET" | "HEAD", Op::Tarball(name, file)) => tarball(host, name, file),
        ("DELETE", Op::TarballRev(name, file)) => delete_tarball(host, name, file),
        ("PUT", Op::Rev(name, rev)) => match body(req, REST_LIMIT) {
            Err(d) => return *d,
            Ok(body) => unpublish_versions(host, name, rev, body),
        },
        ("DELETE", Op::Rev(name, rev)) => unpublish_all(host, name, Some(rev)),
        ("GET" | "HEAD", Op::DistTags(name, None)) => {
            published(host, name).map(|index| ok_json(200, Value::Object(index.tags)))
        }
        ("PUT", Op::DistTags(name, Some(tag))) => match body(req, 1024) {
            Err(d) => return *d,
            Ok(body) => set_tag(host, name, tag, body),
        },
        ("DELETE", Op::DistTags(name, Some(tag))) => delete_tag(host, name, tag),
        (m, _) => Err(Rejection::new(
            405,
            format!("A hosted npm remote does not take {m} on /{}.", req.path),
        )),
    };
    result.unwrap_or_else(Decision::Reject)
}

/// The request body, or the decision that gets it: read it (up to
/// `limit`), or refuse one larger than that with 413.
fn body(req: &Request, limit: u32) -> Result<&[u8], Box<Decision>> {
    match &req.body {
        Some(b) => Ok(b),
        None if req.body_too_large => Err(Box::new(Decision::reject(
            413,
            format!("The request body is larger than the {limit} bytes this path takes."),
        ))),
        None => Err(Box::new(Decision::read_body(limit))),
    }
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
    /// Published version → publish time.
    versions: Map<String, Value>,
    /// Versions unpublished (never to be published again).
    unpublished: Vec<String>,
    /// Tag → version.
    tags: Map<String, Value>,
    /// When the package was first published.
    created: Value,
}

impl Index {
    fn empty() -> Index {
        Index {
            versions: Map::new(),
            unpublished: Vec::new(),
            tags: Map::new(),
            created: now(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "versions": self.versions,
            "unpublished": self.unpublished,
            "dist-tags": self.tags,
            "created": self.created,
        })
    }

    /// The revision of this state: the number of versions and a hash of
    /// the versions and tags (FNV-1a).
    fn rev(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let text = json!([self.versions.keys().collect::<Vec<_>>(), self.tags]).to_string();
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}-{h:016x}", self.versions.len() + self.unpublished.len())
    }

    /// Whether `version` is or was published.
    fn has_had(&self, version: &str) -> bool {
        self.versions.contains_key(version) || self.unpublished.iter().any(|v| v == version)
    }

    /// Whether `file` is the tarball of a published version.
    fn serves(&self, name: Name<'_>, file: &str) -> bool {
        self.versions.keys().any(|v| file_of(name, v) == file)
    }
}

fn index_key(name: Name<'_>) -> String {
    format!("index/{}", name.0)
}

fn manifests_key(name: Name<'_>) -> String {
    format!("manifests/{}", name.0)
}

fn read_index(host: &dyn Host, name: Name<'_>) -> Result<Option<Index>, Rejection> {
    let Some(raw) = host.kv_get(&index_key(name)) else {
        return Ok(None);
    };
    let doc: Value = serde_json::from_slice(&raw)
        .map_err(|_| Rejection::new(500, format!("The stored index of {} is damaged.", name.0)))?;
    Ok(Some(Index {
        versions: doc["versions"].as_object().cloned().unwrap_or_default(),
        unpublished: doc["unpublished"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        tags: doc["dist-tags"].as_object().cloned().unwrap_or_default(),
        created: doc["created"].clone(),
    }))
}

/// A package that has published versions.
fn published(host: &dyn Host, name: Name<'_>) -> Result<Index, Rejection> {
    read_index(host, name)?
        .filter(|i| !i.versions.is_empty())
        .ok_or_else(|| no_package(name))
}

/// Refuses a change sent with a revision other than the current one.
fn check_rev(index: &Index, name: Name<'_>, rev: &str) -> Result<(), Rejection> {
    if index.rev() == rev {
        return Ok(());
    }
    Err(Rejection::new(
        409,
        format!(
            "Package {} changed since revision {rev} was read (it is at {}); read it again.",
            name.0,
            index.rev()
        ),
    ))
}

/// The index after `change`, refused when it would not fit.
fn changed(
    index: Option<Index>,
    name: Name<'_>,
    change: &impl Fn(&mut Index),
) -> Result<(Index, String), Rejection> {
    let mut index = index.unwrap_or_else(Index::empty);
    change(&mut index);
    let text = index.to_json().to_string();
    if text.len() > INDEX_LIMIT {
        return Err(Rejection::new(
            413,
            format!(
                "Package {} has more versions than this registry keeps.",
                name.0
            ),
        ));
    }
    Ok((index, text))
}

/// Writes the index after `change` applied to the stored one (under the
/// package's lock, [`lock`]).
fn update_index(
    host: &dyn Host,
    name: Name<'_>,
    change: impl Fn(&mut Index),
) -> Result<(), Rejection> {
    let (_, text) = changed(read_index(host, name)?, name, &change)?;
    host.kv_set(&index_key(name), text.as_bytes(), 0);
    Ok(())
}

/// Takes the package's lock for this request: changes to one package
/// (its index, its manifests) run one at a time. A request that finds it
/// taken gets 503; a lock whose holder failed expires after 30 s.
fn lock<'a>(
    host: &'a dyn Host,
    name: Name<'_>,
    req: &Request,
) -> Result<kvlock::Held<'a>, Rejection> {
    let what = format!("Package {}", name.0);
    kvlock::lock_or_busy(host, &format!("lock/{}", name.0), &req.id, 30, &what)
}

/// The time now as npm writes it (RFC 3339), or null.
fn now() -> Value {
    artgate_sdk::time::Utc::now()
        .map(|t| Value::String(t.rfc3339()))
        .unwrap_or(Value::Null)
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
        &BodyLayout::JsonBase64(vec!["/_attachments/*.tgz/data".into()]),
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
    // npm names the tarball after the package with its scope
    // (`acme-private-1.0.0.tgz`); other attachments (a provenance bundle)
    // are not kept.
    let tarballs: Vec<(&String, &Value)> = doc["_attachments"]
        .as_object()
        .map(|a| a.iter().filter(|(k, _)| k.ends_with(".tgz")).collect())
        .unwrap_or_default();
    if tarballs.is_empty() {
        return deprecate(host, name, versions);
    }
    let (version, manifest) = match versions.iter().collect::<Vec<_>>().as_slice() {
        [one] if tarballs.len() == 1 && is_name_part(one.0) => *one,
        _ => {
            return Err(bad(format!(
                "A publish of {} must carry exactly one version and one tarball.",
                name.0
            )));
        }
    };
    if manifest["name"].as_str() != Some(name.0) || manifest["version"].as_str() != Some(version) {
        return Err(bad(format!(
            "The manifest of {}@{version} names another package or version.",
            name.0
        )));
    }
    let (attached, attachment) = tarballs[0];
    let origin = format!(
        "/_attachments/{}/data",
        attached.replace('~', "~0").replace('/', "~1")
    );
    let Some((file_index, staged)) = unpacked
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
    verify(name, version, &manifest["dist"], staged)?;
    // Everything that can refuse the publish is decided before the tarball
    // is committed: a committed tarball takes its version for good.
    let stored = stored_manifest(version, manifest)?;
    let mut manifests: std::collections::BTreeMap<String, String> =
        kvmap::entries(host, &manifests_key(name))
            .into_iter()
            .collect();
    manifests.insert(version.clone(), stored);
    let index = read_index(host, name)?;
    if index.as_ref().is_some_and(|i| i.has_had(version)) {
        return Err(exists(name, version));
    }
    let tags: Vec<String> = doc["dist-tags"]
        .as_object()
        .map(|t| {
            t.iter()
                .filter(|(_, v)| v.as_str() == Some(version))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let time = now();
    let change = |i: &mut Index| {
        i.versions.insert(version.clone(), time.clone());
        for tag in &tags {
            i.tags.insert(tag.clone(), Value::String(version.clone()));
        }
        if !i.tags.contains_key("latest") {
            i.tags
                .insert("latest".into(), Value::String(version.clone()));
        }
    };
    changed(index, name, &change)?;
    host.hosted_commit(
        file_index as u32,
        &tarball_key(name, &file_of(name, version)),
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
    if kvmap::store(host, &manifests_key(name), &manifests) != manifests.len() {
        return Err(Rejection::new(
            500,
            format!("The manifests of {} could not be kept.", name.0),
        ));
    }
    update_index(host, name, change)?;
    info!("published {}@{version}", name.0);
    Ok(ok_json(201, json!({"ok": true, "id": name.0})))
}

/// Checks the staged tarball against the manifest's `dist`: its
/// `integrity` must hold a sha512 (what npm checks first) and nothing the
/// gateway cannot check, and a `shasum` must match too.
fn verify(
    name: Name<'_>,
    version: &str,
    dist: &Value,
    staged: &StagedFile,
) -> Result<(), Rejection> {
    let bad = |why: String| Rejection::new(400, why);
    let integrity = dist["integrity"].as_str().unwrap_or_default();
    let algorithms: Vec<&str> = integrity
        .split_ascii_whitespace()
        .filter_map(|i| i.split_once('-').map(|(a, _)| a))
        .collect();
    if !algorithms.contains(&"sha512")
        || algorithms.iter().any(|a| !matches!(*a, "sha512" | "sha1"))
    {
        return Err(bad(format!(
            "Version {version} of {} must give dist.integrity as sha512 (and nothing the registry cannot check).",
            name.0
        )));
    }
    let sri = Checksum::from_dist(Some(integrity), None);
    let sha512_ok = sri.is_some_and(|c| c.algorithm == "sha512" && hex(&c.digest) == staged.sha512);
    let shasum = dist["shasum"].as_str();
    let sha1_ok = shasum.is_none_or(|s| s.eq_ignore_ascii_case(&staged.sha1))
        && Checksum::from_dist(Some(integrity), None)
            .into_iter()
            .chain(
                integrity
                    .split_ascii_whitespace()
                    .filter_map(|i| Checksum::from_dist(Some(i), None)),
            )
            .filter(|c| c.algorithm == "sha1")
            .all(|c| hex(&c.digest) == staged.sha1);
    if !sha512_ok || !sha1_ok {
        return Err(bad(format!(
            "The tarball of {}@{version} does not match its dist.integrity or shasum.",
            name.0
        )));
    }
    Ok(())
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
/// what one entry of the manifests' [`kvmap`] holds.
fn stored_manifest(version: &str, manifest: &Value) -> Result<String, Rejection> {
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
    if !kvmap::fits(version, &text) {
        return Err(Rejection::new(
            413,
            format!(
                "The manifest of version {version} is larger than this registry keeps (about 60 kB)."
            ),
        ));
    }
    Ok(text)
}

/// A publish without a tarball (`npm deprecate`): each published
/// version's `deprecated` message set (or cleared) as sent; nothing else
/// of a manifest changes.
fn deprecate(
    host: &dyn Host,
    name: Name<'_>,
    versions: &Map<String, Value>,
) -> Result<Decision, Rejection> {
    let index = published(host, name)?;
    let mut manifests: std::collections::BTreeMap<String, String> =
        kvmap::entries(host, &manifests_key(name))
            .into_iter()
            .collect();
    for (version, sent) in versions {
        if !index.versions.contains_key(version) {
            return Err(Rejection::new(
                400,
                format!(
                    "Version {version} of {} is not published; attach its tarball to publish it.",
                    name.0
                ),
            ));
        }
        let Some(mut m) = manifests
            .get(version)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        else {
            continue;
        };
        match sent["deprecated"].as_str().filter(|d| !d.is_empty()) {
            Some(why) => m["deprecated"] = json!(why),
            None => {
                if let Some(o) = m.as_object_mut() {
                    o.remove("deprecated");
                }
            }
        }
        manifests.insert(version.clone(), stored_manifest(version, &m)?);
    }
    kvmap::store(host, &manifests_key(name), &manifests);
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
    let index = published(host, name)?;
    let manifests: std::collections::BTreeMap<String, String> =
        kvmap::entries(host, &manifests_key(name))
            .into_iter()
            .collect();
    let mut versions = Map::new();
    let mut time = Map::new();
    for (version, published) in &index.versions {
        let Some(mut m) = manifests
            .get(version)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        else {
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
        "_rev": index.rev(),
        "dist-tags": index.tags,
        "versions": versions,
        "time": time,
    });
    Ok(ok_json(200, doc))
}

/// A tarball, while its version is published.
fn tarball(host: &dyn Host, name: Name<'_>, file: &str) -> Result<Decision, Rejection> {
    if !read_index(host, name)?.is_some_and(|i| i.serves(name, file)) {
        return Err(Rejection::new(
            404,
            format!("{file} is not a published tarball of {}.", name.0),
        ));
    }
    Ok(Decision::hosted_read(
        HostedRead::new(tarball_key(name, file)).content_type("application/octet-stream"),
    ))
}

/// The tarball of an unpublished version (its version stays taken).
fn delete_tarball(host: &dyn Host, name: Name<'_>, file: &str) -> Result<Decision, Rejection> {
    let index = read_index(host, name)?.ok_or_else(|| no_package(name))?;
    if index.serves(name, file) {
        return Err(Rejection::new(
            400,
            format!(
                "{file} belongs to a published version of {}; unpublish it first.",
                name.0
            ),
        ));
    }
    if !index.unpublished.iter().any(|v| file_of(name, v) == file) {
        return Err(Rejection::new(
            404,
            format!("{file} is no tarball of {}.", name.0),
        ));
    }
    Ok(Decision::hosted_delete(tarball_key(name, file)))
}

/// `npm unpublish {name}@{version}`: the packument without some versions.
fn unpublish_versions(
    host: &dyn Host,
    name: Name<'_>,
    rev: &str,
    body: &[u8],
) -> Result<Decision, Rejection> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| Rejection::new(400, format!("The packument sent is not JSON: {e}.")))?;
    let keep: Vec<String> = doc["versions"]
        .as_object()
        .ok_or_else(|| Rejection::new(400, "The packument sent has no \"versions\"."))?
        .keys()
        .cloned()
        .collect();
    let index = published(host, name)?;
    check_rev(&index, name, rev)?;
    if keep.is_empty() {
        return unpublish_all(host, name, None);
    }
    let gone: Vec<String> = index
        .versions
        .keys()
        .filter(|v| !keep.contains(v))
        .cloned()
        .collect();
    let tags = doc["dist-tags"].as_object().cloned().unwrap_or_default();
    update_index(host, name, |i| {
        i.versions.retain(|v, _| !gone.contains(v));
        for v in &gone {
            if !i.unpublished.contains(v) {
                i.unpublished.push(v.clone());
            }
        }
        i.tags = tags
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|v| i.versions.contains_key(v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    })?;
    info!("unpublished {} version(s) of {}", gone.len(), name.0);
    Ok(ok_json(200, json!({"ok": true})))
}

/// `npm unpublish {name}`: every version (checked against `rev` when the
/// request names one).
fn unpublish_all(
    host: &dyn Host,
    name: Name<'_>,
    rev: Option<&str>,
) -> Result<Decision, Rejection> {
    let index = published(host, name)?;
    if let Some(rev) = rev {
        check_rev(&index, name, rev)?;
    }
    update_index(host, name, |i| {
        let all: Vec<String> = i.versions.keys().cloned().collect();
        i.unpublished.extend(all);
        i.versions.clear();
        i.tags.clear();
    })?;
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
    let index = published(host, name)?;
    if !index.versions.contains_key(&version) {
        return Err(Rejection::new(
            404,
            format!("{} has no published version {version}.", name.0),
        ));
    }
    update_index(host, name, |i| {
        i.tags
            .insert(tag.to_owned(), Value::String(version.clone()));
    })?;
    Ok(ok_json(201, json!({"ok": true})))
}

/// `npm dist-tag rm {name} {tag}`.
fn delete_tag(host: &dyn Host, name: Name<'_>, tag: &str) -> Result<Decision, Rejection> {
    if tag == "latest" {
        return Err(Rejection::new(400, "The latest tag cannot be removed."));
    }
    published(host, name)?;
    update_index(host, name, |i| {
        i.tags.remove(tag);
    })?;
    Ok(ok_json(200, json!({"ok": true})))
}

#[cfg(test)]
mod tests;
