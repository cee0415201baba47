//! How the matrix's cells ended: each try (one run), each cell's status, the table's rows,
//! and the matrix's exit code. A cell runs either until it is decided (`--tries`: a bug
//! cell stops at its first find) or on a fixed number of seeds (`--seeds`), which gives a
//! detection rate ([`Rate`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::cell::{Cell, Expect};
use super::detection::{self, Detection};
use super::rate::{quantile, wilson, Rate};
use crate::results::{RunResults, Verdict};
use crate::run::{run_test, TestConfig};

/// How a cell ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    /// The expectation held.
    Met,
    /// A correct run was judged invalid, or a bug was never found.
    Missed,
    /// The checker could not decide (a limit), and nothing was wrong.
    Unknown,
    /// A run failed to run (cluster did not start, ...).
    Error,
    /// Ctrl-C stopped the matrix during this cell.
    Cancelled,
    /// A fault of the cell could not be injected on this backend: its runs are no
    /// evidence (the outcome says why).
    Skipped,
}

/// One run of a cell.
#[derive(Clone, Debug, Serialize)]
pub struct Try {
    pub seed: u64,
    pub verdict: Verdict,
    pub fencing_violation: bool,
    pub run_dir: PathBuf,
    pub total_ms: u64,
    /// Operations invoked.
    pub ops: u64,
    /// Ctrl-C stopped this run.
    pub cancelled: bool,
    /// Fault kinds the run could not inject, with why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub faults_skipped: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a run that showed what its cell looks for: when that was known, and which
    /// faults were in effect at the violating op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
}

