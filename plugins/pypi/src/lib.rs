//! The built-in `pypi` adapter: a caching mirror of a Python package
//! index, for pip (`--index-url http://gateway/api/v1/remote/{remote}/simple/`).
//!
//! Package type `pypi`; a pull-through remote in front of an index that
//! speaks the simple repository API (pypi.org, devpi, pypiserver, a
//! static tree):
//!
//! | path | answer |
//! | --- | --- |
//! | `simple/` | the project list: mutable (the remote's `mutable_ttl`), as it is |
//! | `simple/{project}` | a redirect to `simple/{project}/` (the relative links are written for it) |
//! | `simple/{project}/` | the project page, mutable, in the form the client's `Accept` prefers: PEP 503 HTML or PEP 691 JSON (`application/vnd.pypi.simple.v1+json`), each its own entry; the name is normalised (PEP 503); every file link is rewritten to point back through the gateway (relative, so a path prefix before the gateway keeps working), its `#sha256=` (or JSON `hashes`) and everything else kept (`data-requires-python`, `data-yanked`, `data-core-metadata`, PEP 714) |
//! | `files/{project}/r/{path}` | a file under the first upstream's base URL (failover over the upstreams applies) |
//! | `files/{project}/u/{scheme}/{host}/{path}` | a file on another host, which must be one of the remote's upstreams (pypi.org keeps its files on `files.pythonhosted.org`) |
//!
//! **Files are verified.** When a page is rewritten, the sha256 of each
//! link (and of its PEP 658 metadata file) goes into the adapter's
//! key-value store, held back until the page itself is stored; a file's
//! plan then names that digest, so the core checks the bytes as they
//! stream and never stores a mismatch. A file no page listed with a
//! sha256 is served, not stored. The plugin kit's Python example
//! (`plugins/python/pypi`) does the same for HTML pages; this one adds
//! PEP 691, the rule for several upstreams, and is stateless and
//! native-speed. A `pypi.wasm` in the plugin directory replaces it.
//!
//! **Several upstreams** are an index and the hosts of its files
//! (`upstream = ["https://pypi.org", "https://files.pythonhosted.org"]`):
//! index pages then come from the first one only, so an index outage is
//! answered with the stale page, never with a file host's 404.
//!
//! Other methods are refused with 400; hosted remotes too (only
//! pull-through is built).

