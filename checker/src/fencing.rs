//! Fencing-token checker (DESIGN.md, "Fencing"): did a lock service hand out unique,
//! increasing tokens, did it ever let two clients hold a lock at once, and did the
//! resource it protects honour the tokens?
//!
//! # Op conventions
//!
//! | `f` | `key` | invoke `value` | completion |
//! |---|---|---|---|
//! | `acquire` | lock name | anything | `ok`: output is the granted token, an integer |
//! | `release` | lock name | anything | `ok`: the service confirms the lock was held until the release took effect |
//! | `fenced-write` | resource (named like its lock) | `[token data]` | `ok`: the resource accepted it; `fail` with error `stale-token`: rejected |
//!
//! A missing key means the single lock/resource `""`. Other `f`s are ignored, so a fencing
//! workload can share a history with anything else. An `ok` acquire without an integer
//! token, or a fenced-write whose value is not `[token data]`, is bad input.
//!
//! # Time
//!
//! Real-time order is taken from event positions in the history (the harness records
//! events in the order it observes them), so histories without `time_ns` work too. Op X
//! *precedes* op Y when X's completion comes before Y's invoke.
//!
//! # What is checked (no false alarms: only what the history proves)
//!
//! - **Duplicate token**: two `ok` acquires of one lock returned the same token.
//! - **Token not increasing**: acquire X precedes acquire Y of the same lock but Y's token
//!   is lower. Concurrent acquires are not ordered: either could have been granted first.
//! - **Overlapping holders**: a *definite hold* runs from the acquire's completion to the
//!   invoke of that process's next release of the lock, and only when that release is
//!   `ok` (a failed, unknown or missing release tells us nothing about when the lock was
//!   lost: a lease may have expired at any moment). Two definite holds by different
//!   processes that overlap are a violation, unless the holder with the larger token could
//!   have been granted later and the resource accepted none of the other holder's writes
//!   that took effect wholly inside the larger-token holder's hold.
//! - **Stale write accepted**: the resource accepted write X, X precedes write Y to the
//!   same resource, Y's token is lower than X's, and the resource accepted Y too.
//!
//! Reports are bounded: at most [`MAX_REPORTED`] violations of each kind are listed, and
//! `violations_total` counts all of them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::HistoryError;
use crate::history::{History, Op, Outcome};

/// At most this many violations of each kind are listed in a report, so a badly broken
/// history gives a readable report in bounded memory and time.
pub const MAX_REPORTED: usize = 100;

/// The error a resource gives a write it rejected for carrying a stale token.
pub const STALE_TOKEN_ERROR: &str = "stale-token";

/// An op named in a violation: its id in `History::ops`, and the history indexes of its
/// invoke and completion events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRef {
    pub op: usize,
    pub process: u64,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<i64>,
    pub invoke_index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_index: Option<u64>,
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {} (p{} {}", self.op, self.process, self.f)?;
        if let Some(t) = self.token {
            write!(f, " token {t}")?;
        }
        write!(f, ", events {}", self.invoke_index)?;
        match self.complete_index {
            Some(c) => write!(f, "..{c})"),
            None => f.write_str("..never)"),
        }
    }
}

/// A definite hold: an ok acquire and the ok release that ended it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub acquire: OpRef,
    pub release: OpRef,
}

