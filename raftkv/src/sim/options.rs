//! Knobs of one simulation run: cluster size, Raft config (including planted bugs),
//! fault rates (per mille per tick or per message) and the phase lengths.

use crate::raft::Config;

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub nodes: usize,
    pub raft: Config,
    /// Ticks with faults, then faults heal and the run checks liveness.
    pub chaos_ticks: u64,
    /// After healing, a proposal must commit on every node within this many ticks.
    pub liveness_ticks: u64,
    pub check_liveness: bool,
    /// Per message.
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    /// Each message is delayed uniformly in [1, max_delay_ticks] (this reorders them).
    pub max_delay_ticks: u64,
    /// Per tick: change the partition (heal, split in two, isolate one, or cut one link).
    pub partition_per_mille: u64,
    /// Per tick: crash a random live node (restarted after 1..=max_down_ticks).
    pub crash_per_mille: u64,
    /// Per input handled: crash the node part-way through performing its effects.
    pub crash_mid_effects_per_mille: u64,
    pub max_down_ticks: u64,
    /// Per tick: pause a random node's process for 1..=max_pause_ticks (it resumes with
    /// `Raft::advance_ticks`, as a runtime catching up on missed ticks must).
    pub pause_per_mille: u64,
    pub max_pause_ticks: u64,
    /// Per tick: a client proposes a write / issues a read at a node that believes it leads.
    pub propose_per_mille: u64,
    pub read_per_mille: u64,
    /// Per tick: a random node's wall clock jumps back by up to max_clock_jump_ms
    /// (only `Bug::LeaseClock` reads wall clocks).
    pub clock_jump_per_mille: u64,
    pub max_clock_jump_ms: u64,
    /// Nodes snapshot their state machine when this many entries are applied past the snapshot.
    pub compact_threshold: u64,
    /// With `Bug::NoFsync`, written data becomes durable only every this many ticks.
    pub fsync_every_ticks: u64,
    /// Limit on messages in flight (excess sends are dropped).
    pub max_in_flight: usize,
    /// Keep a readable trace of the last `trace_lines` events (replay mode; slower).
    pub trace_lines: usize,
}

impl SimOptions {
    /// A fast Raft config for simulation: short timeouts, small batches and windows so
    /// that batching, pipelining, backtracking and snapshots are all exercised.
    pub fn sim_raft_config() -> Config {
        Config {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            heartbeat_interval_ticks: 2,
            max_entries_per_msg: 4,
            max_bytes_per_msg: 64,
            max_inflight_msgs: 4,
            max_uncommitted_entries: 64,
            lease_margin_ticks: 2,
            ..Config::default()
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 3,
            raft: Self::sim_raft_config(),
            chaos_ticks: 400,
            liveness_ticks: 300,
            check_liveness: true,
            drop_per_mille: 50,
            dup_per_mille: 30,
            max_delay_ticks: 3,
            partition_per_mille: 20,
            crash_per_mille: 8,
            crash_mid_effects_per_mille: 3,
            max_down_ticks: 40,
            pause_per_mille: 5,
            max_pause_ticks: 40,
            propose_per_mille: 300,
            read_per_mille: 150,
            clock_jump_per_mille: 0,
            max_clock_jump_ms: 2000,
            compact_threshold: 24,
            fsync_every_ticks: 25,
            max_in_flight: 50_000,
            trace_lines: 0,
        }
    }
}
