//! Reader for Jepsen's `history.edn`: either one top-level vector (or list) of op maps, or
//! a sequence of op maps (Jepsen writes one a line). Tagged maps such as
//! `#jepsen.history.Op{...}` are read as the map they tag.
//!
//! Fields: `:process` (integer, or `:nemesis`), `:type` (`:invoke` `:ok` `:fail` `:info`),
//! `:f` (keyword, symbol or string), `:key` (string, keyword or integer; becomes text),
//! `:value` (any EDN), `:time` (nanoseconds, non-negative integer), `:error` (any EDN; a
//! keyword becomes its name, other values their EDN-like text). `:index` and unknown
//! fields are ignored: events are renumbered in file order like every reader does.

use std::collections::BTreeMap;
use std::path::Path;

use super::edn::{self, Edn, EdnKind};
use crate::error::{HistoryError, Location};
use crate::history::{Event, EventType, History, Process, Value};

/// Converts an EDN value to a history value. Keywords, symbols and characters become
/// strings (keywords without the colon); numbers outside i64 keep their text; sets become
/// sorted lists (so equal sets compare equal); map keys become text.
pub fn to_value(e: &Edn) -> Value {
    match &e.kind {
        EdnKind::Nil => Value::Null,
        EdnKind::Bool(b) => Value::Bool(*b),
        EdnKind::Int(i) => Value::Int(*i),
        EdnKind::Number(s) | EdnKind::Str(s) | EdnKind::Keyword(s) | EdnKind::Symbol(s) => {
            Value::Str(s.clone())
        }
        EdnKind::Char(c) => Value::Str(c.to_string()),
        EdnKind::Vector(items) | EdnKind::List(items) => {
            Value::List(items.iter().map(to_value).collect())
        }
        EdnKind::Set(items) => {
            let mut l: Vec<Value> = items.iter().map(to_value).collect();
            l.sort();
            Value::List(l)
        }
        EdnKind::Map(pairs) => {
            let m: BTreeMap<String, Value> = pairs
                .iter()
                .map(|(k, v)| (to_text(k), to_value(v)))
                .collect();
            Value::Map(m)
        }
        EdnKind::Tagged(_, inner) => to_value(inner),
    }
}

/// Text for a key or an error: names for keywords/symbols/strings, else EDN-like text.
pub fn to_text(e: &Edn) -> String {
    match &e.untagged().kind {
        EdnKind::Str(s) | EdnKind::Keyword(s) | EdnKind::Symbol(s) | EdnKind::Number(s) => {
            s.clone()
        }
        EdnKind::Int(i) => i.to_string(),
        _ => to_value(e).to_string(),
    }
}

/// Reads a whole `history.edn` text.
pub fn read(text: &str, source: Option<&Path>) -> Result<History, HistoryError> {
    let loc = |line: usize| Location {
        file: source.map(Path::to_path_buf),
        line,
    };
    let forms =
        edn::parse_all(text, 1).map_err(|e| HistoryError::at(loc(e.line), "edn", e.expected))?;
    // A single vector or list holding the ops, or the ops themselves at top level.
    let ops: Vec<Edn> = if forms.len() == 1 {
        let single = forms.into_iter().next().map(into_untagged);
        match single {
            Some(Edn {
                kind: EdnKind::Vector(items) | EdnKind::List(items),
                ..
            }) => items,
            Some(other) => vec![other],
            None => Vec::new(),
        }
    } else {
        forms
    };
    let mut history = History {
        source: source.map(Path::to_path_buf),
        events: Vec::with_capacity(ops.len()),
        lines: Vec::with_capacity(ops.len()),
        cut_off_line: None,
    };
    for op in &ops {
        let mut event = to_event(op, &loc)?;
        event.index = history.events.len() as u64;
        history.events.push(event);
        history.lines.push(op.line);
    }
    Ok(history)
}

/// Strips tags, by value (no copy of what they wrap).
fn into_untagged(mut e: Edn) -> Edn {
    while let EdnKind::Tagged(_, inner) = e.kind {
        e = *inner;
    }
    e
}

