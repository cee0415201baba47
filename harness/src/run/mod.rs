//! `faultline test`: one run, end to end. A run is data ([`TestConfig`], saved as the
//! run's `config.json`); the steps are:
//!
//! 1. create `results/<test>/<timestamp>/` and the `latest` links ([`run_dir`]);
//! 2. ask the target's driver how a node runs, and start the cluster on the chosen backend
//!    (`crate::backend::start`);
//! 3. [`exercise`]: wait for a leader, clients + nemesis for the time limit, heal, quiet
//!    period, final reads; the history streams into `history.jsonl` as it happens;
//!    node logs are copied to `nodes/<node>/`;
//! 4. tear the cluster down;
//! 5. [`judge`]: check the history with the workload's checkers, write `results.json`.
//!
//! Ctrl-C stops the run early but still heals, tears down, and judges what was recorded.
//! Exit codes: 0 valid, 1 invalid, 2 unknown, 3 the run itself failed.

pub mod batch;
pub mod config;
pub mod exercise;
pub mod judge;
pub mod nemesis_log;
pub mod online;
pub mod progress;
pub mod run_dir;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_nemeses::Cluster;
use tokio::sync::watch;

use crate::backend::external::ExternalCluster;
use crate::backend::{StartLog, StartRequest, Started};
use crate::results::{Exercised, RunResults, Verdict, SCHEMA_VERSION};

pub use config::TestConfig;
pub use exercise::RunError;
pub use run_dir::RunDir;

use progress::LiveProgress;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A watch that turns true on Ctrl-C (SIGINT) or SIGTERM.
fn cancel_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::warn!("signal received: stopping the run (healing and tearing down)");
        let _ = tx.send(true);
        // Keep the sender alive so receivers do not see a closed channel.
        std::future::pending::<()>().await;
    });
    rx
}

/// Runs one test against a cluster of the target on the configured backend. Errors only
/// for a results folder that cannot be created; every other failure is an outcome with
/// verdict `error` (exit code 3) and is recorded in the folder.
pub async fn run_test(config: TestConfig) -> anyhow::Result<RunResults> {
    config.validate()?;
    if !config.target_options.endpoints.is_empty() {
        let external = Arc::new(ExternalCluster::new(&config.target_options.endpoints));
        return run_with_cluster(config, external, cancel_on_signal()).await;
    }
    let started = Instant::now();
    let dir = RunDir::create(&config)?;
    let progress = LiveProgress::new();
    let cancel = cancel_on_signal();
    let log = StartProgress {
        dir: &dir,
        progress: &progress,
    };
    let cluster = match start_cluster(&config, &dir, &log).await {
        Ok(c) => c,
        Err(e) => {
            progress.finish();
            return Ok(failed(&config, &dir, started, format!("{e:#}"), None));
        }
    };
    let exercised = run_exercise(&config, &dir, cluster.cluster(), progress, cancel).await;
    // Teardown before judging: the check may take minutes and needs no cluster.
    let teardown = cluster.teardown().await.err().map(|e| {
        let why = format!(
            "{e}; what the run started is left (Docker containers, network and volumes are \
             labelled with the run), and the next run removes it"
        );
        dir.log(&format!("teardown failed: {why}"));
        eprintln!("error: tearing the cluster down failed: {why}");
        why
    });
    let mut outcome = conclude(&config, &dir, started, exercised).await;
    if teardown.is_some() {
        outcome.teardown_error = teardown;
        write_results(&dir, &outcome);
    }
    Ok(outcome)
}

/// Starts the run's cluster: the target's node description, on the configured backend.
async fn start_cluster(
    config: &TestConfig,
    dir: &RunDir,
    log: &StartProgress<'_>,
) -> anyhow::Result<Started> {
    let spec = crate::target::driver(&config.target)?.node_spec(&config.node_params())?;
    let request = StartRequest {
        backend: config.backend,
        spec: &spec,
        faults: &config.nemesis,
        nodes: config.nodes,
        nodes_dir: dir.nodes(),
    };
    Ok(crate::backend::start(&request, log).await?)
}

/// A start's progress on the live line, and its log lines in `faultline.log`.
struct StartProgress<'a> {
    dir: &'a RunDir,
    progress: &'a LiveProgress,
}

impl StartLog for StartProgress<'_> {
    fn phase(&self, phase: &str) {
        self.progress.phase(phase);
    }

    fn detail(&self, detail: &str) {
        self.progress.detail(detail);
    }

    fn println(&self, line: &str) {
        self.progress.println(line);
    }

    fn log(&self, line: &str) {
        self.dir.log(line);
    }
}

