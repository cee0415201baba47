//! Reader for faultline's own history format: one JSON event per line (DESIGN.md,
//! "History"). Blank lines are skipped; events are renumbered in file order. A last line
//! cut off mid-write (no newline, and its JSON stops before its end) is dropped and named in
//! [`History::cut_off_line`].
//!
//! Each line is first deserialised straight into an event with visitors that build values
//! directly (fast, the common case: a million-op history is two million lines). Only if
//! that fails is it re-read field by field through `serde_json::Value`, which both accepts
//! the looser forms other tools write (integer keys, non-string errors) and, for a bad
//! line, names the field at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{HistoryError, Location};
use crate::history::{Event, EventType, History, PairedHistory, Pairer, Process, Value};

/// Reads a whole JSONL text.
pub fn read(text: &str, source: Option<&Path>) -> Result<History, HistoryError> {
    let mut history = History {
        source: source.map(Path::to_path_buf),
        ..History::default()
    };
    // A history whose writer was killed mid-write can end in part of a line: no newline,
    // and JSON that stops before its end. That line is dropped (and named in
    // `cut_off_line`) rather than failing the whole file; a bad line anywhere else is an
    // error.
    let unterminated_line =
        (!text.is_empty() && !text.ends_with('\n')).then(|| text.lines().count());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let line_no = i + 1;
        let mut event = match serde_json::from_str::<FastEvent>(line) {
            Ok(e) => e.into_event(),
            Err(_) => match parse_slow(
                line,
                &Location {
                    file: source.map(Path::to_path_buf),
                    line: line_no,
                },
            ) {
                Ok(e) => e,
                // Its writer was killed mid-line: what came before is still the history.
                Err(_) if unterminated_line == Some(line_no) && ends_mid_json(line) => {
                    history.cut_off_line = Some(line_no);
                    break;
                }
                Err(e) => return Err(e),
            },
        };
        event.index = history.events.len() as u64;
        history.events.push(event);
        history.lines.push(line_no);
    }
    Ok(history)
}

/// Reads the JSONL history at `path` a line at a time and pairs its events into ops as it
/// goes, keeping neither the text nor the events: the same ops, errors and cut-off line as
/// [`read`] followed by [`History::ops`], in the memory of the ops alone.
pub fn read_paired(path: &Path) -> Result<PairedHistory, HistoryError> {
    let io = |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut paired = PairedHistory {
        source: Some(path.to_path_buf()),
        ..PairedHistory::default()
    };
    let mut pairer = Pairer::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        line_no += 1;
        let terminated = buf.last() == Some(&b'\n');
        let loc = || Location {
            file: Some(path.to_path_buf()),
            line: line_no,
        };
        let Ok(text) = std::str::from_utf8(&buf) else {
            return Err(HistoryError::at(loc(), "text", "UTF-8 text"));
        };
        let line = text.trim();
        if line.is_empty() {
            continue;
        }
        let event = match serde_json::from_str::<FastEvent>(line) {
            Ok(e) => e.into_event(),
            Err(_) => match parse_slow(line, &loc()) {
                Ok(e) => e,
                // Its writer was killed mid-line: what came before is still the history.
                Err(_) if !terminated && ends_mid_json(line) => {
                    paired.cut_off_line = Some(line_no);
                    break;
                }
                Err(e) => return Err(e),
            },
        };
        pairer.push(&event, paired.events, line_no, Some(path))?;
        if event.kind == EventType::Invoke && matches!(event.process, Process::Client(_)) {
            paired.invoke_lines.push(line_no);
        }
        paired.events += 1;
    }
    paired.ops = pairer.finish();
    Ok(paired)
}

/// Reads one complete line (without its newline) of a JSONL history: `None` for a blank
/// line. For readers that take a file a line at a time, as `faultline check --follow`
/// does; `loc` names the file and line in an error.
pub fn read_line(line: &str, loc: &Location) -> Result<Option<Event>, HistoryError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<FastEvent>(line) {
        Ok(e) => Ok(Some(e.into_event())),
        Err(_) => parse_slow(line, loc).map(Some),
    }
}

/// Whether `line` is the start of a JSON text that stops before its end, as a line cut off
/// mid-write does (a whole object with a bad field is not).
fn ends_mid_json(line: &str) -> bool {
    serde_json::from_str::<de::IgnoredAny>(line).is_err_and(|e| e.is_eof())
}

/// The fast path's shape of a line. Unknown fields are ignored; `index` is renumbered.
#[derive(Deserialize)]
struct FastEvent {
    #[serde(default)]
    time_ns: Option<u64>,
    process: FastProcess,
    #[serde(rename = "type")]
    kind: EventType,
    f: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<FastValue>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // validated (a non-negative integer), then replaced by position
    index: Option<u64>,
}

impl FastEvent {
    fn into_event(self) -> Event {
        Event {
            index: 0,
            time_ns: self.time_ns,
            process: self.process.0,
            kind: self.kind,
            f: self.f,
            key: self.key,
            value: self.value.map_or(Value::Null, |v| v.0),
            error: self.error,
        }
    }
}

