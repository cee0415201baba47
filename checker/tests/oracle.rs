//! Property tests of the linearizability search against a brute-force oracle.
//!
//! The oracle shares no code with the search or the models: it has its own sequential
//! specifications, treats a multi-key history as one object (so P-compositionality is
//! tested too), and tries every subset of the `info` ops and every order of the chosen
//! ops that respects real time (an op that completed before another was invoked comes
//! first). `fail` ops did not happen; an op that never completed is `info`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use faultline_checker::gen::{kv_history, GenConfig};
use faultline_checker::{
    check, Event, EventType, Forget, History, Limits, ModelKind, ModelSpec, Op, Outcome, Process,
    Value,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------
// The oracle.

/// The whole object's state: key -> value (registers and mutexes use key "").
type State = BTreeMap<String, Value>;

fn get(state: &State, key: &str, initial: &Value) -> Value {
    state.get(key).cloned().unwrap_or_else(|| initial.clone())
}

/// Independent sequential specification. `None`: the op cannot take effect.
/// `nil_any`: Knossos's reading of an `ok` read that returned nil (value unknown).
fn spec_step(
    kind: ModelKind,
    initial: &Value,
    nil_any: bool,
    state: &State,
    op: &Op,
) -> Option<State> {
    let key = op.key.clone().unwrap_or_default();
    let cur = get(state, &key, initial);
    let observed = op.outcome == Outcome::Ok;
    let mut next = state.clone();
    let set = |next: &mut State, v: Value| {
        next.insert(key.clone(), v);
    };
    match (kind, op.f.as_str()) {
        (ModelKind::Mutex, "acquire") => {
            if cur == Value::Bool(true) {
                return None;
            }
            set(&mut next, Value::Bool(true));
        }
        (ModelKind::Mutex, "release") => {
            if cur != Value::Bool(true) {
                return None;
            }
            set(&mut next, Value::Bool(false));
        }
        (_, "read" | "get") => {
            if observed && op.output != cur && !(nil_any && op.output.is_null()) {
                return None;
            }
        }
        (_, "write" | "put") => set(&mut next, op.value.clone()),
        (_, "cas") if op.outcome == Outcome::Fail => {
            // Only reached with Porcupine's reading: the cas saw a value other than `from`.
            let l = op.value.as_list()?;
            if l[0] == cur {
                return None;
            }
        }
        (_, "cas") => {
            let l = op.value.as_list()?;
            if l[0] != cur {
                return None;
            }
            set(&mut next, l[1].clone());
        }
        (ModelKind::Kv, "append") => {
            let prefix = match &cur {
                Value::Null => String::new(),
                Value::Str(s) => s.clone(),
                _ => return None,
            };
            set(&mut next, Value::Str(prefix + op.value.as_str()?));
        }
        _ => return None,
    }
    Some(next)
}

fn oracle(kind: ModelKind, initial: &Value, ops: &[Op]) -> bool {
    oracle_with(kind, initial, ops, false, false)
}

/// `fail_observed`: Porcupine's reading of a failed cas (cas-register only): it took
/// effect between its invoke and its completion, saw a value other than `from`, and
/// changed nothing. Otherwise `fail` ops did not happen.
fn oracle_with(
    kind: ModelKind,
    initial: &Value,
    ops: &[Op],
    fail_observed: bool,
    nil_any: bool,
) -> bool {
    let happened = |o: &Op| {
        o.outcome == Outcome::Ok || (fail_observed && o.outcome == Outcome::Fail && o.f == "cas")
    };
    let ops: Vec<&Op> = ops
        .iter()
        .filter(|o| o.outcome != Outcome::Fail || happened(o))
        .collect();
    let end = |o: &Op| {
        if happened(o) {
            o.complete.unwrap_or(usize::MAX)
        } else {
            usize::MAX
        }
    };
    let info: Vec<usize> = (0..ops.len()).filter(|&i| !happened(ops[i])).collect();
    let mut initial_state = State::new();
    if kind == ModelKind::Mutex {
        initial_state.insert(String::new(), Value::Bool(false));
    }
    for subset in 0u32..(1 << info.len()) {
        let chosen: Vec<usize> = (0..ops.len())
            .filter(|i| match info.iter().position(|x| x == i) {
                Some(bit) => subset & (1 << bit) != 0,
                None => true,
            })
            .collect();
        let mut placed = vec![false; ops.len()];
        if orders(
            &Object {
                kind,
                initial,
                nil_any,
            },
            &ops,
            &chosen,
            &mut placed,
            &initial_state,
            &end,
        ) {
            return true;
        }
    }
    false
}

/// The object the oracle checks against: a model, its initial value, and how it reads
/// nil reads (see `spec_step`).
struct Object<'a> {
    kind: ModelKind,
    initial: &'a Value,
    nil_any: bool,
}

