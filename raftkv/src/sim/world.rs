//! `Sim`: the simulated world — nodes with their disks and state machines, the network,
//! the fault schedule and the clients — advanced one tick at a time from a seed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::checker::{Checker, Violation};
use super::options::SimOptions;
use crate::raft::{
    Bug, DetRng, Effect, Entry, EntryData, Index, Message, NodeId, Persist, PersistentState, Raft,
    Role, Term,
};

/// The simulated state machine: how far it applied and a digest of everything applied
/// (a hash chain), so two nodes agree on a prefix iff their digests at its end agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SmState {
    applied: Index,
    digest: u64,
}

impl SmState {
    fn encode(self) -> Vec<u8> {
        let mut v = self.applied.to_le_bytes().to_vec();
        v.extend_from_slice(&self.digest.to_le_bytes());
        v
    }

    fn decode(data: &[u8]) -> Option<SmState> {
        let applied = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let digest = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(SmState { applied, digest })
    }

    fn apply(&mut self, e: &Entry) {
        let payload = match &e.data {
            EntryData::Noop => 0,
            EntryData::Normal(d) => d.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
            }),
        };
        let mut r =
            DetRng::new(self.digest ^ e.index.rotate_left(17) ^ e.term.rotate_left(41) ^ payload);
        self.digest = r.next_u64();
        self.applied = e.index;
    }
}

#[derive(Clone, Debug)]
struct SimNode {
    raft: Option<Raft>,
    /// What survives a crash.
    disk: PersistentState,
    /// What the node wrote, including writes still in the page cache. Equals `disk`
    /// unless `Bug::NoFsync`, where it reaches `disk` only every `fsync_every_ticks`.
    written: PersistentState,
    sm: SmState,
    down_until: u64,
    /// Process paused (SIGSTOP, GC) in [paused_since, paused_until): no ticks, no input.
    paused_since: u64,
    paused_until: u64,
    incarnation: u64,
    /// Commit index already recorded with the checker.
    recorded_commit: Index,
    /// Wall clock offset (ms) for `Bug::LeaseClock`.
    clock_offset_ms: i64,
}

#[derive(Clone, Debug)]
struct InFlight {
    deliver_at: u64,
    msg: Message,
}

#[derive(Clone, Debug)]
struct ClientWrite {
    node: usize,
    incarnation: u64,
    index: Index,
    term: Term,
    invoked_at: u64,
}

#[derive(Clone, Debug)]
struct ClientRead {
    node: usize,
    incarnation: u64,
    required: Index,
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub ticks: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub crashes: u64,
    pub elections: u64,
    pub acked_writes: u64,
    pub failed_writes: u64,
    pub reads_served: u64,
    pub snapshots_installed: u64,
    pub max_term: Term,
}

/// A failed run: what broke, when, and the tail of the trace (when tracing was on).
#[derive(Clone, Debug)]
pub struct SimFailure {
    pub seed: u64,
    pub tick: u64,
    pub violation: Violation,
    pub trace: Vec<String>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at tick {}: {}",
            self.seed, self.tick, self.violation
        )
    }
}

/// The simulated world.
pub struct Sim {
    opts: SimOptions,
    seed: u64,
    rng: DetRng,
    now: u64,
    nodes: Vec<SimNode>,
    net: Vec<InFlight>,
    /// Directed links that drop everything.
    blocked: BTreeSet<(NodeId, NodeId)>,
    checker: Checker,
    writes: Vec<ClientWrite>,
    reads: BTreeMap<u64, ClientRead>,
    next_value: u64,
    next_ctx: u64,
    chaos: bool,
    healed_at: Option<u64>,
    live: bool,
    /// Highest index of a write proposed after healing and acknowledged.
    live_index: Index,
    stats: SimStats,
    trace: VecDeque<String>,
}

fn node_id(i: usize) -> NodeId {
    i as NodeId + 1
}

