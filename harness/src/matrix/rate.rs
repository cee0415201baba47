//! [`Rate`]: what N seeds of one cell say about it (`faultline test-all --seeds N`): how
//! many runs showed what the cell looks for, out of how many that count, the 95% Wilson
//! score interval for that rate, how soon the violation was known, and which faults were
//! in effect when it happened.
//!
//! A run whose fault could not be injected is no evidence: it is counted in
//! `skipped_runs` and left out of `k` and `n`. So are runs the checker could not decide
//! (`unknown_runs`) and runs that failed (`error_runs`): the rate is over decided runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// z for a two-sided 95% interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// One cell's runs over N seeds, summed up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rate {
    /// Seeds asked for (N).
    pub seeds: u32,
    /// Runs that must show the bug (K) for a bug cell to pass, scaled down to the runs
    /// that count when some were skipped; for a correct cell, `n`: every one valid.
    pub required: u32,
    /// Bug cells: runs that detected the bug. Correct cells: runs judged `valid`.
    pub k: u32,
    /// Decided runs: neither skipped, unknown nor failed.
    pub n: u32,
    /// The 95% Wilson score interval for `k / n`; absent when `n` is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Median time to detect over the runs the online check caught, in ms since each run
    /// started (nearest rank, see [`quantile`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_median_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_p90_ms: Option<u64>,
    /// Detecting runs only the final check found (no online time to detect).
    pub found_at_end: u32,
    /// Runs whose fault could not be injected (no evidence).
    pub skipped_runs: u32,
    /// Runs the checker could not decide.
    pub unknown_runs: u32,
    /// Runs that failed to run.
    pub error_runs: u32,
    /// Detecting runs by the faults in effect when the violating op completed: a kind, or
    /// kinds joined by `+` when several overlapped, `none`, or `unattributed`. Sums to `k`
    /// for a bug cell.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub active_faults: BTreeMap<String, u32>,
}

impl Rate {
    /// `k/n`, e.g. `19/20`.
    pub fn fraction(&self) -> String {
        format!("{}/{}", self.k, self.n)
    }

    /// `[0.764, 0.991]`, or `-` without decided runs.
    pub fn interval(&self) -> String {
        match (self.low, self.high) {
            (Some(lo), Some(hi)) => format!("[{lo:.3}, {hi:.3}]"),
            _ => "-".to_string(),
        }
    }

    /// `partition 15, kill 2, none 1`: most frequent first, ties by name.
    pub fn tally(&self) -> String {
        let mut counts: Vec<(&String, &u32)> = self.active_faults.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The 95% Wilson score interval for `k` successes in `n` trials, as `(low, high)`;
/// `None` when `n` is 0 (no evidence, no interval). Unlike `k/n ± 1.96·sd`, it stays
/// within [0, 1] and is not a point at 0/n or n/n, which is where a detection matrix
/// mostly lives.
pub fn wilson(k: u32, n: u32) -> Option<(f64, f64)> {
    assert!(k <= n, "{k} successes in {n} trials");
    if n == 0 {
        return None;
    }
    let n_f = f64::from(n);
    let p = f64::from(k) / n_f;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n_f;
    let center = (p + z2 / (2.0 * n_f)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    // At k = 0 (or n) the exact bound is 0 (or 1); rounding must not move it past.
    let low = if k == 0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let high = if k == n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some((low, high))
}

/// The `q` quantile (0 < q <= 1) of `values` by the nearest-rank rule: the smallest value
/// with at least `q` of the values at or below it, i.e. the value of rank `ceil(q * len)`
/// (1-based) in sorted order. Always one of the values (a time some run took), never an
/// interpolation; the median of an even count is the lower middle one. `None` when empty.
pub fn quantile(values: &[u64], q: f64) -> Option<u64> {
    assert!(q > 0.0 && q <= 1.0, "quantile {q} outside (0, 1]");
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 5e-4
    }

    #[test]
    fn wilson_interval_of_19_in_20() {
        let (lo, hi) = wilson(19, 20).unwrap();
        assert!(close(lo, 0.7639) && close(hi, 0.9911), "[{lo}, {hi}]");
        // Symmetric: 1 in 20 mirrors 19 in 20.
        let (lo1, hi1) = wilson(1, 20).unwrap();
        assert!(
            close(lo1, 1.0 - hi) && close(hi1, 1.0 - lo),
            "[{lo1}, {hi1}]"
        );
        // Half: centred on 0.5.
        let (lo, hi) = wilson(5, 10).unwrap();
        assert!(close(lo, 0.2366) && close(hi, 0.7634), "[{lo}, {hi}]");
    }

    #[test]
    fn wilson_interval_at_the_edges() {
        // None found: the low end is exactly 0, the high end is not (0/10 is no proof of
        // a zero rate): z²/(n+z²).
        let (lo, hi) = wilson(0, 10).unwrap();
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.2775), "{hi}");
        // All found: the mirror image.
        let (lo, hi) = wilson(10, 10).unwrap();
        assert_eq!(hi, 1.0);
        assert!(close(lo, 0.7225), "{lo}");
        // Two of two: wide, as two runs are little evidence.
        let (lo, hi) = wilson(2, 2).unwrap();
        assert!(close(lo, 0.3424) && hi == 1.0, "[{lo}, {hi}]");
        // No decided runs: no interval at all.
        assert_eq!(wilson(0, 0), None);
        // More runs narrow it.
        let narrow = wilson(100, 100).unwrap().0;
        assert!(narrow > 0.96 && narrow < 0.97, "{narrow}");
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.5), Some(7));
        assert_eq!(quantile(&[7], 0.9), Some(7));
        // Unsorted input; odd count: the middle one.
        assert_eq!(quantile(&[30, 10, 20], 0.5), Some(20));
        assert_eq!(quantile(&[30, 10, 20], 0.9), Some(30));
        // Even count: the lower middle one, never a mean.
        assert_eq!(quantile(&[40, 10, 30, 20], 0.5), Some(20));
        // p90 of ten is the 9th, of eleven the 10th (ceil(9.9)).
        let ten: Vec<u64> = (1..=10).map(|i| i * 100).collect();
        assert_eq!(quantile(&ten, 0.9), Some(900));
        assert_eq!(quantile(&ten, 0.5), Some(500));
        let eleven: Vec<u64> = (1..=11).collect();
        assert_eq!(quantile(&eleven, 0.9), Some(10));
        assert_eq!(quantile(&eleven, 1.0), Some(11));
    }

    #[test]
    fn the_tally_lists_the_most_frequent_first() {
        let rate = Rate {
            k: 18,
            n: 20,
            active_faults: [("kill", 2), ("none", 1), ("partition", 15)]
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            ..Rate::default()
        };
        assert_eq!(rate.tally(), "partition 15, kill 2, none 1");
        assert_eq!(rate.fraction(), "18/20");
        assert_eq!(rate.interval(), "-");
    }
}
