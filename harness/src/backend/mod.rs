//! Backends: where a target's nodes run. A target describes one node as a [`NodeSpec`]
//! (`spec`); a backend renders it for every node and implements the nemeses' `Cluster`
//! trait on what it started: [`docker`] (containers on a private network), [`local`]
//! (child processes on loopback), or [`external`] (a cluster faultline did not start, which
//! takes no faults). [`start`] picks and starts one; [`bundled`] and [`installed`] find the
//! program a spec names; [`build`] runs the build steps they need. Nothing here knows which
//! target it runs.

pub mod build;
pub mod bundled;
pub mod child;
pub mod docker;
pub mod external;
pub mod installed;
pub mod links;
pub mod local;
pub mod spec;
pub mod start;

pub use spec::{NodeSpec, NodeValues, Peering, Program, Readiness, Refusal, WalFiles};
pub use start::{start, Backend, StartError, StartLog, StartRequest, Started};