/// Runs one test on a cluster that is already up (any backend; tests use an in-process
/// one). Creates the results folder, exercises the cluster and judges the history; does
/// not tear the cluster down.
pub async fn run_with_cluster(
    config: TestConfig,
    cluster: Arc<dyn Cluster>,
    cancel: watch::Receiver<bool>,
) -> anyhow::Result<RunResults> {
    config.validate()?;
    let started = Instant::now();
    let dir = RunDir::create(&config)?;
    let progress = LiveProgress::new();
    let exercised = run_exercise(&config, &dir, cluster, progress, cancel).await;
    Ok(conclude(&config, &dir, started, exercised).await)
}

async fn run_exercise(
    config: &TestConfig,
    dir: &RunDir,
    cluster: Arc<dyn Cluster>,
    mut progress: LiveProgress,
    cancel: watch::Receiver<bool>,
) -> Result<Exercised, RunError> {
    let r = exercise::exercise(config, dir, cluster, &mut progress, cancel).await;
    progress.finish();
    r
}

/// Judges the history (if the run got that far) and writes `results.json`.
async fn conclude(
    config: &TestConfig,
    dir: &RunDir,
    started: Instant,
    exercised: Result<Exercised, RunError>,
) -> RunResults {
    let exercised = match exercised {
        Ok(x) => x,
        Err(e) => return failed(config, dir, started, e.to_string(), None),
    };
    let progress = LiveProgress::new();
    progress.phase("checking the history");
    let path = dir.history();
    let workload = config.workload;
    let timeout = Duration::from_millis(config.check_timeout_ms);
    let judged = tokio::task::spawn_blocking(move || judge::judge(&path, workload, timeout)).await;
    progress.phase("writing the results and the report");
    progress.finish();
    let judgement = match judged {
        Ok(Ok(j)) => j,
        Ok(Err(e)) => {
            return failed(
                config,
                dir,
                started,
                format!("history: {e}"),
                Some(exercised),
            )
        }
        Err(e) => {
            return failed(
                config,
                dir,
                started,
                format!("checker crashed: {e}"),
                Some(exercised),
            )
        }
    };
    let outcome = RunResults {
        schema_version: SCHEMA_VERSION,
        verdict: judgement.verdict,
        test: config.test_name(),
        run_dir: dir.path().to_path_buf(),
        seed: config.seed,
        error: None,
        exercised: Some(exercised),
        judgement: Some(judgement),
        teardown_error: None,
        total_ms: millis(started.elapsed()),
    };
    write_results(dir, &outcome);
    outcome
}

fn failed(
    config: &TestConfig,
    dir: &RunDir,
    started: Instant,
    error: String,
    exercised: Option<Exercised>,
) -> RunResults {
    dir.log(&format!("run failed: {error}"));
    let outcome = RunResults {
        schema_version: SCHEMA_VERSION,
        verdict: Verdict::Error,
        test: config.test_name(),
        run_dir: dir.path().to_path_buf(),
        seed: config.seed,
        error: Some(error),
        exercised,
        judgement: None,
        teardown_error: None,
        total_ms: millis(started.elapsed()),
    };
    write_results(dir, &outcome);
    outcome
}

fn write_results(dir: &RunDir, outcome: &RunResults) {
    if let Err(e) = dir.write_json("results.json", outcome) {
        tracing::error!("writing results.json: {e}");
    }
    dir.log(&format!("verdict: {}", outcome.verdict.name()));
    crate::report::after_run(dir.path());
}

/// What [`execute`] returns: the exit code, the test's name, and the run's results (what
/// `results.json` holds, or an `error` when the run could not start).
pub struct Executed {
    pub code: u8,
    pub test: String,
    pub results: RunResults,
}

/// Runs a test: the start line (with the seed to repeat it), the run on a fresh runtime,
/// the verdict line on stdout.
pub fn execute(config: TestConfig) -> Executed {
    let test = config.test_name();
    let seed = config.seed;
    let failed = |error: String| Executed {
        code: Verdict::Error.exit_code(),
        test: test.clone(),
        results: RunResults::failed(&test, PathBuf::new(), seed, error),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return failed(format!("starting the async runtime: {e}"));
        }
    };
    eprintln!(
        "faultline test: {} on {} nodes, nemesis {}, seed {} (repeat with --seed {})",
        config.workload,
        config.nodes,
        if config.nemesis.is_empty() {
            "none".to_string()
        } else {
            config
                .nemesis
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(",")
        },
        config.seed,
        config.seed
    );
    match runtime.block_on(run_test(config)) {
        Ok(outcome) => {
            println!("{}", outcome.summary());
            if let Some(e) = &outcome.error {
                eprintln!("error: {e}");
            }
            Executed {
                code: outcome.exit_code(),
                test: test.clone(),
                results: outcome,
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            failed(format!("{e:#}"))
        }
    }
}