impl Sim {
    pub fn new(opts: SimOptions, seed: u64) -> Sim {
        let n = opts.nodes.max(1);
        let voters: Vec<NodeId> = (0..n).map(node_id).collect();
        let nodes = (0..n)
            .map(|i| SimNode {
                raft: Raft::new(
                    node_id(i),
                    voters.clone(),
                    opts.raft.clone(),
                    PersistentState::default(),
                    seed,
                )
                .ok(),
                disk: PersistentState::default(),
                written: PersistentState::default(),
                sm: SmState::default(),
                down_until: 0,
                paused_since: 0,
                paused_until: 0,
                incarnation: 0,
                recorded_commit: 0,
                clock_offset_ms: 0,
            })
            .collect();
        Sim {
            rng: DetRng::new(seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5EED),
            opts,
            seed,
            now: 0,
            nodes,
            net: Vec::new(),
            blocked: BTreeSet::new(),
            checker: Checker::default(),
            writes: Vec::new(),
            reads: BTreeMap::new(),
            next_value: 0,
            next_ctx: 0,
            chaos: true,
            healed_at: None,
            live: false,
            live_index: 0,
            stats: SimStats::default(),
            trace: VecDeque::new(),
        }
    }

    /// Run the whole schedule: chaos, heal, liveness. Deterministic in (options, seed).
    pub fn run(mut self) -> Result<SimStats, SimFailure> {
        let total = self.opts.chaos_ticks + self.opts.liveness_ticks;
        for _ in 0..total {
            if let Err(violation) = self.step_tick() {
                return Err(self.failure(violation));
            }
            if !self.chaos && self.live {
                break;
            }
        }
        if self.opts.check_liveness && !self.live {
            let v = Violation::Liveness {
                ticks: self.opts.liveness_ticks,
            };
            return Err(self.failure(v));
        }
        self.stats.acked_writes = self.checker.acked_count() as u64;
        Ok(self.stats)
    }

    fn failure(&self, violation: Violation) -> SimFailure {
        SimFailure {
            seed: self.seed,
            tick: self.now,
            violation,
            trace: self.trace.iter().cloned().collect(),
        }
    }

    fn trace(&mut self, f: impl FnOnce() -> String) {
        if self.opts.trace_lines == 0 {
            return;
        }
        if self.trace.len() >= self.opts.trace_lines {
            self.trace.pop_front();
        }
        let line = format!("t={:>4} {}", self.now, f());
        self.trace.push_back(line);
    }

    /// One tick of simulated time.
    fn step_tick(&mut self) -> Result<(), Violation> {
        self.now += 1;
        self.stats.ticks = self.now;
        if self.chaos && self.now > self.opts.chaos_ticks {
            self.heal()?;
        }
        if self.chaos {
            self.inject_faults()?;
        }
        if self.opts.raft.has_bug(Bug::NoFsync)
            && self.now.is_multiple_of(self.opts.fsync_every_ticks.max(1))
        {
            // The OS writes the page cache back now and then.
            for node in &mut self.nodes {
                node.disk = node.written.clone();
            }
        }
        // Restart nodes whose downtime is over.
        for i in 0..self.nodes.len() {
            if self.nodes[i].raft.is_none() && self.nodes[i].down_until <= self.now {
                self.restart(i)?;
            }
        }
        // Timers.
        for i in 0..self.nodes.len() {
            let wall = self.wall_ms(i);
            let node = &mut self.nodes[i];
            if node.paused_until > self.now {
                continue;
            }
            let Some(raft) = node.raft.as_mut() else {
                continue;
            };
            raft.set_wall_clock_ms(wall);
            if node.paused_until > 0 {
                // Resuming: the runtime notices the missed ticks before any other input.
                let missed = self.now - node.paused_since;
                node.paused_until = 0;
                raft.advance_ticks(missed);
            } else {
                raft.tick();
            }
            let effects = raft.take_effects();
            self.perform(i, effects)?;
        }
        // Network: deliver due messages in random order.
        let mut due = Vec::new();
        let mut k = 0;
        while k < self.net.len() {
            if self.net[k].deliver_at <= self.now {
                due.push(self.net.swap_remove(k));
            } else {
                k += 1;
            }
        }
        let mut keyed: Vec<(u64, InFlight)> =
            due.into_iter().map(|m| (self.rng.next_u64(), m)).collect();
        keyed.sort_by_key(|(key, _)| *key);
        for (_, m) in keyed {
            let to = (m.msg.to - 1) as usize;
            if self.blocked.contains(&(m.msg.from, m.msg.to)) || self.nodes[to].raft.is_none() {
                self.stats.dropped += 1;
                continue;
            }
            if self.nodes[to].paused_until > 0 {
                // Paused processes read their sockets after resuming.
                let deliver_at = self.nodes[to].paused_until;
                self.net.push(InFlight {
                    deliver_at,
                    msg: m.msg,
                });
                continue;
            }
            self.stats.delivered += 1;
            let msg = m.msg;
            self.trace(|| {
                format!(
                    "n{} <- n{} term {} {:?}",
                    msg.to, msg.from, msg.term, msg.body
                )
            });
            let Some(raft) = self.nodes[to].raft.as_mut() else {
                continue;
            };
            raft.step(msg);
            let effects = raft.take_effects();
            self.perform(to, effects)?;
        }
        self.clients()?;
        self.check_all()?;
        Ok(())
    }

