//! [`CheckResults`]: what `faultline check` concluded about one history file; one JSON
//! object per file with `--json`, and what its report and JUnit output are made from.

use std::path::PathBuf;

use faultline_checker::fencing::FencingReport;
use faultline_checker::stats::Stats;
use faultline_checker::CheckResult;
use serde::{Deserialize, Serialize};

use super::{Verdict, SCHEMA_VERSION};

/// One checked history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResults {
    #[serde(default = "super::unversioned")]
    pub schema_version: u32,
    /// The history file.
    pub history: PathBuf,
    /// The linearizability model, or `fencing`.
    pub model: String,
    pub verdict: Verdict,
    /// Why the file could not be checked, when `verdict` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The format the file was read as (`jsonl`, `edn`, `jepsen-log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// How the history's operations were read (`knossos`, `faultline`, `porcupine`, or
    /// one with a flag's rule added), when a linearizability model checked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
    /// Events read.
    #[serde(default)]
    pub events: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearizable: Option<CheckResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing: Option<FencingReport>,
    /// Latency and throughput per operation and outcome (`--stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_stats: Option<Stats>,
    /// The last line, cut off mid-write and left out (a run that died), 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_off_line: Option<usize>,
}

impl CheckResults {
    /// A history that could not be checked.
    pub fn failed(history: PathBuf, model: String, error: String) -> CheckResults {
        CheckResults {
            schema_version: SCHEMA_VERSION,
            history,
            model,
            verdict: Verdict::Error,
            error: Some(error),
            format: None,
            reading: None,
            events: 0,
            linearizable: None,
            fencing: None,
            op_stats: None,
            cut_off_line: None,
        }
    }
}
