//! `faultline check HISTORY --model M`: reads a history in any supported format and checks
//! it, for linearizability against a model or for fencing-token safety
//! (`--model fencing`). Prints the verdict (or `--json`) on stdout and exits 0 valid,
//! 1 invalid, 2 unknown (a limit was hit), 3 bad input.
//!
//! A linearizability check reads the history with the reading its format means (Knossos's
//! for Jepsen EDN and logs, faultline's for JSONL; see `faultline_checker::Reading`),
//! unless `--reading` names another; `--nil-read-any` and `--cas-fail-observed` turn one
//! rule on over it. The reading in effect is printed with every such verdict.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use faultline_checker::format::{self, Format};
use faultline_checker::{
    fencing, stats, History, Limits, ModelKind, ModelSpec, Progress, Reading, Value,
};
use serde_json::json;

use super::exit;
use super::progress::ProgressReporter;
use super::units;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The history file.
    pub history: PathBuf,

    /// What to check against: a linearizability model (register, cas-register, kv, mutex)
    /// or `fencing` for the fencing-token checker.
    #[arg(long, short)]
    pub model: CheckModel,

    /// History format: auto, jsonl, edn, jepsen-log.
    #[arg(long, default_value = "auto")]
    pub format: Format,

    /// Give up with `unknown` after this long (e.g. 60s, 5m; 0 for no limit).
    #[arg(long, default_value = "60s", value_parser = units::parse_duration)]
    pub timeout: Duration,

    /// Give up with `unknown` when the search needs more memory than this (e.g. 4GiB,
    /// 512MiB; 0 for no limit).
    #[arg(long, default_value = "4GiB", value_parser = units::parse_bytes)]
    pub max_memory: u64,

    /// Initial value of the register, or of every key for kv, as JSON or EDN (`0`, `""`,
    /// `nil`). Default nil.
    #[arg(long)]
    pub initial: Option<String>,

    /// What the history's ops mean: knossos (an ok read of nil is "value unknown", a
    /// failed op did not happen), faultline (as knossos, but a read of nil saw nil) or
    /// porcupine (a read of nil saw nil; a failed cas happened and saw a value other
    /// than `from`). Default: knossos for Jepsen EDN and logs, faultline for JSONL.
    #[arg(long, value_name = "READING")]
    pub reading: Option<Reading>,

    /// cas-register: also read a failed cas as "happened, and saw a value other than
    /// `from`" (Porcupine's etcd semantics) instead of Jepsen's "did not happen".
    #[arg(long)]
    pub cas_fail_observed: bool,

    /// register, cas-register, kv: also read an ok read that returned nil as "value
    /// unknown", legal in any state (Knossos's models) instead of "saw nil".
    #[arg(long)]
    pub nil_read_any: bool,

    /// Also report latency and throughput per operation and outcome.
    #[arg(long)]
    pub stats: bool,

    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    /// Also write a self-contained HTML report (timeline, latency, counterexample) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Also write the verdict as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// `--model`: a linearizability model or the fencing checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckModel {
    Linear(ModelKind),
    Fencing,
}

impl FromStr for CheckModel {
    type Err = String;

    fn from_str(s: &str) -> Result<CheckModel, String> {
        if s == "fencing" {
            return Ok(CheckModel::Fencing);
        }
        s.parse::<ModelKind>().map(CheckModel::Linear).map_err(|_| {
            format!("unknown model {s:?}: expected register, cas-register, kv, mutex or fencing")
        })
    }
}

impl fmt::Display for CheckModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckModel::Linear(k) => write!(f, "{k}"),
            CheckModel::Fencing => f.write_str("fencing"),
        }
    }
}

/// The reading a check uses, and where it came from, for the output.
#[derive(Clone, Debug)]
struct ReadingInEffect {
    /// The named reading it starts from (`--reading`, or the format's).
    base: Reading,
    /// Whether `--reading` chose `base`.
    chosen: bool,
    /// The format the history was read as.
    format: Format,
    nil_read_any: bool,
    cas_fail_observed: bool,
}

impl ReadingInEffect {
    fn new(args: &CheckArgs, format: Format) -> ReadingInEffect {
        let base = args.reading.unwrap_or(Reading::for_format(format));
        ReadingInEffect {
            base,
            chosen: args.reading.is_some(),
            format,
            nil_read_any: base.nil_read_any() || args.nil_read_any,
            cas_fail_observed: base.cas_fail_observed() || args.cas_fail_observed,
        }
    }

    /// `spec` with these semantics.
    fn apply(&self, mut spec: ModelSpec) -> ModelSpec {
        spec.nil_read_any = self.nil_read_any;
        spec.cas_fail_observed = self.cas_fail_observed;
        spec
    }

    /// `knossos`, or `knossos+cas-fail-observed` when a flag added a rule.
    fn name(&self) -> String {
        self.base
            .describe(&self.apply(ModelSpec::new(ModelKind::Register)))
    }

