//! The results schema, in one place: what `faultline test` writes to `results.json`
//! ([`RunResults`]), what `faultline check` says about each history ([`CheckResults`]), the
//! [`Verdict`] both conclude with, and its one mapping to exit codes. Serialised and read
//! back with serde, so the report, JUnit output, `serve` and `test-all` read the same types
//! the runs wrote. Every document carries a `schema_version`: a file from a newer faultline
//! is refused with a clear error rather than misread.

mod batch;
mod check;
mod run;
mod verdict;

use std::path::{Path, PathBuf};

pub use batch::{BatchResults, BatchRun};
pub use check::CheckResults;
pub use run::{Exercised, Judgement, OnlineSummary, OnlineViolation, RunResults};
pub use verdict::Verdict;

use faultline_checker::fencing::FencingReport;
use faultline_checker::CheckResult;

/// The schema this build writes. 1: `results.json` before versions were numbered (the same
/// fields as 2, read as 2); 2: `schema_version` added, and `check --json` nests each check
/// (`linearizable`, `fencing`) instead of spreading the linearizability result at the top.
pub const SCHEMA_VERSION: u32 = 2;

/// The version of a document that has none.
pub(crate) fn unversioned() -> u32 {
    1
}

/// A results file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a faultline results file: {source}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{}: written with results schema {found}, and this faultline reads schemas 1 to \
         {SCHEMA_VERSION}; use a newer faultline",
        path.display()
    )]
    UnknownVersion { path: PathBuf, found: u64 },
}

/// Reads a run's `results.json`.
pub fn read_run(path: &Path) -> Result<RunResults, ResultsError> {
    read(path)
}

/// Reads a batch's `batch.json`.
pub fn read_batch(path: &Path) -> Result<BatchResults, ResultsError> {
    read(path)
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ResultsError> {
    let bytes = std::fs::read(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses `results.json`'s bytes (`path` names them in errors).
pub fn parse_run(path: &Path, bytes: &[u8]) -> Result<RunResults, ResultsError> {
    parse(path, bytes)
}

/// Parses a results document of any kind, its schema version checked first.
fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, ResultsError> {
    let malformed = |source| ResultsError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
    // The version first: a newer schema may have changed any field.
    let found = value
        .get("schema_version")
        .map_or(Some(u64::from(unversioned())), serde_json::Value::as_u64);
    match found {
        Some(v) if (1..=u64::from(SCHEMA_VERSION)).contains(&v) => {}
        other => {
            return Err(ResultsError::UnknownVersion {
                path: path.to_path_buf(),
                found: other.unwrap_or(0),
            })
        }
    }
    serde_json::from_value(value).map_err(malformed)
}

/// The results a report or JUnit output is made from: a run's, or one checked history's.
#[derive(Clone, Debug)]
// Made one at a time, for one report or one JUnit suite: boxing would only make matching
// clumsier.
#[allow(clippy::large_enum_variant)]
pub enum Results {
    Run(RunResults),
    Check(CheckResults),
}

impl Results {
    pub fn verdict(&self) -> Verdict {
        match self {
            Results::Run(r) => r.verdict,
            Results::Check(c) => c.verdict,
        }
    }

    /// Why the run or the check failed, for `error`.
    pub fn error(&self) -> Option<&str> {
        match self {
            Results::Run(r) => r.error.as_deref(),
            Results::Check(c) => c.error.as_deref(),
        }
    }

    /// The linearizability model's name, when a model checked the history.
    pub fn model(&self) -> Option<String> {
        match self {
            Results::Run(r) => r.judgement.as_ref().map(|j| j.model.to_string()),
            Results::Check(c) => c.linearizable.as_ref().map(|_| c.model.clone()),
        }
    }

    pub fn linearizable(&self) -> Option<&CheckResult> {
        match self {
            Results::Run(r) => r.judgement.as_ref().map(|j| &j.linearizable),
            Results::Check(c) => c.linearizable.as_ref(),
        }
    }

    pub fn fencing(&self) -> Option<&FencingReport> {
        match self {
            Results::Run(r) => r.judgement.as_ref().and_then(|j| j.fencing.as_ref()),
            Results::Check(c) => c.fencing.as_ref(),
        }
    }

    pub fn exercised(&self) -> Option<&Exercised> {
        match self {
            Results::Run(r) => r.exercised.as_ref(),
            Results::Check(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `results.json` as builds before schema versions wrote it (a run judged invalid,
    /// abridged to one op per list).
    const UNVERSIONED: &str = r#"{
      "verdict": "invalid", "test": "raftkv-register",
      "run_dir": "results/raftkv-register/20261130T101010", "seed": 7,
      "exercised": {"counts": {"invoke": 2, "ok": 2, "fail": 0, "info": 0, "nemesis": 1},
        "events_written": 5, "ops_issued": 2, "final_reads_ok": 1, "final_reads_failed": [],
        "faults_started": {"partition": 1}, "fault_failures": 0, "heal_errors": [],
        "restarted_at_heal": [], "log_errors": [], "cancelled": false, "workload_ms": 1000},
      "judgement": {"verdict": "invalid", "model": "cas-register",
        "linearizable": {"verdict": "invalid", "key": "r0",
          "prefix": [{"id": 0, "process": 0, "f": "write", "key": "r0", "value": 1,
            "output": null, "outcome": "ok", "invoke": 0, "complete": 1}],
          "states": ["1"],
          "failed": {"id": 1, "process": 1, "f": "read", "key": "r0", "value": null,
            "output": 2, "outcome": "ok", "invoke": 2, "complete": 3},
          "pending": [],
          "stats": {"partitions": 1, "ops": 2, "ops_searched": 2, "states_explored": 3,
            "peak_memory_bytes": 64, "elapsed_ms": 0}},
        "stats": {"ops": 2, "duration_ns": 3000, "groups": [], "bucket_ns": 1000000000,
          "timeline": []}},
      "total_ms": 2000
    }"#;

    #[test]
    fn an_unversioned_results_file_reads_as_schema_1() {
        let r = parse_run(Path::new("old/results.json"), UNVERSIONED.as_bytes()).unwrap();
        assert_eq!(r.schema_version, 1);
        assert_eq!(r.verdict, Verdict::Invalid);
        let j = r.judgement.as_ref().unwrap();
        assert!(j.linearizable.verdict.is_invalid());
        assert_eq!(r.exercised.as_ref().unwrap().faults_started["partition"], 1);
    }

    #[test]
    fn results_round_trip_and_newer_schemas_are_refused() {
        let mut r = parse_run(Path::new("r.json"), UNVERSIONED.as_bytes()).unwrap();
        r.schema_version = SCHEMA_VERSION;
        let text = serde_json::to_string(&r).unwrap();
        let back = parse_run(Path::new("r.json"), text.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);

        let mut newer: serde_json::Value = serde_json::from_str(&text).unwrap();
        newer["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
        let e = parse_run(Path::new("r.json"), newer.to_string().as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("r.json") && e.to_string().contains("use a newer faultline"),
            "{e}"
        );
        let e = parse_run(Path::new("r.json"), b"{\"verdict\": 3}").unwrap_err();
        assert!(
            e.to_string().contains("not a faultline results file"),
            "{e}"
        );
    }
}
