//! [`Detection`]: when a run that showed a cell's bug knew it, and which faults were in
//! effect when the first violating op ran. The time is the online check's
//! (`exercised.online.violation.found_at_ms`); a run only the final check caught was
//! "found at the end". The op is the linearizability counterexample's failed op, or for a
//! fencing violation the op whose completion proves it; the faults are the nemesis periods
//! of the run's `history.jsonl` (paired as the report pairs them) that cover the op's
//! completion.

use std::collections::HashMap;

use faultline_checker::fencing::{FencingReport, OpRef, Violation};
use faultline_checker::format::{read_path, Format};
use faultline_checker::History;
use serde::{Deserialize, Serialize};

use super::cell::Expect;
use crate::report::ops::nemesis_periods;
use crate::results::RunResults;

/// What a detecting run adds to its try.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Detection {
    /// When the online check found the violation, in ms since the run started; absent
    /// when only the final check found it ("found at the end").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_detect_ms: Option<u64>,
    /// The first violating op, as the check names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// When that op completed (or was invoked, if it never completed), in ms since the run
    /// started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_at_ms: Option<u64>,
    /// Fault kinds in effect at `op_at_ms`, sorted; empty when none was. Absent when the
    /// op could not be placed (`unattributed` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_faults: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<String>,
}

impl Detection {
    /// Only the final check found it.
    pub fn found_at_end(&self) -> bool {
        self.time_to_detect_ms.is_none()
    }

    /// The key a cell's tally counts this run under: `partition`, `clock+partition`,
    /// `none`, or `unattributed`.
    pub fn faults_label(&self) -> String {
        match &self.active_faults {
            None => "unattributed".to_string(),
            Some(kinds) if kinds.is_empty() => "none".to_string(),
            Some(kinds) => kinds.join("+"),
        }
    }
}

/// The detection of run `r`, which showed what a cell expecting `expect` looks for. Reads
/// the run's `history.jsonl`; a history that cannot be read leaves the run unattributed.
pub fn of_run(expect: Expect, r: &RunResults) -> Detection {
    let time_to_detect_ms = r
        .exercised
        .as_ref()
        .and_then(|x| x.online.as_ref())
        .and_then(|o| o.violation.as_ref())
        .map(|v| v.found_at_ms);
    let path = r.run_dir.join("history.jsonl");
    let history = read_path(&path, Format::Jsonl).map_err(|e| e.to_string());
    let mut d = Detection {
        time_to_detect_ms,
        ..Detection::default()
    };
    match history.and_then(|h| violating_op(expect, r, &h).map(|op| (h, op))) {
        Ok((h, (op, at_ns))) => {
            d.op = Some(op);
            d.op_at_ms = Some(at_ns / 1_000_000);
            match active_faults(&h, at_ns) {
                Ok(kinds) => d.active_faults = Some(kinds),
                Err(why) => d.unattributed = Some(why),
            }
        }
        Err(why) => d.unattributed = Some(why),
    }
    d
}

/// The first violating op of run `r` (its description, and its completion time in ns, or
/// its invoke time if it never completed): the linearizability counterexample's failed op
/// for `invalid` cells, the fencing report's for `fencing-violation` cells.
pub fn violating_op(
    expect: Expect,
    r: &RunResults,
    history: &History,
) -> Result<(String, u64), String> {
    let j = r.judgement.as_ref().ok_or("the run has no judgement")?;
    match expect {
        Expect::FencingViolation => {
            let report = j.fencing.as_ref().ok_or("the run has no fencing report")?;
            fencing_op(report, history)
        }
        Expect::Invalid | Expect::Valid => match &j.linearizable.verdict {
            faultline_checker::Verdict::Invalid(cx) => {
                let at = cx
                    .failed
                    .complete_ns
                    .or(cx.failed.invoke_ns)
                    .ok_or("the counterexample's op has no time")?;
                Ok((cx.failed.to_string(), at))
            }
            _ => Err("the linearizability check found no counterexample".to_string()),
        },
    }
}