use artgate_sdk::prelude::*;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Largest project page inspected (pypi.org's largest are a few MiB).
pub const INSPECT_LIMIT: u32 = 16 << 20;

/// Size of one key-value value of a project's digest map (the host's
/// limit is 64 KiB).
const CHUNK: usize = 60_000;

/// The HTML form of a page as served.
const HTML: &str = "text/html; charset=utf-8";

/// The PEP 691 JSON form.
const JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The pypi adapter.
pub struct Pypi;

impl Adapter for Pypi {
    fn describe() -> AdapterInfo {
        AdapterInfo::new("pypi", env!("CARGO_PKG_VERSION"), ["pypi"])
    }

    fn plan(remote: RemoteInfo, req: Request) -> Decision {
        plan_with(&WasmHost, &remote, &req)
    }

    fn inspect_body(
        remote: RemoteInfo,
        req: Request,
        resp: UpstreamResponse,
        body: Vec<u8>,
    ) -> BodyVerdict {
        inspect_with(&WasmHost, &remote, &req, &resp, body)
    }
}

artgate_sdk::export_adapter!(Pypi, stateless, accepts_every_response);

/// Plans a request, reading digests through `host`.
pub fn plan_with(host: &dyn Host, remote: &RemoteInfo, req: &Request) -> Decision {
    if remote.mode != RemoteMode::PullThrough {
        return Decision::reject(
            400,
            format!(
                "Remote '{}' must be a pull-through remote for the pypi adapter.",
                remote.name
            ),
        );
    }
    if !req.is_read() {
        return Decision::reject(
            400,
            format!(
                "Remote '{}' is a pull-through cache and does not accept {}.",
                remote.name, req.method
            ),
        );
    }
    let segs: Vec<&str> = req.path.split('/').collect();
    match segs.as_slice() {
        ["simple"] | ["simple", ""] => forward(
            index_target(remote, "simple/"),
            CachePlan::mutable("simple/"),
            "text/html",
        ),
        ["simple", project] => Decision::respond(
            DirectResponse::new(301, Vec::new()).header("location", format!("{project}/")),
        ),
        ["simple", project, ""] if !project.is_empty() => {
            let project = normalize(project);
            let json = wants_json(req);
            let (key, accept) = if json {
                (
                    format!("simple/{project}/.json"),
                    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1",
                )
            } else {
                (
                    format!("simple/{project}/"),
                    "application/vnd.pypi.simple.v1+html, text/html;q=0.9",
                )
            };
            let mut plan = CachePlan::mutable(key)
                .inspect(INSPECT_LIMIT)
                .cache_not_found(true);
            plan.vary = vec!["accept".into()];
            forward(
                index_target(remote, &format!("simple/{}/", quote_path(&project))),
                plan,
                accept,
            )
        }
        ["simple", ..] => {
            Decision::reject(404, format!("/{} is not a PEP 503 index path.", req.path))
        }
        ["files", project, kind, rest @ ..] if !rest.is_empty() => {
            file(host, &req.path, project, kind, rest)
        }
        _ => Decision::reject(
            404,
            format!(
                "/{} is not served by the pypi adapter (use simple/{{project}}/ and the file links it lists).",
                req.path
            ),
        ),
    }
}

/// Where index pages are fetched: upstream-relative (failover over the
/// upstreams) for a remote with one upstream; with several (an index and
/// its file hosts, as pypi.org and files.pythonhosted.org), from the first
/// only, so an index outage is never answered by a file host's 404 (which
/// would be cached as "no such project" in place of the stale page).
fn index_target(remote: &RemoteInfo, path: &str) -> String {
    match remote.upstreams.as_slice() {
        [first, _, ..] => format!("{}/{path}", first.trim_end_matches('/')),
        _ => format!("/{path}"),
    }
}

/// A GET of `target` under `plan`, asking for `accept`.
fn forward(target: String, plan: CachePlan, accept: &str) -> Decision {
    Decision::forward(UpstreamRequest::get(target).header("accept", accept), plan)
}

/// Whether the client prefers PEP 691 JSON to HTML (by `Accept` quality).
fn wants_json(req: &Request) -> bool {
    let Some(accept) = req.header("accept") else {
        return false;
    };
    let (mut json, mut html) = (0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => {
                json = json.max(q)
            }
            "application/vnd.pypi.simple.v1+html"
            | "application/vnd.pypi.simple.latest+html"
            | "text/html"
            | "*/*" => html = html.max(q),
            _ => {}
        }
    }
    json > 0.0 && json >= html
}

/// Plans a file link this adapter wrote: `files/{project}/{kind}/{rest}`.
fn file(host: &dyn Host, path: &str, project: &str, kind: &str, rest: &[&str]) -> Decision {
    let target = match (kind, rest) {
        ("r", _) => format!("/{}", quote_path(&rest.join("/"))),
        ("u", [scheme @ ("http" | "https"), host_name, tail @ ..]) if !tail.is_empty() => {
            format!("{scheme}://{host_name}/{}", quote_path(&tail.join("/")))
        }
        _ => {
            return Decision::reject(
                404,
                format!("/{path} is not a file link this adapter writes."),
            );
        }
    };
    let rel = format!("{kind}/{}", rest.join("/"));
    let key = format!("files/{project}/{rel}");
    let content_type = file_content_type(&rel);
    let plan = match lookup_digest(host, project, &rel).and_then(|h| Digest::from_hex(&h).ok()) {
        Some(d) => CachePlan::immutable(key)
            .content_type(content_type)
            .expected_digest(&d),
        None => {
            warn!("no digest known for {key}; serving it without storing it");
            CachePlan::no_store(key).content_type(content_type)
        }
    };
    forward_get(target, plan)
}

/// The content type of a distribution file.
fn file_content_type(path: &str) -> &'static str {
    if [".whl", ".zip", ".egg"].iter().any(|e| path.ends_with(e)) {
        "application/zip"
    } else if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
        "application/gzip"
    } else if path.ends_with(".metadata") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// Rewrites a project page: its links through the gateway, its digests
