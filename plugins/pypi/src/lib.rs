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
//! | `simple/{project}/` | the project page, mutable, in the form the client's `Accept` prefers: PEP 503 HTML or PEP 691 JSON (`application/vnd.pypi.simple.v1+json`), each its own entry; the name is normalised (PEP 503); every file link is rewritten to point back through the gateway (relative, so a path prefix before the gateway keeps working), its `#sha256=` (or JSON `hashes`) kept, and of the HTML the attributes pip reads (`data-requires-python`, `data-yanked`, `data-core-metadata`, `data-dist-info-metadata`, `data-gpg-sig`), nothing else |
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
//! Other methods are refused with 400.
//!
//! **Hosted.** On a hosted remote the adapter is an index of its own, for
//! `twine upload` and pip; see [`hosted`].

mod hosted;

use artgate_sdk::kvmap;
use artgate_sdk::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest project page inspected (pypi.org's largest are a few MiB).
pub const INSPECT_LIMIT: u32 = 16 << 20;

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
    if remote.mode == RemoteMode::Hosted {
        return hosted::plan(host, remote, req);
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
            DirectResponse::new(301, Vec::new())
                .header("location", format!("{}/", http::encode_component(project))),
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
            // The form depends on `Accept`: for the gateway's remembered
            // decisions and for any cache in front of it.
            let plan = CachePlan::mutable(key)
                .inspect(INSPECT_LIMIT)
                .cache_not_found(true)
                .vary("accept")
                .header("vary", "Accept");
            forward(
                index_target(remote, &format!("simple/{}/", http::encode_path(&project))),
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
        ("r", _) => format!("/{}", http::encode_path(&rest.join("/"))),
        ("u", [scheme @ ("http" | "https"), host_name, tail @ ..]) if !tail.is_empty() => {
            format!(
                "{scheme}://{host_name}/{}",
                http::encode_path(&tail.join("/"))
            )
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

/// The content type of a distribution file: by extension, as the SDK
/// knows them, but a PEP 658 metadata file, which is text.
fn file_content_type(path: &str) -> &'static str {
    if path.ends_with(".metadata") {
        "text/plain; charset=utf-8"
    } else {
        media::content_type(path)
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
    let is_json = http::header(&resp.headers, "content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
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
        let (new, digests) = page.rewrite_html(&project, &String::from_utf8_lossy(&body));
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
                .split(['?', '#'])
                .next()
                .unwrap_or("");
            format!("r/{}", http::percent_decode(rest))
        } else {
            let (scheme, rest) = absolute.split_once("://")?;
            let scheme = scheme.to_ascii_lowercase();
            if !matches!(scheme.as_str(), "http" | "https") {
                return None;
            }
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            if host.is_empty() {
                return None;
            }
            let path = path.split(['?', '#']).next().unwrap_or("");
            format!(
                "u/{scheme}/{}/{}",
                host.to_ascii_lowercase(),
                http::percent_decode(path)
            )
        };
        Some((format!("{}{}", self.prefix, http::encode_path(&rel)), rel))
    }

    /// A clean PEP 503 page of the page's file links: each anchor read
    /// with an HTML tokenizer's rules for start tags ([`anchors`]), its
    /// `href` through the gateway, its PEP 503/592/658/714 attributes kept,
    /// everything escaped again. Anything else of the upstream's page (a
    /// `<base>`, scripts, links the gateway cannot serve) is left out, so
    /// a client following the page can only reach the gateway. The sha256
    /// of each link.
    fn rewrite_html(&self, project: &str, text: &str) -> (String, BTreeMap<String, String>) {
        const KEPT: [&str; 5] = [
            "data-requires-python",
            "data-yanked",
            "data-core-metadata",
            "data-dist-info-metadata",
            "data-gpg-sig",
        ];
        let mut digests = BTreeMap::new();
        let mut out = format!(
            "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {p}</title></head>\n<body>\n<h1>Links for {p}</h1>\n",
            p = markup::escape(project)
        );
        for anchor in anchors(text) {
            let Some(href) = anchor.attr("href") else {
                continue;
            };
            let (url, fragment) = href.split_once('#').unwrap_or((href, ""));
            let Some((link, rel)) = self.relink(url) else {
                continue;
            };
            if let Some(d) = sha256_of(fragment) {
                digests.insert(rel.clone(), d);
            }
            let metadata = anchor
                .attr("data-core-metadata")
                .or_else(|| anchor.attr("data-dist-info-metadata"));
            if let Some(d) = metadata.and_then(sha256_of) {
                digests.insert(format!("{rel}.metadata"), d);
            }
            let mut new = link;
            if !fragment.is_empty() {
                new.push('#');
                new.push_str(fragment);
            }
            out.push_str(&format!("<a href=\"{}\"", markup::escape(&new)));
            for name in KEPT {
                if let Some(v) = anchor.attr(name) {
                    out.push_str(&format!(" {name}=\"{}\"", markup::escape(v)));
                }
            }
            out.push_str(&format!(">{}</a><br>\n", markup::escape(&anchor.text)));
        }
        out.push_str("</body>\n</html>\n");
        (out, digests)
    }

    /// Every file's `url` through the gateway; the sha256 of each (PEP 691).
    fn rewrite_json(&self, body: &[u8]) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
        let mut doc: Value = serde_json::from_slice(body).ok()?;
        let mut digests = BTreeMap::new();
        let files = doc.get_mut("files")?.as_array_mut()?;
        // A file the gateway cannot serve is left out, never linked to
        // where it is.
        files.retain(|f| {
            f.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| self.relink(u.split('#').next().unwrap_or(u)).is_some())
        });
        for f in files.iter_mut() {
            let Some(url) = f.get("url").and_then(Value::as_str) else {
                continue;
            };
            let url = url.split('#').next().unwrap_or(url);
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

/// One `<a>` element of a page: its attributes (names in lower case,
/// values with their character references decoded, the first of a name
/// counting) and its text.
struct Anchor {
    attrs: Vec<(String, String)>,
    text: String,
}

impl Anchor {
    /// The value of attribute `name`.
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `<a>` elements of `html`, read as an HTML tokenizer reads start
/// tags: attribute values double-quoted, single-quoted or unquoted, a `>`
/// inside quotes not ending the tag; comments skipped.
fn anchors(html: &str) -> Vec<Anchor> {
    let b = html.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(off) = html.get(i..).and_then(|rest| rest.find('<')) {
        i += off + 1;
        if html[i..].starts_with("!--") {
            i = html[i..].find("-->").map_or(b.len(), |e| i + e + 3);
            continue;
        }
        let is_a = b.get(i).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/');
        if !is_a {
            continue;
        }
        i += 1;
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i = (i + 1).min(b.len());
                break;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !b"=>/".contains(&b[i]) {
                i += 1;
            }
            let name = html[start..i].to_ascii_lowercase();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if b.get(i) == Some(&b'=') {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                let (v_start, v_end) = match b.get(i) {
                    Some(q @ (b'"' | b'\'')) => {
                        let end = html[i + 1..]
                            .find(*q as char)
                            .map_or(b.len(), |e| i + 1 + e);
                        let span = (i + 1, end);
                        i = (end + 1).min(b.len());
                        span
                    }
                    _ => {
                        let start = i;
                        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                            i += 1;
                        }
                        (start, i)
                    }
                };
                value = markup::decode_entities(&html[v_start..v_end]);
            }
            if !name.is_empty() && !attrs.iter().any(|(n, _)| *n == name) {
                attrs.push((name, value));
            }
        }
        let rest = &html[i.min(b.len())..];
        let end = close_a(rest);
        let text = markup::decode_entities(&strip_tags(&rest[..end]))
            .trim()
            .to_owned();
        found.push(Anchor { attrs, text });
    }
    found
}

/// Where the text of an anchor ends in `rest`: its `</a>`, the next
/// tag that opens another anchor, or the end.
fn close_a(rest: &str) -> usize {
    let b = rest.as_bytes();
    let mut j = 0;
    while let Some(off) = rest[j..].find('<') {
        j += off;
        let tag = |k: usize| b.get(j + k).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'));
        let ends = |k: usize| {
            b.get(j + k)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        };
        if (b.get(j + 1) == Some(&b'/') && tag(2) && ends(3)) || (tag(1) && ends(2)) {
            return j;
        }
        j += 1;
    }
    b.len()
}

/// `s` without anything between `<` and `>`.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
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
    for seg in &segs {
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
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

/// The key-value map of a project's sha256 digests (hex), by the path
/// after `files/{project}/`.
fn digests_key(project: &str) -> String {
    format!("sha256/{project}")
}

/// Remembers a project's digests (each page lists them all, so the map is
/// replaced).
fn store_digests(host: &dyn Host, project: &str, digests: &BTreeMap<String, String>) {
    kvmap::store(host, &digests_key(project), digests);
}

/// The remembered sha256 (hex) of `rel` in `project`.
fn lookup_digest(host: &dyn Host, project: &str, rel: &str) -> Option<String> {
    kvmap::lookup(host, &digests_key(project), rel)
}

// Fuzz entry points (`../../fuzz`, corpus replay tests): host target only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;

#[cfg(test)]
mod tests;
