//! Model checking of the real Raft core with stateright (`raftkv::model`): the correct
//! core passes exhaustive search to stated bounds, and each protocol-level planted bug
//! is found with a counterexample trace. Runs in release mode in well under 3 minutes
//! on 2 cores (`cargo test --release -p raftkv --test model_check -- --nocapture` prints
//! the numbers and the traces).

use raftkv::model::{
    check, check_model, Action, CheckReport, ClientOp, ModelOptions, RaftModel, Strategy,
    ELECTION_SAFETY, FENCING, LEADER_COMPLETENESS, LINEARIZABLE, LOG_MATCHING,
    STATE_MACHINE_SAFETY,
};
use raftkv::raft::{Bug, NodeId, Term};

fn print(name: &str, r: &CheckReport) {
    eprintln!(
        "{name}: {} states ({} unique), depth {}, {:.2} s, violations: {:?}",
        r.states,
        r.unique_states,
        r.max_depth,
        r.elapsed.as_secs_f64(),
        r.violations.iter().map(|c| c.property).collect::<Vec<_>>()
    );
}

/// The first violation among `expected`, printed; panics (loudly) if none was found.
fn expect_violation(name: &str, r: &CheckReport, expected: &[&str]) {
    print(name, r);
    let cex = r
        .violations
        .iter()
        .find(|c| expected.contains(&c.property))
        .unwrap_or_else(|| {
            panic!(
                "{name}: no violation of {expected:?} found ({} states explored, found {:?})",
                r.unique_states,
                r.violations.iter().map(|c| c.property).collect::<Vec<_>>()
            )
        });
    assert!(cex.steps > 0, "{name}: a counterexample has steps");
    assert!(
        cex.trace.last().is_some_and(|l| l.contains("VIOLATED")),
        "{name}: the trace ends at the violation"
    );
    eprintln!("counterexample ({} steps):", cex.steps);
    for line in &cex.trace {
        eprintln!("{line}");
    }
}

fn with_bug(mut o: ModelOptions, bug: Bug) -> ModelOptions {
    o.bugs.insert(bug);
    o
}

// ----- the correct core ------------------------------------------------------------

/// Exhaustive BFS of a 3-node cluster with the server's configuration (check-quorum on),
/// a lossy reordering network, one crash + restart, a writer and a reader.
#[test]
fn correct_core_passes_bfs_to_depth_8() {
    let opts = ModelOptions {
        max_depth: 8,
        threads: 2,
        ..ModelOptions::default()
    };
    let r = check(&opts);
    print("correct core, BFS depth 8", &r);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.complete);
    assert!(r.unique_states > 50_000, "explored the space");
}

/// DFS with client symmetry (two identical readers), duplicating network, pre-vote on.
#[test]
fn correct_core_passes_dfs_with_symmetry_and_duplication() {
    let base = ModelOptions {
        clients: vec![
            vec![ClientOp::Write],
            vec![ClientOp::Read],
            vec![ClientOp::Read],
        ],
        pre_vote: true,
        duplicating: true,
        max_crashes: 0,
        max_timeouts: 3,
        max_depth: 9,
        strategy: Strategy::Dfs,
        // One thread: with a depth bound, which states DFS visits depends on order.
        threads: 1,
        ..ModelOptions::default()
    };
    let plain = check(&base);
    print("correct core, DFS depth 9, no symmetry", &plain);
    let sym = check(&ModelOptions {
        symmetry: true,
        ..base.clone()
    });
    print("correct core, DFS depth 9, client symmetry", &sym);
    assert!(plain.violations.is_empty(), "{:?}", plain.violations);
    assert!(sym.violations.is_empty(), "{:?}", sym.violations);
    assert!(
        sym.unique_states < plain.unique_states,
        "symmetry reduces the states ({} vs {})",
        sym.unique_states,
        plain.unique_states
    );
}

// ----- planted bugs found by exhaustive search from the initial state -------------------

/// Options for the bug hunts: the shortest elections (no check-quorum, no pre-vote),
/// per-link FIFO delivery (the server's transport), no crashes unless needed.
fn hunt() -> ModelOptions {
    ModelOptions {
        check_quorum: false,
        fifo: true,
        max_crashes: 0,
        max_in_flight: 8,
        max_term: 4,
        max_timeouts: 4,
        threads: 2,
        stop_at_first_violation: true,
        ..ModelOptions::default()
    }
}

