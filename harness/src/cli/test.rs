//! `faultline test`: the run's flags ([`TestArgs`]) plus the outputs a CI system reads
//! (`--junit FILE`). The run itself is [`crate::run::run_test`]; its `report.html` is
//! written into the results folder at the end of every run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::run::TestArgs;

#[derive(Debug, Args)]
pub struct TestCommand {
    #[command(flatten)]
    pub run: TestArgs,

    /// Also write the verdict as JUnit XML to this file (one test case per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

pub fn run(args: TestCommand) -> ExitCode {
    let done = crate::run::execute(args.run);
    if let Some(junit) = args.junit {
        let results = crate::results::Results::Run(done.results);
        let xml = crate::report::junit::render(&done.test, &results);
        if let Err(e) = crate::report::write_file(&junit, &xml) {
            eprintln!("error: --junit: {e}");
        }
    }
    ExitCode::from(done.code)
}
