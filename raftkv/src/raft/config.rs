//! Tunables of the Raft core, all in ticks (the runtime decides how long a tick is;
//! 10 ms is the default the node uses), counts and bytes, each with a hard limit.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::bug::Bug;

/// How `Raft::read_index` proves that a read is linearizable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Confirm leadership with a heartbeat round acknowledged by a majority (Raft thesis §6.4).
    #[default]
    ReadIndex,
    /// Serve at once while the leader lease holds: a majority acknowledged a heartbeat sent
    /// at tick t, and followers ignore vote requests for `election_timeout_min_ticks` after
    /// hearing from a leader, so nobody else can lead before t + min - margin (thesis §6.4.1).
    /// Assumes bounded clock *rate* drift between nodes (margin), not synchronized clocks.
    Lease,
}

/// Configuration of one Raft node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// Election timeout is drawn uniformly from [min, max] ticks after each reset.
    pub election_timeout_min_ticks: u64,
    pub election_timeout_max_ticks: u64,
    /// Leader sends heartbeats (and starts a read/lease round) this often.
    pub heartbeat_interval_ticks: u64,
    /// Batching: at most this many entries / bytes of payload in one AppendEntries.
    pub max_entries_per_msg: usize,
    pub max_bytes_per_msg: usize,
    /// Pipelining: at most this many unacknowledged AppendEntries per follower.
    pub max_inflight_msgs: usize,
    /// Backpressure: proposals fail while this many entries are appended but uncommitted.
    pub max_uncommitted_entries: u64,
    /// Largest accepted proposal payload.
    pub max_proposal_bytes: usize,
    /// Reads queued at the leader waiting for confirmation or apply.
    pub max_pending_reads: usize,
    /// Run a pre-vote round before bumping the term (avoids disruption by rejoining nodes).
    pub pre_vote: bool,
    /// Leader steps down when it has not heard from a majority for an election timeout;
    /// followers ignore vote requests while they have a live leader. Required by `ReadMode::Lease`.
    pub check_quorum: bool,
    pub read_mode: ReadMode,
    /// Lease safety margin for clock rate drift, in ticks.
    pub lease_margin_ticks: u64,
    /// Length of a tick in ms; only used to convert the lease to wall-clock ms for `Bug::LeaseClock`.
    pub tick_ms: u64,
    /// Planted defects to enable (empty = correct).
    pub bugs: BTreeSet<Bug>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            election_timeout_min_ticks: 15,
            election_timeout_max_ticks: 30,
            heartbeat_interval_ticks: 3,
            max_entries_per_msg: 256,
            max_bytes_per_msg: 1 << 20,
            max_inflight_msgs: 64,
            max_uncommitted_entries: 20_000,
            max_proposal_bytes: 1 << 20,
            max_pending_reads: 20_000,
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::ReadIndex,
            lease_margin_ticks: 3,
            tick_ms: 10,
            bugs: BTreeSet::new(),
        }
    }
}

/// Invalid configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("election timeout range [{min}, {max}] ticks is empty or too short (need max >= min > heartbeat interval {heartbeat})")]
    ElectionTimeout { min: u64, max: u64, heartbeat: u64 },
    #[error("heartbeat interval must be at least 1 tick")]
    Heartbeat,
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    #[error("lease reads need check_quorum and a margin below the minimum election timeout")]
    Lease,
}

impl Config {
    /// Is a planted bug enabled?
    pub fn has_bug(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }

    /// Check the limits make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval_ticks == 0 {
            return Err(ConfigError::Heartbeat);
        }
        if self.election_timeout_min_ticks <= self.heartbeat_interval_ticks
            || self.election_timeout_max_ticks < self.election_timeout_min_ticks
        {
            return Err(ConfigError::ElectionTimeout {
                min: self.election_timeout_min_ticks,
                max: self.election_timeout_max_ticks,
                heartbeat: self.heartbeat_interval_ticks,
            });
        }
        for (name, v) in [
            ("max_entries_per_msg", self.max_entries_per_msg),
            ("max_bytes_per_msg", self.max_bytes_per_msg),
            ("max_inflight_msgs", self.max_inflight_msgs),
            ("max_proposal_bytes", self.max_proposal_bytes),
            ("max_pending_reads", self.max_pending_reads),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.max_uncommitted_entries == 0 {
            return Err(ConfigError::ZeroLimit("max_uncommitted_entries"));
        }
        if self.read_mode == ReadMode::Lease
            && (!self.check_quorum || self.lease_margin_ticks >= self.election_timeout_min_ticks)
        {
            return Err(ConfigError::Lease);
        }
        Ok(())
    }
}
