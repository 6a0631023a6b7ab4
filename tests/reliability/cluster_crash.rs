//! Crash cycles of a cluster: three `artgate` processes sharing one bucket
//! on a real SeaweedFS, each with its own disk, under concurrent uploads
//! and pull-through fills spread over the three; each cycle `kill -9`s one
//! of them at a random moment and restarts it, every third time with an
//! empty disk.
//!
//! Checked per cycle, with the workload, the clients' log and the
//! read-back of `crash.rs`: no acknowledged upload lost (read back through
//! the restarted node, which may hold nothing but what the bucket has), no
//! refused or replaced version served, no partial object (every body is
//! whole or an aborted transfer; a node relaying the killed node's fill
//! cuts its clients off, never ends them cleanly short), no error from a
//! node before the kill, no damage in the killed node's store (`fsck
//! --verify`) nor in the bucket (`fsck --shared`: every record's blob is
//! there at its size).
//!
//! CI runs 6 cycles; `ARTGATE_CLUSTER_CRASH_CYCLES=N` runs N (see
//! RELIABILITY.md), `ARTGATE_SEED` replays a run.

use super::crash::{
    Crash, EXIT_GRACE, Params, World, add, check, filler, get, read_back, uploader,
};
use super::harness::{Rng, seed};
use crate::support::child::{ChildGateway, damage, fsck, write_config};
use crate::support::http::client;
use crate::support::seaweed::Seaweed;
use crate::support::upstream::Upstream;
use crate::support::{KIB, MIB};
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// Cycles in CI.
const DEFAULT_CYCLES: usize = 6;
/// Nodes in the cluster.
const NODES: usize = 3;
/// The killed node restarts with an empty disk every this many cycles.
const WIPE_EVERY: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_crash_cycles_lose_nothing_acknowledged_and_serve_nothing_partial() {
    let cycles: usize = std::env::var("ARTGATE_CLUSTER_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let seed = seed("cluster crash cycles");
    let p = Params {
        cycles,
        injections: None,
        uploaders: 12,
        fillers: 12,
        hosted_keys: 48,
        objects: 48,
        max_object: MIB,
        max_upload: 256 * KIB,
        crash: Crash::Kill9 { window_ms: 1500 },
        flush_after: None,
    };
    let sw = Seaweed::start().await;
    let up = Upstream::start().await;
    let world = World::new(&p, &up, seed);
    let remotes = format!(
        "[[remote]]\nname = \"hosted\"\npackage = \"local\"\n\n[[remote]]\nname = \"pull\"\npackage = \"generic\"\nupstream = {:?}\n",
        up.url()
    );
    let dirs: Vec<tempfile::TempDir> = (0..NODES)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let configs: Vec<PathBuf> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            write_config(
                d.path(),
                &d.path().join("data"),
                "first_byte_timeout = \"5s\"\nconnect_timeout = \"1s\"\nidle_timeout = \"10s\"",
                &format!("{}\n{remotes}", sw.shared_table("cc", &format!("n{i}"))),
            )
        })
        .collect();
    let mut nodes = Vec::new();
    for cfg in &configs {
        nodes.push(ChildGateway::start(cfg).await);
    }
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let (mut kills, mut wipes) = (0u64, 0u64);
    let mut reader = 0;
    for cycle in 0..=cycles {
        // Everything acknowledged so far, through the node that restarted
        // last (with an empty disk every third time).
        read_back(&mut nodes[reader], &world, false).await;
        check(&world, cycle, seed, &nodes[reader]);
        let (_, report) = fsck(&configs[reader], &["--shared"]).await;
        if report["verdict"] == "damage" {
            world.violation(format!(
                "cycle {cycle}: fsck --shared found damage: {report:#}"
            ));
        }
        if cycle == cycles {
            break;
        }

        // The workload on all three nodes; the pull-through remote
        // flushed for the cluster first, so that fills go upstream.
        let c = client();
        let r = c
            .put(nodes[rng.range(0, NODES as u64) as usize].url("/cache/flush?remote=pull"))
            .send()
            .await
            .expect("flush");
        assert_eq!(r.status(), 200, "flush");
        world.killing.store(false, SeqCst);
        world.stop.store(false, SeqCst);
        let mut tasks = Vec::new();
        for t in 0..p.uploaders {
            let base = nodes[t % NODES].url("/api/v1/remote/hosted/");
            let rng = Rng::new(rng.next());
            tasks.push(tokio::spawn(uploader(
                world.clone(),
                c.clone(),
                base,
                t,
                rng,
            )));
        }
        for t in 0..p.fillers {
            let base = nodes[t % NODES].url("/api/v1/remote/pull/");
            let rng = Rng::new(rng.next());
            tasks.push(tokio::spawn(filler(world.clone(), c.clone(), base, rng)));
        }
        let Crash::Kill9 { window_ms } = p.crash else {
            unreachable!("kill -9 cycles")
        };
        let kill_at = Duration::from_millis(rng.range(0, window_ms));
        tokio::time::sleep(kill_at).await;
        let victim = rng.range(0, NODES as u64) as usize;
        world.stop.store(true, SeqCst);
        world.killing.store(true, SeqCst);
        nodes[victim].kill9();
        kills += 1;
        world.judge_suspects(None);
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .is_err()
            {
                world.violation(format!("cycle {cycle}: a client hung after the kill"));
            }
        }
        world.judge_suspects(Some(Instant::now() - EXIT_GRACE));
        world.pending_unknown();

        let (_, report) = fsck(&configs[victim], &["--verify"]).await;
        let bad = damage(&report);
        if !bad.is_empty() {
            world.violation(format!(
                "cycle {cycle}: fsck of n{victim} after kill -9 at {kill_at:?} found damage {bad:?}: {report:#}"
            ));
        }
        add(
            &world.figures.spools_left,
            report["spools"].as_u64().unwrap_or(0),
        );
        if cycle % WIPE_EVERY == WIPE_EVERY - 1 {
            std::fs::remove_dir_all(dirs[victim].path().join("data")).expect("wipe the disk");
            wipes += 1;
        }
        nodes[victim] = ChildGateway::start(&configs[victim]).await;
        check(&world, cycle, seed, &nodes[victim]);
        reader = victim;
    }
    for n in &mut nodes {
        n.terminate().await;
    }
    let f = &world.figures;
    eprintln!(
        "cluster crash cycles: seed {seed}: {cycles} cycles, {kills} kills ({wipes} restarts with an empty disk) in {:.0?}; {}; \
         lost acknowledged uploads 0, digest mismatches 0, partial objects 0, damage 0",
        started.elapsed(),
        f.workload(),
    );
    assert!(
        get(&f.uploads_acked) > 0 && get(&f.fills_from_remote) > 0,
        "the workload did nothing"
    );
    assert_eq!(kills, cycles as u64);
}
