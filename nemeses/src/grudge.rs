//! `Grudge`: a network partition as data. For each node, the set of nodes whose packets it
//! drops. Constructors build the partitions Jepsen made standard (random halves, isolating a
//! node, majorities ring, bridge); every backend applies a grudge the same way, so the same
//! seed gives the same fault on Docker and on local processes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// Node -> the nodes it drops traffic from. Absent nodes drop nothing. A grudge may be
/// asymmetric (one-way partitions); the constructors here build symmetric ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grudge {
    drops: BTreeMap<NodeId, BTreeSet<NodeId>>,
}

impl Grudge {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `to` drop packets from `from` (one direction only). A node never drops itself.
    pub fn drop_one_way(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.drops.entry(to).or_default().insert(from);
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.drop_one_way(a, b);
        self.drop_one_way(b, a);
    }

    /// Every node in one component drops every node in the other components; nodes in the
    /// same component still talk. Nodes in no component are left untouched.
    pub fn from_components(components: &[Vec<NodeId>]) -> Self {
        let mut grudge = Self::new();
        for (i, a) in components.iter().enumerate() {
            for b in components.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        grudge.cut(x, y);
                    }
                }
            }
        }
        grudge
    }

    /// Splits the nodes at random into a minority and a majority (sizes n/2 and n - n/2).
    pub fn random_halves<R: Rng + ?Sized>(nodes: &[NodeId], rng: &mut R) -> Self {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let (minority, majority) = shuffled.split_at(nodes.len() / 2);
        Self::from_components(&[minority.to_vec(), majority.to_vec()])
    }

    /// Cuts `node` off from every other node.
    pub fn isolate(nodes: &[NodeId], node: NodeId) -> Self {
        let rest: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != node).collect();
        Self::from_components(&[vec![node], rest])
    }

    /// Every node sees a majority (itself and its nearest neighbours on a random ring), but
    /// no two nodes see the same majority, so no stable leader-with-majority view exists.
    /// With fewer than 5 nodes every majority is the whole ring minus at most one node, and
    /// the result may be empty.
    pub fn majorities_ring<R: Rng + ?Sized>(nodes: &[NodeId], rng: &mut R) -> Self {
        let mut ring = nodes.to_vec();
        ring.shuffle(rng);
        let n = ring.len();
        let majority = n / 2 + 1;
        // Seeing everyone within `reach` on both sides gives 2*reach+1 >= majority nodes.
        let reach = majority / 2;
        let mut grudge = Self::new();
        for i in 0..n {
            for j in 0..n {
                let d = i.abs_diff(j);
                let ring_distance = d.min(n - d);
                if ring_distance > reach {
                    grudge.drop_one_way(ring[j], ring[i]);
                }
            }
        }
        grudge
    }

    /// Two halves that cannot talk to each other, plus one random bridge node that talks to
    /// both: each half plus the bridge may be a majority, so two leaders can be elected.
    pub fn bridge<R: Rng + ?Sized>(nodes: &[NodeId], rng: &mut R) -> Self {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        if shuffled.len() < 3 {
            return Self::new();
        }
        let bridge_node = shuffled.remove(0);
        let (a, b) = shuffled.split_at(shuffled.len() / 2);
        debug_assert!(!a.contains(&bridge_node) && !b.contains(&bridge_node));
        Self::from_components(&[a.to_vec(), b.to_vec()])
    }

    /// An asymmetric split: the nodes fall at random into two halves, and the first half
    /// drops every packet from the second while the second still hears the first. Raft
    /// sees requests arrive but no answers come back, the shape that exposes leaders
    /// which trust one-way heartbeats.
    pub fn one_way<R: Rng + ?Sized>(nodes: &[NodeId], rng: &mut R) -> Self {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let (deaf, loud) = shuffled.split_at(shuffled.len() / 2);
        let mut grudge = Self::new();
        for &to in deaf {
            for &from in loud {
                grudge.drop_one_way(from, to);
            }
        }
        grudge
    }

    /// The nodes `node` drops traffic from.
    pub fn drops_from(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.drops.get(&node).into_iter().flatten().copied()
    }

    /// True if `to` drops packets coming from `from`.
    pub fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        self.drops.get(&to).is_some_and(|s| s.contains(&from))
    }

    /// True if no node drops anything.
    pub fn is_empty(&self) -> bool {
        self.drops.values().all(BTreeSet::is_empty)
    }

    /// Nodes `node` still hears from, itself included.
    pub fn visible_from(&self, nodes: &[NodeId], node: NodeId) -> BTreeSet<NodeId> {
        nodes
            .iter()
            .copied()
            .filter(|&other| !self.blocks(other, node))
            .collect()
    }
}

impl fmt::Display for Grudge {
    /// Compact form for history and logs: `n1<-{n2,n3} n4<-{n5}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (node, from) in self.drops.iter().filter(|(_, s)| !s.is_empty()) {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list: Vec<String> = from.iter().map(ToString::to_string).collect();
            write!(f, "{node}<-{{{}}}", list.join(","))?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ids(n: u32) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    fn symmetric(g: &Grudge, nodes: &[NodeId]) -> bool {
        nodes
            .iter()
            .all(|&a| nodes.iter().all(|&b| g.blocks(a, b) == g.blocks(b, a)))
    }

