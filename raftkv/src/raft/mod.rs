//! The Raft core: a deterministic, I/O-free state machine in the style of tikv/raft-rs.
//!
//! The core owns the protocol only: elections (randomized timeouts, pre-vote, the log
//! up-to-date rule, check-quorum), replication (AppendEntries with the prev-index/term
//! check, fast backtracking, batching, pipelining with an inflight window), commitment
//! (current-term entries by majority), ReadIndex and lease reads, snapshots, log compaction
//! and InstallSnapshot. Disk, network, clocks and the KV state machine belong to the runtime.
//! No clocks, threads or I/O here: the same inputs and seed give the same outputs, and
//! `Raft` is `Clone + Hash + Eq` so a model checker (stateright) can explore it.
//!
//! # Driving it
//! ```text
//! let mut raft = Raft::new(id, voters, config, persisted_state_from_disk, seed)?;
//! loop {
//!     // inputs (any order, any number):
//!     raft.tick();                         // every tick_ms of monotonic time
//!     raft.step(message_from_peer);        // every message received
//!     raft.propose(bytes)?;                // client write -> Proposal { index, term }
//!     raft.read_index(ctx)?;               // client linearizable read
//!     raft.compact(applied_index, sm_bytes)?; // after serializing the state machine
//!     raft.set_wall_clock_ms(now);         // only used by Bug::LeaseClock
//!     // outputs, performed IN ORDER (Persist durable before anything after it):
//!     for effect in raft.take_effects() { ... }
//! }
//! ```
//! See `Effect` for the ordering rule and `Proposal` for how to learn a write's fate.

mod bug;
mod config;
mod core;
mod effect;
mod error;
mod log;
mod message;
mod progress;
mod rng;
mod types;

pub use bug::{Bug, UnknownBug};
pub use config::{Config, ConfigError, ReadMode};
pub use core::Raft;
pub use effect::{Effect, Persist};
pub use error::{CompactError, NewError, ProposeError, ReadError};
pub use message::{Message, MessageBody};
pub use rng::DetRng;
pub use types::{
    Entry, EntryData, HardState, Index, NodeId, PersistentState, Proposal, Role, Snapshot,
    SnapshotMeta, Status, Term,
};
