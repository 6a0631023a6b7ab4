//! The last hour of traffic, per second, in memory (the console overview's
//! charts): a ring of 3600 one-second slots, each holding `K` counters and
//! the second it counts, updated with atomics only on the request path.
//!
//! Nothing is stored on disk: a restart starts an empty hour.
//!
//! # Races at the second boundary
//!
//! A slot is reused an hour later: the first `add` of the new second sees the
//! old tag, zeroes the counters, then moves the tag with a compare-and-swap.
//! Without a lock, a few counts can be lost or misplaced when a slot changes
//! hands: a thread that read the old tag just before another thread moved it
//! may zero counts already added to the new second, and a thread more than an
//! hour late may add to the new second. The charts show rates over buckets of
//! several seconds, so this is acceptable; within one second, concurrent adds
//! are exact.

use std::sync::atomic::{AtomicU64, Ordering, fence};

/// Seconds the timeline keeps: one slot per second of the last hour.
pub const SECONDS: u64 = 3600;

/// The width in seconds of each bucket of [`Timeline::window`] for these
/// arguments (after the same capping): `ceil(seconds / buckets)`, at
/// least 1. Divide a bucket's sums by it for per-second rates (the last
/// bucket may be shorter: `seconds - width × (buckets - 1)`, when positive).
pub fn bucket_seconds(seconds: u64, buckets: usize) -> u64 {
    let seconds = seconds.min(SECONDS);
    let buckets = u64::try_from(buckets.clamp(1, SECONDS as usize)).unwrap_or(SECONDS);
    seconds.div_ceil(buckets).max(1)
}

/// One second's counters.
struct Slot<const K: usize> {
    /// The second counted here, plus one; 0 when never written (so "never"
    /// is older than every second).
    tag: AtomicU64,
    /// One counter per series.
    counts: [AtomicU64; K],
}

