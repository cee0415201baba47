//! The node runtime: one thread that owns the Raft core, the durable storage and the
//! state machine, and drives them from a bounded input queue.
//!
//! Each loop iteration takes a batch of inputs (peer messages, client proposals and
//! reads, ticks), feeds them to the core, then performs the core's effects: all
//! `Persist`s are written and fsynced once (group commit) BEFORE any message is sent,
//! entry applied or client answered, because those may promise what was persisted.
//! The exception is leader replication, sent before the fsync so that the leader's and the
//! followers' disk writes overlap (see `Message::may_precede_persist`).
//! A dedicated thread (not a tokio task) is used because fsync blocks.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::kv::{Command, Op, OpError, Reply, StateMachine};
use crate::raft::{
    Bug, Config, Effect, Entry, EntryData, Message, NodeId, PersistentState, ProposeError, Raft,
    ReadError, Role, Snapshot as RaftSnapshot, SnapshotMeta,
};
use crate::storage::{self, LogRecord, Storage, StorageError, WalOptions};

/// Inputs queued to the node thread; bounded so a flood of clients cannot exhaust memory.
pub const INPUT_QUEUE_CAPACITY: usize = 16_384;
/// Inputs handled per iteration before effects are performed (the group-commit batch).
const MAX_INPUTS_PER_BATCH: usize = 1024;
/// Proposals waiting for their entry to apply.
const MAX_PENDING_PROPOSALS: usize = 20_000;
/// Rounds of `take_effects` per iteration (applying can trigger a snapshot, and so on).
const MAX_EFFECT_ROUNDS: usize = 8;

/// Why a request did not produce a state-machine result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Definitely not executed: this node is not the leader.
    #[error("not the leader")]
    NotLeader { leader: Option<NodeId> },
    /// Definitely not executed: the entry was overwritten by another leader's entry.
    #[error("proposal lost in a leader change")]
    Lost { leader: Option<NodeId> },
    /// Definitely not executed: overloaded or shutting down.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Outcome unknown: it may or may not have taken effect.
    #[error("outcome unknown: {0}")]
    Indeterminate(String),
}

pub type ProposeOutcome = Result<Result<Reply, OpError>, Failure>;
pub type ReadOutcome = Result<Option<String>, Failure>;

/// `/status` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    pub keys: usize,
    pub bugs: Vec<&'static str>,
}

/// What client handlers and the peer listener send to the node thread.
#[derive(Debug)]
pub enum Input {
    Peer(Vec<Message>),
    Propose {
        op: Op,
        reply: oneshot::Sender<ProposeOutcome>,
    },
    Read {
        key: String,
        reply: oneshot::Sender<ReadOutcome>,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
    Shutdown,
}

/// Cloneable handle for sending inputs without blocking (full queue = `Unavailable`).
#[derive(Debug, Clone)]
pub struct NodeHandle {
    tx: SyncSender<Input>,
}

impl NodeHandle {
    pub fn new(tx: SyncSender<Input>) -> NodeHandle {
        NodeHandle { tx }
    }

    pub fn send(&self, input: Input) -> Result<(), Failure> {
        self.tx.try_send(input).map_err(|e| match e {
            TrySendError::Full(_) => Failure::Unavailable("node input queue full".into()),
            TrySendError::Disconnected(_) => Failure::Unavailable("node is shutting down".into()),
        })
    }
}

/// Delivers messages to peers. Best effort and non-blocking.
pub trait Outbox: Send {
    fn send(&mut self, msg: Message);
}

/// Node runtime settings (from the CLI).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    pub voters: Vec<NodeId>,
    pub data_dir: PathBuf,
    pub raft: Config,
    pub tick_ms: u64,
    /// Take a snapshot (and compact the log) after this many applied entries.
    pub snapshot_every_entries: u64,
    pub segment_max_bytes: u64,
    /// File-layer fault mode (`--lose-unsynced`, LazyFS-style): data written but not yet
    /// fsynced lives only in process memory, so `kill -9` loses it as a power cut would.
    /// A correct node fsyncs before it acknowledges, so this changes nothing for it.
    pub lose_unsynced: bool,
}

