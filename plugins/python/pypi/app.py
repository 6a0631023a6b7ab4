"""The `pypi` artgate adapter: a PEP 503 "simple" index pull-through cache,
written in Python and built with componentize-py.

Routes (below /api/v1/remote/{remote}/):

  simple/                      the project list: mutable (remote TTL), as is
  simple/{project}/            a project page: mutable (remote TTL); fetched
                               as HTML, inspected, and every file link
                               rewritten to point back through the gateway
  files/{project}/r/{path}     a file under the first upstream base URL
                               (failover applies): GET {upstream}/{path}
  files/{project}/u/{scheme}/{host}/{path}
                               a file on another host (it must be one of the
                               remote's upstream hosts, e.g. pypi.org's
                               files.pythonhosted.org): GET {scheme}://{host}/{path}

Files are immutable and verified: when the adapter rewrites a project page
it stores each link's `#sha256=` (and PEP 658 `data-core-metadata`) digest
in its key-value store, and the plan for the file sets `expected-digest`
from it, so the core verifies the bytes while streaming and never stores a
mismatch. A file no index listed (or whose digest was lost) is served
without being stored.

Rewritten links are relative (`../../files/...`), so the gateway may sit
behind a reverse proxy with a path prefix. The `#sha256=` fragment is kept,
so pip verifies too.
"""

import html
import re
from urllib.parse import quote, unquote, urljoin, urlsplit

from wit_world import exports
from wit_world.imports import host
from wit_world.imports import types as t

VERSION = "0.1.0"
# Largest project page the adapter inspects (pypi.org's largest pages are a
# few MB).
INSPECT_LIMIT = 16 * 1024 * 1024
# Digest map chunks stay below the host's 64 KiB value limit.
CHUNK = 60_000
# Digests remembered per warm instance (files never change their digest).
MEMO_MAX = 20_000

ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE | re.DOTALL)
HEX64 = re.compile(r"^[0-9a-f]{64}$")

_memo: dict = {}


def log(level, message: str) -> None:
    host.log(level, message)


# Module-level state is built once, at build time (componentize-py snapshots
# the imported module); anything a call initialises lazily would be redone
# in every fresh instance.
SEPARATORS = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """PEP 503 name normalisation."""
    return SEPARATORS.sub("-", name).lower()


def header(name: str, value: str) -> t.Header:
    return t.Header(name=name, value=value)


def reject(status: int, message: str) -> t.Decision:
    return t.Decision_Reject(t.Rejection(status=status, message=message, code=None))


def plan_of(key, cls, content_type=None, digest=None, inspect=None, not_found=False):
    return t.CachePlan(
        key=key,
        class_=cls,
        ttl_secs=None,
        validator=None,
        content_type=content_type,
        expected_digest=digest,
        response_headers=[],
        inspect_limit=inspect,
        cache_not_found=not_found,
        vary=[],
    )


def forward(target, plan, headers=()):
    upstream = t.UpstreamRequest(
        method="GET",
        target=target,
        headers=list(headers),
        forward_body=False,
        use_credentials=True,
    )
    return t.Decision_Forward(t.Forward(upstream=upstream, plan=plan))


def verdict(replace=None, update=None) -> t.BodyVerdict:
    return t.BodyVerdict(replace=replace, references=[], prefetch=[], update=update, fail=None)


def file_content_type(path: str) -> str:
    if path.endswith(".whl") or path.endswith(".zip") or path.endswith(".egg"):
        return "application/zip"
    if path.endswith(".tar.gz") or path.endswith(".tgz"):
        return "application/gzip"
    if path.endswith(".metadata"):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def sha256_of(fragment_or_attr: str):
    """`sha256=<hex>` → hex, else None."""
    algo, _, value = fragment_or_attr.partition("=")
    value = value.strip().lower()
    if algo.strip().lower() == "sha256" and HEX64.match(value):
        return value
    return None


# ---------------------------------------------------------------------------
# Digest map: per project, chunks of "relpath\thex\n" lines in the key-value
# store: digests/{project} = chunk count, digests/{project}/{i} = chunk.


