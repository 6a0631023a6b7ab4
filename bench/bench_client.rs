//! Clients and probes for `bench/run.sh` (orchestrated by `bench/bench.py`)
//! where wrk and curl do not fit. Every subcommand prints one JSON object.
//!
//! ```sh
//! cargo run --release --example bench_client -- fanout --url URL --clients 500 [--timeout-secs 60]
//! cargo run --release --example bench_client -- memcpy [--mib 256] [--secs 1]
//! cargo run --release --example bench_client -- seed --index DIR/index --entries 1000000 [--remote files]
//! cargo run --release --example bench_client -- reload --gateway URL --plugins-dir D --wasm FILE \
//!     --sha HEX --hit URL --probe-prefix URL [--probe-suffix S] --probes N \
//!     --expect-variant yes|no [--name generic.wasm] [--conns 16] [--timeout-secs 10]
//! cargo run --release --example bench_client -- serve-bytes --port P --size BYTES
//! cargo run --release --example bench_client -- misses --url 'URL-with-{i}' --count N
//! cargo run --release --example bench_client -- get-read --url URL [--reps 2]
//! cargo run --release --example bench_client -- bs-read --addr HOST:PORT --instance I \
//!     --hash HEX --size BYTES [--reps 2] [--frame-kib 16] [--stream-window-kib 2048] \
//!     [--conn-window-kib 5120] [--adaptive no]
//! cargo run --release --example bench_client -- cas-seed --addr HOST:PORT --instance I \
//!     --count N --tag T [--size 128]
//! cargo run --release --example bench_client -- find-missing --addr HOST:PORT --instance I \
//!     --count 10000 --tag T --calls N
//! ```
//!
//! * `fanout`: N clients, each on its own connection, GET one URL at the
//!   same moment; reports per-client first-byte (first body byte) and
//!   last-byte times from the common start, statuses and byte counts.
//! * `memcpy`: single-threaded copy bandwidth between two buffers larger
//!   than the caches (the machine ceiling for a copying proxy).
//! * `seed`: writes N index entries (distinct fake blobs) into an artgate
//!   index with the library's `MetaStore` API (for startup time).
//! * `reload`: keeps a hit load running, renames a new `.wasm` into the
//!   plugin directory, and measures when `GET /plugins` reports its sha256
//!   and when a request planned by the adapter first carries
//!   `x-adapter-variant` (or stops carrying it); counts failed hits.
//! * `serve-bytes`: plain hyper (HTTP/1, keep-alive, one tokio worker like
//!   a pinned artgate) answering every GET with the same `--size` bytes
//!   from memory, with a `Content-Type` and an `ETag`: the ceiling a cache
//!   hit served through hyper can approach. Prints its address, then serves
//!   until killed.
//! * `misses`: N GETs one after the other, each on a fresh connection (as
//!   curl makes them), of the URL with `{i}` replaced by 0..N (distinct
//!   keys: every one a miss for a cache); reports the median and p90 time
//!   to the first body byte and to the last, and the statuses.
//! * `get-read`: `--reps` GETs of one URL over HTTP/1.1 with hyper, each on
//!   a fresh connection, the body counted and dropped; reports each read's
//!   GB/s and the best (the HTTP side of the `reapi_read` workload, with
//!   the same client stack as `bs-read`).
//! * `bs-read`: `--reps` ByteStream `Read`s of the blob `--hash`/`--size`
//!   of REAPI instance `--instance`, on one h2c connection of hyper-util's
//!   client (as `tests/support/grpc.rs` makes it), the data counted and
//!   dropped; reports each read's GB/s, the best, and the client's HTTP/2
//!   settings (hyper-util's defaults unless `--frame-kib` (the
//!   SETTINGS_MAX_FRAME_SIZE it advertises), `--stream-window-kib`,
//!   `--conn-window-kib` or `--adaptive yes` say otherwise).
//! * `cas-seed`: uploads `--count` distinct blobs of `--size` bytes (their
//!   contents made from `--tag` and their index) with `BatchUpdateBlobs`,
//!   in batches under 4 MiB.
//! * `find-missing`: `--calls` `FindMissingBlobs` calls one after the other
//!   on one connection, each with `--count` digests: every other one a
//!   blob `cas-seed --tag T` uploaded (the first `count / 2` of them), the
//!   others blobs that exist nowhere; reports the median, p99, mean, min
//!   and max latency and checks each answer names exactly the absent half.