/// Whether some real-time-respecting order of the unplaced `chosen` ops is legal.
fn orders(
    obj: &Object<'_>,
    ops: &[&Op],
    chosen: &[usize],
    placed: &mut Vec<bool>,
    state: &State,
    end: &dyn Fn(&Op) -> usize,
) -> bool {
    if chosen.iter().all(|&i| placed[i]) {
        return true;
    }
    for &i in chosen {
        if placed[i] {
            continue;
        }
        // Every unplaced chosen op that completed before `i` was invoked must go first.
        let blocked = chosen
            .iter()
            .any(|&j| j != i && !placed[j] && end(ops[j]) < ops[i].invoke);
        if blocked {
            continue;
        }
        if let Some(next) = spec_step(obj.kind, obj.initial, obj.nil_any, state, ops[i]) {
            placed[i] = true;
            let ok = orders(obj, ops, chosen, placed, &next, end);
            placed[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}

/// `PROPTEST_CASES` when set (for long runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------
// Random small histories.

/// One op as the strategy draws it: (process, f, key, value, completion, output).
#[derive(Clone, Debug)]
struct Drawn {
    f: &'static str,
    key: Option<String>,
    value: Value,
    /// 0 ok, 1 fail, 2 info, 3 never completes.
    end: u8,
    output: Value,
}

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), (0i64..3).prop_map(Value::Int)]
}

fn small_str() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from("")),
        Just(Value::from("x")),
        Just(Value::from("y")),
        Just(Value::from("xy")),
        Just(Value::from("yx")),
    ]
}

fn end_kind() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)]
}

fn drawn_op(kind: ModelKind) -> BoxedStrategy<Drawn> {
    let mk = |f: &'static str, key: Option<String>, value: Value, end: u8, output: Value| Drawn {
        f,
        key,
        value,
        end,
        output,
    };
    match kind {
        ModelKind::Register | ModelKind::CasRegister => {
            let cas = kind == ModelKind::CasRegister;
            (
                0..if cas { 3 } else { 2 },
                small_value(),
                small_value(),
                end_kind(),
                small_value(),
            )
                .prop_map(move |(f, a, b, end, out)| match f {
                    0 => mk("read", None, Value::Null, end, out),
                    1 => {
                        let v = if a.is_null() { Value::Int(0) } else { a };
                        mk("write", None, v.clone(), end, v)
                    }
                    _ => {
                        let v = Value::List(vec![a, b]);
                        mk("cas", None, v.clone(), end, v)
                    }
                })
                .boxed()
        }
        ModelKind::Kv => (
            0..4,
            prop_oneof![Just("a"), Just("b")],
            small_str(),
            small_str(),
            end_kind(),
            small_str(),
        )
            .prop_map(move |(f, k, a, b, end, out)| {
                let key = Some(k.to_string());
                match f {
                    0 => mk("get", key, Value::Null, end, out),
                    1 => mk("put", key, a.clone(), end, a),
                    2 => {
                        let s = Value::from(if a.as_str() == Some("") { "x" } else { "y" });
                        mk("append", key, s.clone(), end, s)
                    }
                    _ => {
                        let v = Value::List(vec![a, b]);
                        mk("cas", key, v.clone(), end, v)
                    }
                }
            })
            .boxed(),
        ModelKind::Mutex => (0..2, end_kind())
            .prop_map(move |(f, end)| {
                let f = if f == 0 { "acquire" } else { "release" };
                mk(f, None, Value::Null, end, Value::Null)
            })
            .boxed(),
    }
}