/// Of the fencing report's listed violations, the op whose completion proves one, the
/// earliest: the second grant of a duplicate token, the later acquire of a decreasing
/// pair, the first stale write accepted during an overlap (or else the second holder's
/// acquire), the stale write a resource accepted.
fn fencing_op(report: &FencingReport, history: &History) -> Result<(String, u64), String> {
    // OpRef indexes are the events' `index` fields.
    let time_of: HashMap<u64, u64> = history
        .events
        .iter()
        .filter_map(|e| e.time_ns.map(|t| (e.index, t)))
        .collect();
    let at = |op: &OpRef| {
        time_of
            .get(&op.complete_index.unwrap_or(op.invoke_index))
            .copied()
    };
    let proof = |v: &Violation| -> Option<OpRef> {
        match v {
            Violation::DuplicateToken { acquires, .. } => {
                let mut by_time: Vec<&OpRef> = acquires.iter().collect();
                by_time.sort_by_key(|a| a.complete_index.unwrap_or(u64::MAX));
                by_time.get(1).map(|a| (*a).clone())
            }
            Violation::TokenNotIncreasing { later, .. } => Some(later.clone()),
            Violation::OverlappingHolders {
                second,
                stale_writes_accepted,
                ..
            } => Some(
                stale_writes_accepted
                    .first()
                    .unwrap_or(&second.acquire)
                    .clone(),
            ),
            Violation::StaleWriteAccepted { stale, .. } => Some(stale.clone()),
        }
    };
    report
        .violations
        .iter()
        .filter_map(|v| {
            let op = proof(v)?;
            Some((at(&op)?, format!("{op}: {v}")))
        })
        .min_by_key(|(t, _)| *t)
        .map(|(t, what)| (what, t))
        .ok_or_else(|| "the fencing report names no timed op".to_string())
}

