//! `Nemesis`: injects and removes faults on a [`Cluster`], and heals everything at the end.
//!
//! Fault kinds (the shape, node or skew is drawn from the seeded RNG at each start):
//! - `partition`: random halves, isolate one node, isolate the leader, majorities ring,
//!   bridge, or one-way (asymmetric) halves; removed when the fault stops (packet faults
//!   of a `netem` fault in effect at the same time stay).
//! - `kill`: SIGKILL one random node, or a majority at once; started again on stop.
//! - `pause`: freeze the leader when the probe knows it, else a random node; resumed on stop.
//! - `restart`: a graceful restart (SIGTERM, wait, start) of one node, or a rolling restart
//!   of every node in turn; done when the start returns, so the stop is a no-op.
//! - `netem`: a packet fault on a random node's egress, or (half the time) on its links to
//!   one or two random peers only: delayed 50-200 ms with jitter, a little loss, duplication
//!   and reordering, and sometimes a 64-1024 kbit/s rate limit; cleared on stop. The nemesis
//!   asks the cluster once what it can apply ([`Cluster::packet_caps`]) and draws only that:
//!   on Docker without `sch_netem` a loss of 1-5% and/or a rate limit (logged once), on the
//!   local backend no duplication or reordering.
//! - `clock`: a bump (ms to minutes, either way), a strobe, or a rate skew of the wall clock
//!   on one node, a majority, or every node (the leader among them when known); reset on
//!   stop.
//! - `disk`: a crash of every node at once (a power cut) that loses every write not yet
//!   fsynced (the nodes run the target's lose-unsynced file layer), or one node's WAL tail
//!   corrupted by a flipped byte while it is down; the nodes are started again on stop.
//!   The whole cluster, because nodes that stay up keep every entry the others lost, and
//!   Raft rightly elects one of them.
//! - `figure8`: a directed walk of five nodes into Figure 8 of the Raft paper (partitions,
//!   one delayed link, each step waiting on the leader probe), for leaders that commit
//!   earlier terms' entries by count; see [`figure8`](self::figure8). The partition it
//!   leaves, and a delay a walk that ended early left, are removed on stop.
//!
//! A kind the cluster cannot do at all comes back as `ClusterError::Unsupported`, which the
//! schedule skips. Every cluster call is bounded by [`CLUSTER_CALL_TIMEOUT`] on top of the
//! backend's own limits, so a stuck backend cannot hang the run.
//!
//! The nemesis keeps track of what it may have broken (network rules applied, nodes killed
//! or paused, packet faults, skewed clocks) even when a call failed half-way, so
//! [`Nemesis::heal_all`] undoes everything. Faults of different kinds may be in effect at
//! once (the schedule runs one stream per kind); the tracking sets make that safe.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use tokio::task::AbortHandle;

use crate::active::ActiveFault;
use crate::clock::ClockSkew;
use crate::cluster::{Cluster, ClusterError};
use crate::fault::{DiskFault, FaultKind, PartitionShape};
use crate::grudge::Grudge;
use crate::netem::{NetemSpec, PacketCaps, PacketFault};
use crate::node::NodeId;
use crate::probe::LeaderProbe;
use crate::shapes::Shapes;

pub mod figure8;

/// Longest a single cluster call may take before the nemesis gives up on it.
pub const CLUSTER_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per heal step at the end of a run.
pub const HEAL_ATTEMPTS: usize = 3;
/// Pause between nodes in a rolling restart, so each one rejoins before the next goes.
const ROLLING_GAP: Duration = Duration::from_millis(1_500);

/// What the final heal did; `errors` is empty when everything is back to normal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealReport {
    /// Nodes started again.
    pub restarted: Vec<NodeId>,
    /// Nodes resumed from a pause.
    pub resumed: Vec<NodeId>,
    /// Nodes whose packet fault was cleared.
    pub netem_cleared: Vec<NodeId>,
    /// Nodes whose clock was reset.
    pub clocks_reset: Vec<NodeId>,
    pub errors: Vec<String>,
}

