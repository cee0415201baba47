//! Fault kinds, schedules and heal; speaks to the cluster only through the `Cluster` trait.
//!
//! Modules, from the bottom up: [`node`] (who is in the cluster), [`grudge`], [`netem`]
//! and [`clock`] (faults as data), [`cluster`] (the trait backends implement), [`fault`]
//! (the vocabulary of fault kinds and shapes), [`active`] (a fault in effect), [`probe`]
//! (what the target tells about its leader), [`nemesis`] (injects and heals), and
//! [`schedule`] (when).

pub mod active;
pub mod clock;
pub mod cluster;
pub mod fault;
pub mod grudge;
pub mod nemesis;
pub mod netem;
pub mod node;
pub mod probe;
pub mod schedule;
pub mod shapes;

pub use active::ActiveFault;
pub use clock::{faketime_spec, ClockShape, ClockSkew};
pub use cluster::{Cluster, ClusterError};
pub use fault::{DiskFault, FaultKind, Figure8Roles, Figure8Stage, PartitionShape};
pub use grudge::Grudge;
pub use nemesis::figure8::{COMMIT_LIMIT, CUT_AFTER, FIGURE8_NODES, LINK_DELAY};
pub use nemesis::Nemesis;
pub use netem::{NetemSpec, PacketCaps, PacketFault};
pub use node::{Node, NodeId};
pub use probe::LeaderProbe;
pub use schedule::{EventLog, Schedule, ScheduleConfig, ScheduleReport};
pub use shapes::{parse_names, Shapes};
