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