/// One broken fencing rule, naming the ops that prove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    /// Several ok acquires of `lock` got the same token.
    DuplicateToken {
        lock: String,
        token: i64,
        acquires: Vec<OpRef>,
    },
    /// `earlier` completed before `later` was invoked, yet `later` got a lower token.
    TokenNotIncreasing {
        lock: String,
        earlier: OpRef,
        later: OpRef,
    },
    /// Two processes definitely held `lock` at once, and fencing did not make it safe:
    /// `stale_writes_accepted` lists the smaller-token holder's writes the resource
    /// accepted during the other's hold (empty when the tokens alone prove the problem).
    OverlappingHolders {
        lock: String,
        first: Hold,
        second: Hold,
        stale_writes_accepted: Vec<OpRef>,
    },
    /// The resource accepted `stale` after it had accepted `accepted`, whose token is higher.
    StaleWriteAccepted {
        resource: String,
        accepted: OpRef,
        stale: OpRef,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::DuplicateToken {
                lock,
                token,
                acquires,
            } => {
                write!(f, "duplicate token {token} on lock {lock:?}, granted to:")?;
                for a in acquires {
                    write!(f, " {a};")?;
                }
                Ok(())
            }
            Violation::TokenNotIncreasing {
                lock,
                earlier,
                later,
            } => write!(
                f,
                "token not increasing on lock {lock:?}: {earlier} completed before {later} began"
            ),
            Violation::OverlappingHolders {
                lock,
                first,
                second,
                stale_writes_accepted,
            } => {
                write!(
                    f,
                    "overlapping holders of lock {lock:?}: {} released by {}, and {} released by {}",
                    first.acquire, first.release, second.acquire, second.release
                )?;
                if !stale_writes_accepted.is_empty() {
                    f.write_str("; stale writes accepted meanwhile:")?;
                    for w in stale_writes_accepted {
                        write!(f, " {w};")?;
                    }
                }
                Ok(())
            }
            Violation::StaleWriteAccepted {
                resource,
                accepted,
                stale,
            } => write!(
                f,
                "resource {resource:?} accepted {stale} after it had accepted {accepted}"
            ),
        }
    }
}

/// The fencing verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingReport {
    pub valid: bool,
    /// At most [`MAX_REPORTED`] of each kind.
    pub violations: Vec<Violation>,
    /// All violations found, including those not listed.
    pub violations_total: usize,
    pub acquires_ok: usize,
    pub writes_accepted: usize,
    pub writes_rejected: usize,
}

impl fmt::Display for FencingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.valid {
            write!(f, "valid: ")?;
        } else {
            write!(f, "invalid: {} violation(s); ", self.violations_total)?;
        }
        write!(
            f,
            "{} tokens granted, {} writes accepted, {} rejected as stale",
            self.acquires_ok, self.writes_accepted, self.writes_rejected
        )?;
        for v in &self.violations {
            write!(f, "\n  - {v}")?;
        }
        if self.violations.len() < self.violations_total {
            write!(
                f,
                "\n  ... and {} more",
                self.violations_total - self.violations.len()
            )?;
        }
        Ok(())
    }
}

