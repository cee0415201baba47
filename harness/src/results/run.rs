//! [`RunResults`]: a run's `results.json`: how the run went ([`Exercised`]) and what the
//! checks concluded ([`Judgement`]), or why it failed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use faultline_checker::fencing::FencingReport;
use faultline_checker::stats::Stats;
use faultline_checker::{CheckResult, ModelKind};
use faultline_workloads::CountsSnapshot;
use serde::{Deserialize, Serialize};

use super::{Verdict, SCHEMA_VERSION};

/// What one `faultline test` run wrote to `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// The schema this was written in ([`SCHEMA_VERSION`]); files from before versions
    /// were numbered read as 1.
    #[serde(default = "super::unversioned")]
    pub schema_version: u32,
    pub verdict: Verdict,
    pub test: String,
    pub run_dir: PathBuf,
    pub seed: u64,
    /// Why the run failed, when `verdict` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercised: Option<Exercised>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judgement: Option<Judgement>,
    /// Why the cluster could not be torn down (Docker stopped answering): what the run
    /// started is left, and the next run removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_error: Option<String>,
    pub total_ms: u64,
}

impl RunResults {
    /// A run that failed before it could be judged.
    pub fn failed(test: &str, run_dir: PathBuf, seed: u64, error: String) -> RunResults {
        RunResults {
            schema_version: SCHEMA_VERSION,
            verdict: Verdict::Error,
            test: test.to_string(),
            run_dir,
            seed,
            error: Some(error),
            exercised: None,
            judgement: None,
            teardown_error: None,
            total_ms: 0,
        }
    }

    /// The run's exit code: its verdict's, except that a run stopped early (Ctrl-C) or one
    /// whose cluster could not be torn down is no pass: it exits 3 unless what it recorded
    /// already shows a violation (1).
    pub fn exit_code(&self) -> u8 {
        let cancelled = self.exercised.as_ref().is_some_and(|x| x.cancelled);
        let spoiled = cancelled || self.teardown_error.is_some();
        if spoiled && self.verdict != Verdict::Invalid {
            Verdict::Error.exit_code()
        } else {
            self.verdict.exit_code()
        }
    }

    /// The verdict line: `valid  results/raftkv-register/20261123T112233  seed 42  ...`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}  {}  seed {}",
            self.verdict.name(),
            self.run_dir.display(),
            self.seed
        );
        if let Some(x) = &self.exercised {
            s.push_str(&format!(
                "  ops {} (ok {}, fail {}, info {})",
                x.counts.invoke, x.counts.ok, x.counts.fail, x.counts.info
            ));
            if x.cancelled {
                s.push_str("  [cancelled]");
            }
            if !x.faults_skipped.is_empty() {
                let kinds: Vec<&str> = x.faults_skipped.keys().map(String::as_str).collect();
                s.push_str(&format!("  [faults skipped: {}]", kinds.join(", ")));
            }
        }
        if let Some(j) = &self.judgement {
            s.push_str(&format!("  {}", j.reason()));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("  error: {e}"));
        }
        if let Some(e) = &self.teardown_error {
            s.push_str(&format!("  teardown failed: {e}"));
        }
        s
    }

    /// Whether the fencing check found a violation.
    pub fn fencing_violation(&self) -> bool {
        self.judgement
            .as_ref()
            .and_then(|j| j.fencing.as_ref())
            .is_some_and(|f| !f.valid)
    }
}

/// What the active part of the run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Exercised {
    pub counts: CountsSnapshot,
    pub events_written: u64,
    pub ops_issued: u64,
    pub final_reads_ok: usize,
    pub final_reads_failed: Vec<String>,
    pub faults_started: BTreeMap<String, u64>,
    /// Fault kinds the cluster could not inject at all, with why: the run is no evidence
    /// about them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub faults_skipped: BTreeMap<String, String>,
    pub fault_failures: u64,
    pub heal_errors: Vec<String>,
    pub restarted_at_heal: Vec<String>,
    pub log_errors: Vec<String>,
    /// Ctrl-C (or the caller) stopped the run early; the final reads were skipped.
    pub cancelled: bool,
    pub workload_ms: u64,
    /// What the online check (the history checked while the test ran) found; `None` when
    /// it was off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineSummary>,
}

/// The online check of a run: how often the history was checked while the test ran, and
/// the violation it found, if any. The run's verdict is still the check of the whole
/// history; this says when a violation first showed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OnlineSummary {
    /// Checks of the history recorded so far.
    pub checks: u64,
    /// Events in the longest prefix checked.
    pub events_checked: u64,
    /// Time spent checking, over all checks.
    pub check_ms: u64,
    /// Checks that hit a limit (they decide nothing; the final check does).
    pub unknown_checks: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<OnlineViolation>,
    /// `--stop-on-violation` ended the clients early.
    pub stopped_run: bool,
    /// Why the online check stopped before the end of the run (an unreadable line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A violation the online check found while the test ran. Times are milliseconds since
/// the run started, on the history's clock (`time_ns`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OnlineViolation {
    /// When the check that found it finished.
    pub found_at_ms: u64,
    /// Events in the prefix that check read.
    pub events: u64,
    /// The op that cannot be linearized, as the counterexample names it.
    pub op: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When that op completed; `found_at_ms` minus this is the detection latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_completed_at_ms: Option<u64>,
    /// How long the check that found it ran.
    pub check_ms: u64,
}

impl OnlineViolation {
    /// From the op's completion to the violation being known.
    pub fn latency_ms(&self) -> Option<u64> {
        self.op_completed_at_ms
            .map(|t| self.found_at_ms.saturating_sub(t))
    }
}

/// Everything the checks concluded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The model the linearizability check used.
    pub model: ModelKind,
    pub linearizable: CheckResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing: Option<FencingReport>,
    pub stats: Stats,
}

impl Judgement {
    /// One line for a terminal: why the verdict is what it is.
    pub fn reason(&self) -> String {
        let mut parts = vec![format!(
            "linearizable ({}): {}",
            self.model,
            self.linearizable.verdict.name()
        )];
        if let faultline_checker::Verdict::Unknown { limit } = &self.linearizable.verdict {
            parts.push(format!("stopped by {limit}"));
        }
        if let Some(f) = &self.fencing {
            parts.push(if f.valid {
                "fencing: valid".to_string()
            } else {
                format!("fencing: invalid, {} violation(s)", f.violations_total)
            });
        }
        parts.join("; ")
    }
}
