//! History types: the events a test records, and their pairing into operations.
//!
//! A history is a list of events in the order the harness observed them. Each client
//! operation is an `invoke` followed, on the same process, by one completion: `ok` (it
//! happened), `fail` (it definitely did not happen) or `info` (unknown). An invoke with no
//! completion is treated as `info`. Nemesis events use `Process::Nemesis`; a violation the
//! harness found while the test was still running is recorded as a `Process::Checker` event.
//!
//! The linearizability search and the fencing checker work on [`Op`]s, which
//! [`History::ops`] builds from the events; readers and writers work on [`Event`]s. A
//! reader can also pair events into ops as it reads them ([`Pairer`], [`PairedHistory`]),
//! so that a long history's events are never all held at once.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{HistoryError, Location};

/// Who issued an event: a logical client process, the nemesis, or the harness's online
/// checker (a violation found while the test ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
    Checker,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
            Process::Checker => f.write_str("checker"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
            Process::Checker => s.serialize_str("checker"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Process::Client(n)),
            Raw::S(s) if s == "nemesis" => Ok(Process::Nemesis),
            Raw::S(s) if s == "checker" => Ok(Process::Checker),
            Raw::S(s) => s.parse().map(Process::Client).map_err(|_| {
                serde::de::Error::custom(format!(
                    "expected a process number, \"nemesis\" or \"checker\", got {s:?}"
                ))
            }),
        }
    }
}

/// The kind of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn parse(s: &str) -> Option<EventType> {
        match s {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// A value in a history. JSON-like, but hashable and totally ordered so that model states
/// built from values can be memoised. EDN keywords become strings without the colon;
/// floating-point numbers are kept as their decimal text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Str(n.to_string()),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for Value {
    /// Compact, EDN-like rendering for terminal output: `nil`, `3`, `"x"`, `[1 2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(|j| Value::from_json(&j))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

/// One line of a history: an invoke or a completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0. Readers renumber events in file order.
    #[serde(default)]
    pub index: u64,
    /// Monotonic nanoseconds since the run started; absent in Jepsen text logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<u64>,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    /// The key the operation touches, for multi-key models (keys are text; integer keys
    /// in other tools' histories are written in decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Value,
    /// Why an operation failed or is unknown (`timeout`, `not-leader`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    pub fn new(process: Process, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: 0,
            time_ns: None,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value,
            error: None,
        }
    }

    pub fn with_key(mut self, key: &str) -> Event {
        self.key = Some(key.to_string());
        self
    }
}

/// A history as read from a file: events in order, and where each came from.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The file it was read from, for error messages.
    pub source: Option<PathBuf>,
    pub events: Vec<Event>,
    /// `lines[i]` is the 1-based source line of `events[i]` (0 when built in memory).
    pub lines: Vec<usize>,
    /// The file's last line, when it was dropped as cut off mid-write (no newline, and its
    /// JSON stops before its end): a run killed while writing its history can leave one.
    pub cut_off_line: Option<usize>,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Fail,
    /// Unknown: it may take effect at any point after its invoke, or never.
    Info,
}

/// An operation: an invoke paired with its completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the list `History::ops` returned.
    pub id: usize,
    pub process: u64,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value given at invoke (what a write writes, a cas's `[from to]`).
    pub value: Value,
    /// The value given at completion (what a read read); `Null` when not `ok`.
    pub output: Value,
    pub outcome: Outcome,
    /// Index into `History::events` of the invoke.
    pub invoke: usize,
    /// Index into `History::events` of the completion; `None` if it never completed.
    pub complete: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl fmt::Display for Op {
    /// `p3 write k1 4 -> ok`, `p1 read k1 -> 3`, `p2 cas [1 2] -> info`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{} {}", self.process, self.f)?;
        if let Some(k) = &self.key {
            write!(f, " {k}")?;
        }
        if !self.value.is_null() {
            write!(f, " {}", self.value)?;
        }
        match self.outcome {
            Outcome::Ok if !self.output.is_null() && self.output != self.value => {
                write!(f, " -> {}", self.output)
            }
            Outcome::Ok => f.write_str(" -> ok"),
            Outcome::Fail => f.write_str(" -> fail"),
            Outcome::Info => f.write_str(" -> info"),
        }
    }
}

impl History {
    pub fn from_events(events: Vec<Event>) -> History {
        let lines = vec![0; events.len()];
        History {
            source: None,
            events,
            lines,
            cut_off_line: None,
        }
    }

    /// Where event `i` came from, for error messages.
    pub fn location(&self, i: usize) -> Location {
        Location {
            file: self.source.clone(),
            line: self.lines.get(i).copied().unwrap_or(0),
        }
    }

    /// Nemesis events, in order.
    pub fn nemesis_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.process == Process::Nemesis)
    }

    /// Pairs each client invoke with the next event of the same process. Fails on a
    /// completion with no open invoke, a second invoke while one is open, or a completion
    /// whose `f` differs from its invoke's. Invokes never completed become `Outcome::Info`.
    pub fn ops(&self) -> Result<Vec<Op>, HistoryError> {
        let mut pairer = Pairer::default();
        for (i, e) in self.events.iter().enumerate() {
            let line = self.lines.get(i).copied().unwrap_or(0);
            pairer.push(e, i, line, self.source.as_deref())?;
        }
        Ok(pairer.finish())
    }
}

