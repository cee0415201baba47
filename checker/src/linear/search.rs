//! The WGL search (Wing & Gong, with Lowe's memo; as in Porcupine) over one partition,
//! run segment by segment so that memory follows the window of concurrency rather than
//! the length of the history.
//!
//! Within a segment, the ops become call and return entries in a doubly linked list, in
//! history order. The search repeatedly takes the first call it can linearize (the model
//! accepts it and the resulting (set, state) is new), lifts it and its return out of the
//! list, and starts again from the front; reaching a return entry means the op it ends
//! had to take effect already, so the search backtracks. `info` ops have no return entry
//! (they may take effect any time after their invoke) and need not be linearized at all
//! (they may never have happened).
//!
//! Segments. The partition's timeline is cut every `segment_entries` entries, at the point
//! of a window where fewest completed ops are open. Take any linearization of the whole
//! history and a cut: every op that completed before the cut appears in it before every op
//! invoked after the cut (real time), so the linearization's shortest prefix that holds
//! all ops completed before the cut uses only ops invoked before it. That prefix ends in a
//! *configuration*: a model state plus which of the ops still open at the cut (invoked,
//! not completed; `info` ops stay open for ever) it linearized. So the set of
//! configurations reachable at a cut summarises everything behind it: each segment's
//! search starts from every configuration of the previous cut (sharing one memo), records
//! every configuration it reaches once all ops completed in the segment are placed
//! (without placing more: the shortest prefix suffices), and then the memo and the ops
//! behind are dropped. No configuration at a cut means no linearization: `invalid`, with
//! the counterexample of that segment. The last segment stops at the first success, as
//! the single-segment search always did; a history shorter than one segment is searched
//! exactly as before.
//!
//! A read-only op placed as soon as it is legal is still placed "forced" (no other op
//! tried in its place): a configuration reached without it is dominated by the same one
//! with it placed, since it must be placed later anyway and changes no state.
//!
//! Each level looks first for such a read anywhere among the calls it may place, not only
//! at the front of the list: in invoke order a pending write usually comes first, and
//! placing it before a read that was legal sent the search down subtrees the read cuts
//! off. On a generated 100k-op single register (20 clients) this took the search from
//! 8.06M states to 1.83M.

use std::collections::HashSet;

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
/// Timeline entries (invokes and completions) between cuts, by default: none. Searching a
/// segment to the end for every configuration costs far more than the first-found search
/// of one segment (about 20x the states on a generated single register), so by default a
/// partition is one segment and its memory is bounded by forgetting the memo behind the
/// search instead (`Forget`).
pub(crate) const DEFAULT_SEGMENT_ENTRIES: usize = usize::MAX;
/// Most configurations one cut may hold; beyond it the check stops `unknown`.
pub(crate) const MAX_CONFIGS: usize = 1 << 20;

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

/// The configurations reachable at a cut.
struct Frontier<S> {
    /// Partition indices of the ops open at the cut, in invoke order.
    open: Vec<u32>,
    /// Each configuration: a model state, and a bitset over `open` of the ops placed.
    configs: Vec<(S, Vec<u64>)>,
}

impl<S> Frontier<S> {
    fn bytes(&self) -> u64 {
        let words = self.open.len().div_ceil(64) as u64;
        self.configs.len() as u64 * (std::mem::size_of::<(S, Vec<u64>)>() as u64 + 8 * words)
            + 4 * self.open.len() as u64
    }
}

/// How one segment's search ended.
enum Segment<S> {
    /// The last segment found a linearization.
    Valid,
    /// The configurations at the segment's end.
    Next(Frontier<S>),
    Invalid(Box<Counterexample>),
    Stopped,
}

/// How the search from one start configuration ended.
enum Run {
    Valid,
    Exhausted,
    Stopped,
}

