//! Where adapter code runs: off the request threads, one lane per adapter.
//!
//! Every call into an adapter (`describe`, `plan`, `on-response`,
//! `inspect-body`) is spawned onto its adapter's **lane**: a small tokio
//! runtime of its own (`lane_threads` worker threads, one by default, at a
//! lower CPU priority than the request threads), created the first time the adapter
//! name is called and kept for the life of the engine (hot reloads of the
//! same adapter share it). The request task awaits the call's handle. So an
//! adapter that loops until its epoch deadline, grows memory to its cap or
//! recurses to the stack limit occupies at most its lane's thread: the
//! request threads keep accepting, serving fresh hits (which never enter
//! wasm) and awaiting other adapters, whose calls run on their own lanes.
//!
//! Each lane also caps the adapter's calls in flight
//! (`[plugins] max_concurrent_calls`): a call waits at most
//! `[plugins] queue_timeout` for a slot and then fails with
//! [`PluginError::Busy`] (503). The
//! cap bounds what one adapter can hold of the shared instance pool and of
//! memory (`max_concurrent_calls × memory_limit`).
//!
//! A call whose request goes away (the client disconnected) is aborted at
//! its next epoch yield, freeing its slot. `http-send` futures are spawned
//! back onto the calling runtime ([`super::host`]), so the network I/O of
//! an adapter never depends on its lane.

use super::PluginError;
use crate::config::AdapterLimits;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// Nice value of lane threads (Linux): request threads (nice 0) win the CPU
/// when both want it, lanes still get a fair share on a saturated machine.
pub const LANE_NICE: i32 = 5;

/// The lanes of all adapters.
#[derive(Default)]
pub struct Executor {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
}

impl Executor {
    /// The lane of adapter `name`, started on first use with `limits`'
    /// slots, queue and threads.
    pub fn lane(&self, name: &str, limits: &AdapterLimits) -> Result<Arc<Lane>, PluginError> {
        let mut lanes = self
            .lanes
            .lock()
            .map_err(|_| PluginError::Engine("the adapter lane table is poisoned".into()))?;
        if let Some(l) = lanes.get(name) {
            return Ok(l.clone());
        }
        let lane = Arc::new(Lane::start(name, limits)?);
        lanes.insert(name.to_owned(), lane.clone());
        Ok(lane)
    }

    /// Every started lane's adapter name, calls in flight and calls
    /// waiting for a slot; lanes whose name is not an adapter's (the one
    /// adapters are loaded on) are left out.
    pub fn loads(&self) -> Vec<(String, usize, usize)> {
        let Ok(lanes) = self.lanes.lock() else {
            return Vec::new();
        };
        lanes
            .iter()
            .filter(|(name, _)| crate::config::is_adapter_name(name))
            .map(|(name, l)| (name.clone(), l.running(), l.queued()))
            .collect()
    }
}

/// One adapter's runtime and call slots.
pub struct Lane {
    runtime: Option<Runtime>,
    handle: Handle,
    slots: Arc<Semaphore>,
    max_calls: usize,
    queue_wait: Duration,
    /// Calls waiting for a slot ([`Lane::queued`]).
    waiting: Arc<AtomicUsize>,
}