/// Checks the fencing rules on `history`.
pub fn check(history: &History) -> Result<FencingReport, HistoryError> {
    let ops = history.ops()?;
    // A history without a single lock op is not a lock history: calling it fencing-valid
    // would pass any history checked with the wrong model.
    let lock_op = |op: &Op| matches!(op.f.as_str(), "acquire" | "release" | "fenced-write");
    if let Some(first) = ops.first() {
        if !ops.iter().any(lock_op) {
            return Err(HistoryError::at(
                history.location(first.invoke),
                "f",
                "a lock history for the fencing check (acquire, release, fenced-write); \
                 this one has no lock op: check it with a linearizability model",
            ));
        }
    }
    let mut acquires: BTreeMap<&str, Vec<Grant>> = BTreeMap::new();
    let mut releases: BTreeMap<(&str, u64), Vec<&Op>> = BTreeMap::new();
    let mut writes: BTreeMap<&str, Vec<Write>> = BTreeMap::new();
    let mut writes_rejected = 0;
    for op in &ops {
        let key = op.key.as_deref().unwrap_or("");
        match op.f.as_str() {
            "acquire" if op.outcome == Outcome::Ok => {
                let Some(token) = op.output.as_int() else {
                    return Err(HistoryError::at(
                        history.location(op.complete.unwrap_or(op.invoke)),
                        "value",
                        format!(
                            "the granted token (an integer) on an ok acquire, got {}",
                            op.output
                        ),
                    ));
                };
                acquires.entry(key).or_default().push(Grant { op, token });
            }
            "release" => releases.entry((key, op.process)).or_default().push(op),
            "fenced-write" => {
                let token = op
                    .value
                    .as_list()
                    .filter(|l| l.len() == 2)
                    .and_then(|l| l[0].as_int());
                let Some(token) = token else {
                    return Err(HistoryError::at(
                        history.location(op.invoke),
                        "value",
                        format!(
                            "[token data] with an integer token on a fenced-write, got {}",
                            op.value
                        ),
                    ));
                };
                if op.outcome == Outcome::Fail && op.error.as_deref() == Some(STALE_TOKEN_ERROR) {
                    writes_rejected += 1;
                }
                writes.entry(key).or_default().push(Write { op, token });
            }
            _ => {}
        }
    }

    let mut found = Found::default();
    for (lock, grants) in &acquires {
        duplicate_tokens(lock, grants, history, &mut found);
        tokens_increasing(lock, grants, history, &mut found);
        let holds = definite_holds(grants, &releases, lock);
        let lock_writes = writes.get(lock).map(Vec::as_slice).unwrap_or(&[]);
        overlapping_holders(lock, &holds, lock_writes, history, &mut found);
    }
    for (resource, ws) in &writes {
        stale_writes(resource, ws, history, &mut found);
    }

    let writes_accepted = writes
        .values()
        .flatten()
        .filter(|w| w.op.outcome == Outcome::Ok)
        .count();
    Ok(FencingReport {
        valid: found.total == 0,
        violations: found.listed,
        violations_total: found.total,
        acquires_ok: acquires.values().map(Vec::len).sum(),
        writes_accepted,
        writes_rejected,
    })
}

#[derive(Clone, Copy)]
struct Grant<'a> {
    op: &'a Op,
    token: i64,
}

#[derive(Clone, Copy)]
struct Write<'a> {
    op: &'a Op,
    token: i64,
}

#[derive(Clone, Copy)]
struct DefiniteHold<'a> {
    grant: Grant<'a>,
    release: &'a Op,
    /// Event position of the acquire's completion: held from here...
    start: usize,
    /// ... to the release's invoke.
    end: usize,
}

/// Violations found so far, with a per-kind cap on those listed.
#[derive(Default)]
struct Found {
    listed: Vec<Violation>,
    per_kind: [usize; 4],
    total: usize,
}

impl Found {
    fn add(&mut self, v: Violation) {
        let kind = match v {
            Violation::DuplicateToken { .. } => 0,
            Violation::TokenNotIncreasing { .. } => 1,
            Violation::OverlappingHolders { .. } => 2,
            Violation::StaleWriteAccepted { .. } => 3,
        };
        self.total += 1;
        self.per_kind[kind] += 1;
        if self.per_kind[kind] <= MAX_REPORTED {
            self.listed.push(v);
        }
    }
}

fn op_ref(op: &Op, token: Option<i64>, history: &History) -> OpRef {
    let index = |i: usize| history.events.get(i).map_or(i as u64, |e| e.index);
    OpRef {
        op: op.id,
        process: op.process,
        f: op.f.clone(),
        token,
        invoke_index: index(op.invoke),
        complete_index: op.complete.map(index),
    }
}

/// Completion position of an op known to have completed (ok ops always have).
fn done(op: &Op) -> usize {
    op.complete.unwrap_or(usize::MAX)
}

fn duplicate_tokens(lock: &str, grants: &[Grant], history: &History, found: &mut Found) {
    let mut by_token: BTreeMap<i64, Vec<&Grant>> = BTreeMap::new();
    for g in grants {
        by_token.entry(g.token).or_default().push(g);
    }
    for (token, gs) in by_token {
        if gs.len() > 1 {
            found.add(Violation::DuplicateToken {
                lock: lock.to_string(),
                token,
                acquires: gs
                    .iter()
                    .take(MAX_REPORTED)
                    .map(|g| op_ref(g.op, Some(g.token), history))
                    .collect(),
            });
        }
    }
}

