//! Plain data of the Raft core: log entries, the hard state, snapshots and the
//! state a node recovers from its disk on restart. Everything here is `Clone +
//! Hash + Eq` so the whole core can be cloned and hashed by a model checker.

use serde::{Deserialize, Serialize};

/// A node's identity. Nodes are numbered by the operator (`--id N`); 0 is allowed.
pub type NodeId = u64;
/// A Raft term (election epoch). Term 0 means "never saw an election".
pub type Term = u64;
/// A log index. Index 0 is the empty prefix; the first real entry has index 1.
pub type Index = u64;

/// What an entry carries. The core never looks inside `Normal` payloads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntryData {
    /// Appended by every new leader so that it can commit an entry of its own term
    /// (Raft §5.4.2, §8). The state machine skips it but it still advances the applied index.
    Noop,
    /// A client command, opaque to the core (the KV layer encodes it).
    Normal(Vec<u8>),
}

impl EntryData {
    /// Payload size in bytes, used for message batching limits.
    pub fn size_bytes(&self) -> usize {
        match self {
            EntryData::Noop => 0,
            EntryData::Normal(d) => d.len(),
        }
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub index: Index,
    pub term: Term,
    pub data: EntryData,
}

/// The part of the node state that must survive a crash besides the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: Term,
    /// Who this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
    /// A lower bound of the commit index. Persisting it is an optimisation only (a restarted
    /// node can apply up to it at once); it is never trusted beyond the stored log.
    pub commit: Index,
}

/// Where a snapshot ends in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Last log index the snapshot covers.
    pub index: Index,
    /// Term of the entry at `index`.
    pub term: Term,
}

/// A state machine snapshot: the runtime's serialized state after applying every entry
/// up to `meta.index`. The core stores it only to send it to lagging followers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// Everything a node reads back from its disk on restart (empty for a fresh node).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersistentState {
    pub hard_state: HardState,
    /// The latest stored snapshot, if any. The runtime restores its state machine from it
    /// BEFORE handing it here; the core then applies entries after `snapshot.meta.index`.
    pub snapshot: Option<Snapshot>,
    /// The stored log entries after the snapshot, contiguous, in index order.
    pub entries: Vec<Entry>,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// Running a pre-vote round (Raft thesis §9.6): its term is not yet bumped.
    PreCandidate,
    Candidate,
    Leader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// Where a successful proposal landed. The proposal is committed iff the runtime later
/// sees `Effect::Apply` with an entry at `index` whose term equals `term`; an entry at
/// `index` with another term means the proposal was lost (a leader change overwrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Proposal {
    pub index: Index,
    pub term: Term,
}

/// A snapshot of the node's externally interesting state (for `/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub last_index: Index,
    pub snapshot_index: Index,
}
