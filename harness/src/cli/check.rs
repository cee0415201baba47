//! `faultline check HISTORY... --model M`: reads histories in any supported format and
//! checks each, for linearizability against a model or for fencing-token safety
//! (`--model fencing`). A folder stands for every `*.jsonl` and `*.edn` file under it, so a
//! CI job can gate a whole folder of histories. Prints one verdict line per file (or, with
//! `--json`, one JSON object per line), and exits with the worst verdict: 0 valid,
//! 1 invalid, 2 unknown (a limit was hit), 3 bad input.
//!
//! A linearizability check reads the history with the reading its format means (Knossos's
//! for Jepsen EDN and logs, faultline's for JSONL; see `faultline_checker::Reading`),
//! unless `--reading` names another; `--nil-read-any` and `--cas-fail-observed` turn one
//! rule on over it. The reading in effect is printed with every such verdict.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use faultline_checker::format::{self, Format};
use faultline_checker::{
    fencing, stats, CheckResult, History, HistoryError, Limits, ModelKind, ModelSpec, Progress,
    Reading, Value,
};

use super::progress::ProgressReporter;
use super::units;
use crate::results::{CheckResults, Results, Verdict, SCHEMA_VERSION};

/// Most history files one `check` takes (folders included), so a mistyped folder cannot
/// start an endless walk.
pub const MAX_FILES: usize = 100_000;
/// How deep a folder is searched for histories.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// History files, or folders: a folder stands for every `*.jsonl` and `*.edn` file
    /// under it (symlinks are not followed).
    #[arg(required = true, value_name = "HISTORY")]
    pub histories: Vec<PathBuf>,

    /// What to check against: a linearizability model (register, cas-register, kv, mutex)
    /// or `fencing` for the fencing-token checker.
    #[arg(long, short)]
    pub model: CheckModel,

    /// History format: auto, jsonl, edn, jepsen-log.
    #[arg(long, default_value = "auto")]
    pub format: Format,

    /// Give up on a file with `unknown` after this long (e.g. 60s, 5m; 0 for no limit).
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

    /// Print each file's result as one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,

    /// Also write a self-contained HTML report (timeline, latency, counterexample) here;
    /// for one history only.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Also write the verdicts as JUnit XML here (one test suite per history).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Follow one growing JSONL history, like `tail -f`: check it as lines arrive, report
    /// a violation (exit 1) as soon as one is found, and give the final verdict once the
    /// file stops growing for --idle-timeout. Linearizability models only.
    #[arg(long)]
    pub follow: bool,

    /// With --follow: the file is done once it has not grown for this long.
    #[arg(long, default_value = "30s", value_parser = units::parse_duration)]
    pub idle_timeout: Duration,

    /// With --follow: how often the file is polled for new lines.
    #[arg(long, default_value = "200ms", value_parser = units::parse_duration)]
    pub poll: Duration,

    /// With --follow: the least time between two checks of the history read so far.
    #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
    pub check_every: Duration,
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
pub(super) struct ReadingInEffect {
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
    pub(super) fn new(args: &CheckArgs, format: Format) -> ReadingInEffect {
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

/// Why a file could not be checked; its verdict is `error` (exit 3).
#[derive(Debug, thiserror::Error)]
pub(super) enum CheckError {
    #[error(transparent)]
    History(#[from] faultline_checker::HistoryError),
    #[error("--initial {0:?}: expected a JSON or EDN value such as 0, \"\" or nil")]
    Initial(String),
}

/// Why the command could not run at all.
#[derive(Debug, thiserror::Error)]
enum UsageError {
    #[error("{}: {source}", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no *.jsonl or *.edn history in this folder", .0.display())]
    EmptyFolder(PathBuf),
    #[error("more than {MAX_FILES} history files")]
    TooMany,
    #[error("--report writes one page for one history; {0} were given")]
    ReportOfMany(usize),
}

pub fn run(args: CheckArgs) -> ExitCode {
    if args.follow {
        let CheckModel::Linear(kind) = args.model else {
            eprintln!("faultline check: --follow checks linearizability models only");
            return ExitCode::from(Verdict::Error.exit_code());
        };
        return super::follow::run(&args, kind);
    }
    let files = match histories(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("faultline check: {e}");
            return ExitCode::from(Verdict::Error.exit_code());
        }
    };
    let single = files.len() == 1;
    let mut checked = Vec::with_capacity(files.len());
    let mut suites = Vec::new();
    for path in &files {
        let (results, history) = check_file(&args, path, single);
        print_results(&args, &results, single);
        if let (Some(file), Some(history)) = (&args.report, history) {
            let input = crate::report::ReportInput {
                title: path.display().to_string(),
                config: report_config(&args, &results),
                results: Results::Check(results.clone()),
                history: Ok(history),
                files: Vec::new(),
            };
            if let Err(e) = crate::report::write_file(file, &crate::report::render(&input)) {
                eprintln!("faultline check: --report: {e}");
                checked.push(Verdict::Error);
            }
        }
        checked.push(results.verdict);
        if args.junit.is_some() {
            suites.push((
                results.history.display().to_string(),
                Results::Check(results),
            ));
        }
    }
    if !single && !args.json {
        println!("{}", totals(&checked));
    }
    if let Some(file) = &args.junit {
        let xml = crate::report::junit::render_many(&suites);
        if let Err(e) = crate::report::write_file(file, &xml) {
            eprintln!("faultline check: --junit: {e}");
            checked.push(Verdict::Error);
        }
    }
    ExitCode::from(Verdict::worst(checked).exit_code())
}

/// The history files the arguments name, folders expanded, in the order given (a folder's
/// files sorted by path).
fn histories(args: &CheckArgs) -> Result<Vec<PathBuf>, UsageError> {
    let mut files = Vec::new();
    for path in &args.histories {
        if path.is_dir() {
            let before = files.len();
            walk(path, 0, &mut files)?;
            if files.len() == before {
                return Err(UsageError::EmptyFolder(path.clone()));
            }
        } else {
            // A missing file is that file's error, reported with its verdict.
            files.push(path.clone());
        }
        if files.len() > MAX_FILES {
            return Err(UsageError::TooMany);
        }
    }
    if args.report.is_some() && files.len() > 1 {
        return Err(UsageError::ReportOfMany(files.len()));
    }
    Ok(files)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), UsageError> {
    let err = |source| UsageError::Walk {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let kind = e.file_type().map_err(err)?;
        let path = e.path();
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(&path, depth + 1, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|x| x == "jsonl" || x == "edn") {
            out.push(path);
        }
        if out.len() > MAX_FILES {
            return Err(UsageError::TooMany);
        }
    }
    Ok(())
}

/// Checks one file. The history comes back for a report when it could be read.
fn check_file(args: &CheckArgs, path: &Path, single: bool) -> (CheckResults, Option<History>) {
    if let Some(results) = check_file_paired(args, path, single) {
        return (results, None);
    }
    let (history, read_as) = match format::read_path_and_format(path, args.format) {
        Ok(h) => h,
        Err(e) => return (failed(args, path, e.into()), None),
    };
    tracing::info!(events = history.events.len(), path = %path.display(), "history read");
    warn_cut_off(path, history.cut_off_line, history.events.len());
    let reading = ReadingInEffect::new(args, read_as);
    match check_history(args, path, &history, &reading, single) {
        Ok(results) => (results, Some(history)),
        Err(e) => (failed(args, path, e), Some(history)),
    }
}

/// A JSONL history checked for linearizability alone (no `--report`, no `--stats`) is
/// paired into ops as it is read, its events never all held: a 10M-op history needs the
/// memory of its ops, about a third of what its events and text would take. `None` when
/// the check needs the events.
fn check_file_paired(args: &CheckArgs, path: &Path, single: bool) -> Option<CheckResults> {
    let CheckModel::Linear(kind) = args.model else {
        return None;
    };
    let read_as = match args.format {
        Format::Auto => format::by_extension(path)?,
        f => f,
    };
    if read_as != Format::Jsonl || args.report.is_some() || args.stats {
        return None;
    }
    let paired = match format::jsonl::read_paired(path) {
        Ok(p) => p,
        Err(e) => return Some(failed(args, path, e.into())),
    };
    tracing::info!(events = paired.events, ops = paired.ops.len(), path = %path.display(), "history read and paired");
    warn_cut_off(path, paired.cut_off_line, paired.events);
    let reading = ReadingInEffect::new(args, read_as);
    let mut results = base_results(args, path, &reading, paired.events, paired.cut_off_line);
    match check_linear(args, kind, &reading, single, |spec, limits| {
        faultline_checker::check_paired(&paired, spec, limits)
    }) {
        Ok(result) => {
            results.verdict = Verdict::from(&result.verdict);
            results.reading = Some(reading.name());
            results.linearizable = Some(result);
            Some(results)
        }
        Err(e) => Some(failed(args, path, e)),
    }
}

fn warn_cut_off(path: &Path, cut_off_line: Option<usize>, events: usize) {
    if let Some(line) = cut_off_line {
        eprintln!(
            "faultline check: warning: {}:{line}: the last line has no newline and its JSON \
             stops before its end, so the file was cut off mid-write (a run that died); \
             checked the {events} events before it",
            path.display(),
        );
    }
}

fn failed(args: &CheckArgs, path: &Path, e: CheckError) -> CheckResults {
    CheckResults::failed(path.to_path_buf(), args.model.to_string(), e.to_string())
}

/// Prints one file's results: a JSON line with `--json`, else text.
pub(super) fn print_results(args: &CheckArgs, results: &CheckResults, single: bool) {
    if args.json {
        // One object per line: a folder's results can be read back line by line.
        match serde_json::to_string(results) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("faultline check: {}: {e}", results.history.display()),
        }
        if let Some(e) = &results.error {
            eprintln!("faultline check: {e}");
        }
    } else {
        print_text(results, single);
    }
}

pub(super) fn check_history(
    args: &CheckArgs,
    path: &Path,
    history: &History,
    reading: &ReadingInEffect,
    single: bool,
) -> Result<CheckResults, CheckError> {
    let mut results = base_results(
        args,
        path,
        reading,
        history.events.len(),
        history.cut_off_line,
    );
    if args.stats {
        results.op_stats = Some(stats::compute(history)?);
    }
    match args.model {
        CheckModel::Fencing => {
            let report = fencing::check(history)?;
            results.verdict = if report.valid {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
            results.fencing = Some(report);
        }
        CheckModel::Linear(kind) => {
            let result = check_linear(args, kind, reading, single, |spec, limits| {
                faultline_checker::check(history, spec, limits)
            })?;
            results.reading = Some(reading.name());
            results.verdict = Verdict::from(&result.verdict);
            results.linearizable = Some(result);
        }
    }
    Ok(results)
}

/// One file's results before any check: valid, nothing checked yet.
fn base_results(
    args: &CheckArgs,
    path: &Path,
    reading: &ReadingInEffect,
    events: usize,
    cut_off_line: Option<usize>,
) -> CheckResults {
    CheckResults {
        schema_version: SCHEMA_VERSION,
        history: path.to_path_buf(),
        model: args.model.to_string(),
        verdict: Verdict::Valid,
        error: None,
        format: Some(reading.format.as_str().to_string()),
        reading: None,
        events,
        linearizable: None,
        fencing: None,
        op_stats: None,
        cut_off_line,
    }
}

/// Runs the linearizability check `run` with the model, reading and limits `args` give,
/// and a progress bar for a single file.
fn check_linear(
    args: &CheckArgs,
    kind: ModelKind,
    reading: &ReadingInEffect,
    single: bool,
    run: impl FnOnce(&ModelSpec, &Limits) -> Result<CheckResult, HistoryError>,
) -> Result<CheckResult, CheckError> {
    let spec = model_spec(args, kind, reading)?;
    if single && !args.json {
        println!("reading: {} ({})", reading.name(), reading.source());
    }
    let progress = Arc::new(Progress::default());
    let limits = Limits {
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        max_memory_bytes: (args.max_memory > 0).then_some(args.max_memory),
        cancel: None,
        progress: Some(Arc::clone(&progress)),
        segment_entries: None,
        forget: None,
    };
    // One file's progress bar at a time; many files go by quickly or say so.
    let reporter = single.then(|| ProgressReporter::start(progress));
    let result = run(&spec, &limits);
    if let Some(r) = reporter {
        r.finish();
    }
    Ok(result?)
}

pub(super) fn model_spec(
    args: &CheckArgs,
    kind: ModelKind,
    reading: &ReadingInEffect,
) -> Result<ModelSpec, CheckError> {
    let mut spec = reading.apply(ModelSpec::new(kind));
    if let Some(text) = &args.initial {
        spec.initial = parse_value(text).ok_or_else(|| CheckError::Initial(text.clone()))?;
    }
    Ok(spec)
}

/// The text output: a verdict line per file (`h.edn: cas-register: invalid, read as
/// knossos, 12 events`); for a single file also the counterexample, the search's figures
/// and the op statistics. Why a file could not be checked goes to stderr as well.
fn print_text(r: &CheckResults, single: bool) {
    let mut line = format!("{}: {}: {}", r.history.display(), r.model, r.verdict.name());
    if let Some(lin) = &r.linearizable {
        if let faultline_checker::Verdict::Unknown { limit } = &lin.verdict {
            line.push_str(&format!(", stopped by {limit}"));
        }
    }
    if let Some(reading) = &r.reading {
        line.push_str(&format!(", read as {reading}"));
    }
    if r.error.is_none() {
        line.push_str(&format!(", {} events", r.events));
    }
    if let Some(f) = &r.fencing {
        line.push_str(&format!("; {f}"));
    }
    println!("{line}");
    if let Some(e) = &r.error {
        eprintln!("faultline check: {e}");
    }
    if !single {
        return;
    }
    if let Some(lin) = &r.linearizable {
        if let faultline_checker::Verdict::Invalid(cex) = &lin.verdict {
            println!("{cex}");
        }
        let s = &lin.stats;
        println!(
            "searched {} of {} ops in {} partitions: {} states, peak memory {}, {} ms",
            s.ops_searched,
            s.ops,
            s.partitions,
            s.states_explored,
            faultline_checker::linear::format_bytes(s.peak_memory_bytes),
            s.elapsed_ms
        );
        if s.segments > s.partitions as u64 {
            println!(
                "{} segments: at most {} configurations and {} open ops at a cut",
                s.segments, s.peak_configs, s.widest_window
            );
        }
    }
    if let Some(st) = &r.op_stats {
        print!("{st}");
    }
}

/// The last line for many files: how many got each verdict.
fn totals(verdicts: &[Verdict]) -> String {
    let count = |v: Verdict| verdicts.iter().filter(|x| **x == v).count();
    format!(
        "{} histories: {} valid, {} invalid, {} unknown, {} error",
        verdicts.len(),
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
        count(Verdict::Error)
    )
}

/// What the report shows as the check's configuration.
fn report_config(args: &CheckArgs, r: &CheckResults) -> serde_json::Value {
    serde_json::json!({
        "history": r.history,
        "model": args.model.to_string(),
        "format": r.format,
        "initial": args.initial,
        "reading": r.reading,
        "timeout": format!("{:?}", args.timeout),
    })
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

    #[test]
    fn a_folder_stands_for_its_histories_sorted_without_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("t").join("20261201T000000");
        std::fs::create_dir_all(&run).unwrap();
        for f in ["history.jsonl", "faultline.log", "results.json"] {
            std::fs::write(run.join(f), "").unwrap();
        }
        std::fs::write(dir.path().join("a.edn"), "").unwrap();
        std::os::unix::fs::symlink(&run, dir.path().join("t").join("latest")).unwrap();
        let mut found = Vec::new();
        walk(dir.path(), 0, &mut found).unwrap();
        assert_eq!(
            found,
            [dir.path().join("a.edn"), run.join("history.jsonl")],
            "one per history, the latest link not followed"
        );
    }
}
