//! Clock faults: what a skewed clock looks like (`ClockSkew`), how one is drawn at random,
//! and how a backend tells libfaketime about it (`faketime_spec`).
//!
//! Only the wall clock (`CLOCK_REALTIME`) is faked, as Jepsen's clock nemesis does with
//! `date -s`: the monotonic clock is what timers, timeouts and Raft ticks run on, and a
//! real machine's NTP step never moves it. Backends start glibc programs with libfaketime
//! preloaded, `FAKETIME_DONT_FAKE_MONOTONIC=1`, and a timestamp file re-read on every call
//! (`FAKETIME_NO_CACHE=1`), so a fault takes hold as soon as the file is rewritten.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The largest clock offset the nemesis draws (Jepsen's bumps reach minutes too).
pub const MAX_BUMP_MS: i64 = 5 * 60 * 1000;
/// Rates a slow clock runs at.
const SLOW_RATES: [f64; 2] = [0.25, 0.5];
/// Rates a fast clock runs at.
const FAST_RATES: [f64; 2] = [2.0, 4.0];

/// How a node's wall clock is wrong while a clock fault is in effect.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum ClockSkew {
    /// The clock jumps by `offset_ms` (either way) and then runs at the normal rate.
    Bump { offset_ms: i64 },
    /// The clock flips between `+delta_ms` and real time every `period_ms`.
    Strobe { delta_ms: i64, period_ms: u64 },
    /// The clock runs `rate` seconds per real second from the moment the fault starts.
    Rate { rate: f64 },
}

/// The kinds of clock fault, for narrowing what the nemesis draws (`--clock-skews`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockShape {
    /// The clock jumps by tens to hundreds of ms, either way: what a lease's safety margin
    /// must absorb.
    Nudge,
    /// The clock jumps back by seconds to minutes: leases and timeouts timed by it last
    /// too long.
    BumpBack,
    /// The clock jumps ahead by seconds to minutes: they end too soon.
    BumpForward,
    /// The clock flips back and forth.
    Strobe,
    /// The clock runs slow (x0.25 or x0.5).
    Slow,
    /// The clock runs fast (x2 or x4).
    Fast,
}

impl ClockShape {
    pub const ALL: [ClockShape; 6] = [
        ClockShape::Nudge,
        ClockShape::BumpBack,
        ClockShape::BumpForward,
        ClockShape::Strobe,
        ClockShape::Slow,
        ClockShape::Fast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ClockShape::Nudge => "nudge",
            ClockShape::BumpBack => "bump-back",
            ClockShape::BumpForward => "bump-forward",
            ClockShape::Strobe => "strobe",
            ClockShape::Slow => "slow",
            ClockShape::Fast => "fast",
        }
    }
}

impl fmt::Display for ClockShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ClockSkew {
    /// A random skew of any shape.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> ClockSkew {
        ClockSkew::random_of(rng, &[])
    }

    /// A random skew of one of `shapes` (any shape when empty).
    pub fn random_of<R: Rng + ?Sized>(rng: &mut R, shapes: &[ClockShape]) -> ClockSkew {
        let shapes = if shapes.is_empty() {
            &ClockShape::ALL[..]
        } else {
            shapes
        };
        let shape = shapes[rng.random_range(0..shapes.len())];
        match shape {
            ClockShape::Nudge => {
                let magnitude = rng.random_range(20..=800);
                ClockSkew::Bump {
                    offset_ms: signed(rng, magnitude),
                }
            }
            ClockShape::BumpBack => ClockSkew::Bump {
                offset_ms: -rng.random_range(1_000..=MAX_BUMP_MS),
            },
            ClockShape::BumpForward => ClockSkew::Bump {
                offset_ms: rng.random_range(1_000..=MAX_BUMP_MS),
            },
            ClockShape::Strobe => {
                let magnitude = rng.random_range(100..=60_000);
                ClockSkew::Strobe {
                    delta_ms: signed(rng, magnitude),
                    period_ms: rng.random_range(10..=200),
                }
            }
            ClockShape::Slow => ClockSkew::Rate {
                rate: SLOW_RATES[rng.random_range(0..SLOW_RATES.len())],
            },
            ClockShape::Fast => ClockSkew::Rate {
                rate: FAST_RATES[rng.random_range(0..FAST_RATES.len())],
            },
        }
    }

    /// The (offset, rate) to set first.
    pub fn initial(&self) -> (i64, f64) {
        match *self {
            ClockSkew::Bump { offset_ms } => (offset_ms, 1.0),
            ClockSkew::Strobe { delta_ms, .. } => (delta_ms, 1.0),
            ClockSkew::Rate { rate } => (0, rate),
        }
    }
}