impl<const K: usize> Slot<K> {
    fn new() -> Self {
        Slot {
            tag: AtomicU64::new(0),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Per-second counters of the last hour, in memory: `K` series (the caller
/// decides what each index means), one slot per second in a ring of 3600.
pub struct Timeline<const K: usize> {
    /// `SECONDS` slots; second `s` lives in slot `s % SECONDS`.
    slots: Box<[Slot<K>]>,
}

impl<const K: usize> Default for Timeline<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const K: usize> std::fmt::Debug for Timeline<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("series", &K)
            .field("seconds", &SECONDS)
            .finish_non_exhaustive()
    }
}

impl<const K: usize> Timeline<K> {
    /// An empty timeline (every slot never written). Allocates the whole
    /// ring once: 3600 × (K + 1) × 8 bytes.
    pub fn new() -> Self {
        Timeline {
            slots: (0..SECONDS).map(|_| Slot::new()).collect(),
        }
    }

    /// The slot of second `sec`.
    fn slot(&self, sec: u64) -> Option<&Slot<K>> {
        let index = usize::try_from(sec % SECONDS).ok()?;
        self.slots.get(index)
    }

    /// Add `n` to series `series` in the slot of second `now_sec` (unix
    /// seconds). Called on every request of the gateway's hit path, from many
    /// threads: lock-free (atomics only), no allocation, O(1).
    ///
    /// A slot whose tag is older than `now_sec` is zeroed and re-tagged first
    /// (a compare-and-swap on the tag); a race at the second boundary may
    /// lose or misplace a few counts (see the module documentation). A slot
    /// already holding a later second (`now_sec` more than an hour behind
    /// another caller's clock) keeps it, and the count is dropped.
    /// Out-of-range `series` and `now_sec == u64::MAX` are ignored.
    pub fn add(&self, now_sec: u64, series: usize, n: u64) {
        let Some(tag) = now_sec.checked_add(1) else {
            return;
        };
        let Some(slot) = self.slot(now_sec) else {
            return;
        };
        let Some(counter) = slot.counts.get(series) else {
            return;
        };
        let mut seen = slot.tag.load(Ordering::Acquire);
        while seen != tag {
            if seen > tag {
                return;
            }
            // Zero before publishing the new tag, so a reader that sees the
            // new tag never sees the counts of an hour ago. A never-written
            // slot is already zero (and zeroing it could lose a concurrent
            // first add).
            if seen != 0 {
                for c in &slot.counts {
                    c.store(0, Ordering::Relaxed);
                }
            }
            match slot
                .tag
                .compare_exchange(seen, tag, Ordering::Release, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => seen = actual,
            }
        }
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters of second `sec`, or `None` if its slot holds another
    /// second (stale, never written, or being reused while read).
    fn read(&self, sec: u64) -> Option<[u64; K]> {
        let tag = sec.checked_add(1)?;
        let slot = self.slot(sec)?;
        if slot.tag.load(Ordering::Acquire) != tag {
            return None;
        }
        let counts = slot.counts.each_ref().map(|c| c.load(Ordering::Relaxed));
        // The counts read belong to `sec` only if the tag did not move
        // meanwhile (a seqlock-style second look).
        fence(Ordering::Acquire);
        (slot.tag.load(Ordering::Relaxed) == tag).then_some(counts)
    }

    /// Calls `f(offset, counts)` for every second of the `seconds` (at most
    /// [`SECONDS`]) ending with `now_sec` whose slot holds it; `offset` 0 is
    /// the oldest second of the window. Seconds before the epoch are skipped.
    fn each_second(&self, now_sec: u64, seconds: u64, mut f: impl FnMut(u64, [u64; K])) {
        let seconds = seconds.min(SECONDS);
        for back in 0..seconds {
            let Some(sec) = now_sec.checked_sub(back) else {
                break;
            };
            if let Some(counts) = self.read(sec) {
                f(seconds - 1 - back, counts);
            }
        }
    }

    /// Sums of the last `seconds` seconds ending with `now_sec` (inclusive),
    /// in `buckets` equal buckets, oldest first: bucket `i` covers window
    /// offsets `[i × w, (i + 1) × w)` with `w` = [`bucket_seconds`],
    /// so the last bucket (the one holding `now_sec`) may be shorter, and
    /// buckets past the window's end (more buckets than seconds) are zero.
    /// Slots whose tag is outside the window (stale or never written) count
    /// as zero.
    ///
    /// `seconds` is capped at 3600; `buckets` is clamped to 1..=3600 and is
    /// the length of the result.
    pub fn window(&self, now_sec: u64, seconds: u64, buckets: usize) -> Vec<[u64; K]> {
        let buckets = buckets.clamp(1, SECONDS as usize);
        let mut out = vec![[0u64; K]; buckets];
        let width = bucket_seconds(seconds, buckets);
        self.each_second(now_sec, seconds, |offset, counts| {
            let bucket = usize::try_from(offset / width).unwrap_or(usize::MAX);
            if let Some(sums) = out.get_mut(bucket) {
                for (sum, c) in sums.iter_mut().zip(counts) {
                    *sum = sum.saturating_add(c);
                }
            }
        });
        out
    }

    /// Sum of each series over the last `seconds` seconds (capped at 3600)
    /// ending with `now_sec`.
    pub fn totals(&self, now_sec: u64, seconds: u64) -> [u64; K] {
        let mut sums = [0u64; K];
        self.each_second(now_sec, seconds, |_, counts| {
            for (sum, c) in sums.iter_mut().zip(counts) {
                *sum = sum.saturating_add(c);
            }
        });
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const T0: u64 = 1_700_000_000;

    #[test]
    fn counts_land_in_the_right_bucket() {
        let t = Timeline::<2>::new();
        // A 60-second window ending at T0 + 59 in 6 buckets of 10 s.
        t.add(T0, 0, 1); // offset 0 → bucket 0
        t.add(T0 + 9, 0, 2); // offset 9 → bucket 0
        t.add(T0 + 10, 1, 5); // offset 10 → bucket 1
        t.add(T0 + 35, 0, 7); // offset 35 → bucket 3
        t.add(T0 + 59, 1, 11); // offset 59 → bucket 5
        t.add(T0 + 59, 1, 1);
        let w = t.window(T0 + 59, 60, 6);
        assert_eq!(w, vec![[3, 0], [0, 5], [0, 0], [7, 0], [0, 0], [0, 12]]);
        assert_eq!(t.totals(T0 + 59, 60), [10, 17]);
        assert_eq!(t.totals(T0 + 59, 1), [0, 12]);
        assert_eq!(t.totals(T0 + 59, 0), [0, 0]);
        // Last bucket shorter: 60 s in 7 buckets of 9 s (the last one 6 s).
        assert_eq!(bucket_seconds(60, 7), 9);
        let w = t.window(T0 + 59, 60, 7);
        assert_eq!(w.len(), 7);
        assert_eq!(w[0], [1, 0]); // offsets 0..9
        assert_eq!(w[1], [2, 5]); // 9..18
        assert_eq!(w[3], [7, 0]); // 27..36
        assert_eq!(w[6], [0, 12]); // 54..60
        // More buckets than seconds: one second each, the rest zero.
        let w = t.window(T0 + 59, 3, 5);
        assert_eq!(w, vec![[0, 0], [0, 0], [0, 12], [0, 0], [0, 0]]);
        // Zero buckets is read as one.
        assert_eq!(t.window(T0 + 59, 60, 0), vec![[10, 17]]);
    }

    #[test]
    fn the_ring_wraps_after_an_hour() {
        let t = Timeline::<1>::new();
        t.add(T0, 0, 1);
        t.add(T0 + 1, 0, 10);
        let now = T0 + 3600;
        // T0 is 3600 s old: outside a one-hour window; T0 + 1 is 3599 s old: inside.
        assert_eq!(t.totals(now, 3600), [10]);
        assert_eq!(t.totals(now, 100_000), [10], "seconds is capped at 3600");
        let w = t.window(now, 3600, 60);
        assert_eq!(w[0], [10]);
        assert_eq!(w.iter().map(|b| b[0]).sum::<u64>(), 10);
        // Writing T0 + 3600 reuses T0's slot: the old count is gone.
        t.add(now, 0, 100);
        assert_eq!(t.totals(now, 3600), [110]);
        assert_eq!(t.totals(now, 1), [100]);
        // Reading the past: T0's slot now holds T0 + 3600, so T0 reads zero.
        assert_eq!(t.totals(T0, 1), [0]);
        assert_eq!(t.totals(T0 + 1, 1), [10]);
        // An add an hour late does not overwrite the newer second.
        t.add(T0, 0, 1000);
        assert_eq!(t.totals(now, 1), [100]);
    }

    #[test]
    fn stale_slots_read_as_zero() {
        let t = Timeline::<3>::new();
        assert_eq!(t.totals(T0, 3600), [0, 0, 0], "never written");
        t.add(T0, 2, 4);
        // Two hours later the slot still holds T0's counts but is outside the window.
        assert_eq!(t.totals(T0 + 7200, 3600), [0, 0, 0]);
        assert!(
            t.window(T0 + 7200, 3600, 10)
                .iter()
                .all(|b| *b == [0, 0, 0])
        );
        // A window ending before the write does not see it either.
        assert_eq!(t.totals(T0 - 1, 3600), [0, 0, 0]);
        assert_eq!(t.totals(T0, 3600), [0, 0, 4]);
        // Early seconds: a window reaching before the epoch.
        t.add(0, 0, 1);
        t.add(2, 0, 2);
        assert_eq!(t.totals(2, 3600), [3, 0, 0]);
        assert_eq!(
            t.window(2, 10, 5),
            vec![[0; 3], [0; 3], [0; 3], [1, 0, 0], [2, 0, 0]]
        );
        // The last second representable is ignored, not a panic.
        t.add(u64::MAX, 0, 1);
        assert_eq!(t.totals(u64::MAX, 3600), [0, 0, 0]);
    }

    #[test]
    fn out_of_range_series_is_ignored() {
        let t = Timeline::<2>::new();
        t.add(T0, 2, 5);
        t.add(T0, usize::MAX, 5);
        t.add(T0, 1, 1);
        assert_eq!(t.totals(T0, 10), [0, 1]);
        let empty = Timeline::<0>::default();
        empty.add(T0, 0, 1);
        assert_eq!(empty.totals(T0, 10), [0u64; 0]);
    }

    #[test]
    fn concurrent_adds_within_one_second_sum_exactly() {
        const THREADS: u64 = 8;
        const ADDS: u64 = 20_000;
        let t = Timeline::<3>::new();
        // The slot changes hands before the threads start (no boundary crossing).
        t.add(T0 + 3600, 0, 0);
        // An add an hour late, to the same slot: dropped, not counted.
        t.add(T0, 0, 123);
        let barrier = std::sync::Barrier::new(THREADS as usize);
        std::thread::scope(|s| {
            for id in 0..THREADS {
                let (t, barrier) = (&t, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..ADDS {
                        t.add(T0 + 3600, ((id + i) % 3) as usize, 1 + (i % 2));
                    }
                });
            }
        });
        // Per thread: ADDS adds of 1, 2, 1, 2, ... spread over three series.
        let per_thread: u64 = (0..ADDS).map(|i| 1 + (i % 2)).sum();
        let totals = t.totals(T0 + 3600, 1);
        assert_eq!(totals.iter().sum::<u64>(), THREADS * per_thread);
        let mut expected = [0u64; 3];
        for id in 0..THREADS {
            for i in 0..ADDS {
                expected[((id + i) % 3) as usize] += 1 + (i % 2);
            }
        }
        assert_eq!(totals, expected);
    }

    /// The naive model of a window: bucket `i` covers seconds
    /// `[start + i × w, start + (i + 1) × w)` of `[now + 1 - seconds, now]`.
    fn model_window(
        model: &BTreeMap<u64, [u64; 2]>,
        now: u64,
        seconds: u64,
        buckets: usize,
    ) -> Vec<[u64; 2]> {
        let seconds = seconds.min(3600);
        let buckets = buckets.clamp(1, 3600);
        let mut out = vec![[0u64; 2]; buckets];
        if seconds == 0 {
            return out;
        }
        let width = seconds.div_ceil(buckets as u64) as i128;
        let start = i128::from(now) + 1 - i128::from(seconds);
        for (i, bucket) in out.iter_mut().enumerate() {
            let lo = start + i as i128 * width;
            let hi = (lo + width).min(i128::from(now) + 1);
            if hi <= lo.max(0) {
                continue;
            }
            for counts in model
                .range(lo.max(0) as u64..hi.max(0) as u64)
                .map(|(_, c)| c)
            {
                bucket[0] += counts[0];
                bucket[1] += counts[1];
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_a_naive_model(
            start in prop_oneof![0u64..5000, Just(T0)],
            ops in prop::collection::vec(
                (prop_oneof![3 => 0u64..3, 1 => 0u64..200, 1 => 3590u64..3610], 0usize..3, 0u64..1000),
                0..200,
            ),
            queries in prop::collection::vec((0u64..4000, 0u64..4000, 0usize..80), 1..8),
        ) {
            let t = Timeline::<2>::new();
            let mut model: BTreeMap<u64, [u64; 2]> = BTreeMap::new();
            let mut now = start;
            for (dt, series, n) in ops {
                now += dt;
                t.add(now, series, n);
                if let Some(c) = model.entry(now).or_default().get_mut(series) {
                    *c += n;
                }
                // The last minute, checked as it goes.
                let totals = t.totals(now, 60);
                let expected = model_window(&model, now, 60, 1)[0];
                prop_assert_eq!(totals, expected);
            }
            for (ahead, seconds, buckets) in queries {
                let at = now + ahead;
                prop_assert_eq!(t.window(at, seconds, buckets), model_window(&model, at, seconds, buckets));
                prop_assert_eq!(t.totals(at, seconds), model_window(&model, at, seconds, 1)[0]);
            }
        }
    }
}