/// remembered.
pub fn inspect_with(
    host: &dyn Host,
    remote: &RemoteInfo,
    req: &Request,
    resp: &UpstreamResponse,
    body: Vec<u8>,
) -> BodyVerdict {
    let keep = BodyVerdict::default();
    if resp.status != 200 {
        return keep;
    }
    let segs: Vec<&str> = req.path.split('/').collect();
    let ["simple", project, ..] = segs.as_slice() else {
        return keep;
    };
    if project.is_empty() {
        return keep;
    }
    let project = normalize(project);
    let page = Page::new(remote, &project, req.path.matches('/').count());
    let is_json = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("content-type") && h.value.to_ascii_lowercase().contains("json")
    });
    let (new, digests, content_type) = if is_json {
        match page.rewrite_json(&body) {
            Some((new, digests)) => (new, digests, JSON),
            None => {
                return BodyVerdict {
                    fail: Some(Rejection::new(
                        502,
                        format!("The index's JSON page for {project} is not PEP 691 JSON."),
                    )),
                    ..keep
                };
            }
        }
    } else {
        let (new, digests) = page.rewrite_html(&String::from_utf8_lossy(&body));
        (new.into_bytes(), digests, HTML)
    };
    if !digests.is_empty() {
        store_digests(host, &project, &digests);
    }
    debug!("rewrote {} link(s) of {project}", digests.len());
    BodyVerdict {
        replace: Some(new),
        update: Some(PlanUpdate {
            content_type: Some(content_type.into()),
            ..PlanUpdate::default()
        }),
        ..keep
    }
}

/// PEP 503 name normalisation: runs of `-`, `_`, `.` become `-`, lower
/// case.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep {
            out.push('-');
            sep = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    if sep {
        out.push('-');
    }
    out
}

/// What rewriting one page needs to know.
struct Page {
    /// The page's upstream URL (relative links resolve against it).
    url: String,
    /// The first upstream's base URL with a trailing `/`.
    first_base: String,
    /// What a rewritten link starts with: back to the remote's root, then
    /// `files/{project}/`.
    prefix: String,
}

impl Page {
    fn new(remote: &RemoteInfo, project: &str, depth: usize) -> Page {
        let first = remote
            .upstreams
            .first()
            .map(|u| u.trim_end_matches('/'))
            .unwrap_or("");
        Page {
            url: format!("{first}/simple/{project}/"),
            first_base: if first.is_empty() {
                String::new()
            } else {
                format!("{first}/")
            },
            prefix: format!("{}files/{project}/", "../".repeat(depth)),
        }
    }

    /// A link as the gateway serves it, and the path after
    /// `files/{project}/` it names; `None` for a link that is not a file
    /// on an http(s) host.
    fn relink(&self, url: &str) -> Option<(String, String)> {
        let absolute = join(&self.url, url);
        let rel = if !self.first_base.is_empty() && absolute.starts_with(&self.first_base) {
            let rest = absolute[self.first_base.len()..]
                .split('?')
                .next()
                .unwrap_or("");
            format!("r/{}", unquote(rest))
        } else {
            let (scheme, rest) = absolute.split_once("://")?;
            if !matches!(scheme, "http" | "https") {
                return None;
            }
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            if host.is_empty() {
                return None;
            }
            let path = path.split(['?', '#']).next().unwrap_or("");
            format!("u/{scheme}/{host}/{}", unquote(path))
        };
        Some((format!("{}{}", self.prefix, quote_path(&rel)), rel))
    }

    /// Every anchor's `href` through the gateway; the sha256 of each.
    fn rewrite_html(&self, text: &str) -> (String, BTreeMap<String, String>) {
        static ANCHOR: OnceLock<Regex> = OnceLock::new();
        static HREF: OnceLock<Regex> = OnceLock::new();
        static METADATA: OnceLock<Regex> = OnceLock::new();
        let anchor = ANCHOR.get_or_init(|| Regex::new(r"(?is)<a\b[^>]*>").expect("valid"));
        let href = HREF.get_or_init(|| {
            Regex::new(r#"(?is)\shref\s*=\s*(?:"([^"]*)"|'([^']*)')"#).expect("valid")
        });
        let metadata = METADATA.get_or_init(|| {
            Regex::new(r#"(?is)\sdata-(?:core|dist-info)-metadata\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
                .expect("valid")
        });
        let mut digests = BTreeMap::new();
        let out = anchor.replace_all(text, |m: &regex::Captures<'_>| {
            let tag = &m[0];
            let Some(h) = href.captures(tag) else {
                return tag.to_owned();
            };
            let value = h
                .get(1)
                .or_else(|| h.get(2))
                .expect("one alternative matched");
            let raw = unescape(value.as_str());
            let (url, fragment) = raw.split_once('#').unwrap_or((&raw, ""));
            let Some((link, rel)) = self.relink(url) else {
                return tag.to_owned();
            };
            if let Some(d) = sha256_of(fragment) {
                digests.insert(rel.clone(), d);
            }
            if let Some(md) = metadata.captures(tag) {
                let v = md
                    .get(1)
                    .or_else(|| md.get(2))
                    .expect("one alternative matched");
                if let Some(d) = sha256_of(&unescape(v.as_str())) {
                    digests.insert(format!("{rel}.metadata"), d);
                }
            }
            let mut new = link;
            if !fragment.is_empty() {
                new.push('#');
                new.push_str(fragment);
            }
            format!(
                "{}{}{}",
                &tag[..value.start()],
                escape(&new),
                &tag[value.end()..]
            )
        });
        (out.into_owned(), digests)
    }

    /// Every file's `url` through the gateway; the sha256 of each (PEP 691).
    fn rewrite_json(&self, body: &[u8]) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
        let mut doc: Value = serde_json::from_slice(body).ok()?;
        let mut digests = BTreeMap::new();
        for f in doc.get_mut("files")?.as_array_mut()? {
            let Some(url) = f.get("url").and_then(Value::as_str) else {
                continue;
            };
            let Some((link, rel)) = self.relink(url) else {
                continue;
            };
            let sha = |v: Option<&Value>| {
                v.and_then(|h| h.get("sha256"))
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .filter(|h| Digest::from_hex(h).is_ok())
            };
            if let Some(d) = sha(f.get("hashes")) {
                digests.insert(rel.clone(), d);
            }
            let meta = f
                .get("core-metadata")
                .or_else(|| f.get("dist-info-metadata"));
            if let Some(d) = sha(meta) {
                digests.insert(format!("{rel}.metadata"), d);
            }
            f["url"] = Value::String(link);
        }
        Some((serde_json::to_vec(&doc).ok()?, digests))
    }
}

