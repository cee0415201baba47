//! `RaftModel`: the stateright `Model` of a raftkv cluster. Initial state: every node
//! freshly started (empty disk). Actions: client invocations, message delivery and loss,
//! timer firings, crashes and restarts. Properties, checked in every state: election
//! safety, log matching, leader completeness, state machine safety, linearizability of
//! the register history, fencing tokens, and the core's own contract.

use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::{Model, Property};

use super::options::{ClientOp, ModelOptions};
use super::state::{
    describe_message, Action, ClientState, Env, Ghost, HistEvent, HistOp, HistRet, Net, NodeState,
    SysState, KEY, LOCK,
};
use crate::kv::{Command, Op};
use crate::raft::{Bug, Config, Raft};
use crate::sim::Checker;

/// Property names (also what tests look up discoveries by).
pub const ELECTION_SAFETY: &str = "election safety";
pub const LOG_MATCHING: &str = "log matching";
pub const LEADER_COMPLETENESS: &str = "leader completeness";
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
pub const LINEARIZABLE: &str = "linearizable";
pub const FENCING: &str = "fencing tokens unique and increasing";
pub const CONTRACT: &str = "core contract";

/// The model: options plus the derived Raft configuration.
#[derive(Clone, Debug)]
pub struct RaftModel {
    pub opts: ModelOptions,
    pub config: Config,
    /// Explore from this state instead of a fresh cluster (see `RaftModel::replay`).
    pub start: Option<SysState>,
}

impl RaftModel {
    pub fn new(opts: ModelOptions) -> RaftModel {
        let config = opts.raft_config();
        RaftModel {
            opts,
            config,
            start: None,
        }
    }

    /// Follow a schedule from the initial state: at each step take the first enabled
    /// action `pick` accepts. Returns the states and actions taken, or the step at which
    /// no enabled action matched. Used to reach a deep state from which exhaustive
    /// search continues (bugs deeper than CI-time exhaustive search reaches).
    pub fn replay(
        &self,
        schedule: &[&dyn Fn(&Action) -> bool],
    ) -> Result<Vec<(Action, SysState)>, usize> {
        let mut s = self.init_states().into_iter().next().ok_or(0usize)?;
        let mut out = Vec::new();
        for (k, pick) in schedule.iter().enumerate() {
            let mut actions = Vec::new();
            self.actions(&s, &mut actions);
            let a = actions.into_iter().find(|a| pick(a)).ok_or(k)?;
            s = self.next_state(&s, a.clone()).ok_or(k)?;
            out.push((a, s.clone()));
        }
        Ok(out)
    }

    fn start(&self, node: &mut NodeState, env: &mut Env<'_>) {
        // A seed of 0 everywhere: with a fixed election timeout the core draws no
        // randomness, and all nondeterminism comes from the checker's choices.
        match Raft::new(
            node.id,
            self.opts.nodes.clone(),
            self.config.clone(),
            node.disk.clone(),
            0,
        ) {
            Ok(r) => {
                node.raft = Some(r);
                node.perform(env);
            }
            Err(e) => {
                env.ghost
                    .contract
                    .get_or_insert_with(|| format!("n{} cannot restart: {e}", node.id));
            }
        }
    }

    /// Record what the nodes now believe: leaders and committed entries.
    fn observe(&self, s: &mut SysState) {
        for n in &s.nodes {
            let Some(r) = &n.raft else { continue };
            if r.is_leader() {
                s.ghost.leaders.insert((r.term(), r.id()));
            }
            let lo = r.snapshot_meta().index + 1;
            for i in lo..=r.commit_index() {
                match r.log_term(i) {
                    Some(t) => {
                        let known = s.ghost.committed.entry((i, t)).or_insert(r.term());
                        *known = (*known).min(r.term());
                    }
                    None => {
                        s.ghost.contract.get_or_insert_with(|| {
                            format!("n{} commits {i} beyond its log", r.id())
                        });
                    }
                }
            }
        }
    }

