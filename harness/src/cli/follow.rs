//! `faultline check --follow FILE`: checks a history file while another program is still
//! writing it, like `tail -f`. The file (faultline JSONL) is polled; complete lines are
//! parsed as they arrive (a partial last line waits for its newline) and the history read
//! so far is checked again whenever it grew and the previous check is `--check-every` old.
//!
//! A history read so far is checked with its open invokes as `info` (they may or may not
//! take effect). Every linearization of the whole history gives one of that prefix, so a
//! prefix that is not linearizable means the whole history is not: a violation is final,
//! and is reported at once (the counterexample names the op), exit 1. Otherwise, once the
//! file has not grown for `--idle-timeout`, the whole file is checked and its verdict
//! printed as `faultline check` prints it: exit 0 valid, 2 unknown. A malformed line is an
//! error naming file, line and field (exit 3), as is a file that shrinks (it was replaced)
//! or that does not appear within the idle timeout.
//!
//! Bounds: at most `MAX_FOLLOW_EVENTS` events are held (the checker's own memory is
//! bounded by `--max-memory`), and a line longer than
//! `faultline_checker::format::jsonl_tail::MAX_LINE_BYTES` (1 MiB) is an error.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use faultline_checker::format::jsonl_tail::JsonlTail;
use faultline_checker::format::Format;
use faultline_checker::{History, Limits, ModelKind};

use super::check::{check_history, model_spec, print_results, CheckArgs, ReadingInEffect};
use crate::results::Verdict;

/// Most events `--follow` holds; beyond it the command stops with an error.
pub const MAX_FOLLOW_EVENTS: usize = 50_000_000;

pub fn run(args: &CheckArgs, kind: ModelKind) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("faultline check --follow: {msg}");
        ExitCode::from(Verdict::Error.exit_code())
    };
    let [path] = args.histories.as_slice() else {
        return fail(format!(
            "follows one history file; {} were given",
            args.histories.len()
        ));
    };
    if !matches!(args.format, Format::Auto | Format::Jsonl) {
        return fail(format!(
            "follows faultline JSONL only, not --format {}",
            args.format
        ));
    }
    if args.report.is_some() || args.junit.is_some() {
        return fail("--report and --junit are not written while following".to_string());
    }
    let reading = ReadingInEffect::new(args, Format::Jsonl);
    let spec = match model_spec(args, kind, &reading) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let check_every = args.check_every;
    let mut history = History {
        source: Some(path.clone()),
        ..History::default()
    };
    let mut tail = JsonlTail::new(path);
    let mut last_growth = Instant::now();
    let mut last_check: Option<Instant> = None;
    let mut checked_events = 0usize;
    loop {
        match tail.read_new(&mut history) {
            Ok(true) => last_growth = Instant::now(),
            Ok(false) => {}
            Err(e) => return fail(e.to_string()),
        }
        if history.events.len() > MAX_FOLLOW_EVENTS {
            return fail(format!(
                "{}: more than {MAX_FOLLOW_EVENTS} events",
                path.display()
            ));
        }
        let idle = last_growth.elapsed() >= args.idle_timeout;
        if idle {
            break;
        }
        let due = last_check.is_none_or(|t| t.elapsed() >= check_every);
        if due && history.events.len() > checked_events {
            checked_events = history.events.len();
            let limits = Limits {
                timeout: (!args.timeout.is_zero()).then_some(args.timeout),
                max_memory_bytes: (args.max_memory > 0).then_some(args.max_memory),
                ..Limits::default()
            };
            match faultline_checker::check(&history, &spec, &limits) {
                Ok(r) if r.verdict.is_invalid() => {
                    tracing::warn!(events = checked_events, "violation found while following");
                    eprintln!(
                        "faultline check --follow: {}: violation found after {} events \
                         (line {}); the rest of the file cannot make it linearizable",
                        path.display(),
                        checked_events,
                        tail.line_no()
                    );
                    return finish(args, path, &history, &reading);
                }
                // An unknown prefix says nothing yet: the final check decides.
                Ok(_) => {}
                Err(e) => return fail(e.to_string()),
            }
            last_check = Some(Instant::now());
        }
        std::thread::sleep(args.poll);
    }
    if !tail.opened() {
        return fail(format!(
            "{}: no such file after waiting {}",
            path.display(),
            faultline_checker::linear::format_duration(args.idle_timeout)
        ));
    }
    if tail.partial_len() > 0 {
        // The writer stopped mid-line; the complete lines before it are the history.
        eprintln!(
            "faultline check: warning: {}:{}: the last line has no newline after {}; \
             checked the {} events before it",
            path.display(),
            tail.line_no() + 1,
            faultline_checker::linear::format_duration(args.idle_timeout),
            history.events.len()
        );
        history.cut_off_line = Some(tail.line_no() + 1);
    }
    finish(args, path, &history, &reading)
}

/// Checks the whole `history` read so far and prints it as `faultline check` does.
fn finish(args: &CheckArgs, path: &Path, history: &History, reading: &ReadingInEffect) -> ExitCode {
    let results = match check_history(args, path, history, reading, true) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faultline check --follow: {e}");
            return ExitCode::from(Verdict::Error.exit_code());
        }
    };
    print_results(args, &results, true);
    ExitCode::from(results.verdict.exit_code())
}