/// For each acquire, the highest token among acquires that completed before it was
/// invoked must be lower than its own. A sweep over completions in order keeps this
/// O(n log n).
fn tokens_increasing(lock: &str, grants: &[Grant], history: &History, found: &mut Found) {
    let mut by_complete: Vec<&Grant> = grants.iter().collect();
    by_complete.sort_by_key(|g| done(g.op));
    let mut by_invoke: Vec<&Grant> = grants.iter().collect();
    by_invoke.sort_by_key(|g| g.op.invoke);
    let mut max: Option<&Grant> = None;
    let mut next = 0;
    for later in by_invoke {
        while next < by_complete.len() && done(by_complete[next].op) < later.op.invoke {
            let g = by_complete[next];
            if max.is_none_or(|m| g.token > m.token) {
                max = Some(g);
            }
            next += 1;
        }
        // Equal tokens are reported as duplicates, not here.
        if let Some(earlier) = max.filter(|m| m.token > later.token) {
            found.add(Violation::TokenNotIncreasing {
                lock: lock.to_string(),
                earlier: op_ref(earlier.op, Some(earlier.token), history),
                later: op_ref(later.op, Some(later.token), history),
            });
        }
    }
}

/// Holds ended by an ok release: the holder's next release of the lock after its
/// acquire completed, if that release is ok and comes before the holder acquires again.
fn definite_holds<'a>(
    grants: &[Grant<'a>],
    releases: &BTreeMap<(&str, u64), Vec<&'a Op>>,
    lock: &str,
) -> Vec<DefiniteHold<'a>> {
    // Invoke positions of each process's grants, sorted, to find re-acquires quickly.
    let mut grant_invokes: HashMap<u64, Vec<usize>> = HashMap::new();
    for g in grants {
        grant_invokes
            .entry(g.op.process)
            .or_default()
            .push(g.op.invoke);
    }
    for v in grant_invokes.values_mut() {
        v.sort_unstable();
    }
    let mut holds = Vec::new();
    for g in grants {
        let start = done(g.op);
        let Some(rels) = releases.get(&(lock, g.op.process)) else {
            continue;
        };
        // Releases of one process are in invoke order, as `History::ops` lists them.
        let first_after = rels.partition_point(|r| r.invoke < start);
        let Some(release) = rels.get(first_after) else {
            continue;
        };
        let invokes = &grant_invokes[&g.op.process];
        let next_grant = invokes.get(invokes.partition_point(|&i| i <= start));
        let reacquired_before = next_grant.is_some_and(|&i| i < release.invoke);
        if release.outcome == Outcome::Ok && !reacquired_before {
            holds.push(DefiniteHold {
                grant: *g,
                release,
                start,
                end: release.invoke,
            });
        }
    }
    holds.sort_by_key(|h| h.start);
    holds
}

/// Most holds compared against each new one. More than this many processes definitely
/// holding one lock at once is already a flood of violations; the cap keeps a broken
/// history from costing quadratic time (it can only hide violations, never invent one).
const MAX_ACTIVE_HOLDS: usize = 1_000;

fn overlapping_holders(
    lock: &str,
    holds: &[DefiniteHold],
    writes: &[Write],
    history: &History,
    found: &mut Found,
) {
    // Accepted writes by (process, token), so that each overlap looks only at the
    // smaller-token holder's own writes.
    let mut accepted: HashMap<(u64, i64), Vec<&Write>> = HashMap::new();
    for w in writes.iter().filter(|w| w.op.outcome == Outcome::Ok) {
        accepted.entry((w.op.process, w.token)).or_default().push(w);
    }
    // Sweep by start; `active` holds those not yet ended. In a correct history holds do not
    // overlap, so `active` stays tiny.
    let mut active: Vec<&DefiniteHold> = Vec::new();
    for h in holds {
        active.retain(|a| a.end > h.start);
        for a in active.iter().rev().take(MAX_ACTIVE_HOLDS) {
            if a.grant.op.process == h.grant.op.process {
                continue;
            }
            if let Some(stale) = unsafe_overlap(a, h, &accepted, history) {
                found.add(Violation::OverlappingHolders {
                    lock: lock.to_string(),
                    first: hold_ref(a, history),
                    second: hold_ref(h, history),
                    stale_writes_accepted: stale,
                });
            }
        }
        active.push(h);
    }
}