pub(crate) fn search<M: Model>(model: &M, part: &Partition<'_>, shared: &Shared) -> Outcome {
    let ops = &part.ops;
    let n = ops.len();
    // (history position, op, is call). Sorted by history position.
    let mut timeline: Vec<(usize, u32, bool)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        timeline.push((op.invoke, i as u32, true));
        if i < part.n_main {
            // Completed ops always have a completion index; see `check`.
            timeline.push((op.complete.unwrap_or(usize::MAX), i as u32, false));
        }
    }
    timeline.sort_unstable_by_key(|t| t.0);
    let mut ret_at = vec![usize::MAX; n];
    for (i, &(_, op, call)) in timeline.iter().enumerate() {
        if !call {
            ret_at[op as usize] = i;
        }
    }
    let cuts = choose_cuts(&timeline, part.n_main, shared.segment_entries());
    let mut frontier = Frontier {
        open: Vec::new(),
        configs: vec![(model.init(), Vec::new())],
    };
    let mut local_of = vec![NONE; n];
    let mut reported_memory: u64 = 0;
    let segments = cuts.len() - 1;
    let mut outcome = Outcome::Stopped;
    for j in 0..segments {
        shared.note_segment(frontier.configs.len(), frontier.open.len());
        let seg = SegmentInput {
            part,
            slice: &timeline[cuts[j]..cuts[j + 1]],
            start: cuts[j],
            end: cuts[j + 1],
            ret_at: &ret_at,
            last: j + 1 == segments,
        };
        match search_segment(
            model,
            &seg,
            &frontier,
            &mut local_of,
            shared,
            &mut reported_memory,
        ) {
            Segment::Next(next) => frontier = next,
            Segment::Valid => {
                outcome = Outcome::Valid;
                break;
            }
            Segment::Invalid(cex) => {
                outcome = Outcome::Invalid(cex);
                break;
            }
            Segment::Stopped => break,
        }
    }
    // Publish the final size too: a search shorter than `CHECK_EVERY` iterations never
    // reported its memo, and the peak must still count it.
    shared.release_memory(reported_memory);
    outcome
}

/// Where to cut `timeline`: `[0, c1, ..., len]`. A cut is placed in each window
/// `[last + every, last + every * 5/4]` where the fewest completed ops are open.
fn choose_cuts(timeline: &[(usize, u32, bool)], n_main: usize, every: usize) -> Vec<usize> {
    let every = every.max(1);
    let len = timeline.len();
    if len <= every {
        return vec![0, len];
    }
    let mut cuts = vec![0];
    let mut open = 0usize;
    let mut best: Option<(usize, usize)> = None; // (open ops, position)
    let mut last = 0usize;
    for (i, &(_, op, call)) in timeline.iter().enumerate() {
        if (op as usize) < n_main {
            if call {
                open += 1;
            } else {
                open -= 1;
            }
        }
        let pos = i + 1; // a cut after entry i
        if pos >= len {
            break;
        }
        let since = pos - last;
        if since >= every && best.is_none_or(|(b, _)| open < b) {
            best = Some((open, pos));
        }
        if since >= every.saturating_add(every / 4) {
            if let Some((_, at)) = best.take() {
                cuts.push(at);
                last = at;
            }
        }
    }
    if let Some((_, at)) = best {
        cuts.push(at);
    }
    cuts.push(len);
    cuts
}

/// What one segment searches.
struct SegmentInput<'p, 'a> {
    part: &'p Partition<'a>,
    /// The timeline entries of this segment, `timeline[start..end]`.
    slice: &'p [(usize, u32, bool)],
    start: usize,
    end: usize,
    /// Timeline position of each op's completion (`usize::MAX` for `info` ops).
    ret_at: &'p [usize],
    last: bool,
}