use artgate::grpc::proto::bytestream::{ReadRequest, byte_stream_client::ByteStreamClient};
use artgate::grpc::proto::reapi::{
    BatchUpdateBlobsRequest, Digest as ReapiDigest, FindMissingBlobsRequest,
    batch_update_blobs_request,
    content_addressable_storage_client::ContentAddressableStorageClient,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn args() -> (String, HashMap<String, String>) {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().unwrap_or_default();
    let mut map = HashMap::new();
    while let Some(k) = it.next() {
        let k = k.trim_start_matches("--").to_string();
        let v = it.next().unwrap_or_default();
        map.insert(k, v);
    }
    (cmd, map)
}

fn get<'a>(m: &'a HashMap<String, String>, k: &str) -> &'a str {
    m.get(k)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("missing --{k}"))
}

fn num<T: std::str::FromStr>(m: &HashMap<String, String>, k: &str, default: T) -> T {
    m.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Target {
    addr: String,
    host: String,
    path: String,
}

fn parse_url(url: &str) -> Target {
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Target {
        addr: hostport.to_string(),
        host: hostport.to_string(),
        path: path.to_string(),
    }
}

/// One GET on a fresh connection. Returns (status, first body byte since
/// `start`, last byte since `start`, bytes, headers).
async fn one_get(
    t: &Target,
    start: Instant,
) -> Result<(u16, Duration, Duration, u64, http::HeaderMap), String> {
    let stream = tokio::net::TcpStream::connect(&t.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(&t.path)
        .header(http::header::HOST, &t.host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let headers_at = start.elapsed();
    let mut body = resp.into_body();
    let mut first = None;
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body after {n} bytes: {e}"))?;
        if let Some(d) = frame.data_ref() {
            if first.is_none() && !d.is_empty() {
                first = Some(start.elapsed());
            }
            n += d.len() as u64;
        }
    }
    let last = start.elapsed();
    Ok((status, first.unwrap_or(headers_at), last, n, headers))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn fanout(m: &HashMap<String, String>) {
    let t = Arc::new(parse_url(get(m, "url")));
    let clients: usize = num(m, "clients", 500);
    let timeout = Duration::from_secs_f64(num(m, "timeout-secs", 120.0));
    let gate = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let start_cell = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (t, gate, sc) = (t.clone(), gate.clone(), start_cell.clone());
        tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let start = *sc.get().unwrap();
            tokio::time::timeout(timeout, one_get(&t, start))
                .await
                .unwrap_or_else(|_| Err("timeout".into()))
        }));
    }
    start_cell.set(Instant::now()).unwrap();
    gate.wait().await;
    let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
    let mut errors: HashMap<String, u64> = HashMap::new();
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    let mut sizes: HashMap<u64, u64> = HashMap::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok((status, first, last, n, _)) => {
                *statuses.entry(status).or_default() += 1;
                *sizes.entry(n).or_default() += 1;
                if status == 200 {
                    firsts.push(first.as_secs_f64());
                    lasts.push(last.as_secs_f64());
                }
            }
            Err(e) => {
                let key: String = e.chars().take(80).collect();
                *errors.entry(key).or_default() += 1;
            }
        }
    }
    firsts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lasts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let out = serde_json::json!({
        "clients": clients,
        "ok": firsts.len(),
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
        "sizes": sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
        "errors": errors,
        "first_p50": pct(&firsts, 50.0), "first_p99": pct(&firsts, 99.0),
        "first_max": firsts.last().copied().unwrap_or(f64::NAN),
        "first_min": firsts.first().copied().unwrap_or(f64::NAN),
        "last_p50": pct(&lasts, 50.0), "last_p99": pct(&lasts, 99.0),
        "last_max": lasts.last().copied().unwrap_or(f64::NAN),
    });
    println!("{out}");
}

