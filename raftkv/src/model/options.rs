//! The knobs of one model-checking run: the cluster, the clients' scripts, the planted
//! bugs, the network's faults and the bounds that keep the state space finite.

use std::collections::BTreeSet;

use crate::raft::{Bug, Config, NodeId};

/// One operation in a client's script. Each client runs its script in order, one
/// operation at a time, against a node the checker picks nondeterministically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientOp {
    /// `PUT /kv/x` with a value unique to this client and step.
    Write,
    /// Linearizable `GET /kv/x` (ReadIndex).
    Read,
    /// `POST /lock/l/acquire`: a fencing-token grant.
    Acquire,
}

/// How the checker walks the state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth-first: finds the shortest counterexample; memory grows with the frontier.
    Bfs,
    /// Depth-first: little memory, reaches deep states first; supports symmetry reduction.
    Dfs,
    /// Not exhaustive: stateright's random walks (uniform choice among enabled actions,
    /// restarted from the initial state at the depth bound), checking every property in
    /// every state visited. For bugs deeper than exhaustive search reaches in CI time.
    Simulate { seed: u64 },
}

/// Everything that defines a run; two runs with equal options explore the same states.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// Node ids (3 by default).
    pub nodes: Vec<NodeId>,
    /// One script per client.
    pub clients: Vec<Vec<ClientOp>>,
    /// Planted bugs enabled in the core and in the modelled node runtime.
    pub bugs: BTreeSet<Bug>,
    /// Run the pre-vote round before campaigning (the server's default is on).
    pub pre_vote: bool,
    /// Check-quorum (the server's default): leaders step down without a majority, and
    /// nodes ignore vote requests while they have a live leader or just started. Off
    /// shortens elections by a few steps, which deep bug hunts need.
    pub check_quorum: bool,
    /// Entries per AppendEntries. 1 lets a follower hold part of a leader's suffix,
    /// which Raft's Figure 8 scenario needs.
    pub max_entries_per_msg: usize,
    /// Messages may be lost (a `Drop` action for every message in flight).
    pub lossy: bool,
    /// Messages may be delivered more than once (a delivered message stays in flight).
    pub duplicating: bool,
    /// Per-link FIFO delivery (as the server's transport: one queue per peer). Off:
    /// any message in flight may be delivered next (full reordering).
    pub fifo: bool,
    /// At most this many messages in flight; a send beyond it is lost (the network may
    /// lose any message, so this only removes behaviours, never adds any).
    pub max_in_flight: usize,
    /// States where a node's term exceeds this are not explored further.
    pub max_term: u64,
    /// States where a node's log is longer than this are not explored further.
    pub max_log: u64,
    /// Crashes in a run (each crashed node may restart from its disk).
    pub max_crashes: u8,
    /// Timer firings in a run (elections and heartbeats), summed over nodes.
    pub max_timeouts: u8,
    /// Check every state reached by at most this many actions; 0 = unbounded.
    pub max_depth: usize,
    pub strategy: Strategy,
    /// Treat clients with identical scripts as interchangeable (DFS only).
    pub symmetry: bool,
    /// Checker threads.
    pub threads: usize,
    /// Stop exploring after this long (the report then says the run was cut short).
    pub time_limit: Option<std::time::Duration>,
    /// Stop as soon as any property is violated (faster when hunting a bug).
    pub stop_at_first_violation: bool,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            nodes: vec![1, 2, 3],
            clients: vec![vec![ClientOp::Write], vec![ClientOp::Read]],
            bugs: BTreeSet::new(),
            pre_vote: false,
            check_quorum: true,
            max_entries_per_msg: 1,
            lossy: true,
            duplicating: false,
            fifo: false,
            max_in_flight: 4,
            max_term: 2,
            max_log: 3,
            max_crashes: 1,
            max_timeouts: 4,
            max_depth: 0,
            strategy: Strategy::Bfs,
            symmetry: false,
            threads: 1,
            time_limit: None,
            stop_at_first_violation: false,
        }
    }
}

impl ModelOptions {
    /// The Raft configuration every node runs. Timeouts are as short as `Config` allows
    /// (heartbeat 1 tick, election timeout exactly 2 ticks, so the randomized timeout
    /// never consumes randomness and timer firings are the only source of time); one
    /// AppendEntries in flight per follower keeps the network small.
    pub fn raft_config(&self) -> Config {
        Config {
            election_timeout_min_ticks: 2,
            election_timeout_max_ticks: 2,
            heartbeat_interval_ticks: 1,
            max_entries_per_msg: self.max_entries_per_msg.max(1),
            max_inflight_msgs: 1,
            max_uncommitted_entries: 16,
            max_pending_reads: 16,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            bugs: self.bugs.clone(),
            ..Config::default()
        }
    }
}
