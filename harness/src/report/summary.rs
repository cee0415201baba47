//! What the report and JUnit output say about checks, in words: a counterexample's
//! headline, an `unknown` result's limit, and the fencing violations. Made from the typed
//! results (`crate::results`), the same for a run and for a checked history.

use faultline_checker::fencing::FencingReport;
use faultline_checker::{CheckResult, Counterexample, Verdict};

/// One line: which key, which op.
pub fn headline(cex: &Counterexample) -> String {
    let key = match &cex.key {
        Some(k) => format!("key {k:?} is not linearizable"),
        None => "the history is not linearizable".to_string(),
    };
    format!(
        "{key}: op {} ({}) cannot take effect after the longest linearizable prefix ({} ops); possible states then: {}",
        cex.failed.id,
        cex.failed,
        cex.prefix.len(),
        cex.states.join(", ")
    )
}

/// The counterexample of an `invalid` linearizability result.
pub fn counterexample(linear: &CheckResult) -> Option<&Counterexample> {
    match &linear.verdict {
        Verdict::Invalid(cex) => Some(cex),
        _ => None,
    }
}

/// The limit that stopped an `unknown` result.
pub fn unknown_limit(linear: &CheckResult) -> Option<&str> {
    match &linear.verdict {
        Verdict::Unknown { limit } => Some(limit),
        _ => None,
    }
}

/// The fencing result's violations, one line each.
pub fn fencing_violations(fencing: &FencingReport) -> Vec<String> {
    fencing.violations.iter().map(ToString::to_string).collect()
}
