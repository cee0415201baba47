//! `figure8`: a directed fault that walks a five-node Raft cluster into the situation of
//! Figure 8 of the Raft paper (§5.4.2), where a leader that commits an entry of an earlier
//! term by counting its replicas loses it to a later leader. A correct leader commits only
//! entries of its own term there, so a correct cluster stays linearizable; the fault is
//! for the bug class "commits old-term entries by count" (raftkv's `old-term-commit`).
//!
//! Roles: `old` (the leader when the fault starts), `partner`, `voter`, `follower` and
//! `usurper`. Three steps, each a partition (and a delay on one link), each waiting on the
//! leader probe:
//!
//! 1. `{old, partner} | {voter, follower, usurper}` with `voter`-`follower` cut, so only
//!    `usurper` (which reaches both) can win the right side, and `usurper -> voter` delayed
//!    by [`LINK_DELAY`]. `old` keeps appending its clients' writes, which only `partner`
//!    gets, until it steps down. `usurper` wins with `voter`'s vote; its first entry (the
//!    no-op of its term) reaches `follower` at once and is on its way to `voter`.
//! 2. As soon as the probe names `usurper`: `{old, partner, voter}` with `partner`-`voter`
//!    cut, `usurper` and `follower` alone. The cut kills the delayed no-op, so `voter`
//!    voted for `usurper` and holds nothing of its term. Only `old` (which reaches both
//!    others) can win now, with `partner`'s and `voter`'s votes; `old -> voter` is delayed.
//!    `partner` gets `old`'s new no-op at once. `voter` first gets `old`'s entries of the
//!    earlier term (one per message when the target sends one per message: raftkv runs
//!    with `--max-append-entries 1` under this fault), its no-op only a round trip later.
//!    A leader with the bug commits the first old-term entry as soon as `voter` holds it
//!    (three of five), and answers that write's client.
//! 3. As soon as `old`'s commit index moves (the probe asks it; where the target does not
//!    tell, [`CUT_AFTER`] after the probe named it leader), before its no-op reaches
//!    `voter`: `{old, partner} | {voter, follower, usurper}`. The logs of `usurper` and
//!    `follower` (which hold `usurper`'s no-op) are more up to date than `voter`'s
//!    (old-term entries only), so one of them wins with `voter`'s vote and overwrites the
//!    entry `old` committed: a write a client was told of is gone, and a later read or
//!    cas of its key can show it.
//!
//! Each wait is bounded by [`STEP_LIMIT`]; a step that does not happen ends the fault
//! there, and the fault's record says how far it got. Message timings make it hit only
//! sometimes (each cut has a window of about one link delay, and a target with one request
//! in flight per peer adds up to one more delay per hop), so a test needs several faults
//! or tries.

use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use tokio::time::Instant;

use super::Nemesis;
use crate::active::ActiveFault;
use crate::cluster::{Cluster, ClusterError};
use crate::fault::{Figure8Roles, Figure8Stage};
use crate::grudge::Grudge;
use crate::netem::{NetemSpec, PacketFault};
use crate::node::NodeId;

/// Nodes the scenario needs: a majority of three that can be formed three ways.
pub const FIGURE8_NODES: usize = 5;
/// Delay on the one slow link of steps 1 and 2: long enough for the probe to see a new
/// leader (and `old`'s commit) before its next message crosses; short enough for
/// elections (150-300 ms timeouts) to finish across it, and for `voter`'s first answer to
/// reach `old` before `old`'s first quorum check (150 ms after its election) even when the
/// message waited behind another request.
pub const LINK_DELAY: Duration = Duration::from_millis(60);
/// Without a commit index from the probe, when step 3 cuts `old` off after the probe named
/// it leader, as a range the cut is drawn from: its message to `voter` is rejected after
/// one or two delays, the old-term entry arrives one or two later and is committed on its
/// acknowledgement, the no-op one or two after that.
pub const CUT_AFTER: (Duration, Duration) =
    (Duration::from_millis(150), Duration::from_millis(240));
/// Longest wait for `old`'s commit index to move before step 3 cuts anyway.
pub const COMMIT_LIMIT: Duration = Duration::from_secs(1);
/// Longest wait for each election the scenario needs.
pub const STEP_LIMIT: Duration = Duration::from_secs(5);
/// How often the leader probe is asked while waiting.
const POLL: Duration = Duration::from_millis(5);

impl Figure8Roles {
    /// Step 1: only `usurper` can win the majority side.
    fn split(&self) -> Grudge {
        let mut g = Grudge::from_components(&[
            vec![self.old, self.partner],
            vec![self.voter, self.follower, self.usurper],
        ]);
        g.cut(self.voter, self.follower);
        g
    }

