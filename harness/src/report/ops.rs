//! The report's view of a history: client operations as bars on one time axis, and the
//! periods a nemesis fault was in effect. Times are seconds since the run started; a
//! history without times (a Jepsen text log) uses event positions instead, so the same
//! drawing code serves both.

use std::collections::{BTreeMap, HashMap};

use faultline_checker::{History, HistoryError, Op, Outcome, Process};

/// One client operation, placed on the time axis.
#[derive(Clone, Debug)]
pub struct Bar {
    /// The op's id in `History::ops`.
    pub id: usize,
    pub process: u64,
    pub key: Option<String>,
    pub start: f64,
    /// The completion; for an op that never completed, the end of the history.
    pub end: f64,
    pub completed: bool,
    pub outcome: Outcome,
    /// Invoke to completion, when both have times.
    pub latency_ms: Option<f64>,
    /// `p3 write k1 4 -> ok`.
    pub label: String,
}

/// A fault in effect from `start` to `end`.
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    pub start: f64,
    pub end: f64,
    /// The fault kind (`partition`, `kill`, ...; `fault` for Jepsen's plain `start`).
    pub kind: String,
    /// `partition: isolate-one ...`, shown as a tooltip.
    pub label: String,
}

/// A moment marked on the time axis: a violation the online check found while the test
/// ran (a `checker` event).
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    pub at: f64,
    pub label: String,
}

/// Everything the plots need from a history.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// True when every client event has `time_ns`: the axis is seconds. Otherwise it is
    /// the event index.
    pub timed: bool,
    /// In invoke order.
    pub bars: Vec<Bar>,
    pub periods: Vec<Period>,
    pub flags: Vec<Flag>,
    /// The end of the axis: the last event.
    pub end: f64,
    /// Op lookup for counterexamples: (process, invoke time in ns or invoke index).
    by_invoke: HashMap<(u64, u64), usize>,
}

impl Timeline {
    pub fn from_history(history: &History) -> Result<Timeline, HistoryError> {
        let ops = history.ops()?;
        let timed = history
            .events
            .iter()
            .filter(|e| matches!(e.process, Process::Client(_)))
            .all(|e| e.time_ns.is_some());
        let at = |i: usize| -> f64 {
            let e = &history.events[i];
            match (timed, e.time_ns) {
                (true, Some(t)) => t as f64 / 1e9,
                _ => i as f64,
            }
        };
        let end = if history.events.is_empty() {
            0.0
        } else {
            (0..history.events.len()).map(at).fold(0.0, f64::max)
        };
        let mut by_invoke = HashMap::with_capacity(ops.len());
        let bars: Vec<Bar> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                by_invoke.insert(invoke_key(op, timed), i);
                Bar {
                    id: op.id,
                    process: op.process,
                    key: op.key.clone(),
                    start: at(op.invoke),
                    end: op.complete.map_or(end, at),
                    completed: op.complete.is_some(),
                    outcome: op.outcome,
                    latency_ms: match (op.invoke_ns, op.complete_ns) {
                        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6),
                        _ => None,
                    },
                    label: op.to_string(),
                }
            })
            .collect();
        let periods = nemesis_periods(history, end, &at);
        let flags = history
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.process == Process::Checker)
            .map(|(i, e)| Flag {
                at: at(i),
                label: format!("the online check found a violation here: {}", e.value),
            })
            .collect();
        Ok(Timeline {
            timed,
            bars,
            periods,
            flags,
            end,
            by_invoke,
        })
    }

    /// The bar of an op named in a check result. The result's ops may come from a
    /// filtered copy of the history (the lock workload checks only its registers), so
    /// ops are matched by process and invoke time rather than by id.
    pub fn find(&self, op: &Op) -> Option<usize> {
        self.by_invoke.get(&invoke_key(op, self.timed)).copied()
    }

    /// The axis unit, for labels.
    pub fn unit(&self) -> &'static str {
        if self.timed {
            "s"
        } else {
            "event"
        }
    }
}

fn invoke_key(op: &Op, timed: bool) -> (u64, u64) {
    match (timed, op.invoke_ns) {
        (true, Some(t)) => (op.process, t),
        _ => (op.process, op.invoke as u64),
    }
}

