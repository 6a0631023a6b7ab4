//! What only the reliability tests share: a seeded RNG and the seed of a
//! randomised test. The child-process gateway, `artgate fsck` and the
//! config files it runs on are in `support/child.rs`; body readers in
//! `support/http.rs`.

/// splitmix64: small, seeded, good enough to pick sizes and moments.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// Log-uniform size in `lo..=hi` bytes: many small objects, some large.
    pub fn size(&mut self, lo: usize, hi: usize) -> usize {
        let (a, b) = ((lo.max(1) as f64).ln(), (hi as f64).ln());
        let f = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((a + (b - a) * f).exp() as usize).clamp(lo, hi)
    }
}

/// The seed of a randomised test: `$ARTGATE_SEED` if set, else the clock.
/// Printed, so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("ARTGATE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (replay with ARTGATE_SEED={seed})");
    seed
}
