//! [`LeaderProbe`]: what the nemesis asks the target about leadership, for faults aimed at
//! the leader and faults timed by replication.

use async_trait::async_trait;

use crate::node::NodeId;

/// Finds the current leader, for faults aimed at it. The harness passes one that asks the
/// target (e.g. raftkv's `/status`); `None` when no leader is known.
#[async_trait]
pub trait LeaderProbe: Send + Sync {
    async fn leader(&self) -> Option<NodeId>;

    /// The node's Raft commit index, for faults timed by replication (`figure8`); `None`
    /// when the target does not tell (the default) or the node does not answer.
    async fn commit_index(&self, node: NodeId) -> Option<u64> {
        let _ = node;
        None
    }
}

/// A probe that always names the same leader, for tests.
#[cfg(test)]
pub(crate) struct FixedLeader(pub NodeId);

#[cfg(test)]
#[async_trait]
impl LeaderProbe for FixedLeader {
    async fn leader(&self) -> Option<NodeId> {
        Some(self.0)
    }
}
