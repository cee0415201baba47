//! The linearizability check: pairs a history's events into ops, drops the ops that
//! cannot matter (Knossos/Jepsen semantics), splits the rest by key (P-compositionality:
//! a history is linearizable iff each key's sub-history is), and runs the WGL search
//! (`search`) on every partition in parallel. The first invalid partition stops the
//! others; a time or memory limit stops all of them and yields `unknown`, never a guess.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::HistoryError;
use crate::history::{History, Op, Outcome, PairedHistory};
use crate::model::{CasRegister, Kv, Model, ModelKind, ModelSpec, Mutex, Register};
use crate::verdict::{CheckResult, SearchStats, Verdict};

mod memo;
mod search;

use search::Partition;

/// Bounds on a check. Each one hit turns the verdict into `unknown`.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub timeout: Option<Duration>,
    /// Cap on the estimated memory of the search's memo tables, over all partitions
    /// running at once.
    pub max_memory_bytes: Option<u64>,
    /// Set to true (from another thread) to stop the check; gives `unknown: cancelled`.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Counters updated while the check runs, for a progress bar.
    pub progress: Option<Arc<Progress>>,
    /// Timeline entries (invokes and completions) of one partition between the cuts where
    /// the search forgets what is behind it, keeping only the configurations reachable
    /// at each cut; `None` for none (one segment per partition, whose memo is bounded by
    /// forgetting entries far behind the search instead). Any value gives the same
    /// verdict; small ones test the cuts.
    pub segment_entries: Option<usize>,
    /// When the search forgets memo entries far behind it; `None` for the default
    /// (`Forget::DEFAULT`, the budget at most half of `max_memory_bytes`). Any value gives
    /// the same verdict; small ones test forgetting.
    pub forget: Option<Forget>,
}

/// Forgetting memo entries far behind the search: once the memo holds more than
/// `beyond_bytes`, entries whose sets all lie more than about `behind_ops` ops behind the
/// search's position are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forget {
    pub beyond_bytes: u64,
    pub behind_ops: usize,
}

impl Forget {
    /// On a generated 1M-op single register (20 clients, 1% `info` ops), 256 MiB checked
    /// in 73-93 s where 1 GiB took 120 s: a smaller table is quicker to grow and probe, and
    /// the states forgotten were not needed again.
    pub const DEFAULT: Forget = Forget {
        beyond_bytes: 1 << 28,
        behind_ops: 4096,
    };
}

/// Live counters of a running check; poll them from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    pub partitions_total: AtomicU64,
    pub partitions_done: AtomicU64,
    pub states_explored: AtomicU64,
}

/// State shared by the partitions' searches: limits, and the flags that stop them.
pub(crate) struct Shared<'a> {
    limits: &'a Limits,
    started: Instant,
    /// Set once the result is decided (a partition is invalid) or a limit was hit.
    stop: AtomicBool,
    /// Which limit stopped the search, first one wins.
    limit_hit: std::sync::Mutex<Option<String>>,
    memory_bytes: AtomicU64,
    peak_memory_bytes: AtomicU64,
    states: AtomicU64,
    segments: AtomicU64,
    peak_configs: AtomicU64,
    widest_window: AtomicU64,
    forgotten: AtomicU64,
}