    #[test]
    fn isolate_cuts_exactly_one_node() {
        let nodes = ids(5);
        let g = Grudge::isolate(&nodes, NodeId(3));
        assert_eq!(
            g.visible_from(&nodes, NodeId(3)),
            BTreeSet::from([NodeId(3)])
        );
        for &n in nodes.iter().filter(|&&n| n != NodeId(3)) {
            assert_eq!(g.visible_from(&nodes, n).len(), 4);
            assert!(g.blocks(NodeId(3), n) && g.blocks(n, NodeId(3)));
        }
        assert_eq!(
            g.to_string(),
            "n1<-{n3} n2<-{n3} n3<-{n1,n2,n4,n5} n4<-{n3} n5<-{n3}"
        );
    }

    #[test]
    fn one_way_drop_is_asymmetric_and_self_drop_ignored() {
        let mut g = Grudge::new();
        g.drop_one_way(NodeId(1), NodeId(2));
        g.drop_one_way(NodeId(4), NodeId(4));
        assert!(g.blocks(NodeId(1), NodeId(2)));
        assert!(!g.blocks(NodeId(2), NodeId(1)));
        assert!(!g.blocks(NodeId(4), NodeId(4)));
        assert_eq!(g.to_string(), "n2<-{n1}");
        assert_eq!(Grudge::new().to_string(), "none");
        assert!(Grudge::new().is_empty());
    }

    #[test]
    fn majorities_ring_of_five_gives_distinct_majorities() {
        let nodes = ids(5);
        let g = Grudge::majorities_ring(&nodes, &mut StdRng::seed_from_u64(7));
        let views: BTreeSet<BTreeSet<NodeId>> =
            nodes.iter().map(|&n| g.visible_from(&nodes, n)).collect();
        assert_eq!(views.len(), 5, "every node sees a different majority");
        assert!(views.iter().all(|v| v.len() == 3));
    }

    proptest! {
        #[test]
        fn random_halves_is_a_symmetric_two_way_split(n in 1u32..12, seed in any::<u64>()) {
            let nodes = ids(n);
            let g = Grudge::random_halves(&nodes, &mut StdRng::seed_from_u64(seed));
            prop_assert!(symmetric(&g, &nodes));
            let views: BTreeSet<BTreeSet<NodeId>> =
                nodes.iter().map(|&x| g.visible_from(&nodes, x)).collect();
            // Each node sees exactly its own side; the sides cover all nodes.
            let sizes: Vec<usize> = views.iter().map(BTreeSet::len).collect();
            prop_assert_eq!(sizes.iter().sum::<usize>(), n as usize);
            if n >= 2 {
                prop_assert_eq!(views.len(), 2);
                prop_assert!(sizes.contains(&((n / 2) as usize)));
            }
        }

        #[test]
        fn majorities_ring_gives_everyone_a_majority(n in 1u32..12, seed in any::<u64>()) {
            let nodes = ids(n);
            let g = Grudge::majorities_ring(&nodes, &mut StdRng::seed_from_u64(seed));
            prop_assert!(symmetric(&g, &nodes));
            let majority = n as usize / 2 + 1;
            for &x in &nodes {
                let seen = g.visible_from(&nodes, x);
                prop_assert!(seen.len() >= majority && seen.contains(&x));
            }
            if n >= 5 {
                prop_assert!(!g.is_empty());
            }
        }

        #[test]
        fn bridge_node_sees_all_and_halves_split(n in 3u32..12, seed in any::<u64>()) {
            let nodes = ids(n);
            let g = Grudge::bridge(&nodes, &mut StdRng::seed_from_u64(seed));
            prop_assert!(symmetric(&g, &nodes));
            let bridges: Vec<NodeId> = nodes
                .iter()
                .copied()
                .filter(|&x| g.visible_from(&nodes, x).len() == n as usize)
                .collect();
            prop_assert_eq!(bridges.len(), 1);
            // Everyone else sees their half plus the bridge, never the other half.
            for &x in nodes.iter().filter(|&&x| x != bridges[0]) {
                let seen = g.visible_from(&nodes, x);
                prop_assert!(seen.contains(&bridges[0]));
                prop_assert!(seen.len() < n as usize);
            }
        }

        #[test]
        fn one_way_cuts_exactly_one_direction(n in 2u32..12, seed in any::<u64>()) {
            let nodes = ids(n);
            let g = Grudge::one_way(&nodes, &mut StdRng::seed_from_u64(seed));
            prop_assert!(!g.is_empty());
            for &a in &nodes {
                for &b in &nodes {
                    // Never both directions: whoever drops is never dropped by the other.
                    prop_assert!(!(g.blocks(a, b) && g.blocks(b, a)));
                }
            }
            let deaf: Vec<NodeId> = nodes
                .iter()
                .copied()
                .filter(|&x| g.drops_from(x).next().is_some())
                .collect();
            prop_assert_eq!(deaf.len(), n as usize / 2);
        }
    }
}