impl Lane {
    fn start(name: &str, limits: &AdapterLimits) -> Result<Lane, PluginError> {
        let max_calls = (limits.max_concurrent_calls as usize).max(1);
        let short: String = name.chars().take(8).collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads((limits.lane_threads as usize).max(1))
            .max_blocking_threads(1)
            .thread_name(format!("wasm-{short}"))
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .map_err(|e| {
                PluginError::Engine(format!("cannot start the lane of adapter {name}: {e}"))
            })?;
        Ok(Lane {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            slots: Arc::new(Semaphore::new(max_calls)),
            max_calls,
            queue_wait: limits.queue_timeout,
            waiting: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Calls waiting for a slot on this lane.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Calls in flight on this lane.
    pub fn running(&self) -> usize {
        self.max_calls
            .saturating_sub(self.slots.available_permits())
    }

    /// Run `call` on the lane once a slot is free (waiting at most the
    /// queue bound), and wait for its result. Dropping the returned future
    /// aborts the call.
    pub async fn run<T, F>(&self, call: F) -> Result<T, PluginError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, PluginError>> + Send + 'static,
    {
        let started = Instant::now();
        let waiting = Waiting::new(&self.waiting);
        let permit =
            match tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) | Err(_) => {
                    return Err(PluginError::Busy {
                        running: self.running(),
                        waited: started.elapsed(),
                    });
                }
            };
        drop(waiting);
        let task = self.handle.spawn(
            async move {
                let _slot = permit;
                call.await
            }
            .instrument(tracing::Span::current()),
        );
        let mut guard = AbortOnDrop(task);
        match (&mut guard.0).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => Err(PluginError::Trap(
                "the host panicked while running the adapter".into(),
            )),
            Err(_) => Err(PluginError::Trap("the call was cancelled".into())),
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        // Never block (the engine may be dropped on an async thread); calls
        // still running end at their next yield.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Counts a call as waiting for a slot until dropped (also when its
/// caller goes away while it waits).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Aborts the task when the awaiting request goes away.
pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Give the current (lane) thread a lower CPU priority than the request
/// threads. Best effort: without permission it keeps the default.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread with no pointers;
        // on Linux the nice value is per thread (the thread id is the
        // `who` of PRIO_PROCESS).
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, LANE_NICE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wait until `f` holds (at most 5 s).
    async fn until(f: impl Fn() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the condition did not hold within 5 s");
    }

    /// Calls run on the adapter's lane thread; a full lane makes the next
    /// call wait at most the queue bound and fail `Busy` (503); a dropped
    /// caller frees its slot; a panic in a call is an error, not a crash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lanes_run_off_the_caller_bound_their_calls_and_survive_panics() {
        let limits = |calls, queue_ms, threads| AdapterLimits {
            memory_limit: 1 << 20,
            call_timeout: Duration::from_millis(200),
            max_concurrent_calls: calls,
            queue_timeout: Duration::from_millis(queue_ms),
            lane_threads: threads,
        };
        // The other adapter's own limits give it 3 slots on 2 threads.
        let exec = Executor::default();
        let (some, other) = (limits(1, 50, 1), limits(3, 5_000, 2));
        assert_eq!(exec.lane("other", &other).unwrap().max_calls, 3);
        // Two calls that never yield meet only if they run on two threads
        // at once (each gives up after 5 s).
        let met = Arc::new(AtomicUsize::new(0));
        let meet = |met: Arc<AtomicUsize>| async move {
            met.fetch_add(1, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(5);
            while met.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                std::thread::yield_now();
            }
            Ok(met.load(Ordering::SeqCst) == 2)
        };
        let other_lane = exec.lane("other", &other).unwrap();
        let (a, b) = tokio::join!(
            other_lane.run(meet(met.clone())),
            other_lane.run(meet(met.clone()))
        );
        assert!(
            a.unwrap() && b.unwrap(),
            "the two calls did not run at once"
        );
        let lane = exec.lane("some-adapter", &some).expect("lane");
        assert_eq!(lane.max_calls, 1);
        assert!(Arc::ptr_eq(
            &lane,
            &exec.lane("some-adapter", &some).unwrap()
        ));
        let name = lane
            .run(async { Ok(std::thread::current().name().map(str::to_owned)) })
            .await
            .expect("call");
        assert_eq!(name.as_deref(), Some("wasm-some-ada"));

        // One slot: a long call holds it, the next waits 50 ms and is Busy.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let l2 = lane.clone();
        let holder = tokio::spawn(async move {
            l2.run(async move {
                let _ = rx.await;
                Ok(())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(lane.running(), 1);
        let err = lane.run(async { Ok(()) }).await.expect_err("busy");
        assert!(matches!(err, PluginError::Busy { running: 1, .. }), "{err}");
        assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        // A caller waiting for the slot counts as queued until it gets one.
        let waiter = {
            let lane = exec.lane("other", &other).unwrap();
            let holders: Vec<_> = (0..3)
                .map(|_| {
                    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                    let l = lane.clone();
                    (
                        tx,
                        tokio::spawn(async move {
                            l.run(async move {
                                rx.await.map_err(|_| PluginError::Trap("dropped".into()))
                            })
                            .await
                        }),
                    )
                })
                .collect();
            until(|| lane.running() == 3).await;
            let l = lane.clone();
            let waiter = tokio::spawn(async move { l.run(async { Ok(()) }).await });
            until(|| lane.queued() == 1).await;
            assert_eq!(
                exec.loads()
                    .iter()
                    .find(|(n, ..)| n == "other")
                    .map(|(_, r, q)| (*r, *q)),
                Some((3, 1))
            );
            for (tx, h) in holders {
                tx.send(()).unwrap();
                h.await.unwrap().unwrap();
            }
            waiter
        };
        waiter
            .await
            .unwrap()
            .expect("the queued call runs once a slot frees");
        assert_eq!(exec.lane("other", &other).unwrap().queued(), 0);
        // Dropping the waiting caller aborts the call and frees the slot.
        holder.abort();
        let _ = holder.await;
        drop(tx);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(lane.running(), 0);

        let err = lane
            .run(async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                Ok(())
            })
            .await
            .expect_err("panic");
        assert!(matches!(err, PluginError::Trap(_)), "{err}");
        lane.run(async { Ok(()) })
            .await
            .expect("the lane still runs");
    }
}