impl Shared<'_> {
    /// Publishes this partition's memo size change and says whether to stop.
    pub(crate) fn should_stop(&self, reported: &mut u64, memo_bytes: u64) -> bool {
        let total = self.note_memory(reported, memo_bytes);
        if self.stop.load(Ordering::Relaxed) {
            return true;
        }
        if let Some(cancel) = &self.limits.cancel {
            if cancel.load(Ordering::Relaxed) {
                self.hit("cancelled".to_string());
                return true;
            }
        }
        if let Some(timeout) = self.limits.timeout {
            if self.started.elapsed() >= timeout {
                self.hit(format!("timeout {}", format_duration(timeout)));
                return true;
            }
        }
        if let Some(max) = self.limits.max_memory_bytes {
            if total > max {
                self.hit(format!("max-memory {}", format_bytes(max)));
                return true;
            }
        }
        false
    }

    /// Publishes this partition's memo size change (it last reported `reported` bytes,
    /// now `memo_bytes`), keeps the peak, and returns the total over all partitions.
    pub(crate) fn note_memory(&self, reported: &mut u64, memo_bytes: u64) -> u64 {
        let total = if memo_bytes >= *reported {
            self.memory_bytes
                .fetch_add(memo_bytes - *reported, Ordering::Relaxed)
                + (memo_bytes - *reported)
        } else {
            self.memory_bytes
                .fetch_sub(*reported - memo_bytes, Ordering::Relaxed)
                - (*reported - memo_bytes)
        };
        *reported = memo_bytes;
        self.peak_memory_bytes.fetch_max(total, Ordering::Relaxed);
        total
    }

    pub(crate) fn release_memory(&self, reported: u64) {
        self.memory_bytes.fetch_sub(reported, Ordering::Relaxed);
    }

    pub(crate) fn max_memory_bytes(&self) -> Option<u64> {
        self.limits.max_memory_bytes
    }

    /// When to forget memo entries (see `Limits::forget`).
    pub(crate) fn forget(&self) -> Forget {
        self.limits.forget.unwrap_or(Forget {
            beyond_bytes: self
                .max_memory_bytes()
                .map_or(Forget::DEFAULT.beyond_bytes, |m| {
                    (m / 2).min(Forget::DEFAULT.beyond_bytes)
                }),
            ..Forget::DEFAULT
        })
    }

    pub(crate) fn add_forgotten(&self, n: u64) {
        self.forgotten.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn segment_entries(&self) -> usize {
        self.limits
            .segment_entries
            .unwrap_or(search::DEFAULT_SEGMENT_ENTRIES)
    }

    /// A segment starts from `configs` configurations over `window` open ops.
    pub(crate) fn note_segment(&self, configs: usize, window: usize) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        self.peak_configs
            .fetch_max(configs as u64, Ordering::Relaxed);
        self.widest_window
            .fetch_max(window as u64, Ordering::Relaxed);
    }

    pub(crate) fn add_states(&self, n: u64) {
        self.states.fetch_add(n, Ordering::Relaxed);
        if let Some(p) = &self.limits.progress {
            p.states_explored.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn hit(&self, limit: String) {
        let mut first = self.limit_hit.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(limit);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Checks `history` against the model `spec` names. Errors only on a history that cannot
/// be paired into ops or has an op the model does not understand.
pub fn check(
    history: &History,
    spec: &ModelSpec,
    limits: &Limits,
) -> Result<CheckResult, HistoryError> {
    check_input(Input::History(history), spec, limits)
}

/// As [`check`], for a history paired into ops as it was read.
pub fn check_paired(
    paired: &PairedHistory,
    spec: &ModelSpec,
    limits: &Limits,
) -> Result<CheckResult, HistoryError> {
    check_input(Input::Paired(paired), spec, limits)
}

/// What a check reads: a history's events, or its ops already paired.
#[derive(Clone, Copy)]
enum Input<'a> {
    History(&'a History),
    Paired(&'a PairedHistory),
}

fn check_input(
    input: Input<'_>,
    spec: &ModelSpec,
    limits: &Limits,
) -> Result<CheckResult, HistoryError> {
    let initial = spec.initial.clone();
    let nil_read_any = spec.nil_read_any;
    match spec.kind {
        ModelKind::Register => check_input_with(
            input,
            &Register {
                initial,
                nil_read_any,
            },
            limits,
        ),
        ModelKind::CasRegister => check_input_with(
            input,
            &CasRegister {
                initial,
                fail_observed: spec.cas_fail_observed,
                nil_read_any,
            },
            limits,
        ),
        ModelKind::Kv => check_input_with(
            input,
            &Kv {
                initial,
                nil_read_any,
            },
            limits,
        ),
        ModelKind::Mutex => check_input_with(input, &Mutex, limits),
    }
}

/// Checks `history` against any model.
pub fn check_with<M: Model>(
    history: &History,
    model: &M,
    limits: &Limits,
) -> Result<CheckResult, HistoryError> {
    check_input_with(Input::History(history), model, limits)
}

fn check_input_with<M: Model>(
    input: Input<'_>,
    model: &M,
    limits: &Limits,
) -> Result<CheckResult, HistoryError> {
    let started = Instant::now();
    let ops: Cow<'_, [Op]> = match input {
        Input::History(history) => Cow::Owned(history.ops()?),
        Input::Paired(paired) => Cow::Borrowed(&paired.ops),
    };
    for op in ops.iter() {
        if model.relevant(op) {
            model.validate(op).map_err(|expected| {
                let at = match input {
                    Input::History(history) => history.location(op.invoke),
                    Input::Paired(paired) => paired.location(op.id),
                };
                HistoryError::at(at, "f", expected)
            })?;
        }
    }
    let partitions = partition(model, &ops);
    let searched: usize = partitions.iter().map(|p| p.ops.len()).sum();
    if let Some(p) = &limits.progress {
        p.partitions_total
            .store(partitions.len() as u64, Ordering::Relaxed);
    }
    let shared = Shared {
        limits,
        started,
        stop: AtomicBool::new(false),
        limit_hit: std::sync::Mutex::new(None),
        memory_bytes: AtomicU64::new(0),
        peak_memory_bytes: AtomicU64::new(0),
        states: AtomicU64::new(0),
        segments: AtomicU64::new(0),
        peak_configs: AtomicU64::new(0),
        widest_window: AtomicU64::new(0),
        forgotten: AtomicU64::new(0),
    };
    let run = |part: &Partition<'_>| {
        if shared.stop.load(Ordering::Relaxed) {
            return search::Outcome::Stopped;
        }
        let out = search::search(model, part, &shared);
        if matches!(out, search::Outcome::Invalid(_)) {
            shared.stop.store(true, Ordering::Relaxed);
        }
        if let Some(p) = &limits.progress {
            p.partitions_done.fetch_add(1, Ordering::Relaxed);
        }
        out
    };
    // One partition runs on this thread: no pool hand-off for small histories.
    let outcomes: Vec<search::Outcome> = if partitions.len() == 1 {
        partitions.iter().map(run).collect()
    } else {
        partitions.par_iter().map(run).collect()
    };

    let mut verdict = Verdict::Valid;
    for out in outcomes {
        match out {
            search::Outcome::Invalid(cex) => {
                verdict = Verdict::Invalid(*cex);
                break;
            }
            search::Outcome::Stopped => {
                let limit = shared
                    .limit_hit
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                // Stopped without a limit only happens when another partition was
                // invalid, which this loop then finds.
                if let Some(limit) = limit {
                    verdict = Verdict::Unknown { limit };
                }
            }
            search::Outcome::Valid => {}
        }
    }
    tracing::debug!(verdict = verdict.name(), "linearizability check done");
    let stats = SearchStats {
        partitions: partitions.len(),
        ops: ops.len(),
        ops_searched: searched,
        states_explored: shared.states.load(Ordering::Relaxed),
        peak_memory_bytes: shared.peak_memory_bytes.load(Ordering::Relaxed),
        segments: shared.segments.load(Ordering::Relaxed),
        peak_configs: shared.peak_configs.load(Ordering::Relaxed),
        widest_window: shared.widest_window.load(Ordering::Relaxed),
        memo_forgotten: shared.forgotten.load(Ordering::Relaxed),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    Ok(CheckResult { verdict, stats })
}

/// Groups the ops the search must place by key, each group's completed ops first (in
/// invoke order) then its `info` ops; the largest partitions first, so the parallel
/// schedule does not end with one big partition running alone.
fn partition<'a, M: Model>(model: &M, ops: &'a [Op]) -> Vec<Partition<'a>> {
    let mut by_key: BTreeMap<Option<&str>, Vec<&'a Op>> = BTreeMap::new();
    for op in ops.iter().filter(|op| model.relevant(op)) {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    let mut parts: Vec<Partition<'a>> = by_key
        .into_iter()
        .map(|(key, ops)| {
            let unneeded = model.unneeded_info(&ops);
            // An op that did not complete has no return entry, whatever it says.
            let is_main = |op: &Op| op.outcome != Outcome::Info && op.complete.is_some();
            let kept: Vec<&Op> = ops
                .iter()
                .zip(&unneeded)
                .filter(|(_, &u)| !u)
                .map(|(op, _)| *op)
                .collect();
            let mut sorted: Vec<&Op> = kept.iter().copied().filter(|op| is_main(op)).collect();
            let n_main = sorted.len();
            sorted.extend(kept.iter().copied().filter(|op| !is_main(op)));
            Partition {
                key: key.map(str::to_string),
                ops: sorted,
                n_main,
            }
        })
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.ops.len()));
    parts
}

