//! `Nemesis`: injects and removes one fault at a time on a [`Cluster`], and heals
//! everything at the end.
//!
//! Fault kinds for now: `partition` (random halves, isolate one node, isolate the leader,
//! majorities ring; the shape is drawn from the seeded RNG at each start), `kill`
//! (SIGKILL a random node; it is started again when the fault stops), `pause` (freeze
//! the leader when the probe knows it, else a random node; resumed when the fault stops)
//! and `netem` (a random node's packets delayed 50-200 ms with jitter, and a little loss,
//! duplication and reordering; cleared when the fault stops). A kind the cluster cannot do
//! at all comes back as `ClusterError::Unsupported`, which the schedule skips. Every cluster call
//! is bounded by [`CLUSTER_CALL_TIMEOUT`] on top of the backend's own limits, so a stuck
//! backend cannot hang the run.
//!
//! The nemesis keeps track of what it may have broken (network rules applied, nodes
//! killed or paused, packet faults) even when a call failed half-way, so [`Nemesis::heal_all`] undoes everything.

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
use crate::netem::NetemSpec;

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
    Pause,
    Netem,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Netem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Netem => "netem",
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
#[error(
    "unknown nemesis {0:?}; expected a comma-separated list of: partition, kill, pause, netem \
     (or none)"
)]
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
    Pause {
        node: NodeId,
        /// The node was the leader when it was chosen.
        leader: bool,
    },
    Netem {
        node: NodeId,
        spec: NetemSpec,
    },
}

impl ActiveFault {
    pub fn kind(&self) -> FaultKind {
        match self {
            ActiveFault::Partition { .. } => FaultKind::Partition,
            ActiveFault::Kill { .. } => FaultKind::Kill,
            ActiveFault::Pause { .. } => FaultKind::Pause,
            ActiveFault::Netem { .. } => FaultKind::Netem,
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
            ActiveFault::Pause { node, leader } => {
                m.insert("node".to_string(), Value::from(node.to_string()));
                m.insert("leader".to_string(), Value::Bool(*leader));
            }
            ActiveFault::Netem { node, spec } => {
                m.insert("node".to_string(), Value::from(node.to_string()));
                m.insert("netem".to_string(), Value::from(spec.to_string()));
            }
        }
        Value::Map(m)
    }
}

impl fmt::Display for ActiveFault {
    /// For the progress line: `partition isolate-leader n1<-{n2,...}`, `kill n3`,
    /// `pause n2 (leader)`, `netem n4 delay 120ms±30ms loss 2%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActiveFault::Partition { shape, grudge } => {
                write!(f, "partition {} {grudge}", shape.name())
            }
            ActiveFault::Kill { node } => write!(f, "kill {node}"),
            ActiveFault::Pause { node, leader: true } => write!(f, "pause {node} (leader)"),
            ActiveFault::Pause { node, .. } => write!(f, "pause {node}"),
            ActiveFault::Netem { node, spec } => write!(f, "netem {node} {spec}"),
        }
    }
}

/// What the final heal did; `errors` is empty when everything is back to normal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealReport {
    /// Nodes started again.
    pub restarted: Vec<NodeId>,
    /// Nodes resumed from a pause.
    pub resumed: Vec<NodeId>,
    /// Nodes whose packet fault was cleared.
    pub netem_cleared: Vec<NodeId>,
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
    /// Nodes that may be frozen because we paused them.
    paused: BTreeSet<NodeId>,
    /// Nodes that may have a packet fault from us.
    netem: BTreeSet<NodeId>,
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

