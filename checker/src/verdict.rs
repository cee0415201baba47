//! What a linearizability check concludes: the verdict, the counterexample that explains
//! an `invalid` one, and statistics about the search. All of it serialises to stable
//! snake_case JSON; the counterexample also renders for a terminal.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::Op;

/// The result of `linear::check`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub stats: SearchStats,
}

/// `valid`, `invalid` (with why) or `unknown` (a limit stopped the search; which one).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
// One verdict per check: boxing the counterexample would only make matching on it
// clumsier for callers.
#[allow(clippy::large_enum_variant)]
pub enum Verdict {
    Valid,
    Invalid(Counterexample),
    /// `limit` is `"timeout 60s"`, `"max-memory 4GiB"` or `"cancelled"`.
    Unknown {
        limit: String,
    },
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid(_) => "invalid",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }

    pub fn is_invalid(&self) -> bool {
        matches!(self, Verdict::Invalid(_))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Verdict::Unknown { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid"),
            Verdict::Invalid(cex) => write!(f, "invalid\n{cex}"),
            Verdict::Unknown { limit } => write!(f, "unknown: stopped by {limit}"),
        }
    }
}

/// Why a history is not linearizable: the deepest point the search reached in the
/// partition at fault (like Porcupine's longest partial linearization).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Counterexample {
    /// The key of the partition at fault; `None` for ops without a key.
    pub key: Option<String>,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<Op>,
    /// The model states possible after that prefix (over every way the search reached
    /// that depth; at most `MAX_STATES`), described by the model.
    pub states: Vec<String>,
    /// The op that completed although it could not take effect after `prefix`.
    pub failed: Op,
    /// The other ops that could have come next, none of which can either (they were
    /// pending when `failed` completed).
    pub pending: Vec<Op>,
}

impl Counterexample {
    /// How many distinct states a counterexample lists at most.
    pub const MAX_STATES: usize = 16;
    /// How many pending ops a counterexample lists at most.
    pub const MAX_PENDING: usize = 32;
    /// How many prefix ops `Display` shows (the last ones).
    const SHOWN_PREFIX: usize = 20;
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => writeln!(f, "key {k:?} is not linearizable")?,
            None => writeln!(f, "the history is not linearizable")?,
        }
        let n = self.prefix.len();
        writeln!(f, "  longest linearizable prefix: {n} ops")?;
        if n > Self::SHOWN_PREFIX {
            writeln!(f, "    ... {} earlier ops", n - Self::SHOWN_PREFIX)?;
        }
        for op in &self.prefix[n.saturating_sub(Self::SHOWN_PREFIX)..] {
            writeln!(f, "    {op}  (op {})", op.id)?;
        }
        writeln!(f, "  possible states after it: {}", self.states.join(", "))?;
        writeln!(
            f,
            "  cannot take effect next: {}  (op {}, completed at event {})",
            self.failed,
            self.failed.id,
            self.failed
                .complete
                .map_or_else(|| "-".to_string(), |c| c.to_string())
        )?;
        if !self.pending.is_empty() {
            writeln!(f, "  nor can any op pending then:")?;
            for op in &self.pending {
                writeln!(f, "    {op}  (op {})", op.id)?;
            }
        }
        Ok(())
    }
}

/// What the search did, for `--json` and the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchStats {
    /// Number of partitions (distinct keys) checked.
    pub partitions: usize,
    /// Ops paired from the history.
    pub ops: usize,
    /// Ops the search had to place (after dropping `fail` ops, unknown reads, and
    /// provably unneeded unknown writes).
    pub ops_searched: usize,
    /// Distinct (linearized set, state) pairs memoised, over all partitions.
    pub states_explored: u64,
    /// Peak estimate of the memo's memory, summed over partitions running at once.
    pub peak_memory_bytes: u64,
    /// Segments searched, over all partitions: the search cuts a long partition and
    /// forgets what is behind each cut (see `linear::search`). Absent when zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub segments: u64,
    /// Most configurations (model state plus which open ops were placed) held at one cut.
    #[serde(skip_serializing_if = "is_zero")]
    pub peak_configs: u64,
    /// Most ops open (invoked, not completed, or `info`) at one cut: the widest window
    /// of concurrency the search carried across a cut.
    #[serde(skip_serializing_if = "is_zero")]
    pub widest_window: u64,
    /// Memo entries forgotten because they were far behind the search (to stay within
    /// the memo's budget). Absent when zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub memo_forgotten: u64,
    pub elapsed_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