    /// Node `idx`, and the rest of the state as the environment it acts on.
    fn node_env<'s>(&self, s: &'s mut SysState, idx: usize) -> (&'s mut NodeState, Env<'s>) {
        let env = Env {
            net: &mut s.net,
            clients: &mut s.clients,
            history: &mut s.history,
            ghost: &mut s.ghost,
            max_in_flight: self.opts.max_in_flight,
            duplicating: self.opts.duplicating,
            fifo: self.opts.fifo,
        };
        (&mut s.nodes[idx], env)
    }

    fn invoke(&self, s: &mut SysState, client: usize, idx: usize) -> Option<()> {
        let op = *self.opts.clients[client].get(s.clients[client].next)?;
        s.invocations += 1;
        let now_ms = 10 * u64::from(s.invocations);
        let written = (op == ClientOp::Write).then(|| {
            s.writes += 1;
            format!("v{}", s.writes)
        });
        let (node, mut env) = self.node_env(s, idx);
        let raft = node.raft.as_mut()?;
        match op {
            ClientOp::Write | ClientOp::Acquire => {
                let op = if let Some(value) = written {
                    env.history.push(HistEvent::Invoke {
                        client,
                        op: HistOp::Write(value.clone()),
                    });
                    Op::Put {
                        key: KEY.into(),
                        value,
                        token: None,
                    }
                } else {
                    // node.rs: under --bug token-reuse the token comes from leader memory.
                    let leader_token = node.leader_token.as_mut().map(|c| {
                        *c += 1;
                        *c
                    });
                    Op::Acquire {
                        name: LOCK.into(),
                        owner: "c".into(),
                        ttl_ms: 5,
                        leader_token,
                    }
                };
                let cmd = Command { now_ms, op };
                // Offered only at leaders (a non-leader answers not-leader: no effect).
                let p = raft.propose(cmd.encode()).ok()?;
                env.clients[client].waiting = true;
                if let Some((_, old)) = node.proposals.insert(p.index, (p.term, client)) {
                    env.give_up(old);
                }
            }
            ClientOp::Read => {
                env.history.push(HistEvent::Invoke {
                    client,
                    op: HistOp::Read,
                });
                env.clients[client].waiting = true;
                if self.config.has_bug(Bug::StaleRead) && !raft.is_leader() {
                    // node.rs under --bug stale-read: any node answers from its own state.
                    let v = node.kv.0.get(KEY).cloned();
                    env.finish_ok(client, Some(HistRet::ReadOk(v)));
                } else {
                    let ctx = node.next_read_ctx;
                    node.next_read_ctx += 1;
                    match raft.read_index(ctx) {
                        Ok(()) => {
                            node.reads.insert(ctx, client);
                        }
                        Err(_) => env.give_up(client),
                    }
                }
            }
        }
        node.perform(&mut env);
        Some(())
    }

    /// Election safety: no two leaders of one term, ever.
    pub fn election_safe(s: &SysState) -> bool {
        let l: Vec<_> = s.ghost.leaders.iter().collect();
        l.windows(2).all(|w| w[0].0 != w[1].0)
    }

    /// Log matching between every pair of running nodes (the simulator's check).
    pub fn logs_match(s: &SysState) -> bool {
        let up: Vec<&Raft> = s.nodes.iter().filter_map(|n| n.raft.as_ref()).collect();
        up.iter().enumerate().all(|(i, a)| {
            up[i + 1..]
                .iter()
                .all(|b| Checker::check_log_matching(a, b).is_ok())
        })
    }

    /// Leader completeness: a leader of term T holds every entry known committed in a
    /// term before T.
    pub fn leaders_complete(s: &SysState) -> bool {
        s.nodes.iter().filter_map(|n| n.raft.as_ref()).all(|r| {
            !r.is_leader()
                || s.ghost.committed.iter().all(|(&(i, t), &c)| {
                    c >= r.term() || i <= r.snapshot_meta().index || r.log_term(i) == Some(t)
                })
        })
    }

    /// State machine safety: no two nodes apply different entries at one index, and an
    /// index known committed never holds another entry.
    pub fn state_machines_agree(s: &SysState) -> bool {
        fn unique<'a>(it: impl Iterator<Item = &'a (u64, u64)>) -> bool {
            let v: Vec<_> = it.collect();
            v.windows(2).all(|w| w[0].0 != w[1].0)
        }
        unique(s.ghost.applied.iter()) && unique(s.ghost.committed.keys())
    }

    /// The register history is linearizable (stateright's tester; operations still in
    /// flight may or may not have taken effect).
    pub fn linearizable(s: &SysState) -> bool {
        history_tester(&s.history).is_some_and(|t| t.is_consistent())
    }

    /// Tokens acknowledged to clients are unique and increase in grant (log) order.
    pub fn fencing_ok(s: &SysState) -> bool {
        let g: Vec<_> = s.ghost.grants.iter().collect();
        g.windows(2).all(|w| w[0].1 < w[1].1)
    }
}

/// Replay the recorded history into stateright's linearizability tester.
pub fn history_tester(
    history: &[HistEvent],
) -> Option<LinearizabilityTester<usize, Register<Option<String>>>> {
    let mut t = LinearizabilityTester::new(Register(None));
    for e in history {
        match e {
            HistEvent::Invoke { client, op } => {
                let op = match op {
                    HistOp::Write(v) => RegisterOp::Write(Some(v.clone())),
                    HistOp::Read => RegisterOp::Read,
                };
                t.on_invoke(*client, op).ok()?;
            }
            HistEvent::Return { client, ret } => {
                let ret = match ret {
                    HistRet::WriteOk => RegisterRet::WriteOk,
                    HistRet::ReadOk(v) => RegisterRet::ReadOk(v.clone()),
                };
                t.on_return(*client, ret).ok()?;
            }
        }
    }
    Some(t)
}

impl Model for RaftModel {
    type State = SysState;
    type Action = Action;

