//! Errors returned by the Raft core's input methods. Protocol-level oddities (stale
//! or malformed messages) are not errors: the core ignores them, as Raft requires.

use super::config::ConfigError;
use super::types::{Index, NodeId};

/// `Raft::new` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("node {id} is not in the voter list")]
    NotAVoter { id: NodeId },
    #[error("voter list has duplicates")]
    DuplicateVoter,
    #[error("persisted log is not contiguous after index {after}")]
    LogGap { after: Index },
    #[error("persisted log has a term going down at index {index}")]
    TermOrder { index: Index },
}

/// `Raft::propose` failed; nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("proposal of {bytes} bytes exceeds the limit of {max_bytes}")]
    TooLarge { bytes: usize, max_bytes: usize },
    #[error("too many uncommitted entries ({uncommitted}); retry later")]
    Backpressure { uncommitted: u64 },
}

/// `Raft::read_index` failed; no `ReadReady`/`ReadFailed` will follow for this ctx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("too many pending reads ({pending}); retry later")]
    TooManyPending { pending: usize },
}

/// `Raft::compact` failed; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    #[error("cannot snapshot at {index}: only {applied} is applied")]
    NotApplied { index: Index, applied: Index },
    #[error("already compacted up to {snapshot_index}")]
    AlreadyCompacted { snapshot_index: Index },
}