    fn wall_ms(&self, i: usize) -> u64 {
        let base = (self.now * self.opts.raft.tick_ms) as i64 + 1_000_000;
        (base + self.nodes[i].clock_offset_ms).max(0) as u64
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.chaos = false;
        self.healed_at = Some(self.now);
        self.blocked.clear();
        self.trace(|| "heal: all links up, all nodes restart".to_string());
        for i in 0..self.nodes.len() {
            if self.nodes[i].raft.is_none() {
                self.restart(i)?;
            }
        }
        Ok(())
    }

    fn inject_faults(&mut self) -> Result<(), Violation> {
        let n = self.nodes.len();
        if self.rng.chance(self.opts.partition_per_mille, 1000) {
            self.blocked.clear();
            match self.rng.range_inclusive(0, 3) {
                0 => self.trace(|| "partition healed".to_string()),
                1 => {
                    let side: Vec<bool> = (0..n).map(|_| self.rng.chance(1, 2)).collect();
                    for a in 0..n {
                        for b in 0..n {
                            if side[a] != side[b] {
                                self.blocked.insert((node_id(a), node_id(b)));
                            }
                        }
                    }
                    self.trace(|| format!("partition sides {side:?}"));
                }
                2 => {
                    let x = self.rng.range_inclusive(0, n as u64 - 1) as usize;
                    for o in 0..n {
                        if o != x {
                            self.blocked.insert((node_id(x), node_id(o)));
                            self.blocked.insert((node_id(o), node_id(x)));
                        }
                    }
                    self.trace(|| format!("isolate n{}", node_id(x)));
                }
                _ => {
                    let a = self.rng.range_inclusive(1, n as u64);
                    let b = self.rng.range_inclusive(1, n as u64);
                    if a != b {
                        self.blocked.insert((a, b));
                    }
                    self.trace(|| format!("cut link n{a} -> n{b}"));
                }
            }
        }
        if self.rng.chance(self.opts.crash_per_mille, 1000) {
            let x = self.rng.range_inclusive(0, n as u64 - 1) as usize;
            if self.nodes[x].raft.is_some() {
                self.crash(x);
            }
        }
        if self.rng.chance(self.opts.pause_per_mille, 1000) {
            let x = self.rng.range_inclusive(0, n as u64 - 1) as usize;
            let ticks = self
                .rng
                .range_inclusive(1, self.opts.max_pause_ticks.max(1));
            let now = self.now;
            let node = &mut self.nodes[x];
            if node.raft.is_some() && node.paused_until == 0 {
                node.paused_since = now;
                node.paused_until = now + ticks;
                self.trace(|| format!("pause n{} for {ticks} ticks", node_id(x)));
            }
        }
        if self.rng.chance(self.opts.clock_jump_per_mille, 1000) {
            let x = self.rng.range_inclusive(0, n as u64 - 1) as usize;
            let jump =
                self.rng
                    .range_inclusive(1, self.opts.max_clock_jump_ms.max(1)) as i64;
            self.nodes[x].clock_offset_ms -= jump;
            self.trace(|| format!("n{} clock jumps back {jump} ms", node_id(x)));
        }
        Ok(())
    }

