//! `faultline test-all`: runs the detection matrix ([`crate::matrix`]) and prints a table
//! of verdicts, or with `--seeds N` of detection rates over N seeds per cell. Exit code 1
//! when a correct run was judged invalid or a planted bug went undetected, 3 when a run
//! failed, 2 when a cell is unknown, else 0. Writes `matrix.json` (and, with `--junit`,
//! one test case per cell) next to the runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;

use crate::backend::Backend;
use crate::cli::units::parse_duration;
use crate::matrix::{self, CellOutcome, CellStatus, Expect};
use crate::report::junit::{render_suite, Case, CaseResult};
use crate::results::{Verdict, SCHEMA_VERSION};
use crate::run::run_dir::timestamp;
use crate::run::TestConfig;

#[derive(Debug, Args)]
pub struct TestAllArgs {
    /// Only cells whose name contains one of these (repeatable), e.g. `stale-read`.
    #[arg(long = "only", value_name = "TEXT")]
    pub only: Vec<String>,
    /// Runs made per planted bug before it counts as undetected (new seed each).
    #[arg(long, default_value_t = 4, conflicts_with = "seeds")]
    pub tries: u32,
    /// Run every cell on N seeds (seed .. seed+N-1), all of them, and report per cell the
    /// detection rate with its 95% interval, the time to detect and the faults in effect.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub seeds: Option<u32>,
    /// With --seeds: runs of N that must detect a bug for its cell to pass (default N).
    #[arg(long, value_name = "K", requires = "seeds")]
    pub require: Option<u32>,
    /// Nodes in each cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: u32,
    /// How long clients run in each run.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Time a fault lasts, and the rest between faults of one kind (each drawn between
    /// half and one and a half of this).
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// Target operations per second, over all clients.
    #[arg(long, default_value_t = 60.0)]
    pub rate: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// First seed (try k of a cell uses seed + k); default random, printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Results go to RESULTS_DIR/test-all/<timestamp>/.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Time limit of each linearizability check (then that run is unknown).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub check_timeout: Duration,
    /// Where the nodes run: docker, local, or auto.
    #[arg(long, value_enum, default_value = "docker")]
    pub backend: Backend,
    /// raftkv binary for the nodes (default: built from this source tree).
    #[arg(long, value_name = "PATH")]
    pub raftkv: Option<PathBuf>,
    /// Also write the matrix as JUnit XML to this file (one test case per cell).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// End each run as soon as the online check finds a violation (the run still heals,
    /// does its final reads and checks the whole history).
    #[arg(long)]
    pub stop_on_violation: bool,
    /// Which matrix: raftkv (its fault kinds and planted bugs), targets (the databases
    /// under targets/: etcd through its adapter, Redis Sentinel, ZooKeeper), or all.
    #[arg(long, value_enum, default_value = "raftkv")]
    pub matrix: matrix::MatrixChoice,
    /// List the cells and exit.
    #[arg(long)]
    pub list: bool,
}

/// A cell `test-all` left out on this backend.
#[derive(serde::Serialize)]
struct NotRun<'a> {
    cell: &'a str,
    reason: &'a str,
}

