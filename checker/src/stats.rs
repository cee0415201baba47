//! Operation statistics: latency quantiles and throughput, per `f` and outcome, plus
//! throughput over time for plots. Only client ops count; latencies need `time_ns` on
//! both the invoke and the completion (Jepsen text logs have none, so their stats have
//! counts but no latencies). An op that never completed has no latency.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::HistoryError;
use crate::history::{History, Op, Outcome};

/// Most buckets in the throughput timeline: long runs get wider buckets, so the output
/// stays small whatever the run length.
pub const MAX_BUCKETS: u64 = 1_000;

/// Narrowest timeline bucket: one second.
pub const MIN_BUCKET_NS: u64 = 1_000_000_000;

/// Latency quantiles (nearest rank) in nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub mean_ns: u64,
}

/// Stats for one `(f, outcome)` pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub f: String,
    pub outcome: Outcome,
    pub count: u64,
    /// Over ops with both times; `None` when there are none.
    pub latency: Option<Latency>,
    /// Ops per second over the whole run; `None` without times.
    pub throughput_per_s: Option<f64>,
}

/// Completions per `f:outcome` in one timeline bucket starting at `start_ns`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub start_ns: u64,
    pub counts: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub ops: u64,
    /// From the first to the last timed client event; `None` without times.
    pub duration_ns: Option<u64>,
    /// Sorted by `f`, then outcome (ok, fail, info).
    pub groups: Vec<GroupStats>,
    pub bucket_ns: u64,
    /// Completed ops by completion time; empty without times.
    pub timeline: Vec<Bucket>,
}

/// Stats of the client ops in `history`.
pub fn compute(history: &History) -> Result<Stats, HistoryError> {
    Ok(from_ops(&history.ops()?))
}

/// Stats of `ops`.
pub fn from_ops(ops: &[Op]) -> Stats {
    let first_ns = ops.iter().filter_map(|o| o.invoke_ns).min();
    let last_ns = ops
        .iter()
        .filter_map(|o| o.complete_ns.or(o.invoke_ns))
        .max();
    let duration_ns = first_ns.zip(last_ns).map(|(a, b)| b.saturating_sub(a));

    let mut groups: BTreeMap<(&str, u8), (Outcome, u64, Vec<u64>)> = BTreeMap::new();
    for op in ops {
        let g = groups
            .entry((op.f.as_str(), outcome_rank(op.outcome)))
            .or_insert((op.outcome, 0, Vec::new()));
        g.1 += 1;
        if let (Some(a), Some(b)) = (op.invoke_ns, op.complete_ns) {
            g.2.push(b.saturating_sub(a));
        }
    }
    let groups = groups
        .into_iter()
        .map(|((f, _), (outcome, count, mut lat))| GroupStats {
            f: f.to_string(),
            outcome,
            count,
            latency: latency(&mut lat),
            throughput_per_s: duration_ns
                .filter(|&d| d > 0)
                .map(|d| count as f64 / (d as f64 / 1e9)),
        })
        .collect();

    let bucket_ns = duration_ns.map_or(MIN_BUCKET_NS, |d| (d / MAX_BUCKETS + 1).max(MIN_BUCKET_NS));
    let mut timeline: BTreeMap<u64, BTreeMap<String, u64>> = BTreeMap::new();
    if let Some(first) = first_ns {
        for op in ops {
            let Some(t) = op.complete_ns else { continue };
            let start_ns = (t.saturating_sub(first) / bucket_ns) * bucket_ns;
            let name = format!("{}:{}", op.f, outcome_name(op.outcome));
            *timeline
                .entry(start_ns)
                .or_default()
                .entry(name)
                .or_default() += 1;
        }
    }

    Stats {
        ops: ops.len() as u64,
        duration_ns,
        groups,
        bucket_ns,
        timeline: timeline
            .into_iter()
            .map(|(start_ns, counts)| Bucket { start_ns, counts })
            .collect(),
    }
}

fn outcome_rank(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => 0,
        Outcome::Fail => 1,
        Outcome::Info => 2,
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// Nearest-rank quantiles: the smallest sample with at least q of samples at or below it.
fn latency(samples: &mut [u64]) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    let q = |q: f64| samples[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Latency {
        p50_ns: q(0.50),
        p90_ns: q(0.90),
        p99_ns: q(0.99),
        max_ns: samples[n - 1],
        mean_ns: (sum / n as u128) as u64,
    })
}

