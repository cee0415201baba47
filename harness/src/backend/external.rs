//! `ExternalCluster`: a cluster faultline did not start (`--endpoints`). Its nodes are the
//! given client addresses; faultline cannot partition, pause, kill or skew them, so every
//! fault is `Unsupported` (configuration validation refuses such nemeses up front, with a
//! message, before anything runs). There is nothing to heal, and node logs stay where the
//! cluster's operator keeps them.

use std::path::Path;

use async_trait::async_trait;
use faultline_nemeses::{Cluster, ClusterError, Grudge, Node, NodeId, PacketCaps, PacketFault};

/// The nodes of an external cluster, from `--endpoints`.
pub struct ExternalCluster {
    nodes: Vec<Node>,
}

/// The endpoint's `host:port`, without a scheme or trailing slash.
fn host_port(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    e.split_once("://").map_or(e, |(_, rest)| rest).to_string()
}

impl ExternalCluster {
    pub fn new(endpoints: &[String]) -> ExternalCluster {
        let nodes = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| Node {
                id: NodeId(i as u32 + 1),
                name: format!("n{}", i + 1),
                client_addr: host_port(e),
            })
            .collect();
        ExternalCluster { nodes }
    }

    fn refuse(op: &'static str) -> ClusterError {
        ClusterError::Unsupported {
            op,
            backend: "an external cluster",
            reason: "faultline did not start this cluster and has no control over its nodes".into(),
        }
    }
}

#[async_trait]
impl Cluster for ExternalCluster {
    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
        let _ = grudge;
        Err(Self::refuse("partition"))
    }

    /// Nothing was ever injected, so the cluster is already healed.
    async fn heal(&self) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn pause(&self, _node: NodeId) -> Result<(), ClusterError> {
        Err(Self::refuse("pause"))
    }

    /// Never paused, so already running.
    async fn resume(&self, _node: NodeId) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn kill(&self, _node: NodeId) -> Result<(), ClusterError> {
        Err(Self::refuse("kill"))
    }

    /// Never killed, so already started.
    async fn start(&self, _node: NodeId) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn clock(&self, _node: NodeId, _offset_ms: i64, _rate: f64) -> Result<(), ClusterError> {
        Err(Self::refuse("clock"))
    }

    async fn packet_caps(&self) -> Result<PacketCaps, ClusterError> {
        Err(Self::refuse("netem"))
    }

    async fn netem(&self, _node: NodeId, _fault: &PacketFault) -> Result<(), ClusterError> {
        Err(Self::refuse("netem"))
    }

    /// The operator keeps the logs; nothing to copy.
    async fn logs(&self, _node: NodeId, _dir: &Path) -> Result<(), ClusterError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_become_nodes_and_faults_are_refused() {
        let c = ExternalCluster::new(&["http://10.0.0.1:2379/".into(), "10.0.0.2:2379".into()]);
        assert_eq!(c.nodes()[0].client_addr, "10.0.0.1:2379");
        assert_eq!(c.nodes()[1].name, "n2");
        let e = c.kill(NodeId(1)).await.unwrap_err().to_string();
        assert!(e.contains("external") && e.contains("did not start"), "{e}");
        assert!(c.partition(&Grudge::new()).await.is_err());
        assert!(c.heal().await.is_ok());
    }
}