/// Fatal node errors: the process must stop rather than continue with unknown state.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("raft: {0}")]
    Raft(#[from] crate::raft::NewError),
    #[error("corrupt snapshot data: {0}")]
    Snapshot(serde_json::Error),
    #[error("bad log entry encoding at index {0}")]
    Entry(u64),
}

struct PendingProposal {
    term: u64,
    reply: oneshot::Sender<ProposeOutcome>,
}

struct PendingRead {
    key: String,
    reply: oneshot::Sender<ReadOutcome>,
}

/// The node: Raft core + storage + state machine + the requests waiting on them.
pub struct Node<O: Outbox> {
    cfg: NodeConfig,
    raft: Raft,
    storage: Storage,
    sm: StateMachine,
    outbox: O,
    proposals: BTreeMap<u64, PendingProposal>,
    reads: HashMap<u64, PendingRead>,
    next_read_ctx: u64,
    /// `--bug token-reuse` only: this node's in-memory token counter. It is never
    /// replicated nor persisted: it starts at 0 when the process starts and carries on
    /// from wherever this node left it when it was last leader, so after a leader change
    /// (or a restart) tokens already granted by another leader are granted again.
    leader_token: Option<u64>,
    role: Role,
    /// Applied index of the last snapshot attempt, so a failed attempt is not retried
    /// (and the state re-serialized) on every iteration.
    last_snapshot_attempt: u64,
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Log entries on disk: one tag byte (0 = no-op, 1 = command) then the payload.
fn encode_entry(e: &Entry) -> LogRecord {
    let data = match &e.data {
        EntryData::Noop => vec![0],
        EntryData::Normal(d) => {
            let mut v = Vec::with_capacity(d.len() + 1);
            v.push(1);
            v.extend_from_slice(d);
            v
        }
    };
    LogRecord {
        index: e.index,
        term: e.term,
        data,
    }
}

fn decode_entry(r: LogRecord) -> Result<Entry, NodeError> {
    let data = match r.data.split_first() {
        Some((0, [])) => EntryData::Noop,
        Some((1, rest)) => EntryData::Normal(rest.to_vec()),
        _ => return Err(NodeError::Entry(r.index)),
    };
    Ok(Entry {
        index: r.index,
        term: r.term,
        data,
    })
}

impl<O: Outbox> Node<O> {
    /// Opens the data directory, restores the state machine from the snapshot and builds
    /// the Raft core from what was persisted.
    pub fn open(cfg: NodeConfig, outbox: O) -> Result<Node<O>, NodeError> {
        let fsync = !cfg.raft.has_bug(Bug::NoFsync);
        if !fsync {
            tracing::warn!("BUG no-fsync enabled: writes are acknowledged without fsync");
        }
        let (storage, rec) = Storage::open(
            &cfg.data_dir,
            WalOptions {
                fsync,
                lazy_write: cfg.lose_unsynced,
                segment_max_bytes: cfg.segment_max_bytes,
            },
        )?;
        let sm = match &rec.snapshot {
            Some(s) => StateMachine::restore(&s.data).map_err(NodeError::Snapshot)?,
            None => StateMachine::new(),
        };
        let entries = rec
            .entries
            .into_iter()
            .map(decode_entry)
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(
            id = cfg.id,
            term = rec.hard_state.term,
            entries = entries.len(),
            snapshot_index = rec.snapshot.as_ref().map_or(0, |s| s.index),
            "recovered from disk"
        );
        let persisted = PersistentState {
            hard_state: crate::raft::HardState {
                term: rec.hard_state.term,
                vote: rec.hard_state.vote,
                commit: rec.hard_state.commit,
            },
            snapshot: rec.snapshot.map(|s| RaftSnapshot {
                meta: SnapshotMeta {
                    index: s.index,
                    term: s.term,
                },
                data: s.data,
            }),
            entries,
        };
        let seed = wall_clock_ms() ^ (u64::from(std::process::id()) << 32);
        let raft = Raft::new(
            cfg.id,
            cfg.voters.clone(),
            cfg.raft.clone(),
            persisted,
            seed,
        )?;
        Ok(Node {
            cfg,
            raft,
            storage,
            sm,
            outbox,
            proposals: BTreeMap::new(),
            reads: HashMap::new(),
            next_read_ctx: 1,
            leader_token: None,
            role: Role::Follower,
            last_snapshot_attempt: 0,
        })
    }

