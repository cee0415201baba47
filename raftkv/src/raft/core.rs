//! `Raft`: one node's protocol state and its transitions. Inputs are `tick`, `step`,
//! `propose`, `read_index`, `compact` and `set_wall_clock_ms`; outputs are queued as
//! `Effect`s and fetched with `take_effects`. See the module docs in `raft/mod.rs`.

use std::collections::{BTreeMap, VecDeque};

use super::bug::Bug;
use super::config::{Config, ReadMode};
use super::effect::{Effect, Persist};
use super::error::{CompactError, NewError, ProposeError, ReadError};
use super::log::RaftLog;
use super::message::{Message, MessageBody};
use super::progress::{Progress, ProgressState};
use super::rng::DetRng;
use super::types::{
    Entry, EntryData, HardState, Index, NodeId, PersistentState, Proposal, Role, Snapshot,
    SnapshotMeta, Status, Term,
};

/// Heartbeat rounds remembered while waiting for acknowledgements; older ones are
/// forgotten (a later round confirms everything an earlier one would have).
const MAX_READ_ROUNDS: usize = 1024;

/// A read waiting for leadership confirmation (`confirmed`) and then for apply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PendingRead {
    ctx: u64,
    index: Index,
    seq: u64,
    confirmed: bool,
}

/// A heartbeat round: its sequence number and when it was sent (for the lease).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ReadRound {
    seq: u64,
    sent_tick: u64,
    sent_wall_ms: u64,
}

/// One Raft node. Deterministic for a given seed and input sequence.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Raft {
    id: NodeId,
    /// Sorted, without duplicates; includes `id`.
    voters: Vec<NodeId>,
    config: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    snapshot: Option<Snapshot>,
    rng: DetRng,
    /// Ticks since this incarnation started (monotonic, local).
    ticks: u64,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    randomized_timeout: u64,
    /// Votes received in the current (pre-)campaign.
    votes: BTreeMap<NodeId, bool>,
    /// Leader only: replication state of every other voter.
    progress: BTreeMap<NodeId, Progress>,
    /// Leader only: index of the no-op appended on election.
    term_start_index: Index,
    read_seq: u64,
    read_rounds: VecDeque<ReadRound>,
    pending_reads: VecDeque<PendingRead>,
    /// A read was registered since the last heartbeat broadcast; flush one at `take_effects`.
    read_round_wanted: bool,
    lease_until_tick: u64,
    lease_until_wall_ms: u64,
    /// Leader only, `Bug::LeaseClock`: the wall time of the newest heartbeat round a majority
    /// acknowledged (or of the election), which the buggy liveness check measures from.
    quorum_contact_wall_ms: u64,
    wall_clock_ms: u64,
    /// Entries were proposed since the last flush; replicate them at `take_effects`.
    need_broadcast: bool,
    /// Last (role, term, leader) reported with `Effect::RoleChange`.
    reported: (Role, Term, Option<NodeId>),
    effects: Vec<Effect>,
}

