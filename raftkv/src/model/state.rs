//! The state of the modelled system (three nodes, the network, the clients and the
//! history they observed, plus "ghost" facts the properties need) and the actions that
//! move it. Each node is the real `Raft` core driven the way `node.rs` drives it:
//! effects performed in order, `Persist` to a modelled disk before anything after it,
//! `Apply` into the real `kv::StateMachine`, client replies from `Apply` and `ReadReady`.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::kv::{Command, OpError, Reply, StateMachine};
use crate::raft::{
    Bug, Effect, EntryData, Index, Message, MessageBody, NodeId, PersistentState, Raft, Term,
};

/// The register key every write and read uses.
pub const KEY: &str = "x";
/// The lock every acquire asks for.
pub const LOCK: &str = "l";

/// A node's KV + lock state machine (the real one). `StateMachine` is not `Hash`, so it
/// hashes its snapshot bytes, which are canonical (BTreeMaps, fixed field order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv(pub StateMachine);

impl Hash for Kv {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.snapshot().hash(h);
    }
}

/// One server process: the Raft core (None while crashed), what it made durable, and
/// the volatile parts of the node runtime (state machine, requests waiting on the core).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    pub id: NodeId,
    pub raft: Option<Raft>,
    /// Everything `Persist` effects made durable: what a restart recovers.
    pub disk: PersistentState,
    pub kv: Kv,
    /// Proposals waiting for their entry to apply: index -> (term, client).
    pub proposals: BTreeMap<Index, (Term, usize)>,
    /// Reads waiting for `ReadReady`: ctx -> client.
    pub reads: BTreeMap<u64, usize>,
    pub next_read_ctx: u64,
    /// `--bug token-reuse` only: the node's in-memory token counter (as in `node.rs`).
    pub leader_token: Option<u64>,
}

/// A client's progress through its script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientState {
    /// Index of the next operation in the script.
    pub next: usize,
    /// An operation is in flight.
    pub waiting: bool,
    /// The client stopped: its last operation failed or its outcome is unknown (`info`;
    /// it stays in flight in the history, where it may or may not have taken effect).
    pub done: bool,
}

/// A register operation as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistOp {
    Write(String),
    Read,
}

/// A register operation's result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistRet {
    WriteOk,
    ReadOk(Option<String>),
}

/// One event of the client history (invocations and completions, in real-time order).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistEvent {
    Invoke { client: usize, op: HistOp },
    Return { client: usize, ret: HistRet },
}

/// Facts about the whole run (across crashes) that the properties are checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// (term, node) for every node that was ever leader.
    pub leaders: BTreeSet<(Term, NodeId)>,
    /// (index, entry term) -> earliest term in which some node knew it committed.
    pub committed: BTreeMap<(Index, Term), Term>,
    /// (index, entry term) of every entry any node applied.
    pub applied: BTreeSet<(Index, Term)>,
    /// (lease_id = log index, token) of every lock grant acknowledged to a client.
    pub grants: BTreeSet<(u64, u64)>,
    /// A broken contract of the core, seen while performing effects.
    pub contract: Option<String>,
}

/// The network: messages in flight, kept sorted by a fixed fingerprint so that the same
/// multiset in a different arrival order is the same state (delivery order is chosen by
/// the checker anyway). `Message` is not `Ord`, hence the fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Net {
    pub msgs: Vec<(u64, Message)>,
}

fn msg_key(m: &Message) -> u64 {
    let mut h = DefaultHasher::new();
    m.hash(&mut h);
    h.finish()
}

impl Net {
    /// Queue `m` unless the network is full (then it is lost) or, on a duplicating
    /// network, an identical message is already in flight (it may be delivered again).
    pub fn send(&mut self, m: Message, max_in_flight: usize, duplicating: bool, fifo: bool) {
        if self.msgs.len() >= max_in_flight {
            return;
        }
        if duplicating && self.msgs.iter().any(|(_, x)| *x == m) {
            return;
        }
        let k = msg_key(&m);
        if fifo {
            // Arrival order is the delivery order per link: keep it.
            self.msgs.push((k, m));
            return;
        }
        let at = self.msgs.partition_point(|(kk, _)| *kk <= k);
        self.msgs.insert(at, (k, m));
    }

    /// Remove one copy of `m`; false if none is in flight.
    pub fn remove(&mut self, m: &Message) -> bool {
        match self.msgs.iter().position(|(_, x)| x == m) {
            Some(i) => {
                self.msgs.remove(i);
                true
            }
            None => false,
        }
    }

