//! Messages between Raft nodes. The runtime moves them (serialized with serde)
//! between processes; the core only produces and consumes them.

use serde::{Deserialize, Serialize};

use super::types::{Entry, Index, NodeId, Snapshot, Term};

/// One Raft message. `term` is the sender's term, except for pre-vote requests and
/// granted pre-vote responses, which carry the term the candidate would campaign in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageBody {
    /// "Would you vote for me in `term`?" Changes no state at the receiver.
    PreVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    RequestVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    RequestVoteResponse {
        granted: bool,
    },
    /// Replicate `entries` after (`prev_log_index`, `prev_log_term`). Empty `entries` probes.
    AppendEntries {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    },
    /// `success`: the follower's log matches the leader's up to `match_index`.
    /// Otherwise `rejected_index` is the `prev_log_index` that did not match and
    /// (`hint_index`, `hint_term`) let the leader skip a whole term at once (fast backtracking):
    /// `hint_term` is the follower's term at `rejected_index` (None if its log is shorter) and
    /// `hint_index` the first index of that term in its log (or its last index + 1).
    AppendEntriesResponse {
        success: bool,
        match_index: Index,
        rejected_index: Index,
        hint_index: Index,
        hint_term: Option<Term>,
    },
    /// Leader liveness plus a ReadIndex / lease round `read_seq`. `commit` is already
    /// capped by the leader at what the follower is known to hold.
    Heartbeat {
        commit: Index,
        read_seq: u64,
    },
    HeartbeatResponse {
        read_seq: u64,
    },
    /// Replace the follower's state with a snapshot (it lags behind the leader's compacted log).
    /// Answered with `AppendEntriesResponse { success: true, match_index: .. }`.
    InstallSnapshot {
        snapshot: Snapshot,
    },
}

impl Message {
    /// Leader-to-follower replication (`AppendEntries`, `Heartbeat`, `InstallSnapshot`)
    /// may be sent BEFORE the `Persist` effects emitted ahead of it are durable: the leader
    /// writes its log to disk in parallel with replicating it (Raft thesis §10.2.1), which
    /// takes one fsync off every write's critical path. Safe because such a message
    /// promises nothing about the sender's disk (it states what the leader holds in
    /// memory; a follower stores and acknowledges it on its own disk), and the leader
    /// counts its own log towards a majority only while handling a follower's response,
    /// which a runtime handles only after the fsync of the batch that sent the entries
    /// (each input is handled after the previous batch's effects are performed). If the
    /// leader crashes before its fsync, followers may hold entries it lost; that is an
    /// ordinary uncommitted suffix, resolved by the next election. Votes, responses and
    /// every other message still wait for the fsync.
    pub fn may_precede_persist(&self) -> bool {
        matches!(
            self.body,
            MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
        )
    }
}

impl MessageBody {
    /// Short name for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "pre-vote",
            MessageBody::PreVoteResponse { .. } => "pre-vote-resp",
            MessageBody::RequestVote { .. } => "request-vote",
            MessageBody::RequestVoteResponse { .. } => "request-vote-resp",
            MessageBody::AppendEntries { .. } => "append",
            MessageBody::AppendEntriesResponse { .. } => "append-resp",
            MessageBody::Heartbeat { .. } => "heartbeat",
            MessageBody::HeartbeatResponse { .. } => "heartbeat-resp",
            MessageBody::InstallSnapshot { .. } => "install-snapshot",
        }
    }
}
