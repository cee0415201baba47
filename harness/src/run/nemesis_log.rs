//! Glue between the crates a run combines: the nemesis writes into the run's history
//! recorder ([`HistoryLog`]). Neither crate depends on the other, so the harness joins
//! them. (The leader probe lives with the targets: `crate::target::TargetLeader`.)

use async_trait::async_trait;
use faultline_checker::Event;
use faultline_nemeses::EventLog;
use faultline_workloads::RecorderHandle;

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
