//! The leader's view of one follower's replication: what it matches, what to send
//! next, and how many AppendEntries are in flight (the pipelining window).

use std::collections::VecDeque;

use super::types::Index;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ProgressState {
    /// Unknown match point: one AppendEntries at a time, resumed by any response.
    Probe { paused: bool },
    /// Known match point: stream entries optimistically, up to the inflight limit.
    Replicate,
    /// An InstallSnapshot was sent at `sent_tick`; wait for its answer (or a retry timeout).
    Snapshot { index: Index, sent_tick: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Progress {
    pub match_index: Index,
    pub next_index: Index,
    pub state: ProgressState,
    /// Last index of each AppendEntries sent in Replicate state and not yet acknowledged.
    pub inflight: VecDeque<Index>,
    /// Heard from since the last check-quorum period.
    pub recent_active: bool,
    /// Highest heartbeat round (`read_seq`) this follower acknowledged in this term.
    pub read_ack: u64,
}

impl Progress {
    pub fn new(next_index: Index) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { paused: false },
            inflight: VecDeque::new(),
            recent_active: false,
            read_ack: 0,
        }
    }

    /// Record an acknowledged match; returns true if it moved forward.
    pub fn on_match(&mut self, index: Index) -> bool {
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
        }
        self.next_index = self.next_index.max(index + 1);
        advanced
    }

    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe { paused: false };
        self.inflight.clear();
        self.next_index = self.match_index + 1;
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.inflight.clear();
        self.next_index = self.match_index + 1;
    }
}