/// What `matrix.json` holds.
#[derive(serde::Serialize)]
struct MatrixResults<'a> {
    schema_version: u32,
    seed: u64,
    tries: u32,
    /// `--seeds`: runs per cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    seeds: Option<u32>,
    /// `--require`: detections a bug cell needs of its `seeds` runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    require: Option<u32>,
    time_limit_ms: u64,
    nodes: u32,
    backend: Backend,
    /// Cells chosen but not run on this backend, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_run: Vec<NotRun<'a>>,
    exit_code: u8,
    cells: &'a [CellOutcome],
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn run(args: TestAllArgs) -> ExitCode {
    let cells = matrix::select(matrix::matrix(args.matrix), &args.only);
    if args.list {
        for c in &cells {
            let narrowed = if c.shapes.is_empty() {
                String::new()
            } else {
                format!("  ({})", c.shapes)
            };
            let docker = if c.docker_only.is_some() {
                "  [Docker only]"
            } else {
                ""
            };
            println!(
                "{:<44} expect {}{narrowed}{docker}",
                c.name,
                c.expect.name()
            );
        }
        return ExitCode::SUCCESS;
    }
    if cells.is_empty() {
        eprintln!("error: no cell matches --only {:?}", args.only);
        return ExitCode::from(Verdict::Error.exit_code());
    }
    // `(seeds, require)` in --seeds mode.
    let seeds = args.seeds.map(|n| (n, args.require.unwrap_or(n)));
    if let Some((n, k)) = seeds {
        if k == 0 || k > n {
            eprintln!("error: --require {k} must be between 1 and --seeds {n}");
            return ExitCode::from(Verdict::Error.exit_code());
        }
    }
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = args.results_dir.join("test-all").join(timestamp(now_s));
    let seed = args.seed.unwrap_or_else(rand::random);
    let base = TestConfig {
        nodes: args.nodes,
        time_limit_ms: millis(args.time_limit),
        nemesis_interval_ms: millis(args.nemesis_interval),
        rate_per_s: args.rate,
        concurrency: args.concurrency,
        seed,
        results_dir: dir.clone(),
        check_timeout_ms: millis(args.check_timeout),
        backend: args.backend,
        raftkv_binary: args.raftkv.clone(),
        // Short runs need a short settle: the faults are over and healed by then.
        quiet_period_ms: 3_000,
        stop_on_violation: args.stop_on_violation,
        ..TestConfig::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(Verdict::Error.exit_code());
        }
    };
    // Docker-only cells are left out on the local backend, each with its reason (`auto`
    // is decided once, here, so that every run of the matrix uses the same backend).
    let (backend, fell_back) =
        runtime.block_on(crate::backend::start::resolve_backend(args.backend));
    if let Some(line) = fell_back {
        eprintln!("{line}");
    }
    let base = TestConfig { backend, ..base };
    let (cells, not_here): (Vec<_>, Vec<_>) = cells
        .into_iter()
        .partition(|c| backend != Backend::Local || c.docker_only.is_none());
    for c in &not_here {
        eprintln!(
            "not run on the local backend: {} ({})",
            c.name,
            c.docker_only.unwrap_or_default()
        );
    }
    if cells.is_empty() {
        eprintln!("error: every cell chosen needs Docker");
        return ExitCode::from(Verdict::Error.exit_code());
    }
    let runs = match seeds {
        Some((n, k)) => format!("{n} seeds per cell, {k} detections required"),
        None => format!("up to {} tries per bug", args.tries.max(1)),
    };
    eprintln!(
        "faultline test-all: {} cells, {runs}, {} s each, seed {} (repeat with --seed \
         {seed}); results in {}",
        cells.len(),
        args.time_limit.as_secs(),
        seed,
        dir.display()
    );
    let mut outcomes = Vec::new();
    for c in &cells {
        let outcome = match seeds {
            Some((n, k)) => runtime.block_on(matrix::run_cell_seeds(c, &base, n, k)),
            None => runtime.block_on(matrix::run_cell(c, &base, args.tries)),
        };
        let stop = outcome.status == CellStatus::Cancelled;
        outcomes.push(outcome);
        if stop {
            eprintln!("interrupted: the remaining cells were not run");
            break;
        }
    }
    println!();
    if seeds.is_some() {
        println!("{}", matrix::rate_header());
        for o in &outcomes {
            println!("{}", o.rate_row());
        }
    } else {
        println!("{}", matrix::header());
        for o in &outcomes {
            println!("{}", o.row());
        }
    }
    let code = matrix::exit_code(&outcomes);
    let summary = MatrixResults {
        schema_version: SCHEMA_VERSION,
        seed,
        tries: args.tries,
        seeds: seeds.map(|s| s.0),
        require: seeds.map(|s| s.1),
        time_limit_ms: base.time_limit_ms,
        nodes: base.nodes,
        backend,
        not_run: not_here
            .iter()
            .map(|c| NotRun {
                cell: &c.name,
                reason: c.docker_only.unwrap_or_default(),
            })
            .collect(),
        exit_code: code,
        cells: &outcomes,
    };
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("matrix.json"),
            serde_json::to_vec_pretty(&summary).unwrap_or_default(),
        )
    }) {
        eprintln!("error: writing {}: {e}", dir.join("matrix.json").display());
    }
    if let Some(path) = &args.junit {
        let xml = junit(&outcomes, seed);
        if let Err(e) = crate::report::write_file(path, &xml) {
            eprintln!("error: --junit: {e}");
        }
    }
    ExitCode::from(code)
}

