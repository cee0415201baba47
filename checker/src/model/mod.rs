//! Sequential specifications ("models") the linearizability search checks histories
//! against, and the names the CLI knows them by.
//!
//! A model is a small trait impl in one file (Porcupine-style: `init`, `step`,
//! `describe`). The search only ever calls `step` on ops it must place; which ops those
//! are (Knossos/Jepsen semantics: `fail` ops did not happen, an `info` op that never
//! changes state constrains nothing) is decided by `relevant`, whose default suits every
//! model here.

use std::fmt;
use std::fmt::Debug;
use std::hash::Hash;
use std::str::FromStr;

use crate::history::{Op, Outcome, Value};

pub mod cas_register;
pub mod kv;
pub mod mutex;
pub mod register;

pub use cas_register::CasRegister;
pub use kv::Kv;
pub use mutex::Mutex;
pub use register::Register;

/// A sequential object: the state it starts in and how each operation changes it.
pub trait Model: Send + Sync {
    /// One state of the object. Memoised by the search, so keep it small and cheap to
    /// hash; `Clone` is called once per step.
    type State: Clone + Eq + Hash + Debug + Send + Sync;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `op` takes effect in `state`, or `None` if `op` cannot take effect
    /// there given what it observed (`op.output` when `op.outcome` is `Ok`). For an `Info`
    /// op, `step` says what happens if it did take effect; the search separately allows
    /// it never to take effect.
    fn step(&self, state: &Self::State, op: &Op) -> Option<Self::State>;

    /// A short human rendering of a state for counterexamples.
    fn describe(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }

    /// `Err(expected)` for an op this model does not understand (unknown `f`, a cas whose
    /// value is not `[from to]`), so bad input is reported instead of judged.
    fn validate(&self, op: &Op) -> Result<(), String>;

    /// Whether `op` never changes the state (a read). Such an op whose outcome is unknown
    /// constrains nothing and is dropped before the search.
    fn read_only(&self, op: &Op) -> bool;

    /// Whether the search must place `op`. Jepsen/Knossos semantics: `fail` ops did not
    /// happen; `info` reads constrain nothing.
    fn relevant(&self, op: &Op) -> bool {
        match op.outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Info => !self.read_only(op),
        }
    }

    /// Optional, sound pruning: marks `info` ops among one partition's relevant `ops`
    /// (in invoke order) that can be dropped because no linearization needs them (for a
    /// register: an unknown write of a value nobody ever observed). Default: none.
    fn unneeded_info(&self, ops: &[&Op]) -> Vec<bool> {
        vec![false; ops.len()]
    }
}

/// The models the CLI offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Register,
    CasRegister,
    Kv,
    Mutex,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::Mutex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Mutex => "mutex",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown model name.
#[derive(Debug, thiserror::Error)]
#[error("unknown model {0:?}: expected one of register, cas-register, kv, mutex")]
pub struct UnknownModel(pub String);

impl FromStr for ModelKind {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<ModelKind, UnknownModel> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// A model and its options: what `check` is asked to check against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Initial value of the register (register, cas-register) or of every key (kv).
    /// Default nil. Porcupine's kv corpus starts from "".
    #[serde(default)]
    pub initial: Value,
    /// cas-register only. Porcupine's etcd test reads a failed cas as "happened and saw a
    /// value other than `from`" rather than Knossos's "did not happen". Off by default;
    /// on in `Reading::Porcupine`; see `CasRegister::fail_observed`.
    #[serde(default)]
    pub cas_fail_observed: bool,
    /// register, cas-register, kv. Knossos's models read an `ok` read that returned nil
    /// as "value unknown", legal in any state; by default (off) it observed the value
    /// nil, which catches stale reads of a never-written key. On in `Reading::Knossos`,
    /// the reading of a Jepsen history.
    #[serde(default)]
    pub nil_read_any: bool,
}

impl ModelSpec {
    /// `kind` from nil, with faultline's reading (`Reading::Faultline`: both flags off).
    pub fn new(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            kind,
            initial: Value::Null,
            cas_fail_observed: false,
            nil_read_any: false,
        }
    }

    pub fn with_initial(mut self, initial: Value) -> ModelSpec {
        self.initial = initial;
        self
    }
}

impl From<ModelKind> for ModelSpec {
    fn from(kind: ModelKind) -> ModelSpec {
        ModelSpec::new(kind)
    }
}

/// `[from to]` of a cas op, if well formed.
pub(crate) fn cas_args(op: &Op) -> Option<(&Value, &Value)> {
    match op.value.as_list() {
        Some([from, to]) => Some((from, to)),
        _ => None,
    }
}

/// Register-like pruning shared by register, cas-register and kv: an `info` write (or
/// cas) whose written value no `ok` read and no cas `from` ever mentions can be dropped.
/// Why it is sound: take any linearization where it took effect and remove it. Until the
/// next write or successful cas, the state would have been its value, so nothing
/// between it and that op can be a read or cas (none observes the value); later ops see
/// the same state as before. `writes` names the fs that write `value` unconditionally.
pub(crate) fn unobserved_writes(ops: &[&Op], writes: &[&str], reads: &[&str]) -> Vec<bool> {
    use std::collections::HashSet;
    let mut observed: HashSet<&Value> = HashSet::new();
    for op in ops {
        if reads.contains(&op.f.as_str()) && op.outcome == Outcome::Ok {
            observed.insert(&op.output);
        }
        if op.f == "cas" {
            if let Some((from, _)) = cas_args(op) {
                observed.insert(from);
            }
        }
    }
    ops.iter()
        .map(|op| {
            if op.outcome != Outcome::Info {
                return false;
            }
            let written = if writes.contains(&op.f.as_str()) {
                Some(&op.value)
            } else if op.f == "cas" {
                cas_args(op).map(|(_, to)| to)
            } else {
                None
            };
            written.is_some_and(|v| !observed.contains(v))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An `ok` op with invoke value `value` and completion value `output`.
    pub(crate) fn op(f: &str, value: Value, output: Value) -> Op {
        Op {
            id: 0,
            process: 0,
            f: f.to_string(),
            key: None,
            value,
            output,
            outcome: Outcome::Ok,
            invoke: 0,
            complete: Some(1),
            invoke_ns: None,
            complete_ns: None,
            error: None,
        }
    }

    pub(crate) fn with_outcome(mut op: Op, outcome: Outcome) -> Op {
        op.outcome = outcome;
        if outcome != Outcome::Ok {
            op.output = Value::Null;
        }
        op
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ModelKind::ALL {
            assert_eq!(k.to_string().parse::<ModelKind>().unwrap(), k);
        }
        assert!("queue".parse::<ModelKind>().is_err());
    }

    #[test]
    fn unobserved_info_writes_are_unneeded() {
        let read1 = op("read", Value::Null, 1.into());
        let w1 = with_outcome(op("write", 1.into(), Value::Null), Outcome::Info);
        let w2 = with_outcome(op("write", 2.into(), Value::Null), Outcome::Info);
        let ok3 = op("write", 3.into(), 3.into());
        let got = unobserved_writes(&[&read1, &w1, &w2, &ok3], &["write"], &["read"]);
        assert_eq!(got, vec![false, false, true, false]);
    }
}