    pub fn state_machine(&self) -> &StateMachine {
        &self.sm
    }

    /// Runs until `Input::Shutdown` or all senders are gone. Returns a fatal error if
    /// storage fails (the node must not keep running on state it could not persist).
    pub fn run(mut self, rx: Receiver<Input>) -> Result<(), NodeError> {
        let tick = Duration::from_millis(self.cfg.tick_ms.max(1));
        let mut next_tick = Instant::now() + tick;
        let mut ticks: u64 = 0;
        // Apply anything the core emitted on construction (committed entries on restart).
        self.perform_effects()?;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let first = match rx.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Time first, then inputs: after a stall the core must learn how much time
            // passed before it answers anything (a lease counted in ticks would otherwise
            // outlive real time).
            let now = Instant::now();
            if now >= next_tick {
                let behind = now.duration_since(next_tick);
                if behind > tick * 10 {
                    // The thread did not run for a while (e.g. SIGSTOP): account for every
                    // missed tick at once, without replaying a burst of messages.
                    let missed = 1 + behind.as_millis() / tick.as_millis().max(1);
                    self.advance_ticks(u64::try_from(missed).unwrap_or(u64::MAX));
                    next_tick = now + tick;
                } else {
                    self.tick();
                    next_tick += tick;
                }
                ticks += 1;
                if ticks.is_multiple_of(100) {
                    self.drop_abandoned();
                }
            }
            let mut shutdown = false;
            if let Some(input) = first {
                shutdown |= self.handle(input);
                for _ in 1..MAX_INPUTS_PER_BATCH {
                    match rx.try_recv() {
                        Ok(input) => shutdown |= self.handle(input),
                        Err(_) => break,
                    }
                }
            }
            self.perform_effects()?;
            if shutdown {
                break;
            }
        }
        self.storage.flush()?;
        self.fail_all(Failure::Unavailable("node shut down".into()));
        tracing::info!(id = self.cfg.id, "node thread stopped");
        Ok(())
    }

    /// Advances the core by `n` ticks at once, after the run loop missed them.
    fn advance_ticks(&mut self, n: u64) {
        tracing::info!(
            id = self.cfg.id,
            ticks = n,
            "runtime stalled; catching up on missed ticks"
        );
        self.raft.set_wall_clock_ms(wall_clock_ms());
        self.raft.advance_ticks(n);
    }

    /// Advances the core by one tick (the run loop calls this every `tick_ms`).
    pub fn tick(&mut self) {
        self.raft.set_wall_clock_ms(wall_clock_ms());
        self.raft.tick();
    }