/// Pairs `start-<kind>` with `stop-<kind>` nemesis events (Jepsen's plain `start`/`stop`
/// too); `heal` and the end of the history close whatever is still open. `at` places event
/// `i` on the axis and `end` is the axis's end. Shared with `test-all`, which names the
/// faults in effect when a violating op ran ([`crate::matrix::attribution`]).
pub fn nemesis_periods(history: &History, end: f64, at: &dyn Fn(usize) -> f64) -> Vec<Period> {
    let mut open: BTreeMap<String, (f64, String)> = BTreeMap::new();
    let mut periods = Vec::new();
    for (i, e) in history.events.iter().enumerate() {
        if e.process != Process::Nemesis {
            continue;
        }
        let t = at(i);
        let f = e.f.as_str();
        let describe = |kind: &str| {
            let v = e.value.to_string();
            let kind = kind_name(kind);
            if e.value.is_null() {
                kind
            } else {
                format!("{kind}: {v}")
            }
        };
        if let Some(kind) = f.strip_prefix("start-").or((f == "start").then_some("")) {
            open.entry(kind.to_string())
                .or_insert_with(|| (t, describe(kind)));
        } else if let Some(kind) = f.strip_prefix("stop-").or((f == "stop").then_some("")) {
            if let Some((start, label)) = open.remove(kind) {
                periods.push(Period {
                    start,
                    end: t,
                    kind: kind_name(kind),
                    label,
                });
            }
        } else if f == "heal" {
            for (kind, (start, label)) in std::mem::take(&mut open) {
                periods.push(Period {
                    start,
                    end: t,
                    kind: kind_name(&kind),
                    label,
                });
            }
        }
    }
    for (kind, (start, label)) in open {
        periods.push(Period {
            start,
            end,
            kind: kind_name(&kind),
            label,
        });
    }
    periods.sort_by(|a, b| a.start.total_cmp(&b.start));
    periods
}

/// A period's kind: the `<kind>` of `start-<kind>`, `fault` for a plain `start`.
fn kind_name(kind: &str) -> String {
    if kind.is_empty() { "fault" } else { kind }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{Event, EventType, Value};

    fn ev(p: Process, kind: EventType, f: &str, t_ns: u64) -> Event {
        let mut e = Event::new(p, kind, f, Value::Null);
        e.time_ns = Some(t_ns);
        e
    }

    #[test]
    fn bars_and_periods() {
        use EventType::*;
        let h = History::from_events(vec![
            ev(Process::Client(0), Invoke, "read", 1_000_000_000),
            ev(Process::Nemesis, Info, "start-partition", 1_500_000_000),
            ev(Process::Client(0), Ok, "read", 2_000_000_000),
            ev(Process::Client(1), Invoke, "write", 2_500_000_000),
            ev(Process::Nemesis, Info, "stop-partition", 3_000_000_000),
            ev(Process::Nemesis, Info, "start-kill", 3_500_000_000),
            ev(Process::Nemesis, Info, "heal", 4_000_000_000),
        ]);
        let tl = Timeline::from_history(&h).unwrap();
        assert!(tl.timed);
        assert_eq!(tl.bars.len(), 2);
        assert_eq!(tl.bars[0].start, 1.0);
        assert_eq!(tl.bars[0].end, 2.0);
        assert_eq!(tl.bars[0].latency_ms, Some(1000.0));
        assert!(!tl.bars[1].completed);
        assert_eq!(tl.bars[1].end, 4.0);
        assert_eq!(
            tl.periods
                .iter()
                .map(|p| (p.start, p.end))
                .collect::<Vec<_>>(),
            vec![(1.5, 3.0), (3.5, 4.0)]
        );
        let ops = h.ops().unwrap();
        assert_eq!(tl.find(&ops[1]), Some(1));
        assert!(tl.flags.is_empty());
    }

    #[test]
    fn a_violation_found_online_is_a_flag_not_a_bar() {
        use EventType::*;
        let h = History::from_events(vec![
            ev(Process::Client(0), Invoke, "read", 1_000_000_000),
            ev(Process::Client(0), Ok, "read", 2_000_000_000),
            ev(Process::Checker, Info, "violation", 2_500_000_000),
        ]);
        let tl = Timeline::from_history(&h).unwrap();
        assert_eq!(tl.bars.len(), 1);
        assert_eq!(tl.flags.len(), 1);
        assert_eq!(tl.flags[0].at, 2.5);
        assert!(tl.flags[0].label.contains("online check"));
        assert!(tl.periods.is_empty());
    }

    #[test]
    fn untimed_histories_use_event_positions() {
        let h = History::from_events(vec![
            Event::new(Process::Client(0), EventType::Invoke, "read", Value::Null),
            Event::new(Process::Client(0), EventType::Ok, "read", Value::Null),
        ]);
        let tl = Timeline::from_history(&h).unwrap();
        assert!(!tl.timed);
        assert_eq!((tl.bars[0].start, tl.bars[0].end), (0.0, 1.0));
        assert_eq!(tl.unit(), "event");
    }
}