/// `None` when two overlapping holds were made safe by fencing, else the stale writes the
/// resource accepted (possibly none, when the tokens alone break the rule).
fn unsafe_overlap(
    a: &DefiniteHold,
    b: &DefiniteHold,
    accepted: &HashMap<(u64, i64), Vec<&Write>>,
    history: &History,
) -> Option<Vec<OpRef>> {
    if a.grant.token == b.grant.token {
        return Some(Vec::new());
    }
    let (high, low) = if a.grant.token > b.grant.token {
        (a, b)
    } else {
        (b, a)
    };
    // The larger-token holder must be the later grant, or at least possibly so.
    if done(high.grant.op) < low.grant.op.invoke {
        return Some(Vec::new());
    }
    let stale: Vec<OpRef> = accepted
        .get(&(low.grant.op.process, low.grant.token))
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|w| w.op.invoke > high.start && done(w.op) < high.end)
        .take(MAX_REPORTED)
        .map(|w| op_ref(w.op, Some(w.token), history))
        .collect();
    (!stale.is_empty()).then_some(stale)
}

fn hold_ref(h: &DefiniteHold, history: &History) -> Hold {
    Hold {
        acquire: op_ref(h.grant.op, Some(h.grant.token), history),
        release: op_ref(h.release, None, history),
    }
}