async fn misses(m: &HashMap<String, String>) {
    let url = get(m, "url");
    let count: usize = num(m, "count", 200);
    let (mut firsts, mut lasts) = (Vec::new(), Vec::new());
    let mut statuses: HashMap<String, u64> = HashMap::new();
    for i in 0..count {
        let t = parse_url(&url.replace("{i}", &i.to_string()));
        let start = Instant::now();
        match tokio::time::timeout(Duration::from_secs(30), one_get(&t, start)).await {
            Ok(Ok((status, first, last, _, _))) => {
                *statuses.entry(status.to_string()).or_default() += 1;
                if status == 200 {
                    firsts.push(first.as_secs_f64() * 1e3);
                    lasts.push(last.as_secs_f64() * 1e3);
                }
            }
            Ok(Err(e)) => *statuses.entry(e.chars().take(60).collect()).or_default() += 1,
            Err(_) => *statuses.entry("timeout".into()).or_default() += 1,
        }
    }
    firsts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lasts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let out = serde_json::json!({
        "count": count,
        "ok": firsts.len(),
        "statuses": statuses,
        "first_p50_ms": pct(&firsts, 50.0), "first_p90_ms": pct(&firsts, 90.0),
        "last_p50_ms": pct(&lasts, 50.0),
    });
    println!("{out}");
}

fn memcpy(m: &HashMap<String, String>) {
    let mib: usize = num(m, "mib", 256);
    let secs: f64 = num(m, "secs", 1.0);
    let n = mib << 20;
    let src = vec![7u8; n];
    let mut dst = vec![0u8; n];
    dst.copy_from_slice(&src); // fault the pages in
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        bytes += n as u64;
    }
    let gbs = bytes as f64 / start.elapsed().as_secs_f64() / 1e9;
    println!(
        "{}",
        serde_json::json!({"memcpy_gbs": gbs, "buffer_mib": mib})
    );
}

fn seed(m: &HashMap<String, String>) {
    use artgate::store::{
        Digest, Entry, EntryClass, EntryIndex, MetaStore, SledMetaStore, Validators,
    };
    let index = std::path::PathBuf::from(get(m, "index"));
    let entries: u64 = num(m, "entries", 1_000_000);
    let remote = m.get("remote").map(String::as_str).unwrap_or("files");
    let start = Instant::now();
    let store = SledMetaStore::open(&index).expect("open index");
    let now = artgate::store::now_ms();
    for i in 0..entries {
        let blob = Digest::of(format!("artgate-bench-seed-{i}").as_bytes());
        let entry = Entry {
            blob,
            size: 4096 + (i % 4096),
            status: 200,
            class: EntryClass::Immutable,
            stored_at_ms: now,
            expires_at_ms: None,
            ttl_ms: None,
            content_type: Some("application/octet-stream".into()),
            headers: vec![(
                "content-disposition".into(),
                format!("attachment; filename=\"f{i}.bin\""),
            )],
            etag: Some(format!("\"{}\"", blob.hex())),
            last_modified: None,
            validator: Validators::Refetch,
            compare_value: None,
            upstream_target: Some(format!("seed/{:02x}/f{i}.bin", i % 256)),
            references: vec![],
            stale_since_ms: None,
            rendered: Default::default(),
        };
        let key = format!("seed/{:02x}/f{i}.bin", i % 256);
        store
            .put_entry(remote, &key, &entry, false)
            .expect("put_entry");
    }
    store.flush().expect("flush");
    println!(
        "{}",
        serde_json::json!({"seeded": entries, "secs": start.elapsed().as_secs_f64()})
    );
}

