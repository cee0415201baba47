//! `Nemesis`: injects and removes one fault at a time on a [`Cluster`], and heals
//! everything at the end.
//!
//! Fault kinds for now: `partition` (random halves, isolate one node, isolate the leader,
//! majorities ring; the shape is drawn from the seeded RNG at each start) and `kill`
//! (SIGKILL a random node; it is started again when the fault stops). Every cluster call
//! is bounded by [`CLUSTER_CALL_TIMEOUT`] on top of the backend's own limits, so a stuck
//! backend cannot hang the run.
//!
//! The nemesis keeps track of what it may have broken (network rules applied, nodes
//! killed) even when a call failed half-way, so [`Nemesis::heal_all`] undoes everything.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faultline_checker::Value;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, ClusterError, NodeId};
use crate::grudge::Grudge;

/// Longest a single cluster call may take before the nemesis gives up on it.
pub const CLUSTER_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per heal step at the end of a run.
pub const HEAL_ATTEMPTS: usize = 3;

/// A family of faults the schedule can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Kill,
}

impl FaultKind {
    pub const ALL: [FaultKind; 2] = [FaultKind::Partition, FaultKind::Kill];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
        }
    }

    /// Parses a comma-separated list such as `partition,kill` (empty or `none`: no faults).
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, UnknownFault> {
        let mut kinds = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "none" {
                continue;
            }
            let kind = part.parse()?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown fault name.
#[derive(Debug, thiserror::Error)]
#[error("unknown nemesis {0:?}; expected a comma-separated list of: partition, kill (or none)")]
pub struct UnknownFault(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<FaultKind, UnknownFault> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// The shapes a partition can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionShape {
    RandomHalves,
    IsolateOne,
    IsolateLeader,
    MajoritiesRing,
}

impl PartitionShape {
    pub const ALL: [PartitionShape; 4] = [
        PartitionShape::RandomHalves,
        PartitionShape::IsolateOne,
        PartitionShape::IsolateLeader,
        PartitionShape::MajoritiesRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::RandomHalves => "random-halves",
            PartitionShape::IsolateOne => "isolate-one",
            PartitionShape::IsolateLeader => "isolate-leader",
            PartitionShape::MajoritiesRing => "majorities-ring",
        }
    }
}

/// Finds the current leader, for faults aimed at it. The harness passes one that asks the
/// target (e.g. raftkv's `/status`); `None` when no leader is known.
#[async_trait]
pub trait LeaderProbe: Send + Sync {
    async fn leader(&self) -> Option<NodeId>;
}

/// A fault currently in effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveFault {
    Partition {
        shape: PartitionShape,
        grudge: Grudge,
    },
    Kill {
        node: NodeId,
    },
}

impl ActiveFault {
    pub fn kind(&self) -> FaultKind {
        match self {
            ActiveFault::Partition { .. } => FaultKind::Partition,
            ActiveFault::Kill { .. } => FaultKind::Kill,
        }
    }

    /// The value of the history event describing this fault.
    pub fn describe(&self) -> Value {
        let mut m = std::collections::BTreeMap::new();
        match self {
            ActiveFault::Partition { shape, grudge } => {
                m.insert("shape".to_string(), Value::from(shape.name()));
                m.insert("grudge".to_string(), Value::from(grudge.to_string()));
            }
            ActiveFault::Kill { node } => {
                m.insert("node".to_string(), Value::from(node.to_string()));
            }
        }
        Value::Map(m)
    }
}

impl fmt::Display for ActiveFault {
    /// For the progress line: `partition isolate-leader n1<-{n2,...}`, `kill n3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActiveFault::Partition { shape, grudge } => {
                write!(f, "partition {} {grudge}", shape.name())
            }
            ActiveFault::Kill { node } => write!(f, "kill {node}"),
        }
    }
}

/// What the final heal did; `errors` is empty when everything is back to normal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealReport {
    /// Nodes started again.
    pub restarted: Vec<NodeId>,
    pub errors: Vec<String>,
}

/// Injects faults into one cluster.
pub struct Nemesis<C: Cluster + ?Sized> {
    cluster: Arc<C>,
    leader: Option<Arc<dyn LeaderProbe>>,
    rng: StdRng,
    /// Network rules may be in place (set before the call, cleared after a heal).
    partitioned: bool,
    /// Nodes that may be down because we killed them.
    killed: BTreeSet<NodeId>,
}

