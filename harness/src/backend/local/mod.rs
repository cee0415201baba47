//! The local backend: a target's nodes as child processes on loopback, no Docker and no
//! root. Peer links go through in-process proxies the harness controls (partitions, one-way
//! cuts, packet delay; for targets whose members share one peer list, each connection is
//! first attributed to its sender through the kernel's socket table), process faults are
//! signals (SIGSTOP/SIGCONT, SIGKILL and restart), and clock faults are libfaketime where
//! it is installed. Implements the nemeses' `Cluster` trait like the Docker backend, so
//! every test runs on either.

pub mod attribute;
pub mod cluster;
pub mod destination;
pub mod faketime;
pub mod process;

pub use attribute::{AttributeError, MemberPids};
pub use cluster::{LocalCluster, LocalClusterConfig, LocalError, Member};
pub use destination::DestinationProxy;
pub use process::{NodeProcess, ProcessError};
