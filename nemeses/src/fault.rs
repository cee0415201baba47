//! The fault vocabulary: the kinds of fault a schedule draws from ([`FaultKind`]), the
//! shapes a partition takes, what a disk fault does, and who plays which part in the
//! Figure 8 walk. Data only; [`crate::nemesis`] injects them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::node::NodeId;

/// A family of faults the schedule can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Partition,
    Kill,
    Pause,
    Restart,
    Netem,
    Clock,
    Disk,
    Figure8,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Restart,
        FaultKind::Netem,
        FaultKind::Clock,
        FaultKind::Disk,
        FaultKind::Figure8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Netem => "netem",
            FaultKind::Clock => "clock",
            FaultKind::Disk => "disk",
            FaultKind::Figure8 => "figure8",
        }
    }

    /// What a fault of this kind does to nodes, for messages ("cannot {verb} its nodes").
    pub fn verb(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Restart => "restart",
            FaultKind::Netem => "delay or drop packets of",
            FaultKind::Clock => "skew the clocks of",
            FaultKind::Disk => "corrupt the disks of",
            FaultKind::Figure8 => "partition and delay links between",
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
    "unknown nemesis {0:?}; expected a comma-separated list of: partition, kill, pause, \
     restart, netem, clock, disk, figure8 (or none)"
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    RandomHalves,
    IsolateOne,
    IsolateLeader,
    /// A node other than the leader: a member that keeps serving from its own state while
    /// the majority moves on.
    IsolateFollower,
    MajoritiesRing,
    Bridge,
    OneWay,
}

impl PartitionShape {
    pub const ALL: [PartitionShape; 7] = [
        PartitionShape::RandomHalves,
        PartitionShape::IsolateOne,
        PartitionShape::IsolateLeader,
        PartitionShape::IsolateFollower,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::OneWay,
    ];

    /// The shapes drawn when none are named. `isolate-follower` is only drawn when asked
    /// for: `isolate-one` already reaches followers, and a default pool that grew would
    /// change what every recorded seed draws.
    pub const DEFAULT: [PartitionShape; 6] = [
        PartitionShape::RandomHalves,
        PartitionShape::IsolateOne,
        PartitionShape::IsolateLeader,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::OneWay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::RandomHalves => "random-halves",
            PartitionShape::IsolateOne => "isolate-one",
            PartitionShape::IsolateLeader => "isolate-leader",
            PartitionShape::IsolateFollower => "isolate-follower",
            PartitionShape::MajoritiesRing => "majorities-ring",
            PartitionShape::Bridge => "bridge",
            PartitionShape::OneWay => "one-way",
        }
    }
}

impl fmt::Display for PartitionShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a disk fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiskFault {
    /// Crash every node at once; writes they had not fsynced are gone.
    LoseUnsynced,
    /// Crash one node and flip a byte in its WAL's tail before it starts again.
    CorruptTail,
}

impl DiskFault {
    pub fn name(self) -> &'static str {
        match self {
            DiskFault::LoseUnsynced => "lose-unsynced",
            DiskFault::CorruptTail => "corrupt-tail",
        }
    }
}

/// Who plays which part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure8Roles {
    pub old: NodeId,
    pub partner: NodeId,
    pub voter: NodeId,
    pub follower: NodeId,
    pub usurper: NodeId,
}

/// How far the scenario got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure8Stage {
    /// Step 1's partition is in place; `usurper` was not elected in time.
    Split,
    /// `usurper` was elected and cut off; `old` was not elected again in time.
    UsurperElected,
    /// `old` was elected again and cut off after a drawn time (step 3 done, not knowing
    /// whether it committed anything).
    OldReelected,
    /// `old` was elected again and cut off as soon as its commit index moved.
    OldCommitted,
}

impl Figure8Stage {
    pub fn name(self) -> &'static str {
        match self {
            Figure8Stage::Split => "split",
            Figure8Stage::UsurperElected => "usurper-elected",
            Figure8Stage::OldReelected => "old-reelected",
            Figure8Stage::OldCommitted => "old-committed",
        }
    }
}