/// One op map to an event.
fn to_event(op: &Edn, loc: &dyn Fn(usize) -> Location) -> Result<Event, HistoryError> {
    let EdnKind::Map(pairs) = &op.untagged().kind else {
        return Err(HistoryError::at(
            loc(op.line),
            "op",
            format!(
                "an op map like {{:process 0, :type :invoke, :f :read}}, got {}",
                op.kind_name()
            ),
        ));
    };
    let field = |name: &str| {
        pairs.iter().find_map(|(k, v)| match &k.kind {
            EdnKind::Keyword(n) if n == name => Some(v),
            _ => None,
        })
    };
    let missing = |name: &str, what: &str| {
        HistoryError::at(loc(op.line), name, format!("{what} (the field is missing)"))
    };

    let process = field("process").ok_or_else(|| missing("process", "an integer or :nemesis"))?;
    let process = match &process.untagged().kind {
        EdnKind::Int(p) if *p >= 0 => Process::Client(*p as u64),
        EdnKind::Keyword(n) | EdnKind::Str(n) if n == "nemesis" => Process::Nemesis,
        _ => {
            return Err(HistoryError::at(
                loc(process.line),
                "process",
                format!(
                    "a non-negative integer or :nemesis, got {}",
                    to_value(process)
                ),
            ))
        }
    };

    let kind_e = field("type").ok_or_else(|| missing("type", ":invoke, :ok, :fail or :info"))?;
    let kind = match &kind_e.untagged().kind {
        EdnKind::Keyword(n) | EdnKind::Str(n) => EventType::parse(n),
        _ => None,
    }
    .ok_or_else(|| {
        HistoryError::at(
            loc(kind_e.line),
            "type",
            format!(":invoke, :ok, :fail or :info, got {}", to_value(kind_e)),
        )
    })?;

    let f_e = field("f").ok_or_else(|| missing("f", "a keyword like :read"))?;
    let f = match &f_e.untagged().kind {
        EdnKind::Keyword(n) | EdnKind::Str(n) | EdnKind::Symbol(n) => n.clone(),
        _ => {
            return Err(HistoryError::at(
                loc(f_e.line),
                "f",
                format!("a keyword like :read, got {}", f_e.kind_name()),
            ))
        }
    };

    let key = match field("key") {
        None => None,
        Some(k) => match &k.untagged().kind {
            EdnKind::Nil => None,
            EdnKind::Str(_)
            | EdnKind::Keyword(_)
            | EdnKind::Symbol(_)
            | EdnKind::Int(_)
            | EdnKind::Number(_) => Some(to_text(k)),
            _ => {
                return Err(HistoryError::at(
                    loc(k.line),
                    "key",
                    format!("a string, keyword or integer key, got {}", k.kind_name()),
                ))
            }
        },
    };

    let time_ns = match field("time") {
        None => None,
        Some(t) => match &t.untagged().kind {
            EdnKind::Nil => None,
            EdnKind::Int(n) if *n >= 0 => Some(*n as u64),
            _ => {
                return Err(HistoryError::at(
                    loc(t.line),
                    "time",
                    format!("a non-negative integer of nanoseconds, got {}", to_value(t)),
                ))
            }
        },
    };

    let error = match field("error") {
        None => None,
        Some(e) if matches!(e.untagged().kind, EdnKind::Nil) => None,
        Some(e) => Some(to_text(e)),
    };

    Ok(Event {
        index: 0,
        time_ns,
        process,
        kind,
        f,
        key,
        value: field("value").map(to_value).unwrap_or(Value::Null),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_map_a_line() {
        let text = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                    {:process 0, :type :ok, :f :append, :key \"0\", :value \"x 0 0 y\"}\n";
        let h = read(text, None).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.lines, vec![1, 2]);
        assert_eq!(h.events[1].kind, EventType::Ok);
        assert_eq!(h.events[1].index, 1);
        assert_eq!(h.events[0].key.as_deref(), Some("0"));
        assert_eq!(h.events[0].value, Value::from("x 0 0 y"));
        assert_eq!(h.ops().unwrap().len(), 1);
    }

    #[test]
    fn reads_a_vector_of_tagged_maps() {
        let text = "[#jepsen.history.Op{:index 0 :time 12 :type :invoke :process 1 :f :cas :key 3 :value [1 2]}\n\
                    {:index 1 :time 40 :type :fail :process 1 :f :cas :key 3 :value [1 2] :error :mismatch}\n\
                    {:type :info :process :nemesis :f :start :value nil}]";
        let h = read(text, None).unwrap();
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.events[0].time_ns, Some(12));
        assert_eq!(h.events[0].key.as_deref(), Some("3"));
        assert_eq!(h.events[0].value, Value::List(vec![1.into(), 2.into()]));
        assert_eq!(h.events[1].error.as_deref(), Some("mismatch"));
        assert_eq!(h.events[2].process, Process::Nemesis);
        assert_eq!(h.lines, vec![1, 2, 3]);
    }

    #[test]
    fn errors_name_field_and_line() {
        let src = Path::new("h.edn");
        let e = read(
            "{:process 0 :type :invoke :f :read}\n{:process -1 :type :ok :f :read}",
            Some(src),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("h.edn:2: field `process`"), "{e}");
        let e = read("{:process 0 :type :done :f :read}", Some(src))
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `type`") && e.contains(":invoke"), "{e}");
        let e = read("{:process 0 :type :ok}", Some(src))
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `f`") && e.contains("missing"), "{e}");
        let e = read("{:process 0 :type :ok :f :read :time -5}", Some(src))
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `time`"), "{e}");
        let e = read("[1 2]", Some(src)).unwrap_err().to_string();
        assert!(e.contains("field `op`"), "{e}");
        let e = read("{:process 0\n :type :ok", Some(src))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.edn:2: field `edn`"), "{e}");
    }

    #[test]
    fn values_convert() {
        let v = edn::parse_all("{:a #{3 1} \"b\" [\\c 1.5 nil]}", 1).unwrap();
        let got = to_value(&v[0]);
        let want = Value::Map(
            [
                ("a".to_string(), Value::List(vec![1.into(), 3.into()])),
                (
                    "b".to_string(),
                    Value::List(vec!["c".into(), "1.5".into(), Value::Null]),
                ),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(got, want);
    }
}