impl Raft {
    /// Create a node from what it persisted (or `PersistentState::default()` when fresh).
    pub fn new(
        id: NodeId,
        voters: Vec<NodeId>,
        config: Config,
        persisted: PersistentState,
        rng_seed: u64,
    ) -> Result<Raft, NewError> {
        config.validate()?;
        let mut voters = voters;
        voters.sort_unstable();
        let n = voters.len();
        voters.dedup();
        if voters.len() != n {
            return Err(NewError::DuplicateVoter);
        }
        if !voters.contains(&id) {
            return Err(NewError::NotAVoter { id });
        }
        let meta = persisted
            .snapshot
            .as_ref()
            .map(|s| s.meta)
            .unwrap_or_default();
        let mut last_term = meta.term;
        for (expect, e) in (meta.index + 1..).zip(persisted.entries.iter()) {
            if e.index != expect {
                return Err(NewError::LogGap { after: expect - 1 });
            }
            if e.term < last_term {
                return Err(NewError::TermOrder { index: e.index });
            }
            last_term = e.term;
        }
        let mut log = RaftLog::new(meta, persisted.entries);
        // The commit hint is trusted only as far as the stored log reaches.
        log.committed = persisted
            .hard_state
            .commit
            .clamp(meta.index, log.last_index());
        let hs = persisted.hard_state;
        let term = hs.term.max(log.last_term());
        let vote = if term == hs.term { hs.vote } else { None };
        let mut rng = DetRng::new(rng_seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let randomized_timeout = rng.range_inclusive(
            config.election_timeout_min_ticks,
            config.election_timeout_max_ticks,
        );
        let mut raft = Raft {
            id,
            voters,
            config,
            term,
            vote,
            role: Role::Follower,
            leader: None,
            log,
            snapshot: persisted.snapshot,
            rng,
            ticks: 0,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            term_start_index: 0,
            read_seq: 0,
            read_rounds: VecDeque::new(),
            pending_reads: VecDeque::new(),
            read_round_wanted: false,
            lease_until_tick: 0,
            lease_until_wall_ms: 0,
            quorum_contact_wall_ms: 0,
            wall_clock_ms: 0,
            need_broadcast: false,
            reported: (Role::Follower, term, None),
            effects: Vec::new(),
        };
        raft.maybe_apply();
        Ok(raft)
    }

    // ----- getters -------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }
    pub fn commit_index(&self) -> Index {
        self.log.committed
    }
    pub fn applied_index(&self) -> Index {
        self.log.applied
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    /// First index still held in the log (after the snapshot).
    pub fn first_index(&self) -> Index {
        self.log.first_index()
    }
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot
    }
    /// Term at `index` if known (the snapshot point or a held entry).
    pub fn log_term(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }
    /// The held entry at `index`, if any.
    pub fn log_entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// Reads registered and not yet answered.
    pub fn pending_reads(&self) -> usize {
        self.pending_reads.len()
    }
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot.index,
        }
    }

    // ----- inputs --------------------------------------------------------------------

    /// Fetch the queued effects, after replicating proposals and starting a read round
    /// for reads registered since the last call (this is where batching happens).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        if self.role == Role::Leader {
            if self.need_broadcast {
                self.need_broadcast = false;
                self.broadcast_append();
            }
            if self.read_round_wanted {
                self.broadcast_heartbeat();
            }
            self.maybe_commit();
        }
        self.finish();
        std::mem::take(&mut self.effects)
    }

    /// The wall clock (ms since the epoch, possibly skewed). Only `Bug::LeaseClock` reads it.
    pub fn set_wall_clock_ms(&mut self, wall_ms: u64) {
        self.wall_clock_ms = wall_ms;
    }

    /// Advance logical time by one tick.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_timeout {
                self.campaign(self.config.pre_vote);
            }
        }
        self.finish();
    }

    /// Advance logical time by `n` ticks at once, e.g. after the runtime stalled (GC pause,
    /// SIGSTOP) and missed ticks. Equivalent to `n` calls of `tick` for timers and the lease
    /// but sends at most one round of messages. Runtimes must not silently drop missed ticks:
    /// a lease measured in ticks would then outlive real time.
    pub fn advance_ticks(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        let skipped = n - 1;
        self.ticks += skipped;
        self.election_elapsed += skipped;
        self.heartbeat_elapsed += skipped;
        self.tick();
    }

    /// Propose a client command. Only the leader accepts.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<Proposal, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if data.len() > self.config.max_proposal_bytes {
            return Err(ProposeError::TooLarge {
                bytes: data.len(),
                max_bytes: self.config.max_proposal_bytes,
            });
        }
        let uncommitted = self.log.last_index() - self.log.committed;
        if uncommitted >= self.config.max_uncommitted_entries {
            return Err(ProposeError::Backpressure { uncommitted });
        }
        let index = self.append_local(EntryData::Normal(data));
        self.need_broadcast = true;
        self.finish();
        Ok(Proposal {
            index,
            term: self.term,
        })
    }

    /// Register a linearizable read. Answered later by `ReadReady` or `ReadFailed`.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> {
        if self.role != Role::Leader {
            return Err(ReadError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.pending_reads.len() >= self.config.max_pending_reads {
            return Err(ReadError::TooManyPending {
                pending: self.pending_reads.len(),
            });
        }
        if self.config.has_bug(Bug::StaleRead) {
            // BUG stale-read: no proof that we are still the leader.
            self.pending_reads.push_back(PendingRead {
                ctx,
                index: self.log.committed,
                seq: 0,
                confirmed: true,
            });
            self.finish();
            return Ok(());
        }
        // Until our no-op commits, our commit index may lag what earlier leaders committed.
        let index = self.log.committed.max(self.term_start_index);
        if self.config.read_mode == ReadMode::Lease && self.lease_valid() {
            self.pending_reads.push_back(PendingRead {
                ctx,
                index,
                seq: 0,
                confirmed: true,
            });
        } else {
            // Any heartbeat round started after this point proves leadership for this read.
            self.pending_reads.push_back(PendingRead {
                ctx,
                index,
                seq: self.read_seq + 1,
                confirmed: false,
            });
            self.read_round_wanted = true;
        }
        self.finish();
        Ok(())
    }

    /// The runtime serialized its state machine at applied index `index`: keep it as the
    /// snapshot (for lagging followers) and drop the log up to it.
    pub fn compact(&mut self, index: Index, data: Vec<u8>) -> Result<(), CompactError> {
        if index > self.log.applied {
            return Err(CompactError::NotApplied {
                index,
                applied: self.log.applied,
            });
        }
        if index <= self.log.snapshot.index {
            return Err(CompactError::AlreadyCompacted {
                snapshot_index: self.log.snapshot.index,
            });
        }
        let Some(term) = self.log.term(index) else {
            return Err(CompactError::AlreadyCompacted {
                snapshot_index: self.log.snapshot.index,
            });
        };
        let snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            data,
        };
        self.log.compact_to(snapshot.meta);
        self.snapshot = Some(snapshot.clone());
        self.push_persist(Persist {
            snapshot: Some(snapshot),
            ..Persist::default()
        });
        self.finish();
        Ok(())
    }

    /// Handle a message from a peer. Stale, duplicated or misaddressed messages are ignored.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.id || msg.from == self.id || self.voters.binary_search(&msg.from).is_err()
        {
            tracing::debug!(
                id = self.id,
                from = msg.from,
                to = msg.to,
                "ignoring misaddressed message"
            );
            return;
        }
        self.step_inner(msg);
        self.finish();
    }

    // ----- message handling ----------------------------------------------------------

    fn step_inner(&mut self, msg: Message) {
        let from = msg.from;
        if msg.term > self.term {
            let is_vote_request = matches!(
                msg.body,
                MessageBody::PreVote { .. } | MessageBody::RequestVote { .. }
            );
            if is_vote_request && self.in_lease() {
                // A live leader exists (or we may have promised one a lease before a restart):
                // do not let a disruptive candidate bump terms (thesis §4.2.3, §6.4.1).
                return;
            }
            match msg.body {
                MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { granted: true } => {}
                MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => self.become_follower(msg.term, Some(from)),
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < self.term {
            match msg.body {
                MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => {
                    // Tell a deposed leader about the newer term so it steps down.
                    self.send(from, MessageBody::HeartbeatResponse { read_seq: 0 });
                }
                MessageBody::PreVote { .. } => {
                    self.send(from, MessageBody::PreVoteResponse { granted: false });
                }
                _ => {}
            }
            return;
        }

        match msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => {
                let can_vote = self.vote == Some(from)
                    || (self.vote.is_none() && self.leader.is_none())
                    || msg.term > self.term;
                let granted = can_vote && self.log.is_up_to_date(last_log_index, last_log_term);
                let term = if granted { msg.term } else { self.term };
                self.send_with_term(from, term, MessageBody::PreVoteResponse { granted });
            }
            MessageBody::PreVoteResponse { granted } => {
                if self.role == Role::PreCandidate && (!granted || msg.term == self.term + 1) {
                    self.votes.insert(from, granted);
                    self.tally_votes();
                }
            }
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
            } => {
                let can_vote =
                    self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
                let granted = can_vote && self.log.is_up_to_date(last_log_index, last_log_term);
                if granted {
                    self.vote = Some(from);
                    self.reset_election_timer();
                    self.persist_hard_state();
                }
                self.send(from, MessageBody::RequestVoteResponse { granted });
            }
            MessageBody::RequestVoteResponse { granted } => {
                if self.role == Role::Candidate {
                    self.votes.insert(from, granted);
                    self.tally_votes();
                }
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                self.accept_leader(from);
                self.handle_append(from, prev_log_index, prev_log_term, entries, leader_commit);
            }
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                rejected_index,
                hint_index,
                hint_term,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_response(
                        from,
                        success,
                        match_index,
                        rejected_index,
                        hint_index,
                        hint_term,
                    );
                }
            }
            MessageBody::Heartbeat { commit, read_seq } => {
                self.accept_leader(from);
                self.commit_to(commit.min(self.log.last_index()));
                self.send(from, MessageBody::HeartbeatResponse { read_seq });
            }
            MessageBody::HeartbeatResponse { read_seq } => {
                if self.role == Role::Leader {
                    self.handle_heartbeat_response(from, read_seq);
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                self.accept_leader(from);
                self.handle_snapshot(from, snapshot);
            }
        }
    }

    /// A message from the leader of our term: follow it and reset the election timer.
    fn accept_leader(&mut self, from: NodeId) {
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from));
        }
        self.leader = Some(from);
        self.election_elapsed = 0;
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        if prev_index < self.log.committed {
            // Everything up to our commit index is known to match the leader.
            let match_index = self.log.committed;
            self.send(from, append_ok(match_index));
            return;
        }
        if self.log.term(prev_index) != Some(prev_term) {
            tracing::debug!(
                id = self.id,
                leader = from,
                prev_index,
                last_index = self.log.last_index(),
                "append does not match our log; rejecting"
            );
            let (hint_index, hint_term) = if prev_index > self.log.last_index() {
                (self.log.last_index() + 1, None)
            } else {
                (
                    self.log.first_index_of_term_at(prev_index),
                    self.log.term(prev_index),
                )
            };
            self.send(
                from,
                MessageBody::AppendEntriesResponse {
                    success: false,
                    match_index: 0,
                    rejected_index: prev_index,
                    hint_index,
                    hint_term,
                },
            );
            return;
        }
        // Find the first entry we do not already hold with the same term.
        let mut first_new = None;
        for (i, e) in entries.iter().enumerate() {
            if self.log.term(e.index) != Some(e.term) {
                first_new = Some(i);
                break;
            }
        }
        let last_new = prev_index + entries.len() as Index;
        if let Some(i) = first_new {
            let from_index = entries[i].index;
            let truncate = from_index <= self.log.last_index();
            if truncate && from_index <= self.log.committed {
                // Correct Raft never gets here; a planted bug elsewhere (old-term-commit) can.
                tracing::error!(
                    id = self.id,
                    index = from_index,
                    committed = self.log.committed,
                    "leader asks to overwrite a committed entry; ignoring"
                );
                return;
            }
            if truncate {
                self.log.truncate_from(from_index);
                if from_index <= self.log.applied {
                    // Only reachable with Bug::LostAck (applied beyond commit).
                    self.log.applied = from_index - 1;
                }
            }
            let new_entries: Vec<Entry> = entries[i..].to_vec();
            for e in &new_entries {
                self.log.push(e.clone());
            }
            self.push_persist(Persist {
                truncate_from: truncate.then_some(from_index),
                entries: new_entries,
                ..Persist::default()
            });
        }
        self.commit_to(leader_commit.min(last_new));
        self.send(from, append_ok(last_new));
    }

    fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let meta = snapshot.meta;
        if meta.index <= self.log.committed {
            let committed = self.log.committed;
            self.send(from, append_ok(committed));
            return;
        }
        if self.log.term(meta.index) == Some(meta.term) {
            // We already hold the snapshot point; no need to restore, just learn the commit.
            self.commit_to(meta.index);
            self.send(from, append_ok(meta.index));
            return;
        }
        self.log.compact_to(meta);
        self.log.committed = meta.index;
        self.log.applied = meta.index;
        self.snapshot = Some(snapshot.clone());
        self.push_persist(Persist {
            hard_state: Some(self.hard_state()),
            snapshot: Some(snapshot.clone()),
            truncate_from: Some(meta.index + 1),
            entries: Vec::new(),
        });
        self.effects.push(Effect::ApplySnapshot(snapshot));
        self.send(from, append_ok(meta.index));
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        rejected_index: Index,
        hint_index: Index,
        hint_term: Option<Term>,
    ) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if success {
            if match_index > last_index {
                return; // not from this term's log; cannot happen for a same-term response
            }
            let advanced = pr.on_match(match_index);
            match pr.state {
                ProgressState::Probe { .. } => pr.become_replicate(),
                ProgressState::Snapshot { index, .. } if pr.match_index >= index => {
                    pr.become_replicate()
                }
                _ => {}
            }
            if advanced {
                self.maybe_commit();
            }
            self.send_append_all(from);
            return;
        }
        if hint_term.is_none()
            && hint_index <= pr.match_index
            && !matches!(pr.state, ProgressState::Snapshot { .. })
        {
            // The follower's log ends before entries it acknowledged: it lost them (a disk
            // fault cut its WAL tail). Counting it as holding them would leave it behind
            // for good (nothing new to send, and every rejection would look stale), so
            // start again from where its log ends. Fewer counted replicas only delays
            // commits; the commit index never moves back.
            tracing::warn!(
                id = self.id,
                follower = from,
                acknowledged = pr.match_index,
                log_ends = hint_index.saturating_sub(1),
                "follower lost entries it acknowledged; replicating them again"
            );
            pr.match_index = hint_index.saturating_sub(1);
            pr.become_probe();
            pr.next_index = hint_index.max(1);
            self.send_append_all(from);
            return;
        }
        // Rejection: ignore it if it answers an older message than the one that matters now.
        let stale = match pr.state {
            ProgressState::Replicate => rejected_index <= pr.match_index,
            ProgressState::Probe { .. } => rejected_index + 1 != pr.next_index,
            ProgressState::Snapshot { .. } => true,
        };
        if stale {
            return;
        }
        let guess = match hint_term.and_then(|t| self.log.last_index_of_term(t)) {
            Some(i) => i + 1,
            None => hint_index,
        };
        let pr = self.progress.get_mut(&from).expect("checked above");
        pr.become_probe();
        pr.next_index = guess.min(rejected_index).max(pr.match_index + 1);
        self.send_append_all(from);
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, read_seq: u64) {
        let last_index = self.log.last_index();
        let retry_ticks = self.config.election_timeout_max_ticks;
        let ticks = self.ticks;
        let max_inflight = self.config.max_inflight_msgs;
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.read_ack = pr.read_ack.max(read_seq);
        if pr.match_index < last_index {
            // The follower lags: resume a paused probe, free a slot of a full window (its
            // messages may be lost), or retry a snapshot that was never answered.
            match pr.state {
                ProgressState::Probe { .. } => pr.state = ProgressState::Probe { paused: false },
                ProgressState::Replicate => {
                    if pr.inflight.len() >= max_inflight {
                        pr.inflight.pop_front();
                    }
                }
                ProgressState::Snapshot { sent_tick, .. } => {
                    if ticks.saturating_sub(sent_tick) >= retry_ticks {
                        pr.become_probe();
                    }
                }
            }
        }
        let lagging_replicate = pr.match_index < last_index && pr.state == ProgressState::Replicate;
        self.advance_reads();
        if self.send_append_all(from) == 0 && lagging_replicate {
            // Everything up to next_index was sent but the follower still lags: those
            // messages were lost. An empty append at next_index - 1 makes it reject, which
            // sends us back to probing from its real match point.
            self.send_empty_append(from);
        }
    }

    fn send_empty_append(&mut self, to: NodeId) {
        let Some(pr) = self.progress.get(&to) else {
            return;
        };
        let prev_log_index = pr.next_index.min(self.log.last_index() + 1) - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            return;
        };
        let leader_commit = self.log.committed;
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries: Vec::new(),
                leader_commit,
            },
        );
    }

    // ----- elections -----------------------------------------------------------------

    fn in_lease(&self) -> bool {
        self.config.check_quorum
            && (self.leader.is_some() || self.ticks < self.config.election_timeout_min_ticks)
            && self.election_elapsed < self.config.election_timeout_min_ticks
    }

    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.randomized_timeout = self.rng.range_inclusive(
            self.config.election_timeout_min_ticks,
            self.config.election_timeout_max_ticks,
        );
    }

    fn campaign(&mut self, pre: bool) {
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.leader = None;
        self.reset_election_timer();
        let (term, body) = if pre {
            self.role = Role::PreCandidate;
            (
                self.term + 1,
                MessageBody::PreVote {
                    last_log_index: self.log.last_index(),
                    last_log_term: self.log.last_term(),
                },
            )
        } else {
            self.role = Role::Candidate;
            self.term += 1;
            self.vote = Some(self.id);
            self.persist_hard_state();
            (
                self.term,
                MessageBody::RequestVote {
                    last_log_index: self.log.last_index(),
                    last_log_term: self.log.last_term(),
                },
            )
        };
        tracing::debug!(id = self.id, term, pre, "campaigning");
        if self.tally_votes() {
            return;
        }
        for to in self.voters.clone() {
            if to != self.id {
                self.send_with_term(to, term, body.clone());
            }
        }
    }

    /// Count votes; act on a decided election. Returns true if decided.
    fn tally_votes(&mut self) -> bool {
        let granted = self.votes.values().filter(|g| **g).count();
        let rejected = self.votes.len() - granted;
        if granted >= self.quorum() {
            if self.role == Role::PreCandidate {
                self.campaign(false);
            } else {
                self.become_leader();
            }
            true
        } else if rejected >= self.quorum() {
            self.become_follower(self.term, None);
            true
        } else {
            false
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state();
        }
        let was_leader = self.role == Role::Leader;
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_election_timer();
        if was_leader {
            self.progress.clear();
            self.read_rounds.clear();
            self.read_round_wanted = false;
            self.need_broadcast = false;
            self.lease_until_tick = 0;
            self.lease_until_wall_ms = 0;
            while let Some(r) = self.pending_reads.pop_front() {
                self.effects.push(Effect::ReadFailed {
                    ctx: r.ctx,
                    leader_hint: leader,
                });
            }
        }
    }

    fn become_leader(&mut self) {
        tracing::debug!(
            id = self.id,
            term = self.term,
            last_index = self.log.last_index(),
            committed = self.log.committed,
            "became leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.read_rounds.clear();
        self.lease_until_tick = 0;
        self.lease_until_wall_ms = 0;
        self.quorum_contact_wall_ms = self.wall_clock_ms;
        let next = self.log.last_index() + 1;
        self.progress = self
            .voters
            .iter()
            .filter(|v| **v != self.id)
            .map(|v| (*v, Progress::new(next)))
            .collect();
        self.term_start_index = self.append_local(EntryData::Noop);
        self.broadcast_append();
        self.maybe_commit();
    }

    // ----- leader --------------------------------------------------------------------

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.config.check_quorum && self.config.has_bug(Bug::LeaseClock) {
            // BUG lease-clock: the leader's own liveness check runs on the wall clock too,
            // so a clock that jumps back or runs slow keeps a cut-off leader in office (and
            // serving lease reads) long after the others elected a new one.
            let timeout_ms = self.config.election_timeout_min_ticks * self.config.tick_ms;
            let silent_ms = self
                .wall_clock_ms
                .saturating_sub(self.quorum_contact_wall_ms);
            if silent_ms >= timeout_ms {
                tracing::debug!(
                    id = self.id,
                    term = self.term,
                    "no majority contact for an election timeout (wall clock); stepping down"
                );
                self.become_follower(self.term, None);
                return;
            }
        } else if self.config.check_quorum
            && self.election_elapsed >= self.config.election_timeout_min_ticks
        {
            self.election_elapsed = 0;
            let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
            if active < self.quorum() {
                tracing::debug!(
                    id = self.id,
                    term = self.term,
                    "lost contact with a majority; stepping down"
                );
                self.become_follower(self.term, None);
                return;
            }
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_interval_ticks {
            self.broadcast_heartbeat();
        }
    }

    fn append_local(&mut self, data: EntryData) -> Index {
        let entry = Entry {
            index: self.log.last_index() + 1,
            term: self.term,
            data,
        };
        let index = entry.index;
        self.log.push(entry.clone());
        self.push_persist(Persist {
            entries: vec![entry],
            ..Persist::default()
        });
        index
    }

    fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for to in peers {
            self.send_append_all(to);
        }
    }

    /// Send as many AppendEntries to `to` as its progress state allows.
    /// Returns how many messages were sent.
    fn send_append_all(&mut self, to: NodeId) -> usize {
        // Bounded by the inflight window (Replicate) or one message (Probe/Snapshot).
        let mut sent = 0;
        for _ in 0..=self.config.max_inflight_msgs {
            if !self.send_append(to) {
                break;
            }
            sent += 1;
            match self.progress.get(&to).map(|p| p.state) {
                Some(ProgressState::Replicate) => {}
                _ => break,
            }
        }
        sent
    }

    /// Send one AppendEntries (or InstallSnapshot) to `to`. Returns true if sent.
    fn send_append(&mut self, to: NodeId) -> bool {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&to) else {
            return false;
        };
        match pr.state {
            ProgressState::Snapshot { .. } | ProgressState::Probe { paused: true } => return false,
            ProgressState::Replicate if pr.inflight.len() >= self.config.max_inflight_msgs => {
                return false
            }
            _ => {}
        }
        pr.next_index = pr.next_index.min(last_index + 1);
        let prev_index = pr.next_index - 1;
        let Some(prev_term) = self.log.term(prev_index) else {
            // The entries it needs were compacted: send the snapshot instead.
            let Some(snapshot) = self.snapshot.clone() else {
                return false;
            };
            pr.state = ProgressState::Snapshot {
                index: snapshot.meta.index,
                sent_tick: self.ticks,
            };
            pr.inflight.clear();
            self.send(to, MessageBody::InstallSnapshot { snapshot });
            return true;
        };
        let entries = self.log.batch(
            pr.next_index,
            self.config.max_entries_per_msg,
            self.config.max_bytes_per_msg,
        );
        match pr.state {
            ProgressState::Replicate => {
                let Some(last) = entries.last() else {
                    return false;
                };
                pr.next_index = last.index + 1;
                pr.inflight.push_back(last.index);
            }
            _ => pr.state = ProgressState::Probe { paused: true },
        }
        let leader_commit = self.log.committed;
        self.send(
            to,
            MessageBody::AppendEntries {
                prev_log_index: prev_index,
                prev_log_term: prev_term,
                entries,
                leader_commit,
            },
        );
        true
    }

    fn broadcast_heartbeat(&mut self) {
        self.heartbeat_elapsed = 0;
        self.read_round_wanted = false;
        self.read_seq += 1;
        if self.read_rounds.len() >= MAX_READ_ROUNDS {
            self.read_rounds.pop_front();
        }
        self.read_rounds.push_back(ReadRound {
            seq: self.read_seq,
            sent_tick: self.ticks,
            sent_wall_ms: self.wall_clock_ms,
        });
        let committed = self.log.committed;
        let read_seq = self.read_seq;
        let beats: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(id, p)| (*id, p.match_index.min(committed)))
            .collect();
        for (to, commit) in beats {
            self.send(to, MessageBody::Heartbeat { commit, read_seq });
        }
        self.advance_reads();
    }

    /// The highest heartbeat round a majority (counting ourselves) has acknowledged.
    fn quorum_read_seq(&self) -> u64 {
        let mut acks: Vec<u64> = self.progress.values().map(|p| p.read_ack).collect();
        acks.push(self.read_seq);
        acks.sort_unstable_by(|a, b| b.cmp(a));
        acks[self.quorum() - 1]
    }

    /// Confirm reads and extend the lease with the rounds a majority acknowledged.
    fn advance_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let acked = self.quorum_read_seq();
        let lease_ticks = self.config.election_timeout_min_ticks - self.config.lease_margin_ticks;
        while let Some(r) = self.read_rounds.front().copied() {
            if r.seq > acked {
                break;
            }
            self.read_rounds.pop_front();
            self.lease_until_tick = self.lease_until_tick.max(r.sent_tick + lease_ticks);
            self.lease_until_wall_ms = self
                .lease_until_wall_ms
                .max(r.sent_wall_ms + lease_ticks * self.config.tick_ms);
            self.quorum_contact_wall_ms = self.quorum_contact_wall_ms.max(r.sent_wall_ms);
        }
        for r in self.pending_reads.iter_mut() {
            if !r.confirmed && r.seq <= acked {
                r.confirmed = true;
            }
        }
        self.emit_ready_reads();
    }

    fn lease_valid(&self) -> bool {
        if self.log.committed < self.term_start_index {
            return false;
        }
        if self.config.has_bug(Bug::LeaseClock) {
            // BUG lease-clock: trusts a wall clock that can jump or be skewed.
            self.wall_clock_ms < self.lease_until_wall_ms
        } else {
            self.ticks < self.lease_until_tick
        }
    }

    fn emit_ready_reads(&mut self) {
        let applied = self.log.applied;
        let mut ready = Vec::new();
        self.pending_reads.retain(|r| {
            if r.confirmed && r.index <= applied {
                ready.push((r.ctx, r.index));
                false
            } else {
                true
            }
        });
        for (ctx, index) in ready {
            self.effects.push(Effect::ReadReady { ctx, index });
        }
    }

    /// Commit the highest index a majority holds, if it is from our term (§5.4.2).
    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matches: Vec<Index> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.log.last_index());
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let m = matches[self.quorum() - 1];
        if m <= self.log.committed {
            return;
        }
        // BUG old-term-commit: counting replicas of an earlier term's entry (Figure 8).
        let entry_term = self.log.term(m);
        if entry_term == Some(self.term) || self.config.has_bug(Bug::OldTermCommit) {
            if entry_term != Some(self.term) {
                tracing::debug!(
                    id = self.id,
                    term = self.term,
                    index = m,
                    entry_term = ?entry_term,
                    "committing an earlier term's entry by counting replicas"
                );
            }
            self.log.committed = m;
            self.maybe_apply();
            self.advance_reads();
        }
    }

    // ----- shared helpers ------------------------------------------------------------

    fn commit_to(&mut self, index: Index) {
        if index > self.log.committed {
            self.log.committed = index;
        }
    }

    fn maybe_apply(&mut self) {
        let target = if self.role == Role::Leader && self.config.has_bug(Bug::LostAck) {
            // BUG lost-ack: apply (and so acknowledge) what is only in our own log.
            self.log.last_index()
        } else {
            self.log.committed
        };
        if target > self.log.applied {
            let entries = self.log.slice(self.log.applied + 1, target).to_vec();
            self.log.applied = target;
            if !entries.is_empty() {
                self.effects.push(Effect::Apply(entries));
            }
        }
        self.emit_ready_reads();
    }

    /// End of every input: apply newly committed entries, report role changes.
    fn finish(&mut self) {
        self.maybe_apply();
        let now = (self.role, self.term, self.leader);
        if now != self.reported {
            self.reported = now;
            self.effects.push(Effect::RoleChange {
                role: now.0,
                term: now.1,
                leader: now.2,
            });
        }
    }

    fn persist_hard_state(&mut self) {
        let hs = self.hard_state();
        self.push_persist(Persist {
            hard_state: Some(hs),
            ..Persist::default()
        });
    }

    /// Queue a Persist, merging it into an immediately preceding one when field order allows.
    fn push_persist(&mut self, p: Persist) {
        if p.snapshot.is_none() && p.truncate_from.is_none() {
            if let Some(Effect::Persist(prev)) = self.effects.last_mut() {
                if p.hard_state.is_some() {
                    prev.hard_state = p.hard_state;
                }
                prev.entries.extend(p.entries);
                return;
            }
        }
        self.effects.push(Effect::Persist(p));
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.effects.push(Effect::Send(Message {
            from: self.id,
            to,
            term,
            body,
        }));
    }
}