/// DFS on the server's configuration (check-quorum on, lossy reordering network, one
/// crash): a follower that has not applied a committed write serves the old value.
/// The correct core passes these options to depth 8 (`correct_core_passes_bfs_to_depth_8`).
#[test]
fn stale_read_is_found() {
    let opts = with_bug(
        ModelOptions {
            max_term: 3,
            max_timeouts: 5,
            strategy: Strategy::Dfs,
            threads: 1,
            stop_at_first_violation: true,
            ..ModelOptions::default()
        },
        Bug::StaleRead,
    );
    let r = check(&opts);
    expect_violation("stale-read", &r, &[LINEARIZABLE]);
}

#[test]
fn lost_ack_is_found() {
    let opts = with_bug(
        ModelOptions {
            max_depth: 10,
            ..hunt()
        },
        Bug::LostAck,
    );
    let r = check(&opts);
    expect_violation("lost-ack", &r, &[STATE_MACHINE_SAFETY, LINEARIZABLE]);
    let ok = check(&ModelOptions {
        max_depth: 6,
        stop_at_first_violation: false,
        ..hunt()
    });
    print("lost-ack bounds, correct core", &ok);
    assert!(ok.violations.is_empty(), "{:?}", ok.violations);
}

// ----- deep bugs: a replayed prefix, then exhaustive search -----------------------------

type Pick = Box<dyn Fn(&Action) -> bool>;

fn timeout(n: NodeId) -> Pick {
    Box::new(move |a| *a == Action::Timeout(n))
}
fn deliver(from: NodeId, to: NodeId, term: Term) -> Pick {
    Box::new(
        move |a| matches!(a, Action::Deliver(m) if m.from == from && m.to == to && m.term == term),
    )
}
fn drop_msg(from: NodeId, to: NodeId, term: Term) -> Pick {
    Box::new(
        move |a| matches!(a, Action::Drop(m) if m.from == from && m.to == to && m.term == term),
    )
}
fn deliver_kind(from: NodeId, to: NodeId, kind: &'static str) -> Pick {
    Box::new(
        move |a| matches!(a, Action::Deliver(m) if m.from == from && m.to == to && m.body.kind() == kind),
    )
}
fn invoke(client: usize, node: NodeId) -> Pick {
    Box::new(move |a| *a == Action::Invoke { client, node })
}
fn crash(n: NodeId) -> Pick {
    Box::new(move |a| *a == Action::Crash(n))
}
fn restart(n: NodeId) -> Pick {
    Box::new(move |a| *a == Action::Restart(n))
}

/// Replay `prefix`, then search exhaustively from where it ends, with and without `bug`.
fn prefix_then_search(
    name: &str,
    opts: ModelOptions,
    bug: Bug,
    prefix: &[Pick],
    expected: &[&str],
) {
    let buggy = RaftModel::new(with_bug(opts.clone(), bug));
    let picks: Vec<&dyn Fn(&Action) -> bool> = prefix.iter().map(|p| p.as_ref()).collect();
    let steps = buggy
        .replay(&picks)
        .unwrap_or_else(|k| panic!("{name}: prefix step {k} not enabled"));
    let start = steps.last().expect("non-empty prefix").1.clone();
    eprintln!("{name}: prefix of {} steps:", steps.len());
    for (k, (a, _)) in steps.iter().enumerate() {
        eprintln!(
            "  {}. {}",
            k + 1,
            stateright::Model::format_action(&buggy, a)
        );
    }
    for n in &start.nodes {
        eprintln!("     {}", raftkv::model::describe_node(n));
    }
    let r = check_model(RaftModel {
        start: Some(start),
        ..buggy
    });
    expect_violation(name, &r, expected);
    // The correct core, same prefix (replayed on the correct core), same bounds.
    let correct = RaftModel::new(opts);
    let steps = correct
        .replay(&picks)
        .unwrap_or_else(|k| panic!("{name}: prefix step {k} not enabled on the correct core"));
    let start = steps.last().expect("non-empty prefix").1.clone();
    let ok = check_model(RaftModel {
        start: Some(start),
        opts: ModelOptions {
            stop_at_first_violation: false,
            ..correct.opts.clone()
        },
        ..correct
    });
    print(&format!("{name} prefix and bounds, correct core"), &ok);
    assert!(ok.violations.is_empty(), "{:?}", ok.violations);
}