    fn crash(&mut self, i: usize) {
        let down = self.rng.range_inclusive(1, self.opts.max_down_ticks.max(1));
        let node = &mut self.nodes[i];
        node.raft = None;
        // The page cache dies with the machine.
        node.written = node.disk.clone();
        node.down_until = self.now + down;
        node.paused_until = 0;
        self.stats.crashes += 1;
        self.trace(|| format!("crash n{} for {down} ticks", node_id(i)));
    }

    fn restart(&mut self, i: usize) -> Result<(), Violation> {
        let voters: Vec<NodeId> = (0..self.nodes.len()).map(node_id).collect();
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        // The state machine restarts from the stored snapshot (or empty).
        node.sm = match &node.disk.snapshot {
            Some(s) => SmState::decode(&s.data).ok_or_else(|| {
                Violation::Contract(format!("n{} stored snapshot unreadable", node_id(i)))
            })?,
            None => SmState::default(),
        };
        node.recorded_commit = node.sm.applied;
        let seed = self.seed ^ node.incarnation.wrapping_mul(0x1000_0000_01b3);
        let raft = Raft::new(
            node_id(i),
            voters,
            self.opts.raft.clone(),
            node.disk.clone(),
            seed,
        )
        .map_err(|e| {
            Violation::Contract(format!("n{} cannot restart from its disk: {e}", node_id(i)))
        })?;
        node.raft = Some(raft);
        self.trace(|| format!("restart n{}", node_id(i)));
        let effects = self.nodes[i]
            .raft
            .as_mut()
            .map(|r| r.take_effects())
            .unwrap_or_default();
        self.perform(i, effects)
    }

    /// Perform `effects` of node `i` in order, possibly crashing part-way.
    fn perform(&mut self, i: usize, effects: Vec<Effect>) -> Result<(), Violation> {
        // As the node runtime does: leader replication first, ahead of the persists
        // (`Message::may_precede_persist`), so a crash can fall between the two.
        let (mut effects, rest): (Vec<Effect>, Vec<Effect>) = effects
            .into_iter()
            .partition(|e| matches!(e, Effect::Send(m) if m.may_precede_persist()));
        effects.extend(rest);
        let cut = if self.chaos
            && !effects.is_empty()
            && self.rng.chance(self.opts.crash_mid_effects_per_mille, 1000)
        {
            Some(self.rng.range_inclusive(0, effects.len() as u64 - 1) as usize)
        } else {
            None
        };
        let incarnation = self.nodes[i].incarnation;
        for (k, effect) in effects.into_iter().enumerate() {
            if cut == Some(k) {
                self.trace(|| format!("n{} crashes before effect {k}", node_id(i)));
                self.crash(i);
                return Ok(());
            }
            self.perform_one(i, incarnation, effect)?;
        }
        self.after_effects(i)
    }

