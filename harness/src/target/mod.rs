//! Targets: the systems faultline can test, behind one small trait. A [`TargetDriver`]
//! says how a node of the target runs in the node image (its command line; the image
//! holds raftkv and Debian's `etcd-server`), which client speaks its API (each client in
//! `faultline-workloads` maps the workloads' requests onto that API), and which faults
//! cannot be applied to it. Every target here logs to stdout/stderr, which the backend
//! copies into the run's `nodes/<node>/server.log`.
//!
//! [`external`] runs the workloads against a cluster faultline did not start
//! (`--endpoints`), where no fault that needs control of a node can be injected.

pub mod consul;
pub mod etcd;
pub mod external;
pub mod raftkv;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_nemeses::{FaultKind, LeaderProbe, NodeId};
use faultline_workloads::{
    Client, Completion, ConsulClient, EtcdClient, Fencing, RaftKvClient, Request,
};
use serde::{Deserialize, Serialize};

use crate::docker::NodeProgram;
use crate::run::config::{Target, TestConfig};

/// Target settings beyond the common ones; part of the run's `config.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetOptions {
    /// Client addresses of a cluster faultline did not start (`--endpoints`); empty: start
    /// one on the backend.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// Reads served from the member's local state (etcd `serializable: true`, Consul
    /// `?stale`), which may be stale.
    pub serializable: bool,
    /// Lock-workload writes as plain puts instead of writes the store checks against the
    /// lock (etcd: a txn on the lock key's create revision; Consul: `check-session`).
    pub unfenced_writes: bool,
}

/// Why a target cannot be used as configured.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{target} cannot run in a node image here: {reason}")]
    NotInstallable {
        target: &'static str,
        reason: &'static str,
    },
    #[error("{target} client: {reason}")]
    Client {
        target: &'static str,
        reason: String,
    },
}

/// What faultline needs to know about one target system.
pub trait TargetDriver: Sync {
    fn name(&self) -> &'static str;

    /// The command each node runs, with the backend's placeholders (`{id}`, `{ip}`,
    /// `{peers}`, ...); the program itself must be in the node image.
    fn node_program(&self, config: &TestConfig) -> Result<NodeProgram, TargetError>;

    /// The client for `addrs` (one client address per node, in node order).
    fn client(&self, addrs: &[String], config: &TestConfig) -> Result<TargetClient, TargetError>;

    /// Why `kind` cannot be injected into this target, if it cannot.
    fn refuses(&self, kind: FaultKind) -> Option<String> {
        let _ = kind;
        None
    }
}

/// The driver of `target`.
pub fn driver(target: Target) -> &'static dyn TargetDriver {
    match target {
        Target::Raftkv => &raftkv::RaftKv,
        Target::Etcd => &etcd::Etcd,
        Target::Consul => &consul::Consul,
    }
}

/// Checks the target-specific parts of a configuration: faults the target cannot take,
/// and faults an external cluster cannot take. The message says what to change.
pub fn validate(config: &TestConfig) -> Result<(), String> {
    let d = driver(config.target);
    for &kind in &config.nemesis {
        if let Some(why) = d.refuses(kind) {
            return Err(format!(
                "the {} nemesis cannot be used with --target {}: {why}",
                kind.name(),
                d.name()
            ));
        }
    }
    if config.target_options.endpoints.is_empty() {
        d.node_program(config).map_err(|e| e.to_string())?;
    } else {
        if let Some(kind) = config.nemesis.first() {
            return Err(format!(
                "--endpoints tests a cluster faultline did not start, so it cannot {} its \
                 nodes; use --nemesis none (only the workload runs)",
                external::verb(*kind)
            ));
        }
        if config.target_options.endpoints.len() > 64 {
            return Err("at most 64 --endpoints".into());
        }
    }
    Ok(())
}

/// The lock-write mode the options ask for.
pub fn fencing(options: &TargetOptions) -> Fencing {
    if options.unfenced_writes {
        Fencing::None
    } else {
        Fencing::Checked
    }
}

/// A client of any target (enum dispatch: [`Client`] is not object-safe).
#[derive(Clone, Debug)]
pub enum TargetClient {
    Raftkv(RaftKvClient),
    Etcd(EtcdClient),
    Consul(Arc<ConsulClient>),
}

impl TargetClient {
    /// The index of the node that is the leader now, if one is known.
    pub async fn leader(&self) -> Option<usize> {
        match self {
            TargetClient::Raftkv(c) => c.leader().await,
            TargetClient::Etcd(c) => c.leader().await,
            TargetClient::Consul(c) => c.leader().await,
        }
    }
}

impl Client for TargetClient {
    async fn call(&self, process: u64, request: &Request, timeout: Duration) -> Completion {
        match self {
            TargetClient::Raftkv(c) => c.call(process, request, timeout).await,
            TargetClient::Etcd(c) => c.call(process, request, timeout).await,
            TargetClient::Consul(c) => c.call(process, request, timeout).await,
        }
    }
}

/// The leader as the target's client finds it, for the nemesis.
pub struct TargetLeader {
    pub client: TargetClient,
    /// `ids[i]` is the node behind the client's i-th address.
    pub ids: Vec<NodeId>,
}

#[async_trait]
impl LeaderProbe for TargetLeader {
    async fn leader(&self) -> Option<NodeId> {
        let i = self.client.leader().await?;
        self.ids.get(i).copied()
    }

    async fn commit_index(&self, node: NodeId) -> Option<u64> {
        let i = self.ids.iter().position(|id| *id == node)?;
        match &self.client {
            TargetClient::Raftkv(c) => c.commit_index(i).await,
            TargetClient::Etcd(c) => c.commit_index(i).await,
            // Consul's status API is not asked; the faults that use this fall back to timing.
            TargetClient::Consul(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(target: Target, nemesis: Vec<FaultKind>, endpoints: &[&str]) -> TestConfig {
        TestConfig {
            target,
            nemesis,
            target_options: TargetOptions {
                endpoints: endpoints.iter().map(ToString::to_string).collect(),
                ..TargetOptions::default()
            },
            ..TestConfig::default()
        }
    }

    #[test]
    fn etcd_refuses_clock_faults_and_says_why() {
        let err = validate(&config(Target::Etcd, vec![FaultKind::Clock], &[])).unwrap_err();
        assert!(err.contains("clock") && err.contains("vDSO"), "{err}");
        assert!(validate(&config(
            Target::Etcd,
            vec![FaultKind::Partition, FaultKind::Kill, FaultKind::Pause],
            &[]
        ))
        .is_ok());
        assert!(validate(&config(Target::Raftkv, vec![FaultKind::Clock], &[])).is_ok());
    }

    #[test]
    fn external_clusters_take_no_node_faults() {
        let e = ["http://127.0.0.1:2379"];
        let err = validate(&config(Target::Etcd, vec![FaultKind::Kill], &e)).unwrap_err();
        assert!(
            err.contains("--endpoints") && err.contains("--nemesis none"),
            "{err}"
        );
        assert!(validate(&config(Target::Etcd, vec![], &e)).is_ok());
        assert!(validate(&config(Target::Consul, vec![], &e)).is_ok());
    }

    #[test]
    fn etcd_program_runs_etcd_without_faketime() {
        let p = driver(Target::Etcd)
            .node_program(&TestConfig::default())
            .unwrap();
        assert!(!p.faketime);
        assert!(p.args.join(" ").contains("exec etcd"), "{:?}", p.args);
        assert!(driver(Target::Consul)
            .node_program(&TestConfig::default())
            .is_err());
    }
}
