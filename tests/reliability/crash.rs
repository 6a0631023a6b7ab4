//! Crash cycles: the `artgate` binary under 32 concurrent uploads to a
//! hosted remote and 32 concurrent pull-through fills is `kill -9`ed at a
//! random moment; `artgate fsck --verify` checks the store; the gateway is
//! restarted and everything is read back.
//!
//! Per cycle, checked against the clients' own log of what was
//! acknowledged: no digest mismatch served, no partial object (every GET is
//! a 404 or exactly the logged bytes, ended cleanly), no acknowledged
//! upload lost, no upload whose refusal or replacement the client saw comes
//! back, no spool file after the startup cleanup, no damage in the fsck
//! report, and the store opens every time.
//!
//! CI runs 20 cycles; `ARTGATE_CRASH_CYCLES=N` runs N (see RELIABILITY.md),
//! `ARTGATE_SEED` replays a run.

use super::harness::{
    KIB, MIB, Proc, Rng, client, damage, drain, files_in, fsck, seed, sha256_hex, write_config,
};
use crate::support::bytes;
use crate::support::upstream::{Resource, Upstream};
use futures_util::StreamExt as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Concurrent upload clients.
const UPLOADERS: usize = 32;
/// Concurrent pull-through clients.
const FILLERS: usize = 32;
/// Keys of the hosted remote; uploader `t` owns keys `t`, `t + 32`, … so
/// one key never has two uploads in flight.
const HOSTED_KEYS: usize = 4 * UPLOADERS;
/// Objects the upstream serves to the pull-through remote.
const OBJECTS: usize = 128;
/// Cycles in CI.
const DEFAULT_CYCLES: usize = 20;
/// `fsck --repair` (removes orphan blobs the kills leave) every this many
/// cycles; the other cycles leave spools to the startup cleanup.
const REPAIR_EVERY: usize = 10;
/// Latest kill, after the workload starts.
const KILL_WINDOW_MS: u64 = 1200;

/// One uploaded content version, reproducible from its seed and length.
#[derive(Clone, Debug)]
struct Version {
    len: usize,
    sha: String,
}

impl Version {
    fn new(seed: u64, len: usize) -> (Version, Vec<u8>) {
        let body = bytes(len, seed);
        let v = Version {
            len,
            sha: sha256_hex(&body),
        };
        (v, body)
    }
}

/// What the client learnt about one upload.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ack {
    /// Still being sent.
    Pending,
    /// 200/201: must survive.
    Acked,
    /// Another status: must never be visible.
    Refused,
    /// The connection broke (the kill): may or may not be stored.
    Unknown,
}

/// A hosted key: what the last read-back found, and the uploads since.
#[derive(Default)]
struct KeyState {
    settled: Option<Version>,
    since: Vec<(Version, Ack)>,
}

impl KeyState {
    /// Contents a read may return now (`None`: 404): the last acknowledged
    /// version (or, without one, what was there before), and any later
    /// upload whose outcome the client does not know.
    fn acceptable(&self) -> Vec<Option<&Version>> {
        let last = self.since.iter().rposition(|(_, a)| *a == Ack::Acked);
        let (mut out, from) = match last {
            Some(i) => (vec![Some(&self.since[i].0)], i + 1),
            None => (vec![self.settled.as_ref()], 0),
        };
        for (v, a) in &self.since[from..] {
            if matches!(a, Ack::Unknown | Ack::Pending) {
                out.push(Some(v));
            }
        }
        out
    }
}

/// Counters over the whole run (the figures RELIABILITY.md records).
#[derive(Default)]
struct Figures {
    uploads_sent: AtomicU64,
    uploads_acked: AtomicU64,
    uploads_cut: AtomicU64,
    fills_sent: AtomicU64,
    fills_complete: AtomicU64,
    fills_from_remote: AtomicU64,
    fills_cut: AtomicU64,
    reads_back: AtomicU64,
    spools_left: AtomicU64,
    spools_cleaned: AtomicU64,
    orphans_left: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, SeqCst);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(SeqCst)
}

/// Everything the workload and the checks share.
struct World {
    keys: Mutex<Vec<KeyState>>,
    objects: Vec<(usize, String)>,
    figures: Figures,
    /// Set just before the kill: errors seen while it is unset happened
    /// with a healthy gateway and are violations.
    killing: AtomicBool,
    /// Tells the workload to stop starting requests.
    stop: AtomicBool,
    violations: Mutex<Vec<String>>,
}

impl World {
    fn violation(&self, v: String) {
        self.violations.lock().unwrap().push(v);
    }
}