/// A process number, a numeric string, `"nemesis"` or `"checker"`.
struct FastProcess(Process);

impl<'de> Deserialize<'de> for FastProcess {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FastProcess;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a process number, \"nemesis\" or \"checker\"")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<FastProcess, E> {
                Ok(FastProcess(Process::Client(n)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FastProcess, E> {
                match s {
                    "nemesis" => return Ok(FastProcess(Process::Nemesis)),
                    "checker" => return Ok(FastProcess(Process::Checker)),
                    _ => {}
                }
                s.parse()
                    .map(|n| FastProcess(Process::Client(n)))
                    .map_err(|_| E::custom("not a process"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A [`Value`] built straight from the JSON tokens, with the same results as
/// `Value::from_json` (numbers outside i64 keep their JSON text).
struct FastValue(Value);

impl<'de> Deserialize<'de> for FastValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(FastValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or_else(|_| Value::Str(u.to_string()), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        // The same text `serde_json::Number` would print.
        Ok(Value::Str(
            serde_json::Number::from_f64(x).map_or_else(|| x.to_string(), |n| n.to_string()),
        ))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_string()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(FastValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = BTreeMap::new();
        while let Some((k, FastValue(v))) = map.next_entry::<String, FastValue>()? {
            m.insert(k, v);
        }
        Ok(Value::Map(m))
    }
}

/// Field-by-field reading of one line, for lines serde's derive rejected.
fn parse_slow(line: &str, loc: &Location) -> Result<Event, HistoryError> {
    let bad = |field: &str, expected: String| HistoryError::at(loc.clone(), field, expected);
    let json: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| bad("json", format!("one JSON object per line ({e})")))?;
    let serde_json::Value::Object(obj) = json else {
        return Err(bad(
            "json",
            format!("a JSON object like {{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}}, got {json}"),
        ));
    };
    let get = |name: &str| obj.get(name).filter(|v| !v.is_null());

    let process = match get("process") {
        None => {
            return Err(bad(
                "process",
                "a process number, \"nemesis\" or \"checker\" (the field is missing)".into(),
            ))
        }
        Some(p) => match p {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Process::Client(n.as_u64().unwrap_or_default())
            }
            serde_json::Value::String(s) if s == "nemesis" => Process::Nemesis,
            serde_json::Value::String(s) if s == "checker" => Process::Checker,
            serde_json::Value::String(s) if s.parse::<u64>().is_ok() => {
                Process::Client(s.parse().unwrap_or_default())
            }
            other => {
                return Err(bad(
                    "process",
                    format!(
                        "a non-negative process number, \"nemesis\" or \"checker\", got {other}"
                    ),
                ))
            }
        },
    };

    let kind = match get("type") {
        Some(serde_json::Value::String(s)) => EventType::parse(s),
        _ => None,
    }
    .ok_or_else(|| {
        bad(
            "type",
            format!(
                "\"invoke\", \"ok\", \"fail\" or \"info\", got {}",
                describe(obj.get("type"))
            ),
        )
    })?;

    let f = match get("f") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        other => {
            return Err(bad(
                "f",
                format!("a non-empty string like \"read\", got {}", describe(other)),
            ))
        }
    };

    let key = match get("key") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(other) => return Err(bad("key", format!("a string or integer key, got {other}"))),
    };

    let time_ns = match get("time_ns") {
        None => None,
        Some(t) => Some(t.as_u64().ok_or_else(|| {
            bad(
                "time_ns",
                format!("a non-negative integer of nanoseconds, got {t}"),
            )
        })?),
    };

    let error = match get("error") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => Some(Value::from_json(other).to_string()),
    };

    if let Some(i) = get("index") {
        if i.as_u64().is_none() {
            return Err(bad("index", format!("a non-negative integer, got {i}")));
        }
    }

    Ok(Event {
        index: 0,
        time_ns,
        process,
        kind,
        f,
        key,
        value: get("value").map(Value::from_json).unwrap_or(Value::Null),
        error,
    })
}

fn describe(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "nothing (the field is missing)".to_string(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_design_example_and_loose_forms() {
        let text = r#"{"index":0,"time_ns":1200345,"process":3,"type":"invoke","f":"write","key":"k1","value":4}

{"index":1,"time_ns":1904410,"process":3,"type":"ok","f":"write","key":"k1","value":4}
{"process":"nemesis","type":"info","f":"partition","value":{"grudge":["n1"]}}
{"process":4,"type":"invoke","f":"read","key":7,"error":{"why":"x"}}
"#;
        let h = read(text, None).unwrap();
        assert_eq!(h.events.len(), 4);
        assert_eq!(h.lines, vec![1, 3, 4, 5]);
        assert_eq!(h.events[1].index, 1);
        assert_eq!(h.events[1].time_ns, Some(1904410));
        assert_eq!(h.events[2].process, Process::Nemesis);
        assert_eq!(h.events[3].key.as_deref(), Some("7"));
        assert_eq!(h.events[3].error.as_deref(), Some("{why \"x\"}"));
    }

    #[test]
    fn errors_name_file_line_field() {
        let src = Some(Path::new("h.jsonl"));
        let good = r#"{"process":1,"type":"invoke","f":"read"}"#;
        let cases = [
            (r#"{"process":1,"type":"invoke","f":"read""#, "json"),
            ("[1,2]", "json"),
            (r#"{"type":"invoke","f":"read"}"#, "process"),
            (r#"{"process":-1,"type":"invoke","f":"read"}"#, "process"),
            (r#"{"process":1,"type":"done","f":"read"}"#, "type"),
            (r#"{"process":1,"type":"ok","f":3}"#, "f"),
            (r#"{"process":1,"type":"ok","f":"read","key":[1]}"#, "key"),
            (
                r#"{"process":1,"type":"ok","f":"read","time_ns":-3}"#,
                "time_ns",
            ),
            (
                r#"{"process":1,"type":"ok","f":"read","index":"a"}"#,
                "index",
            ),
        ];
        for (line, field) in cases {
            let text = format!("{good}\n{line}\n");
            let e = read(&text, src).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("h.jsonl:2: field `{field}`")),
                "{line} gave {e}"
            );
        }
    }

    #[test]
    fn a_last_line_cut_off_mid_write_is_dropped_and_named() {
        let src = Some(Path::new("h.jsonl"));
        let good = r#"{"process":1,"type":"invoke","f":"read"}"#;
        let cut = &good[..20];
        let h = read(&format!("{good}\n{cut}"), src).unwrap();
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.cut_off_line, Some(2));
        // The same bad line with its newline, or before the last line, is bad input.
        for text in [format!("{good}\n{cut}\n"), format!("{cut}\n{good}")] {
            let e = read(&text, src).unwrap_err().to_string();
            assert!(e.contains(": field `json`"), "{e}");
        }
        // So is a whole last line with a bad field, or with a syntax error, newline or not.
        for last in [r#"{"process":1,"type":"ok","f":3}"#, r#"{"process":1,,"#] {
            let e = read(&format!("{good}\n{last}"), src)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("h.jsonl:2: field `"), "{e}");
        }
        // A complete last line without a newline is an event like any other.
        let h = read(&format!("{good}\n{good}"), src).unwrap();
        assert_eq!((h.events.len(), h.cut_off_line), (2, None));
    }

    /// Reading a file a line at a time and pairing as it goes gives what reading it whole
    /// and pairing gives: the ops, the event count, the cut-off line and every error.
    #[test]
    fn read_paired_equals_read_then_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let inv = |p: u64, f: &str| {
            format!(r#"{{"process":{p},"type":"invoke","f":"{f}","key":"k","value":[1,2]}}"#)
        };
        let done = |p: u64, t: &str, f: &str| {
            format!(r#"{{"process":{p},"type":"{t}","f":"{f}","value":3,"error":"x"}}"#)
        };
        let nemesis = r#"{"process":"nemesis","type":"info","f":"start-partition"}"#;
        let texts = [
            format!(
                "{}\n\n{nemesis}\r\n{}\n{}\n{}\n{}\n",
                inv(1, "cas"),
                inv(2, "read"),
                done(2, "ok", "read"),
                done(1, "info", "cas"),
                inv(3, "write")
            ),
            format!("{}\n{}", inv(1, "read"), &inv(2, "read")[..20]),
            format!("{}\n{}\n", inv(1, "read"), inv(1, "read")),
            format!("{}\n{}\n", inv(1, "read"), done(1, "ok", "write")),
            format!("{}\n", done(4, "fail", "read")),
            format!("{}\n{{\"process\":1,,\n", inv(1, "read")),
        ];
        for text in texts {
            std::fs::write(&path, &text).unwrap();
            let whole = read(&text, Some(&path))
                .and_then(|h| Ok((h.ops()?, h.events.len(), h.cut_off_line)));
            let paired = read_paired(&path).map(|p| (p.ops, p.events, p.cut_off_line));
            match (whole, paired) {
                (Ok(w), Ok(p)) => assert_eq!(w, p, "{text}"),
                (Err(w), Err(p)) => assert_eq!(w.to_string(), p.to_string(), "{text}"),
                (w, p) => panic!("{text}: {w:?} against {p:?}"),
            }
        }
        std::fs::write(
            &path,
            b"{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\xff\n",
        )
        .unwrap();
        let e = read_paired(&path).unwrap_err().to_string();
        assert!(e.contains("h.jsonl:2: field `text`"), "{e}");
        std::fs::write(&path, format!("{}\n{}\n", inv(1, "cas"), inv(2, "cas"))).unwrap();
        let p = read_paired(&path).unwrap();
        assert_eq!(p.invoke_lines, vec![1, 2]);
        assert_eq!(p.location(1).line, 2);
    }
}