fn signed<R: Rng + ?Sized>(rng: &mut R, magnitude: i64) -> i64 {
    if rng.random_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

impl fmt::Display for ClockSkew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockSkew::Bump { offset_ms } => write!(f, "bump {offset_ms:+}ms"),
            ClockSkew::Strobe {
                delta_ms,
                period_ms,
            } => write!(f, "strobe {delta_ms:+}ms every {period_ms}ms"),
            ClockSkew::Rate { rate } => write!(f, "rate x{rate}"),
        }
    }
}

/// The content of a libfaketime timestamp file that makes a process's wall clock read
/// `offset_ms` away from real time and run at `rate`, from now on.
///
/// libfaketime applies a rate relative to the process's start (faked = start +
/// (real - start) * rate + offset), so a rate set later would also jump the clock by
/// `elapsed * (rate - 1)`. `process_elapsed_ms` (how long the process has run) lets this
/// cancel that jump, so the clock bends instead of leaping. Offsets are written in seconds
/// with millisecond decimals (`+1.500 x1`), which libfaketime reads as fractional seconds.
pub fn faketime_spec(offset_ms: i64, rate: f64, process_elapsed_ms: u64) -> String {
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        1.0
    };
    // The rate is always written, `x1` included: libfaketime 0.9.10 keeps applying an
    // earlier rate when a later spec has none.
    let correction_ms = -(process_elapsed_ms as f64) * (rate - 1.0);
    format!("{} x{rate}", seconds(offset_ms as f64 + correction_ms))
}

fn seconds(ms: f64) -> String {
    let s = ms / 1000.0;
    if s < 0.0 {
        format!("-{:.3}", -s)
    } else {
        format!("+{s:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn specs_are_what_libfaketime_reads() {
        assert_eq!(faketime_spec(0, 1.0, 12_345), "+0.000 x1");
        assert_eq!(faketime_spec(1_500, 1.0, 0), "+1.500 x1");
        assert_eq!(faketime_spec(-90_000, 1.0, 0), "-90.000 x1");
        // A process 10 s old set to run twice as fast: without the -10 s correction its
        // clock would leap 10 s forward at once.
        assert_eq!(faketime_spec(0, 2.0, 10_000), "-10.000 x2");
        assert_eq!(faketime_spec(0, 0.5, 10_000), "+5.000 x0.5");
        // Nonsense rates are treated as no skew rather than written out.
        assert_eq!(faketime_spec(0, f64::NAN, 10), "+0.000 x1");
        assert_eq!(faketime_spec(0, -1.0, 10), "+0.000 x1");
    }

    #[test]
    fn random_skews_cover_every_shape_within_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mut bumps, mut strobes, mut rates) = (0, 0, 0);
        for _ in 0..400 {
            match ClockSkew::random(&mut rng) {
                ClockSkew::Bump { offset_ms } => {
                    assert!(offset_ms != 0 && offset_ms.abs() <= MAX_BUMP_MS);
                    bumps += 1;
                }
                ClockSkew::Strobe {
                    delta_ms,
                    period_ms,
                } => {
                    assert!(delta_ms != 0 && (10..=200).contains(&period_ms));
                    strobes += 1;
                }
                ClockSkew::Rate { rate } => {
                    assert!(SLOW_RATES.contains(&rate) || FAST_RATES.contains(&rate));
                    rates += 1;
                }
            }
        }
        assert!(bumps > 0 && strobes > 0 && rates > 0);
    }

    #[test]
    fn narrowed_skews_keep_to_their_shapes() {
        let mut rng = StdRng::seed_from_u64(8);
        let (mut back, mut ahead) = (0, 0);
        for _ in 0..200 {
            match ClockSkew::random_of(&mut rng, &[ClockShape::BumpBack]) {
                ClockSkew::Bump { offset_ms } => {
                    assert!((-MAX_BUMP_MS..=-1_000).contains(&offset_ms));
                }
                other => panic!("bump-back drew {other}"),
            }
            match ClockSkew::random_of(&mut rng, &[ClockShape::Nudge]) {
                ClockSkew::Bump { offset_ms } if offset_ms < 0 => {
                    assert!(offset_ms >= -800);
                    back += 1;
                }
                ClockSkew::Bump { offset_ms } => {
                    assert!((20..=800).contains(&offset_ms));
                    ahead += 1;
                }
                other => panic!("nudge drew {other}"),
            }
            match ClockSkew::random_of(&mut rng, &[ClockShape::Slow, ClockShape::Fast]) {
                ClockSkew::Rate { rate } => assert!(rate != 1.0),
                other => panic!("slow/fast drew {other}"),
            }
        }
        assert!(back > 0 && ahead > 0);
    }
}