/// Each accepted write must carry a token at least the highest among accepted writes
/// that completed before it was invoked.
fn stale_writes(resource: &str, writes: &[Write], history: &History, found: &mut Found) {
    let accepted: Vec<&Write> = writes
        .iter()
        .filter(|w| w.op.outcome == Outcome::Ok)
        .collect();
    let mut by_complete = accepted.clone();
    by_complete.sort_by_key(|w| done(w.op));
    let mut by_invoke = accepted;
    by_invoke.sort_by_key(|w| w.op.invoke);
    let mut max: Option<&Write> = None;
    let mut next = 0;
    for w in by_invoke {
        while next < by_complete.len() && done(by_complete[next].op) < w.op.invoke {
            let c = by_complete[next];
            if max.is_none_or(|m| c.token > m.token) {
                max = Some(c);
            }
            next += 1;
        }
        if let Some(m) = max.filter(|m| m.token > w.token) {
            found.add(Violation::StaleWriteAccepted {
                resource: resource.to_string(),
                accepted: op_ref(m.op, Some(m.token), history),
                stale: op_ref(w.op, Some(w.token), history),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, Process, Value};

    /// Builds histories event by event: `inv(p, f, value)` then `ok(p, f, output)` etc.
    #[derive(Default)]
    struct H(Vec<Event>);

    impl H {
        fn ev(&mut self, p: u64, kind: EventType, f: &str, v: Value) -> &mut Self {
            let mut e = Event::new(Process::Client(p), kind, f, v).with_key("L");
            e.index = self.0.len() as u64;
            self.0.push(e);
            self
        }
        fn inv(&mut self, p: u64, f: &str, v: Value) -> &mut Self {
            self.ev(p, EventType::Invoke, f, v)
        }
        fn ok(&mut self, p: u64, f: &str, v: Value) -> &mut Self {
            self.ev(p, EventType::Ok, f, v)
        }
        fn fail(&mut self, p: u64, f: &str, v: Value, error: &str) -> &mut Self {
            self.ev(p, EventType::Fail, f, v);
            self.0.last_mut().unwrap().error = Some(error.to_string());
            self
        }
        fn history(&self) -> History {
            History::from_events(self.0.clone())
        }
        fn acquire(&mut self, p: u64, token: i64) -> &mut Self {
            self.inv(p, "acquire", Value::Null)
                .ok(p, "acquire", token.into())
        }
        fn release(&mut self, p: u64) -> &mut Self {
            self.inv(p, "release", Value::Null)
                .ok(p, "release", Value::Null)
        }
        fn write(&mut self, p: u64, token: i64) -> &mut Self {
            let v = Value::List(vec![token.into(), "d".into()]);
            self.inv(p, "fenced-write", v.clone())
                .ok(p, "fenced-write", v)
        }
        fn rejected(&mut self, p: u64, token: i64) -> &mut Self {
            let v = Value::List(vec![token.into(), "d".into()]);
            self.inv(p, "fenced-write", v.clone())
                .fail(p, "fenced-write", v, STALE_TOKEN_ERROR)
        }
        fn check(&self) -> FencingReport {
            check(&History::from_events(self.0.clone())).unwrap()
        }
    }

    fn kinds(r: &FencingReport) -> Vec<&'static str> {
        r.violations
            .iter()
            .map(|v| match v {
                Violation::DuplicateToken { .. } => "duplicate",
                Violation::TokenNotIncreasing { .. } => "not-increasing",
                Violation::OverlappingHolders { .. } => "overlap",
                Violation::StaleWriteAccepted { .. } => "stale-write",
            })
            .collect()
    }

    #[test]
    fn sequential_holders_are_valid() {
        let r = H::default()
            .acquire(1, 1)
            .write(1, 1)
            .release(1)
            .acquire(2, 2)
            .write(2, 2)
            .release(2)
            .check();
        assert!(r.valid, "{r}");
        assert_eq!((r.acquires_ok, r.writes_accepted), (2, 2));
    }

    #[test]
    fn lease_expiry_with_rejected_stale_write_is_valid() {
        // p1's lease expires (its release fails), p2 gets a larger token and writes; p1's
        // late write is rejected.
        let r = H::default()
            .acquire(1, 1)
            .acquire(2, 2)
            .write(2, 2)
            .rejected(1, 1)
            .inv(1, "release", Value::Null)
            .fail(1, "release", Value::Null, "not-holder")
            .release(2)
            .check();
        assert!(r.valid, "{r}");
        assert_eq!(r.writes_rejected, 1);
    }

    #[test]
    fn concurrent_acquires_are_not_ordered() {
        // Both acquires overlap in time: either could have been granted first.
        let r = H::default()
            .inv(1, "acquire", Value::Null)
            .inv(2, "acquire", Value::Null)
            .ok(2, "acquire", 1.into())
            .ok(1, "acquire", 2.into())
            .check();
        assert!(r.valid, "{r}");
    }

    #[test]
    fn duplicate_token() {
        let r = H::default().acquire(1, 5).release(1).acquire(2, 5).check();
        assert_eq!(kinds(&r), ["duplicate"]);
        let Violation::DuplicateToken {
            acquires, token, ..
        } = &r.violations[0]
        else {
            unreachable!()
        };
        assert_eq!(*token, 5);
        assert_eq!(acquires.iter().map(|a| a.op).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(acquires[1].invoke_index, 4);
        assert_eq!(acquires[1].complete_index, Some(5));
    }

    #[test]
    fn token_not_increasing() {
        let r = H::default()
            .acquire(1, 7)
            .release(1)
            .acquire(2, 3)
            .release(2)
            .check();
        assert_eq!(kinds(&r), ["not-increasing"]);
        let Violation::TokenNotIncreasing { earlier, later, .. } = &r.violations[0] else {
            unreachable!()
        };
        assert_eq!((earlier.token, later.token), (Some(7), Some(3)));
        assert!(r.to_string().contains("token not increasing"), "{r}");
    }

    #[test]
    fn overlapping_holders_with_accepted_stale_write() {
        // Both releases are ok, so both definitely held; p1's write with the smaller token
        // was accepted while p2 held the lock.
        let r = H::default()
            .acquire(1, 1)
            .acquire(2, 2)
            .write(1, 1)
            .release(1)
            .release(2)
            .check();
        assert_eq!(kinds(&r), ["overlap"]);
        let Violation::OverlappingHolders {
            stale_writes_accepted,
            first,
            second,
            ..
        } = &r.violations[0]
        else {
            unreachable!()
        };
        assert_eq!(first.acquire.process, 1);
        assert_eq!(second.acquire.process, 2);
        assert_eq!(stale_writes_accepted.len(), 1);
        assert_eq!(stale_writes_accepted[0].invoke_index, 4);
    }

    #[test]
    fn overlapping_holders_fenced_by_rejection_is_valid() {
        let r = H::default()
            .acquire(1, 1)
            .acquire(2, 2)
            .rejected(1, 1)
            .release(1)
            .release(2)
            .check();
        assert!(r.valid, "{r}");
    }

    #[test]
    fn overlapping_holders_where_larger_token_was_granted_first() {
        // p2 got token 9 before p1 even asked, then p1 got token 1 while p2 still held:
        // the tokens cannot fence this.
        let r = H::default()
            .acquire(2, 9)
            .acquire(1, 1)
            .release(1)
            .release(2)
            .check();
        assert_eq!(kinds(&r), ["not-increasing", "overlap"]);
    }

    #[test]
    fn unknown_release_is_not_a_definite_hold() {
        let r = H::default()
            .acquire(1, 1)
            .inv(1, "release", Value::Null)
            .acquire(2, 2)
            .ev(1, EventType::Info, "release", Value::Null)
            .write(1, 1)
            .release(2)
            .check();
        // p1's release has an unknown outcome: the lock may have been lost before p2
        // acquired it, so nothing proves the holds overlapped.
        assert!(r.valid, "{r}");
    }

    #[test]
    fn stale_write_accepted() {
        let r = H::default()
            .acquire(1, 1)
            .acquire(2, 2)
            .write(2, 2)
            .write(1, 1)
            .check();
        assert_eq!(kinds(&r), ["stale-write"]);
        let Violation::StaleWriteAccepted {
            accepted, stale, ..
        } = &r.violations[0]
        else {
            unreachable!()
        };
        assert_eq!((accepted.token, stale.token), (Some(2), Some(1)));
        assert_eq!((accepted.invoke_index, stale.invoke_index), (4, 6));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["violations"][0]["kind"], "stale-write-accepted");
    }

    #[test]
    fn concurrent_writes_may_apply_in_either_order() {
        let w1 = Value::List(vec![2.into(), "a".into()]);
        let w2 = Value::List(vec![1.into(), "b".into()]);
        let r = H::default()
            .inv(1, "fenced-write", w1.clone())
            .inv(2, "fenced-write", w2.clone())
            .ok(1, "fenced-write", w1)
            .ok(2, "fenced-write", w2)
            .check();
        assert!(r.valid, "{r}");
    }

    #[test]
    fn reports_are_capped() {
        let mut h = H::default();
        h.write(0, 1_000);
        for p in 1..=(MAX_REPORTED as u64 + 20) {
            h.write(p, 1);
        }
        let r = h.check();
        assert_eq!(r.violations.len(), MAX_REPORTED);
        assert_eq!(r.violations_total, MAX_REPORTED + 20);
        assert!(r.to_string().contains("and 20 more"));
    }

    /// A correct lock service with leases and a resource that honours tokens, driven by a
    /// random schedule. Each op takes effect at its completion event.
    fn simulate(seed: u64, processes: u64, steps: usize, honour_tokens: bool) -> Vec<Event> {
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        #[derive(Clone, Copy, PartialEq)]
        enum St {
            Idle,
            Acquiring,
            Holding(i64, u32),
            Writing(i64, u32),
            Releasing(i64),
        }
        let mut st = vec![St::Idle; processes as usize];
        let mut holder: Option<(u64, i64)> = None;
        let mut next_token = 1;
        let mut resource_max = i64::MIN;
        let mut h = H::default();
        for _ in 0..steps {
            let p = next(processes);
            let wv = |t: i64| Value::List(vec![t.into(), "d".into()]);
            st[p as usize] = match st[p as usize] {
                St::Idle => {
                    h.inv(p, "acquire", Value::Null);
                    St::Acquiring
                }
                St::Acquiring => {
                    // Grant when free, or expire the holder's lease now and then.
                    if holder.is_none() || next(4) == 0 {
                        let t = next_token;
                        next_token += 1;
                        holder = Some((p, t));
                        h.ok(p, "acquire", t.into());
                        St::Holding(t, 0)
                    } else {
                        St::Acquiring
                    }
                }
                St::Holding(t, n) if n < 2 => {
                    h.inv(p, "fenced-write", wv(t));
                    St::Writing(t, n)
                }
                St::Holding(t, _) => {
                    h.inv(p, "release", Value::Null);
                    St::Releasing(t)
                }
                St::Writing(t, n) => {
                    if t >= resource_max || !honour_tokens {
                        resource_max = resource_max.max(t);
                        h.ok(p, "fenced-write", wv(t));
                    } else {
                        h.fail(p, "fenced-write", wv(t), STALE_TOKEN_ERROR);
                    }
                    St::Holding(t, n + 1)
                }
                St::Releasing(t) => {
                    if holder == Some((p, t)) {
                        holder = None;
                        h.ok(p, "release", Value::Null);
                    } else {
                        h.fail(p, "release", Value::Null, "not-holder");
                    }
                    St::Idle
                }
            };
        }
        h.0
    }

    #[test]
    fn correct_lock_services_are_always_valid() {
        for seed in 0..300 {
            let events = simulate(seed, 1 + seed % 5, 80, true);
            let r = check(&History::from_events(events)).unwrap();
            assert!(r.valid, "seed {seed}: {r}");
        }
    }

    #[test]
    fn resources_ignoring_tokens_are_caught() {
        let caught = (0..300)
            .filter(|&seed| {
                let events = simulate(seed, 2 + seed % 4, 120, false);
                !check(&History::from_events(events)).unwrap().valid
            })
            .count();
        // Not every schedule has a lease expiry followed by a late write, but many do.
        assert!(caught > 30, "caught only {caught} of 300");
    }

    #[test]
    fn large_histories_check_quickly() {
        // 20k acquire/write/release cycles by 50 processes: the sweeps are O(n log n); a
        // quadratic pass would take minutes here.
        let mut h = H::default();
        for i in 0..20_000 {
            let p = i % 50;
            h.acquire(p, i as i64 + 1).write(p, i as i64 + 1).release(p);
        }
        let r = h.check();
        assert!(r.valid, "{r}");
        assert_eq!(r.acquires_ok, 20_000);
    }

    #[test]
    fn bad_tokens_are_input_errors() {
        let mut h = H::default();
        h.inv(1, "acquire", Value::Null)
            .ok(1, "acquire", "x".into());
        let e = check(&History::from_events(h.0)).unwrap_err().to_string();
        assert!(e.contains("field `value`") && e.contains("token"), "{e}");
        let mut h = H::default();
        h.inv(1, "fenced-write", 3.into());
        let e = check(&History::from_events(h.0)).unwrap_err().to_string();
        assert!(e.contains("[token data]"), "{e}");
    }

    #[test]
    fn a_history_without_an_acquire_is_not_checked_for_fencing() {
        let mut h = H::default();
        h.inv(0, "write", 1.into()).ok(0, "write", 1.into());
        let e = check(&h.history()).unwrap_err().to_string();
        assert!(
            e.contains("field `f`") && e.contains("no lock op"),
            "a register history checked with the wrong model: {e}"
        );
        // An empty history is vacuously fine.
        assert!(check(&History::from_events(Vec::new())).unwrap().valid);
    }
}