/// Interleaves drawn ops over `procs` processes: `schedule` picks which process acts
/// next (invoke its next op, or complete its open one).
fn interleave(ops: &[Drawn], procs: usize, schedule: &[usize]) -> History {
    let mut events = Vec::new();
    let mut queue: Vec<Vec<&Drawn>> = vec![Vec::new(); procs];
    for (i, op) in ops.iter().enumerate() {
        queue[i % procs].push(op);
    }
    let mut open: Vec<Option<&Drawn>> = vec![None; procs];
    let mut pid: Vec<u64> = (0..procs as u64).collect();
    let mut next_pid = procs as u64;
    let mut pick = schedule.iter().cycle();
    let ev = |p: u64, kind, d: &Drawn, v: Value| {
        let mut e = Event::new(Process::Client(p), kind, d.f, v);
        e.key = d.key.clone();
        e
    };
    loop {
        let live: Vec<usize> = (0..procs)
            .filter(|&p| {
                open[p].is_some_and(|d| d.end != 3) || !queue[p].is_empty() && open[p].is_none()
            })
            .collect();
        if live.is_empty() {
            break;
        }
        let p = live[pick.next().copied().unwrap_or(0) % live.len()];
        match open[p].take() {
            None => {
                let d = queue[p].remove(0);
                events.push(ev(pid[p], EventType::Invoke, d, d.value.clone()));
                open[p] = Some(d);
            }
            Some(d) => {
                let (kind, v) = match d.end {
                    0 => (EventType::Ok, d.output.clone()),
                    1 => (EventType::Fail, d.value.clone()),
                    _ => (EventType::Info, d.value.clone()),
                };
                events.push(ev(pid[p], kind, d, v));
                if kind == EventType::Info {
                    pid[p] = next_pid;
                    next_pid += 1;
                }
            }
        }
        // A process whose op never completes stops; its queue is dropped.
        if open[p].is_some_and(|d| d.end == 3) {
            queue[p].clear();
        }
    }
    History::from_events(events)
}

fn history_strategy(kind: ModelKind) -> impl Strategy<Value = History> {
    (
        prop::collection::vec(drawn_op(kind), 1..=8),
        1usize..=3,
        prop::collection::vec(0usize..6, 4..24),
    )
        .prop_map(|(ops, procs, schedule)| interleave(&ops, procs, &schedule))
}

fn spec(kind: ModelKind) -> (ModelSpec, Value) {
    let initial = if kind == ModelKind::Kv {
        Value::from("")
    } else {
        Value::Null
    };
    (ModelSpec::new(kind).with_initial(initial.clone()), initial)
}

