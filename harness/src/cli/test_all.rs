//! `faultline test-all`: runs the detection matrix ([`crate::matrix`]) and prints a table
//! of verdicts. Exit code 1 when a correct run was judged invalid or a planted bug went
//! undetected, 3 when a run failed, 2 when a cell is unknown, else 0. Writes
//! `matrix.json` (and, with `--junit`, one test case per cell) next to the runs.

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
    #[arg(long, default_value_t = 4)]
    pub tries: u32,
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
    /// List the cells and exit.
    #[arg(long)]
    pub list: bool,
}

/// What `matrix.json` holds.
#[derive(serde::Serialize)]
struct MatrixResults<'a> {
    schema_version: u32,
    seed: u64,
    tries: u32,
    time_limit_ms: u64,
    nodes: u32,
    backend: Backend,
    exit_code: u8,
    cells: &'a [CellOutcome],
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn run(args: TestAllArgs) -> ExitCode {
    let cells = matrix::select(matrix::default_matrix(), &args.only);
    if args.list {
        for c in &cells {
            let narrowed = if c.shapes.is_empty() {
                String::new()
            } else {
                format!("  ({})", c.shapes)
            };
            println!("{:<44} expect {}{narrowed}", c.name, c.expect.name());
        }
        return ExitCode::SUCCESS;
    }
    if cells.is_empty() {
        eprintln!("error: no cell matches --only {:?}", args.only);
        return ExitCode::from(Verdict::Error.exit_code());
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
    eprintln!(
        "faultline test-all: {} cells, up to {} tries per bug, {} s each, seed {} (repeat with \
         --seed {seed}); results in {}",
        cells.len(),
        args.tries.max(1),
        args.time_limit.as_secs(),
        seed,
        dir.display()
    );
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
    let mut outcomes = Vec::new();
    for c in &cells {
        let outcome = runtime.block_on(matrix::run_cell(c, &base, args.tries));
        let stop = outcome.status == CellStatus::Cancelled;
        outcomes.push(outcome);
        if stop {
            eprintln!("interrupted: the remaining cells were not run");
            break;
        }
    }
    println!();
    println!("{}", matrix::header());
    for o in &outcomes {
        println!("{}", o.row());
    }
    let code = matrix::exit_code(&outcomes);
    let summary = MatrixResults {
        schema_version: SCHEMA_VERSION,
        seed,
        tries: args.tries,
        time_limit_ms: base.time_limit_ms,
        nodes: base.nodes,
        backend: args.backend,
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
/// for a failed, cancelled or unknown run.
fn junit(outcomes: &[matrix::CellOutcome], seed: u64) -> String {
    let cases: Vec<Case> = outcomes
        .iter()
        .map(|o| {
            let last = o.tries.last();
            let where_ = last
                .map(|t| format!("{} (seed {})", t.run_dir.display(), t.seed))
                .unwrap_or_default();
            let result = match o.status {
                CellStatus::Met => CaseResult::Pass,
                CellStatus::Missed if o.cell.expect == Expect::Valid => CaseResult::Failure {
                    message: "correct raftkv was judged invalid (false alarm or real bug)".into(),
                    detail: where_,
                },
                CellStatus::Missed => CaseResult::Failure {
                    message: format!(
                        "{} not detected in {} tries",
                        o.cell.bug.as_deref().unwrap_or("bug"),
                        o.tries.len()
                    ),
                    detail: where_,
                },
                CellStatus::Unknown => CaseResult::Error {
                    kind: "unknown",
                    message: format!("the checker could not decide: {where_}"),
                },
                CellStatus::Skipped => CaseResult::Skipped {
                    message: o.skipped.clone().unwrap_or_default(),
                },
                CellStatus::Error | CellStatus::Cancelled => CaseResult::Error {
                    kind: "error",
                    message: last
                        .and_then(|t| t.error.clone())
                        .unwrap_or_else(|| "cancelled".into()),
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
