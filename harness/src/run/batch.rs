//! A batch: `faultline test --test-count N`, Jepsen's repeated runs. N independent runs of
//! one configuration with seeds `seed` through `seed + N - 1`, each an ordinary run with its
//! own results folder. The batch stops at the first `invalid` run unless told to keep
//! going, and at a Ctrl-C. Its summary (a table, `batch.json`, and JUnit with one suite per
//! run) goes to `results/<test>/batch-<timestamp>/`, naming each run's folder.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::run_dir::timestamp;
use super::{execute, TestConfig};
use crate::results::{BatchResults, BatchRun, Results, Verdict, SCHEMA_VERSION};

/// Most runs one batch makes.
pub const MAX_RUNS: u32 = 100_000;

/// What a batch did, and where its summary is.
pub struct Batch {
    pub results: BatchResults,
    /// The batch's folder, when it could be written.
    pub dir: Option<PathBuf>,
}

/// Runs `count` runs of `config` (seeds `config.seed` onwards) and writes the summary.
pub fn run_batch(config: &TestConfig, count: u32, keep_going: bool) -> Batch {
    let started = Instant::now();
    let count = count.clamp(1, MAX_RUNS);
    let mut runs = Vec::new();
    let mut run_results = Vec::new();
    let mut stopped = None;
    for k in 0..count {
        let mut c = config.clone();
        c.seed = config.seed.wrapping_add(u64::from(k));
        eprintln!("faultline test: run {} of {count}", k + 1);
        let done = execute(c);
        let run = BatchRun::of(&done.results);
        let cancelled = done.results.exercised.as_ref().is_some_and(|x| x.cancelled);
        let verdict = run.verdict;
        let seed = run.seed;
        runs.push(run);
        run_results.push(done.results);
        if cancelled {
            stopped = Some(format!("cancelled during the run with seed {seed}"));
            break;
        }
        if verdict == Verdict::Invalid && !keep_going && k + 1 < count {
            stopped = Some(format!(
                "invalid at seed {seed} (--keep-going runs the rest)"
            ));
            break;
        }
    }
    let results = BatchResults {
        schema_version: SCHEMA_VERSION,
        test: config.test_name(),
        first_seed: config.seed,
        requested: count,
        keep_going,
        stopped,
        runs,
        total_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let dir = write(config, &results, &run_results)
        .map_err(|e| eprintln!("error: writing the batch summary: {e}"))
        .ok();
    Batch { results, dir }
}

/// Writes `batch.json`, `batch.txt` (the table) and `batch.xml` (JUnit) into a new
/// `results/<test>/batch-<timestamp>/`.
fn write(
    config: &TestConfig,
    results: &BatchResults,
    runs: &[crate::results::RunResults],
) -> std::io::Result<PathBuf> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let test_dir = config.results_dir.join(config.test_name());
    let stamp = timestamp(now);
    let mut dir = test_dir.join(format!("batch-{stamp}"));
    let mut n = 1;
    // Never share a folder with another batch started in the same second.
    loop {
        std::fs::create_dir_all(&test_dir)?;
        match std::fs::create_dir(&dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => {
                n += 1;
                dir = test_dir.join(format!("batch-{stamp}-{n}"));
            }
            Err(e) => return Err(e),
        }
    }
    let json = serde_json::to_vec_pretty(results).map_err(std::io::Error::other)?;
    crate::report::write_file(&dir.join("batch.json"), &String::from_utf8_lossy(&json))
        .map_err(std::io::Error::other)?;
    crate::report::write_file(&dir.join("batch.txt"), &results.table())
        .map_err(std::io::Error::other)?;
    let suites: Vec<(String, Results)> = runs
        .iter()
        .map(|r| {
            (
                format!("{} seed {}", r.test, r.seed),
                Results::Run(r.clone()),
            )
        })
        .collect();
    crate::report::write_file(
        &dir.join("batch.xml"),
        &crate::report::junit::render_many(&suites),
    )
    .map_err(std::io::Error::other)?;
    Ok(dir)
}