async fn reload(m: &HashMap<String, String>) {
    let gw = get(m, "gateway").trim_end_matches('/').to_string();
    let dir = std::path::PathBuf::from(get(m, "plugins-dir"));
    let wasm = std::path::PathBuf::from(get(m, "wasm"));
    let sha = get(m, "sha").to_lowercase();
    let hit = Arc::new(parse_url(get(m, "hit")));
    let probe_prefix = get(m, "probe-prefix").to_string();
    let probe_suffix = m.get("probe-suffix").cloned().unwrap_or_default();
    let probes: usize = num(m, "probes", 1000);
    let conns: usize = num(m, "conns", 16);
    let expect_variant = get(m, "expect-variant") == "yes";
    let timeout = Duration::from_secs_f64(num(m, "timeout-secs", 10.0));
    let name = wasm
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches('.')
        .to_string();
    let name = m.get("name").cloned().unwrap_or(name);

    // Hit load: `conns` keep-alive connections looping GETs.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..conns {
        let (hit, stop, ok, failed) = (hit.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let mut sender = None;
            while !stop.load(Ordering::Relaxed) {
                if sender.is_none() {
                    match tokio::net::TcpStream::connect(&hit.addr).await {
                        Ok(s) => {
                            s.set_nodelay(true).ok();
                            match hyper::client::conn::http1::handshake(TokioIo::new(s)).await {
                                Ok((snd, conn)) => {
                                    tokio::spawn(async move {
                                        let _ = conn.await;
                                    });
                                    sender = Some(snd);
                                }
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            continue;
                        }
                    }
                }
                let snd = sender.as_mut().unwrap();
                let req = http::Request::get(&hit.path)
                    .header(http::header::HOST, &hit.host)
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let good = match snd.send_request(req).await {
                    Ok(r) if r.status() == 200 => r.into_body().collect().await.is_ok(),
                    _ => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    sender = None;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok0, failed0) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Land the new version: write under a hidden name, then rename.
    let hidden = dir.join(format!(".{name}.tmp"));
    std::fs::copy(&wasm, &hidden).expect("copy wasm");
    std::fs::File::open(&hidden).unwrap().sync_all().ok();
    let t0 = Instant::now();
    std::fs::rename(&hidden, dir.join(&name)).expect("rename wasm");

    let mut listed_at = None;
    let mut served_at = None;
    let mut probe_i = 0usize;
    let mut probe_errors = 0u64;
    while t0.elapsed() < timeout && (listed_at.is_none() || served_at.is_none()) {
        if listed_at.is_none()
            && let Ok(r) = client.get(format!("{gw}/plugins")).send().await
            && let Ok(text) = r.text().await
            && text.to_lowercase().contains(&sha)
        {
            listed_at = Some(t0.elapsed());
        }
        if served_at.is_none() && probe_i < probes {
            let url = format!("{probe_prefix}{probe_i}{probe_suffix}");
            probe_i += 1;
            match client.get(&url).send().await {
                Ok(r) => {
                    let variant = r.headers().contains_key("x-adapter-variant");
                    if r.status() != 200 {
                        probe_errors += 1;
                    }
                    let _ = r.bytes().await;
                    if variant == expect_variant {
                        served_at = Some(t0.elapsed());
                    }
                }
                Err(_) => probe_errors += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Keep the load running a little past the switch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for t in load {
        let _ = t.await;
    }
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    println!(
        "{}",
        serde_json::json!({
            "listed_secs": secs(listed_at),
            "served_secs": secs(served_at),
            "probes": probe_i,
            "probe_errors": probe_errors,
            "hits_ok": ok.load(Ordering::SeqCst) - ok0,
            "hits_failed": failed.load(Ordering::SeqCst),
            "hits_failed_before": failed0,
        })
    );
}

/// `serve-bytes`: the same bytes for every request, straight from memory.
async fn serve_bytes(m: &HashMap<String, String>) {
    let port: u16 = num(m, "port", 0u16);
    let body = Bytes::from(vec![b'x'; num(m, "size", 1024)]);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding the serve-bytes port");
    println!(
        "{}",
        serde_json::json!({ "addr": listener.local_addr().unwrap().to_string() })
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let resp = hyper::Response::builder()
                    .header("content-type", "application/octet-stream")
                    .header("etag", "\"0123456789abcdef\"")
                    .body(http_body_util::Full::new(body.clone()))
                    .unwrap();
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The h2c client the REAPI subcommands use: hyper-util's legacy client,
/// HTTP/2 only (prior knowledge), TCP_NODELAY as gRPC clients set it, with
/// the HTTP/2 settings the options give (hyper-util's defaults otherwise);
/// also those settings as JSON, for the report.
fn grpc_channel(m: &HashMap<String, String>) -> (GrpcChannel, serde_json::Value) {
    let mut b = Client::builder(TokioExecutor::new());
    b.http2_only(true);
    let kib = |k: &str| {
        m.get(k)
            .and_then(|v| v.parse::<u32>().ok())
            .and_then(|v| v.checked_mul(1024))
    };
    if let Some(v) = kib("frame-kib") {
        b.http2_max_frame_size(v);
    }
    if let Some(v) = kib("stream-window-kib") {
        b.http2_initial_stream_window_size(v);
    }
    if let Some(v) = kib("conn-window-kib") {
        b.http2_initial_connection_window_size(v);
    }
    let adaptive = m.get("adaptive").is_some_and(|v| v == "yes");
    if adaptive {
        b.http2_adaptive_window(true);
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let shown = |k: &str| {
        m.get(k)
            .map_or_else(|| "default".to_string(), |v| format!("{v} KiB"))
    };
    let settings = serde_json::json!({
        "max_frame": shown("frame-kib"),
        "stream_window": shown("stream-window-kib"),
        "conn_window": shown("conn-window-kib"),
        "adaptive_window": adaptive,
    });
    (b.build(connector), settings)
}

/// The transport of the REAPI subcommands.
type GrpcChannel = Client<HttpConnector, tonic::body::Body>;

/// `http://ADDR` for `--addr`.
fn origin(m: &HashMap<String, String>) -> http::Uri {
    format!("http://{}", get(m, "addr"))
        .parse()
        .expect("--addr is HOST:PORT")
}

/// Print `what` failed with `e` and exit 1 (bench.py shows stderr).
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what} failed: {e}");
    std::process::exit(1);
}

async fn get_read(m: &HashMap<String, String>) {
    let t = parse_url(get(m, "url"));
    let reps: usize = num(m, "reps", 2);
    let mut reads = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        let (status, _, last, n, _) = one_get(&t, start).await.unwrap_or_else(|e| fail("GET", e));
        if status != 200 {
            fail("GET", format!("status {status}"));
        }
        let secs = last.as_secs_f64();
        reads.push(serde_json::json!({"bytes": n, "secs": secs, "gbs": n as f64 / secs / 1e9}));
    }
    let best = reads
        .iter()
        .filter_map(|r| r["gbs"].as_f64())
        .fold(0.0, f64::max);
    println!("{}", serde_json::json!({"reads": reads, "best_gbs": best}));
}

async fn bs_read(m: &HashMap<String, String>) {
    let (channel, settings) = grpc_channel(m);
    let origin = origin(m);
    let size: u64 = num(m, "size", 0);
    let name = format!("{}/blobs/{}/{size}", get(m, "instance"), get(m, "hash"));
    let reps: usize = num(m, "reps", 2);
    let mut reads = Vec::new();
    for _ in 0..reps {
        let mut client = ByteStreamClient::with_origin(channel.clone(), origin.clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let start = Instant::now();
        let mut stream = client
            .read(ReadRequest {
                resource_name: name.clone(),
                read_offset: 0,
                read_limit: 0,
            })
            .await
            .unwrap_or_else(|e| fail("ByteStream Read", e))
            .into_inner();
        let (mut n, mut messages) = (0u64, 0u64);
        while let Some(msg) = stream
            .message()
            .await
            .unwrap_or_else(|e| fail("ByteStream Read", e))
        {
            n += msg.data.len() as u64;
            messages += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        if n != size {
            fail("ByteStream Read", format!("{n} bytes of {size}"));
        }
        reads.push(serde_json::json!({
            "bytes": n, "secs": secs, "gbs": n as f64 / secs / 1e9, "messages": messages,
        }));
    }
    let best = reads
        .iter()
        .filter_map(|r| r["gbs"].as_f64())
        .fold(0.0, f64::max);
    println!(
        "{}",
        serde_json::json!({"reads": reads, "best_gbs": best, "client": settings})
    );
}

/// Blob `i` of the set `tag`: `size` bytes (at least its label's), distinct
/// for every (tag, i).
fn seed_blob(tag: &str, i: usize, size: usize) -> Vec<u8> {
    let mut b = format!("artgate-bench-{tag}-{i}-").into_bytes();
    let mut j = 0usize;
    while b.len() < size {
        b.push((i.wrapping_mul(31).wrapping_add(j) % 251) as u8);
        j += 1;
    }
    b
}

/// The REAPI digest of `data`.
fn reapi_digest(data: &[u8]) -> ReapiDigest {
    use sha2::Digest as _;
    ReapiDigest {
        hash: hex::encode(sha2::Sha256::digest(data)),
        size_bytes: data.len() as i64,
    }
}

async fn cas_seed(m: &HashMap<String, String>) {
    let (channel, _) = grpc_channel(m);
    let mut client = ContentAddressableStorageClient::with_origin(channel, origin(m));
    let instance = get(m, "instance").to_string();
    let tag = get(m, "tag");
    let count: usize = num(m, "count", 5000);
    let size: usize = num(m, "size", 128);
    let per_batch = ((3 * 1024 * 1024) / (size + 128)).clamp(1, 1000);
    let start = Instant::now();
    let mut i = 0;
    let mut failed = 0usize;
    while i < count {
        let end = (i + per_batch).min(count);
        let requests = (i..end)
            .map(|k| {
                let data = seed_blob(tag, k, size);
                batch_update_blobs_request::Request {
                    digest: Some(reapi_digest(&data)),
                    data: Bytes::from(data),
                    compressor: 0,
                }
            })
            .collect();
        let resp = client
            .batch_update_blobs(BatchUpdateBlobsRequest {
                instance_name: instance.clone(),
                requests,
                digest_function: 0,
            })
            .await
            .unwrap_or_else(|e| fail("BatchUpdateBlobs", e))
            .into_inner();
        failed += resp
            .responses
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.code != 0))
            .count();
        i = end;
    }
    if failed > 0 {
        fail(
            "BatchUpdateBlobs",
            format!("{failed} of {count} blobs refused"),
        );
    }
    println!(
        "{}",
        serde_json::json!({"seeded": count, "secs": start.elapsed().as_secs_f64()})
    );
}

async fn find_missing(m: &HashMap<String, String>) {
    let (channel, _) = grpc_channel(m);
    let mut client = ContentAddressableStorageClient::with_origin(channel, origin(m))
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let instance = get(m, "instance").to_string();
    let tag = get(m, "tag");
    let count: usize = num(m, "count", 10_000);
    let calls: usize = num(m, "calls", 100);
    let size: usize = num(m, "size", 128);
    let absent_tag = format!("{tag}-absent");
    let mut digests = Vec::with_capacity(count);
    let mut absent = std::collections::HashSet::new();
    for i in 0..count {
        if i % 2 == 0 {
            digests.push(reapi_digest(&seed_blob(tag, i / 2, size)));
        } else {
            let d = reapi_digest(&seed_blob(&absent_tag, i / 2, size));
            absent.insert(d.hash.clone());
            digests.push(d);
        }
    }
    let mut ms = Vec::with_capacity(calls);
    let mut wrong = 0usize;
    for _ in 0..calls {
        let req = FindMissingBlobsRequest {
            instance_name: instance.clone(),
            blob_digests: digests.clone(),
            digest_function: 0,
        };
        let start = Instant::now();
        let resp = client
            .find_missing_blobs(req)
            .await
            .unwrap_or_else(|e| fail("FindMissingBlobs", e))
            .into_inner();
        ms.push(start.elapsed().as_secs_f64() * 1e3);
        let missing = &resp.missing_blob_digests;
        if missing.len() != absent.len() || !missing.iter().all(|d| absent.contains(&d.hash)) {
            wrong += 1;
        }
    }
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    ms.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "calls": calls, "digests": count, "wrong_answers": wrong,
            "p50_ms": pct(&ms, 50.0), "p99_ms": pct(&ms, 99.0), "mean_ms": mean,
            "min_ms": ms.first().copied().unwrap_or(f64::NAN),
            "max_ms": ms.last().copied().unwrap_or(f64::NAN),
        })
    );
}

fn main() {
    let (cmd, m) = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(num(&m, "threads", 1))
        .enable_all()
        .build()
        .unwrap();
    match cmd.as_str() {
        "fanout" => rt.block_on(fanout(&m)),
        "memcpy" => memcpy(&m),
        "seed" => seed(&m),
        "reload" => rt.block_on(reload(&m)),
        "serve-bytes" => rt.block_on(serve_bytes(&m)),
        "misses" => rt.block_on(misses(&m)),
        "get-read" => rt.block_on(get_read(&m)),
        "bs-read" => rt.block_on(bs_read(&m)),
        "cas-seed" => rt.block_on(cas_seed(&m)),
        "find-missing" => rt.block_on(find_missing(&m)),
        other => {
            eprintln!(
                "unknown subcommand {other:?}: fanout | memcpy | seed | reload | serve-bytes | misses | get-read | bs-read | cas-seed | find-missing"
            );
            std::process::exit(2);
        }
    }
}