    /// The messages that can be delivered (or lost) next: every distinct message, or
    /// with per-link FIFO only the oldest message of each (from, to) link. Losing only
    /// a link's oldest message loses no behaviour: a later message lost before it is
    /// the same delivery sequence as losing it when it becomes the oldest.
    pub fn deliverable(&self, fifo: bool) -> Vec<&Message> {
        let mut out: Vec<&Message> = Vec::new();
        for (_, m) in &self.msgs {
            let seen = if fifo {
                out.iter().any(|x| x.from == m.from && x.to == m.to)
            } else {
                out.contains(&m)
            };
            if !seen {
                out.push(m);
            }
        }
        out
    }
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SysState {
    pub nodes: Vec<NodeState>,
    pub net: Net,
    pub clients: Vec<ClientState>,
    pub history: Vec<HistEvent>,
    pub ghost: Ghost,
    pub crashes: u8,
    pub timeouts: u8,
    /// Client operations invoked so far: the modelled wall clock (`now_ms` of commands)
    /// and the source of unique written values.
    pub invocations: u8,
    pub writes: u8,
    /// Per client, the index of the first client with the same script (constant; lets
    /// symmetry reduction, which sees only states, know which clients are alike).
    pub client_class: Vec<u8>,
}

/// One step of the system. Timers are nondeterministic events: `Timeout` fires a node's
/// next timer (a follower's or candidate's election timeout, a leader's heartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The client runs its next scripted operation against `node`.
    Invoke {
        client: usize,
        node: NodeId,
    },
    Deliver(Message),
    Drop(Message),
    Timeout(NodeId),
    Crash(NodeId),
    Restart(NodeId),
}

/// Everything a node does after an input needs to change other parts of the state.
pub(crate) struct Env<'a> {
    pub net: &'a mut Net,
    pub clients: &'a mut [ClientState],
    pub history: &'a mut Vec<HistEvent>,
    pub ghost: &'a mut Ghost,
    pub max_in_flight: usize,
    pub duplicating: bool,
    pub fifo: bool,
}

impl Env<'_> {
    pub fn finish_ok(&mut self, client: usize, ret: Option<HistRet>) {
        if let Some(ret) = ret {
            self.history.push(HistEvent::Return { client, ret });
        }
        let c = &mut self.clients[client];
        c.waiting = false;
        c.next += 1;
    }

    /// A definite failure or an unknown outcome: the client stops. A register op stays
    /// in flight in the history (allowed to have taken effect or not), which is exact
    /// for `info` and only weaker, never wrong, for a definite failure.
    pub fn give_up(&mut self, client: usize) {
        let c = &mut self.clients[client];
        c.waiting = false;
        c.done = true;
    }
}

impl NodeState {
    pub fn new(id: NodeId) -> NodeState {
        NodeState {
            id,
            raft: None,
            disk: PersistentState::default(),
            kv: Kv::default(),
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_read_ctx: 1,
            leader_token: None,
        }
    }

    /// Drain and perform the core's effects in order, as `Node::perform_effects` does.
    /// The model performs a whole input atomically (crashes happen between inputs), so
    /// "durable before what follows" holds trivially; crashes part-way through a
    /// node's effects are covered by the simulator (`src/sim`).
    pub(crate) fn perform(&mut self, env: &mut Env<'_>) {
        for _ in 0..16 {
            let Some(raft) = self.raft.as_mut() else {
                return;
            };
            let effects = raft.take_effects();
            if effects.is_empty() {
                return;
            }
            let bugs = raft.config().bugs.clone();
            for e in effects {
                match e {
                    Effect::Persist(p) => {
                        if let Some(hs) = p.hard_state {
                            self.disk.hard_state = hs;
                        }
                        if let Some(s) = p.snapshot {
                            self.disk.entries.retain(|e| e.index > s.meta.index);
                            self.disk.snapshot = Some(s);
                        }
                        if let Some(from) = p.truncate_from {
                            self.disk.entries.retain(|e| e.index < from);
                        }
                        self.disk.entries.extend(p.entries);
                    }
                    Effect::Send(m) => {
                        env.net
                            .send(m, env.max_in_flight, env.duplicating, env.fifo)
                    }
                    Effect::Apply(entries) => {
                        for e in entries {
                            let result = match &e.data {
                                EntryData::Noop => {
                                    self.kv.0.skip(e.index);
                                    None
                                }
                                EntryData::Normal(bytes) => match Command::decode(bytes) {
                                    Ok(cmd) => Some(self.kv.0.apply(e.index, &cmd)),
                                    Err(_) => {
                                        self.kv.0.skip(e.index);
                                        Some(Err(OpError::BadRequest("undecodable".into())))
                                    }
                                },
                            };
                            env.ghost.applied.insert((e.index, e.term));
                            let Some((term, client)) = self.proposals.remove(&e.index) else {
                                continue;
                            };
                            match result {
                                Some(Ok(Reply::Written { .. })) if term == e.term => {
                                    env.finish_ok(client, Some(HistRet::WriteOk))
                                }
                                Some(Ok(Reply::Granted {
                                    token, lease_id, ..
                                })) if term == e.term => {
                                    env.ghost.grants.insert((lease_id, token));
                                    env.finish_ok(client, None);
                                }
                                // Overwritten by another leader's entry (lost), or the
                                // state machine refused it (lock held): the client stops.
                                _ => env.give_up(client),
                            }
                        }
                    }
                    Effect::ApplySnapshot(s) => {
                        self.kv.0 = StateMachine::restore(&s.data).unwrap_or_default();
                        let later = self.proposals.split_off(&(s.meta.index + 1));
                        for (_, (_, client)) in std::mem::replace(&mut self.proposals, later) {
                            env.give_up(client);
                        }
                    }
                    Effect::ReadReady { ctx, .. } => {
                        if let Some(client) = self.reads.remove(&ctx) {
                            let v = self.kv.0.get(KEY).cloned();
                            env.finish_ok(client, Some(HistRet::ReadOk(v)));
                        }
                    }
                    Effect::ReadFailed { ctx, .. } => {
                        if let Some(client) = self.reads.remove(&ctx) {
                            env.give_up(client);
                        }
                    }
                    Effect::RoleChange { .. } => {
                        if bugs.contains(&Bug::TokenReuse) {
                            // As node.rs: the counter lives in this process's memory only.
                            self.leader_token = Some(self.leader_token.unwrap_or(0));
                        }
                    }
                }
            }
        }
        env.ghost
            .contract
            .get_or_insert_with(|| format!("node {} kept emitting effects", self.id));
    }

