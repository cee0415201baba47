//! The WGL search (Wing & Gong, with Lowe's memo; as in Porcupine) over one partition.
//!
//! The partition's ops become call and return entries in a doubly linked list, in
//! history order. The search repeatedly takes the first call it can linearize (the model
//! accepts it and the resulting (set, state) is new), lifts it and its return out of the
//! list, and starts again from the front; reaching a return entry means the op it ends
//! had to take effect already, so the search backtracks. `info` ops have no return entry
//! (they may take effect any time after their invoke) and need not be linearized at all
//! (they may never have happened): the partition is valid once every op that completed
//! is linearized.

use crate::history::Op;
use crate::linear::memo::{LinSet, Memo};
use crate::linear::Shared;
use crate::model::Model;
use crate::verdict::Counterexample;

/// How a partition's search ended.
pub(crate) enum Outcome {
    Valid,
    Invalid(Box<Counterexample>),
    /// Stopped: a limit was hit, or another partition already decided the result.
    Stopped,
}

/// How many loop iterations pass between checks of the clock, memory and cancel flags
/// (a power of two, so the test is a mask).
const CHECK_EVERY: u64 = 1 << 12;
const NONE: u32 = u32::MAX;

struct Frame<S> {
    entry: u32,
    state: S,
    /// A read-only op linearized as soon as it was legal; see `search`.
    forced: bool,
}

/// One partition: `ops[..n_main]` completed, `ops[n_main..]` are `info` ops; both in
/// invoke order.
pub(crate) struct Partition<'a> {
    pub key: Option<String>,
    pub ops: Vec<&'a Op>,
    pub n_main: usize,
}

