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
mod html;
mod json;

use artgate_sdk::kvmap;
use artgate_sdk::prelude::*;

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
    let mut digests = Digests::default();
    let (new, content_type) = if is_json {
        match page.rewrite_json(&body, &mut digests) {
            Some(new) => (new, JSON),
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
        let text = String::from_utf8_lossy(&body);
        (
            page.rewrite_html(&project, &text, &mut digests)
                .into_bytes(),
            HTML,
        )
    };
    let digests = digests.sorted();
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

    /// Puts into `rel` the path after `files/{project}/` that the link
    /// `url` is served at (`r/{path}` under the first upstream,
    /// `u/{scheme}/{host}/{path}` elsewhere), and says whether it is
    /// written into a link as it is ([`link_plain`]); `None` for a link
    /// that is not a file on an http(s) host.
    fn rel_of(&self, url: &str, rel: &mut String) -> Option<bool> {
        rel.clear();
        let joined;
        let absolute = if has_scheme(url) {
            url
        } else {
            joined = join(&self.url, url);
            joined.as_str()
        };
        if let Some(rest) = absolute
            .strip_prefix(self.first_base.as_str())
            .filter(|_| !self.first_base.is_empty())
        {
            rel.push_str("r/");
            return Some(push_path(rel, rest));
        }
        let (scheme, rest) = split_scheme(absolute)?;
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            "http"
        } else if scheme.eq_ignore_ascii_case("https") {
            "https"
        } else {
            return None;
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit('@').next().unwrap_or(authority);
        if host.is_empty() {
            return None;
        }
        rel.push_str("u/");
        rel.push_str(scheme);
        rel.push('/');
        let start = rel.len();
        rel.push_str(host);
        let (mut upper, mut host_plain) = (false, true);
        scan(host.as_bytes(), |b| {
            upper |= b.is_ascii_uppercase();
            host_plain &= link_plain(b);
            false
        });
        if upper && let Some(h) = rel.get_mut(start..) {
            h.make_ascii_lowercase();
        }
        rel.push('/');
        let path_plain = push_path(rel, path);
        Some(host_plain && path_plain)
    }

    /// Appends the link the gateway serves `rel` (from [`Page::rel_of`],
    /// `plain` as it says) at: relative to the page, percent-encoded.
    fn link_into(&self, rel: &str, plain: bool, out: &mut String) {
        out.push_str(&self.prefix);
        if plain || rel.bytes().all(|b| PATH_PLAIN[usize::from(b)]) {
            out.push_str(rel);
        } else {
            out.push_str(&http::encode_path(rel));
        }
    }
}

/// The bytes below 128 that [`link_plain`] takes, as two bit masks.
const LINK_PLAIN: [u64; 2] = {
    let mut masks = [0u64; 2];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if PATH_PLAIN[b] && c != b'&' && c != b'\'' {
            masks[b / 64] |= 1 << (b % 64);
        }
        b += 1;
    }
    masks
};

/// Whether `b` stands as it is in a link written into a page: left as it
/// is by [`http::encode_path`] ([`PATH_PLAIN`]) and by
/// [`markup::escape`] (not `&` or `'`). No table: a bit of a constant.
fn link_plain(b: u8) -> bool {
    match b {
        0..=63 => LINK_PLAIN[0] >> b & 1 == 1,
        64..=127 => LINK_PLAIN[1] >> (b - 64) & 1 == 1,
        _ => false,
    }
}

/// Goes over the bytes of `s` until `stop` says so; returns where it did,
/// or the length. Eight bytes are loaded at a time: in wasm every load
/// from memory pays a bounds check, and a page is millions of bytes.
fn scan(s: &[u8], mut stop: impl FnMut(u8) -> bool) -> usize {
    let mut chunks = s.chunks_exact(8);
    let mut i = 0;
    for chunk in &mut chunks {
        let word = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
        for k in 0..8 {
            if stop((word >> (8 * k)) as u8) {
                return i + k;
            }
        }
        i += 8;
    }
    for &b in chunks.remainder() {
        if stop(b) {
            return i;
        }
        i += 1;
    }
    s.len()
}

/// The bytes [`http::encode_path`] leaves as they are: printable ASCII
/// but ``"#<>?\^`{|}``.
const PATH_PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        plain[b] = c.is_ascii_graphic()
            && !matches!(
                c,
                b'"' | b'#' | b'<' | b'>' | b'?' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            );
        b += 1;
    }
    plain
};

/// Appends the path `url` up to its query or fragment, its `%XX` escapes
/// decoded ([`http::percent_decode`]); says whether what it appended is
/// written into a link as it is ([`link_plain`]).
fn push_path(out: &mut String, url: &str) -> bool {
    let mut escapes = false;
    let mut plain = true;
    let end = scan(url.as_bytes(), |b| {
        if b == b'?' || b == b'#' {
            return true;
        }
        escapes |= b == b'%';
        plain &= link_plain(b);
        false
    });
    let path = url.get(..end).unwrap_or(url);
    if escapes {
        let decoded = http::percent_decode(path);
        out.push_str(&decoded);
        decoded.bytes().all(link_plain)
    } else {
        out.push_str(path);
        plain
    }
}

/// `url` split at its first `://`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let b = url.as_bytes();
    let mut from = 0;
    loop {
        let colon = from + url.get(from..)?.find(':')?;
        if b.get(colon + 1..colon + 3) == Some(b"//") {
            return Some((url.get(..colon)?, url.get(colon + 3..)?));
        }
        from = colon + 1;
    }
}

