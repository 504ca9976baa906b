//! A small PRNG for test inputs.

use std::time::{SystemTime, UNIX_EPOCH};

/// xorshift64*, seeded from the clock: enough randomness for test inputs.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the current time (the seed is printed so
    /// that a failure can be reproduced with [`Rng::seeded`]).
    pub fn from_time() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        eprintln!("rng seed: {seed}");
        Rng::seeded(seed)
    }

    /// A generator with a fixed seed.
    pub fn seeded(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
