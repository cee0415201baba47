//! Planted defects (`--bug NAME`). Each one is a real, minimal deviation from a correct
//! implementation that faultline (and the simulation tests) must catch. Which layer
//! implements each one is part of its documentation: the Raft core only acts on the
//! protocol-level ones; the others are defined here so that one enum names them all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A planted defect. Parse with `"stale-read".parse::<Bug>()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// Core and node. In the core, `read_index` on a node that believes it is leader
    /// answers at once with its local commit index, skipping the heartbeat round that
    /// proves it is still leader, so a deposed leader in a minority serves stale reads.
    /// The server goes further, as real systems with this bug do: every node (followers
    /// included) answers a read from its own applied state without asking the leader, so
    /// a node cut off from the majority serves old values for as long as the partition
    /// lasts (breaks linearizability of reads).
    StaleRead,
    /// Core. The leader emits `Effect::Apply` for entries as soon as they are in its own
    /// log (acknowledging them to clients) instead of once a majority holds them. If the
    /// leader then loses leadership the acknowledged write vanishes (breaks durability of
    /// acknowledged writes and state machine safety).
    LostAck,
    /// Runtime (storage, node helper). The WAL skips fsync, so a crash loses writes the
    /// core was told are durable. The core ignores this variant.
    NoFsync,
    /// Core, with input from the runtime. Lease reads (`ReadMode::Lease`) measure the lease
    /// with the wall clock that the runtime passes to `Raft::set_wall_clock_ms` instead of
    /// elapsed ticks. A clock that jumps back or runs slow lets a deposed leader keep
    /// serving reads after a new leader has committed writes.
    LeaseClock,
    /// Core. The leader commits an entry from an earlier term as soon as a majority stores
    /// it (Raft paper, Figure 8), instead of only committing entries of its own term by
    /// counting. A committed entry can then be overwritten (breaks leader completeness and
    /// state machine safety).
    OldTermCommit,
    /// KV/lock state machine (node helper). Fencing tokens come from a counter kept
    /// outside the replicated state: each node's own memory, never persisted, carried on
    /// from where that node left it when it was last leader (0 after a restart). A new
    /// leader hands out tokens already granted (breaks unique, strictly increasing fencing
    /// tokens). The core ignores it.
    TokenReuse,
}

impl Bug {
    /// Every variant, in a stable order.
    pub const ALL: [Bug; 6] = [
        Bug::StaleRead,
        Bug::LostAck,
        Bug::NoFsync,
        Bug::LeaseClock,
        Bug::OldTermCommit,
        Bug::TokenReuse,
    ];

    /// The `--bug` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::LostAck => "lost-ack",
            Bug::NoFsync => "no-fsync",
            Bug::LeaseClock => "lease-clock",
            Bug::OldTermCommit => "old-term-commit",
            Bug::TokenReuse => "token-reuse",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown `--bug` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug {name:?}; known: stale-read, lost-ack, no-fsync, lease-clock, old-term-commit, token-reuse")]
pub struct UnknownBug {
    pub name: String,
}

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .iter()
            .copied()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| UnknownBug {
                name: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Bug::ALL {
            assert_eq!(b.as_str().parse::<Bug>(), Ok(b));
            let json = serde_json::to_string(&b).expect("serialize");
            assert_eq!(json, format!("\"{}\"", b.as_str()));
        }
        assert!("nope".parse::<Bug>().is_err());
    }
}
