//! A second, independent oracle for the linearizability search: stateright's
//! `LinearizabilityTester` (an exhaustive interleaving search written by other people).
//! On random small register histories, our verdict and stateright's must agree.
//!
//! Translation: `ok` ops are invoked and returned; `info` ops and ops that never
//! complete stay in flight in stateright (it lets them take effect or not, as we do);
//! `fail` ops did not happen, so they are left out of stateright's history entirely (a
//! process may issue again after a failure, and stateright allows one op in flight per
//! thread, which holds since the failed op is dropped). A process that got `info`
//! never issues again; the next op of that client runs as a fresh process (thread).

use faultline_checker::{
    check, Event, EventType, History, Limits, ModelKind, ModelSpec, Process, Value,
};
use proptest::prelude::*;
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

/// One drawn op: a write of `value` (or a read), how it ends, and what a read returned.
#[derive(Clone, Debug)]
struct Drawn {
    write: Option<i64>,
    /// 0 ok, 1 fail, 2 info, 3 never completes.
    end: u8,
    read: Option<i64>,
}

fn drawn() -> impl Strategy<Value = Drawn> {
    (
        any::<bool>(),
        1i64..=2,
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)],
        prop_oneof![Just(None), (1i64..=2).prop_map(Some)],
    )
        .prop_map(|(is_write, v, end, read)| Drawn {
            write: is_write.then_some(v),
            end,
            read,
        })
}

type Tester = LinearizabilityTester<u64, Register<Option<i64>>>;

/// Build the same history for both checkers. `schedule` picks which client acts next
/// (invoke its next op, or complete its open one).
fn build(ops: &[Drawn], clients: usize, schedule: &[usize]) -> (History, Tester) {
    let mut events = Vec::new();
    let mut tester = Tester::new(Register(None));
    let mut queue: Vec<Vec<&Drawn>> = vec![Vec::new(); clients];
    for (i, op) in ops.iter().enumerate() {
        queue[i % clients].push(op);
    }
    let mut open: Vec<Option<&Drawn>> = vec![None; clients];
    let mut pid: Vec<u64> = (0..clients as u64).collect();
    let mut next_pid = clients as u64;
    let mut pick = schedule.iter().cycle();
    let f = |d: &Drawn| if d.write.is_some() { "write" } else { "read" };
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    loop {
        let live: Vec<usize> = (0..clients)
            .filter(|&c| {
                open[c].is_some_and(|d| d.end != 3) || (open[c].is_none() && !queue[c].is_empty())
            })
            .collect();
        if live.is_empty() {
            break;
        }
        let c = live[pick.next().copied().unwrap_or(0) % live.len()];
        match open[c].take() {
            None => {
                let d = queue[c].remove(0);
                events.push(Event::new(
                    Process::Client(pid[c]),
                    EventType::Invoke,
                    f(d),
                    int(d.write),
                ));
                if d.end != 1 {
                    let op = match d.write {
                        Some(v) => RegisterOp::Write(Some(v)),
                        None => RegisterOp::Read,
                    };
                    tester
                        .on_invoke(pid[c], op)
                        .expect("one op in flight per thread");
                }
                open[c] = Some(d);
                if d.end == 3 {
                    queue[c].clear(); // it never completes: the client stops
                }
            }
            Some(d) => {
                let (kind, value) = match d.end {
                    0 => (
                        EventType::Ok,
                        if d.write.is_some() {
                            int(d.write)
                        } else {
                            int(d.read)
                        },
                    ),
                    1 => (EventType::Fail, int(d.write)),
                    _ => (EventType::Info, int(d.write)),
                };
                events.push(Event::new(Process::Client(pid[c]), kind, f(d), value));
                if d.end == 0 {
                    let ret = match d.write {
                        Some(_) => RegisterRet::WriteOk,
                        None => RegisterRet::ReadOk(d.read),
                    };
                    tester.on_return(pid[c], ret).expect("op in flight");
                }
                if d.end == 2 {
                    pid[c] = next_pid;
                    next_pid += 1;
                }
            }
        }
    }
    (History::from_events(events), tester)
}

fn ours(h: &History) -> bool {
    let got = check(h, &ModelSpec::new(ModelKind::Register), &Limits::default()).expect("checks");
    assert!(
        !got.verdict.is_unknown(),
        "no limits, yet unknown: {}",
        got.verdict
    );
    got.verdict.is_valid()
}

fn describe(h: &History) -> String {
    h.ops()
        .expect("pairs")
        .iter()
        .map(|o| format!("  {o} [{}..{:?}]", o.invoke, o.complete))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn faultline_and_stateright_agree_on_register_histories(
        ops in prop::collection::vec(drawn(), 1..=7),
        clients in 1usize..=3,
        schedule in prop::collection::vec(0usize..6, 4..24),
    ) {
        let (h, tester) = build(&ops, clients, &schedule);
        let expected = tester.is_consistent();
        prop_assert_eq!(
            ours(&h),
            expected,
            "stateright says {}; ops:\n{}",
            if expected { "linearizable" } else { "not linearizable" },
            describe(&h)
        );
    }
}

/// Both verdicts occur: a known linearizable and a known non-linearizable history, on
/// which both checkers must agree (guards against a generator that only makes one kind).
#[test]
fn both_verdicts_are_exercised() {
    let w = |v| Drawn {
        write: Some(v),
        end: 0,
        read: None,
    };
    let r = |v| Drawn {
        write: None,
        end: 0,
        read: v,
    };
    // Client 0 writes 1 then client 1 reads: sequential (schedule alternates 0, 0, 1, 1).
    let (h, t) = build(&[w(1), r(Some(1))], 2, &[0, 0, 0, 0]);
    assert!(t.is_consistent());
    assert!(ours(&h), "{}", describe(&h));
    let (h, t) = build(&[w(1), r(None)], 2, &[0, 0, 0, 0]);
    assert!(!t.is_consistent(), "stale read after a completed write");
    assert!(!ours(&h), "{}", describe(&h));
    // An info write may or may not have happened: a later read of either value is fine.
    let info = Drawn {
        write: Some(2),
        end: 2,
        read: None,
    };
    let (h, t) = build(&[info, r(Some(2))], 2, &[0, 0, 0, 0]);
    assert!(t.is_consistent());
    assert!(ours(&h), "{}", describe(&h));
}
