//! The `Cluster` trait: the only way nemeses (and the orchestrator) touch the nodes under
//! test. A backend (Docker containers, local processes) implements it; faults are expressed
//! as data (`Grudge` for partitions) so every backend applies the same fault the same way.

use std::path::Path;

use async_trait::async_trait;

use crate::grudge::Grudge;
use crate::netem::{PacketCaps, PacketFault};
use crate::node::{Node, NodeId};

/// Why a cluster operation did not happen. Nemeses log these into the history and go on:
/// a fault that could not be injected must never be reported as injected.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The cluster cannot do this at all (e.g. clock faults on a target without libc).
    /// `backend` says who refuses: "the Docker backend", "an external cluster", ...
    #[error("{op} is not supported by {backend}: {reason}")]
    Unsupported {
        op: &'static str,
        backend: &'static str,
        reason: String,
    },
    /// The node is not part of this cluster.
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    /// The backend call did not finish in its time budget.
    #[error("{op} on {target} timed out after {timeout_ms} ms")]
    Timeout {
        op: &'static str,
        target: String,
        timeout_ms: u64,
    },
    /// The backend tried and failed (daemon error, command exited non-zero, ...).
    #[error("{op} on {target} failed: {source}")]
    Backend {
        op: &'static str,
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A running cluster that faults can be injected into.
///
/// Every method is bounded in time by the backend. Operations are idempotent where that makes
/// sense (healing a healed cluster, starting a running node) so a nemesis that lost track of
/// state after an error can always call `heal` and the process methods to get back to normal.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The nodes, in id order. Fixed for the cluster's life.
    fn nodes(&self) -> &[Node];

    /// Replaces the current partition with `grudge`: afterwards node `a` drops every packet
    /// from each node in `grudge.drops_from(a)`, and nothing else does; packet faults
    /// (`netem`) are not touched, and an empty grudge removes the partition only. Nodes that
    /// restart keep the partition until it is replaced or healed.
    async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError>;

    /// Removes all network faults: the partition and every node's packet fault.
    async fn heal(&self) -> Result<(), ClusterError>;

    /// Freezes the node's processes (SIGSTOP semantics): connections stay open, nothing runs.
    async fn pause(&self, node: NodeId) -> Result<(), ClusterError>;

    /// Undoes `pause`. Resuming a running node is not an error.
    async fn resume(&self, node: NodeId) -> Result<(), ClusterError>;

    /// Kills the node's server with SIGKILL. Its data directory is kept.
    async fn kill(&self, node: NodeId) -> Result<(), ClusterError>;

    /// Starts the node's server again on its kept data. Starting a running node is not an
    /// error.
    async fn start(&self, node: NodeId) -> Result<(), ClusterError>;

    /// Stops the node's server gracefully: SIGTERM, then SIGKILL if it has not exited
    /// within the backend's grace period. Its data directory is kept; `start` brings it
    /// back. Stopping a stopped node is not an error.
    async fn terminate(&self, node: NodeId) -> Result<(), ClusterError> {
        Err(ClusterError::Unsupported {
            op: "terminate",
            backend: "this cluster",
            reason: format!("graceful stop is not implemented (node {node})"),
        })
    }

    /// Flips one byte near the end of the node's newest write-ahead-log file, as a torn or
    /// bit-rotted write would. The node must be down (killed or terminated). Returns what
    /// was changed (file and offset), for the history.
    async fn corrupt_log_tail(&self, node: NodeId) -> Result<String, ClusterError> {
        Err(ClusterError::Unsupported {
            op: "corrupt log tail",
            backend: "this cluster",
            reason: format!("disk corruption is not implemented (node {node})"),
        })
    }

    /// Sets the node's clock to run `offset_ms` away from real time, at `rate` seconds per
    /// real second. `(0, 1.0)` resets it.
    async fn clock(&self, node: NodeId, offset_ms: i64, rate: f64) -> Result<(), ClusterError>;

    /// Which parts of a packet fault `netem` can apply on this cluster. Asked once by a
    /// nemesis before its first packet fault, which then draws only what this allows. The
    /// default allows nothing, matching the default `netem` that applies nothing.
    async fn packet_caps(&self) -> Result<PacketCaps, ClusterError> {
        Ok(PacketCaps::NONE)
    }

    /// Replaces the node's packet fault (whatever it was, on any of its links) with
    /// `fault`: afterwards the node's outgoing packets for the nodes in `fault.to` (all its
    /// outgoing packets when `to` is empty) suffer `fault.spec`, and nothing else does. A
    /// backend that cannot apply some part of it (see `packet_caps`) applies none of it and
    /// returns `Unsupported` naming those parts.
    async fn netem(&self, node: NodeId, fault: &PacketFault) -> Result<(), ClusterError> {
        let _ = fault;
        Err(ClusterError::Unsupported {
            op: "netem",
            backend: "this cluster",
            reason: format!("packet faults are not implemented (node {node})"),
        })
    }

    /// Removes the node's packet fault, on all its links. Clearing a node without one is not
    /// an error; the default does nothing, matching the default `netem` that never applies
    /// one.
    async fn clear_netem(&self, node: NodeId) -> Result<(), ClusterError> {
        let _ = node;
        Ok(())
    }

    /// Copies the node's logs into `dir` (created if missing).
    async fn logs(&self, node: NodeId, dir: &Path) -> Result<(), ClusterError>;

    /// The node with this id, or `UnknownNode`.
    fn node(&self, id: NodeId) -> Result<&Node, ClusterError> {
        self.nodes()
            .iter()
            .find(|n| n.id == id)
            .ok_or(ClusterError::UnknownNode(id))
    }
}
