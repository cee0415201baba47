//! Running a check: build the model from `ModelOptions`, explore it (BFS or DFS, with
//! client symmetry reduction if asked), and turn discoveries into readable traces.

use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model, Path, UniformChooser};

use super::options::{ModelOptions, Strategy};
use super::state::{describe_node, HistEvent, SysState};
use super::system::RaftModel;

/// A broken property and the shortest-found (BFS) or first-found (DFS) path to it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    pub property: &'static str,
    /// Numbered steps, each an action followed by the state of every node after it.
    pub trace: Vec<String>,
    pub steps: usize,
}

/// What one run explored and found.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub states: usize,
    pub unique_states: usize,
    /// Longest path explored, in actions.
    pub max_depth: usize,
    pub elapsed: Duration,
    /// True if the whole bounded space was explored (exhaustive strategy, no early stop
    /// on a violation or the time limit).
    pub complete: bool,
    pub violations: Vec<Counterexample>,
}

impl CheckReport {
    pub fn violation(&self, property: &str) -> Option<&Counterexample> {
        self.violations.iter().find(|c| c.property == property)
    }
}

/// Explore the model to the options' bounds.
pub fn check(opts: &ModelOptions) -> CheckReport {
    check_model(RaftModel::new(opts.clone()))
}

/// Explore `model` (which may start from a replayed state) to its options' bounds.
pub fn check_model(model: RaftModel) -> CheckReport {
    let opts = &model.opts.clone();
    let properties: Vec<&'static str> = model.properties().iter().map(|p| p.name).collect();
    let mut b = model.checker().threads(opts.threads.max(1));
    if opts.max_depth > 0 {
        // stateright counts the initial state as depth 1 and does not check states at
        // the target depth: +2 makes every state reached by <= max_depth actions checked.
        b = b.target_max_depth(opts.max_depth + 2);
    }
    if opts.stop_at_first_violation {
        b = b.finish_when(HasDiscoveries::AnyFailures);
    }
    if opts.symmetry && opts.strategy == Strategy::Dfs {
        b = b.symmetry_fn(representative);
    }
    if let Some(t) = opts.time_limit {
        b = b.timeout(t);
    }
    let start = Instant::now();
    let checker = match opts.strategy {
        Strategy::Bfs => Box::new(b.spawn_bfs().join()) as Box<dyn Checker<RaftModel>>,
        Strategy::Dfs => Box::new(b.spawn_dfs().join()),
        Strategy::Simulate { seed } => Box::new(b.spawn_simulation(seed, UniformChooser).join()),
    };
    let elapsed = start.elapsed();
    let timed_out = opts.time_limit.is_some_and(|t| elapsed >= t);
    let model = checker.model();
    let mut violations = Vec::new();
    for name in properties {
        if let Some(path) = checker.discovery(name) {
            violations.push(counterexample(model, name, path));
        }
    }
    CheckReport {
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: match opts.max_depth {
            0 => checker.max_depth().saturating_sub(1),
            d => checker.max_depth().saturating_sub(1).min(d),
        },
        elapsed,
        complete: !timed_out
            && !matches!(opts.strategy, Strategy::Simulate { .. })
            && (violations.is_empty() || !opts.stop_at_first_violation),
        violations,
    }
}

fn counterexample(
    model: &RaftModel,
    property: &'static str,
    path: Path<SysState, super::state::Action>,
) -> Counterexample {
    let steps = path.into_vec();
    let mut trace = Vec::new();
    trace.push("0. initial state".to_string());
    let n = steps.len();
    for (k, (state, action)) in steps.iter().enumerate() {
        for node in &state.nodes {
            trace.push(format!("     {}", describe_node(node)));
        }
        if !state.net.msgs.is_empty() {
            trace.push(format!(
                "     ({} message(s) in flight)",
                state.net.msgs.len()
            ));
        }
        if let Some(a) = action {
            trace.push(format!("{}. {}", k + 1, model.format_action(a)));
        } else if k + 1 == n {
            if !state.history.is_empty() {
                trace.push("   history:".to_string());
                for e in &state.history {
                    trace.push(format!("     {}", describe_event(e)));
                }
            }
            if !state.ghost.grants.is_empty() {
                trace.push(format!(
                    "   lock grants acknowledged (lease_id, token): {:?}",
                    state.ghost.grants
                ));
            }
            trace.push(format!("   VIOLATED: {property}"));
        }
    }
    Counterexample {
        property,
        trace,
        steps: n.saturating_sub(1),
    }
}

fn describe_event(e: &HistEvent) -> String {
    match e {
        HistEvent::Invoke { client, op } => format!("client {client} invoke {op:?}"),
        HistEvent::Return { client, ret } => format!("client {client} ok     {ret:?}"),
    }
}

/// Client symmetry: clients with identical scripts are interchangeable. Renaming them
/// touches only model-side state (the client table, the history's thread ids and the
/// nodes' pending-request tables): written values are numbered globally, not per client,
/// and lock owners are all "c", so no client id is inside the Raft logs. Node ids, in
/// contrast, are inside each `Raft`'s private state (votes, leader, progress, messages),
/// so renaming nodes would need to rebuild the core's internals: no node symmetry.
pub fn representative(s: &SysState) -> SysState {
    let n = s.clients.len();
    let first_event = |c: usize| {
        s.history
            .iter()
            .position(|e| match e {
                HistEvent::Invoke { client, .. } | HistEvent::Return { client, .. } => *client == c,
            })
            .unwrap_or(usize::MAX)
    };
    // perm[old] = new
    let mut perm: Vec<usize> = (0..n).collect();
    let mut classes: Vec<u8> = s.client_class.clone();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let members: Vec<usize> = (0..n).filter(|&c| s.client_class[c] == class).collect();
        let mut sorted = members.clone();
        sorted.sort_by_key(|&c| (s.clients[c], first_event(c)));
        for (slot, &old) in members.iter().zip(sorted.iter()) {
            perm[old] = *slot;
        }
    }
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return s.clone();
    }
    let mut r = s.clone();
    for (old, &new) in perm.iter().enumerate() {
        r.clients[new] = s.clients[old];
    }
    for e in &mut r.history {
        match e {
            HistEvent::Invoke { client, .. } | HistEvent::Return { client, .. } => {
                *client = perm[*client]
            }
        }
    }
    for node in &mut r.nodes {
        for (_, c) in node.proposals.values_mut() {
            *c = perm[*c];
        }
        for c in node.reads.values_mut() {
            *c = perm[*c];
        }
    }
    r
}
