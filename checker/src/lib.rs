//! faultline-checker: reads histories of concurrent operations (faultline JSONL, Jepsen
//! EDN and Jepsen text logs) and decides whether they are linearizable with respect to a
//! model, and whether a lock service's fencing tokens were honoured. Pure and
//! deterministic: no I/O beyond reading the history, no async runtime.

pub mod error;
pub mod history;

pub use error::{HistoryError, Location};
pub use history::{Event, EventType, History, Op, Outcome, PairedHistory, Pairer, Process, Value};
pub mod format;
pub mod gen;
pub mod linear;
pub mod model;
pub mod reading;
pub mod verdict;

pub use linear::{check, check_paired, check_with, Forget, Limits, Progress};
pub use model::{Model, ModelKind, ModelSpec};
pub use reading::Reading;
pub use verdict::{CheckResult, Counterexample, SearchStats, Verdict};
pub mod fencing;
pub mod stats;