    /// Handles one input; returns true on shutdown. Call `perform_effects` afterwards.
    pub fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Peer(msgs) => {
                for m in msgs {
                    self.raft.step(m);
                }
            }
            Input::Propose { op, reply } => self.propose(op, reply),
            Input::Read { key, reply } => self.read(key, reply),
            Input::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Input::Shutdown => return true,
        }
        false
    }

    pub fn status(&self) -> NodeStatus {
        let s = self.raft.status();
        NodeStatus {
            id: s.id,
            role: s.role.as_str(),
            term: s.term,
            leader: s.leader,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            last_index: s.last_index,
            snapshot_index: s.snapshot_index,
            keys: self.sm.len(),
            bugs: self.cfg.raft.bugs.iter().map(|b| b.as_str()).collect(),
        }
    }

    fn propose(&mut self, mut op: Op, reply: oneshot::Sender<ProposeOutcome>) {
        if self.proposals.len() >= MAX_PENDING_PROPOSALS {
            let _ = reply.send(Err(Failure::Unavailable(
                "too many pending proposals".into(),
            )));
            return;
        }
        if !self.raft.is_leader() {
            let _ = reply.send(Err(Failure::NotLeader {
                leader: self.raft.leader(),
            }));
            return;
        }
        if let Op::Acquire { leader_token, .. } = &mut op {
            // BUG token-reuse: the token comes from leader memory, not the replicated counter.
            if let Some(counter) = self.leader_token.as_mut() {
                *counter += 1;
                *leader_token = Some(*counter);
            }
        }
        let cmd = Command {
            now_ms: wall_clock_ms(),
            op,
        };
        match self.raft.propose(cmd.encode()) {
            Ok(p) => {
                let pending = PendingProposal {
                    term: p.term,
                    reply,
                };
                if let Some(old) = self.proposals.insert(p.index, pending) {
                    // Our entry at this index from an earlier term was truncated (we just
                    // appended a new one there), so it can never commit.
                    let _ = old.reply.send(Err(Failure::Lost {
                        leader: Some(self.cfg.id),
                    }));
                }
            }
            Err(ProposeError::NotLeader { leader_hint }) => {
                let _ = reply.send(Err(Failure::NotLeader {
                    leader: leader_hint,
                }));
            }
            Err(e) => {
                let _ = reply.send(Err(Failure::Unavailable(e.to_string())));
            }
        }
    }

    fn read(&mut self, key: String, reply: oneshot::Sender<ReadOutcome>) {
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        self.raft.set_wall_clock_ms(wall_clock_ms());
        if self.cfg.raft.has_bug(Bug::StaleRead) {
            // BUG stale-read: every node, follower or deposed leader, answers from its own
            // applied state at once: no ReadIndex, no forwarding to the leader. A node cut
            // off from the majority keeps serving the values it last applied.
            let _ = reply.send(Ok(self.sm.get(&key).cloned()));
            return;
        }
        match self.raft.read_index(ctx) {
            Ok(()) => {
                self.reads.insert(ctx, PendingRead { key, reply });
            }
            Err(ReadError::NotLeader { leader_hint }) => {
                let _ = reply.send(Err(Failure::NotLeader {
                    leader: leader_hint,
                }));
            }
            Err(e) => {
                let _ = reply.send(Err(Failure::Unavailable(e.to_string())));
            }
        }
    }

    /// Performs the core's effects: persist + one fsync first, then the rest in order.
    pub fn perform_effects(&mut self) -> Result<(), NodeError> {
        for _ in 0..MAX_EFFECT_ROUNDS {
            let effects = self.raft.take_effects();
            if effects.is_empty() {
                break;
            }
            // Leader replication goes out first, so followers write their logs while we
            // write ours (see `Message::may_precede_persist`); we handle no input (and so
            // no response) until our own fsync below has returned.
            let (early, effects): (Vec<Effect>, Vec<Effect>) = effects
                .into_iter()
                .partition(|e| matches!(e, Effect::Send(m) if m.may_precede_persist()));
            for e in early {
                if let Effect::Send(m) = e {
                    self.outbox.send(m);
                }
            }
            for e in &effects {
                if let Effect::Persist(p) = e {
                    self.persist(p)?;
                }
            }
            self.storage.sync()?;
            for e in effects {
                match e {
                    Effect::Persist(_) => {}
                    Effect::Send(m) => self.outbox.send(m),
                    Effect::Apply(entries) => self.apply(entries)?,
                    Effect::ApplySnapshot(s) => self.apply_snapshot(s)?,
                    Effect::ReadReady { ctx, .. } => {
                        if let Some(r) = self.reads.remove(&ctx) {
                            let _ = r.reply.send(Ok(self.sm.get(&r.key).cloned()));
                        }
                    }
                    Effect::ReadFailed { ctx, leader_hint } => {
                        if let Some(r) = self.reads.remove(&ctx) {
                            let _ = r.reply.send(Err(Failure::NotLeader {
                                leader: leader_hint,
                            }));
                        }
                    }
                    Effect::RoleChange { role, term, leader } => {
                        self.role_change(role, term, leader)
                    }
                }
            }
            self.maybe_snapshot();
        }
        Ok(())
    }

    fn persist(&mut self, p: &crate::raft::Persist) -> Result<(), NodeError> {
        if let Some(hs) = p.hard_state {
            self.storage.set_hard_state(storage::HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            })?;
        }
        if let Some(s) = &p.snapshot {
            self.storage.save_snapshot(&storage::Snapshot {
                index: s.meta.index,
                term: s.meta.term,
                meta: Vec::new(),
                data: s.data.clone(),
            })?;
        }
        if let Some(from) = p.truncate_from {
            self.storage.truncate_from(from)?;
        }
        if !p.entries.is_empty() {
            let recs: Vec<LogRecord> = p.entries.iter().map(encode_entry).collect();
            self.storage.append(&recs)?;
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        for e in entries {
            let result = match &e.data {
                EntryData::Noop => {
                    self.sm.skip(e.index);
                    None
                }
                EntryData::Normal(bytes) => match Command::decode(bytes) {
                    Ok(cmd) => Some(self.sm.apply(e.index, &cmd)),
                    Err(err) => {
                        // Every replica skips it identically, so state stays in agreement.
                        tracing::error!(index = e.index, %err, "undecodable command skipped");
                        self.sm.skip(e.index);
                        Some(Err(OpError::BadRequest("undecodable command".into())))
                    }
                },
            };
            if let Some(p) = self.proposals.remove(&e.index) {
                let outcome = match result {
                    Some(r) if p.term == e.term => Ok(r),
                    _ => Err(Failure::Lost {
                        leader: self.raft.leader(),
                    }),
                };
                let _ = p.reply.send(outcome);
            }
        }
        Ok(())
    }

    fn apply_snapshot(&mut self, s: RaftSnapshot) -> Result<(), NodeError> {
        self.sm = StateMachine::restore(&s.data).map_err(NodeError::Snapshot)?;
        // Proposals the snapshot covers may or may not be in it.
        let later = self.proposals.split_off(&(s.meta.index + 1));
        for (_, p) in std::mem::replace(&mut self.proposals, later) {
            let _ = p.reply.send(Err(Failure::Indeterminate(
                "replaced by a snapshot from the leader".into(),
            )));
        }
        Ok(())
    }

    fn role_change(&mut self, role: Role, term: u64, leader: Option<NodeId>) {
        tracing::info!(
            id = self.cfg.id,
            role = role.as_str(),
            term,
            ?leader,
            "role change"
        );
        if self.cfg.raft.has_bug(Bug::TokenReuse) {
            // BUG token-reuse: the counter survives in this node's memory only.
            self.leader_token = Some(self.leader_token.unwrap_or(0));
        }
        self.role = role;
    }

    fn maybe_snapshot(&mut self) {
        let applied = self.sm.applied_index();
        let base = self
            .storage
            .snapshot_index()
            .max(self.last_snapshot_attempt);
        if applied >= base + self.cfg.snapshot_every_entries {
            self.last_snapshot_attempt = applied;
            match self.raft.compact(applied, self.sm.snapshot()) {
                Ok(()) => tracing::info!(id = self.cfg.id, index = applied, "snapshot taken"),
                Err(e) => tracing::debug!(%e, "snapshot skipped"),
            }
        }
    }

    /// Forgets requests whose client gave up (its handler timed out), so they cannot pile up.
    fn drop_abandoned(&mut self) {
        self.proposals.retain(|_, p| !p.reply.is_closed());
        self.reads.retain(|_, r| !r.reply.is_closed());
    }

    fn fail_all(&mut self, f: Failure) {
        for (_, p) in std::mem::take(&mut self.proposals) {
            let _ = p.reply.send(Err(Failure::Indeterminate(f.to_string())));
        }
        for (_, r) in std::mem::take(&mut self.reads) {
            let _ = r.reply.send(Err(f.clone()));
        }
    }
}