/// One test case per cell: a failure for a miss (false alarm or undetected bug), an error
/// for a failed, cancelled or unknown run. With `--seeds` every case names the cell's rate
/// (a passing one in `<system-out>`).
fn junit(outcomes: &[matrix::CellOutcome], seed: u64) -> String {
    let cases: Vec<Case> = outcomes
        .iter()
        .map(|o| {
            // The run that decided the cell: a false alarm's, else the last.
            let decisive = o
                .tries
                .iter()
                .find(|t| o.cell.expect == Expect::Valid && t.verdict == Verdict::Invalid)
                .or(o.tries.last());
            let where_ = decisive
                .map(|t| format!("{} (seed {})", t.run_dir.display(), t.seed))
                .unwrap_or_default();
            let rate = o.rate.as_ref().map(|r| rate_note(o, r));
            let with_rate = |message: String| match &rate {
                Some(r) => format!("{message}: {r}"),
                None => message,
            };
            let result = match o.status {
                CellStatus::Met => match &rate {
                    Some(r) => CaseResult::PassNoted { note: r.clone() },
                    None => CaseResult::Pass,
                },
                CellStatus::Missed if o.cell.expect == Expect::Valid => CaseResult::Failure {
                    message: with_rate(
                        "correct raftkv was judged invalid (false alarm or real bug)".into(),
                    ),
                    detail: where_,
                },
                CellStatus::Missed => CaseResult::Failure {
                    message: match &rate {
                        Some(r) => format!(
                            "{} detected too rarely: {r}",
                            o.cell.bug.as_deref().unwrap_or("bug")
                        ),
                        None => format!(
                            "{} not detected in {} tries",
                            o.cell.bug.as_deref().unwrap_or("bug"),
                            o.tries.len()
                        ),
                    },
                    detail: where_,
                },
                CellStatus::Unknown => CaseResult::Error {
                    kind: "unknown",
                    message: with_rate(format!("the checker could not decide: {where_}")),
                },
                CellStatus::Skipped => CaseResult::Skipped {
                    message: o.skipped.clone().unwrap_or_default(),
                },
                CellStatus::Error | CellStatus::Cancelled => CaseResult::Error {
                    kind: "error",
                    message: with_rate(
                        o.tries
                            .iter()
                            .rev()
                            .find_map(|t| t.error.clone())
                            .unwrap_or_else(|| "cancelled".into()),
                    ),
                },
            };
            Case {
                name: o.cell.name.clone(),
                time_s: o.tries.iter().map(|t| t.total_ms).sum::<u64>() as f64 / 1000.0,
                result,
            }
        })
        .collect();
    let total_s = cases.iter().map(|c| c.time_s).sum();
    render_suite(
        "faultline test-all",
        total_s,
        &[("seed", seed.to_string())],
        cases,
    )
}

/// `detected in 19/20 runs (95% interval [0.764, 0.991]), 20 required` for a bug cell,
/// `valid in 3/3 runs (...)` for a correct one.
fn rate_note(o: &matrix::CellOutcome, r: &matrix::Rate) -> String {
    let what = if o.cell.expect == Expect::Valid {
        "valid"
    } else {
        "detected"
    };
    let mut note = format!(
        "{what} in {} runs (95% interval {})",
        r.fraction(),
        r.interval()
    );
    if o.cell.expect != Expect::Valid {
        note.push_str(&format!(", {} required", r.required));
    }
    if r.skipped_runs > 0 {
        note.push_str(&format!(", {} skipped", r.skipped_runs));
    }
    note
}