/// The size of upstream object `j` (object 0 is empty).
fn object_size(seed: u64, j: usize) -> usize {
    if j == 0 {
        return 0;
    }
    Rng::new(seed ^ 0x000b_1ec7 ^ ((j as u64) << 20)).size(KIB, 2 * MIB)
}

fn object_seed(seed: u64, j: usize) -> u64 {
    seed.rotate_left(17) ^ j as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_cycles_lose_nothing_acknowledged_and_serve_nothing_partial() {
    let cycles: usize = std::env::var("ARTGATE_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let seed = seed("crash cycles");
    let up = Upstream::start().await;
    let mut objects = Vec::new();
    for j in 0..OBJECTS {
        let body = bytes(object_size(seed, j), object_seed(seed, j));
        objects.push((body.len(), sha256_hex(&body)));
        up.put(
            &format!("/o{j}.bin"),
            Resource {
                body: body.into(),
                chunk: Some(32 * KIB),
                chunk_delay: Some(Duration::from_millis(1)),
                ..Default::default()
            },
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = write_config(
        dir.path(),
        &data,
        "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"10s\"",
        &format!(
            "[[remote]]\nname = \"hosted\"\npackage = \"local\"\n\n[[remote]]\nname = \"pull\"\npackage = \"generic\"\nupstream = {:?}\n",
            up.url()
        ),
    );
    let world = Arc::new(World {
        keys: Mutex::new((0..HOSTED_KEYS).map(|_| KeyState::default()).collect()),
        objects,
        figures: Figures::default(),
        killing: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        violations: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut kills = 0u64;
    let mut repairs = 0u64;
    for cycle in 0..=cycles {
        let mut gw = Proc::start(&cfg).await;
        let tmp = files_in(&data.join("tmp"));
        if !tmp.is_empty() {
            world.violation(format!(
                "cycle {cycle}: data/tmp holds {tmp:?} after the startup cleanup"
            ));
        }
        read_back(&gw, &world).await;
        check(&world, cycle, seed, &gw);
        if cycle == cycles {
            gw.terminate().await;
            break;
        }

        // The workload, then the kill at a random moment.
        let c = client();
        let r = c
            .put(gw.url("/cache/flush?remote=pull"))
            .send()
            .await
            .expect("flush");
        assert_eq!(r.status(), 200, "flush");
        world.killing.store(false, SeqCst);
        world.stop.store(false, SeqCst);
        let mut tasks = Vec::new();
        for t in 0..UPLOADERS {
            let rng = Rng::new(rng.next());
            tasks.push(tokio::spawn(uploader(
                world.clone(),
                c.clone(),
                gw.url("/api/v1/remote/hosted/"),
                t,
                rng,
            )));
        }
        for _ in 0..FILLERS {
            let rng = Rng::new(rng.next());
            tasks.push(tokio::spawn(filler(
                world.clone(),
                c.clone(),
                gw.url("/api/v1/remote/pull/"),
                rng,
            )));
        }
        let kill_at = Duration::from_millis(rng.range(0, KILL_WINDOW_MS));
        tokio::time::sleep(kill_at).await;
        // No new requests from here on; the ones in flight meet the kill.
        world.stop.store(true, SeqCst);
        world.killing.store(true, SeqCst);
        gw.kill9();
        kills += 1;
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .is_err()
            {
                world.violation(format!("cycle {cycle}: a client hung after the kill"));
            }
        }
        // Uploads the client never heard back on may or may not be stored.
        for k in world.keys.lock().unwrap().iter_mut() {
            for (_, a) in k.since.iter_mut() {
                if *a == Ack::Pending {
                    *a = Ack::Unknown;
                }
            }
        }

        // fsck while the gateway is down (sled locks the index).
        let (_, report) = fsck(&cfg, &["--verify"]).await;
        let bad = damage(&report);
        if !bad.is_empty() {
            world.violation(format!(
                "cycle {cycle}: fsck after kill -9 at {kill_at:?} found damage {bad:?}: {report:#}"
            ));
        }
        let f = &world.figures;
        add(&f.spools_left, report["spools"].as_u64().unwrap_or(0));
        add(
            &f.orphans_left,
            report["orphan_blobs"].as_u64().unwrap_or(0),
        );
        if cycle % REPAIR_EVERY == REPAIR_EVERY - 1 {
            let (_, report) = fsck(&cfg, &["--repair"]).await;
            assert_eq!(report["repaired"], true, "{report:#}");
            repairs += 1;
        } else {
            add(&f.spools_cleaned, report["spools"].as_u64().unwrap_or(0));
        }
        check(&world, cycle, seed, &gw);
        if cycles > DEFAULT_CYCLES && (cycle + 1) % 25 == 0 {
            eprintln!(
                "crash cycles: {} of {cycles} done in {:.0?}",
                cycle + 1,
                started.elapsed()
            );
        }
    }

    // A clean shutdown after the last read-back leaves a store with no
    // damage.
    let (_, report) = fsck(&cfg, &["--verify"]).await;
    assert!(damage(&report).is_empty(), "final fsck: {report:#}");
    let f = &world.figures;
    eprintln!(
        "crash cycles: seed {seed}: {cycles} cycles, {kills} kills, {repairs} fsck repairs in {:.0?}; \
         uploads sent {}, acknowledged {}, cut by the kill {}; fills sent {}, complete {} ({} from the upstream), cut {}; \
         objects read back after restarts {}; spools left by kills {} (removed at startup {}), orphan blobs {}; \
         lost acknowledged uploads 0, digest mismatches 0, partial objects 0, damage 0",
        started.elapsed(),
        get(&f.uploads_sent),
        get(&f.uploads_acked),
        get(&f.uploads_cut),
        get(&f.fills_sent),
        get(&f.fills_complete),
        get(&f.fills_from_remote),
        get(&f.fills_cut),
        get(&f.reads_back),
        get(&f.spools_left),
        get(&f.spools_cleaned),
        get(&f.orphans_left),
    );
    assert!(
        get(&f.uploads_acked) > 0 && get(&f.fills_from_remote) > 0,
        "the workload did nothing"
    );
}

/// Panic with every violation so far, the seed and the log.
fn check(world: &World, cycle: usize, seed: u64, gw: &Proc) {
    let v = world.violations.lock().unwrap();
    if !v.is_empty() {
        panic!(
            "crash cycles (seed {seed}, replay with ARTGATE_SEED={seed}) failed in cycle {cycle}:\n{}\n--- artgate log (tail) ---\n{}",
            v.join("\n"),
            gw.log_tail()
        );
    }
}

/// Upload new versions of this uploader's keys until told to stop.
async fn uploader(world: Arc<World>, c: reqwest::Client, base: String, t: usize, mut rng: Rng) {
    let f = &world.figures;
    while !world.stop.load(SeqCst) {
        let k = t + UPLOADERS * rng.range(0, (HOSTED_KEYS / UPLOADERS) as u64) as usize;
        let (v, body) = Version::new(rng.next(), rng.size(KIB, 512 * KIB));
        let idx = {
            let mut keys = world.keys.lock().unwrap();
            keys[k].since.push((v.clone(), Ack::Pending));
            keys[k].since.len() - 1
        };
        add(&f.uploads_sent, 1);
        let chunks: Vec<bytes::Bytes> = body
            .chunks(32 * KIB)
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        let stream = futures_util::stream::iter(chunks).then(|c| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok::<_, std::io::Error>(c)
        });
        let mut req = c
            .put(format!("{base}k{k}.bin"))
            .body(reqwest::Body::wrap_stream(stream));
        // Half the uploads declare their length, half are chunked.
        if rng.next().is_multiple_of(2) {
            req = req.header("content-length", v.len);
        }
        let ack = match req.send().await {
            Ok(r) if r.status().is_success() => {
                add(&f.uploads_acked, 1);
                Ack::Acked
            }
            Ok(r) => {
                world.violation(format!(
                    "upload of k{k} ({} bytes) answered {} with a healthy gateway",
                    v.len,
                    r.status()
                ));
                Ack::Refused
            }
            Err(e) => {
                if !world.killing.load(SeqCst) {
                    world.violation(format!("upload of k{k} failed before the kill: {e}"));
                }
                add(&f.uploads_cut, 1);
                Ack::Unknown
            }
        };
        world.keys.lock().unwrap()[k].since[idx].1 = ack;
    }
}

/// GET random upstream objects through the pull-through remote until told
/// to stop; every body that ends cleanly must be exactly the object.
async fn filler(world: Arc<World>, c: reqwest::Client, base: String, mut rng: Rng) {
    let f = &world.figures;
    while !world.stop.load(SeqCst) {
        let j = rng.range(0, OBJECTS as u64) as usize;
        let (len, sha) = &world.objects[j];
        add(&f.fills_sent, 1);
        let resp = match c.get(format!("{base}o{j}.bin")).send().await {
            Ok(r) => r,
            Err(e) => {
                if !world.killing.load(SeqCst) {
                    world.violation(format!("GET o{j} failed before the kill: {e}"));
                }
                add(&f.fills_cut, 1);
                continue;
            }
        };
        if resp.status() != 200 {
            world.violation(format!(
                "GET o{j} answered {} with a healthy gateway",
                resp.status()
            ));
            continue;
        }
        let remote = resp
            .headers()
            .get("x-artifact-source")
            .is_some_and(|v| v == "remote");
        let got = drain(resp).await;
        match got.error {
            Some(e) => {
                if !world.killing.load(SeqCst) {
                    world.violation(format!(
                        "GET o{j} aborted after {} bytes before the kill: {e}",
                        got.len
                    ));
                }
                add(&f.fills_cut, 1);
            }
            None if got.len != *len as u64 || got.sha256 != *sha => world.violation(format!(
                "GET o{j} ended cleanly with {} bytes (sha256 {}), not the object ({len} bytes, {sha})",
                got.len, got.sha256
            )),
            None => {
                add(&f.fills_complete, 1);
                if remote {
                    add(&f.fills_from_remote, 1);
                }
            }
        }
    }
}

/// What one read-back GET found.
enum Found {
    Missing,
    Complete(u64, String),
    Broken(String),
}

async fn read(c: &reqwest::Client, url: String) -> Found {
    let resp = match c.get(&url).send().await {
        Ok(r) => r,
        Err(e) => return Found::Broken(format!("request failed: {e}")),
    };
    match resp.status().as_u16() {
        404 => Found::Missing,
        200 => {
            let declared = resp
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let got = drain(resp).await;
            match got.error {
                Some(e) => Found::Broken(format!(
                    "a partial object: the body broke off after {} bytes: {e}",
                    got.len
                )),
                None if declared.is_some_and(|d| d != got.len) => {
                    Found::Broken(format!("Content-Length {declared:?} but {} bytes", got.len))
                }
                None => Found::Complete(got.len, got.sha256),
            }
        }
        s => Found::Broken(format!("status {s}")),
    }
}

/// After a restart, with no other traffic: every hosted key holds one of
/// its acceptable versions (or is absent when that is acceptable), and
/// every upstream object is served whole through the pull-through remote.
async fn read_back(gw: &Proc, world: &Arc<World>) {
    let c = client();
    let hosted = futures_util::stream::iter(0..HOSTED_KEYS)
        .map(|k| {
            let (c, url) = (
                c.clone(),
                gw.url(&format!("/api/v1/remote/hosted/k{k}.bin")),
            );
            async move { (k, read(&c, url).await) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    {
        let mut keys = world.keys.lock().unwrap();
        for (k, found) in hosted {
            let state = &mut keys[k];
            let ok = state.acceptable();
            let observed: Result<Option<Version>, String> = match &found {
                Found::Missing if ok.iter().any(Option::is_none) => Ok(None),
                Found::Missing => Err("404: an acknowledged upload was lost".into()),
                Found::Complete(len, sha) => ok
                    .iter()
                    .flatten()
                    .find(|v| v.len as u64 == *len && v.sha == *sha)
                    .map(|v| Some((*v).clone()))
                    .ok_or_else(|| {
                        let known = state.since.iter().any(|(v, _)| v.sha == *sha)
                            || state.settled.as_ref().is_some_and(|v| v.sha == *sha);
                        if known {
                            format!("{len} bytes of a version that was refused or replaced")
                        } else {
                            format!("{len} bytes (sha256 {sha}) that were never uploaded")
                        }
                    }),
                Found::Broken(why) => Err(why.clone()),
            };
            match observed {
                Ok(v) => {
                    state.settled = v;
                    state.since.clear();
                }
                Err(why) => {
                    let want: Vec<String> = ok
                        .iter()
                        .map(|v| v.map_or("404".into(), |v| format!("{} bytes", v.len)))
                        .collect();
                    world.violation(format!("hosted k{k}: {why} (acceptable: {want:?})"));
                }
            }
        }
    }
    let pulled = futures_util::stream::iter(0..OBJECTS)
        .map(|j| {
            let (c, url) = (c.clone(), gw.url(&format!("/api/v1/remote/pull/o{j}.bin")));
            async move { (j, read(&c, url).await) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (j, found) in pulled {
        let (len, sha) = &world.objects[j];
        match found {
            Found::Complete(l, s) if l == *len as u64 && s == *sha => {}
            Found::Complete(l, s) => world.violation(format!(
                "pulled o{j}: a digest mismatch: {l} bytes (sha256 {s}), want {len} bytes ({sha})"
            )),
            Found::Missing => world.violation(format!("pulled o{j}: 404")),
            Found::Broken(why) => world.violation(format!("pulled o{j}: {why}")),
        }
    }
    add(&world.figures.reads_back, (HOSTED_KEYS + OBJECTS) as u64);
}