/// `sha256=<hex>` → the hex digest.
fn sha256_of(spec: &str) -> Option<String> {
    let (algo, value) = spec.split_once('=')?;
    let value = value.trim().to_ascii_lowercase();
    (algo.trim().eq_ignore_ascii_case("sha256") && Digest::from_hex(&value).is_ok())
        .then_some(value)
}

/// `url` resolved against the page URL `base` (absolute, root-relative,
/// scheme-relative or relative with `..`).
fn join(base: &str, url: &str) -> String {
    // Any URL with a scheme (`https:`, `mailto:`) is absolute already.
    let has_scheme = url.split_once(':').is_some_and(|(s, _)| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return url.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(other) = url.strip_prefix("//") {
        return format!("{scheme}://{other}");
    }
    let (authority, base_path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = if url.starts_with('/') {
        url.to_owned()
    } else {
        let dir = base_path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("/{dir}/{url}")
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segs.iter().enumerate() {
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s if s.is_empty() && i + 1 < segs.len() => {}
            s => out.push(s),
        }
    }
    let mut joined = format!("{scheme}://{authority}/{}", out.join("/"));
    if let Some(q) = query {
        joined.push('?');
        joined.push_str(&q);
    }
    joined
}

/// Percent-decodes `s` (invalid escapes are kept as they are).
fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `path` percent-encoded where it has characters a path may not hold.
fn quote_path(path: &str) -> String {
    http::encode_path(path)
}

/// The HTML entities hrefs use, decoded (`&amp;` `&lt;` `&gt;` `&quot;`
/// `&#39;` `&#NN;` `&#xHH;`); anything else is kept.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s` with the characters an attribute value may not hold escaped.
fn escape(s: &str) -> String {
    if !s.contains(['&', '"', '\'', '<', '>']) {
        return s.to_owned();
    }
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Remembers a project's digests: chunks of `rel\thex\n` lines in the
/// key-value store (`digests/{project}` holds the chunk count,
/// `digests/{project}/{i}` the chunks).
fn store_digests(host: &dyn Host, project: &str, digests: &BTreeMap<String, String>) {
    let mut chunks: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (rel, hex) in digests {
        let line = format!("{rel}\t{hex}\n");
        if !cur.is_empty() && cur.len() + line.len() > CHUNK {
            chunks.push(std::mem::take(&mut cur));
        }
        cur.push_str(&line);
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        host.kv_set(&format!("digests/{project}/{i}"), chunk.as_bytes(), 0);
    }
    host.kv_set(
        &format!("digests/{project}"),
        chunks.len().to_string().as_bytes(),
        0,
    );
}

/// The remembered sha256 (hex) of `rel` in `project`.
fn lookup_digest(host: &dyn Host, project: &str, rel: &str) -> Option<String> {
    let count: usize = String::from_utf8(host.kv_get(&format!("digests/{project}"))?)
        .ok()?
        .parse()
        .ok()?;
    let prefix = format!("{rel}\t");
    (0..count)
        .filter_map(|i| host.kv_get(&format!("digests/{project}/{i}")))
        .find_map(|chunk| {
            String::from_utf8_lossy(&chunk)
                .lines()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        })
}

#[cfg(test)]
mod tests;
