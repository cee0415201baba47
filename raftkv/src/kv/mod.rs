//! The replicated application: a string key-value store plus a lock service with leases
//! and fencing tokens. `command` is what goes into the Raft log; `state_machine` applies it
//! deterministically (every replica computes the same result from the same entries).

pub mod command;
pub mod state_machine;

pub use command::{Command, Op, OpError, Reply};
pub use state_machine::StateMachine;
