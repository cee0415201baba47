//! `NetemSpec`: a packet fault for one node's outgoing traffic, as data (delay with jitter,
//! loss, duplication, reordering), so every backend applies the same fault the same way.
//! The Docker backend renders it as `tc qdisc replace dev <if> root netem <args>`.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Bounds of a random delay: long enough to matter next to raft timeouts, short enough
/// that a run still makes progress.
pub const RANDOM_DELAY_MS: std::ops::RangeInclusive<u32> = 50..=200;
/// Upper bound of every percentage a random spec draws, so packets still mostly arrive.
const RANDOM_LOSS_MAX_PCT: u8 = 5;
const RANDOM_DUPLICATE_MAX_PCT: u8 = 3;
const RANDOM_REORDER_MAX_PCT: u8 = 10;
/// Largest delay a spec may ask for: beyond this it is a partition, not a slow link.
pub const MAX_DELAY_MS: u32 = 10_000;

/// What netem does to a node's outgoing packets. Percentages are 0..=100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetemSpec {
    pub delay_ms: u32,
    /// Each packet's delay is drawn uniformly within `delay_ms ± jitter_ms`.
    pub jitter_ms: u32,
    pub loss_pct: u8,
    pub duplicate_pct: u8,
    /// Share of packets sent at once instead of delayed; needs `delay_ms > 0`.
    pub reorder_pct: u8,
}

/// A spec that netem would reject or that is not a slow link.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid netem spec: {0}")]
pub struct InvalidNetem(pub String);

impl NetemSpec {
    /// Only a fixed delay.
    pub fn delay(delay_ms: u32) -> NetemSpec {
        NetemSpec {
            delay_ms,
            jitter_ms: 0,
            loss_pct: 0,
            duplicate_pct: 0,
            reorder_pct: 0,
        }
    }

    /// A delay of 50-200 ms with jitter of a quarter of it, and small loss, duplication
    /// and reordering.
    pub fn random(rng: &mut impl Rng) -> NetemSpec {
        let delay_ms = rng.random_range(RANDOM_DELAY_MS);
        NetemSpec {
            delay_ms,
            jitter_ms: delay_ms / 4,
            loss_pct: rng.random_range(0..=RANDOM_LOSS_MAX_PCT),
            duplicate_pct: rng.random_range(0..=RANDOM_DUPLICATE_MAX_PCT),
            reorder_pct: rng.random_range(0..=RANDOM_REORDER_MAX_PCT),
        }
    }

    pub fn validate(&self) -> Result<(), InvalidNetem> {
        let bad = |m: String| Err(InvalidNetem(m));
        if self.delay_ms > MAX_DELAY_MS {
            return bad(format!("delay {} ms > {MAX_DELAY_MS} ms", self.delay_ms));
        }
        if self.jitter_ms > self.delay_ms {
            return bad(format!(
                "jitter {} ms > delay {} ms",
                self.jitter_ms, self.delay_ms
            ));
        }
        for (name, v) in [
            ("loss", self.loss_pct),
            ("duplicate", self.duplicate_pct),
            ("reorder", self.reorder_pct),
        ] {
            if v > 100 {
                return bad(format!("{name} {v}% > 100%"));
            }
        }
        if self.reorder_pct > 0 && self.delay_ms == 0 {
            return bad("reorder needs a delay".into());
        }
        Ok(())
    }

    /// The arguments after `netem` for `tc qdisc ... netem`, e.g.
    /// `["delay", "100ms", "25ms", "loss", "2%"]`. Zero parts are left out.
    pub fn tc_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.delay_ms > 0 {
            args.extend(["delay".into(), format!("{}ms", self.delay_ms)]);
            if self.jitter_ms > 0 {
                args.push(format!("{}ms", self.jitter_ms));
            }
        }
        for (name, v) in [
            ("loss", self.loss_pct),
            ("duplicate", self.duplicate_pct),
            ("reorder", self.reorder_pct),
        ] {
            if v > 0 {
                args.extend([name.to_string(), format!("{v}%")]);
            }
        }
        args
    }
}

impl fmt::Display for NetemSpec {
    /// `delay 120ms±30ms loss 2% duplicate 1% reorder 5%`; zero parts left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.delay_ms > 0 {
            parts.push(if self.jitter_ms > 0 {
                format!("delay {}ms±{}ms", self.delay_ms, self.jitter_ms)
            } else {
                format!("delay {}ms", self.delay_ms)
            });
        }
        for (name, v) in [
            ("loss", self.loss_pct),
            ("duplicate", self.duplicate_pct),
            ("reorder", self.reorder_pct),
        ] {
            if v > 0 {
                parts.push(format!("{name} {v}%"));
            }
        }
        if parts.is_empty() {
            f.write_str("no-op")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn renders_tc_arguments_and_text() {
        let s = NetemSpec {
            delay_ms: 120,
            jitter_ms: 30,
            loss_pct: 2,
            duplicate_pct: 0,
            reorder_pct: 5,
        };
        assert_eq!(
            s.tc_args(),
            ["delay", "120ms", "30ms", "loss", "2%", "reorder", "5%"]
        );
        assert_eq!(s.to_string(), "delay 120ms±30ms loss 2% reorder 5%");
        assert_eq!(NetemSpec::delay(200).tc_args(), ["delay", "200ms"]);
        assert_eq!(NetemSpec::delay(0).to_string(), "no-op");
    }

    #[test]
    fn rejects_what_netem_would() {
        assert!(NetemSpec::delay(200).validate().is_ok());
        let mut s = NetemSpec::delay(0);
        s.reorder_pct = 5;
        assert!(s.validate().is_err());
        s = NetemSpec::delay(10);
        s.jitter_ms = 11;
        assert!(s.validate().is_err());
        s = NetemSpec::delay(10);
        s.loss_pct = 101;
        assert!(s.validate().is_err());
        assert!(NetemSpec::delay(MAX_DELAY_MS + 1).validate().is_err());
    }

    #[test]
    fn random_specs_stay_in_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let s = NetemSpec::random(&mut rng);
            assert!(RANDOM_DELAY_MS.contains(&s.delay_ms), "{s}");
            assert!(s.validate().is_ok(), "{s}");
            assert!(s.loss_pct <= RANDOM_LOSS_MAX_PCT);
        }
    }
}