    /// Step 2: only `old` can win, with `partner` and `voter`.
    fn reelect_old(&self) -> Grudge {
        let mut g = Grudge::from_components(&[
            vec![self.old, self.partner, self.voter],
            vec![self.follower],
            vec![self.usurper],
        ]);
        g.cut(self.partner, self.voter);
        g
    }

    /// Step 3: the side whose log is ahead by term, without `old`'s no-op.
    fn overwrite(&self) -> Grudge {
        Grudge::from_components(&[
            vec![self.old, self.partner],
            vec![self.voter, self.follower, self.usurper],
        ])
    }
}

impl<C: Cluster + ?Sized + 'static> Nemesis<C> {
    pub(super) async fn start_figure8(
        &mut self,
        nodes: &[NodeId],
    ) -> Result<ActiveFault, ClusterError> {
        let unsupported = |reason: String| ClusterError::Unsupported {
            op: "figure8",
            backend: "this cluster",
            reason,
        };
        if nodes.len() != FIGURE8_NODES {
            return Err(unsupported(format!(
                "the figure8 fault needs exactly {FIGURE8_NODES} nodes, the cluster has {}",
                nodes.len()
            )));
        }
        if self.leader.is_none() {
            return Err(unsupported(
                "the figure8 fault follows elections and needs a leader probe".into(),
            ));
        }
        let caps = self.packet_caps().await?;
        if !(caps.delay && caps.per_link) {
            return Err(unsupported(format!(
                "the figure8 fault delays single links, and the cluster's packet faults \
                 can do only {caps}"
            )));
        }
        let mut others: Vec<NodeId> = nodes.to_vec();
        let old = match self.current_leader(nodes).await {
            Some(l) => l,
            None => {
                tracing::info!("no leader known; figure8 starts from a random node");
                *others.choose(&mut self.rng).expect("five nodes")
            }
        };
        others.retain(|n| *n != old);
        others.shuffle(&mut self.rng);
        let roles = Figure8Roles {
            old,
            partner: others[0],
            voter: others[1],
            follower: others[2],
            usurper: others[3],
        };
        let delay = u32::try_from(LINK_DELAY.as_millis()).unwrap_or(u32::MAX);
        let cut_after = self.rng.random_range(CUT_AFTER.0..=CUT_AFTER.1);

        let split = roles.split();
        self.set_partition(&split).await?;
        self.slow_link(roles.usurper, roles.voter, delay).await?;
        let mut fault = ActiveFault::Figure8 {
            roles,
            reached: Figure8Stage::Split,
            grudge: split,
        };
        if !self.await_leader(nodes, roles.usurper).await {
            return Ok(fault);
        }

        let reelect = roles.reelect_old();
        self.set_partition(&reelect).await?;
        self.clear_netem_of(roles.usurper).await?;
        self.slow_link(roles.old, roles.voter, delay).await?;
        fault = ActiveFault::Figure8 {
            roles,
            reached: Figure8Stage::UsurperElected,
            grudge: reelect,
        };
        if !self.await_leader(nodes, roles.old).await {
            return Ok(fault);
        }
        let reached = if self.await_commit(roles.old).await {
            Figure8Stage::OldCommitted
        } else {
            tokio::time::sleep(cut_after).await;
            Figure8Stage::OldReelected
        };

        let overwrite = roles.overwrite();
        self.set_partition(&overwrite).await?;
        self.clear_netem_of(roles.old).await?;
        Ok(ActiveFault::Figure8 {
            roles,
            reached,
            grudge: overwrite,
        })
    }

    /// Waits until `node`'s commit index moves past what it is now; false at once when the
    /// probe does not tell, and after [`COMMIT_LIMIT`] when it does not move.
    async fn await_commit(&self, node: NodeId) -> bool {
        let Some(probe) = self.leader.clone() else {
            return false;
        };
        let Some(start) = probe.commit_index(node).await else {
            return false;
        };
        let deadline = Instant::now() + COMMIT_LIMIT;
        while Instant::now() < deadline {
            if probe.commit_index(node).await.is_some_and(|c| c > start) {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(%node, "figure8: commit index did not move within {COMMIT_LIMIT:?}");
        false
    }

    /// Waits until the probe names `node` as the leader; false after [`STEP_LIMIT`].
    async fn await_leader(&self, nodes: &[NodeId], node: NodeId) -> bool {
        let deadline = Instant::now() + STEP_LIMIT;
        while Instant::now() < deadline {
            if self.current_leader(nodes).await == Some(node) {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(%node, "figure8: not elected within {STEP_LIMIT:?}; the fault stops here");
        false
    }

    /// Delays `from`'s packets to `to` by `delay_ms`.
    async fn slow_link(
        &mut self,
        from: NodeId,
        to: NodeId,
        delay_ms: u32,
    ) -> Result<(), ClusterError> {
        let fault = PacketFault::links(NetemSpec::delay(delay_ms), &[to]);
        self.apply_netem(from, &fault).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::fault::FaultKind;
    use crate::netem::PacketCaps;
    use crate::node::Node;
    use crate::probe::LeaderProbe;

    /// Five nodes that record every call. Its "election" is scripted: after a partition,
    /// the leader is the one node that reaches every other node of the largest side (what
    /// the walk's grudges leave to each step), and the leader's commit index moves
    /// `commit_moves_after` probe calls after it took office (never when `None`).
    struct Scripted {
        nodes: Vec<Node>,
        caps: PacketCaps,
        calls: Mutex<Vec<String>>,
        leader: Mutex<Option<NodeId>>,
        commit_asks: Mutex<u64>,
        commit_moves_after: Option<u64>,
    }

    impl Scripted {
        fn new(n: u32, caps: PacketCaps, commit_moves_after: Option<u64>) -> Arc<Scripted> {
            Arc::new(Scripted {
                nodes: crate::node::test_nodes(n),
                caps,
                calls: Mutex::new(Vec::new()),
                leader: Mutex::new(Some(NodeId(2))),
                commit_asks: Mutex::new(0),
                commit_moves_after,
            })
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn note(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    /// The node that hears and is heard by at least two others (a majority of five with
    /// itself), if exactly one does: with pre-vote, the only one that can win.
    fn only_possible_leader(nodes: &[NodeId], g: &Grudge) -> Option<NodeId> {
        let able: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&n| {
                let mutual = nodes
                    .iter()
                    .filter(|&&m| m != n && !g.blocks(n, m) && !g.blocks(m, n))
                    .count();
                mutual >= 2
            })
            .collect();
        (able.len() == 1).then(|| able[0])
    }

    #[async_trait]
    impl Cluster for Scripted {
        fn nodes(&self) -> &[Node] {
            &self.nodes
        }
        async fn partition(&self, grudge: &Grudge) -> Result<(), ClusterError> {
            self.note(format!("partition {grudge}"));
            let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
            *self.leader.lock().unwrap() = only_possible_leader(&ids, grudge);
            *self.commit_asks.lock().unwrap() = 0;
            Ok(())
        }
        async fn heal(&self) -> Result<(), ClusterError> {
            self.note("heal".into());
            Ok(())
        }
        async fn pause(&self, _: NodeId) -> Result<(), ClusterError> {
            unreachable!("figure8 pauses nothing")
        }
        async fn resume(&self, _: NodeId) -> Result<(), ClusterError> {
            unreachable!("figure8 resumes nothing")
        }
        async fn kill(&self, _: NodeId) -> Result<(), ClusterError> {
            unreachable!("figure8 kills nothing")
        }
        async fn start(&self, _: NodeId) -> Result<(), ClusterError> {
            unreachable!("figure8 starts nothing")
        }
        async fn clock(&self, _: NodeId, _: i64, _: f64) -> Result<(), ClusterError> {
            unreachable!("figure8 touches no clock")
        }
        async fn packet_caps(&self) -> Result<PacketCaps, ClusterError> {
            Ok(self.caps)
        }
        async fn netem(&self, node: NodeId, fault: &PacketFault) -> Result<(), ClusterError> {
            self.note(format!("netem {} {}", fault.target(node), fault.spec));
            Ok(())
        }
        async fn clear_netem(&self, node: NodeId) -> Result<(), ClusterError> {
            self.note(format!("clear netem {node}"));
            Ok(())
        }
        async fn logs(&self, _: NodeId, _: &Path) -> Result<(), ClusterError> {
            Ok(())
        }
    }

    struct Probe(Arc<Scripted>);

    #[async_trait]
    impl LeaderProbe for Probe {
        async fn leader(&self) -> Option<NodeId> {
            *self.0.leader.lock().unwrap()
        }
        async fn commit_index(&self, _node: NodeId) -> Option<u64> {
            let moves_after = self.0.commit_moves_after?;
            let mut asks = self.0.commit_asks.lock().unwrap();
            *asks += 1;
            Some(100 + u64::from(*asks > moves_after))
        }
    }

    fn nemesis(cluster: &Arc<Scripted>, seed: u64) -> Nemesis<Scripted> {
        let probe: Arc<dyn LeaderProbe> = Arc::new(Probe(cluster.clone()));
        Nemesis::new(cluster.clone(), Some(probe), seed)
    }

    #[tokio::test]
    async fn the_walk_re_elects_the_old_leader_and_cuts_it_off_when_it_commits() {
        let cluster = Scripted::new(5, PacketCaps::ALL, Some(3));
        let mut nemesis = nemesis(&cluster, 7);
        let fault = nemesis.start(FaultKind::Figure8).await.expect("figure8");
        let ActiveFault::Figure8 {
            roles,
            reached,
            grudge,
        } = &fault
        else {
            panic!("not a figure8 fault: {fault:?}");
        };
        assert_eq!(*reached, Figure8Stage::OldCommitted, "{fault}");
        // The probe named n2 leader when the walk began.
        assert_eq!(roles.old, NodeId(2));
        let mut all = vec![
            roles.old,
            roles.partner,
            roles.voter,
            roles.follower,
            roles.usurper,
        ];
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5, "every node has one role: {roles:?}");
        let delay = format!("delay {}ms", LINK_DELAY.as_millis());
        assert_eq!(
            cluster.calls(),
            vec![
                format!("partition {}", roles.split()),
                format!("netem {}->{} {delay}", roles.usurper, roles.voter),
                format!("partition {}", roles.reelect_old()),
                format!("clear netem {}", roles.usurper),
                format!("netem {}->{} {delay}", roles.old, roles.voter),
                format!("partition {}", roles.overwrite()),
                format!("clear netem {}", roles.old),
            ]
        );
        // Each step leaves exactly the node the walk needs as the only possible leader.
        let ids: Vec<NodeId> = (1..=5).map(NodeId).collect();
        assert_eq!(
            only_possible_leader(&ids, &roles.split()),
            Some(roles.usurper)
        );
        assert_eq!(
            only_possible_leader(&ids, &roles.reelect_old()),
            Some(roles.old)
        );
        // The last side holds voter, follower and usurper, and nobody else.
        for n in [roles.voter, roles.follower, roles.usurper] {
            assert!(!grudge.blocks(roles.usurper, n) && !grudge.blocks(n, roles.voter));
            assert!(grudge.blocks(roles.old, n) && grudge.blocks(n, roles.partner));
        }
        assert!(!nemesis.is_healed());
        nemesis.stop(&fault).await.expect("stop");
        // The partition goes, and nothing else: the walk has cleared its delays.
        assert_eq!(
            cluster.calls().last().map(String::as_str),
            Some("partition none")
        );
        assert!(nemesis.is_healed(), "nothing left to undo after the stop");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_commit_index_the_cut_is_timed_and_says_so() {
        let cluster = Scripted::new(5, PacketCaps::ALL, None);
        let mut nemesis = nemesis(&cluster, 3);
        let fault = nemesis.start(FaultKind::Figure8).await.expect("figure8");
        assert!(
            matches!(
                fault,
                ActiveFault::Figure8 {
                    reached: Figure8Stage::OldReelected,
                    ..
                }
            ),
            "{fault}"
        );
        let described = fault.describe().to_string();
        assert!(described.contains("old-reelected"), "{described}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_does_not_happen_ends_the_walk_there() {
        let cluster = Scripted::new(5, PacketCaps::ALL, Some(1));
        // Nobody ever wins: the walk waits STEP_LIMIT for the usurper, then stops at step 1.
        *cluster.leader.lock().unwrap() = None;
        struct Nobody;
        #[async_trait]
        impl LeaderProbe for Nobody {
            async fn leader(&self) -> Option<NodeId> {
                None
            }
        }
        let mut nemesis = Nemesis::new(cluster.clone(), Some(Arc::new(Nobody)), 1);
        let started = Instant::now();
        let fault = nemesis.start(FaultKind::Figure8).await.expect("figure8");
        assert!(started.elapsed() >= STEP_LIMIT);
        let ActiveFault::Figure8 { roles, reached, .. } = &fault else {
            panic!("{fault:?}");
        };
        assert_eq!(*reached, Figure8Stage::Split);
        assert_eq!(cluster.calls().len(), 2, "{:?}", cluster.calls());
        // The stop removes the partition and the delay the walk left.
        nemesis.stop(&fault).await.expect("stop");
        assert_eq!(
            cluster.calls()[2..],
            [
                "partition none".to_string(),
                format!("clear netem {}", roles.usurper)
            ]
        );
        assert!(
            nemesis.is_healed(),
            "usurper {} still marked",
            roles.usurper
        );
    }

    #[tokio::test]
    async fn it_refuses_what_it_cannot_do() {
        let small = Scripted::new(3, PacketCaps::ALL, None);
        let err = nemesis(&small, 1)
            .start(FaultKind::Figure8)
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("exactly 5 nodes"), "{err}");

        let no_delay = PacketCaps {
            delay: false,
            ..PacketCaps::ALL
        };
        let docker_like = Scripted::new(5, no_delay, None);
        let err = nemesis(&docker_like, 1)
            .start(FaultKind::Figure8)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("delays single links"), "{err}");
        assert!(docker_like.calls().is_empty(), "nothing was injected");

        let unprobed = Scripted::new(5, PacketCaps::ALL, None);
        let err = Nemesis::new(unprobed.clone(), None, 1)
            .start(FaultKind::Figure8)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("leader probe"), "{err}");
    }
}
