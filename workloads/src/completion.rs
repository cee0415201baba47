//! `Completion`: how a client reports the end of a request, already classified as `ok`
//! (it happened), `fail` (it definitely did not happen) or `info` (unknown).
//!
//! Classification happens in the client, which alone knows whether a request left the
//! machine; the runner only records it and switches to a new process after an `info`.

use faultline_checker::{Event, EventType, Process, Value};

/// A lease granted by `acquire`, kept by the client process that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub lock: String,
    pub token: i64,
    pub lease_id: i64,
}

/// The classified end of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info`; never `Invoke`.
    pub kind: EventType,
    /// For `ok`: what a read read, the token an acquire got; otherwise the invoke's value.
    pub value: Value,
    /// For `fail` / `info`: why (`timeout`, `not-leader`, `stale-token`, ...).
    pub error: Option<String>,
    /// For an `ok` acquire: the lease the process now holds.
    pub lease: Option<Lease>,
}

impl Completion {
    pub fn ok(value: Value) -> Completion {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
            lease: None,
        }
    }

    pub fn fail(value: Value, error: impl Into<String>) -> Completion {
        Completion {
            kind: EventType::Fail,
            value,
            error: Some(error.into()),
            lease: None,
        }
    }

    pub fn info(value: Value, error: impl Into<String>) -> Completion {
        Completion {
            kind: EventType::Info,
            value,
            error: Some(error.into()),
            lease: None,
        }
    }

    /// The completion event for `process`, whose invoke had `f` on `key`.
    pub fn event(&self, process: u64, f: &str, key: &str) -> Event {
        let mut e =
            Event::new(Process::Client(process), self.kind, f, self.value.clone()).with_key(key);
        e.error = self.error.clone();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_event_carries_error() {
        let c = Completion::fail(Value::Int(3), "stale-token");
        let e = c.event(4, "fenced-write", "res");
        assert_eq!(e.kind, EventType::Fail);
        assert_eq!(e.error.as_deref(), Some("stale-token"));
        assert_eq!(e.key.as_deref(), Some("res"));
        assert_eq!(e.process, Process::Client(4));
    }
}
