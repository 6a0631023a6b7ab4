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
//!
//! The cycle is parametrised ([`Params`]): `failpoints.rs` runs it with a
//! smaller workload and, instead of the `kill -9`, a failpoint that aborts
//! the gateway at one step of the commit protocol.
//!
//! Below the cycles, `kill -9` at chosen moments: during a fill (at exact
//! byte offsets) and during hosted uploads.

use super::harness::{Rng, seed};
use crate::support::bytes;
use crate::support::child::{
    ChildGateway, DAMAGE, damage, fsck, write_config, write_hosted_and_pull_config,
};
use crate::support::eventually;
use crate::support::gateway::generic_remote;
use crate::support::http::{client, drain, drain_progress};
use crate::support::http::{get_header_body, send};
use crate::support::upstream::{Resource, Upstream};
use crate::support::{KIB, MIB, files_in, sha256_hex, spool_files};
use futures_util::StreamExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cycles in CI.
const DEFAULT_CYCLES: usize = 20;
/// `fsck --repair` (removes orphan blobs the kills leave) every this many
/// cycles; the other cycles leave spools to the startup cleanup.
const REPAIR_EVERY: usize = 10;
/// An error a client saw this long before the gateway was seen dead (a
/// failpoint crash) happened with a healthy gateway.
pub(super) const EXIT_GRACE: Duration = Duration::from_millis(250);

/// How a cycle ends the gateway.
#[derive(Clone, Debug)]
pub(super) enum Crash {
    /// `kill -9` at a random moment in the first `window_ms` of the
    /// workload.
    Kill9 {
        /// Latest kill, after the workload starts.
        window_ms: u64,
    },
    /// The failpoint `step` aborts the gateway (`return(abort)`) after
    /// letting 0 to `max_skip - 1` hits pass (random per cycle); the
    /// gateway is `kill -9`ed after `limit` when it never got there (not an
    /// injection).
    Failpoint {
        /// The failpoint name (`artgate::store::failpoint::STEPS`).
        step: &'static str,
        /// Hits let through are below this.
        max_skip: u64,
        /// How long to wait for the abort.
        limit: Duration,
    },
}

/// The workload and the crash of a run.
#[derive(Clone, Debug)]
pub(super) struct Params {
    /// Cycles (restarts after a crash).
    pub cycles: usize,
    /// With [`Crash::Failpoint`]: stop once this many cycles ended in an
    /// injected abort (`cycles` is then the most that may be run).
    pub injections: Option<u64>,
    /// Concurrent upload clients.
    pub uploaders: usize,
    /// Concurrent pull-through clients.
    pub fillers: usize,
    /// Keys of the hosted remote, a multiple of `uploaders`: uploader `t`
    /// owns keys `t`, `t + uploaders`, … so one key never has two uploads
    /// in flight.
    pub hosted_keys: usize,
    /// Objects the upstream serves to the pull-through remote.
    pub objects: usize,
    /// Largest upstream object (sizes are log-uniform from 1 KiB).
    pub max_object: usize,
    /// Largest upload.
    pub max_upload: usize,
    /// How the gateway dies.
    pub crash: Crash,
    /// Flush the pull-through remote (its gc deletes blob files) after
    /// this much workload instead of before it.
    pub flush_after: Option<Duration>,
}

impl Params {
    /// The `kill -9` run: 32 + 32 clients, 128 keys, 128 objects up to
    /// 2 MiB, uploads up to 512 KiB.
    fn kill9(cycles: usize) -> Params {
        Params {
            cycles,
            injections: None,
            uploaders: 32,
            fillers: 32,
            hosted_keys: 128,
            objects: 128,
            max_object: 2 * MIB,
            max_upload: 512 * KIB,
            crash: Crash::Kill9 { window_ms: 1200 },
            flush_after: None,
        }
    }
}