/// `60s`, `1500ms`, `250us`, `1ns`: the largest unit that divides `d` exactly.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    for (unit, size) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
        if ns >= size && (ns / size) * size == ns {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// `4GiB`, `512MiB`, `1000B`: the largest binary unit that divides `bytes` exactly.
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && (bytes / size) * size == bytes {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process, Value};

    fn ev(p: u64, kind: EventType, f: &str, v: Value) -> Event {
        Event::new(Process::Client(p), kind, f, v)
    }

    #[test]
    fn counterexample_names_the_read_and_the_prefix() {
        use EventType::*;
        let h = History::from_events(vec![
            ev(1, Invoke, "write", 1.into()),
            ev(1, Ok, "write", 1.into()),
            ev(2, Invoke, "write", 2.into()),
            ev(3, Invoke, "read", Value::Null),
            ev(3, Ok, "read", 3.into()),
            ev(2, Info, "write", 2.into()),
        ]);
        let r = check(&h, &ModelSpec::new(ModelKind::Register), &Limits::default()).unwrap();
        let Verdict::Invalid(cex) = &r.verdict else {
            panic!("expected invalid, got {}", r.verdict);
        };
        assert!(r.verdict.is_invalid());
        assert_eq!(cex.key, None);
        assert_eq!(cex.failed.output, Value::Int(3));
        let prefix: Vec<&str> = cex.prefix.iter().map(|o| o.f.as_str()).collect();
        assert_eq!(prefix, ["write"]);
        assert_eq!(cex.prefix[0].value, Value::Int(1));
        // The info write of 2 was never observed, so it is pruned: only 1 is possible.
        assert_eq!(cex.states, ["1"]);
        let text = r.verdict.to_string();
        assert!(
            text.contains("cannot take effect next: p3 read -> 3"),
            "{text}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["verdict"], "invalid");
        assert_eq!(json["failed"]["output"], 3);
        assert_eq!(json["prefix"][0]["f"], "write");
        assert_eq!(json["stats"]["partitions"], 1);
        assert_eq!(json["stats"]["ops"], 3);
    }

    #[test]
    fn keys_are_checked_independently() {
        use EventType::*;
        let w = |p, k: &str, v: i64| {
            [
                ev(p, Invoke, "write", v.into()).with_key(k),
                ev(p, Ok, "write", v.into()).with_key(k),
            ]
        };
        let r = |p, k: &str, v: Value| {
            [
                ev(p, Invoke, "read", Value::Null).with_key(k),
                ev(p, Ok, "read", v).with_key(k),
            ]
        };
        let mut events: Vec<Event> = Vec::new();
        events.extend(w(1, "a", 1));
        events.extend(w(1, "b", 2));
        events.extend(r(2, "a", 1.into()));
        events.extend(r(2, "c", Value::Null));
        let h = History::from_events(events.clone());
        let spec = ModelSpec::new(ModelKind::Kv);
        let ok = check(&h, &spec, &Limits::default()).unwrap();
        assert!(ok.verdict.is_valid(), "{}", ok.verdict);
        assert_eq!(ok.stats.partitions, 3);
        events.extend(r(2, "b", 1.into()));
        let bad = check(&History::from_events(events), &spec, &Limits::default()).unwrap();
        let Verdict::Invalid(cex) = &bad.verdict else {
            panic!("expected invalid, got {}", bad.verdict);
        };
        assert_eq!(cex.key.as_deref(), Some("b"));
        assert_eq!(cex.states, ["2"]);
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json["verdict"], "valid");
    }

    #[test]
    fn unknown_f_is_an_input_error() {
        use EventType::*;
        let h = History::from_events(vec![
            ev(1, Invoke, "enqueue", 1.into()),
            ev(1, Ok, "enqueue", 1.into()),
        ]);
        let err = check(
            &h,
            &ModelSpec::new(ModelKind::CasRegister),
            &Limits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("read, write or cas"), "{err}");
    }

    #[test]
    fn limit_names() {
        assert_eq!(format_duration(Duration::from_secs(60)), "60s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_nanos(1)), "1ns");
        assert_eq!(format_bytes(4 << 30), "4GiB");
        assert_eq!(format_bytes(3 << 20), "3MiB");
        assert_eq!(format_bytes(1000), "1000B");
    }
}
