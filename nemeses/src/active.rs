//! [`ActiveFault`]: a fault in effect, as data: what the history records at its start and
//! stop, and what the progress line shows.

use std::collections::BTreeMap;
use std::fmt;

use faultline_checker::Value;

use crate::clock::ClockSkew;
use crate::fault::{DiskFault, FaultKind, Figure8Roles, Figure8Stage, PartitionShape};
use crate::grudge::Grudge;
use crate::netem::PacketFault;
use crate::node::NodeId;

/// A fault currently in effect (or, for `Restart`, just done).
#[derive(Clone, Debug, PartialEq)]
pub enum ActiveFault {
    Partition {
        shape: PartitionShape,
        grudge: Grudge,
    },
    Kill {
        node: NodeId,
    },
    /// A majority killed at once.
    KillMajority {
        nodes: Vec<NodeId>,
    },
    Pause {
        node: NodeId,
        /// The node was the leader when it was chosen.
        leader: bool,
    },
    Restart {
        nodes: Vec<NodeId>,
        rolling: bool,
    },
    Netem {
        /// The node whose outgoing packets suffer.
        node: NodeId,
        fault: PacketFault,
    },
    Clock {
        nodes: Vec<NodeId>,
        skew: ClockSkew,
    },
    Disk {
        nodes: Vec<NodeId>,
        fault: DiskFault,
        /// What was corrupted, for `CorruptTail`.
        detail: Option<String>,
    },
    /// The directed Figure-8 walk; `grudge` is the partition it left.
    Figure8 {
        roles: Figure8Roles,
        reached: Figure8Stage,
        grudge: Grudge,
    },
}

fn node_list(nodes: &[NodeId]) -> Value {
    Value::List(nodes.iter().map(|n| Value::from(n.to_string())).collect())
}

fn join(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl ActiveFault {
    pub fn kind(&self) -> FaultKind {
        match self {
            ActiveFault::Partition { .. } => FaultKind::Partition,
            ActiveFault::Kill { .. } | ActiveFault::KillMajority { .. } => FaultKind::Kill,
            ActiveFault::Pause { .. } => FaultKind::Pause,
            ActiveFault::Restart { .. } => FaultKind::Restart,
            ActiveFault::Netem { .. } => FaultKind::Netem,
            ActiveFault::Clock { .. } => FaultKind::Clock,
            ActiveFault::Disk { .. } => FaultKind::Disk,
            ActiveFault::Figure8 { .. } => FaultKind::Figure8,
        }
    }

    /// The value of the history event describing this fault.
    pub fn describe(&self) -> Value {
        let mut m = BTreeMap::new();
        match self {
            ActiveFault::Partition { shape, grudge } => {
                m.insert("shape".to_string(), Value::from(shape.name()));
                m.insert("grudge".to_string(), Value::from(grudge.to_string()));
            }
            ActiveFault::Kill { node } => {
                m.insert("node".to_string(), Value::from(node.to_string()));
            }
            ActiveFault::KillMajority { nodes } => {
                m.insert("nodes".to_string(), node_list(nodes));
                m.insert("shape".to_string(), Value::from("majority"));
            }
            ActiveFault::Pause { node, leader } => {
                m.insert("node".to_string(), Value::from(node.to_string()));
                m.insert("leader".to_string(), Value::Bool(*leader));
            }
            ActiveFault::Restart { nodes, rolling } => {
                m.insert("nodes".to_string(), node_list(nodes));
                m.insert("rolling".to_string(), Value::Bool(*rolling));
            }
            ActiveFault::Netem { node, fault } => {
                m.insert("node".to_string(), Value::from(node.to_string()));
                if !fault.to.is_empty() {
                    m.insert("to".to_string(), node_list(&fault.to));
                }
                m.insert("netem".to_string(), Value::from(fault.spec.to_string()));
            }
            ActiveFault::Clock { nodes, skew } => {
                m.insert("nodes".to_string(), node_list(nodes));
                m.insert("skew".to_string(), Value::from(skew.to_string()));
            }
            ActiveFault::Disk {
                nodes,
                fault,
                detail,
            } => {
                m.insert("nodes".to_string(), node_list(nodes));
                m.insert("fault".to_string(), Value::from(fault.name()));
                if let Some(d) = detail {
                    m.insert("detail".to_string(), Value::from(d.as_str()));
                }
            }
            ActiveFault::Figure8 {
                roles,
                reached,
                grudge,
            } => {
                for (role, node) in [
                    ("old", roles.old),
                    ("partner", roles.partner),
                    ("voter", roles.voter),
                    ("follower", roles.follower),
                    ("usurper", roles.usurper),
                ] {
                    m.insert(role.to_string(), Value::from(node.to_string()));
                }
                m.insert("reached".to_string(), Value::from(reached.name()));
                m.insert("grudge".to_string(), Value::from(grudge.to_string()));
            }
        }
        Value::Map(m)
    }

    /// True for faults that are over once started (nothing to undo at stop).
    pub fn is_instant(&self) -> bool {
        matches!(self, ActiveFault::Restart { .. })
    }
}

impl fmt::Display for ActiveFault {
    /// For the progress line: `partition isolate-leader n1<-{n2,...}`, `kill n3`,
    /// `pause n2 (leader)`, `netem n4 delay 120ms±30ms loss 2%`, `netem n1->n3 rate 64kbit`,
    /// `clock n1,n2 bump +300ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActiveFault::Partition { shape, grudge } => {
                write!(f, "partition {} {grudge}", shape.name())
            }
            ActiveFault::Kill { node } => write!(f, "kill {node}"),
            ActiveFault::KillMajority { nodes } => write!(f, "kill majority {}", join(nodes)),
            ActiveFault::Pause { node, leader: true } => write!(f, "pause {node} (leader)"),
            ActiveFault::Pause { node, .. } => write!(f, "pause {node}"),
            ActiveFault::Restart {
                nodes,
                rolling: true,
            } => write!(f, "rolling restart {}", join(nodes)),
            ActiveFault::Restart { nodes, .. } => write!(f, "restart {}", join(nodes)),
            ActiveFault::Netem { node, fault } => {
                write!(f, "netem {} {}", fault.target(*node), fault.spec)
            }
            ActiveFault::Clock { nodes, skew } => write!(f, "clock {} {skew}", join(nodes)),
            ActiveFault::Disk { nodes, fault, .. } => {
                write!(f, "disk {} {}", fault.name(), join(nodes))
            }
            ActiveFault::Figure8 { roles, reached, .. } => write!(
                f,
                "figure8 old {} usurper {} voter {} ({})",
                roles.old,
                roles.usurper,
                roles.voter,
                reached.name()
            ),
        }
    }
}