/// Runs a cluster call with the nemesis's time bound.
async fn bounded<T>(
    op: &'static str,
    target: String,
    call: impl Future<Output = Result<T, ClusterError>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(CLUSTER_CALL_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(ClusterError::Timeout {
            op,
            target,
            timeout_ms: u64::try_from(CLUSTER_CALL_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

impl<C: Cluster + ?Sized> Nemesis<C> {
    /// `seed` makes the choice of shapes and nodes reproducible.
    pub fn new(cluster: Arc<C>, leader: Option<Arc<dyn LeaderProbe>>, seed: u64) -> Nemesis<C> {
        Nemesis {
            cluster,
            leader,
            rng: StdRng::seed_from_u64(seed),
            partitioned: false,
            killed: BTreeSet::new(),
        }
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.cluster.nodes().iter().map(|n| n.id).collect()
    }

    /// Injects a fault of `kind`. On error nothing is reported as injected, but what may
    /// have been done is remembered for [`Nemesis::heal_all`].
    pub async fn start(&mut self, kind: FaultKind) -> Result<ActiveFault, ClusterError> {
        let nodes = self.node_ids();
        let Some(&random_node) = nodes.choose(&mut self.rng) else {
            return Err(ClusterError::Unsupported {
                op: "nemesis",
                backend: "any",
                reason: "the cluster has no nodes".into(),
            });
        };
        match kind {
            FaultKind::Partition => {
                let mut shape = *PartitionShape::ALL
                    .choose(&mut self.rng)
                    .unwrap_or(&PartitionShape::RandomHalves);
                let grudge = match shape {
                    PartitionShape::RandomHalves => Grudge::random_halves(&nodes, &mut self.rng),
                    PartitionShape::IsolateOne => Grudge::isolate(&nodes, random_node),
                    PartitionShape::IsolateLeader => {
                        let leader = match &self.leader {
                            Some(p) => p.leader().await.filter(|l| nodes.contains(l)),
                            None => None,
                        };
                        match leader {
                            Some(l) => Grudge::isolate(&nodes, l),
                            None => {
                                tracing::info!("no leader known; isolating a random node");
                                shape = PartitionShape::IsolateOne;
                                Grudge::isolate(&nodes, random_node)
                            }
                        }
                    }
                    PartitionShape::MajoritiesRing => {
                        Grudge::majorities_ring(&nodes, &mut self.rng)
                    }
                };
                self.partitioned = true;
                let cluster = self.cluster.clone();
                bounded("partition", grudge.to_string(), cluster.partition(&grudge)).await?;
                Ok(ActiveFault::Partition { shape, grudge })
            }
            FaultKind::Kill => {
                self.killed.insert(random_node);
                let cluster = self.cluster.clone();
                bounded("kill", random_node.to_string(), cluster.kill(random_node)).await?;
                Ok(ActiveFault::Kill { node: random_node })
            }
        }
    }

    /// Removes `fault`: heals the network, or starts the killed node again.
    pub async fn stop(&mut self, fault: &ActiveFault) -> Result<(), ClusterError> {
        let cluster = self.cluster.clone();
        match fault {
            ActiveFault::Partition { .. } => {
                bounded("heal", "cluster".into(), cluster.heal()).await?;
                self.partitioned = false;
            }
            ActiveFault::Kill { node } => {
                bounded("start", node.to_string(), cluster.start(*node)).await?;
                self.killed.remove(node);
            }
        }
        Ok(())
    }

    /// Whether anything may still be broken.
    pub fn is_healed(&self) -> bool {
        !self.partitioned && self.killed.is_empty()
    }

    /// Heals the network and starts every node this nemesis may have killed, retrying each
    /// step [`HEAL_ATTEMPTS`] times. Always heals the network, even if no partition is
    /// known to be in place: a heal of a healed cluster is cheap, a leftover rule is not.
    pub async fn heal_all(&mut self) -> HealReport {
        let mut report = HealReport::default();
        let cluster = self.cluster.clone();
        let mut last_err = None;
        for _ in 0..HEAL_ATTEMPTS {
            match bounded("heal", "cluster".into(), cluster.heal()).await {
                Ok(()) => {
                    self.partitioned = false;
                    last_err = None;
                    break;
                }
                Err(e) => last_err = Some(e.to_string()),
            }
        }
        report.errors.extend(last_err);
        for node in std::mem::take(&mut self.killed) {
            let mut last_err = None;
            for _ in 0..HEAL_ATTEMPTS {
                match bounded("start", node.to_string(), cluster.start(node)).await {
                    Ok(()) => {
                        last_err = None;
                        break;
                    }
                    Err(e) => last_err = Some(e.to_string()),
                }
            }
            match last_err {
                None => report.restarted.push(node),
                Some(e) => {
                    self.killed.insert(node);
                    report.errors.push(e);
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse() {
        assert_eq!(
            FaultKind::parse_list("partition,kill").unwrap(),
            vec![FaultKind::Partition, FaultKind::Kill]
        );
        assert_eq!(
            FaultKind::parse_list(" kill , kill").unwrap(),
            vec![FaultKind::Kill]
        );
        assert!(FaultKind::parse_list("none").unwrap().is_empty());
        assert!(FaultKind::parse_list("").unwrap().is_empty());
        let err = FaultKind::parse_list("partition,clock")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"clock\""), "{err}");
    }

    #[test]
    fn faults_describe_themselves() {
        let f = ActiveFault::Kill { node: NodeId(3) };
        assert_eq!(f.to_string(), "kill n3");
        assert_eq!(f.kind(), FaultKind::Kill);
        assert_eq!(
            serde_json::to_string(&f.describe()).unwrap(),
            r#"{"node":"n3"}"#
        );
        let g = Grudge::isolate(&[NodeId(1), NodeId(2)], NodeId(1));
        let p = ActiveFault::Partition {
            shape: PartitionShape::IsolateLeader,
            grudge: g,
        };
        assert_eq!(p.to_string(), "partition isolate-leader n1<-{n2} n2<-{n1}");
    }
}
