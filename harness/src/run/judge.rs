//! `judge`: reads the run's `history.jsonl` back (what is on disk is what gets judged),
//! runs the checks that fit the workload, and combines them into one verdict:
//! - `register`: linearizability against a cas-register per key;
//! - `kv`: linearizability against the kv model (per key);
//! - `lock`: the fencing-token checker, plus linearizability of the protected registers
//!   (fenced writes as writes, reads as reads; rejected writes did not happen).
//!
//! Any check `invalid` makes the run invalid; otherwise any `unknown` makes it unknown.

use std::path::Path;
use std::time::Duration;

use faultline_checker::format::{read_path, Format};
use faultline_checker::{
    CheckResult, Event, History, HistoryError, Limits, ModelKind, ModelSpec, Value,
};
use faultline_workloads::Workload;

use crate::results::{Judgement, Verdict};

/// Memory the linearizability search may use before giving up with `unknown`.
pub const CHECK_MAX_MEMORY_BYTES: u64 = 4 << 30;

/// The lock workload's registers as a plain read/write history: `fenced-write [token v]`
/// becomes `write v`; lock operations are dropped (they are judged by the fencing check).
pub fn lock_registers(history: &History) -> History {
    let events: Vec<Event> = history
        .events
        .iter()
        .filter(|e| matches!(e.f.as_str(), "read" | "fenced-write"))
        .map(|e| {
            let mut e = e.clone();
            if e.f == "fenced-write" {
                e.f = "write".to_string();
                if let Some([_, v]) = e.value.as_list() {
                    e.value = v.clone();
                } else {
                    e.value = Value::Null;
                }
            }
            e
        })
        .collect();
    History::from_events(events)
}

/// Runs the checks for `workload` on the history at `path`. Blocking (CPU-bound); call
/// from a blocking thread.
pub fn judge(
    path: &Path,
    workload: Workload,
    check_timeout: Duration,
) -> Result<Judgement, HistoryError> {
    let history = read_path(path, Format::Jsonl)?;
    let stats = faultline_checker::stats::compute(&history)?;
    let limits = Limits {
        timeout: Some(check_timeout),
        max_memory_bytes: Some(CHECK_MAX_MEMORY_BYTES),
        ..Limits::default()
    };
    let (model, linearizable) = check_linearizable(&history, workload, &limits)?;
    let fencing = match workload {
        Workload::Lock => Some(faultline_checker::fencing::check(&history)?),
        Workload::Register | Workload::Kv => None,
    };
    let verdict = if linearizable.verdict.is_invalid() || fencing.as_ref().is_some_and(|f| !f.valid)
    {
        Verdict::Invalid
    } else if linearizable.verdict.is_unknown() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    Ok(Judgement {
        verdict,
        model,
        linearizable,
        fencing,
        stats,
    })
}