/// Injects faults into one cluster.
pub struct Nemesis<C: Cluster + ?Sized> {
    cluster: Arc<C>,
    leader: Option<Arc<dyn LeaderProbe>>,
    rng: StdRng,
    /// Network rules may be in place (set before the call, cleared after a heal).
    partitioned: bool,
    /// Nodes that may be down because we killed (or stopped) them.
    killed: BTreeSet<NodeId>,
    /// Nodes that may be frozen because we paused them.
    paused: BTreeSet<NodeId>,
    /// Nodes that may have a packet fault from us.
    netem: BTreeSet<NodeId>,
    /// Nodes whose clock may be skewed by us.
    skewed: BTreeSet<NodeId>,
    /// Strobe tasks flipping clocks, by node; aborted before a reset.
    strobes: BTreeMap<NodeId, AbortHandle>,
    /// What the cluster can do with packet faults, once asked.
    packet_caps: Option<PacketCaps>,
    /// Shapes to draw from (all when empty).
    shapes: Shapes,
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

/// Marks `node` unsupported-safe: an `Unsupported` error changed nothing, any other may have.
fn changed_nothing(e: &ClusterError) -> bool {
    matches!(e, ClusterError::Unsupported { .. })
}

impl<C: Cluster + ?Sized + 'static> Nemesis<C> {
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
            skewed: BTreeSet::new(),
            strobes: BTreeMap::new(),
            packet_caps: None,
            shapes: Shapes::default(),
        }
    }

    /// Draws partitions and clock faults only of these shapes.
    pub fn with_shapes(mut self, shapes: Shapes) -> Nemesis<C> {
        self.shapes = shapes;
        self
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.cluster.nodes().iter().map(|n| n.id).collect()
    }

    /// A random majority of `nodes` (with `first` in it when given), in id order.
    fn majority(&mut self, nodes: &[NodeId], first: Option<NodeId>) -> Vec<NodeId> {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(&mut self.rng);
        if let Some(f) = first {
            shuffled.retain(|n| *n != f);
            shuffled.insert(0, f);
        }
        shuffled.truncate(nodes.len() / 2 + 1);
        shuffled.sort();
        shuffled
    }

    /// Injects a fault of `kind`. On error nothing is reported as injected, but what may
    /// have been done is remembered for [`Nemesis::heal_all`].
    pub async fn start(&mut self, kind: FaultKind) -> Result<ActiveFault, ClusterError> {
        let nodes = self.node_ids();
        let Some(&random_node) = nodes.choose(&mut self.rng) else {
            return Err(ClusterError::Unsupported {
                op: "nemesis",
                backend: "this cluster",
                reason: "the cluster has no nodes".into(),
            });
        };
        match kind {
            FaultKind::Partition => self.start_partition(&nodes, random_node).await,
            FaultKind::Kill => {
                if nodes.len() >= 3 && self.rng.random_bool(0.3) {
                    let victims = self.majority(&nodes, None);
                    self.kill_all(&victims).await?;
                    Ok(ActiveFault::KillMajority { nodes: victims })
                } else {
                    self.kill_all(&[random_node]).await?;
                    Ok(ActiveFault::Kill { node: random_node })
                }
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
                    if changed_nothing(&e) {
                        self.paused.remove(&node);
                    }
                    return Err(e);
                }
                Ok(ActiveFault::Pause {
                    node,
                    leader: leader.is_some(),
                })
            }
            FaultKind::Restart => {
                let rolling = nodes.len() > 1 && self.rng.random_bool(0.3);
                let targets = if rolling {
                    nodes.clone()
                } else {
                    vec![random_node]
                };
                for (i, &node) in targets.iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(ROLLING_GAP).await;
                    }
                    self.restart_gracefully(node).await?;
                }
                Ok(ActiveFault::Restart {
                    nodes: targets,
                    rolling,
                })
            }
            FaultKind::Netem => self.start_netem(&nodes, random_node).await,
            FaultKind::Figure8 => self.start_figure8(&nodes).await,
            FaultKind::Clock => {
                let skew = ClockSkew::random_of(&mut self.rng, &self.shapes.clock);
                // A leader with a wrong clock is where clock bugs bite (leases); include it.
                // Every node at once (as an NTP server gone wrong would do) also catches
                // whichever node leads next.
                let leader = self.current_leader(&nodes).await;
                let targets = match self.rng.random_range(0..3u32) {
                    0 => vec![leader.unwrap_or(random_node)],
                    1 => self.majority(&nodes, leader),
                    _ => nodes.clone(),
                };
                self.start_clock(&targets, skew).await?;
                Ok(ActiveFault::Clock {
                    nodes: targets,
                    skew,
                })
            }
            FaultKind::Disk => {
                if self.rng.random_bool(0.5) {
                    self.kill_all(&nodes).await?;
                    Ok(ActiveFault::Disk {
                        nodes: nodes.clone(),
                        fault: DiskFault::LoseUnsynced,
                        detail: None,
                    })
                } else {
                    let node = random_node;
                    self.kill_all(&[node]).await?;
                    let cluster = self.cluster.clone();
                    let call = cluster.corrupt_log_tail(node);
                    let detail = bounded("corrupt log tail", node.to_string(), call).await?;
                    Ok(ActiveFault::Disk {
                        nodes: vec![node],
                        fault: DiskFault::CorruptTail,
                        detail: Some(detail),
                    })
                }
            }
        }
    }

    /// What the cluster can do with packet faults: asked once, and logged once when it is
    /// less than everything.
    async fn packet_caps(&mut self) -> Result<PacketCaps, ClusterError> {
        if let Some(caps) = self.packet_caps {
            return Ok(caps);
        }
        let cluster = self.cluster.clone();
        let caps = bounded("packet caps", "cluster".into(), cluster.packet_caps()).await?;
        if caps != PacketCaps::ALL && !caps.is_none() {
            tracing::warn!(
                can = %caps,
                cannot = %caps.lacking().join(", "),
                "the cluster cannot apply every part of a packet fault; netem faults will \
                 use only what it can"
            );
        }
        self.packet_caps = Some(caps);
        Ok(caps)
    }

    async fn start_netem(
        &mut self,
        nodes: &[NodeId],
        node: NodeId,
    ) -> Result<ActiveFault, ClusterError> {
        let caps = self.packet_caps().await?;
        let Some(spec) = NetemSpec::random(&mut self.rng, caps) else {
            return Err(ClusterError::Unsupported {
                op: "netem",
                backend: "this cluster",
                reason: format!("the cluster can apply no packet fault (it can do {caps})"),
            });
        };
        let peers: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != node).collect();
        let fault = if caps.per_link && !peers.is_empty() && self.rng.random_bool(0.5) {
            let count = self.rng.random_range(1..=peers.len().min(2));
            let to: Vec<NodeId> = peers
                .choose_multiple(&mut self.rng, count)
                .copied()
                .collect();
            PacketFault::links(spec, &to)
        } else {
            PacketFault::node_wide(spec)
        };
        self.apply_netem(node, &fault).await?;
        Ok(ActiveFault::Netem { node, fault })
    }

    /// Puts `fault` on `node`'s egress, remembering it for the heal unless the cluster
    /// refused it outright.
    async fn apply_netem(&mut self, node: NodeId, fault: &PacketFault) -> Result<(), ClusterError> {
        self.netem.insert(node);
        let cluster = self.cluster.clone();
        let call = cluster.netem(node, fault);
        if let Err(e) = bounded("netem", fault.target(node), call).await {
            if changed_nothing(&e) {
                self.netem.remove(&node);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Clears `node`'s packet fault.
    async fn clear_netem_of(&mut self, node: NodeId) -> Result<(), ClusterError> {
        let cluster = self.cluster.clone();
        bounded("clear netem", node.to_string(), cluster.clear_netem(node)).await?;
        self.netem.remove(&node);
        Ok(())
    }

    /// Replaces the partition with `grudge` (marked for the heal before the call).
    async fn set_partition(&mut self, grudge: &Grudge) -> Result<(), ClusterError> {
        self.partitioned = true;
        let cluster = self.cluster.clone();
        bounded("partition", grudge.to_string(), cluster.partition(grudge)).await
    }

    async fn start_partition(
        &mut self,
        nodes: &[NodeId],
        random_node: NodeId,
    ) -> Result<ActiveFault, ClusterError> {
        // By default isolating the leader is drawn three times as often as each other
        // shape: most consensus bugs (stale reads, lost acknowledgements, leases) live in a
        // leader that cannot reach its followers.
        let weighted = if self.shapes.partition.is_empty() {
            PartitionShape::DEFAULT
                .iter()
                .chain([PartitionShape::IsolateLeader; 2].iter())
                .copied()
                .collect::<Vec<_>>()
        } else {
            self.shapes.partition.clone()
        };
        let mut shape = *weighted
            .choose(&mut self.rng)
            .unwrap_or(&PartitionShape::RandomHalves);
        let grudge = match shape {
            PartitionShape::RandomHalves => Grudge::random_halves(nodes, &mut self.rng),
            PartitionShape::IsolateOne => Grudge::isolate(nodes, random_node),
            PartitionShape::IsolateLeader => match self.current_leader(nodes).await {
                Some(l) => Grudge::isolate(nodes, l),
                None => {
                    tracing::info!("no leader known; isolating a random node");
                    shape = PartitionShape::IsolateOne;
                    Grudge::isolate(nodes, random_node)
                }
            },
            PartitionShape::IsolateFollower => match self.current_leader(nodes).await {
                Some(l) => {
                    let followers: Vec<NodeId> =
                        nodes.iter().copied().filter(|&n| n != l).collect();
                    match followers.choose(&mut self.rng) {
                        Some(&f) => Grudge::isolate(nodes, f),
                        // A cluster of one: its only node leads.
                        None => Grudge::isolate(nodes, l),
                    }
                }
                None => {
                    tracing::info!("no leader known; isolating a random node");
                    shape = PartitionShape::IsolateOne;
                    Grudge::isolate(nodes, random_node)
                }
            },
            PartitionShape::MajoritiesRing => Grudge::majorities_ring(nodes, &mut self.rng),
            PartitionShape::Bridge => Grudge::bridge(nodes, &mut self.rng),
            PartitionShape::OneWay => Grudge::one_way(nodes, &mut self.rng),
        };
        self.set_partition(&grudge).await?;
        Ok(ActiveFault::Partition { shape, grudge })
    }

    /// SIGKILLs every node in `victims` at once (as close together as the backend can).
    async fn kill_all(&mut self, victims: &[NodeId]) -> Result<(), ClusterError> {
        self.killed.extend(victims.iter().copied());
        let cluster = self.cluster.clone();
        let kills = victims.iter().map(|&node| {
            let cluster = cluster.clone();
            async move { bounded("kill", node.to_string(), cluster.kill(node)).await }
        });
        let results = futures_util::future::join_all(kills).await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(())
    }

    async fn restart_gracefully(&mut self, node: NodeId) -> Result<(), ClusterError> {
        let cluster = self.cluster.clone();
        self.killed.insert(node);
        if let Err(e) = bounded("terminate", node.to_string(), cluster.terminate(node)).await {
            if changed_nothing(&e) {
                self.killed.remove(&node);
            }
            return Err(e);
        }
        bounded("start", node.to_string(), cluster.start(node)).await?;
        self.killed.remove(&node);
        Ok(())
    }

    async fn start_clock(
        &mut self,
        targets: &[NodeId],
        skew: ClockSkew,
    ) -> Result<(), ClusterError> {
        let (offset_ms, rate) = skew.initial();
        for &node in targets {
            self.skewed.insert(node);
            let cluster = self.cluster.clone();
            let call = cluster.clock(node, offset_ms, rate);
            if let Err(e) = bounded("clock", node.to_string(), call).await {
                if changed_nothing(&e) {
                    self.skewed.remove(&node);
                }
                return Err(e);
            }
            if let ClockSkew::Strobe {
                delta_ms,
                period_ms,
            } = skew
            {
                let cluster = self.cluster.clone();
                let task = tokio::spawn(async move {
                    let period = Duration::from_millis(period_ms.max(1));
                    let mut on = true;
                    loop {
                        tokio::time::sleep(period).await;
                        on = !on;
                        let offset = if on { delta_ms } else { 0 };
                        let call = cluster.clock(node, offset, 1.0);
                        if let Err(e) = bounded("clock strobe", node.to_string(), call).await {
                            tracing::warn!(%node, error = %e, "clock strobe step failed");
                        }
                    }
                });
                if let Some(old) = self.strobes.insert(node, task.abort_handle()) {
                    old.abort();
                }
            }
        }
        Ok(())
    }

    /// Stops any strobe on `node` and sets its clock back to real time.
    async fn reset_clock(&mut self, node: NodeId) -> Result<(), ClusterError> {
        if let Some(strobe) = self.strobes.remove(&node) {
            strobe.abort();
        }
        let cluster = self.cluster.clone();
        bounded("clock reset", node.to_string(), cluster.clock(node, 0, 1.0)).await?;
        self.skewed.remove(&node);
        Ok(())
    }

    /// The probed leader, if there is a probe and it names one of `nodes`.
    async fn current_leader(&self, nodes: &[NodeId]) -> Option<NodeId> {
        match &self.leader {
            Some(p) => p.leader().await.filter(|l| nodes.contains(l)),
            None => None,
        }
    }

    /// Removes `fault`: heals the network, starts killed nodes again, resumes, clears, or
    /// resets clocks.
    pub async fn stop(&mut self, fault: &ActiveFault) -> Result<(), ClusterError> {
        let cluster = self.cluster.clone();
        match fault {
            ActiveFault::Partition { .. } => self.clear_partition().await?,
            ActiveFault::Kill { node } => self.start_all(&[*node]).await?,
            ActiveFault::KillMajority { nodes } | ActiveFault::Disk { nodes, .. } => {
                self.start_all(nodes).await?
            }
            ActiveFault::Pause { node, .. } => {
                bounded("resume", node.to_string(), cluster.resume(*node)).await?;
                self.paused.remove(node);
            }
            ActiveFault::Restart { .. } => {}
            ActiveFault::Netem { node, .. } => self.clear_netem_of(*node).await?,
            ActiveFault::Clock { nodes, .. } => {
                for &node in nodes {
                    self.reset_clock(node).await?;
                }
            }
            ActiveFault::Figure8 { roles, .. } => {
                self.clear_partition().await?;
                // Each step clears the delay of the one before; a walk that ended early
                // left its step's delay on.
                for node in [roles.usurper, roles.old] {
                    if self.netem.contains(&node) {
                        self.clear_netem_of(node).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the partition only: a packet fault of a `netem` stream that runs at the same
    /// time stays until its own stop (a heal would clear it too).
    async fn clear_partition(&mut self) -> Result<(), ClusterError> {
        self.set_partition(&Grudge::new()).await?;
        self.partitioned = false;
        Ok(())
    }

    async fn start_all(&mut self, nodes: &[NodeId]) -> Result<(), ClusterError> {
        let cluster = self.cluster.clone();
        for &node in nodes {
            bounded("start", node.to_string(), cluster.start(node)).await?;
            self.killed.remove(&node);
        }
        Ok(())
    }

    /// Whether anything may still be broken.
    pub fn is_healed(&self) -> bool {
        !self.partitioned
            && self.killed.is_empty()
            && self.paused.is_empty()
            && self.netem.is_empty()
            && self.skewed.is_empty()
    }

    /// Heals the network, clears every packet fault this nemesis may have left, resets
    /// clocks, resumes every node it may have paused and starts every node it may have
    /// killed, retrying each step [`HEAL_ATTEMPTS`] times. Always heals the network, even
    /// if no partition is known to be in place: a heal of a healed cluster is cheap, a
    /// leftover rule is not.
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
        for (_, strobe) in std::mem::take(&mut self.strobes) {
            strobe.abort();
        }
        for node in std::mem::take(&mut self.skewed) {
            let reset = retry(|| {
                let cluster = cluster.clone();
                async move {
                    bounded("clock reset", node.to_string(), cluster.clock(node, 0, 1.0)).await
                }
            })
            .await;
            match reset {
                Ok(()) => report.clocks_reset.push(node),
                Err(e) => {
                    self.skewed.insert(node);
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
            let started = retry(|| bounded("start", node.to_string(), cluster.start(node))).await;
            match started {
                Ok(()) => report.restarted.push(node),
                Err(e) => {
                    self.killed.insert(node);
                    report.errors.push(e.to_string());
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ClockShape;
    use async_trait::async_trait;

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
        assert_eq!(
            FaultKind::parse_list("clock,disk,restart").unwrap(),
            vec![FaultKind::Clock, FaultKind::Disk, FaultKind::Restart]
        );
        let err = FaultKind::parse_list("partition,flood")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"flood\""), "{err}");
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
        let n = ActiveFault::Netem {
            node: NodeId(1),
            fault: PacketFault::links(
                NetemSpec {
                    rate_kbit: 64,
                    loss_pct: 20,
                    ..NetemSpec::NONE
                },
                &[NodeId(3)],
            ),
        };
        assert_eq!(n.to_string(), "netem n1->n3 rate 64kbit loss 20%");
        assert_eq!(n.kind(), FaultKind::Netem);
        assert_eq!(
            serde_json::to_string(&n.describe()).unwrap(),
            r#"{"netem":"rate 64kbit loss 20%","node":"n1","to":["n3"]}"#
        );
        let wide = ActiveFault::Netem {
            node: NodeId(2),
            fault: PacketFault::node_wide(NetemSpec::delay(100)),
        };
        assert_eq!(wide.to_string(), "netem n2 delay 100ms");
        assert_eq!(
            serde_json::to_string(&wide.describe()).unwrap(),
            r#"{"netem":"delay 100ms","node":"n2"}"#
        );
    }

    /// A cluster that can apply the packet faults `caps` allows, and records them.
    struct PacketCluster {
        nodes: Vec<crate::node::Node>,
        caps: PacketCaps,
        caps_asked: std::sync::Mutex<usize>,
        applied: std::sync::Mutex<Vec<(NodeId, PacketFault)>>,
        cleared: std::sync::Mutex<Vec<NodeId>>,
        partitions: std::sync::Mutex<Vec<Grudge>>,
        heals: std::sync::Mutex<usize>,
    }

    impl PacketCluster {
        fn new(n: u32, caps: PacketCaps) -> Arc<PacketCluster> {
            Arc::new(PacketCluster {
                nodes: crate::node::test_nodes(n),
                caps,
                caps_asked: std::sync::Mutex::new(0),
                applied: std::sync::Mutex::new(Vec::new()),
                cleared: std::sync::Mutex::new(Vec::new()),
                partitions: std::sync::Mutex::new(Vec::new()),
                heals: std::sync::Mutex::new(0),
            })
        }
    }

    #[async_trait]
    impl Cluster for PacketCluster {
        fn nodes(&self) -> &[crate::node::Node] {
            &self.nodes
        }
        async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
            self.partitions.lock().unwrap().push(grudge.clone());
            Ok(())
        }
        /// Would clear every packet fault too.
        async fn heal(&self) -> Result<(), ClusterError> {
            *self.heals.lock().unwrap() += 1;
            Ok(())
        }
        async fn pause(&self, _node: NodeId) -> Result<(), ClusterError> {
            Ok(())
        }
        async fn resume(&self, _node: NodeId) -> Result<(), ClusterError> {
            Ok(())
        }
        async fn kill(&self, _node: NodeId) -> Result<(), ClusterError> {
            Ok(())
        }
        async fn start(&self, _node: NodeId) -> Result<(), ClusterError> {
            Ok(())
        }
        async fn clock(&self, _node: NodeId, _o: i64, _r: f64) -> Result<(), ClusterError> {
            Ok(())
        }
        async fn logs(&self, _node: NodeId, _dir: &std::path::Path) -> Result<(), ClusterError> {
            Ok(())
        }
        async fn packet_caps(&self) -> Result<PacketCaps, ClusterError> {
            *self.caps_asked.lock().unwrap() += 1;
            Ok(self.caps)
        }
        async fn netem(&self, node: NodeId, fault: &PacketFault) -> Result<(), ClusterError> {
            let missing = self.caps.missing(fault);
            if !missing.is_empty() {
                return Err(ClusterError::Unsupported {
                    op: "netem",
                    backend: "the test cluster",
                    reason: format!("cannot {}", missing.join(", ")),
                });
            }
            self.applied.lock().unwrap().push((node, fault.clone()));
            Ok(())
        }
        async fn clear_netem(&self, node: NodeId) -> Result<(), ClusterError> {
            self.cleared.lock().unwrap().push(node);
            Ok(())
        }
    }

    #[tokio::test]
    async fn netem_draws_only_what_the_cluster_can_apply() {
        let no_netem = PacketCaps {
            loss: true,
            rate: true,
            per_link: true,
            ..PacketCaps::NONE
        };
        let cluster = PacketCluster::new(5, no_netem);
        let mut nemesis = Nemesis::new(cluster.clone(), None, 5);
        let (mut per_link, mut wide) = (0, 0);
        for _ in 0..60 {
            let fault = nemesis.start(FaultKind::Netem).await.expect("applied");
            let ActiveFault::Netem { node, fault: pf } = &fault else {
                panic!("not netem: {fault}");
            };
            assert!(no_netem.missing(pf).is_empty(), "{fault}");
            assert!(!pf.spec.is_noop(), "{fault}");
            assert!(pf.validate(*node).is_ok(), "{fault}");
            assert!(pf.to.len() <= 2, "{fault}");
            if pf.to.is_empty() {
                wide += 1;
            } else {
                per_link += 1;
            }
            assert!(!nemesis.is_healed());
            nemesis.stop(&fault).await.expect("cleared");
            assert!(nemesis.is_healed());
        }
        assert!(
            per_link > 10 && wide > 10,
            "{per_link} per link, {wide} wide"
        );
        assert_eq!(*cluster.caps_asked.lock().unwrap(), 1, "asked once");
        assert_eq!(cluster.applied.lock().unwrap().len(), 60);
        assert_eq!(cluster.cleared.lock().unwrap().len(), 60);

        // With netem, delays are drawn, and some faults carry a rate limit.
        let cluster = PacketCluster::new(3, PacketCaps::ALL);
        let mut nemesis = Nemesis::new(cluster.clone(), None, 6);
        for _ in 0..40 {
            let fault = nemesis.start(FaultKind::Netem).await.expect("applied");
            nemesis.stop(&fault).await.expect("cleared");
        }
        let applied = cluster.applied.lock().unwrap();
        assert!(applied.iter().all(|(_, f)| f.spec.delay_ms > 0));
        assert!(applied.iter().any(|(_, f)| f.spec.rate_kbit > 0));
        assert!(applied.iter().any(|(_, f)| !f.to.is_empty()));
    }

    #[tokio::test]
    async fn stopping_a_partition_leaves_a_packet_fault_running_beside_it() {
        let cluster = PacketCluster::new(5, PacketCaps::ALL);
        let mut nemesis = Nemesis::new(cluster.clone(), None, 3);
        let packets = nemesis.start(FaultKind::Netem).await.expect("netem");
        let partition = nemesis
            .start(FaultKind::Partition)
            .await
            .expect("partition");
        nemesis.stop(&partition).await.expect("partition stopped");
        // The partition was replaced by none; no heal, which would clear the packet fault.
        let partitions = cluster.partitions.lock().unwrap().clone();
        assert_eq!(partitions.len(), 2, "{partitions:?}");
        assert_ne!(partitions[0], Grudge::new());
        assert_eq!(partitions[1], Grudge::new());
        assert_eq!(*cluster.heals.lock().unwrap(), 0);
        assert!(cluster.cleared.lock().unwrap().is_empty());
        assert!(!nemesis.is_healed(), "the packet fault is still on");
        let ActiveFault::Netem { node, .. } = &packets else {
            panic!("not netem: {packets}");
        };
        nemesis.stop(&packets).await.expect("netem stopped");
        assert_eq!(*cluster.cleared.lock().unwrap(), vec![*node]);
        assert!(nemesis.is_healed());
    }

    #[tokio::test]
    async fn a_cluster_without_packet_faults_is_refused_untracked() {
        let cluster = PacketCluster::new(3, PacketCaps::NONE);
        let mut nemesis = Nemesis::new(cluster.clone(), None, 1);
        let err = nemesis.start(FaultKind::Netem).await.unwrap_err();
        assert!(matches!(err, ClusterError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("no packet fault"), "{err}");
        assert!(nemesis.is_healed());
        assert!(cluster.applied.lock().unwrap().is_empty());
        // A single node has no links: its faults are node-wide.
        let alone = PacketCluster::new(1, PacketCaps::ALL);
        let mut nemesis = Nemesis::new(alone.clone(), None, 2);
        for _ in 0..10 {
            let fault = nemesis.start(FaultKind::Netem).await.expect("applied");
            nemesis.stop(&fault).await.expect("cleared");
        }
        assert!(alone
            .applied
            .lock()
            .unwrap()
            .iter()
            .all(|(_, f)| f.to.is_empty()));
    }

    #[tokio::test]
    async fn narrowed_shapes_are_the_only_ones_drawn() {
        let cluster = PacketCluster::new(5, PacketCaps::ALL);
        let shapes = Shapes {
            partition: vec![PartitionShape::Bridge, PartitionShape::OneWay],
            clock: vec![ClockShape::BumpBack],
        };
        let mut nemesis = Nemesis::new(cluster.clone(), None, 9).with_shapes(shapes);
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            let fault = nemesis
                .start(FaultKind::Partition)
                .await
                .expect("partition");
            match &fault {
                ActiveFault::Partition { shape, .. } => {
                    assert!(
                        matches!(shape, PartitionShape::Bridge | PartitionShape::OneWay),
                        "drew {shape}"
                    );
                    seen.insert(shape.name());
                }
                other => panic!("not a partition: {other}"),
            }
            nemesis.stop(&fault).await.expect("heal");
            let fault = nemesis.start(FaultKind::Clock).await.expect("clock");
            match &fault {
                ActiveFault::Clock {
                    skew: ClockSkew::Bump { offset_ms },
                    ..
                } => assert!(*offset_ms < 0, "a bump forward: {offset_ms}"),
                other => panic!("not a bump back: {other}"),
            }
            nemesis.stop(&fault).await.expect("reset");
        }
        assert_eq!(seen.len(), 2, "both shapes drawn: {seen:?}");
    }

    #[tokio::test]
    async fn isolate_follower_cuts_off_every_follower_but_never_the_leader() {
        let cluster = PacketCluster::new(5, PacketCaps::ALL);
        let nodes: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let shapes = Shapes {
            partition: vec![PartitionShape::IsolateFollower],
            ..Shapes::default()
        };
        let probe: Arc<dyn LeaderProbe> = Arc::new(crate::probe::FixedLeader(NodeId(3)));
        let mut nemesis = Nemesis::new(cluster.clone(), Some(probe), 4).with_shapes(shapes);
        let mut isolated = BTreeSet::new();
        for _ in 0..40 {
            let fault = nemesis
                .start(FaultKind::Partition)
                .await
                .expect("partition");
            let ActiveFault::Partition { shape, grudge } = &fault else {
                panic!("not a partition: {fault}");
            };
            assert_eq!(*shape, PartitionShape::IsolateFollower);
            let alone = nodes
                .iter()
                .copied()
                .find(|&n| Grudge::isolate(&nodes, n) == *grudge)
                .unwrap_or_else(|| panic!("not one node cut off: {grudge}"));
            isolated.insert(alone);
            nemesis.stop(&fault).await.expect("heal");
        }
        assert_eq!(
            isolated,
            [1, 2, 4, 5].into_iter().map(NodeId).collect(),
            "every follower, and only followers"
        );

        // With no leader known it isolates a random node and says so.
        let mut blind = Nemesis::new(cluster.clone(), None, 4).with_shapes(Shapes {
            partition: vec![PartitionShape::IsolateFollower],
            ..Shapes::default()
        });
        let fault = blind.start(FaultKind::Partition).await.expect("partition");
        assert!(
            matches!(
                fault,
                ActiveFault::Partition {
                    shape: PartitionShape::IsolateOne,
                    ..
                }
            ),
            "{fault}"
        );
    }
}