fn agrees(kind: ModelKind, history: &History) -> Result<(), TestCaseError> {
    let (spec, initial) = spec(kind);
    let ops = history.ops().expect("generated histories pair");
    let expected = oracle(kind, &initial, &ops);
    let got = check(history, &spec, &Limits::default()).expect("checks");
    prop_assert!(
        !got.verdict.is_unknown(),
        "no limits, yet unknown: {}",
        got.verdict
    );
    prop_assert_eq!(
        got.verdict.is_valid(),
        expected,
        "model {}, ops:\n{}\nsearch said {}",
        kind,
        ops.iter()
            .map(|o| format!("  {o} [{}..{:?}]", o.invoke, o.complete))
            .collect::<Vec<_>>()
            .join("\n"),
        got.verdict
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn register_matches_oracle(h in history_strategy(ModelKind::Register)) {
        agrees(ModelKind::Register, &h)?;
    }

    #[test]
    fn cas_register_matches_oracle(h in history_strategy(ModelKind::CasRegister)) {
        agrees(ModelKind::CasRegister, &h)?;
    }

    #[test]
    fn cas_register_with_failed_cas_observed_matches_oracle(
        h in history_strategy(ModelKind::CasRegister)
    ) {
        let ops = h.ops().expect("generated histories pair");
        let expected = oracle_with(ModelKind::CasRegister, &Value::Null, &ops, true, false);
        let mut spec = ModelSpec::new(ModelKind::CasRegister);
        spec.cas_fail_observed = true;
        let got = check(&h, &spec, &Limits::default()).expect("checks");
        prop_assert!(!got.verdict.is_unknown(), "no limits, yet unknown: {}", got.verdict);
        prop_assert_eq!(
            got.verdict.is_valid(),
            expected,
            "ops:\n{}\nsearch said {}",
            ops.iter()
                .map(|o| format!("  {o} [{}..{:?}]", o.invoke, o.complete))
                .collect::<Vec<_>>()
                .join("\n"),
            got.verdict
        );
    }

    /// Knossos's reading of nil reads (register and cas-register draw nil outputs).
    #[test]
    fn knossos_nil_reads_match_oracle(
        (kind, h) in prop_oneof![Just(ModelKind::Register), Just(ModelKind::CasRegister)]
            .prop_flat_map(|k| (Just(k), history_strategy(k)))
    ) {
        let (mut spec, initial) = spec(kind);
        spec.nil_read_any = true;
        let ops = h.ops().expect("generated histories pair");
        let expected = oracle_with(kind, &initial, &ops, false, true);
        let got = check(&h, &spec, &Limits::default()).expect("checks");
        prop_assert!(!got.verdict.is_unknown(), "no limits, yet unknown: {}", got.verdict);
        prop_assert_eq!(
            got.verdict.is_valid(),
            expected,
            "model {} with nil reads unknown, ops:\n{}\nsearch said {}",
            kind,
            ops.iter()
                .map(|o| format!("  {o} [{}..{:?}]", o.invoke, o.complete))
                .collect::<Vec<_>>()
                .join("\n"),
            got.verdict
        );
    }

    #[test]
    fn kv_matches_oracle(h in history_strategy(ModelKind::Kv)) {
        agrees(ModelKind::Kv, &h)?;
    }

    #[test]
    fn mutex_matches_oracle(h in history_strategy(ModelKind::Mutex)) {
        agrees(ModelKind::Mutex, &h)?;
    }
}

// ---------------------------------------------------------------------------------
// Histories from a real sequential store.

fn generated(ops: usize, keys: usize, clients: usize, info_pct: u32, seed: u64) -> History {
    kv_history(&GenConfig {
        ops,
        keys,
        clients,
        info_rate: f64::from(info_pct) / 100.0,
        seed,
    })
}

/// Replaces the output of the `nth` ok read (mod their count) by `value`.
fn corrupt_read(history: &History, nth: usize, value: i64) -> Option<History> {
    let mut h = history.clone();
    let ops = h.ops().ok()?;
    let reads: Vec<&Op> = ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        .collect();
    let target = reads.get(nth % reads.len().max(1))?;
    let complete = target.complete?;
    let new = Value::Int(value);
    if h.events[complete].value == new {
        return None;
    }
    h.events[complete].value = new;
    Some(h)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    /// Real executions with random overlap are always linearizable.
    #[test]
    fn sequential_store_histories_are_valid(
        ops in 1usize..400, keys in 1usize..4, clients in 1usize..12,
        info_pct in 0u32..20, seed in any::<u64>(),
    ) {
        let h = generated(ops, keys, clients, info_pct, seed);
        let got = check(&h, &ModelSpec::new(ModelKind::Kv), &Limits::default()).unwrap();
        prop_assert!(got.verdict.is_valid(), "{}", got.verdict);
        // A single key's history is a cas-register history too.
        if keys == 1 {
            let no_keys = History::from_events(
                h.events.iter().cloned().map(|mut e| { e.key = None; e }).collect(),
            );
            let got = check(&no_keys, &ModelSpec::new(ModelKind::CasRegister), &Limits::default())
                .unwrap();
            prop_assert!(got.verdict.is_valid(), "{}", got.verdict);
        }
    }

    /// One corrupted read: invalid exactly when the oracle says so.
    #[test]
    fn corrupted_read_matches_oracle(
        ops in 2usize..9, clients in 1usize..4, info_pct in 0u32..30,
        seed in any::<u64>(), nth in any::<usize>(), value in 0i64..8,
    ) {
        let h = generated(ops, 1, clients, info_pct, seed);
        if let Some(bad) = corrupt_read(&h, nth, value) {
            agrees(ModelKind::Kv, &bad)?;
            let no_keys = History::from_events(
                bad.events.iter().cloned().map(|mut e| { e.key = None; e }).collect(),
            );
            agrees(ModelKind::CasRegister, &no_keys)?;
        }
    }

    /// A corrupted read in a long history is found (a read of a value never written
    /// cannot be linearized anywhere).
    #[test]
    fn read_of_unwritten_value_is_invalid(
        ops in 20usize..400, clients in 1usize..8, seed in any::<u64>(), nth in any::<usize>(),
    ) {
        let h = generated(ops, 2, clients, 1, seed);
        if let Some(bad) = corrupt_read(&h, nth, -1) {
            let got = check(&bad, &ModelSpec::new(ModelKind::Kv), &Limits::default()).unwrap();
            prop_assert!(got.verdict.is_invalid(), "{}", got.verdict);
            if let faultline_checker::Verdict::Invalid(cex) = &got.verdict {
                prop_assert!(cex.failed.output == Value::Int(-1)
                    || cex.pending.iter().any(|o| o.output == Value::Int(-1)),
                    "counterexample does not name the corrupted read: {}", cex);
            }
        }
    }

    /// Tiny limits give `unknown` or the right verdict, never the wrong one.
    #[test]
    fn limits_never_give_a_wrong_verdict(
        ops in 1000usize..20_000, seed in any::<u64>(), corrupt in any::<bool>(),
        timeout_us in 0u64..2000, memory in prop_oneof![Just(None), (0u64..200_000).prop_map(Some)],
    ) {
        let h = generated(ops, 3, 20, 1, seed);
        let (h, expect_valid) = match corrupt.then(|| corrupt_read(&h, seed as usize, -1)).flatten() {
            Some(bad) => (bad, false),
            None => (h, true),
        };
        let limits = Limits {
            timeout: Some(Duration::from_micros(timeout_us)),
            max_memory_bytes: memory,
            ..Limits::default()
        };
        let got = check(&h, &ModelSpec::new(ModelKind::Kv), &limits).unwrap();
        match &got.verdict {
            faultline_checker::Verdict::Unknown { limit } => {
                prop_assert!(limit.starts_with("timeout") || limit.starts_with("max-memory"), "{}", limit);
            }
            v => prop_assert_eq!(v.is_valid(), expect_valid, "{}", v),
        }
    }
}

#[test]
fn tiny_limits_name_the_limit() {
    let h = generated(200_000, 10, 40, 1, 3);
    let spec = ModelSpec::new(ModelKind::Kv);
    let timeout = Limits {
        timeout: Some(Duration::from_nanos(1)),
        ..Limits::default()
    };
    let got = check(&h, &spec, &timeout).unwrap();
    assert!(got.verdict.is_unknown());
    assert!(
        matches!(&got.verdict, faultline_checker::Verdict::Unknown { limit } if limit == "timeout 1ns"),
        "{}",
        got.verdict
    );
    let memory = Limits {
        max_memory_bytes: Some(1 << 10),
        ..Limits::default()
    };
    let got = check(&h, &spec, &memory).unwrap();
    assert!(
        matches!(&got.verdict, faultline_checker::Verdict::Unknown { limit } if limit == "max-memory 1KiB"),
        "{}",
        got.verdict
    );
    let cancel = Limits {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..Limits::default()
    };
    let got = check(&h, &spec, &cancel).unwrap();
    assert!(
        matches!(&got.verdict, faultline_checker::Verdict::Unknown { limit } if limit == "cancelled"),
        "{}",
        got.verdict
    );
    // And without limits the same history is valid.
    assert!(check(&h, &spec, &Limits::default())
        .unwrap()
        .verdict
        .is_valid());
}

// ---------------------------------------------------------------------------------
// Cuts: the search forgets what is behind each cut and goes on from the configurations
// reachable there. Any cut spacing must give the verdict of the oracle and of the search
// in one segment.

/// `check` with a cut every `every` timeline entries.
fn check_cut(history: &History, spec: &ModelSpec, every: usize) -> faultline_checker::CheckResult {
    let limits = Limits {
        segment_entries: Some(every),
        ..Limits::default()
    };
    check(history, spec, &limits).expect("checks")
}

fn agrees_cut(kind: ModelKind, history: &History, every: usize) -> Result<(), TestCaseError> {
    let (spec, initial) = spec(kind);
    let ops = history.ops().expect("generated histories pair");
    let expected = oracle(kind, &initial, &ops);
    let got = check_cut(history, &spec, every);
    prop_assert!(
        !got.verdict.is_unknown(),
        "no limits, yet unknown: {}",
        got.verdict
    );
    prop_assert_eq!(
        got.verdict.is_valid(),
        expected,
        "model {}, a cut every {} entries, ops:\n{}\nsearch said {}",
        kind,
        every,
        ops.iter()
            .map(|o| format!("  {o} [{}..{:?}]", o.invoke, o.complete))
            .collect::<Vec<_>>()
            .join("\n"),
        got.verdict
    );
    Ok(())
}

/// Longer small histories than `history_strategy`'s, with more processes, so that cuts
/// fall between overlapping ops and `info` ops stay open across several cuts.
fn long_history_strategy(kind: ModelKind) -> impl Strategy<Value = History> {
    (
        prop::collection::vec(drawn_op(kind), 4..=10),
        2usize..=4,
        prop::collection::vec(0usize..8, 4..32),
    )
        .prop_map(|(ops, procs, schedule)| interleave(&ops, procs, &schedule))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), ..ProptestConfig::default() })]

    #[test]
    fn register_with_cuts_matches_oracle(
        h in long_history_strategy(ModelKind::Register), every in 1usize..8,
    ) {
        agrees_cut(ModelKind::Register, &h, every)?;
    }

    #[test]
    fn cas_register_with_cuts_matches_oracle(
        h in long_history_strategy(ModelKind::CasRegister), every in 1usize..8,
    ) {
        agrees_cut(ModelKind::CasRegister, &h, every)?;
    }

    #[test]
    fn kv_with_cuts_matches_oracle(
        h in long_history_strategy(ModelKind::Kv), every in 1usize..8,
    ) {
        agrees_cut(ModelKind::Kv, &h, every)?;
    }

    #[test]
    fn mutex_with_cuts_matches_oracle(
        h in long_history_strategy(ModelKind::Mutex), every in 1usize..8,
    ) {
        agrees_cut(ModelKind::Mutex, &h, every)?;
    }

    /// Corrupted reads among many `info` ops (whose effects stay open across cuts):
    /// the verdict with cuts equals the oracle's.
    #[test]
    fn corrupted_read_with_cuts_matches_oracle(
        ops in 4usize..10, clients in 2usize..5, info_pct in 10u32..50,
        seed in any::<u64>(), nth in any::<usize>(), value in 0i64..8, every in 1usize..6,
    ) {
        let h = generated(ops, 1, clients, info_pct, seed);
        let h = corrupt_read(&h, nth, value).unwrap_or(h);
        let no_keys = History::from_events(
            h.events.iter().cloned().map(|mut e| { e.key = None; e }).collect(),
        );
        agrees_cut(ModelKind::CasRegister, &no_keys, every)?;
        agrees_cut(ModelKind::Kv, &h, every)?;
    }

    /// Long histories, too long for the oracle: any cut spacing agrees with the search in
    /// one segment, valid or not, and an `invalid` names the corrupted read.
    #[test]
    fn cuts_agree_with_one_segment_on_long_histories(
        ops in 50usize..1500, clients in 1usize..24, info_pct in 0u32..25,
        seed in any::<u64>(), corrupt in any::<bool>(), every in 2usize..200,
    ) {
        let h = generated(ops, 1, clients, info_pct, seed);
        let h = if corrupt { corrupt_read(&h, seed as usize, -1).unwrap_or(h) } else { h };
        let spec = ModelSpec::new(ModelKind::Kv);
        let whole = check(&h, &spec, &Limits::default()).unwrap();
        let cut = check_cut(&h, &spec, every);
        prop_assert_eq!(whole.verdict.name(), cut.verdict.name(), "{}", cut.verdict);
        if let faultline_checker::Verdict::Invalid(cex) = &cut.verdict {
            prop_assert!(cex.failed.output == Value::Int(-1)
                || cex.pending.iter().any(|o| o.output == Value::Int(-1)),
                "counterexample does not name the corrupted read: {}", cex);
        }
        if ops * 2 > every * 2 && whole.verdict.is_valid() {
            prop_assert!(cut.stats.segments > 1, "{:?}", cut.stats);
        }
    }
}