/// Whether `url` has a scheme (`https:`, `mailto:`), so is absolute.
fn has_scheme(url: &str) -> bool {
    let Some(colon) = url.bytes().position(|b| b == b':') else {
        return false;
    };
    let scheme = url.as_bytes().get(..colon).unwrap_or_default();
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Whether `hex` is a sha256 as `Digest::from_hex` takes it (64 hex
/// digits in either case, white space around them allowed), and then
/// whether a digit is an upper-case letter: `Some(upper)`.
fn hex_digest(hex: &str) -> Option<bool> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut upper = false;
    for w in hex.as_bytes().chunks(8) {
        upper |= hex_word(u64::from_le_bytes(<[u8; 8]>::try_from(w).ok()?))?;
    }
    Some(upper)
}

/// Whether the eight bytes of `word` are all hex digits; `Some(true)`
/// when one is an upper-case letter. A few integer operations for the
/// eight (a byte loop in wasm pays a bounds check for each).
fn hex_word(word: u64) -> Option<bool> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // The high bit of each byte from `lo` to `hi` (all bytes below 0x80:
    // neither sum carries into the next byte).
    let within = |lo: u8, hi: u8| {
        let from = word + ONES * u64::from(0x80 - lo);
        let past = word + ONES * u64::from(0x7f - hi);
        from & !past & HIGH
    };
    if word & HIGH != 0 {
        return None;
    }
    let upper = within(b'A', b'F');
    (within(b'0', b'9') | within(b'a', b'f') | upper == HIGH).then_some(upper != 0)
}

/// The sha256 digests (hex, lower case) a page lists, by the path after
/// `files/{project}/`: all in one buffer, no allocation per link.
#[derive(Default)]
struct Digests {
    /// Each entry's path and then its digest.
    text: String,
    /// Where each entry's path starts, where its digest starts, where it
    /// ends.
    entries: Vec<(usize, usize, usize)>,
}

impl Digests {
    /// Adds the digest `hex` of `{rel}{suffix}`, put in lower case when
    /// it has an `upper` case letter; a later one of the same path
    /// replaces it.
    fn push(&mut self, rel: &str, suffix: &str, hex: &str, upper: bool) {
        let start = self.text.len();
        self.text.push_str(rel);
        self.text.push_str(suffix);
        let value = self.text.len();
        self.text.push_str(hex);
        if upper && let Some(h) = self.text.get_mut(value..) {
            h.make_ascii_lowercase();
        }
        self.entries.push((start, value, self.text.len()));
    }

    /// The entries in path order, the last of a path counting.
    fn sorted(&self) -> Vec<(&str, &str)> {
        let entries = || {
            self.entries.iter().map(|&(a, b, c)| {
                (
                    self.text.get(a..b).unwrap_or_default(),
                    self.text.get(b..c).unwrap_or_default(),
                )
            })
        };
        // The paths of a page mostly share a long beginning: they are
        // sorted by the 8 bytes after it first (one integer comparison),
        // whole only when those are equal.
        let first = entries().next().map_or("", |(k, _)| k).as_bytes();
        let common = entries().fold(first.len(), |n, (k, _)| {
            common_prefix(first.get(..n).unwrap_or_default(), k.as_bytes())
        });
        let all: Vec<(&str, &str)> = entries().collect();
        let mut order: Vec<(u64, u32)> = all
            .iter()
            .zip(0u32..)
            .map(|((k, _), i)| {
                let mut head = [0u8; 8];
                for (h, b) in head.iter_mut().zip(k.as_bytes().iter().skip(common)) {
                    *h = *b;
                }
                (u64::from_be_bytes(head), i)
            })
            .collect();
        let path = |i: u32| all.get(i as usize).map_or("", |(k, _)| k);
        // Of equal paths, the one pushed last ends up last (the index
        // decides), so it is the one kept.
        order.sort_unstable_by(|x, y| {
            x.0.cmp(&y.0)
                .then_with(|| path(x.1).cmp(path(y.1)))
                .then(x.1.cmp(&y.1))
        });
        let mut out: Vec<(&str, &str)> = Vec::with_capacity(all.len());
        let mut last_head = None;
        for (head, i) in order {
            let Some(&(k, v)) = all.get(i as usize) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last_head == Some(head) && last.0 == k => *last = (k, v),
                _ => out.push((k, v)),
            }
            last_head = Some(head);
        }
        out
    }
}

/// How many bytes `a` and `b` share at their beginning; eight compared at
/// a time (in wasm a byte loop pays a bounds check for every byte).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let word = |s: &[u8], i: usize| {
        s.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    let mut i = 0;
    while let (Some(x), Some(y)) = (word(a, i), word(b, i)) {
        if x != y {
            return i + (x ^ y).trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + a
        .iter()
        .skip(i)
        .zip(b.iter().skip(i))
        .take_while(|(x, y)| x == y)
        .count()
}

/// `url` resolved against the page URL `base` (absolute, root-relative,
/// scheme-relative or relative with `..`).
fn join(base: &str, url: &str) -> String {
    // Any URL with a scheme (`https:`, `mailto:`) is absolute already.
    if has_scheme(url) {
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

/// Remembers a project's digests, given in path order (each page lists
/// them all, so the map is replaced).
fn store_digests(host: &dyn Host, project: &str, digests: &[(&str, &str)]) {
    kvmap::store_sorted(host, &digests_key(project), digests.iter().copied());
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
