//! The read/write register: `write v` sets it, `read` must return its value. A register
//! that was never written holds the initial value (nil unless set), so a read that
//! returns nil observes the initial state (unless `nil_read_any`: Knossos reads it as
//! "value unknown").

use crate::history::{Op, Outcome, Value};
use crate::model::{unobserved_writes, Model};

#[derive(Clone, Debug, Default)]
pub struct Register {
    pub initial: Value,
    /// Knossos's reading of a read that returned nil: unknown, legal in any state.
    pub nil_read_any: bool,
}

impl Register {
    /// Whether a read `op` may return what it returned in `state`.
    fn observes(&self, state: &Value, op: &Op) -> bool {
        op.outcome != Outcome::Ok
            || (self.nil_read_any && op.output.is_null())
            || op.output == *state
    }
}

impl Model for Register {
    type State = Value;

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn step(&self, state: &Value, op: &Op) -> Option<Value> {
        match op.f.as_str() {
            "write" => Some(op.value.clone()),
            "read" if self.observes(state, op) => Some(state.clone()),
            _ => None,
        }
    }

    fn describe(&self, state: &Value) -> String {
        state.to_string()
    }

    fn validate(&self, op: &Op) -> Result<(), String> {
        match op.f.as_str() {
            "read" | "write" => Ok(()),
            _ => Err("read or write (model register)".to_string()),
        }
    }

    fn read_only(&self, op: &Op) -> bool {
        op.f == "read"
    }

    fn unneeded_info(&self, ops: &[&Op]) -> Vec<bool> {
        unobserved_writes(ops, &["write"], &["read"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::op;

    #[test]
    fn reads_see_writes_and_nil_is_initial() {
        let m = Register::default();
        let s = m.init();
        assert_eq!(
            m.step(&s, &op("read", Value::Null, Value::Null)),
            Some(Value::Null)
        );
        assert_eq!(m.step(&s, &op("read", Value::Null, 1.into())), None);
        let s = m.step(&s, &op("write", 1.into(), 1.into())).unwrap();
        assert_eq!(
            m.step(&s, &op("read", Value::Null, 1.into())),
            Some(1.into())
        );
        assert_eq!(m.step(&s, &op("read", Value::Null, Value::Null)), None);
        assert!(m.validate(&op("cas", Value::Null, Value::Null)).is_err());
    }
}