    fn init_states(&self) -> Vec<SysState> {
        if let Some(s) = &self.start {
            return vec![s.clone()];
        }
        let mut s = SysState {
            nodes: self
                .opts
                .nodes
                .iter()
                .map(|&id| NodeState::new(id))
                .collect(),
            net: Net::default(),
            clients: vec![ClientState::default(); self.opts.clients.len()],
            history: Vec::new(),
            ghost: Ghost::default(),
            crashes: 0,
            timeouts: 0,
            invocations: 0,
            writes: 0,
            client_class: (0..self.opts.clients.len())
                .map(|c| {
                    let first = self
                        .opts
                        .clients
                        .iter()
                        .position(|x| *x == self.opts.clients[c]);
                    first.unwrap_or(c) as u8
                })
                .collect(),
        };
        for i in 0..s.nodes.len() {
            let (node, mut env) = self.node_env(&mut s, i);
            self.start(node, &mut env);
        }
        vec![s]
    }

    fn actions(&self, s: &SysState, actions: &mut Vec<Action>) {
        let stale_read = self.config.has_bug(Bug::StaleRead);
        for (c, cs) in s.clients.iter().enumerate() {
            if cs.waiting || cs.done {
                continue;
            }
            let Some(&op) = self.opts.clients[c].get(cs.next) else {
                continue;
            };
            for n in &s.nodes {
                let Some(r) = &n.raft else { continue };
                if r.is_leader() || (stale_read && op == ClientOp::Read) {
                    actions.push(Action::Invoke {
                        client: c,
                        node: n.id,
                    });
                }
            }
        }
        for m in s.net.deliverable(self.opts.fifo) {
            let up = s.nodes.iter().any(|n| n.id == m.to && n.raft.is_some());
            if up {
                actions.push(Action::Deliver(m.clone()));
            }
            if self.opts.lossy || !up {
                actions.push(Action::Drop(m.clone()));
            }
        }
        for n in &s.nodes {
            if n.raft.is_some() {
                if s.timeouts < self.opts.max_timeouts {
                    actions.push(Action::Timeout(n.id));
                }
                if s.crashes < self.opts.max_crashes {
                    actions.push(Action::Crash(n.id));
                }
            } else {
                actions.push(Action::Restart(n.id));
            }
        }
    }

    fn next_state(&self, last: &SysState, action: Action) -> Option<SysState> {
        let mut s = last.clone();
        let idx_of = |s: &SysState, id| s.nodes.iter().position(|n| n.id == id);
        match action {
            Action::Invoke { client, node } => {
                let idx = idx_of(&s, node)?;
                self.invoke(&mut s, client, idx)?;
            }
            Action::Drop(m) => {
                if !s.net.remove(&m) {
                    return None;
                }
            }
            Action::Deliver(m) => {
                let idx = idx_of(&s, m.to)?;
                if !self.opts.duplicating && !s.net.remove(&m) {
                    return None;
                }
                let (node, mut env) = self.node_env(&mut s, idx);
                node.raft.as_mut()?.step(m);
                node.perform(&mut env);
            }
            Action::Timeout(id) => {
                let idx = idx_of(&s, id)?;
                s.timeouts += 1;
                let (node, mut env) = self.node_env(&mut s, idx);
                let raft = node.raft.as_mut()?;
                if raft.is_leader() {
                    raft.tick(); // heartbeat interval: 1 tick
                } else {
                    // Exactly one election timeout has passed without hearing a leader.
                    raft.advance_ticks(self.config.election_timeout_max_ticks);
                }
                node.perform(&mut env);
            }
            Action::Crash(id) => {
                let idx = idx_of(&s, id)?;
                s.crashes += 1;
                let (node, mut env) = self.node_env(&mut s, idx);
                node.crash(&mut env);
            }
            Action::Restart(id) => {
                let idx = idx_of(&s, id)?;
                let (node, mut env) = self.node_env(&mut s, idx);
                self.start(node, &mut env);
            }
        }
        self.observe(&mut s);
        Some(s)
    }

    fn format_action(&self, action: &Action) -> String {
        match action {
            Action::Invoke { client, node } => {
                format!(
                    "client {client} invokes {:?} at n{node}",
                    self.opts.clients[*client]
                )
            }
            Action::Deliver(m) => format!("deliver {}", describe_message(m)),
            Action::Drop(m) => format!("drop    {}", describe_message(m)),
            Action::Timeout(n) => format!("timeout n{n}"),
            Action::Crash(n) => format!("crash   n{n}"),
            Action::Restart(n) => format!("restart n{n}"),
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(ELECTION_SAFETY, |_, s| RaftModel::election_safe(s)),
            Property::always(LOG_MATCHING, |_, s| RaftModel::logs_match(s)),
            Property::always(LEADER_COMPLETENESS, |_, s| RaftModel::leaders_complete(s)),
            Property::always(STATE_MACHINE_SAFETY, |_, s| {
                RaftModel::state_machines_agree(s)
            }),
            Property::always(LINEARIZABLE, |_, s| RaftModel::linearizable(s)),
            Property::always(FENCING, |_, s| RaftModel::fencing_ok(s)),
            Property::always(CONTRACT, |_, s: &SysState| s.ghost.contract.is_none()),
        ]
    }

    fn within_boundary(&self, s: &SysState) -> bool {
        s.nodes
            .iter()
            .filter_map(|n| n.raft.as_ref())
            .all(|r| r.term() <= self.opts.max_term && r.last_index() <= self.opts.max_log)
    }
}