impl Try {
    /// Why this run is no evidence about the cell's faults, when it is not.
    fn skipped(&self) -> Option<String> {
        (!self.faults_skipped.is_empty()).then(|| {
            self.faults_skipped
                .iter()
                .map(|(kind, why)| format!("{kind}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// What happened to a cell.
#[derive(Clone, Debug, Serialize)]
pub struct CellOutcome {
    pub cell: Cell,
    pub status: CellStatus,
    pub tries: Vec<Try>,
    /// For bug cells that were found: wall time from the first try's start until the
    /// detecting run's verdict (all tries included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_detection_ms: Option<u64>,
    /// For a skipped cell: which fault could not be injected, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// With `--seeds`: the cell's runs summed up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

impl CellOutcome {
    /// The cell's line in the table.
    pub fn row(&self) -> String {
        let last = self.tries.last();
        let where_ = match (last, &self.skipped) {
            (_, Some(why)) => format!("({why})"),
            (Some(t), _) if t.run_dir.as_os_str().is_empty() => t.error.clone().unwrap_or_default(),
            (Some(t), _) => t.run_dir.display().to_string(),
            (None, _) => String::new(),
        };
        format!(
            "{:<44} {:<17} {:<9} {:>5} {:>9}  {}",
            self.cell.name,
            self.cell.expect.name(),
            self.status_word(),
            self.tries.len(),
            self.time_to_detection_ms
                .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            where_,
        )
    }

    /// The cell's line in the `--seeds` table: the rate, its interval, the time to detect
    /// (median and p90, seconds since the run started), detecting runs found only at the
    /// end, skipped runs, and the faults in effect at the violations (or why the cell was
    /// skipped, or the last error).
    pub fn rate_row(&self) -> String {
        let rate = self.rate.clone().unwrap_or_default();
        let seconds = |ms: Option<u64>| {
            ms.map(|ms| format!("{:.1}", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        let note = match (&self.skipped, self.status) {
            (Some(why), _) => format!("({why})"),
            (None, CellStatus::Error) => self
                .tries
                .iter()
                .find_map(|t| t.error.clone())
                .unwrap_or_default(),
            _ => rate.tally(),
        };
        format!(
            "{:<44} {:<17} {:<11} {:>7} {:<16} {:>7} {:>7} {:>4} {:>4}  {}",
            self.cell.name,
            self.cell.expect.name(),
            self.status_word(),
            rate.fraction(),
            rate.interval(),
            seconds(rate.detect_median_ms),
            seconds(rate.detect_p90_ms),
            rate.found_at_end,
            rate.skipped_runs,
            note,
        )
    }

    /// `found`, `MISSED`, `FALSE-ALARM`, ...
    fn status_word(&self) -> &'static str {
        let found = self.cell.expect != Expect::Valid;
        match self.status {
            CellStatus::Met if found => "found",
            CellStatus::Met => "ok",
            CellStatus::Missed if found => "MISSED",
            CellStatus::Missed => "FALSE-ALARM",
            CellStatus::Unknown => "unknown",
            CellStatus::Error => "ERROR",
            CellStatus::Cancelled => "cancelled",
            CellStatus::Skipped => "skipped",
        }
    }
}

/// The `--seeds` table's header line. `rate` is detections (bug cells) or valid runs
/// (correct cells) of the runs that count.
pub fn rate_header() -> String {
    format!(
        "{:<44} {:<17} {:<11} {:>7} {:<16} {:>7} {:>7} {:>4} {:>4}  {}",
        "cell",
        "expect",
        "result",
        "rate",
        "95% interval",
        "p50(s)",
        "p90(s)",
        "end",
        "skip",
        "faults at violation"
    )
}

/// The table's header line.
pub fn header() -> String {
    format!(
        "{:<44} {:<17} {:<9} {:>5} {:>9}  {}",
        "cell", "expect", "result", "tries", "detect(s)", "last run"
    )
}

fn to_try(outcome: &RunResults) -> Try {
    Try {
        detection: None,
        seed: outcome.seed,
        verdict: outcome.verdict,
        fencing_violation: outcome.fencing_violation(),
        run_dir: outcome.run_dir.clone(),
        total_ms: outcome.total_ms,
        ops: outcome.exercised.as_ref().map_or(0, |x| x.counts.invoke),
        cancelled: outcome.exercised.as_ref().is_some_and(|x| x.cancelled),
        faults_skipped: outcome
            .exercised
            .as_ref()
            .map(|x| x.faults_skipped.clone())
            .unwrap_or_default(),
        error: outcome.error.clone(),
    }
}

/// Whether a try shows what a bug cell looks for.
fn detected(expect: Expect, t: &Try) -> bool {
    match expect {
        Expect::Valid => false,
        Expect::Invalid => t.verdict == Verdict::Invalid,
        Expect::FencingViolation => t.verdict == Verdict::Invalid && t.fencing_violation,
    }
}

/// Runs one cell: one try for a correct cell, up to `max_tries` times its tries factor (new
/// seed each) for a bug.
/// `base` supplies everything the cell does not set (nodes, time limit, rate, results
/// folder, seed); the k-th try uses seed `base.seed + k`.
pub async fn run_cell(cell: &Cell, base: &TestConfig, max_tries: u32) -> CellOutcome {
    let started = Instant::now();
    let mut tries = Vec::new();
    let attempts = if cell.expect == Expect::Valid {
        1
    } else {
        max_tries.max(1).saturating_mul(cell.tries_factor.max(1))
    };
    for k in 0..attempts {
        let t = run_try(cell, base, k).await;
        let found = detected(cell.expect, &t);
        let skipped = t.skipped();
        let status = status_after(cell.expect, &t, found);
        tries.push(t);
        if let Some(status) = status {
            let time_to_detection_ms = (found && status == CellStatus::Met)
                .then(|| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            return CellOutcome {
                cell: cell.clone(),
                status,
                tries,
                time_to_detection_ms,
                skipped: skipped.filter(|_| status == CellStatus::Skipped),
                rate: None,
            };
        }
    }
    // A bug cell that ran out of tries. If some try was `unknown`, the bug may have been
    // there and the checker could not say: report unknown, not a miss.
    let status = if tries.iter().any(|t| t.verdict == Verdict::Unknown) {
        CellStatus::Unknown
    } else {
        CellStatus::Missed
    };
    CellOutcome {
        cell: cell.clone(),
        status,
        tries,
        time_to_detection_ms: None,
        skipped: None,
        rate: None,
    }
}

/// The configuration of try `k` of `cell`: `base` with the cell's workload, nemesis, bug
/// and factors, and seed `base.seed + k`.
fn try_config(cell: &Cell, base: &TestConfig, k: u32) -> TestConfig {
    let mut config = base.clone();
    config.name = cell.name.clone();
    config.workload = cell.workload;
    config.nemesis = cell.nemesis.clone();
    config.shapes = cell.shapes.clone();
    config.concurrency = base.concurrency.saturating_mul(cell.clients_factor.max(1));
    config.bugs = cell.bug.iter().cloned().collect();
    config.target = cell.target.clone();
    config.target_options.serializable = cell.serializable;
    if let Some(ms) = cell.op_timeout_ms {
        config.op_timeout_ms = ms;
    }
    if let Some(n) = cell.nodes {
        config.nodes = n;
    }
    config.seed = base.seed.wrapping_add(u64::from(k));
    config.time_limit_ms = (base.time_limit_ms as f64 * cell.time_factor.max(0.0)) as u64;
    let scaled = base.nemesis_interval_ms as f64 * cell.interval_factor;
    config.nemesis_interval_ms = (scaled as u64).max(base.nemesis_interval_ms.min(1_000));
    config
}

/// Try `k` of `cell` ([`try_config`]). A try that shows what the cell looks for gets its
/// [`Detection`].
async fn run_try(cell: &Cell, base: &TestConfig, k: u32) -> Try {
    let config = try_config(cell, base, k);
    match run_test(config).await {
        Ok(outcome) => {
            println!("  {}  {}", cell.name, outcome.summary());
            let mut t = to_try(&outcome);
            if detected(cell.expect, &t) {
                // Reads the run's history: off the async threads.
                let expect = cell.expect;
                t.detection =
                    tokio::task::spawn_blocking(move || detection::of_run(expect, &outcome))
                        .await
                        .ok();
            }
            t
        }
        Err(e) => Try {
            seed: base.seed.wrapping_add(u64::from(k)),
            verdict: Verdict::Error,
            fencing_violation: false,
            run_dir: PathBuf::new(),
            total_ms: 0,
            ops: 0,
            cancelled: false,
            faults_skipped: BTreeMap::new(),
            error: Some(format!("{e:#}")),
            detection: None,
        },
    }
}

/// Runs `cell` on `seeds` seeds (`base.seed` onwards), every one whatever the earlier ones
/// showed, and judges it by [`judge_seeds`]: a bug cell must be detected in `require` of
/// them. Ctrl-C ends the cell (as cancelled) after the run it interrupted.
pub async fn run_cell_seeds(
    cell: &Cell,
    base: &TestConfig,
    seeds: u32,
    require: u32,
) -> CellOutcome {
    let mut tries = Vec::new();
    for k in 0..seeds {
        let t = run_try(cell, base, k).await;
        let cancelled = t.cancelled;
        tries.push(t);
        if cancelled {
            break;
        }
    }
    let (status, rate) = judge_seeds(cell.expect, &tries, seeds, require);
    let skipped = (status == CellStatus::Skipped)
        .then(|| tries.iter().find_map(Try::skipped))
        .flatten();
    CellOutcome {
        cell: cell.clone(),
        status,
        tries,
        time_to_detection_ms: None,
        skipped,
        rate: Some(rate),
    }
}

/// A cell's status and rate over its runs on `seeds` seeds, of which a bug cell must
/// detect its bug in `require`.
///
/// Runs whose fault was skipped are no evidence: they are counted apart and left out of
/// `k` and `n`, and the requirement scales to the runs left, `ceil(require * left /
/// seeds)` (with the default `require = seeds`: every run left). Unknown and failed runs
/// are left out of `n` too. The status keeps the precedence of `--tries` (a cancelled
/// run, then a failed one, decide the cell), except that a definite miss comes first, as
/// it does in the exit code:
/// - any run cancelled: `cancelled`;
/// - correct cell: any run `invalid` (skipped or not: a false alarm is one whatever was
///   skipped): `missed`; else any failed run: `error`; else all runs skipped: `skipped`;
///   else any `unknown`: `unknown`; else `met`;
/// - bug cell: all runs skipped: `skipped`; `k` short of the requirement even if every
///   unknown and failed run had detected the bug: `missed`; else any failed run: `error`;
///   else `k` at the requirement: `met`; else (unknown runs could have made up the
///   difference) `unknown`.
pub fn judge_seeds(expect: Expect, tries: &[Try], seeds: u32, require: u32) -> (CellStatus, Rate) {
    let count = |f: &dyn Fn(&Try) -> bool| -> u32 {
        u32::try_from(tries.iter().filter(|t| f(t)).count()).unwrap_or(u32::MAX)
    };
    let evidence = |t: &Try| t.skipped().is_none();
    let skipped_runs = count(&|t| !evidence(t));
    let error_runs = count(&|t| evidence(t) && t.verdict == Verdict::Error);
    let unknown_runs = count(&|t| evidence(t) && t.verdict == Verdict::Unknown);
    let decided = |t: &Try| evidence(t) && matches!(t.verdict, Verdict::Valid | Verdict::Invalid);
    let n = count(&decided);
    let counted = seeds.saturating_sub(skipped_runs);
    let found: Vec<&Try> = tries
        .iter()
        .filter(|t| decided(t) && detected(expect, t))
        .collect();
    let (k, required) = if expect == Expect::Valid {
        (count(&|t| decided(t) && t.verdict == Verdict::Valid), n)
    } else {
        let k = u32::try_from(found.len()).unwrap_or(u32::MAX);
        let seeds = u64::from(seeds.max(1));
        let scaled = (u64::from(require) * u64::from(counted)).div_ceil(seeds);
        (k, u32::try_from(scaled).unwrap_or(u32::MAX))
    };
    let times: Vec<u64> = found
        .iter()
        .filter_map(|t| t.detection.as_ref().and_then(|d| d.time_to_detect_ms))
        .collect();
    let mut active_faults = BTreeMap::new();
    for t in &found {
        let label = t
            .detection
            .as_ref()
            .map_or_else(|| "unattributed".to_string(), Detection::faults_label);
        *active_faults.entry(label).or_insert(0) += 1;
    }
    let interval = wilson(k, n);
    let rate = Rate {
        seeds,
        required,
        k,
        n,
        low: interval.map(|i| i.0),
        high: interval.map(|i| i.1),
        detect_median_ms: quantile(&times, 0.5),
        detect_p90_ms: quantile(&times, 0.9),
        found_at_end: u32::try_from(found.len() - times.len()).unwrap_or(u32::MAX),
        skipped_runs,
        unknown_runs,
        error_runs,
        active_faults,
    };
    let any = |v: Verdict| tries.iter().any(|t| t.verdict == v);
    let status = if tries.iter().any(|t| t.cancelled) {
        CellStatus::Cancelled
    } else if expect == Expect::Valid {
        if any(Verdict::Invalid) {
            CellStatus::Missed
        } else if error_runs > 0 {
            CellStatus::Error
        } else if counted == 0 {
            CellStatus::Skipped
        } else if unknown_runs > 0 {
            CellStatus::Unknown
        } else {
            CellStatus::Met
        }
    } else if counted == 0 {
        CellStatus::Skipped
    } else if k + unknown_runs + error_runs < required {
        CellStatus::Missed
    } else if error_runs > 0 {
        CellStatus::Error
    } else if k >= required {
        CellStatus::Met
    } else {
        CellStatus::Unknown
    };
    (status, rate)
}

/// The cell's status after try `t`, when the cell is decided (`None`: try again). A
/// violation counts whatever was skipped: a false alarm is one, and a bug found is found.
/// Otherwise a run whose fault could not be injected decides the cell as skipped (the
/// next seed would skip it too).
fn status_after(expect: Expect, t: &Try, found: bool) -> Option<CellStatus> {
    match (expect, t.verdict) {
        _ if t.cancelled => Some(CellStatus::Cancelled),
        (_, Verdict::Error) => Some(CellStatus::Error),
        (Expect::Valid, Verdict::Invalid) => Some(CellStatus::Missed),
        _ if found => Some(CellStatus::Met),
        _ if t.skipped().is_some() => Some(CellStatus::Skipped),
        (Expect::Valid, Verdict::Valid) => Some(CellStatus::Met),
        (Expect::Valid, Verdict::Unknown) => Some(CellStatus::Unknown),
        _ => None,
    }
}

/// The matrix's exit code: 1 if any expectation was missed (a false alarm or an
/// undetected bug), else 3 if a run failed, else 2 if any cell is unknown, else 0. A
/// skipped cell does not count either way.
pub fn exit_code(outcomes: &[CellOutcome]) -> u8 {
    let any = |s: CellStatus| outcomes.iter().any(|o| o.status == s);
    let verdict = if any(CellStatus::Missed) {
        Verdict::Invalid
    } else if any(CellStatus::Error) || any(CellStatus::Cancelled) {
        Verdict::Error
    } else if any(CellStatus::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    verdict.exit_code()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_try_takes_the_cells_factors_and_its_own_seed() {
        let base = TestConfig {
            time_limit_ms: 20_000,
            nemesis_interval_ms: 4_000,
            concurrency: 10,
            seed: 2000,
            ..TestConfig::default()
        };
        let redis = crate::matrix::targets_matrix()
            .into_iter()
            .find(|c| c.name == "redis-sentinel-lost-writes-pause_kill")
            .expect("the Redis cell");
        let config = try_config(&redis, &base, 3);
        assert_eq!(config.seed, 2003);
        assert_eq!(config.time_limit_ms, 40_000, "twice test-all's time limit");
        assert_eq!(config.nemesis_interval_ms, 8_000);
        assert_eq!(config.op_timeout_ms, 15_000);
        assert_eq!(config.nodes, 3);
        let plain = crate::matrix::default_matrix().remove(0);
        let config = try_config(&plain, &base, 0);
        assert_eq!(config.time_limit_ms, 20_000);
        assert_eq!(config.nemesis_interval_ms, 4_000);
    }

    use super::*;
    use crate::matrix::cell::cell;
    use faultline_nemeses::FaultKind;
    use faultline_workloads::Workload;

    fn outcome(expect: Expect, status: CellStatus) -> CellOutcome {
        CellOutcome {
            cell: cell(Workload::Register, &[FaultKind::Kill], None, expect),
            status,
            tries: Vec::new(),
            time_to_detection_ms: None,
            skipped: None,
            rate: None,
        }
    }

    #[test]
    fn a_miss_fails_the_matrix_before_anything_else() {
        use CellStatus::*;
        assert_eq!(exit_code(&[outcome(Expect::Valid, Met)]), 0);
        assert_eq!(exit_code(&[outcome(Expect::Valid, Unknown)]), 2);
        assert_eq!(
            exit_code(&[
                outcome(Expect::Valid, Error),
                outcome(Expect::Valid, Unknown)
            ]),
            3
        );
        assert_eq!(
            exit_code(&[
                outcome(Expect::Invalid, Missed),
                outcome(Expect::Valid, Error)
            ]),
            1
        );
        // A skipped cell neither passes nor fails the matrix.
        assert_eq!(
            exit_code(&[
                outcome(Expect::Invalid, Skipped),
                outcome(Expect::Valid, Met)
            ]),
            0
        );
    }

    fn a_try(verdict: Verdict, fencing_violation: bool, skipped: &[(&str, &str)]) -> Try {
        Try {
            seed: 1,
            verdict,
            fencing_violation,
            run_dir: PathBuf::from("results/x/1"),
            total_ms: 0,
            ops: 0,
            cancelled: false,
            faults_skipped: skipped
                .iter()
                .map(|(k, w)| (k.to_string(), w.to_string()))
                .collect(),
            error: None,
            detection: None,
        }
    }

    #[test]
    fn a_run_whose_fault_was_skipped_is_no_evidence() {
        let netem = [("figure8", "the kernel lacks sch_netem")];
        let t = a_try(Verdict::Valid, false, &netem);
        // Neither ok for a correct cell nor a miss for a bug cell.
        assert_eq!(
            status_after(Expect::Valid, &t, false),
            Some(CellStatus::Skipped)
        );
        assert_eq!(
            status_after(Expect::Invalid, &t, false),
            Some(CellStatus::Skipped)
        );
        // A violation is one all the same.
        let bad = a_try(Verdict::Invalid, false, &netem);
        assert_eq!(
            status_after(Expect::Valid, &bad, false),
            Some(CellStatus::Missed)
        );
        assert_eq!(
            status_after(Expect::Invalid, &bad, true),
            Some(CellStatus::Met)
        );
        // Nothing skipped: a valid bug run means try again.
        let plain = a_try(Verdict::Valid, false, &[]);
        assert_eq!(status_after(Expect::Invalid, &plain, false), None);
        assert_eq!(
            status_after(Expect::Valid, &plain, false),
            Some(CellStatus::Met)
        );
        let row = CellOutcome {
            cell: cell(
                Workload::Register,
                &[FaultKind::Figure8],
                None,
                Expect::Valid,
            ),
            status: CellStatus::Skipped,
            tries: vec![t.clone()],
            time_to_detection_ms: None,
            skipped: t.skipped(),
            rate: None,
        }
        .row();
        assert!(
            row.contains("skipped") && row.contains("(figure8: the kernel lacks sch_netem)"),
            "{row}"
        );
        assert!(!row.contains(" ok ") && !row.contains("MISSED"), "{row}");
    }

    #[test]
    fn detection_needs_the_expected_kind_of_failure() {
        let t = |verdict, fencing_violation| a_try(verdict, fencing_violation, &[]);
        assert!(detected(Expect::Invalid, &t(Verdict::Invalid, false)));
        assert!(!detected(Expect::Invalid, &t(Verdict::Unknown, false)));
        // token-reuse must be caught by the fencing check, not by chance elsewhere.
        assert!(!detected(
            Expect::FencingViolation,
            &t(Verdict::Invalid, false)
        ));
        assert!(detected(
            Expect::FencingViolation,
            &t(Verdict::Invalid, true)
        ));
        assert!(!detected(Expect::Valid, &t(Verdict::Valid, false)));
    }

    /// A detecting bug run: found online at `at_ms` (or at the end), under `faults`
    /// (`None`: unattributed).
    fn found(at_ms: Option<u64>, faults: Option<&[&str]>) -> Try {
        let mut t = a_try(Verdict::Invalid, false, &[]);
        t.detection = Some(Detection {
            time_to_detect_ms: at_ms,
            active_faults: faults.map(|f| f.iter().map(ToString::to_string).collect()),
            ..Detection::default()
        });
        t
    }

    fn plain(verdict: Verdict) -> Try {
        a_try(verdict, false, &[])
    }

    #[test]
    fn a_bug_cell_needs_k_of_n_detections() {
        let runs = [
            found(Some(4_000), Some(&["partition"])),
            found(Some(9_000), Some(&["partition"])),
            found(None, Some(&[])),
            plain(Verdict::Valid),
        ];
        let (status, rate) = judge_seeds(Expect::Invalid, &runs, 4, 3);
        assert_eq!(status, CellStatus::Met);
        assert_eq!((rate.k, rate.n, rate.required), (3, 4, 3));
        let (lo, hi) = (rate.low.unwrap(), rate.high.unwrap());
        assert!(
            lo > 0.30 && lo < 0.31 && hi > 0.95 && hi < 0.96,
            "[{lo}, {hi}]"
        );
        // Two online times; the third run only the final check found.
        assert_eq!(rate.detect_median_ms, Some(4_000));
        assert_eq!(rate.detect_p90_ms, Some(9_000));
        assert_eq!(rate.found_at_end, 1);
        assert_eq!(rate.tally(), "partition 2, none 1");
        // The default requirement, all four, is missed.
        let (status, rate) = judge_seeds(Expect::Invalid, &runs, 4, 4);
        assert_eq!(status, CellStatus::Missed);
        assert_eq!(rate.fraction(), "3/4");
    }

    #[test]
    fn skipped_runs_are_left_out_of_the_rate() {
        let netem = [("netem", "the kernel lacks sch_netem")];
        let runs = [
            found(Some(1_000), Some(&["partition"])),
            found(Some(2_000), None),
            a_try(Verdict::Valid, false, &netem),
            // Detected, but under a configuration the cell did not ask for: no evidence.
            a_try(Verdict::Invalid, false, &netem),
        ];
        let (status, rate) = judge_seeds(Expect::Invalid, &runs, 4, 4);
        // Four required of four seeds scales to two of the two that count.
        assert_eq!(status, CellStatus::Met);
        assert_eq!((rate.k, rate.n, rate.required), (2, 2, 2));
        assert_eq!(rate.skipped_runs, 2);
        assert_eq!(rate.tally(), "partition 1, unattributed 1");
        // Every run skipped: skipped, without an interval.
        let all = [
            a_try(Verdict::Valid, false, &netem),
            a_try(Verdict::Valid, false, &netem),
        ];
        let (status, rate) = judge_seeds(Expect::Invalid, &all, 2, 2);
        assert_eq!(status, CellStatus::Skipped);
        assert_eq!((rate.n, rate.low, rate.interval().as_str()), (0, None, "-"));
        let (status, _) = judge_seeds(Expect::Valid, &all, 2, 2);
        assert_eq!(status, CellStatus::Skipped);
    }

    #[test]
    fn a_single_false_alarm_fails_a_correct_cell() {
        let mut runs: Vec<Try> = (0..9).map(|_| plain(Verdict::Valid)).collect();
        let (status, rate) = judge_seeds(Expect::Valid, &runs, 10, 10);
        assert_eq!(status, CellStatus::Met);
        assert_eq!(rate.fraction(), "9/9");
        runs.push(plain(Verdict::Invalid));
        let (status, rate) = judge_seeds(Expect::Valid, &runs, 10, 10);
        assert_eq!(status, CellStatus::Missed);
        assert_eq!(rate.fraction(), "9/10");
        // Whatever --require says: it is about bugs.
        let (status, _) = judge_seeds(Expect::Valid, &runs, 10, 1);
        assert_eq!(status, CellStatus::Missed);
        // A false alarm under a skipped fault is one all the same.
        let netem = [("netem", "the kernel lacks sch_netem")];
        let runs = [
            plain(Verdict::Valid),
            a_try(Verdict::Invalid, false, &netem),
        ];
        assert_eq!(
            judge_seeds(Expect::Valid, &runs, 2, 2).0,
            CellStatus::Missed
        );
    }

    #[test]
    fn unknown_and_failed_runs_keep_the_precedence_of_tries() {
        let mut failed = plain(Verdict::Error);
        failed.error = Some("cluster did not start".into());
        // One run short, and an unknown one could have made it up: unknown, not missed.
        let runs = [found(Some(1), Some(&[])), plain(Verdict::Unknown)];
        let (status, rate) = judge_seeds(Expect::Invalid, &runs, 2, 2);
        assert_eq!(status, CellStatus::Unknown);
        assert_eq!((rate.k, rate.n, rate.unknown_runs), (1, 1, 1));
        // A failed run makes the cell an error, even with the detections required...
        let runs = [found(Some(1), Some(&[])), failed.clone()];
        let (status, rate) = judge_seeds(Expect::Invalid, &runs, 2, 1);
        assert_eq!(status, CellStatus::Error);
        assert_eq!((rate.n, rate.error_runs), (1, 1));
        // ...unless the requirement was out of reach whatever it would have shown.
        let runs = [plain(Verdict::Valid), plain(Verdict::Valid), failed.clone()];
        assert_eq!(
            judge_seeds(Expect::Invalid, &runs, 3, 3).0,
            CellStatus::Missed
        );
        // Correct cells: failed before unknown before met.
        let runs = [plain(Verdict::Valid), plain(Verdict::Unknown)];
        assert_eq!(
            judge_seeds(Expect::Valid, &runs, 2, 2).0,
            CellStatus::Unknown
        );
        let runs = [plain(Verdict::Unknown), failed];
        assert_eq!(judge_seeds(Expect::Valid, &runs, 2, 2).0, CellStatus::Error);
        // Ctrl-C first of all.
        let mut stopped = found(Some(1), Some(&[]));
        stopped.cancelled = true;
        assert_eq!(
            judge_seeds(Expect::Invalid, &[stopped], 3, 1).0,
            CellStatus::Cancelled
        );
    }

    #[test]
    fn the_rate_row_shows_rate_interval_times_and_faults() {
        let runs = [
            found(Some(4_000), Some(&["partition"])),
            found(Some(6_500), Some(&["kill", "partition"])),
        ];
        let (status, rate) = judge_seeds(Expect::Invalid, &runs, 2, 2);
        let row = CellOutcome {
            cell: cell(
                Workload::Register,
                &[FaultKind::Partition],
                Some("stale-read"),
                Expect::Invalid,
            ),
            status,
            tries: runs.to_vec(),
            time_to_detection_ms: None,
            skipped: None,
            rate: Some(rate),
        }
        .rate_row();
        for part in [
            "stale-read-register-partition",
            "found",
            "2/2",
            "[0.342, 1.000]",
            "4.0",
            "6.5",
            "kill+partition 1, partition 1",
        ] {
            assert!(row.contains(part), "{part:?} not in {row}");
        }
        let header = rate_header();
        assert!(
            header.starts_with("cell ") && header.contains("95% interval"),
            "{header}"
        );
    }
}
