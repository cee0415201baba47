//! `faultline report RESULTS_DIR`: (re)builds `report.html` in a run's results folder from
//! its files, e.g. after an upgrade or for a run whose report was never written. Prints
//! the report's path; exits 0, or 3 when the folder has no readable `results.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::exit;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's results folder (`results/<test>/<timestamp>`, or a `latest` link).
    pub results_dir: PathBuf,

    /// Also write JUnit XML for the run to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> ExitCode {
    match crate::report::write_report(&args.results_dir) {
        Ok(path) => println!("{}", path.display()),
        Err(e) => {
            eprintln!("faultline report: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    }
    if let Some(file) = &args.junit {
        let written = crate::report::load_run(&args.results_dir).and_then(|input| {
            let suite = input.title.split(' ').next().unwrap_or("faultline");
            crate::report::write_file(file, &crate::report::junit::render(suite, &input.results))
        });
        if let Err(e) = written {
            eprintln!("faultline report: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    }
    ExitCode::from(exit::VALID)
}