/// What a run did (the figures RELIABILITY.md records).
#[derive(Debug, Default, Clone)]
pub(super) struct Summary {
    /// Cycles run.
    pub cycles: u64,
    /// Cycles whose gateway died by the injected abort (SIGABRT).
    pub injections: u64,
    /// Cycles ended by `kill -9` (all of them with [`Crash::Kill9`]).
    pub kills: u64,
    /// Uploads acknowledged.
    pub uploads_acked: u64,
    /// Uploads cut by the crash.
    pub uploads_cut: u64,
    /// Fills that ended cleanly and whole.
    pub fills_complete: u64,
    /// Fills cut by the crash.
    pub fills_cut: u64,
    /// Objects read back after restarts.
    pub reads_back: u64,
    /// Spools the crashes left (removed at startup or by fsck).
    pub spools_left: u64,
    /// Orphan blobs the crashes left.
    pub orphans_left: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// One uploaded content version, reproducible from its seed and length.
#[derive(Clone, Debug)]
pub(super) struct Version {
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
pub(super) struct KeyState {
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
pub(super) struct Figures {
    pub uploads_sent: AtomicU64,
    pub uploads_acked: AtomicU64,
    pub uploads_cut: AtomicU64,
    pub fills_sent: AtomicU64,
    pub fills_complete: AtomicU64,
    pub fills_from_remote: AtomicU64,
    pub fills_cut: AtomicU64,
    pub reads_back: AtomicU64,
    pub spools_left: AtomicU64,
    pub spools_cleaned: AtomicU64,
    pub orphans_left: AtomicU64,
}

impl Figures {
    /// What the clients did, for a run's summary line.
    pub(super) fn workload(&self) -> String {
        format!(
            "uploads sent {}, acknowledged {}, cut by the crash {}; fills sent {}, complete {} ({} from the upstream), cut {}; \
             objects read back after restarts {}; spools left by crashes {}",
            get(&self.uploads_sent),
            get(&self.uploads_acked),
            get(&self.uploads_cut),
            get(&self.fills_sent),
            get(&self.fills_complete),
            get(&self.fills_from_remote),
            get(&self.fills_cut),
            get(&self.reads_back),
            get(&self.spools_left),
        )
    }
}

pub(super) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, SeqCst);
}

pub(super) fn get(c: &AtomicU64) -> u64 {
    c.load(SeqCst)
}

/// Everything the workload and the checks share.
pub(super) struct World {
    pub p: Params,
    pub keys: Mutex<Vec<KeyState>>,
    pub objects: Vec<(usize, String)>,
    pub figures: Figures,
    /// Set just before the kill: errors seen while it is unset happened
    /// with a healthy gateway and are violations.
    pub killing: AtomicBool,
    /// Tells the workload to stop starting requests.
    pub stop: AtomicBool,
    pub violations: Mutex<Vec<String>>,
    /// Errors seen while `killing` was unset, with when: violations with a
    /// `kill -9`; with a failpoint crash, only when they came before the
    /// gateway died (the clients may see the death before the test does).
    pub suspects: Mutex<Vec<(Instant, String)>>,
}

impl World {
    /// The world of a run of `p`: `up` serves its objects, made from
    /// `seed` (32 KiB chunks, 1 ms apart).
    pub(super) fn new(p: &Params, up: &Upstream, seed: u64) -> Arc<World> {
        let mut objects = Vec::new();
        for j in 0..p.objects {
            let body = bytes(object_size(seed, j, p.max_object), object_seed(seed, j));
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
        Arc::new(World {
            p: p.clone(),
            keys: Mutex::new((0..p.hosted_keys).map(|_| KeyState::default()).collect()),
            objects,
            figures: Figures::default(),
            killing: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            violations: Mutex::new(Vec::new()),
            suspects: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn violation(&self, v: String) {
        self.violations.lock().unwrap().push(v);
    }

    /// After a crash: uploads the client never heard back on may or may
    /// not be stored.
    pub(super) fn pending_unknown(&self) {
        for k in self.keys.lock().unwrap().iter_mut() {
            for (_, a) in k.since.iter_mut() {
                if *a == Ack::Pending {
                    *a = Ack::Unknown;
                }
            }
        }
    }

    /// An error with a gateway that was not known to be dead.
    fn suspect(&self, v: String) {
        self.suspects.lock().unwrap().push((Instant::now(), v));
    }

    /// Turn the suspects of this cycle into violations: all of them, or
    /// those from before `dead_at - EXIT_GRACE`.
    pub(super) fn judge_suspects(&self, dead_at: Option<Instant>) {
        let suspects = std::mem::take(&mut *self.suspects.lock().unwrap());
        for (at, v) in suspects {
            if dead_at.is_none_or(|d| at + EXIT_GRACE < d) {
                self.violation(v);
            }
        }
    }
}

/// The size of upstream object `j` (object 0 is empty).
fn object_size(seed: u64, j: usize, max: usize) -> usize {
    if j == 0 {
        return 0;
    }
    Rng::new(seed ^ 0x000b_1ec7 ^ ((j as u64) << 20)).size(KIB, max)
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
    let s = run(&Params::kill9(cycles), seed, "crash cycles").await;
    assert_eq!(s.kills, cycles as u64);
}

/// Run crash cycles with `p`; panics on the first violation (with the
/// seed and the gateway's log) and returns the figures. `name` prefixes
/// the progress and summary lines.
pub(super) async fn run(p: &Params, seed: u64, name: &str) -> Summary {
    let cycles = p.cycles;
    let up = Upstream::start().await;
    let world = World::new(p, &up, seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cfg = write_hosted_and_pull_config(dir.path(), &data, &up.url());
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut summary = Summary::default();
    let mut repairs = 0u64;
    let mut cycle = 0;
    loop {
        let done = cycle == cycles || p.injections.is_some_and(|n| summary.injections >= n);
        // The last start serves the last read-back and carries no failpoint.
        let failpoints = match &p.crash {
            Crash::Failpoint { step, max_skip, .. } if !done => {
                let skip = rng.range(0, *max_skip);
                Some(format!("{step}={skip}*off->return(abort)"))
            }
            _ => None,
        };
        let env: Vec<(&str, &str)> = failpoints
            .iter()
            .map(|f| ("FAILPOINTS", f.as_str()))
            .collect();
        let mut gw = ChildGateway::start_env(&cfg, &env).await;
        let tmp = files_in(&data.join("tmp"));
        if !tmp.is_empty() {
            world.violation(format!(
                "cycle {cycle}: data/tmp holds {tmp:?} after the startup cleanup"
            ));
        }
        // A failpoint may fire during the read-back (a fill committed
        // again): then the read-back is not judged, the cycle counts.
        let died = read_back(&mut gw, &world, failpoints.is_some()).await;
        check(&world, cycle, seed, &gw);
        if done {
            gw.terminate().await;
            break;
        }
        summary.cycles += 1;

        // The workload, then the crash.
        let c = client();
        world.killing.store(false, SeqCst);
        // A gateway that died in the read-back gets no workload.
        world.stop.store(died, SeqCst);
        let mut tasks = Vec::new();
        let flush = |world: Arc<World>| {
            let (c, url) = (c.clone(), gw.url("/cache/flush?remote=pull"));
            let may_crash = failpoints.is_some();
            async move {
                match c.put(url).send().await {
                    Ok(r) => assert_eq!(r.status(), 200, "flush"),
                    // The gateway died in the flush's gc (failpoint
                    // blob-remove).
                    Err(_) if may_crash => world.stop.store(true, SeqCst),
                    Err(e) => panic!("flush: {e}"),
                }
            }
        };
        if !died && p.flush_after.is_none() {
            flush(world.clone()).await;
        }
        for t in 0..p.uploaders {
            let rng = Rng::new(rng.next());
            tasks.push(tokio::spawn(uploader(
                world.clone(),
                c.clone(),
                gw.url("/api/v1/remote/hosted/"),
                t,
                rng,
            )));
        }
        for _ in 0..p.fillers {
            let rng = Rng::new(rng.next());
            tasks.push(tokio::spawn(filler(
                world.clone(),
                c.clone(),
                gw.url("/api/v1/remote/pull/"),
                rng,
            )));
        }
        if let Some(after) = p.flush_after
            && !died
        {
            // The workload ends cleanly, then the flush's gc meets the
            // crash.
            tokio::time::sleep(after).await;
            world.stop.store(true, SeqCst);
            for t in tasks.drain(..) {
                let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
            }
            flush(world.clone()).await;
        }
        let how = match &p.crash {
            Crash::Kill9 { window_ms } => {
                let kill_at = Duration::from_millis(rng.range(0, *window_ms));
                tokio::time::sleep(kill_at).await;
                // No new requests from here on; the ones in flight meet
                // the kill.
                world.stop.store(true, SeqCst);
                world.killing.store(true, SeqCst);
                gw.kill9();
                summary.kills += 1;
                world.judge_suspects(None);
                format!("kill -9 at {kill_at:?}")
            }
            Crash::Failpoint { step, limit, .. } => {
                let t0 = Instant::now();
                let exit_time = gw.exit_time();
                let status = loop {
                    if let Some(s) = gw.exited() {
                        break Some(s);
                    }
                    if t0.elapsed() > *limit {
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                };
                // The kernel's wake-up of the exit watcher dates the death
                // better than this loop, which may run late under load.
                let mut dead_at = Instant::now();
                for _ in 0..if status.is_some() { 500 } else { 0 } {
                    if let Some(at) = exit_time.get() {
                        dead_at = dead_at.min(*at);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                world.stop.store(true, SeqCst);
                world.killing.store(true, SeqCst);
                let how = match status {
                    Some(s)
                        if std::os::unix::process::ExitStatusExt::signal(&s)
                            == Some(libc::SIGABRT) =>
                    {
                        summary.injections += 1;
                        format!("abort at failpoint {step} after {:?}", t0.elapsed())
                    }
                    Some(s) => {
                        world.violation(format!(
                            "cycle {cycle}: the gateway exited with {s}, not by the failpoint {step}"
                        ));
                        String::new()
                    }
                    None => {
                        gw.kill9();
                        summary.kills += 1;
                        format!("kill -9 after {limit:?} (failpoint {step} not reached)")
                    }
                };
                world.judge_suspects(Some(dead_at));
                how
            }
        };
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .is_err()
            {
                world.violation(format!("cycle {cycle}: a client hung after the crash"));
            }
        }
        // Errors reported after the crash are the crash's.
        world.judge_suspects(Some(Instant::now() - EXIT_GRACE));
        world.pending_unknown();

        // fsck while the gateway is down (sled locks the index).
        let (_, report) = fsck(&cfg, &["--verify"]).await;
        let bad = damage(&report);
        if !bad.is_empty() {
            world.violation(format!(
                "cycle {cycle}: fsck after {how} found damage {bad:?}: {report:#}"
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
                "{name}: {} of {cycles} done in {:.0?}",
                cycle + 1,
                started.elapsed()
            );
        }
        cycle += 1;
    }

    // A clean shutdown after the last read-back leaves a store with no
    // damage.
    let (_, report) = fsck(&cfg, &["--verify"]).await;
    assert!(damage(&report).is_empty(), "final fsck: {report:#}");
    let f = &world.figures;
    summary.uploads_acked = get(&f.uploads_acked);
    summary.uploads_cut = get(&f.uploads_cut);
    summary.fills_complete = get(&f.fills_complete);
    summary.fills_cut = get(&f.fills_cut);
    summary.reads_back = get(&f.reads_back);
    summary.spools_left = get(&f.spools_left);
    summary.orphans_left = get(&f.orphans_left);
    summary.elapsed = started.elapsed();
    eprintln!(
        "{name}: seed {seed}: {} cycles, {} kills, {} injected aborts, {repairs} fsck repairs in {:.0?}; {}; \
         removed at startup {}, orphan blobs {}; \
         lost acknowledged uploads 0, digest mismatches 0, partial objects 0, damage 0",
        summary.cycles,
        summary.kills,
        summary.injections,
        summary.elapsed,
        f.workload(),
        get(&f.spools_cleaned),
        get(&f.orphans_left),
    );
    assert!(
        get(&f.uploads_acked) > 0
            && (get(&f.fills_from_remote) > 0
                || p.flush_after.is_some() && get(&f.fills_complete) > 0),
        "the workload did nothing"
    );
    summary
}

/// Panic with every violation so far, the seed and the log.
pub(super) fn check(world: &World, cycle: usize, seed: u64, gw: &ChildGateway) {
    let v = world.violations.lock().unwrap();
    if !v.is_empty() {
        panic!(
            "crash cycles (seed {seed}, replay with ARTGATE_SEED={seed}) failed in cycle {cycle}:\n{}\n--- artgate log (tail) ---\n{}",
            v.join("\n"),
            gw.log_text()
        );
    }
}

/// Upload new versions of this uploader's keys until told to stop.
pub(super) async fn uploader(
    world: Arc<World>,
    c: reqwest::Client,
    base: String,
    t: usize,
    mut rng: Rng,
) {
    let f = &world.figures;
    while !world.stop.load(SeqCst) {
        let p = &world.p;
        let k = t + p.uploaders * rng.range(0, (p.hosted_keys / p.uploaders) as u64) as usize;
        let (v, body) = Version::new(rng.next(), rng.size(KIB, p.max_upload));
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
                    world.suspect(format!("upload of k{k} failed before the crash: {e}"));
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
pub(super) async fn filler(world: Arc<World>, c: reqwest::Client, base: String, mut rng: Rng) {
    let f = &world.figures;
    while !world.stop.load(SeqCst) {
        let j = rng.range(0, world.p.objects as u64) as usize;
        let (len, sha) = &world.objects[j];
        add(&f.fills_sent, 1);
        let resp = match c.get(format!("{base}o{j}.bin")).send().await {
            Ok(r) => r,
            Err(e) => {
                if !world.killing.load(SeqCst) {
                    world.suspect(format!("GET o{j} failed before the crash: {e}"));
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
                    world.suspect(format!(
                        "GET o{j} aborted after {} bytes before the crash: {e}",
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
///
/// With `may_crash` (a failpoint is armed) the gateway may die in the
/// middle; the hosted keys are judged only when it did not, and what the
/// upstream objects' read-back finds is not judged then.
pub(super) async fn read_back(gw: &mut ChildGateway, world: &Arc<World>, may_crash: bool) -> bool {
    let c = client();
    let hosted = futures_util::stream::iter(0..world.p.hosted_keys)
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
    let mut died = may_crash && died_with(gw, hosted.iter().map(|(_, f)| f)).await;
    {
        let mut keys = world.keys.lock().unwrap();
        for (k, found) in hosted {
            if excused(&found, died) {
                continue;
            }
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
    let pulled = futures_util::stream::iter(0..world.p.objects)
        .map(|j| {
            let (c, url) = (c.clone(), gw.url(&format!("/api/v1/remote/pull/o{j}.bin")));
            async move { (j, read(&c, url).await) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    died = died || (may_crash && died_with(gw, pulled.iter().map(|(_, f)| f)).await);
    for (j, found) in pulled {
        if excused(&found, died) {
            continue;
        }
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
    add(
        &world.figures.reads_back,
        (world.p.hosted_keys + world.p.objects) as u64,
    );
    died
}

/// Whether the gateway is dead, given what a batch of reads found: looked
/// at (for up to 1 s) only when one of them broke off.
async fn died_with<'a>(gw: &mut ChildGateway, found: impl Iterator<Item = &'a Found>) -> bool {
    if !found.into_iter().any(|f| matches!(f, Found::Broken(_))) {
        return false;
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        if gw.exited().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// A read that broke off because the gateway died (an answered status is
/// never excused).
fn excused(found: &Found, died: bool) -> bool {
    died && matches!(found, Found::Broken(why) if !why.starts_with("status"))
}

// ---------------------------------------------------------------------------
// `kill -9` at chosen moments: during a fill, during uploads.

/// A config file for the child process in `dir`, one generic remote `r`.
fn child_config(dir: &Path, up: &Upstream) -> PathBuf {
    write_config(
        dir,
        &dir.join("data"),
        "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"30s\"",
        &generic_remote("r", &up.url(), ""),
    )
}

/// Bytes in the spool files under `data/tmp`, if any.
fn spooled(dir: &Path) -> Option<u64> {
    let tmp = dir.join("data/tmp");
    spool_files(&dir.join("data"))
        .iter()
        .filter_map(|n| std::fs::metadata(tmp.join(n)).ok().map(|m| m.len()))
        .max()
}

/// `kill -9` of the real binary during a fill — after 128 KiB, in the
/// middle, one byte before the end (the upstream holds there, so the point
/// is exact), and at an arbitrary point of a fast fill — never leaves a
/// partial object: the client sees an aborted transfer, `fsck --verify`
/// finds no damage (only crash leftovers) and no entry, the restarted
/// gateway serves the complete object (fetched again), and after a clean
/// shutdown `fsck` reports a clean store with the one entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_during_a_fill_never_leaves_a_partial_object() {
    let size = 8 * MIB;
    let body = bytes(size, 4);
    let want = sha256_hex(&body);
    let points: [(&str, Option<usize>); 4] = [
        ("early", Some(128 * KIB)),
        ("middle", Some(size / 2)),
        ("one byte before the end", Some(size - 1)),
        ("anywhere in a fast fill", None),
    ];
    for (label, hold) in points {
        let up = Upstream::start().await;
        up.put(
            "/obj.bin",
            Resource {
                body: body.clone().into(),
                chunk: Some(64 * KIB),
                hold_after_bytes: hold,
                ..Default::default()
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = child_config(dir.path(), &up);
        let mut gw = ChildGateway::start(&cfg).await;
        let client = reqwest::Client::new();
        let url = gw.url("/api/v1/remote/r/obj.bin");
        let resp = client.get(&url).send().await.expect("request");
        assert_eq!(resp.status(), 200, "{label}");
        let progress = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(drain_progress(resp, progress.clone()));
        if let Some(h) = hold {
            let (d, p) = (dir.path(), &progress);
            eventually(
                &format!("{label}: the gateway to spool {h} bytes"),
                Duration::from_secs(10),
                || async move {
                    let spooled_all = spooled(d) == Some(h as u64);
                    let streamed = h < MIB || p.load(SeqCst) > 0;
                    (spooled_all && streamed).then_some(())
                },
            )
            .await;
        }
        gw.kill9();
        let r = reader.await.expect("reader task");
        if hold.is_some() {
            assert!(
                r.error.is_some(),
                "{label}: clean end after {} bytes",
                r.len
            );
            assert!(r.len < size as u64, "{label}");
        } else {
            assert!(
                r.error.is_some() || (r.len == size as u64 && r.sha256 == want),
                "{label}: clean end with a wrong body ({} bytes)",
                r.len
            );
        }

        let (code, report) = fsck(&cfg, &["--verify"]).await;
        for k in DAMAGE {
            assert_eq!(report[k], 0, "{label}: fsck after kill -9: {report:#}");
        }
        if hold.is_some() {
            assert_eq!(report["entries"], 0, "{label}: {report:#}");
            assert_eq!(report["orphan_blobs"], 0, "{label}: {report:#}");
        }
        // Leftovers (spools, orphans) are harmless: reported, exit 0.
        let leftovers =
            report["spools"].as_u64().unwrap() + report["orphan_blobs"].as_u64().unwrap();
        assert_eq!(code, 0, "{label}: exit {code}: {report:#}");
        let verdict = if leftovers == 0 { "clean" } else { "leftovers" };
        assert_eq!(report["verdict"], verdict, "{label}: {report:#}");

        up.edit("/obj.bin", |r| r.hold_after_bytes = None);
        let mut gw = ChildGateway::start(&cfg).await;
        let url = gw.url("/api/v1/remote/r/obj.bin");
        let client = reqwest::Client::new();
        let (status, source, got) = get_header_body(&url, "x-artifact-source").await;
        assert_eq!(status, 200, "{label}");
        assert_eq!(
            (got.len(), sha256_hex(&got)),
            (size, want.clone()),
            "{label}"
        );
        if hold.is_some() {
            assert_eq!(source, "remote", "{label}");
            assert_eq!(up.seen("/obj.bin").gets, 2, "{label}");
        }
        // The body is released before its commit: wait for the commit.
        gw.fills_settled().await;
        let (status, source, got) = get_header_body(&url, "x-artifact-source").await;
        assert_eq!((status, source.as_str()), (200, "cache"), "{label}");
        assert_eq!(sha256_hex(&got), want, "{label}");
        drop(client);
        gw.terminate_within(Duration::from_secs(10)).await;

        let (code, report) = fsck(&cfg, &["--verify"]).await;
        assert_eq!(code, 0, "{label}: fsck after restart: {report:#}");
        for k in DAMAGE.iter().chain(&["spools", "orphan_blobs"]) {
            assert_eq!(report[*k], 0, "{label}: {report:#}");
        }
        assert_eq!(report["entries"], 1, "{label}: {report:#}");
        up.release();
    }
}

/// `kill -9` while 20 uploads to a hosted remote are in flight (8
/// acknowledged, 8 held halfway, 4 started at the kill): after a restart
/// every acknowledged upload is there whole, none of the held ones is, the
/// rest are absent or whole, and the listing names only whole uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_uploads_loses_no_acknowledged_write() {
    use futures_util::StreamExt as _;
    let dir = tempfile::tempdir().unwrap();
    let remotes = "[[remote]]\nname = \"builds\"\npackage = \"local\"\n";
    let mut gw = ChildGateway::start_in(dir.path(), remotes, "info").await;
    let client = reqwest::Client::new();
    // 8 uploads that complete, 8 held halfway until after the kill, and 4
    // started right at the kill (they may or may not be acknowledged).
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..20)
            .map(|i| bytes(200 * 1024 + i * 50 * 1024, 500 + i as u64))
            .collect(),
    );
    let never = Arc::new(tokio::sync::Notify::new());
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let halfway = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::new();
    let upload = |i: usize, hold: bool| {
        let client = client.clone();
        let url = gw.url(&format!("/api/v1/remote/builds/up-{i}.bin"));
        let bodies = bodies.clone();
        let never = never.clone();
        let halfway = halfway.clone();
        let acked_tx = acked_tx.clone();
        tokio::spawn(async move {
            let body = &bodies[i];
            let half = body.len() / 2;
            let first: Vec<Result<bytes::Bytes, std::io::Error>> = body[..half]
                .chunks(32 * 1024)
                .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                .collect();
            let rest = bytes::Bytes::copy_from_slice(&body[half..]);
            let stream =
                futures_util::stream::iter(first).chain(futures_util::stream::once(async move {
                    if hold {
                        halfway.add_permits(1);
                        never.notified().await;
                    }
                    Ok(rest)
                }));
            let status = client
                .put(url)
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string());
            if status == Ok(201) {
                let _ = acked_tx.send(i);
            }
            (i, status)
        })
    };
    for i in 0..8 {
        tasks.push(upload(i, false));
    }
    for i in 8..16 {
        tasks.push(upload(i, true));
    }
    // Wait (by events, not time) for the 8 complete uploads' 201s and for
    // the held ones to have sent their first half.
    for _ in 0..8 {
        acked_rx.recv().await.unwrap();
    }
    let _ = halfway.acquire_many(8).await.unwrap();
    for i in 16..20 {
        tasks.push(upload(i, false));
    }
    tokio::task::yield_now().await;
    gw.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        // A held upload ends with a connection error once the process is
        // gone; one that never ends counts as unacknowledged.
        if let Ok(Ok((i, Ok(201)))) =
            tokio::time::timeout(std::time::Duration::from_secs(60), t).await
        {
            acked.push(i);
        }
    }
    assert!((0..8).all(|i| acked.contains(&i)), "{acked:?}");
    assert!((8..16).all(|i| !acked.contains(&i)), "{acked:?}");

    let gw = ChildGateway::start_in(dir.path(), remotes, "info").await;
    for (i, body) in bodies.iter().enumerate() {
        let r = client
            .get(gw.url(&format!("/api/v1/remote/builds/up-{i}.bin")))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let got = r.bytes().await.unwrap();
        if acked.contains(&i) {
            assert_eq!(status, 200, "acknowledged upload {i} is gone");
            assert!(got.as_ref() == body.as_slice(), "upload {i} is corrupt");
        } else {
            assert!(
                status == 404 || (status == 200 && got.as_ref() == body.as_slice()),
                "unacknowledged upload {i}: {status} with {} of {} bytes",
                got.len(),
                body.len()
            );
        }
    }
    // Nothing left over from the killed process is listed either.
    let list = send("GET", &gw.url("/api/v1/remote/builds/?list"), &[])
        .await
        .json();
    for item in list["items"].as_array().unwrap() {
        let i: usize = item["path"].as_str().unwrap()["up-".len()..]
            .trim_end_matches(".bin")
            .parse()
            .unwrap();
        assert_eq!(item["size"].as_u64(), Some(bodies[i].len() as u64));
    }
}