    /// The process dies: everything not on `disk` is gone. Clients waiting on it never
    /// hear back (their operations stay in flight: outcome unknown).
    pub(crate) fn crash(&mut self, env: &mut Env<'_>) {
        self.raft = None;
        self.kv = Kv::default();
        self.leader_token = None;
        self.next_read_ctx = 1;
        for (_, (_, client)) in std::mem::take(&mut self.proposals) {
            env.give_up(client);
        }
        for (_, client) in std::mem::take(&mut self.reads) {
            env.give_up(client);
        }
    }
}

/// Short human-readable form of a message for traces.
pub fn describe_message(m: &Message) -> String {
    let body = match &m.body {
        MessageBody::PreVote {
            last_log_index,
            last_log_term,
        } => format!("pre-vote(last {last_log_index}/t{last_log_term})"),
        MessageBody::PreVoteResponse { granted } => format!("pre-vote-resp({granted})"),
        MessageBody::RequestVote {
            last_log_index,
            last_log_term,
        } => format!("request-vote(last {last_log_index}/t{last_log_term})"),
        MessageBody::RequestVoteResponse { granted } => format!("vote-resp({granted})"),
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => format!(
            "append(prev {prev_log_index}/t{prev_log_term}, [{}], commit {leader_commit})",
            entries
                .iter()
                .map(|e| format!("{}:t{}", e.index, e.term))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        MessageBody::AppendEntriesResponse {
            success,
            match_index,
            rejected_index,
            ..
        } => {
            if *success {
                format!("append-ok(match {match_index})")
            } else {
                format!("append-reject({rejected_index})")
            }
        }
        MessageBody::Heartbeat { commit, read_seq } => {
            format!("heartbeat(commit {commit}, seq {read_seq})")
        }
        MessageBody::HeartbeatResponse { read_seq } => format!("heartbeat-resp(seq {read_seq})"),
        MessageBody::InstallSnapshot { snapshot } => {
            format!(
                "install-snapshot({}/t{})",
                snapshot.meta.index, snapshot.meta.term
            )
        }
    };
    format!("n{} -> n{} [t{}] {}", m.from, m.to, m.term, body)
}

/// One line per node: role, term, log (index:term, `*` = command), commit and applied.
pub fn describe_node(n: &NodeState) -> String {
    let Some(r) = &n.raft else {
        let log: Vec<String> = n
            .disk
            .entries
            .iter()
            .map(|e| format!("{}:t{}", e.index, e.term))
            .collect();
        return format!(
            "n{} DOWN  disk: term {} vote {:?} log [{}]",
            n.id,
            n.disk.hard_state.term,
            n.disk.hard_state.vote,
            log.join(" ")
        );
    };
    let log: Vec<String> = (r.first_index()..=r.last_index())
        .filter_map(|i| r.log_entry(i))
        .map(|e| {
            let star = if matches!(e.data, EntryData::Normal(_)) {
                "*"
            } else {
                ""
            };
            format!("{}:t{}{star}", e.index, e.term)
        })
        .collect();
    format!(
        "n{} {:<9} t{} log [{}] commit {} applied {} x={:?}",
        n.id,
        r.role().as_str(),
        r.term(),
        log.join(" "),
        r.commit_index(),
        r.applied_index(),
        n.kv.0.get(KEY),
    )
}
