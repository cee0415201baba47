//! A tiny deterministic PRNG (SplitMix64). The core needs randomness only for election
//! timeouts; owning the generator keeps `Raft` `Clone + Hash + Eq` and replayable from a seed.

use serde::{Deserialize, Serialize};

/// SplitMix64 (Steele, Lea, Flood 2014): full period, good enough for timeouts and simulation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DetRng {
    state: u64,
}

impl DetRng {
    pub fn new(seed: u64) -> Self {
        DetRng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi] (inclusive). Returns `lo` when `hi <= lo`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        lo + self.next_u64() % span
    }

    /// True with probability `num / den` (false when `den == 0`).
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        den != 0 && self.next_u64() % den < num
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_range_bounds() {
        let mut a = DetRng::new(7);
        let mut b = DetRng::new(7);
        for _ in 0..1000 {
            let x = a.range_inclusive(150, 300);
            assert_eq!(x, b.range_inclusive(150, 300));
            assert!((150..=300).contains(&x));
        }
        assert_ne!(DetRng::new(1).next_u64(), DetRng::new(2).next_u64());
    }
}
