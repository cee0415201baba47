//! `Request`: one operation a generator asks a client to perform, and how it is written
//! into the history as an `invoke` event.
//!
//! The history encoding (the `f` names and value shapes) is the contract with the checker:
//! - `read`: `key`, value `null`; the `ok` carries the value read (`null` if absent).
//! - `write`: `key`, value the integer written (unique per write in a run).
//! - `cas`: `key`, value `[from, to]`.
//! - `acquire`: `key` the lock name, value `null`; the `ok` carries the fencing token.
//! - `fenced-write`: `key` the protected register (named like its lock), value
//!   `[token, v]`; rejected as `fail` with error `stale-token`.
//! - `release`: `key` the lock name, value the token being released.

use faultline_checker::{Event, EventType, Process, Value};

/// One operation to perform against the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: i64,
    },
    Cas {
        key: String,
        from: i64,
        to: i64,
    },
    Acquire {
        lock: String,
        owner: String,
        ttl_ms: u64,
    },
    /// A write to `key` that the target must reject if `token` is below a token it has
    /// already accepted for `key`.
    FencedWrite {
        key: String,
        token: i64,
        value: i64,
    },
    Release {
        lock: String,
        token: i64,
        lease_id: i64,
    },
}

impl Request {
    /// The `f` of the history events for this request.
    pub fn f(&self) -> &'static str {
        match self {
            Request::Read { .. } => "read",
            Request::Write { .. } => "write",
            Request::Cas { .. } => "cas",
            Request::Acquire { .. } => "acquire",
            Request::FencedWrite { .. } => "fenced-write",
            Request::Release { .. } => "release",
        }
    }

    /// The key (or lock name) the request touches.
    pub fn key(&self) -> &str {
        match self {
            Request::Read { key }
            | Request::Write { key, .. }
            | Request::Cas { key, .. }
            | Request::FencedWrite { key, .. } => key,
            Request::Acquire { lock, .. } | Request::Release { lock, .. } => lock,
        }
    }

    /// Whether performing the request cannot change the target's state. A read that timed
    /// out can be recorded as `fail` (as Jepsen does): whether or not it ran, it changed
    /// nothing, and a definite outcome keeps the checker's search small.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Request::Read { .. })
    }

    /// The value written into the `invoke` event.
    pub fn invoke_value(&self) -> Value {
        match self {
            Request::Read { .. } | Request::Acquire { .. } => Value::Null,
            Request::Write { value, .. } => Value::Int(*value),
            Request::Cas { from, to, .. } => Value::List(vec![Value::Int(*from), Value::Int(*to)]),
            Request::FencedWrite { token, value, .. } => {
                Value::List(vec![Value::Int(*token), Value::Int(*value)])
            }
            Request::Release { token, .. } => Value::Int(*token),
        }
    }

    /// The `invoke` event for this request issued by client process `process`.
    pub fn invoke_event(&self, process: u64) -> Event {
        Event::new(
            Process::Client(process),
            EventType::Invoke,
            self.f(),
            self.invoke_value(),
        )
        .with_key(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_events_follow_the_history_encoding() {
        let cas = Request::Cas {
            key: "r1".into(),
            from: 3,
            to: 9,
        };
        let e = cas.invoke_event(7);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"index":0,"process":7,"type":"invoke","f":"cas","key":"r1","value":[3,9]}"#
        );
        let fw = Request::FencedWrite {
            key: "res".into(),
            token: 4,
            value: 11,
        };
        assert_eq!(fw.f(), "fenced-write");
        assert_eq!(fw.invoke_value(), Value::List(vec![4.into(), 11.into()]));
        let acq = Request::Acquire {
            lock: "l0".into(),
            owner: "p1".into(),
            ttl_ms: 1000,
        };
        assert_eq!(acq.key(), "l0");
        assert!(acq.invoke_value().is_null());
        assert!(!acq.is_read_only());
        assert!(Request::Read { key: "k".into() }.is_read_only());
    }
}
