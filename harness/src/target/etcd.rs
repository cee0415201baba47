//! etcd as a target: Debian's `etcd-server` (3.4), from the node base image on Docker and
//! from the PATH locally; one member per node (clients on 2379, peers on 2380 where a node
//! has an address of its own), spoken to through its v3 JSON gateway by `EtcdClient`.
//!
//! etcd is a Go program: it reads the clock through the vDSO, not libc, so libfaketime
//! cannot skew it and clock faults are refused.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_nemeses::FaultKind;
use faultline_workloads::{Client, Completion, EtcdClient, EtcdOptions, Request};

use super::{ClientContext, NodeParams, TargetClient, TargetDriver, TargetError, TargetOptions};
use crate::backend::{NodeSpec, Peering, Program, Readiness, Refusal};

/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const ETCD_PEER_PORT: u16 = 2380;

pub struct Etcd;

#[async_trait]
impl TargetDriver for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    /// Member `{name}`, its data directly in the node's data folder. A restarted member
    /// finds its data and ignores the initial-cluster flags.
    fn node_spec(&self, _params: &NodeParams<'_>) -> Result<NodeSpec, TargetError> {
        let args = [
            "--name",
            "{name}",
            "--data-dir",
            "{data_dir}",
            "--listen-client-urls",
            "http://{listen}",
            "--advertise-client-urls",
            "http://{host}:{port}",
            "--listen-peer-urls",
            "http://{peer_listen}",
            "--initial-advertise-peer-urls",
            "http://{peer_advertise}",
            "--initial-cluster",
            "{peers}",
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "faultline",
        ];
        Ok(NodeSpec {
            target: self.name().to_string(),
            program: Program::Installed {
                name: "etcd".into(),
                install: "Debian or Ubuntu: apt-get install etcd-server".into(),
            },
            args: args.iter().map(ToString::to_string).collect(),
            env: Vec::new(),
            client_port: ETCD_CLIENT_PORT,
            peering: Peering::Shared {
                peer_port: ETCD_PEER_PORT,
            },
            peer_entry: "{name}=http://{addr}".into(),
            readiness: Readiness::ClientPort,
            log_files: Vec::new(),
            // etcd's WAL checks each record's CRC and refuses to start on a mismatch; the
            // harness does not corrupt it (a disk fault's power cut still applies).
            wal: None,
            refused: vec![Refusal {
                kind: FaultKind::Clock,
                reason: "etcd is a Go program and reads the clock through the vDSO, not \
                         libc, so libfaketime cannot skew it"
                    .into(),
            }],
            setup: Vec::new(),
            folder: None,
            packages: Vec::new(),
        })
    }

    async fn client(
        &self,
        addrs: &[String],
        options: &TargetOptions,
        _context: &ClientContext,
    ) -> Result<Arc<dyn TargetClient>, TargetError> {
        let client = EtcdClient::new(
            addrs,
            EtcdOptions {
                serializable: options.serializable,
                fencing: options.fencing(),
            },
        )
        .map_err(|e| TargetError::Client {
            target: "etcd",
            reason: e.to_string(),
        })?;
        Ok(Arc::new(client))
    }
}

#[async_trait]
impl TargetClient for EtcdClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        Client::call(self, process, request, timeout).await
    }

    async fn leader(&self) -> Option<usize> {
        EtcdClient::leader(self).await
    }

    async fn commit_index(&self, node: usize) -> Option<u64> {
        EtcdClient::commit_index(self, node).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NodeValues;
    use faultline_nemeses::NodeId;

    #[test]
    fn members_share_one_peer_list_and_refuse_clock_faults() {
        let params = NodeParams {
            nemesis: &[],
            op_timeout_ms: 2_000,
            bugs: &[],
            bundled_binary: None,
        };
        let spec = Etcd.node_spec(&params).unwrap();
        spec.check().unwrap();
        assert!(!spec.clock_faults());
        let values = NodeValues {
            id: NodeId(2),
            name: "n2".into(),
            host: "127.0.0.12".into(),
            port: 4000,
            listen: "127.0.0.12:4000".into(),
            data_dir: "/r/n2/data".into(),
            peers: vec![
                (NodeId(1), "n1".into(), "127.0.0.11:5001".into()),
                (NodeId(2), "n2".into(), "127.0.0.12:5002".into()),
            ],
            peer_listen: "127.0.0.12:4001".into(),
            peer_advertise: "127.0.0.12:5002".into(),
            target_dir: String::new(),
        };
        let line = spec.render_args(&values).join(" ");
        for part in [
            "--name n2",
            "--data-dir /r/n2/data",
            "--listen-client-urls http://127.0.0.12:4000",
            "--advertise-client-urls http://127.0.0.12:4000",
            "--listen-peer-urls http://127.0.0.12:4001",
            "--initial-advertise-peer-urls http://127.0.0.12:5002",
            "--initial-cluster n1=http://127.0.0.11:5001,n2=http://127.0.0.12:5002",
            "--initial-cluster-token faultline",
        ] {
            assert!(line.contains(part), "{part} missing: {line}");
        }
        assert!(!line.contains('{'), "a placeholder was left: {line}");
    }
}