/// A history paired into ops as it was read, its events not kept: what a linearizability
/// check needs of a long history, in about a third of the memory of its events.
#[derive(Clone, Debug, Default)]
pub struct PairedHistory {
    /// The file it was read from, for error messages.
    pub source: Option<PathBuf>,
    pub ops: Vec<Op>,
    /// `invoke_lines[op.id]`: the 1-based source line of the op's invoke.
    pub invoke_lines: Vec<usize>,
    /// How many events were read.
    pub events: usize,
    /// As `History::cut_off_line`.
    pub cut_off_line: Option<usize>,
}

impl PairedHistory {
    /// Where op `id`'s invoke came from, for error messages.
    pub fn location(&self, id: usize) -> Location {
        Location {
            file: self.source.clone(),
            line: self.invoke_lines.get(id).copied().unwrap_or(0),
        }
    }
}

/// Pairs events into ops one event at a time (see `History::ops`).
#[derive(Default)]
pub struct Pairer {
    ops: Vec<Op>,
    /// process -> (index in `ops` of its open invoke, the invoke's line)
    open: HashMap<u64, (usize, usize)>,
}

impl Pairer {
    /// Takes event number `i`, read from `line` of `source` (named in an error).
    pub fn push(
        &mut self,
        e: &Event,
        i: usize,
        line: usize,
        source: Option<&Path>,
    ) -> Result<(), HistoryError> {
        let Process::Client(p) = e.process else {
            return Ok(());
        };
        let location = || Location {
            file: source.map(Path::to_path_buf),
            line,
        };
        match e.kind {
            EventType::Invoke => {
                if let Some(&(_, open_line)) = self.open.get(&p) {
                    return Err(HistoryError::at(
                        location(),
                        "type",
                        format!(
                            "a completion for process {p}'s open invoke (line {open_line}) before it invokes again"
                        ),
                    ));
                }
                self.open.insert(p, (self.ops.len(), line));
                self.ops.push(Op {
                    id: self.ops.len(),
                    process: p,
                    f: e.f.clone(),
                    key: e.key.clone(),
                    value: e.value.clone(),
                    output: Value::Null,
                    outcome: Outcome::Info,
                    invoke: i,
                    complete: None,
                    invoke_ns: e.time_ns,
                    complete_ns: None,
                    error: None,
                });
            }
            kind => {
                let Some((at, invoke_line)) = self.open.remove(&p) else {
                    return Err(HistoryError::at(
                        location(),
                        "type",
                        format!("an invoke by process {p} before this {}", kind.as_str()),
                    ));
                };
                let op = &mut self.ops[at];
                if op.f != e.f {
                    return Err(HistoryError::at(
                        location(),
                        "f",
                        format!(
                            "{:?}, the f of process {p}'s invoke on line {invoke_line}",
                            op.f
                        ),
                    ));
                }
                op.complete = Some(i);
                op.complete_ns = e.time_ns;
                op.error = e.error.clone();
                op.outcome = match kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                if op.outcome == Outcome::Ok {
                    op.output = e.value.clone();
                }
            }
        }
        Ok(())
    }

    /// The ops so far, open ones as `Outcome::Info`.
    pub fn finish(self) -> Vec<Op> {
        self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(p: u64, kind: EventType, f: &str, v: Value) -> Event {
        Event::new(Process::Client(p), kind, f, v)
    }

    #[test]
    fn pairs_invokes_with_completions() {
        let h = History::from_events(vec![
            ev(1, EventType::Invoke, "write", 3.into()),
            ev(2, EventType::Invoke, "read", Value::Null),
            ev(2, EventType::Ok, "read", 3.into()),
            ev(1, EventType::Info, "write", 3.into()),
            ev(3, EventType::Invoke, "read", Value::Null),
        ]);
        let ops = h.ops().unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].outcome, Outcome::Info);
        assert_eq!(ops[0].complete, Some(3));
        assert_eq!(ops[1].output, Value::Int(3));
        assert_eq!(ops[1].outcome, Outcome::Ok);
        assert_eq!(ops[2].outcome, Outcome::Info);
        assert_eq!(ops[2].complete, None);
    }

    #[test]
    fn rejects_completion_without_invoke() {
        let h = History::from_events(vec![ev(1, EventType::Ok, "read", Value::Null)]);
        let err = h.ops().unwrap_err().to_string();
        assert!(err.contains("invoke by process 1"), "{err}");
    }

    #[test]
    fn process_serde() {
        let e: Event = serde_json::from_str(
            r#"{"index":0,"time_ns":5,"process":"nemesis","type":"info","f":"start","value":null}"#,
        )
        .unwrap();
        assert_eq!(e.process, Process::Nemesis);
        let e: Event = serde_json::from_str(
            r#"{"process":3,"type":"invoke","f":"cas","key":"k","value":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(e.value, Value::List(vec![1.into(), 2.into()]));
        let back = serde_json::to_string(&e).unwrap();
        assert_eq!(
            back,
            r#"{"index":0,"process":3,"type":"invoke","f":"cas","key":"k","value":[1,2]}"#
        );
    }
}
