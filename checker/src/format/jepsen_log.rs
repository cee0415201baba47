//! Reader for Jepsen's text log of operations, as `jepsen.util/log-op` prints them:
//!
//! ```text
//! INFO  jepsen.util - 2<TAB>:invoke<TAB>:cas<TAB>[3 0]
//! INFO  jepsen.util - 2<TAB>:info<TAB>:cas<TAB>:timed-out
//! 2017-03-20 12:00:01,123{GMT}<TAB>INFO<TAB>[jepsen worker 2] jepsen.util: 2<TAB>:ok<TAB>:read<TAB>3
//! ```
//!
//! Fields after the logger are separated by tabs or spaces: process (integer or
//! `:nemesis`), type, f, the value as one EDN form, and optionally an error as one more
//! EDN form. Lines whose logger is not `jepsen.util` (other loggers, stack traces, blank
//! lines) are skipped: a log holds much besides ops. A line whose logger *is*
//! `jepsen.util` (the word `jepsen.util` followed by `-` or `:`) must be a well-formed op
//! line, else the file is rejected: silently dropping an op could change a verdict.
//!
//! A `fail`/`info` completion whose value is a keyword (`:info :write :timed-out`) is
//! Jepsen logging the error where the value would be: the keyword becomes `error` and the
//! value becomes the invoke's. `:fail :read :timed-out` means the read's outcome is
//! unknown (the client gave up), so it becomes `info`; for a read this never changes a
//! linearizability verdict, since an unknown read constrains nothing. Other `fail`s keep
//! Jepsen's meaning, "did not happen".

use std::collections::HashMap;
use std::path::Path;

use super::edn::{Edn, EdnKind, Parser};
use super::jepsen_edn::{to_text, to_value};
use crate::error::{HistoryError, Location};
use crate::history::{Event, EventType, History, Process, Value};

const LOGGER: &str = "jepsen.util";

/// Reads a whole Jepsen text log.
pub fn read(text: &str, source: Option<&Path>) -> Result<History, HistoryError> {
    let mut history = History {
        source: source.map(Path::to_path_buf),
        ..History::default()
    };
    // The value of each process's open invoke, for completions that log an error keyword
    // where the value would be.
    let mut open: HashMap<Process, Value> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let Some(fields) = op_fields(line) else {
            continue;
        };
        let loc = Location {
            file: source.map(Path::to_path_buf),
            line: line_no,
        };
        let mut event = parse_op(fields, &loc)?;
        if event.kind == EventType::Invoke {
            open.insert(event.process, event.value.clone());
        } else {
            let invoked = open.remove(&event.process);
            if event.error.is_some() && event.kind != EventType::Ok {
                event.value = invoked.unwrap_or(Value::Null);
                if event.kind == EventType::Fail
                    && event.f == "read"
                    && event.error.as_deref() == Some("timed-out")
                {
                    event.kind = EventType::Info;
                }
            }
        }
        event.index = history.events.len() as u64;
        history.events.push(event);
        history.lines.push(line_no);
    }
    Ok(history)
}

/// If `line` is a `jepsen.util` log line, the text after the logger and its `-`/`:`.
fn op_fields(line: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(found) = line[from..].find(LOGGER) {
        let start = from + found;
        let end = start + LOGGER.len();
        from = end;
        // The logger must be a word of its own: `jepsen.util$timeout` in a stack trace
        // or `xjepsen.util` is not it.
        let before_ok = line[..start]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == ']');
        if !before_ok {
            continue;
        }
        let rest = line[end..].trim_start();
        let rest = rest.strip_prefix('-').or_else(|| rest.strip_prefix(':'))?;
        if rest.is_empty() || rest.starts_with(char::is_whitespace) {
            return Some(rest);
        }
        return None;
    }
    None
}