/// The linearizability check `workload` calls for, on `history`: a cas-register per key
/// (`register`), the kv model (`kv`), or the kv model on the lock workload's registers
/// (`lock`). Returns the model it used.
pub fn check_linearizable(
    history: &History,
    workload: Workload,
    limits: &Limits,
) -> Result<(ModelKind, CheckResult), HistoryError> {
    match workload {
        Workload::Register => {
            let spec = ModelSpec::new(ModelKind::CasRegister);
            Ok((spec.kind, faultline_checker::check(history, &spec, limits)?))
        }
        Workload::Kv => {
            let spec = ModelSpec::new(ModelKind::Kv);
            Ok((spec.kind, faultline_checker::check(history, &spec, limits)?))
        }
        Workload::Lock => {
            let spec = ModelSpec::new(ModelKind::Kv);
            let registers = lock_registers(history);
            Ok((
                spec.kind,
                faultline_checker::check(&registers, &spec, limits)?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::{EventType, Process};
    use std::io::Write;

    fn ev(p: u64, kind: EventType, f: &str, key: &str, v: Value) -> Event {
        Event::new(Process::Client(p), kind, f, v).with_key(key)
    }

    fn write_history(events: &[Event]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new()
            .suffix(".jsonl")
            .tempfile()
            .unwrap();
        for (i, e) in events.iter().enumerate() {
            let mut e = e.clone();
            e.index = i as u64;
            e.time_ns = Some(i as u64 * 1000);
            serde_json::to_writer(&mut f, &e).unwrap();
            f.write_all(b"\n").unwrap();
        }
        f
    }

    #[test]
    fn register_history_stale_read_is_invalid() {
        use EventType::*;
        let valid = [
            ev(0, Invoke, "write", "r0", 1.into()),
            ev(0, Ok, "write", "r0", 1.into()),
            ev(1, Invoke, "read", "r0", Value::Null),
            ev(1, Ok, "read", "r0", 1.into()),
        ];
        let f = write_history(&valid);
        let j = judge(f.path(), Workload::Register, Duration::from_secs(10)).unwrap();
        assert_eq!(j.verdict, Verdict::Valid, "{}", j.reason());
        assert_eq!(j.model, ModelKind::CasRegister);
        let mut stale = valid.to_vec();
        stale.extend([
            ev(0, Invoke, "write", "r0", 2.into()),
            ev(0, Ok, "write", "r0", 2.into()),
            ev(1, Invoke, "read", "r0", Value::Null),
            ev(1, Ok, "read", "r0", 1.into()),
        ]);
        let f = write_history(&stale);
        let j = judge(f.path(), Workload::Register, Duration::from_secs(10)).unwrap();
        assert_eq!(j.verdict, Verdict::Invalid);
        assert_eq!(j.verdict.exit_code(), 1);
    }

    #[test]
    fn lock_history_checks_fencing_and_registers() {
        use EventType::*;
        let fw = |t: i64, v: i64| Value::List(vec![t.into(), v.into()]);
        let mut events = vec![
            ev(0, Invoke, "acquire", "l0", Value::Null),
            ev(0, Ok, "acquire", "l0", 1.into()),
            ev(0, Invoke, "fenced-write", "l0", fw(1, 10)),
            ev(0, Ok, "fenced-write", "l0", fw(1, 10)),
            ev(1, Invoke, "read", "l0", Value::Null),
            ev(1, Ok, "read", "l0", 10.into()),
            ev(0, Invoke, "release", "l0", 1.into()),
            ev(0, Ok, "release", "l0", 1.into()),
        ];
        let f = write_history(&events);
        let j = judge(f.path(), Workload::Lock, Duration::from_secs(10)).unwrap();
        assert_eq!(j.verdict, Verdict::Valid, "{}", j.reason());
        assert!(j.fencing.as_ref().unwrap().valid);
        // A later write with a lower token accepted: fencing violation.
        events.extend([
            ev(2, Invoke, "acquire", "l0", Value::Null),
            ev(2, Ok, "acquire", "l0", 5.into()),
            ev(2, Invoke, "fenced-write", "l0", fw(5, 11)),
            ev(2, Ok, "fenced-write", "l0", fw(5, 11)),
            ev(3, Invoke, "fenced-write", "l0", fw(1, 12)),
            ev(3, Ok, "fenced-write", "l0", fw(1, 12)),
        ]);
        let f = write_history(&events);
        let j = judge(f.path(), Workload::Lock, Duration::from_secs(10)).unwrap();
        assert_eq!(j.verdict, Verdict::Invalid, "{}", j.reason());
        assert!(j.reason().contains("fencing: invalid"), "{}", j.reason());
    }

    #[test]
    fn lock_registers_turn_fenced_writes_into_writes() {
        use EventType::*;
        let h = History::from_events(vec![
            ev(0, Invoke, "acquire", "l0", Value::Null),
            ev(0, Ok, "acquire", "l0", 1.into()),
            ev(
                0,
                Invoke,
                "fenced-write",
                "l0",
                Value::List(vec![1.into(), 7.into()]),
            ),
            ev(
                0,
                Fail,
                "fenced-write",
                "l0",
                Value::List(vec![1.into(), 7.into()]),
            ),
        ]);
        let r = lock_registers(&h);
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0].f, "write");
        assert_eq!(r.events[0].value, Value::Int(7));
        assert_eq!(r.events[1].kind, Fail);
    }
}
