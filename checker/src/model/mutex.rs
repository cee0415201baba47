//! The mutex (Knossos `mutex`): `acquire` succeeds only when it is free, `release` only
//! when it is held. Which client holds it is not modelled, as in Knossos.

use crate::history::Op;
use crate::model::Model;

#[derive(Clone, Copy, Debug, Default)]
pub struct Mutex;

impl Model for Mutex {
    /// Whether the lock is held.
    type State = bool;

    fn init(&self) -> bool {
        false
    }

    fn step(&self, held: &bool, op: &Op) -> Option<bool> {
        match (op.f.as_str(), *held) {
            ("acquire", false) => Some(true),
            ("release", true) => Some(false),
            _ => None,
        }
    }

    fn describe(&self, held: &bool) -> String {
        if *held { "held" } else { "free" }.to_string()
    }

    fn validate(&self, op: &Op) -> Result<(), String> {
        match op.f.as_str() {
            "acquire" | "release" => Ok(()),
            _ => Err("acquire or release (model mutex)".to_string()),
        }
    }

    fn read_only(&self, _op: &Op) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Value;
    use crate::model::tests::op;

    #[test]
    fn acquire_then_release() {
        let m = Mutex;
        let acq = op("acquire", Value::Null, Value::Null);
        let rel = op("release", Value::Null, Value::Null);
        assert_eq!(m.step(&m.init(), &rel), None);
        let held = m.step(&m.init(), &acq).unwrap();
        assert_eq!(m.step(&held, &acq), None);
        assert_eq!(m.step(&held, &rel), Some(false));
    }
}
