//! A node's identity as clients, nemeses and backends see it: [`NodeId`] (also its Raft id)
//! and [`Node`] (its name and client address).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's identity inside one cluster. Also the raft id the node is started with, so it
/// starts at 1 (raft ids are non-zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// One node of the cluster, as clients and nemeses see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    /// Short stable name (`n1`, `n2`, ...) used in logs, histories and result folders.
    pub name: String,
    /// `host:port` a client on the harness's machine connects to.
    pub client_addr: String,
}

/// `n1..=nN` with made-up client addresses, for the fake clusters of unit tests.
#[cfg(test)]
pub(crate) fn test_nodes(n: u32) -> Vec<Node> {
    (1..=n)
        .map(|i| Node {
            id: NodeId(i),
            name: format!("n{i}"),
            client_addr: format!("10.0.0.{i}:8080"),
        })
        .collect()
}