    /// Why this reading: `the default for edn`, `--reading`, plus any flags.
    fn source(&self) -> String {
        let mut why = if self.chosen {
            format!("--reading {}", self.base)
        } else {
            format!("the default for {}; --reading to change", self.format)
        };
        for (on, flag) in [
            (
                self.nil_read_any && !self.base.nil_read_any(),
                "--nil-read-any",
            ),
            (
                self.cas_fail_observed && !self.base.cas_fail_observed(),
                "--cas-fail-observed",
            ),
        ] {
            if on {
                why.push_str(", ");
                why.push_str(flag);
            }
        }
        why
    }
}

/// Why `check` could not give a verdict; always exit 3.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error(transparent)]
    History(#[from] faultline_checker::HistoryError),
    #[error("--initial {0:?}: expected a JSON or EDN value such as 0, \"\" or nil")]
    Initial(String),
    #[error(transparent)]
    Output(#[from] crate::report::ReportError),
}

pub fn run(args: CheckArgs) -> ExitCode {
    match check(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("faultline check: {e}");
            if args.json {
                let out = json!({
                    "history": args.history,
                    "model": args.model.to_string(),
                    "verdict": "error",
                    "error": e.to_string(),
                });
                println!("{out}");
            }
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

fn check(args: &CheckArgs) -> Result<u8, CheckError> {
    let (history, read_as) = format::read_path_and_format(&args.history, args.format)?;
    let reading = ReadingInEffect::new(args, read_as);
    tracing::info!(events = history.events.len(), path = %args.history.display(), "history read");
    let op_stats = if args.stats {
        Some(stats::compute(&history)?)
    } else {
        None
    };
    let (code, mut out) = match args.model {
        CheckModel::Fencing => check_fencing(args, &history, op_stats)?,
        CheckModel::Linear(kind) => check_linear(args, &history, kind, &reading, op_stats)?,
    };
    if let Some(line) = history.cut_off_line {
        eprintln!(
            "faultline check: warning: {}:{line}: the last line has no newline and its JSON \
             stops before its end, so the file was cut off mid-write (a run that died); \
             checked the {} events before it",
            args.history.display(),
            history.events.len()
        );
        out["cut_off_line"] = json!(line);
    }
    if args.json {
        println!("{out}");
    }
    write_outputs(args, history, &reading, out)?;
    Ok(code)
}

/// `--report` and `--junit`: built from the same JSON `--json` prints.
fn write_outputs(
    args: &CheckArgs,
    history: History,
    reading: &ReadingInEffect,
    out: serde_json::Value,
) -> Result<(), CheckError> {
    let name = args.history.display().to_string();
    if let Some(file) = &args.junit {
        crate::report::write_file(file, &crate::report::junit::render(&name, &out))?;
    }
    if let Some(file) = &args.report {
        let input = crate::report::ReportInput {
            title: name,
            config: json!({
                "history": args.history,
                "model": args.model.to_string(),
                "format": reading.format.as_str(),
                "initial": args.initial,
                "reading": reading.name(),
                "cas_fail_observed": reading.cas_fail_observed,
                "nil_read_any": reading.nil_read_any,
                "timeout": format!("{:?}", args.timeout),
            }),
            results: out,
            history: Ok(history),
            files: Vec::new(),
        };
        crate::report::write_file(file, &crate::report::render(&input))?;
    }
    Ok(())
}

fn check_fencing(
    args: &CheckArgs,
    history: &History,
    op_stats: Option<stats::Stats>,
) -> Result<(u8, serde_json::Value), CheckError> {
    let report = fencing::check(history)?;
    let code = if report.valid {
        exit::VALID
    } else {
        exit::INVALID
    };
    let out = json!({
        "history": args.history,
        "model": "fencing",
        "verdict": if report.valid { "valid" } else { "invalid" },
        "fencing": report,
    });
    if !args.json {
        println!(
            "{}: {} events",
            args.history.display(),
            history.events.len()
        );
        println!("fencing: {report}");
        if let Some(s) = &op_stats {
            print!("{s}");
        }
    }
    Ok((code, with_op_stats(out, op_stats)))
}

fn check_linear(
    args: &CheckArgs,
    history: &History,
    kind: ModelKind,
    reading: &ReadingInEffect,
    op_stats: Option<stats::Stats>,
) -> Result<(u8, serde_json::Value), CheckError> {
    let mut spec = reading.apply(ModelSpec::new(kind));
    if let Some(text) = &args.initial {
        spec.initial = parse_value(text).ok_or_else(|| CheckError::Initial(text.clone()))?;
    }
    let progress = Arc::new(Progress::default());
    let limits = Limits {
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        max_memory_bytes: (args.max_memory > 0).then_some(args.max_memory),
        cancel: None,
        progress: Some(Arc::clone(&progress)),
    };
    let reporter = ProgressReporter::start(progress);
    let result = faultline_checker::check(history, &spec, &limits);
    reporter.finish();
    let result = result?;
    let code = match result.verdict.exit_code() {
        0 => exit::VALID,
        1 => exit::INVALID,
        _ => exit::UNKNOWN,
    };
    let mut out = json!({
        "history": args.history,
        "model": kind.as_str(),
        "format": reading.format.as_str(),
        "reading": reading.name(),
    });
    if let (Some(obj), Ok(serde_json::Value::Object(r))) =
        (out.as_object_mut(), serde_json::to_value(&result))
    {
        obj.extend(r);
    }
    if !args.json {
        let s = &result.stats;
        println!(
            "{}: {} events",
            args.history.display(),
            history.events.len()
        );
        println!("reading: {} ({})", reading.name(), reading.source());
        println!("{kind}: {}", result.verdict);
        println!(
            "searched {} of {} ops in {} partitions: {} states, peak memory {}, {} ms",
            s.ops_searched,
            s.ops,
            s.partitions,
            s.states_explored,
            faultline_checker::linear::format_bytes(s.peak_memory_bytes),
            s.elapsed_ms
        );
        if let Some(st) = &op_stats {
            print!("{st}");
        }
    }
    Ok((code, with_op_stats(out, op_stats)))
}

/// Adds `op_stats` to a JSON result when `--stats` asked for them.
fn with_op_stats(mut out: serde_json::Value, op_stats: Option<stats::Stats>) -> serde_json::Value {
    if let (Some(obj), Some(s)) = (out.as_object_mut(), op_stats) {
        obj.insert("op_stats".into(), json!(s));
    }
    out
}

/// A value given on the command line: JSON first (`0`, `""`, `null`, `[1,2]`), then EDN
/// (`nil`, `:x`, `[1 2]`).
fn parse_value(text: &str) -> Option<Value> {
    if let Ok(j) = serde_json::from_str::<serde_json::Value>(text) {
        return Some(Value::from_json(&j));
    }
    match format::edn::parse_all(text, 1).ok()?.as_slice() {
        [one] => Some(format::jepsen_edn::to_value(one)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `faultline check h --model register` followed by `extra`.
    fn args(extra: &[&str]) -> CheckArgs {
        let argv = ["faultline", "check", "h", "--model", "register"];
        let cli = crate::cli::Cli::try_parse_from(argv.iter().chain(extra)).unwrap();
        match cli.command {
            crate::cli::Command::Check(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reading_defaults_from_the_format_and_flags_override_it() {
        let r = ReadingInEffect::new(&args(&[]), Format::Edn);
        assert_eq!(r.name(), "knossos");
        assert!(r.nil_read_any && !r.cas_fail_observed);
        assert_eq!(r.source(), "the default for edn; --reading to change");
        let r = ReadingInEffect::new(&args(&[]), Format::JepsenLog);
        assert_eq!(r.name(), "knossos");
        let r = ReadingInEffect::new(&args(&[]), Format::Jsonl);
        assert_eq!(r.name(), "faultline");
        assert!(!r.nil_read_any && !r.cas_fail_observed);

        // --reading faultline turns nil-read-any off for a Jepsen file.
        let r = ReadingInEffect::new(&args(&["--reading", "faultline"]), Format::Edn);
        assert_eq!(r.name(), "faultline");
        assert!(!r.nil_read_any);
        assert_eq!(r.source(), "--reading faultline");
        let spec = r.apply(ModelSpec::new(ModelKind::CasRegister));
        assert!(!spec.nil_read_any && !spec.cas_fail_observed);

        // A flag adds its rule, and the name says so.
        let r = ReadingInEffect::new(&args(&["--cas-fail-observed"]), Format::Edn);
        assert_eq!(r.name(), "knossos+cas-fail-observed");
        assert_eq!(
            r.source(),
            "the default for edn; --reading to change, --cas-fail-observed"
        );
        let r = ReadingInEffect::new(&args(&["--nil-read-any"]), Format::Jsonl);
        assert_eq!(r.name(), "knossos");
        assert!(r.nil_read_any);
        let r = ReadingInEffect::new(&args(&["--reading", "porcupine"]), Format::Jsonl);
        assert_eq!(r.name(), "porcupine");
        assert!(r.cas_fail_observed && !r.nil_read_any);

        assert!(crate::cli::Cli::try_parse_from([
            "faultline",
            "check",
            "h",
            "--model",
            "register",
            "--reading",
            "jepsen"
        ])
        .is_err());
    }

    #[test]
    fn models_parse() {
        assert_eq!("fencing".parse(), Ok(CheckModel::Fencing));
        assert_eq!(
            "cas-register".parse(),
            Ok(CheckModel::Linear(ModelKind::CasRegister))
        );
        let e = "queue".parse::<CheckModel>().unwrap_err();
        assert!(e.contains("fencing"), "{e}");
    }

    #[test]
    fn initial_values_parse() {
        assert_eq!(parse_value("0"), Some(Value::Int(0)));
        assert_eq!(parse_value("\"\""), Some(Value::from("")));
        assert_eq!(parse_value("nil"), Some(Value::Null));
        assert_eq!(
            parse_value("[1 2]"),
            Some(Value::List(vec![1.into(), 2.into()]))
        );
        assert_eq!(parse_value("[1 2"), None);
        assert_eq!(parse_value("1 2"), None);
    }
}