/// The fault kinds whose period (start to stop, or to the heal) covers `at_ns`, sorted and
/// without repeats; empty when no fault was in effect. Needs a timed history.
pub fn active_faults(history: &History, at_ns: u64) -> Result<Vec<String>, String> {
    let nemesis_untimed = history
        .events
        .iter()
        .any(|e| e.process == faultline_checker::Process::Nemesis && e.time_ns.is_none());
    if nemesis_untimed {
        return Err("the history's nemesis events have no times".to_string());
    }
    let seconds = |i: usize| history.events[i].time_ns.map_or(0.0, |t| t as f64 / 1e9);
    let end = (0..history.events.len()).map(seconds).fold(0.0, f64::max);
    let t = at_ns as f64 / 1e9;
    let mut kinds: Vec<String> = nemesis_periods(history, end, &seconds)
        .into_iter()
        .filter(|p| p.start <= t && t <= p.end)
        .map(|p| p.kind)
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Event, EventType, Process, Value};

    fn nemesis(f: &str, t_ms: u64) -> Event {
        let mut e = Event::new(Process::Nemesis, EventType::Info, f, Value::Null);
        e.time_ns = Some(t_ms * 1_000_000);
        e
    }

    fn client(p: u64, kind: EventType, f: &str, t_ms: u64) -> Event {
        let mut e = Event::new(Process::Client(p), kind, f, Value::Null);
        e.time_ns = Some(t_ms * 1_000_000);
        e
    }

    /// Partition 1-3 s, kill 2.5-4 s (overlapping it), then a heal at 4 s; a clock fault
    /// starts at 6 s and is never stopped (the end of the history closes it).
    fn history() -> History {
        use EventType::*;
        History::from_events(vec![
            client(0, Invoke, "read", 500),
            nemesis("start-partition", 1_000),
            client(0, Ok, "read", 1_500),
            nemesis("start-kill", 2_500),
            nemesis("stop-partition", 3_000),
            nemesis("heal", 4_000),
            client(1, Invoke, "write", 4_500),
            client(1, Ok, "write", 5_000),
            nemesis("start-clock", 6_000),
            client(1, Invoke, "read", 7_000),
            client(1, Ok, "read", 8_000),
        ])
    }

    fn at(h: &History, ms: u64) -> Vec<String> {
        active_faults(h, ms * 1_000_000).unwrap()
    }

    #[test]
    fn an_op_inside_a_partition_is_blamed_on_it() {
        let h = history();
        assert_eq!(at(&h, 1_500), ["partition"]);
        // Before any fault.
        assert!(at(&h, 500).is_empty());
    }

    #[test]
    fn an_op_after_the_heal_has_no_fault() {
        let h = history();
        // The heal closed the kill, which had no stop of its own.
        assert!(at(&h, 4_500).is_empty());
        assert!(at(&h, 5_000).is_empty());
    }

    #[test]
    fn overlapping_faults_are_all_named() {
        let h = history();
        assert_eq!(at(&h, 2_700), ["kill", "partition"]);
        assert_eq!(at(&h, 3_500), ["kill"]);
        // A fault still open at the end of the history lasts until then.
        assert_eq!(at(&h, 7_500), ["clock"]);
    }

    #[test]
    fn an_untimed_nemesis_cannot_be_placed() {
        let h = History::from_events(vec![Event::new(
            Process::Nemesis,
            EventType::Info,
            "start-kill",
            Value::Null,
        )]);
        assert!(active_faults(&h, 0).is_err());
    }

    #[test]
    fn labels_for_the_tally() {
        let d = |kinds: Option<&[&str]>| Detection {
            active_faults: kinds.map(|k| k.iter().map(ToString::to_string).collect()),
            ..Detection::default()
        };
        assert_eq!(d(Some(&["partition"])).faults_label(), "partition");
        assert_eq!(
            d(Some(&["clock", "partition"])).faults_label(),
            "clock+partition"
        );
        assert_eq!(d(Some(&[])).faults_label(), "none");
        assert_eq!(d(None).faults_label(), "unattributed");
        assert!(d(None).found_at_end());
    }

    /// A run folder holding `history.jsonl` (the history above, indexed) and the results
    /// a detecting run wrote, with `judgement` as given.
    fn run_with(
        judgement: serde_json::Value,
        online_ms: Option<u64>,
    ) -> (tempfile::TempDir, RunResults) {
        let dir = tempfile::tempdir().unwrap();
        let mut events = history().events;
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let mut file = std::fs::File::create(dir.path().join("history.jsonl")).unwrap();
        faultline_checker::format::write_jsonl(&mut file, &events).unwrap();
        let online = online_ms.map(|ms| serde_json::json!({"violation": {"found_at_ms": ms}}));
        let results = serde_json::json!({
            "verdict": "invalid", "test": "t", "run_dir": dir.path(), "seed": 1,
            "exercised": {"online": online},
            "judgement": judgement,
            "total_ms": 1,
        });
        let r = serde_json::from_value(results).unwrap();
        (dir, r)
    }

    fn stats() -> serde_json::Value {
        serde_json::json!({"partitions": 1, "ops": 2, "ops_searched": 2,
            "states_explored": 3, "peak_memory_bytes": 64, "elapsed_ms": 0})
    }

    #[test]
    fn a_counterexample_op_is_placed_in_the_run_history() {
        // The read that completed at 1.5 s, inside the partition.
        let judgement = serde_json::json!({
            "verdict": "invalid", "model": "cas-register",
            "linearizable": {"verdict": "invalid", "key": "r0", "prefix": [], "states": [],
                "failed": {"id": 0, "process": 0, "f": "read", "key": "r0", "value": null,
                    "output": 2, "outcome": "ok", "invoke": 0, "complete": 2,
                    "invoke_ns": 500_000_000u64, "complete_ns": 1_500_000_000u64},
                "pending": [], "stats": stats()},
            "stats": {"ops": 2, "duration_ns": 3000, "groups": [], "bucket_ns": 1000000000,
                "timeline": []}
        });
        let (_dir, r) = run_with(judgement, Some(1_900));
        let d = of_run(Expect::Invalid, &r);
        assert_eq!(d.time_to_detect_ms, Some(1_900));
        assert!(!d.found_at_end());
        assert_eq!(d.op_at_ms, Some(1_500));
        assert_eq!(d.op.as_deref(), Some("p0 read r0 -> 2"));
        assert_eq!(d.faults_label(), "partition", "{d:?}");
        // The same run judged by a fencing cell: it has no fencing report to go by.
        let d = of_run(Expect::FencingViolation, &r);
        assert_eq!(d.faults_label(), "unattributed");
        assert!(d.unattributed.unwrap().contains("fencing"));
    }

    #[test]
    fn a_fencing_violation_is_placed_by_the_op_that_proves_it() {
        let op = |op: u64, process: u64, invoke: u64, complete: u64| {
            serde_json::json!({"op": op, "process": process, "f": "acquire", "token": 3,
                "invoke_index": invoke, "complete_index": complete})
        };
        // Token 3 granted twice: first by event 2 (1.5 s, in the partition), again by
        // event 7 (5 s, after the heal). The second grant proves it.
        let judgement = serde_json::json!({
            "verdict": "invalid", "model": "kv",
            "linearizable": {"verdict": "valid", "stats": stats()},
            "fencing": {"valid": false, "violations_total": 1, "acquires_ok": 2,
                "writes_accepted": 0, "writes_rejected": 0,
                "violations": [{"kind": "duplicate-token", "lock": "l", "token": 3,
                    "acquires": [op(1, 1, 6, 7), op(0, 0, 0, 2)]}]},
            "stats": {"ops": 2, "duration_ns": 3000, "groups": [], "bucket_ns": 1000000000,
                "timeline": []}
        });
        let (_dir, r) = run_with(judgement, None);
        let d = of_run(Expect::FencingViolation, &r);
        assert!(d.found_at_end());
        assert_eq!(d.op_at_ms, Some(5_000));
        assert!(
            d.op.as_deref().unwrap().contains("duplicate token 3"),
            "{d:?}"
        );
        assert_eq!(d.faults_label(), "none");
        // A linearizability cell finds no counterexample in it.
        assert_eq!(of_run(Expect::Invalid, &r).faults_label(), "unattributed");
    }
}
