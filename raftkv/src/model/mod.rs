//! Exhaustive model checking of raftkv with stateright: the real Raft core
//! (`raft::Raft`, the code the server runs) and the real KV state machine, driven the way
//! `node.rs` drives them, in a cluster whose every interleaving the checker explores:
//! clients invoking operations, a network that loses, duplicates and reorders messages,
//! timers firing as nondeterministic events, crashes and restarts from persisted state.
//!
//! Why a `Model` and not a stateright `Actor`: the core is already a pure state machine
//! with its own effect protocol (`Persist` before anything after it, `Apply`, `ReadReady`,
//! `RoleChange`) and the runtime around it (disk, state machine, pending requests, the
//! token-reuse counter) is what several bugs live in. A `Model` lets one step perform a
//! node's effects exactly as `Node::perform_effects` does, keep the disk next to the
//! process that dies, and record the client history and the ghost facts (every leader,
//! every committed and applied entry) in the state that the properties read.

mod options;
mod run;
mod state;
mod system;

pub use options::{ClientOp, ModelOptions, Strategy};
pub use run::{check, check_model, representative, CheckReport, Counterexample};
pub use state::{describe_message, describe_node, Action, HistEvent, HistOp, HistRet, SysState};
pub use system::{
    history_tester, RaftModel, CONTRACT, ELECTION_SAFETY, FENCING, LEADER_COMPLETENESS,
    LINEARIZABLE, LOG_MATCHING, STATE_MACHINE_SAFETY,
};