pub(crate) fn search<M: Model>(model: &M, part: &Partition<'_>, shared: &Shared) -> Outcome {
    let ops = &part.ops;
    let n = ops.len();
    // Entries 1..=2n (at most); 0 is the head. Sorted by history position.
    let mut timeline: Vec<(usize, u32, bool)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        timeline.push((op.invoke, i as u32, true));
        if i < part.n_main {
            // Completed ops always have a completion index; see `check`.
            timeline.push((op.complete.unwrap_or(usize::MAX), i as u32, false));
        }
    }
    timeline.sort_unstable_by_key(|t| t.0);
    let len = timeline.len() + 1;
    let tail = len as u32; // one past the last entry: the end of the list
    let mut next: Vec<u32> = (1..=len as u32).collect();
    let mut prev: Vec<u32> = (0..len as u32).map(|i| i.wrapping_sub(1)).collect();
    let mut op_of = vec![0u32; len];
    let mut is_call = vec![false; len];
    let mut ret_of = vec![NONE; len];
    let mut call_entry = vec![NONE; n];
    for (pos, &(_, op, call)) in timeline.iter().enumerate() {
        let e = pos + 1;
        op_of[e] = op;
        is_call[e] = call;
        if call {
            call_entry[op as usize] = e as u32;
        } else {
            ret_of[call_entry[op as usize] as usize] = e as u32;
        }
    }
    next.push(tail);
    prev.push(len as u32 - 1);

    let unlink = |next: &mut Vec<u32>, prev: &mut Vec<u32>, e: u32| {
        let (p, nx) = (prev[e as usize], next[e as usize]);
        next[p as usize] = nx;
        prev[nx as usize] = p;
    };
    let relink = |next: &mut Vec<u32>, prev: &mut Vec<u32>, e: u32| {
        let (p, nx) = (prev[e as usize], next[e as usize]);
        next[p as usize] = e;
        prev[nx as usize] = e;
    };

    let mut set = LinSet::new(part.n_main, n - part.n_main, 0x5eed ^ n as u64);
    let mut memo: Memo<M::State> = Memo::new();
    let mut state = model.init();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut remaining = part.n_main;

    // The deepest point reached, for the counterexample.
    let mut best_prefix: Vec<u32> = Vec::new();
    let mut best_common = 0usize; // stack[..best_common] still equals best_prefix's start
    let mut best_depth = 0usize;
    let mut best_recorded = false;
    let mut best_failed = 0u32;
    let mut best_pending: Vec<u32> = Vec::new();
    let mut best_states: Vec<M::State> = Vec::new();

    let mut iterations: u64 = 0;
    let mut reported_memory: u64 = 0;
    let mut reported_states: u64 = 0;
    let mut entry = next[0];
    let outcome = loop {
        iterations += 1;
        if iterations & (CHECK_EVERY - 1) == 0 {
            if shared.should_stop(&mut reported_memory, memo.bytes()) {
                break Outcome::Stopped;
            }
            shared.add_states(memo.len() as u64 - reported_states);
            reported_states = memo.len() as u64;
        }
        if remaining == 0 {
            break Outcome::Valid;
        }
        let e = entry as usize;
        if entry != tail && is_call[e] {
            let op = op_of[e] as usize;
            if let Some(new_state) = model.step(&state, ops[op]) {
                set.insert(op);
                let Some(fresh) = memo.insert(&set, &new_state) else {
                    shared.hit("max-memory 32GiB (memo word arena full)".to_string());
                    break Outcome::Stopped;
                };
                // A read-only op that is legal now can be linearized now without loss:
                // any linearization from here that places it later stays legal with it
                // moved here (it changes no state, every op that had to precede it is
                // already linearized, and moving it earlier breaks no real-time order).
                // So if the search fails after placing it here, it fails from here too:
                // no other op need be tried in its place.
                let forced = model.read_only(ops[op]);
                if fresh {
                    stack.push(Frame {
                        entry,
                        state: std::mem::replace(&mut state, new_state),
                        forced,
                    });
                    unlink(&mut next, &mut prev, entry);
                    if ret_of[e] != NONE {
                        unlink(&mut next, &mut prev, ret_of[e]);
                    }
                    if op < part.n_main {
                        remaining -= 1;
                    }
                    if stack.len() > best_depth {
                        best_depth = stack.len();
                        best_recorded = false;
                        best_states.clear();
                    }
                    entry = next[0];
                    continue;
                }
                set.remove(op);
                if forced {
                    // Already explored with the read placed here, and failed.
                    entry = tail;
                    continue;
                }
            }
            entry = next[e];
        } else {
            // A return entry: its op had to be linearized by now. (The list cannot end
            // while a completed op remains, since its return entry is still in it.)
            if stack.len() == best_depth && entry != tail {
                if !best_recorded {
                    best_recorded = true;
                    best_prefix.truncate(best_common);
                    best_prefix
                        .extend(stack[best_common..].iter().map(|f| op_of[f.entry as usize]));
                    best_common = stack.len();
                    best_failed = op_of[e];
                    best_pending.clear();
                    let mut c = next[0];
                    while c != entry && best_pending.len() < Counterexample::MAX_PENDING {
                        if is_call[c as usize] && op_of[c as usize] != best_failed {
                            best_pending.push(op_of[c as usize]);
                        }
                        c = next[c as usize];
                    }
                }
                if best_states.len() < Counterexample::MAX_STATES && !best_states.contains(&state) {
                    best_states.push(state.clone());
                }
            }
            let Some(frame) = stack.pop() else {
                break Outcome::Invalid(Box::new(Counterexample {
                    key: part.key.clone(),
                    prefix: best_prefix
                        .iter()
                        .map(|&o| ops[o as usize].clone())
                        .collect(),
                    states: best_states.iter().map(|s| model.describe(s)).collect(),
                    failed: ops[best_failed as usize].clone(),
                    pending: best_pending
                        .iter()
                        .map(|&o| ops[o as usize].clone())
                        .collect(),
                }));
            };
            best_common = best_common.min(stack.len());
            let fe = frame.entry as usize;
            let op = op_of[fe] as usize;
            if ret_of[fe] != NONE {
                relink(&mut next, &mut prev, ret_of[fe]);
            }
            relink(&mut next, &mut prev, frame.entry);
            set.remove(op);
            if op < part.n_main {
                remaining += 1;
            }
            state = frame.state;
            // After a forced op, nothing else is worth trying at this level: backtrack
            // again (the tail acts as a return entry).
            entry = if frame.forced { tail } else { next[fe] };
        }
    };
    shared.add_states(memo.len() as u64 - reported_states);
    // Publish the final size too: a search shorter than `CHECK_EVERY` iterations never
    // reported its memo, and the peak must still count it.
    shared.note_memory(&mut reported_memory, memo.bytes());
    shared.release_memory(reported_memory);
    outcome
}
