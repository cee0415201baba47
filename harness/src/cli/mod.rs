//! The command line: one [`Command`] variant and one module per subcommand. To add a
//! subcommand (test, image, report, serve), add a variant holding its `Args` struct and a
//! module with a `run(args) -> ExitCode` function.
//!
//! Exit codes are shared by every subcommand: 0 valid, 1 invalid, 2 unknown, 3 the input
//! or the run itself was bad. Command-line mistakes are exit 3 as well (clap's default of
//! 2 would read as "unknown").

pub mod check;
pub mod exit;
pub mod follow;
pub mod image;
pub mod progress;
pub mod report;
pub mod serve;
pub mod test;
pub mod test_all;
pub mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Jepsen-style testing of distributed systems, and a linearizability checker.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a recorded history (faultline JSONL, Jepsen history.edn or Jepsen log).
    Check(check::CheckArgs),
    /// Run a test: start a cluster, run clients under faults, check the history.
    Test(test::TestCommand),
    /// Run the detection matrix: correct raftkv under every nemesis, each planted bug
    /// under its matching nemesis; prints a table of verdicts.
    TestAll(test_all::TestAllArgs),
    /// Build the node images (cached by a hash of their inputs).
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// (Re)build report.html in a run's results folder.
    Report(report::ReportArgs),
    /// Serve the results directory: a page listing every run, and each run's files.
    Serve(serve::ServeArgs),
}

/// Parses `std::env::args`, runs the subcommand and returns its exit code.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::VALID
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    run(cli)
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Test(args) => test::run(args),
        Command::TestAll(args) => test_all::run(args),
        Command::Image(cmd) => image::command(cmd),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings), so stdout stays clean
/// for results and `--json`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
