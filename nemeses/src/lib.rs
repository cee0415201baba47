//! Fault kinds, schedules and heal; speaks to the cluster only through the `Cluster` trait.

pub mod clock;
pub mod cluster;
pub mod grudge;
pub mod nemesis;
pub mod netem;
pub mod schedule;
pub mod shapes;

pub use clock::{faketime_spec, ClockShape, ClockSkew};
pub use cluster::{Cluster, ClusterError, Node, NodeId};
pub use grudge::Grudge;
pub use nemesis::{
    ActiveFault, DiskFault, FaultKind, Figure8Roles, Figure8Stage, LeaderProbe, Nemesis,
    PartitionShape,
};
pub use netem::{NetemSpec, PacketCaps, PacketFault};
pub use schedule::{EventLog, Schedule, ScheduleConfig, ScheduleReport};
pub use shapes::{parse_names, Shapes};
