//! How the matrix's cells ended: each try (one run), each cell's status, the table's rows,
//! and the matrix's exit code.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::cell::{Cell, Expect};
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
        let found = self.cell.expect != Expect::Valid;
        format!(
            "{:<44} {:<17} {:<9} {:>5} {:>9}  {}",
            self.cell.name,
            self.cell.expect.name(),
            match self.status {
                CellStatus::Met if found => "found",
                CellStatus::Met => "ok",
                CellStatus::Missed if found => "MISSED",
                CellStatus::Missed => "FALSE-ALARM",
                CellStatus::Unknown => "unknown",
                CellStatus::Error => "ERROR",
                CellStatus::Cancelled => "cancelled",
                CellStatus::Skipped => "skipped",
            },
            self.tries.len(),
            self.time_to_detection_ms
                .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            where_,
        )
    }
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
        let mut config = base.clone();
        config.name = cell.name.clone();
        config.workload = cell.workload;
        config.nemesis = cell.nemesis.clone();
        config.shapes = cell.shapes.clone();
        config.concurrency = base.concurrency.saturating_mul(cell.clients_factor.max(1));
        config.bugs = cell.bug.iter().cloned().collect();
        config.seed = base.seed.wrapping_add(u64::from(k));
        let scaled = base.nemesis_interval_ms as f64 * cell.interval_factor;
        config.nemesis_interval_ms = (scaled as u64).max(base.nemesis_interval_ms.min(1_000));
        let t = match run_test(config).await {
            Ok(outcome) => {
                println!("  {}  {}", cell.name, outcome.summary());
                to_try(&outcome)
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
            },
        };
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
    }
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
}