    fn perform_one(&mut self, i: usize, incarnation: u64, effect: Effect) -> Result<(), Violation> {
        let id = node_id(i);
        match effect {
            Effect::Persist(p) => {
                let no_fsync = self.opts.raft.has_bug(Bug::NoFsync);
                let node = &mut self.nodes[i];
                write_persist(&mut node.written, &p)
                    .map_err(|m| Violation::Contract(format!("n{id} {m}")))?;
                if !no_fsync {
                    // fsync: durable before the next effect.
                    write_persist(&mut node.disk, &p)
                        .map_err(|m| Violation::Contract(format!("n{id} {m}")))?;
                }
            }
            Effect::Send(m) => self.send(m),
            Effect::Apply(entries) => {
                for e in entries {
                    let sm = &mut self.nodes[i].sm;
                    if e.index != sm.applied + 1 {
                        return Err(Violation::Contract(format!(
                            "n{id} applied {} after {}",
                            e.index, sm.applied
                        )));
                    }
                    sm.apply(&e);
                    let digest = sm.digest;
                    self.checker.on_apply(id, e.index, e.term, digest)?;
                    self.client_write_applied(i, incarnation, &e)?;
                }
            }
            Effect::ApplySnapshot(s) => {
                let sm = SmState::decode(&s.data).ok_or_else(|| {
                    Violation::Contract(format!("n{id} got an unreadable snapshot"))
                })?;
                if sm.applied != s.meta.index {
                    return Err(Violation::Contract(format!(
                        "n{id} snapshot meta {} != state {}",
                        s.meta.index, sm.applied
                    )));
                }
                self.nodes[i].sm = sm;
                self.stats.snapshots_installed += 1;
                self.checker
                    .on_apply(id, s.meta.index, s.meta.term, sm.digest)?;
                self.trace(|| format!("n{id} installed snapshot at {}", s.meta.index));
            }
            Effect::ReadReady { ctx, index } => {
                if let Some(r) = self.reads.remove(&ctx) {
                    let saw = self.nodes[i].sm.applied;
                    if r.node != i || r.incarnation != incarnation {
                        return Err(Violation::Contract(format!(
                            "n{id} answered a read it did not get"
                        )));
                    }
                    if saw < index {
                        return Err(Violation::Contract(format!(
                            "n{id} read ready at {index} but applied only {saw}"
                        )));
                    }
                    self.stats.reads_served += 1;
                    self.trace(|| {
                        format!(
                            "n{id} read ctx {ctx} ready at {index}, state {saw}, required {}",
                            r.required
                        )
                    });
                    self.checker.on_read(id, saw, r.required)?;
                }
            }
            Effect::ReadFailed { ctx, .. } => {
                self.reads.remove(&ctx);
            }
            Effect::RoleChange { role, term, leader } => {
                self.trace(|| {
                    format!(
                        "n{id} is {} in term {term} (leader {leader:?})",
                        role.as_str()
                    )
                });
                if role == Role::Leader {
                    self.stats.elections += 1;
                }
                self.stats.max_term = self.stats.max_term.max(term);
            }
        }
        Ok(())
    }

    /// Per-node checks and housekeeping after its effects: leader and commit records, compaction.
    fn after_effects(&mut self, i: usize) -> Result<(), Violation> {
        let Some(raft) = self.nodes[i].raft.as_ref() else {
            return Ok(());
        };
        if raft.role() == Role::Leader {
            self.checker.on_leader(raft)?;
        }
        let from = self.nodes[i].recorded_commit;
        self.checker.on_commit(raft, from)?;
        let (commit, applied, snap_index) = (
            raft.commit_index(),
            raft.applied_index(),
            raft.snapshot_meta().index,
        );
        self.nodes[i].recorded_commit = commit;
        let sm = self.nodes[i].sm;
        if sm.applied != applied {
            return Err(Violation::Contract(format!(
                "n{} core applied {} but state machine {}",
                node_id(i),
                applied,
                sm.applied
            )));
        }
        if sm.applied >= snap_index + self.opts.compact_threshold {
            let raft = self.nodes[i].raft.as_mut().expect("checked above");
            raft.compact(sm.applied, sm.encode())
                .map_err(|e| Violation::Contract(format!("n{} compact: {e}", node_id(i))))?;
            let effects = raft.take_effects();
            return self.perform(i, effects);
        }
        Ok(())
    }