fn append_ok(match_index: Index) -> MessageBody {
    MessageBody::AppendEntriesResponse {
        success: true,
        match_index,
        rejected_index: 0,
        hint_index: 0,
        hint_term: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::ReadMode;

    /// A tiny lossless cluster: messages are delivered in send order, with optional cut nodes.
    struct Net {
        nodes: Vec<Raft>,
        queue: VecDeque<Message>,
        down: Vec<bool>,
        applied: Vec<Vec<Entry>>,
        reads: Vec<(NodeId, u64, Index)>,
    }

    impl Net {
        fn new(n: u64, config: Config) -> Net {
            let voters: Vec<NodeId> = (1..=n).collect();
            let nodes = voters
                .iter()
                .map(|id| {
                    Raft::new(
                        *id,
                        voters.clone(),
                        config.clone(),
                        PersistentState::default(),
                        7,
                    )
                    .expect("valid")
                })
                .collect();
            Net {
                nodes,
                queue: VecDeque::new(),
                down: vec![false; n as usize],
                applied: vec![Vec::new(); n as usize],
                reads: Vec::new(),
            }
        }

        fn collect(&mut self, i: usize) {
            for e in self.nodes[i].take_effects() {
                match e {
                    Effect::Send(m) => self.queue.push_back(m),
                    Effect::Apply(es) => self.applied[i].extend(es),
                    Effect::ReadReady { ctx, index } => {
                        self.reads.push((i as NodeId + 1, ctx, index))
                    }
                    _ => {}
                }
            }
        }

        fn deliver_all(&mut self) {
            for _ in 0..100_000 {
                let Some(m) = self.queue.pop_front() else {
                    return;
                };
                let to = (m.to - 1) as usize;
                if self.down[to] || self.down[(m.from - 1) as usize] {
                    continue;
                }
                self.nodes[to].step(m);
                self.collect(to);
            }
            panic!("messages never quiesced");
        }

        fn tick_all(&mut self) {
            for i in 0..self.nodes.len() {
                if !self.down[i] {
                    self.nodes[i].tick();
                    self.collect(i);
                }
            }
            self.deliver_all();
        }

        fn leader(&self) -> Option<usize> {
            (0..self.nodes.len()).find(|&i| !self.down[i] && self.nodes[i].is_leader())
        }

        fn elect(&mut self) -> usize {
            for _ in 0..500 {
                self.tick_all();
                if let Some(l) = self.leader() {
                    return l;
                }
            }
            panic!("no leader elected");
        }
    }

    #[test]
    fn new_rejects_bad_input() {
        let c = Config::default();
        assert!(matches!(
            Raft::new(9, vec![1, 2], c.clone(), PersistentState::default(), 0),
            Err(NewError::NotAVoter { id: 9 })
        ));
        assert!(matches!(
            Raft::new(1, vec![1, 1], c.clone(), PersistentState::default(), 0),
            Err(NewError::DuplicateVoter)
        ));
        let gap = PersistentState {
            entries: vec![Entry {
                index: 2,
                term: 1,
                data: EntryData::Noop,
            }],
            ..PersistentState::default()
        };
        assert!(matches!(
            Raft::new(1, vec![1], c, gap, 0),
            Err(NewError::LogGap { after: 0 })
        ));
    }

    #[test]
    fn single_node_elects_itself_and_commits() {
        let mut net = Net::new(1, Config::default());
        let l = net.elect();
        let p = net.nodes[l].propose(b"x".to_vec()).expect("leader");
        net.collect(l);
        assert_eq!(net.nodes[l].commit_index(), p.index);
        assert_eq!(
            net.applied[0].last().map(|e| e.data.clone()),
            Some(EntryData::Normal(b"x".to_vec()))
        );
    }

    #[test]
    fn three_nodes_elect_replicate_and_read() {
        let mut net = Net::new(3, Config::default());
        let l = net.elect();
        assert_eq!(net.nodes.iter().filter(|r| r.is_leader()).count(), 1);
        assert!(matches!(
            net.nodes[(l + 1) % 3].propose(vec![1]),
            Err(ProposeError::NotLeader {
                leader_hint: Some(_)
            })
        ));
        let mut last = Proposal { index: 0, term: 0 };
        for k in 0..20u8 {
            last = net.nodes[l].propose(vec![k]).expect("leader");
        }
        net.collect(l);
        net.deliver_all();
        for _ in 0..Config::default().heartbeat_interval_ticks {
            net.tick_all(); // a heartbeat carries the commit index to followers
        }
        for i in 0..3 {
            assert!(net.nodes[i].commit_index() >= last.index, "node {i} commit");
            assert_eq!(net.applied[i], net.applied[l]);
        }
        net.nodes[l].read_index(77).expect("leader reads");
        net.collect(l);
        net.deliver_all();
        assert!(net
            .reads
            .iter()
            .any(|&(_, ctx, index)| ctx == 77 && index >= last.index));
    }

    #[test]
    fn lagging_follower_catches_up_by_backtracking_and_snapshot() {
        let mut net = Net::new(3, Config::default());
        let l = net.elect();
        let f = (l + 1) % 3;
        net.down[f] = true;
        for k in 0..50u8 {
            net.nodes[l].propose(vec![k]).expect("leader");
            net.collect(l);
            net.deliver_all();
        }
        let applied = net.nodes[l].applied_index();
        net.nodes[l]
            .compact(applied - 5, b"snap".to_vec())
            .expect("compact");
        assert_eq!(net.nodes[l].first_index(), applied - 4);
        net.collect(l);
        net.down[f] = false;
        for _ in 0..10 {
            net.tick_all();
        }
        assert_eq!(net.nodes[f].snapshot_meta().index, applied - 5);
        assert_eq!(net.nodes[f].last_index(), net.nodes[l].last_index());
        assert_eq!(net.nodes[f].commit_index(), net.nodes[l].commit_index());
    }

    #[test]
    fn partitioned_leader_steps_down_and_fails_reads() {
        let mut net = Net::new(3, Config::default());
        let l = net.elect();
        net.nodes[l].read_index(5).expect("leader");
        net.collect(l);
        // Cut the leader off: the read cannot be confirmed and check-quorum demotes it.
        net.down[(l + 1) % 3] = true;
        net.down[(l + 2) % 3] = true;
        let mut failed = false;
        for _ in 0..100 {
            net.nodes[l].tick();
            for e in net.nodes[l].take_effects() {
                if matches!(e, Effect::ReadFailed { ctx: 5, .. }) {
                    failed = true;
                }
            }
        }
        assert!(!net.nodes[l].is_leader());
        assert!(failed);
    }

    #[test]
    fn stale_read_bug_answers_without_a_round() {
        let config = Config {
            bugs: [Bug::StaleRead].into_iter().collect(),
            ..Config::default()
        };
        let mut net = Net::new(3, config);
        let l = net.elect();
        net.down[(l + 1) % 3] = true;
        net.down[(l + 2) % 3] = true;
        net.nodes[l].read_index(9).expect("leader");
        net.collect(l);
        assert!(
            net.reads.iter().any(|&(_, ctx, _)| ctx == 9),
            "answered with no quorum"
        );
    }

    #[test]
    fn lease_reads_skip_the_round_while_the_lease_holds() {
        let config = Config {
            read_mode: ReadMode::Lease,
            ..Config::default()
        };
        let mut net = Net::new(3, config);
        let l = net.elect();
        for _ in 0..5 {
            net.tick_all();
        }
        net.down[(l + 1) % 3] = true;
        net.down[(l + 2) % 3] = true;
        net.nodes[l].read_index(1).expect("leader");
        net.collect(l);
        assert!(
            net.reads.iter().any(|&(_, ctx, _)| ctx == 1),
            "lease read served at once"
        );
        for _ in 0..Config::default().election_timeout_min_ticks {
            net.nodes[l].tick();
            net.collect(l);
        }
        if net.nodes[l].is_leader() {
            net.nodes[l].read_index(2).expect("leader");
            net.collect(l);
            assert!(
                !net.reads.iter().any(|&(_, ctx, _)| ctx == 2),
                "lease expired: no local read"
            );
        }
    }

    #[test]
    fn advance_ticks_expires_the_lease_and_the_election_timer() {
        let config = Config {
            read_mode: ReadMode::Lease,
            ..Config::default()
        };
        let mut net = Net::new(3, config);
        let l = net.elect();
        for _ in 0..5 {
            net.tick_all();
        }
        let f = (l + 1) % 3;
        net.nodes[f].advance_ticks(1000);
        net.collect(f);
        assert_ne!(
            net.nodes[f].role(),
            Role::Follower,
            "follower campaigns after a long stall"
        );
        // A leader that stalled must not serve lease reads from before the stall.
        net.nodes[l].advance_ticks(1000);
        net.collect(l);
        if net.nodes[l].is_leader() {
            net.nodes[l].read_index(3).expect("leader");
            net.collect(l);
            assert!(!net.reads.iter().any(|&(_, ctx, _)| ctx == 3));
        }
    }

    #[test]
    fn a_follower_that_lost_acknowledged_entries_is_caught_up() {
        let mut net = Net::new(3, Config::default());
        let l = net.elect();
        for i in 0..5u8 {
            net.nodes[l].propose(vec![i]).expect("leader");
            net.collect(l);
            net.deliver_all();
        }
        for _ in 0..3 {
            net.tick_all();
        }
        let f = (l + 1) % 3;
        let full = net.nodes[l].log.last_index();
        assert_eq!(net.nodes[f].log.last_index(), full);
        // The follower restarts without its last entry, as after a cut WAL tail.
        let kept = PersistentState {
            hard_state: HardState {
                term: net.nodes[f].term,
                vote: net.nodes[f].vote,
                commit: 0,
            },
            snapshot: None,
            entries: net.nodes[f].log.slice(1, full - 1).to_vec(),
        };
        net.nodes[f] =
            Raft::new(f as NodeId + 1, vec![1, 2, 3], Config::default(), kept, 9).expect("valid");
        // One more entry: its append finds the gap and the leader fills it.
        net.nodes[l].propose(vec![9]).expect("leader");
        net.collect(l);
        net.deliver_all();
        for _ in 0..20 {
            net.tick_all();
        }
        assert_eq!(net.nodes[f].log.last_index(), full + 1);
        assert_eq!(net.nodes[f].log.committed, full + 1);
    }

    /// Ticks the leader alone (its peers cut off) `n` times, moving its wall clock by
    /// `wall_step_ms` per tick; returns whether it is still leader.
    fn tick_cut_off_leader(net: &mut Net, l: usize, n: u64, wall_step_ms: u64) -> bool {
        let n_nodes = net.nodes.len();
        for i in 1..n_nodes {
            net.down[(l + i) % n_nodes] = true;
        }
        for _ in 0..n {
            let wall = net.nodes[l].wall_clock_ms + wall_step_ms;
            net.nodes[l].set_wall_clock_ms(wall);
            net.nodes[l].tick();
            net.collect(l);
        }
        net.nodes[l].is_leader()
    }

    fn lease_net(bug: bool) -> (Net, usize) {
        let mut config = Config {
            read_mode: ReadMode::Lease,
            ..Config::default()
        };
        if bug {
            config.bugs.insert(Bug::LeaseClock);
        }
        let mut net = Net::new(3, config);
        for _ in 0..500 {
            for n in net.nodes.iter_mut() {
                let wall = n.wall_clock_ms + 10;
                n.set_wall_clock_ms(wall);
            }
            net.tick_all();
            if net.leader().is_some() {
                break;
            }
        }
        let l = net.leader().expect("a leader");
        for _ in 0..5 {
            for n in net.nodes.iter_mut() {
                let wall = n.wall_clock_ms + 10;
                n.set_wall_clock_ms(wall);
            }
            net.tick_all();
        }
        (net, l)
    }

    #[test]
    fn cut_off_leader_steps_down_by_ticks_whatever_its_wall_clock_does() {
        let max = Config::default().election_timeout_max_ticks;
        // A wall clock that stands still (as after a jump back) changes nothing.
        let (mut net, l) = lease_net(false);
        assert!(!tick_cut_off_leader(&mut net, l, 2 * max, 0));
    }

    #[test]
    fn lease_clock_bug_keeps_a_cut_off_leader_in_office_while_its_clock_stands_still() {
        let max = Config::default().election_timeout_max_ticks;
        let (mut net, l) = lease_net(true);
        // With the wall clock moving at the tick rate, the buggy leader still steps down.
        assert!(!tick_cut_off_leader(&mut net, l, 2 * max, 10));
        let (mut net, l) = lease_net(true);
        // A clock that went back (here: stands still) keeps it leader with a live lease,
        // long after the others' election timeout.
        assert!(tick_cut_off_leader(&mut net, l, 4 * max, 0));
        net.nodes[l].read_index(5).expect("still leader");
        net.collect(l);
        assert!(
            net.reads.iter().any(|&(_, ctx, _)| ctx == 5),
            "served a read under a lease that really expired"
        );
    }

    #[test]
    fn restart_recovers_from_persisted_state() {
        let mut raft =
            Raft::new(1, vec![1], Config::default(), PersistentState::default(), 3).expect("valid");
        let mut disk = PersistentState::default();
        for _ in 0..40 {
            raft.tick();
        }
        raft.propose(b"a".to_vec()).expect("leader");
        for e in raft.take_effects() {
            if let Effect::Persist(p) = e {
                if let Some(hs) = p.hard_state {
                    disk.hard_state = hs;
                }
                disk.entries.extend(p.entries);
            }
        }
        let term = raft.term();
        let mut again = Raft::new(1, vec![1], Config::default(), disk, 3).expect("restart");
        assert_eq!(again.term(), term);
        assert_eq!(again.last_index(), raft.last_index());
        let applied: Vec<Entry> = again
            .take_effects()
            .into_iter()
            .filter_map(|e| {
                if let Effect::Apply(es) = e {
                    Some(es)
                } else {
                    None
                }
            })
            .flatten()
            .collect();
        // Only entries whose commit was persisted in the hard state are re-applied at once.
        assert!(applied.len() as u64 <= again.commit_index());
    }
}
