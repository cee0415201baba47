//! `faultline test`: the run's flags ([`TestArgs`]) plus the outputs a CI system reads
//! (`--junit FILE`). The run itself is [`crate::run::run_test`]; its `report.html` is
//! written into the results folder at the end of every run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::run::{RunVerdict, TestArgs};

#[derive(Debug, Args)]
pub struct TestCommand {
    #[command(flatten)]
    pub run: TestArgs,

    /// Also write the verdict as JUnit XML to this file (one test case per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

pub fn run(args: TestCommand) -> ExitCode {
    let Some(junit) = args.junit else {
        return crate::run::command(args.run);
    };
    let config = args.run.to_config();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(RunVerdict::Error.exit_code());
        }
    };
    eprintln!(
        "faultline test: {} on {} nodes, seed {} (repeat with --seed {})",
        config.workload, config.nodes, config.seed, config.seed
    );
    let test = config.test_name();
    let (code, results) = match runtime.block_on(crate::run::run_test(config)) {
        Ok(outcome) => {
            println!("{}", outcome.summary());
            (
                outcome.exit_code(),
                serde_json::to_value(&outcome).unwrap_or_default(),
            )
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            (
                RunVerdict::Error.exit_code(),
                serde_json::json!({"verdict": "error", "test": test, "error": format!("{e:#}")}),
            )
        }
    };
    let xml = crate::report::junit::render(&test, &results);
    if let Err(e) = crate::report::write_file(&junit, &xml) {
        eprintln!("error: --junit: {e}");
    }
    ExitCode::from(code)
}
