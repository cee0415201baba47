//! Glue between the crates a run combines: the nemesis writes into the run's history
//! recorder ([`HistoryLog`]) and finds raftkv's leader through the workload's client
//! ([`RaftKvLeader`]). Neither crate depends on the other, so the harness joins them.

use async_trait::async_trait;
use faultline_checker::Event;
use faultline_nemeses::{EventLog, LeaderProbe, NodeId};
use faultline_workloads::{RaftKvClient, RecorderHandle};

/// Nemesis events into the run's `history.jsonl`.
pub struct HistoryLog(pub RecorderHandle);

#[async_trait]
impl EventLog for HistoryLog {
    async fn record(&self, event: Event) {
        if let Err(e) = self.0.record(event).await {
            tracing::warn!("nemesis event not recorded: {e}");
        }
    }
}

/// The raftkv leader, asked of every node's `/status`.
pub struct RaftKvLeader {
    pub client: RaftKvClient,
    /// `ids[i]` is the node behind `client.nodes()[i]`.
    pub ids: Vec<NodeId>,
}

#[async_trait]
impl LeaderProbe for RaftKvLeader {
    async fn leader(&self) -> Option<NodeId> {
        let i = self.client.leader().await?;
        self.ids.get(i).copied()
    }
}