impl fmt::Display for Stats {
    /// A table: one row per `f` and outcome, latencies in milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:<7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "f", "outcome", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "ops/s"
        )?;
        let ms = |ns: u64| format!("{:.2}", ns as f64 / 1e6);
        for g in &self.groups {
            let (p50, p90, p99, max) = match &g.latency {
                Some(l) => (ms(l.p50_ns), ms(l.p90_ns), ms(l.p99_ns), ms(l.max_ns)),
                None => Default::default(),
            };
            let tput = g
                .throughput_per_s
                .map_or(String::new(), |t| format!("{t:.1}"));
            writeln!(
                f,
                "{:<16} {:<7} {:>9} {p50:>9} {p90:>9} {p99:>9} {max:>9} {tput:>10}",
                g.f,
                outcome_name(g.outcome),
                g.count
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process, Value};

    fn timed(p: u64, kind: EventType, f: &str, t_ns: u64) -> Event {
        let mut e = Event::new(Process::Client(p), kind, f, Value::Null);
        e.time_ns = Some(t_ns);
        e
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut s: Vec<u64> = (1..=100).rev().collect();
        let l = latency(&mut s).unwrap();
        assert_eq!((l.p50_ns, l.p90_ns, l.p99_ns, l.max_ns), (50, 90, 99, 100));
        assert_eq!(l.mean_ns, 50);
        let l = latency(&mut [7]).unwrap();
        assert_eq!((l.p50_ns, l.p99_ns, l.max_ns), (7, 7, 7));
        assert!(latency(&mut []).is_none());
    }

    #[test]
    fn groups_by_f_and_outcome() {
        // 10 reads of 1..=10 ms, one failed write of 4 ms, one write never completed.
        let mut events = Vec::new();
        let mut t = 0;
        for i in 1..=10u64 {
            events.push(timed(1, EventType::Invoke, "read", t));
            t += i * 1_000_000;
            events.push(timed(1, EventType::Ok, "read", t));
        }
        events.push(timed(2, EventType::Invoke, "write", 0));
        events.push(timed(2, EventType::Fail, "write", 4_000_000));
        events.push(timed(3, EventType::Invoke, "write", 1_000_000));
        let s = compute(&History::from_events(events)).unwrap();
        assert_eq!(s.ops, 12);
        assert_eq!(s.duration_ns, Some(55_000_000));
        let names: Vec<_> = s
            .groups
            .iter()
            .map(|g| (g.f.as_str(), g.outcome, g.count))
            .collect();
        assert_eq!(
            names,
            [
                ("read", Outcome::Ok, 10),
                ("write", Outcome::Fail, 1),
                ("write", Outcome::Info, 1)
            ]
        );
        let read = s.groups[0].latency.as_ref().unwrap();
        assert_eq!(
            (read.p50_ns, read.p90_ns, read.max_ns),
            (5_000_000, 9_000_000, 10_000_000)
        );
        assert!(s.groups[2].latency.is_none());
        let tput = s.groups[0].throughput_per_s.unwrap();
        assert!((tput - 10.0 / 0.055).abs() < 1e-6, "{tput}");
        assert_eq!(s.bucket_ns, MIN_BUCKET_NS);
        assert_eq!(s.timeline.len(), 1);
        assert_eq!(s.timeline[0].counts["read:ok"], 10);
        assert!(s.to_string().contains("read"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["groups"][1]["outcome"], "fail");
    }

    #[test]
    fn long_runs_get_wider_buckets() {
        let hour_ns = 3_600 * MIN_BUCKET_NS;
        let events = vec![
            timed(1, EventType::Invoke, "read", 0),
            timed(1, EventType::Ok, "read", 1),
            timed(2, EventType::Invoke, "read", hour_ns - 1),
            timed(2, EventType::Ok, "read", hour_ns),
        ];
        let s = compute(&History::from_events(events)).unwrap();
        assert!(s.bucket_ns > MIN_BUCKET_NS);
        assert!(hour_ns / s.bucket_ns <= MAX_BUCKETS);
        assert_eq!(s.timeline.len(), 2);
    }

    #[test]
    fn untimed_histories_have_counts_only() {
        let events = vec![
            Event::new(Process::Client(1), EventType::Invoke, "read", Value::Null),
            Event::new(Process::Client(1), EventType::Ok, "read", 1.into()),
        ];
        let s = compute(&History::from_events(events)).unwrap();
        assert_eq!(s.groups[0].count, 1);
        assert!(s.groups[0].latency.is_none() && s.groups[0].throughput_per_s.is_none());
        assert!(s.timeline.is_empty() && s.duration_ns.is_none());
    }
}