// ---------------------------------------------------------------------------------
// Forgetting: the search drops memo entries far behind it once the memo is big. The memo
// only prunes, so forgetting may cost time but never changes a verdict.

/// `check` forgetting everything more than `behind_ops` ops behind, at every chance.
fn check_forgetting(
    history: &History,
    spec: &ModelSpec,
    behind_ops: usize,
) -> faultline_checker::CheckResult {
    let limits = Limits {
        forget: Some(Forget {
            beyond_bytes: 0,
            behind_ops,
        }),
        ..Limits::default()
    };
    check(history, spec, &limits).expect("checks")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    /// Long histories with many `info` ops (whose placements the memo numbers apart):
    /// forgetting at every chance gives the verdict of remembering everything.
    #[test]
    fn forgetting_agrees_with_remembering_on_long_histories(
        ops in 200usize..1500, clients in 4usize..24, info_pct in 0u32..25,
        seed in any::<u64>(), corrupt in any::<bool>(), behind_ops in 0usize..300,
    ) {
        let h = generated(ops, 1, clients, info_pct, seed);
        let h = if corrupt { corrupt_read(&h, seed as usize, -1).unwrap_or(h) } else { h };
        let spec = ModelSpec::new(ModelKind::Kv);
        let whole = check(&h, &spec, &Limits::default()).unwrap();
        let forgetting = check_forgetting(&h, &spec, behind_ops);
        prop_assert_eq!(whole.verdict.name(), forgetting.verdict.name(), "{}", forgetting.verdict);
    }
}

/// The same on fixed histories long enough that entries are forgotten, which the proptest
/// cannot promise of every case it draws.
#[test]
fn forgetting_happens_and_changes_no_verdict() {
    let spec = ModelSpec::new(ModelKind::Kv);
    for (seed, corrupt) in [(1, false), (2, true), (3, false), (4, true)] {
        let h = generated(3000, 1, 20, 5, seed);
        let h = if corrupt {
            corrupt_read(&h, 2500, -1).expect("a read to corrupt")
        } else {
            h
        };
        let whole = check(&h, &spec, &Limits::default()).unwrap();
        let forgetting = check_forgetting(&h, &spec, 64);
        assert_eq!(
            whole.verdict.name(),
            forgetting.verdict.name(),
            "seed {seed}"
        );
        assert_eq!(
            whole.verdict.is_valid(),
            !corrupt,
            "seed {seed}: {}",
            whole.verdict
        );
        assert_eq!(whole.stats.memo_forgotten, 0);
        assert!(
            forgetting.stats.memo_forgotten > 0,
            "seed {seed}: {:?}",
            forgetting.stats
        );
    }
}