/// Parses `process type f value [error]`.
fn parse_op(fields: &str, loc: &Location) -> Result<Event, HistoryError> {
    let bad = |field: &str, expected: String| HistoryError::at(loc.clone(), field, expected);
    let mut words = fields.split_whitespace();
    let process = match words.next() {
        Some(":nemesis") => Process::Nemesis,
        Some(w) => w.parse::<u64>().map(Process::Client).map_err(|_| {
            bad(
                "process",
                format!("a non-negative integer or :nemesis, got `{w}`"),
            )
        })?,
        None => {
            return Err(bad(
                "process",
                "a process number after `jepsen.util -`, got the end of the line".into(),
            ))
        }
    };
    let kind = match words.next() {
        Some(w) => w
            .strip_prefix(':')
            .and_then(EventType::parse)
            .ok_or_else(|| bad("type", format!(":invoke, :ok, :fail or :info, got `{w}`")))?,
        None => {
            return Err(bad(
                "type",
                ":invoke, :ok, :fail or :info, got the end of the line".into(),
            ))
        }
    };
    let f = match words.next() {
        Some(w) => match w.strip_prefix(':') {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => return Err(bad("f", format!("a keyword like :read, got `{w}`"))),
        },
        None => {
            return Err(bad(
                "f",
                "a keyword like :read, got the end of the line".into(),
            ))
        }
    };
    // The value (and error) are EDN and may contain spaces (`[3 0]`), so they are parsed
    // from the text after the third word rather than split on whitespace.
    let rest = after_words(fields, 3);
    let mut parser = Parser::new(rest, loc.line);
    let value: Edn = match parser.next_value() {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(bad(
                "value",
                "an EDN value (nil, 3, [1 2], :timed-out), got the end of the line".into(),
            ))
        }
        Err(e) => return Err(bad("value", format!("an EDN value: {}", e.expected))),
    };
    let explicit_error = match parser.next_value() {
        Ok(e) => e,
        Err(e) => return Err(bad("error", format!("an EDN value: {}", e.expected))),
    };
    match parser.next_value() {
        Ok(None) => {}
        _ => {
            return Err(bad(
                "error",
                "the end of the line after the value and the error".into(),
            ))
        }
    }
    let value_keyword = match &value.kind {
        EdnKind::Keyword(k) if kind != EventType::Invoke && kind != EventType::Ok => {
            Some(k.clone())
        }
        _ => None,
    };
    let error = explicit_error.as_ref().map(to_text).or(value_keyword);
    Ok(Event {
        index: 0,
        time_ns: None,
        process,
        kind,
        f,
        key: None,
        value: to_value(&value),
        error,
    })
}

/// `text` without its first `n` whitespace-separated words.
fn after_words(text: &str, n: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
        INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
        WARN  jepsen.core - something unrelated\n\
        INFO  jepsen.util - 0\t:ok\t:read\t3\n\
        INFO  jepsen.util - 2\t:info\t:cas\t:timed-out\n\
        INFO  jepsen.util - 3   :invoke :read  nil\n\
        INFO  jepsen.util - 3   :fail   :read  :timed-out\n\
        \n\
        INFO  jepsen.util - 4\t:invoke\t:cas\t[1 2]\n\
        INFO  jepsen.util - 4\t:fail\t:cas\t[1 2]\n\
        INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n";

    #[test]
    fn reads_corpus_like_log() {
        let h = read(SAMPLE, None).unwrap();
        assert_eq!(h.events.len(), 9);
        assert_eq!(h.lines, vec![1, 2, 4, 5, 6, 7, 9, 10, 11]);
        assert_eq!(h.events[1].value, Value::List(vec![3.into(), 0.into()]));
        assert_eq!(h.events[2].value, Value::Int(3));
        // info with an error keyword: value is the invoke's
        assert_eq!(h.events[3].kind, EventType::Info);
        assert_eq!(h.events[3].error.as_deref(), Some("timed-out"));
        assert_eq!(h.events[3].value, Value::List(vec![3.into(), 0.into()]));
        // a timed-out read is unknown, not failed
        assert_eq!(h.events[5].kind, EventType::Info);
        assert_eq!(h.events[5].value, Value::Null);
        // an ordinary failed cas stays failed, with its value
        assert_eq!(h.events[7].kind, EventType::Fail);
        assert_eq!(h.events[7].error, None);
        assert_eq!(h.events[8].process, Process::Nemesis);
        assert_eq!(h.ops().unwrap().len(), 4);
    }

    #[test]
    fn newer_layout_and_error_column() {
        let text = "2017-03-20 12:00:01,123{GMT}\tINFO\t[jepsen worker 2] jepsen.util: 2\t:invoke\t:write\t1\n\
                    2017-03-20 12:00:01,200{GMT}\tINFO\t[jepsen worker 2] jepsen.util: 2\t:fail\t:write\t1\t:not-leader\n";
        let h = read(text, None).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.events[1].error.as_deref(), Some("not-leader"));
        assert_eq!(h.events[1].value, Value::Int(1));
    }

    #[test]
    fn skips_other_loggers_and_stack_traces() {
        let text = "INFO  jepsen.core - Running test\n\tat jepsen.util$timeout.invoke(util.clj:1)\nINFO  jepsen.utility - x\n";
        assert_eq!(read(text, None).unwrap().events.len(), 0);
    }

    #[test]
    fn malformed_op_lines_are_errors() {
        let src = Some(Path::new("x.log"));
        let cases = [
            ("INFO  jepsen.util - x\t:invoke\t:read\tnil", "process"),
            ("INFO  jepsen.util - 1\tinvoke\t:read\tnil", "type"),
            ("INFO  jepsen.util - 1\t:invoke\tread\tnil", "f"),
            ("INFO  jepsen.util - 1\t:invoke\t:read", "value"),
            ("INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2", "value"),
            (
                "INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2] :e extra",
                "error",
            ),
            ("INFO  jepsen.util -", "process"),
        ];
        for (line, field) in cases {
            let text = format!("INFO  jepsen.core - hello\n{line}\n");
            let e = read(&text, src).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("x.log:2: field `{field}`")),
                "{line:?} gave {e}"
            );
        }
    }
}
