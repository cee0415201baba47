//! [`BatchResults`]: what `faultline test --test-count N` wrote to `batch.json`: one row per
//! run (its seed, verdict, size, faults and check time, and its folder), and why the batch
//! stopped early when it did.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{RunResults, Verdict};

/// A batch of runs of one test configuration, seeds `first_seed` onwards.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResults {
    #[serde(default = "super::unversioned")]
    pub schema_version: u32,
    pub test: String,
    pub first_seed: u64,
    /// Runs asked for (`--test-count`).
    pub requested: u32,
    /// Whether the batch went on past an `invalid` run (`--keep-going`).
    pub keep_going: bool,
    /// Why fewer runs than requested were made, when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub runs: Vec<BatchRun>,
    pub total_ms: u64,
}

/// One run of a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchRun {
    pub seed: u64,
    pub verdict: Verdict,
    /// The run's results folder.
    pub run_dir: PathBuf,
    /// Operations invoked.
    pub ops: u64,
    /// Faults started, all kinds together.
    pub faults: u64,
    /// Fault kinds that could not be injected: the run is no evidence about them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults_skipped: Vec<String>,
    /// Time the linearizability check took.
    pub check_ms: u64,
    pub total_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BatchRun {
    pub fn of(r: &RunResults) -> BatchRun {
        let x = r.exercised.as_ref();
        BatchRun {
            seed: r.seed,
            verdict: r.verdict,
            run_dir: r.run_dir.clone(),
            ops: x.map_or(0, |x| x.counts.invoke),
            faults: x.map_or(0, |x| x.faults_started.values().sum()),
            faults_skipped: x
                .map(|x| x.faults_skipped.keys().cloned().collect())
                .unwrap_or_default(),
            check_ms: r
                .judgement
                .as_ref()
                .map_or(0, |j| j.linearizable.stats.elapsed_ms),
            total_ms: r.total_ms,
            error: r.error.clone(),
        }
    }
}

impl BatchResults {
    /// The batch's verdict: the worst of its runs'.
    pub fn verdict(&self) -> Verdict {
        Verdict::worst(self.runs.iter().map(|r| r.verdict))
    }

    /// How many runs got `v`.
    pub fn count(&self, v: Verdict) -> usize {
        self.runs.iter().filter(|r| r.verdict == v).count()
    }

    /// The table: a header, then one line per run.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>20}  {:<8} {:>7} {:>6} {:>9} {:>8}  {}\n",
            "seed", "verdict", "ops", "faults", "check(ms)", "total(s)", "run"
        );
        for r in &self.runs {
            let mut note = r.run_dir.display().to_string();
            if !r.faults_skipped.is_empty() {
                note.push_str(&format!("  [skipped: {}]", r.faults_skipped.join(", ")));
            }
            if let Some(e) = &r.error {
                note.push_str(&format!("  error: {e}"));
            }
            out.push_str(&format!(
                "{:>20}  {:<8} {:>7} {:>6} {:>9} {:>8.1}  {note}\n",
                r.seed,
                r.verdict.name(),
                r.ops,
                r.faults,
                r.check_ms,
                r.total_ms as f64 / 1000.0
            ));
        }
        out.push_str(&format!(
            "{} runs: {} valid, {} invalid, {} unknown, {} error{}\n",
            self.runs.len(),
            self.count(Verdict::Valid),
            self.count(Verdict::Invalid),
            self.count(Verdict::Unknown),
            self.count(Verdict::Error),
            self.stopped
                .as_ref()
                .map(|s| format!("; stopped: {s}"))
                .unwrap_or_default()
        ));
        out
    }
}