fn search_segment<M: Model>(
    model: &M,
    seg: &SegmentInput<'_, '_>,
    from: &Frontier<M::State>,
    local_of: &mut [u32],
    shared: &Shared,
    reported_memory: &mut u64,
) -> Segment<M::State> {
    let part = seg.part;
    let required = |g: u32| {
        let g = g as usize;
        g < part.n_main && seg.ret_at[g] >= seg.start && seg.ret_at[g] < seg.end
    };
    // The segment's ops, open ones first, then those invoked in it: all in invoke order.
    // Locally numbered: the ops that complete in the segment first (they must be placed),
    // then the others (`info` ops, and ops still open at the segment's end).
    let mut universe: Vec<u32> = from.open.clone();
    universe.extend(seg.slice.iter().filter(|t| t.2).map(|t| t.1));
    let mut global: Vec<u32> = universe.iter().copied().filter(|&g| required(g)).collect();
    let n_req = global.len();
    global.extend(universe.iter().copied().filter(|&g| !required(g)));
    drop(universe);
    let n = global.len();
    for (l, &g) in global.iter().enumerate() {
        local_of[g as usize] = l as u32;
    }
    let ops: Vec<&Op> = global.iter().map(|&g| part.ops[g as usize]).collect();

    // List entries 1..=len; 0 is the head.
    let mut timeline: Vec<(u32, bool)> = from
        .open
        .iter()
        .map(|&g| (local_of[g as usize], true))
        .collect();
    timeline.extend(
        seg.slice
            .iter()
            .map(|&(_, g, call)| (local_of[g as usize], call)),
    );
    let len = timeline.len() + 1;
    let tail = len as u32; // one past the last entry: the end of the list
    let mut next: Vec<u32> = (1..=len as u32).collect();
    let mut prev: Vec<u32> = (0..len as u32).map(|i| i.wrapping_sub(1)).collect();
    let mut op_of = vec![0u32; len];
    let mut is_call = vec![false; len];
    let mut ret_of = vec![NONE; len];
    let mut call_entry = vec![NONE; n];
    for (pos, &(op, call)) in timeline.iter().enumerate() {
        let e = pos + 1;
        op_of[e] = op;
        is_call[e] = call;
        if call {
            call_entry[op as usize] = e as u32;
        } else {
            ret_of[call_entry[op as usize] as usize] = e as u32;
        }
    }
    drop(timeline);
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

    let n_opt = n - n_req;
    let config_bytes =
        std::mem::size_of::<(M::State, Vec<u64>)>() as u64 * 2 + 16 * n_opt.div_ceil(64) as u64;
    let from_bytes = from.bytes();
    let mut set = LinSet::new(n_req, n_opt, 0x5eed ^ n as u64);
    let mut memo: Memo<M::State> = Memo::new();
    // The configurations at the segment's end, in the order found (for a deterministic
    // next segment), and as a set for deduplication.
    let mut found: Vec<(M::State, Vec<u64>)> = Vec::new();
    let mut found_set: HashSet<(M::State, Vec<u64>)> = HashSet::new();
    let many_starts = from.configs.len() > 1;
    let forget = shared.forget();
    let memo_budget = forget.beyond_bytes;
    // Kept when forgetting: the sets whose watermark lies within this many words of 64 ops
    // behind the search's.
    let margin_words = u32::try_from(forget.behind_ops.div_ceil(64)).unwrap_or(u32::MAX);
    // Forget again only once the memo has grown to twice what the last forgetting kept:
    // each forgetting scans the whole memo, so this keeps its cost to a constant share of
    // the inserts, whatever the margin holds.
    let mut forget_at = memo_budget;

    // The deepest point reached, for the counterexample.
    let mut best_prefix: Vec<u32> = Vec::new();
    let mut best_common = 0usize; // stack[..best_common] still equals best_prefix's start
    let mut best_depth = 0usize;
    let mut best_recorded = false;
    let mut best_failed = 0u32;
    let mut best_pending: Vec<u32> = Vec::new();
    let mut best_states: Vec<M::State> = Vec::new();

    let mut iterations: u64 = 0;
    let mut reported_states: u64 = 0;
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut placed: Vec<u32> = Vec::new();
    for (start_state, bits) in &from.configs {
        // Place the open ops this configuration already linearized.
        let mut remaining = n_req;
        placed.clear();
        for (k, &g) in from.open.iter().enumerate() {
            if bits[k / 64] >> (k % 64) & 1 == 1 {
                let l = local_of[g as usize];
                let e = call_entry[l as usize];
                set.insert(l as usize);
                unlink(&mut next, &mut prev, e);
                if ret_of[e as usize] != NONE {
                    unlink(&mut next, &mut prev, ret_of[e as usize]);
                }
                if (l as usize) < n_req {
                    remaining -= 1;
                }
                placed.push(e);
            }
        }
        let mut state = start_state.clone();
        // A start another start's search already reached is explored already.
        let fresh = !many_starts
            || match memo.insert(&set, &state) {
                Some(fresh) => fresh,
                None => {
                    shared.hit("max-memory 32GiB (memo word arena full)".to_string());
                    return Segment::Stopped;
                }
            };
        // Where a level's walk starts: at a read-only op that is legal now, wherever it is
        // among the calls the search may place (those before the first return entry), else
        // at the front. Such a read is placed "forced" (see below), so no write tried
        // before it can send the search down a subtree the read would have cut off.
        let level_start = |next: &[u32], state: &M::State| -> u32 {
            let mut c = next[0];
            while c != tail && is_call[c as usize] {
                let op = ops[op_of[c as usize] as usize];
                if model.read_only(op) && model.step(state, op).is_some() {
                    return c;
                }
                c = next[c as usize];
            }
            next[0]
        };
        let mut entry = level_start(&next, &state);
        let run = if !fresh {
            Run::Exhausted
        } else {
            loop {
                iterations += 1;
                if iterations & (CHECK_EVERY - 1) == 0 {
                    if memo.bytes() > forget_at {
                        let (start, _) = set.window();
                        let dropped = memo.forget_below(start.saturating_sub(margin_words));
                        shared.add_forgotten(dropped as u64);
                        forget_at = memo_budget.max(2 * memo.bytes());
                    }
                    let bytes = memo.bytes() + from_bytes + found.len() as u64 * config_bytes;
                    if shared.should_stop(reported_memory, bytes) {
                        break Run::Stopped;
                    }
                    shared.add_states(memo.inserted() - reported_states);
                    reported_states = memo.inserted();
                }
                if remaining == 0 {
                    if seg.last {
                        break Run::Valid;
                    }
                    // A configuration at the cut: keep it, then look for the others.
                    let mut bits = vec![0u64; n_opt.div_ceil(64)];
                    for k in 0..n_opt {
                        if set.contains(n_req + k) {
                            bits[k / 64] |= 1 << (k % 64);
                        }
                    }
                    let config = (state.clone(), bits);
                    if !found_set.contains(&config) {
                        found_set.insert(config.clone());
                        found.push(config);
                        if found.len() > MAX_CONFIGS {
                            shared.hit(format!("max-configs {MAX_CONFIGS}"));
                            break Run::Stopped;
                        }
                    }
                    entry = tail; // backtrack
                }
                let e = entry as usize;
                if entry != tail && is_call[e] {
                    let op = op_of[e] as usize;
                    if let Some(new_state) = model.step(&state, ops[op]) {
                        set.insert(op);
                        let Some(fresh) = memo.insert(&set, &new_state) else {
                            shared.hit("max-memory 32GiB (memo word arena full)".to_string());
                            break Run::Stopped;
                        };
                        // A read-only op that is legal now can be linearized now without
                        // loss: any linearization from here that places it later stays
                        // legal with it moved here (it changes no state, every op that had
                        // to precede it is already linearized, and moving it earlier breaks
                        // no real-time order). So if the search fails after placing it
                        // here, it fails from here too: no other op need be tried in its
                        // place.
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
                            if op < n_req {
                                remaining -= 1;
                            }
                            if stack.len() > best_depth {
                                best_depth = stack.len();
                                best_recorded = false;
                                best_states.clear();
                            }
                            entry = level_start(&next, &state);
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
                    // A return entry: its op had to be linearized by now. (The list cannot
                    // end while a completed op remains, since its return entry is still
                    // in it.)
                    if stack.len() == best_depth && entry != tail {
                        if !best_recorded {
                            best_recorded = true;
                            best_prefix.truncate(best_common);
                            best_prefix.extend(
                                stack[best_common..].iter().map(|f| op_of[f.entry as usize]),
                            );
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
                        if best_states.len() < Counterexample::MAX_STATES
                            && !best_states.contains(&state)
                        {
                            best_states.push(state.clone());
                        }
                    }
                    let Some(frame) = stack.pop() else {
                        break Run::Exhausted;
                    };
                    best_common = best_common.min(stack.len());
                    let fe = frame.entry as usize;
                    let op = op_of[fe] as usize;
                    if ret_of[fe] != NONE {
                        relink(&mut next, &mut prev, ret_of[fe]);
                    }
                    relink(&mut next, &mut prev, frame.entry);
                    set.remove(op);
                    if op < n_req {
                        remaining += 1;
                    }
                    state = frame.state;
                    // After a forced op, nothing else is worth trying at this level:
                    // backtrack again (the tail acts as a return entry).
                    entry = if frame.forced { tail } else { next[fe] };
                }
            }
        };
        match run {
            Run::Exhausted => {}
            Run::Valid => {
                shared.add_states(memo.inserted() - reported_states);
                shared.note_memory(reported_memory, memo.bytes() + from_bytes);
                return Segment::Valid;
            }
            Run::Stopped => return Segment::Stopped,
        }
        // The search backtracked to the start: undo this configuration's placements.
        for &e in placed.iter().rev() {
            if ret_of[e as usize] != NONE {
                relink(&mut next, &mut prev, ret_of[e as usize]);
            }
            relink(&mut next, &mut prev, e);
            set.remove(op_of[e as usize] as usize);
        }
    }
    shared.add_states(memo.inserted() - reported_states);
    let bytes = memo.bytes() + from_bytes + found.len() as u64 * config_bytes;
    shared.note_memory(reported_memory, bytes);

    if found.is_empty() {
        return Segment::Invalid(Box::new(Counterexample {
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
    }
    drop(found_set);
    drop(memo);
    let next = next_frontier(part, &global[n_req..], found);
    // The memo is gone: only the frontier stays.
    shared.note_memory(reported_memory, next.bytes());
    Segment::Next(next)
}

/// The frontier for the next segment from the configurations `found` over the `open`
/// ops. An `info` op every configuration placed is done with and leaves the window.
fn next_frontier<S>(part: &Partition<'_>, open: &[u32], found: Vec<(S, Vec<u64>)>) -> Frontier<S> {
    let bit = |bits: &[u64], k: usize| bits[k / 64] >> (k % 64) & 1 == 1;
    let keep: Vec<usize> = (0..open.len())
        .filter(|&k| {
            (open[k] as usize) < part.n_main || !found.iter().all(|(_, bits)| bit(bits, k))
        })
        .collect();
    if keep.len() == open.len() {
        return Frontier {
            open: open.to_vec(),
            configs: found,
        };
    }
    let configs = found
        .into_iter()
        .map(|(s, bits)| {
            let mut out = vec![0u64; keep.len().div_ceil(64)];
            for (to, &k) in keep.iter().enumerate() {
                if bit(&bits, k) {
                    out[to / 64] |= 1 << (to % 64);
                }
            }
            (s, out)
        })
        .collect();
    Frontier {
        open: keep.iter().map(|&k| open[k]).collect(),
        configs,
    }
}
