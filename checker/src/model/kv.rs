//! The key-value store, per key: `read`/`get` must return the key's value, `write`/`put`
//! sets it, `append` concatenates a string to it, `cas [from to]` sets `to` if the value
//! is `from`. The search checks each key as its own partition (P-compositionality), so a
//! state is one key's value. Every key starts at `initial` (nil unless set; Porcupine's kv
//! histories use ""). Appending to nil appends to "".

use crate::history::{Op, Outcome, Value};
use crate::model::{cas_args, unobserved_writes, Model};

#[derive(Clone, Debug, Default)]
pub struct Kv {
    pub initial: Value,
    /// Knossos's reading of a read that returned nil: unknown, legal in any state.
    pub nil_read_any: bool,
}

fn append(state: &Value, suffix: &Value) -> Option<Value> {
    let suffix = suffix.as_str()?;
    match state {
        Value::Null => Some(Value::Str(suffix.to_string())),
        Value::Str(s) => Some(Value::Str(format!("{s}{suffix}"))),
        _ => None,
    }
}

impl Model for Kv {
    type State = Value;

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn step(&self, state: &Value, op: &Op) -> Option<Value> {
        match op.f.as_str() {
            "write" | "put" => Some(op.value.clone()),
            "read" | "get"
                if op.outcome != Outcome::Ok
                    || (self.nil_read_any && op.output.is_null())
                    || op.output == *state =>
            {
                Some(state.clone())
            }
            "append" => append(state, &op.value),
            "cas" => {
                let (from, to) = cas_args(op)?;
                (from == state).then(|| to.clone())
            }
            _ => None,
        }
    }

    fn describe(&self, state: &Value) -> String {
        state.to_string()
    }

    fn validate(&self, op: &Op) -> Result<(), String> {
        match op.f.as_str() {
            "read" | "get" | "write" | "put" => Ok(()),
            "append" if op.value.as_str().is_some() => Ok(()),
            "append" => Err("a string value to append".to_string()),
            "cas" if cas_args(op).is_some() => Ok(()),
            "cas" => Err("a cas value [from to]".to_string()),
            _ => Err("read, get, write, put, append or cas (model kv)".to_string()),
        }
    }

    fn read_only(&self, op: &Op) -> bool {
        matches!(op.f.as_str(), "read" | "get")
    }

    fn unneeded_info(&self, ops: &[&Op]) -> Vec<bool> {
        // An append after a dropped write would see a different state, so the argument
        // of `unobserved_writes` needs a partition without appends.
        if ops.iter().any(|op| op.f == "append") {
            return vec![false; ops.len()];
        }
        unobserved_writes(ops, &["write", "put"], &["read", "get"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::op;

    #[test]
    fn append_concatenates() {
        let m = Kv {
            initial: Value::from(""),
            nil_read_any: false,
        };
        let s = m
            .step(&m.init(), &op("append", "x ".into(), "x ".into()))
            .unwrap();
        let s = m.step(&s, &op("append", "y".into(), "y".into())).unwrap();
        assert_eq!(s, Value::from("x y"));
        assert_eq!(
            m.step(&s, &op("get", Value::Null, "x y".into())),
            Some(s.clone())
        );
        assert_eq!(m.step(&s, &op("get", Value::Null, "x".into())), None);
        let nil = Kv::default();
        assert_eq!(
            nil.step(&nil.init(), &op("append", "a".into(), "a".into())),
            Some("a".into())
        );
    }
}
