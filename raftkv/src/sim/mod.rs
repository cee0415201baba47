//! A deterministic, message-level simulator for the Raft core (in the style of turmoil,
//! but without async): N nodes, a network that drops, delays, duplicates and reorders
//! messages and can be partitioned, crashes that lose everything not yet persisted
//! (even half-way through a node's effects), restarts from the simulated disk, clock
//! jumps, and clients proposing writes and linearizable reads. Every run is a pure
//! function of (`SimOptions`, seed). `Checker` verifies Raft's safety properties after
//! every step; a run also checks liveness after the faults heal.

mod checker;
mod options;
mod runner;
mod world;

pub use checker::{Checker, Violation};
pub use options::SimOptions;
pub use runner::{default_threads, sweep, SweepReport};
pub use world::{Sim, SimFailure, SimStats};
