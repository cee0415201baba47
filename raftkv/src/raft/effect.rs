//! Outputs of the Raft core. The runtime performs them IN ORDER; see `Effect` for the
//! one ordering rule that makes the protocol safe.

use serde::{Deserialize, Serialize};

use super::message::Message;
use super::types::{Entry, HardState, Index, NodeId, Role, Snapshot, Term};

/// A change to durable state. The runtime applies its parts in field order
/// (hard state, snapshot, truncation, append) and must make the whole record durable
/// (fsync) before acting on ANY later effect. Writing it as one WAL record (one fsync)
/// is the intended implementation; a crash part-way through is tolerated only in field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persist {
    /// Store the new term / vote / commit hint.
    pub hard_state: Option<HardState>,
    /// Store this snapshot (replacing the previous one) and drop every log entry with
    /// index <= `snapshot.meta.index`.
    pub snapshot: Option<Snapshot>,
    /// Drop every stored log entry with index >= this.
    pub truncate_from: Option<Index>,
    /// Append these entries (contiguous; the first follows the last stored entry).
    pub entries: Vec<Entry>,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
    }
}

/// One output of the core.
///
/// ORDERING RULE: effects are produced in the order they must take effect. A `Persist`
/// must be durable before any effect after it is performed (a message sent, an entry
/// applied, a read answered), because those effects may promise what the `Persist`
/// stores (a vote, an acknowledged entry). Runtimes may batch: collect the effects of
/// many inputs, write all their `Persist`s with one fsync, then perform the rest in order.
/// The one exception: a `Send` whose message `may_precede_persist` (leader replication)
/// may be performed before the `Persist`s ahead of it, as long as the runtime handles no
/// further input until they are durable (see `Message::may_precede_persist`).
/// A runtime that crashes loses effects not yet performed; that is safe.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Effect {
    /// Make this durable (see `Persist`).
    Persist(Persist),
    /// Deliver to `msg.to` (best effort: loss, duplication and reordering are tolerated).
    Send(Message),
    /// Apply these committed entries to the state machine, in order. They are contiguous
    /// and follow the last applied entry (or the last `ApplySnapshot`). `Noop` entries
    /// change nothing but count. Under `Bug::LostAck` a leader emits these before commit.
    Apply(Vec<Entry>),
    /// Replace the state machine with this snapshot (a leader sent it); later `Apply`
    /// effects continue at `snapshot.meta.index + 1`.
    ApplySnapshot(Snapshot),
    /// The read registered with `ctx` is linearizable now: every `Apply` before this
    /// effect has covered `index`, so the runtime reads its state machine right away.
    ReadReady { ctx: u64, index: Index },
    /// The read registered with `ctx` cannot be confirmed (leadership was lost); tell the
    /// client to retry at `leader_hint`.
    ReadFailed {
        ctx: u64,
        leader_hint: Option<NodeId>,
    },
    /// The node's role, term or known leader changed.
    RoleChange {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
}