/// Raft's Figure 8 on three nodes: n1 leads term 1 and keeps an entry nobody else has;
/// n2 leads term 2 with its own entry at index 1; n1 wins term 3 with n3's vote and
/// copies its term-1 entry to n3 (with the bug, counting replicas commits it). From
/// there the search finds the rest: n2 learns a newer term, wins term 4 with n3's vote
/// (its last term, 2, beats n3's 1) and lacks the committed entry.
#[test]
fn old_term_commit_is_found() {
    let opts = ModelOptions {
        clients: vec![],
        max_log: 2,
        max_timeouts: 4,
        max_depth: 7,
        ..hunt()
    };
    let prefix = vec![
        timeout(1),
        deliver(1, 2, 1),
        deliver(2, 1, 1), // n1 leads term 1: [1:t1]
        drop_msg(1, 3, 1),
        drop_msg(1, 3, 1), // n3 hears nothing of term 1
        drop_msg(1, 2, 1),
        timeout(2),
        deliver(2, 3, 2),
        deliver(3, 2, 2), // n2 leads term 2: [1:t2]
        deliver(2, 1, 2), // n1 learns term 2 (refuses the vote: its log is newer)
        timeout(1),
        deliver(1, 3, 3),
        deliver(3, 1, 3), // n1 leads term 3: [1:t1 2:t3]
        deliver(1, 3, 3), // append(prev 1/t1, [2:t3]): n3 rejects
        deliver(3, 1, 3),
        deliver(1, 3, 3), // append(prev 0, [1:t1]): n3 stores the term-1 entry
        deliver(3, 1, 3), // a majority holds 1:t1 (only the bug commits it)
    ];
    prefix_then_search(
        "old-term-commit",
        opts,
        Bug::OldTermCommit,
        &prefix,
        &[LEADER_COMPLETENESS, STATE_MACHINE_SAFETY, LOG_MATCHING],
    );
}

/// token-reuse lives in the node runtime (the leader's in-memory token counter) and the
/// state machine; the model runs the real `kv::StateMachine` and mirrors node.rs's
/// counter. Prefix: n1 leads term 1 and grants a lock (token 1, acknowledged), crashes,
/// restarts (its counter starts again at 0) and wins term 2. The search finds a second
/// grant of token 1.
#[test]
fn token_reuse_is_found() {
    let opts = ModelOptions {
        clients: vec![vec![ClientOp::Acquire], vec![ClientOp::Acquire]],
        max_crashes: 1,
        max_log: 4,
        max_depth: 5,
        ..hunt()
    };
    let prefix = vec![
        timeout(1),
        deliver(1, 2, 1),
        deliver(2, 1, 1), // n1 leads term 1
        deliver_kind(1, 2, "append"),
        deliver_kind(2, 1, "append-resp"), // no-op committed
        invoke(0, 1),
        deliver_kind(1, 2, "append"),
        deliver_kind(2, 1, "append-resp"), // grant committed, applied, acknowledged
        crash(1),
        restart(1),
        timeout(1),
        deliver_kind(1, 2, "request-vote"),
        deliver_kind(2, 1, "request-vote-resp"), // n1 leads term 2
    ];
    prefix_then_search("token-reuse", opts, Bug::TokenReuse, &prefix, &[FENCING]);
}

/// Election safety is checked too: a sanity check that the property fires on a state
/// that breaks it (the checker would otherwise never be seen failing on it).
#[test]
fn election_safety_property_detects_two_leaders() {
    let model = RaftModel::new(ModelOptions::default());
    let mut s = stateright::Model::init_states(&model).remove(0);
    assert!(RaftModel::election_safe(&s));
    s.ghost.leaders.insert((1, 1));
    s.ghost.leaders.insert((1, 2));
    assert!(!RaftModel::election_safe(&s));
    let props: Vec<&str> = stateright::Model::properties(&model)
        .iter()
        .map(|p| p.name)
        .collect();
    assert!(props.contains(&ELECTION_SAFETY));
}
