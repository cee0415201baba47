//! The local backend: nodes as child processes on loopback, no Docker and no root. Peer
//! links go through in-process proxies the harness controls (partitions, one-way cuts,
//! packet delay), process faults are signals (SIGSTOP/SIGCONT, SIGKILL and restart), and
//! clock faults are libfaketime where it is installed. Implements the nemeses' `Cluster`
//! trait like the Docker backend, so every test runs on either.

pub mod cluster;
pub mod faketime;
pub mod process;
pub mod proxy;

pub use cluster::{LocalCluster, LocalClusterConfig, LocalError, LocalProgram, Member};
pub use process::{NodeProcess, ProcessError};
pub use proxy::{DirectionFault, LinkFault, LinkProxy};