def store_digests(project: str, digests: dict) -> None:
    lines = [f"{rel}\t{hexd}\n" for rel, hexd in sorted(digests.items())]
    chunks, cur, size = [], [], 0
    for line in lines:
        n = len(line.encode())
        if cur and size + n > CHUNK:
            chunks.append("".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += n
    if cur:
        chunks.append("".join(cur))
    for i, chunk in enumerate(chunks):
        host.kv_set(f"digests/{project}/{i}", chunk.encode(), 0)
    host.kv_set(f"digests/{project}", str(len(chunks)).encode(), 0)
    if len(_memo) > MEMO_MAX:
        _memo.clear()
    for rel, hexd in digests.items():
        _memo[(project, rel)] = hexd


def lookup_digest(project: str, rel: str):
    hit = _memo.get((project, rel))
    if hit:
        return hit
    count = host.kv_get(f"digests/{project}")
    if count is None:
        return None
    try:
        n = int(count.decode())
    except ValueError:
        return None
    prefix = rel + "\t"
    for i in range(n):
        chunk = host.kv_get(f"digests/{project}/{i}")
        if chunk is None:
            continue
        for line in chunk.decode().splitlines():
            if line.startswith(prefix):
                hexd = line[len(prefix):]
                _memo[(project, rel)] = hexd
                return hexd
    return None


# ---------------------------------------------------------------------------
# Link rewriting.


SAFE_PATH = re.compile(r"^[A-Za-z0-9/._~+!$&'()*,;=:@-]*$")
PATH_SAFE_CHARS = "/-._~+!$&'()*,;=:@"


def quote_path(path: str) -> str:
    return path if SAFE_PATH.match(path) else quote(path, safe=PATH_SAFE_CHARS)


def link_to_rel(first_base: str, url: str):
    """An absolute upstream file URL → the part of the gateway path after
    `files/{project}/` (decoded, as the core hands paths to `plan`).
    `first_base` is the remote's first upstream base URL with a trailing
    slash."""
    # Under the first upstream base (where project pages come from): a path
    # the core resolves against every upstream base in turn (mirrors).
    if first_base and url.startswith(first_base):
        rest = url[len(first_base):].split("?", 1)[0]
        return "r/" + (unquote(rest) if "%" in rest else rest)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"u/{parts.scheme}/{netloc}{unquote(parts.path)}"


def absolute(page_url: str, origin: str, url: str) -> str:
    if url.startswith("https://") or url.startswith("http://"):
        return url
    if url.startswith("/") and not url.startswith("//"):
        return origin + url
    return urljoin(page_url, url)


HREF = re.compile(r"""\shref\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
METADATA = re.compile(
    r"""\sdata-(?:core|dist-info)-metadata\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL
)


def rewrite_page(remote: t.RemoteInfo, project: str, depth: int, text: str):
    """Rewrite every anchor's href; returns (new text, {rel: sha256 hex})."""
    first = remote.upstreams[0].rstrip("/") if remote.upstreams else ""
    page_url = first + f"/simple/{project}/"
    parts = urlsplit(first)
    origin = f"{parts.scheme}://{parts.netloc}" if first else ""
    first_base = first + "/" if first else ""
    prefix = "../" * depth + "files/" + project + "/"
    digests = {}

    def one(m):
        tag = m.group(0)
        href = HREF.search(tag)
        if href is None:
            return tag
        raw = href.group(2)
        if "&" in raw:
            raw = html.unescape(raw)
        url, _, fragment = raw.partition("#")
        rel = link_to_rel(first_base, absolute(page_url, origin, url))
        if rel is None:
            return tag
        digest = sha256_of(fragment)
        if digest:
            digests[rel] = digest
        if "metadata" in tag:
            meta = METADATA.search(tag)
            if meta is not None:
                md = sha256_of(html.unescape(meta.group(2)))
                if md:
                    digests[rel + ".metadata"] = md
        new = prefix + quote_path(rel)
        if fragment:
            new += "#" + fragment
        if "&" in new or '"' in new or "'" in new or "<" in new:
            new = html.escape(new, quote=True)
        s, e = href.span(2)
        return tag[:s] + new + tag[e:]

    return ANCHOR.sub(one, text), digests


# ---------------------------------------------------------------------------
# The handler.


class Handler(exports.Handler):
    def describe(self) -> t.AdapterInfo:
        return t.AdapterInfo(name="pypi", version=VERSION, package_types=["pypi"])

    def plan(self, remote: t.RemoteInfo, req: t.Request) -> t.Decision:
        if remote.mode != t.RemoteMode.PULL_THROUGH:
            return reject(400, f"Remote '{remote.name}' must be a pull-through remote for the pypi adapter.")
        if req.method not in ("GET", "HEAD"):
            return reject(
                400,
                f"Remote '{remote.name}' is a pull-through cache and does not accept {req.method}.",
            )
        segs = req.path.split("/")
        if segs[0] == "simple":
            if len(segs) == 1 or (len(segs) == 2 and segs[1] == ""):
                plan = plan_of("simple/", t.CacheClass.MUTABLE)
                return forward("/simple/", plan, [header("accept", "text/html")])
            if len(segs) == 2 and segs[1]:
                # Relative links are written for the canonical form.
                return t.Decision_Respond(
                    t.DirectResponse(
                        status=301,
                        headers=[header("location", f"{segs[1]}/")],
                        body=b"",
                    )
                )
            if len(segs) == 3 and segs[1] and segs[2] == "":
                project = normalize(segs[1])
                plan = plan_of(
                    f"simple/{project}/",
                    t.CacheClass.MUTABLE,
                    content_type="text/html; charset=utf-8",
                    inspect=INSPECT_LIMIT,
                    not_found=True,
                )
                return forward(
                    f"/simple/{quote_path(project)}/",
                    plan,
                    [header("accept", "application/vnd.pypi.simple.v1+html, text/html;q=0.9")],
                )
            return reject(404, f"/{req.path} is not a PEP 503 index path.")
        if segs[0] == "files" and len(segs) >= 4:
            return self.plan_file(remote, req, segs)
        return reject(
            404,
            f"/{req.path} is not served by the pypi adapter (use simple/{{project}}/ and the file links it lists).",
        )

    def plan_file(self, remote, req, segs) -> t.Decision:
        project = segs[1]
        rel = "/".join(segs[2:])
        if segs[2] == "r":
            target = "/" + quote_path("/".join(segs[3:]))
        elif segs[2] == "u" and len(segs) >= 6 and segs[3] in ("http", "https"):
            target = f"{segs[3]}://{segs[4]}/" + quote_path("/".join(segs[5:]))
        else:
            return reject(404, f"/{req.path} is not a file link this adapter writes.")
        digest = lookup_digest(project, rel)
        key = "files/" + project + "/" + rel
        if digest is None:
            log(t.Level.WARN, f"no digest known for {key}; serving it without storing it")
            plan = plan_of(key, t.CacheClass.NO_STORE, content_type=file_content_type(rel))
        else:
            plan = plan_of(
                key,
                t.CacheClass.IMMUTABLE,
                content_type=file_content_type(rel),
                digest="sha256:" + digest,
            )
        return forward(target, plan)

    def on_response(self, remote, req, sent, resp, attempt) -> t.AfterHeaders:
        return t.AfterHeaders_Accept()

    def inspect_body(self, remote, req, resp, body: bytes) -> t.BodyVerdict:
        keep = verdict()
        if resp.status != 200:
            return keep
        segs = req.path.split("/")
        if len(segs) < 2 or segs[0] != "simple" or not segs[1]:
            return keep
        project = normalize(segs[1])
        text = body.decode("utf-8", errors="replace")
        new, digests = rewrite_page(remote, project, req.path.count("/"), text)
        if digests:
            store_digests(project, digests)
        log(t.Level.DEBUG, f"rewrote {len(digests)} link(s) of {project}")
        update = t.PlanUpdate(
            class_=None,
            ttl_secs=None,
            content_type="text/html; charset=utf-8",
            expected_digest=None,
            add_headers=[],
        )
        return verdict(replace=new.encode(), update=update)
