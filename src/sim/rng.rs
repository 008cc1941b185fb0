//! The world's randomness: SplitMix64, written out so a seed means the same run forever.
//!
//! A crate's generator may change its output between versions; a saved world or a
//! chaos test's seed must not. Draws are also keyed by *stream* (an operation's name, a
//! fault's index): the n-th draw of a stream is a pure function of (seed, stream, n),
//! so two tasks calling different operations in a different interleaving still get
//! the same durations and fault decisions.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::fnv1a;

/// SplitMix64's increment (the golden ratio in 64-bit fixed point).
pub(crate) const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A SplitMix64 generator (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }
}

/// The `n`-th output (from 0) of the generator for `stream` under `seed`. SplitMix64's
/// state only advances by a constant, so this jumps straight to it.
pub(crate) fn nth(seed: u64, stream: &str, n: u64) -> u64 {
    let base = seed ^ mix(fnv1a(stream));
    mix(base.wrapping_add(GAMMA.wrapping_mul(n.wrapping_add(1))))
}

/// An inclusive range of durations an operation takes, drawn uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Between {
    /// Shortest.
    pub min: Duration,
    /// Longest.
    pub max: Duration,
}

impl Between {
    /// From seconds (for the defaults).
    pub const fn secs(min: u64, max: u64) -> Self {
        Self {
            min: Duration::from_secs(min),
            max: Duration::from_secs(max),
        }
    }

    /// From milliseconds.
    pub const fn millis(min: u64, max: u64) -> Self {
        Self {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
        }
    }

    /// A point in the range chosen by 64 random bits. Never panics, whatever a restored
    /// snapshot holds (a reversed range is read the right way round).
    pub(crate) fn pick(&self, bits: u64) -> Duration {
        let (lo, hi) = if self.min <= self.max {
            (self.min, self.max)
        } else {
            (self.max, self.min)
        };
        let lo_ms = u64::try_from(lo.as_millis()).unwrap_or(u64::MAX);
        let hi_ms = u64::try_from(hi.as_millis()).unwrap_or(u64::MAX);
        let span = hi_ms.saturating_sub(lo_ms);
        let offset = if span == u64::MAX {
            bits
        } else {
            bits % (span + 1)
        };
        Duration::from_millis(lo_ms.saturating_add(offset))
    }
}

/// A probability check from 64 random bits: true with probability `p` (clamped to
/// [0, 1]; NaN counts as 0).
pub(crate) fn chance(bits: u64, p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        return false;
    }
    if p >= 1.0 {
        return true;
    }
    // 53 bits: exactly representable in an f64.
    ((bits >> 11) as f64 / (1u64 << 53) as f64) < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_output() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut g = SplitMix64::new(1234567);
        assert_eq!(g.next_u64(), 6457827717110365317);
        assert_eq!(g.next_u64(), 3203168211198807973);
        assert_eq!(g.next_u64(), 9817491932198370423);
    }

    #[test]
    fn nth_jumps_to_the_same_value_as_stepping() {
        let seed = 42;
        let base = seed ^ mix(fnv1a("s"));
        let mut g = SplitMix64::new(base);
        for n in 0..5 {
            assert_eq!(nth(seed, "s", n), g.next_u64());
        }
        assert_ne!(nth(seed, "s", 0), nth(seed, "t", 0));
    }

    #[test]
    fn picks_stay_in_range_and_never_panic() {
        let b = Between::secs(60, 120);
        for n in 0..1000 {
            let d = b.pick(nth(7, "x", n));
            assert!((b.min..=b.max).contains(&d));
        }
        let reversed = Between::secs(10, 5);
        assert!((Duration::from_secs(5)..=Duration::from_secs(10)).contains(&reversed.pick(3)));
        let huge = Between {
            min: Duration::ZERO,
            max: Duration::MAX,
        };
        let _ = huge.pick(u64::MAX);
        assert!(!chance(0, f64::NAN));
        assert!(chance(u64::MAX, 1.0));
        assert!(!chance(0, 0.0));
    }
}