    fn send(&mut self, m: Message) {
        if self.blocked.contains(&(m.from, m.to)) || self.net.len() >= self.opts.max_in_flight {
            self.stats.dropped += 1;
            return;
        }
        let faulty = self.chaos;
        if faulty && self.rng.chance(self.opts.drop_per_mille, 1000) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if faulty && self.rng.chance(self.opts.dup_per_mille, 1000) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self
                .rng
                .range_inclusive(1, self.opts.max_delay_ticks.max(1));
            self.net.push(InFlight {
                deliver_at: self.now + delay,
                msg: m.clone(),
            });
        }
    }

    fn client_write_applied(
        &mut self,
        i: usize,
        incarnation: u64,
        e: &Entry,
    ) -> Result<(), Violation> {
        let mut k = 0;
        while k < self.writes.len() {
            let w = &self.writes[k];
            if w.node == i && w.incarnation == incarnation && w.index == e.index {
                let w = self.writes.swap_remove(k);
                if w.term == e.term {
                    self.trace(|| {
                        format!("n{} acks write at {} term {}", node_id(i), w.index, w.term)
                    });
                    self.checker.on_ack(node_id(i), w.index, w.term)?;
                    if self.healed_at.is_some_and(|h| w.invoked_at >= h) {
                        // Liveness: a write proposed after healing committed...
                        // ...the first such write must reach every node (a fixed target).
                        if self.live_index == 0 {
                            self.live_index = w.index;
                        }
                    }
                } else {
                    self.stats.failed_writes += 1;
                }
            } else {
                k += 1;
            }
        }
        Ok(())
    }

    fn clients(&mut self) -> Result<(), Violation> {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].paused_until == 0
                    && self.nodes[i].raft.as_ref().is_some_and(|r| r.is_leader())
            })
            .collect();
        if leaders.is_empty() {
            return Ok(());
        }
        let propose = self.rng.chance(self.opts.propose_per_mille, 1000);
        if propose {
            let i = leaders[self.rng.range_inclusive(0, leaders.len() as u64 - 1) as usize];
            self.next_value += 1;
            let value = self.next_value.to_le_bytes().to_vec();
            let incarnation = self.nodes[i].incarnation;
            let raft = self.nodes[i].raft.as_mut().expect("leader is live");
            if let Ok(p) = raft.propose(value) {
                self.writes.push(ClientWrite {
                    node: i,
                    incarnation,
                    index: p.index,
                    term: p.term,
                    invoked_at: self.now,
                });
            }
            let effects = raft.take_effects();
            self.perform(i, effects)?;
        }
        if self.rng.chance(self.opts.read_per_mille, 1000) {
            let i = leaders[self.rng.range_inclusive(0, leaders.len() as u64 - 1) as usize];
            if self.nodes[i].raft.is_some() {
                self.next_ctx += 1;
                let ctx = self.next_ctx;
                let required = self.checker.max_committed();
                let incarnation = self.nodes[i].incarnation;
                let wall = self.wall_ms(i);
                let raft = self.nodes[i].raft.as_mut().expect("checked");
                raft.set_wall_clock_ms(wall);
                if raft.read_index(ctx).is_ok() {
                    self.reads.insert(
                        ctx,
                        ClientRead {
                            node: i,
                            incarnation,
                            required,
                        },
                    );
                }
                let effects = raft.take_effects();
                self.perform(i, effects)?;
            }
        }
        // Drop client state of crashed incarnations (their outcome is unknown).
        let nodes = &self.nodes;
        self.writes
            .retain(|w| nodes[w.node].raft.is_some() && nodes[w.node].incarnation == w.incarnation);
        self.reads.retain(|_, r| {
            nodes[r.node].raft.is_some() && nodes[r.node].incarnation == r.incarnation
        });
        Ok(())
    }

    fn check_all(&mut self) -> Result<(), Violation> {
        let live: Vec<&Raft> = self.nodes.iter().filter_map(|n| n.raft.as_ref()).collect();
        for (k, a) in live.iter().enumerate() {
            for b in &live[k + 1..] {
                Checker::check_log_matching(a, b)?;
            }
        }
        if !self.chaos && self.live_index > 0 {
            self.live = self.nodes.iter().all(|n| n.sm.applied >= self.live_index);
        }
        Ok(())
    }
}

/// Apply a `Persist` to a simulated disk, in the field order the core documents.
fn write_persist(disk: &mut PersistentState, p: &Persist) -> Result<(), String> {
    if let Some(hs) = p.hard_state {
        disk.hard_state = hs;
    }
    if let Some(s) = &p.snapshot {
        let idx = s.meta.index;
        disk.entries.retain(|e| e.index > idx);
        disk.snapshot = Some(s.clone());
    }
    if let Some(t) = p.truncate_from {
        disk.entries.retain(|e| e.index < t);
    }
    let snap_index = disk.snapshot.as_ref().map_or(0, |s| s.meta.index);
    for e in &p.entries {
        let expect = disk.entries.last().map_or(snap_index, |l| l.index) + 1;
        if e.index != expect {
            return Err(format!("persisted entry {} after {}", e.index, expect - 1));
        }
        disk.entries.push(e.clone());
    }
    Ok(())
}
