//! The compare-and-set register (Knossos `cas-register`): `read`, `write v`, and
//! `cas [from to]`, which sets `to` only if the value is `from`.
//!
//! Knossos semantics: a cas that returned `fail` did not happen and is dropped. Porcupine's
//! etcd test instead reads a failed cas as "took effect atomically and saw a value other
//! than `from`"; `fail_observed` turns that reading on (it only adds constraints, so a
//! history valid with it is valid without it).

use crate::history::{Op, Outcome, Value};
use crate::model::{cas_args, unobserved_writes, Model};

#[derive(Clone, Debug, Default)]
pub struct CasRegister {
    pub initial: Value,
    /// Porcupine's reading of `fail` cas ops; see the module comment.
    pub fail_observed: bool,
    /// Knossos's reading of a read that returned nil: unknown, legal in any state.
    pub nil_read_any: bool,
}

impl CasRegister {
    /// Whether a read `op` may return what it returned in `state`.
    fn observes(&self, state: &Value, op: &Op) -> bool {
        op.outcome != Outcome::Ok
            || (self.nil_read_any && op.output.is_null())
            || op.output == *state
    }
}

impl Model for CasRegister {
    type State = Value;

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn step(&self, state: &Value, op: &Op) -> Option<Value> {
        match op.f.as_str() {
            "write" => Some(op.value.clone()),
            "read" if self.observes(state, op) => Some(state.clone()),
            "cas" => {
                let (from, to) = cas_args(op)?;
                match op.outcome {
                    Outcome::Fail if from != state => Some(state.clone()),
                    Outcome::Fail => None,
                    _ if from == state => Some(to.clone()),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn describe(&self, state: &Value) -> String {
        state.to_string()
    }

    fn validate(&self, op: &Op) -> Result<(), String> {
        match op.f.as_str() {
            "read" | "write" => Ok(()),
            "cas" if cas_args(op).is_some() => Ok(()),
            "cas" => Err("a cas value [from to]".to_string()),
            _ => Err("read, write or cas (model cas-register)".to_string()),
        }
    }

    fn read_only(&self, op: &Op) -> bool {
        op.f == "read"
    }

    fn relevant(&self, op: &Op) -> bool {
        match op.outcome {
            Outcome::Ok => true,
            Outcome::Fail => self.fail_observed && op.f == "cas",
            Outcome::Info => !self.read_only(op),
        }
    }

    fn unneeded_info(&self, ops: &[&Op]) -> Vec<bool> {
        if self.fail_observed {
            // A failed cas then constrains the state too; the argument in
            // `unobserved_writes` does not cover it.
            return vec![false; ops.len()];
        }
        unobserved_writes(ops, &["write"], &["read"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{op, with_outcome};

    fn cas(from: i64, to: i64) -> Value {
        Value::List(vec![from.into(), to.into()])
    }

    #[test]
    fn cas_needs_from() {
        let m = CasRegister::default();
        let s = m.step(&m.init(), &op("write", 1.into(), 1.into())).unwrap();
        assert_eq!(m.step(&s, &op("cas", cas(1, 2), cas(1, 2))), Some(2.into()));
        assert_eq!(m.step(&s, &op("cas", cas(3, 2), cas(3, 2))), None);
        let info = with_outcome(op("cas", cas(1, 2), Value::Null), Outcome::Info);
        assert_eq!(m.step(&s, &info), Some(2.into()));
        assert!(m.validate(&op("cas", 1.into(), Value::Null)).is_err());
    }

    #[test]
    fn failed_cas_is_dropped_unless_observed() {
        let failed = with_outcome(op("cas", cas(1, 2), Value::Null), Outcome::Fail);
        let knossos = CasRegister::default();
        assert!(!knossos.relevant(&failed));
        let porcupine = CasRegister {
            fail_observed: true,
            ..CasRegister::default()
        };
        assert!(porcupine.relevant(&failed));
        assert_eq!(porcupine.step(&1.into(), &failed), None);
        assert_eq!(porcupine.step(&3.into(), &failed), Some(3.into()));
    }
}