/// Runs `call` up to [`HEAL_ATTEMPTS`] times, until it succeeds; returns the last error.
async fn retry<F, Fut>(mut call: F) -> Result<(), ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ClusterError>>,
{
    let mut result = Ok(());
    for _ in 0..HEAL_ATTEMPTS {
        result = call().await;
        if result.is_ok() {
            break;
        }
    }
    result
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
            paused: BTreeSet::new(),
            netem: BTreeSet::new(),
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
                    PartitionShape::IsolateLeader => match self.current_leader(&nodes).await {
                        Some(l) => Grudge::isolate(&nodes, l),
                        None => {
                            tracing::info!("no leader known; isolating a random node");
                            shape = PartitionShape::IsolateOne;
                            Grudge::isolate(&nodes, random_node)
                        }
                    },
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
            FaultKind::Pause => {
                let leader = self.current_leader(&nodes).await;
                if leader.is_none() {
                    tracing::info!("no leader known; pausing a random node");
                }
                let node = leader.unwrap_or(random_node);
                self.paused.insert(node);
                let cluster = self.cluster.clone();
                if let Err(e) = bounded("pause", node.to_string(), cluster.pause(node)).await {
                    // An unsupported pause froze nothing; any other error may have.
                    if matches!(e, ClusterError::Unsupported { .. }) {
                        self.paused.remove(&node);
                    }
                    return Err(e);
                }
                Ok(ActiveFault::Pause {
                    node,
                    leader: leader.is_some(),
                })
            }
            FaultKind::Netem => {
                let spec = NetemSpec::random(&mut self.rng);
                let node = random_node;
                self.netem.insert(node);
                let cluster = self.cluster.clone();
                let applied = bounded("netem", node.to_string(), cluster.netem(node, &spec)).await;
                if let Err(e) = applied {
                    if matches!(e, ClusterError::Unsupported { .. }) {
                        self.netem.remove(&node);
                    }
                    return Err(e);
                }
                Ok(ActiveFault::Netem { node, spec })
            }
        }
    }

    /// The probed leader, if there is a probe and it names one of `nodes`.
    async fn current_leader(&self, nodes: &[NodeId]) -> Option<NodeId> {
        match &self.leader {
            Some(p) => p.leader().await.filter(|l| nodes.contains(l)),
            None => None,
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
            ActiveFault::Pause { node, .. } => {
                bounded("resume", node.to_string(), cluster.resume(*node)).await?;
                self.paused.remove(node);
            }
            ActiveFault::Netem { node, .. } => {
                let cleared = cluster.clear_netem(*node);
                bounded("clear netem", node.to_string(), cleared).await?;
                self.netem.remove(node);
            }
        }
        Ok(())
    }

    /// Whether anything may still be broken.
    pub fn is_healed(&self) -> bool {
        !self.partitioned
            && self.killed.is_empty()
            && self.paused.is_empty()
            && self.netem.is_empty()
    }

    /// Heals the network, clears every packet fault this nemesis may have left, resumes
    /// every node it may have paused and starts every node it may have killed, retrying each step [`HEAL_ATTEMPTS`] times. Always heals the network, even if no partition is
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
        for node in std::mem::take(&mut self.netem) {
            let cleared = retry(|| {
                let cluster = cluster.clone();
                async move {
                    let call = cluster.clear_netem(node);
                    bounded("clear netem", node.to_string(), call).await
                }
            })
            .await;
            match cleared {
                Ok(()) => report.netem_cleared.push(node),
                Err(e) => {
                    self.netem.insert(node);
                    report.errors.push(e.to_string());
                }
            }
        }
        // Resume before starting: a node both paused and killed (kill thaws it first) is
        // covered either way, and a resumed node needs no restart.
        for node in std::mem::take(&mut self.paused) {
            let resumed = retry(|| bounded("resume", node.to_string(), cluster.resume(node))).await;
            match resumed {
                Ok(()) => report.resumed.push(node),
                Err(e) => {
                    self.paused.insert(node);
                    report.errors.push(e.to_string());
                }
            }
        }
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
        assert_eq!(
            FaultKind::parse_list("pause").unwrap(),
            vec![FaultKind::Pause]
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
        let p = ActiveFault::Pause {
            node: NodeId(2),
            leader: true,
        };
        assert_eq!(p.to_string(), "pause n2 (leader)");
        assert_eq!(p.kind(), FaultKind::Pause);
        let g = Grudge::isolate(&[NodeId(1), NodeId(2)], NodeId(1));
        let p = ActiveFault::Partition {
            shape: PartitionShape::IsolateLeader,
            grudge: g,
        };
        assert_eq!(p.to_string(), "partition isolate-leader n1<-{n2} n2<-{n1}");
    }
}
