//! End to end through the `faultline` binary against real Docker: a short correct run is
//! `valid`; raftkv with `--bug stale-read` under partitions is found `invalid` within a few
//! seeds; a harness killed with SIGKILL mid-run leaves a readable history, and the next run
//! removes every container and network the dead one left.
//!
//! Each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when Docker is
//! unreachable or the raftkv binary was not built. Runs are short (seconds of load) and every child is bounded by a
//! timeout.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline_checker::format::{read_path, Format};
use support::cli::{describe, docker_and_raftkv, results_json, run_faultline};

/// Longest a single `faultline test` child may take (image build included: a cold
/// debootstrap takes about a minute).
const RUN_TIMEOUT: Duration = Duration::from_secs(420);

/// One run at a time: runs share the machine's two cores and the Docker daemon, and the
/// tests assert that no faultline object is left when theirs end.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn faultline_exe() -> &'static str {
    env!("CARGO_BIN_EXE_faultline")
}

fn test_args(raftkv: &Path, results: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "test",
        "--nodes",
        "3",
        "--rate",
        "60",
        "--concurrency",
        "6",
        "--op-timeout",
        "1s",
        "--nemesis-interval",
        "3s",
        "--check-timeout",
        "60s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--raftkv".into());
    args.push(raftkv.display().to_string());
    args.push("--results-dir".into());
    args.push(results.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The Docker run id a run logged (`cluster run id X` in its faultline.log).
fn run_id_of(run_dir: &Path) -> String {
    let log = std::fs::read_to_string(run_dir.join("faultline.log")).unwrap_or_default();
    log.lines()
        .find_map(|l| l.split("cluster run id ").nth(1))
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|| panic!("no run id in {}/faultline.log:\n{log}", run_dir.display()))
}

/// Containers and networks of one run that exist right now (other runs, e.g. other test
/// binaries sharing the daemon, are not this test's business).
fn objects_of_run(run_id: &str) -> (String, String) {
    let filter = format!("label=faultline.run={run_id}");
    let run = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker CLI");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (
        run(&["ps", "-aq", "--filter", &filter]),
        run(&["network", "ls", "-q", "--filter", &filter]),
    )
}

/// Runs `faultline test` with `extra` and seeds 1, 2, ... up to `tries`, and returns the
/// results.json of the first `invalid` run; panics when every run was valid or unknown.
/// A run error (exit 3) is never taken for a detection.
async fn first_detection(raftkv: &Path, tries: u64, extra: &[&str]) -> serde_json::Value {
    let mut verdicts = Vec::new();
    for seed in 1..=tries {
        let results = tempfile::tempdir().expect("tempdir");
        let seed = seed.to_string();
        let mut flags = extra.to_vec();
        flags.extend(["--seed", &seed]);
        let out = run_faultline(&test_args(raftkv, results.path(), &flags), RUN_TIMEOUT).await;
        let code = out.status.code();
        eprintln!(
            "seed {seed}: exit {code:?}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
        assert!(
            matches!(code, Some(0..=2)),
            "a run error is not a verdict: {}",
            describe(&out)
        );
        let json = results_json(results.path());
        if code == Some(1) {
            assert_eq!(json["verdict"], "invalid", "{json:#}");
            return json;
        }
        verdicts.push(json["verdict"].clone());
    }
    panic!("{extra:?} went undetected in {tries} runs: {verdicts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_raftkv_under_partitions_and_kills_is_valid() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = docker_and_raftkv().await else {
        return;
    };
    let results = tempfile::tempdir().expect("tempdir");
    let args = test_args(
        &raftkv,
        results.path(),
        &[
            "--time-limit",
            "15s",
            "--nemesis",
            "partition,kill",
            "--seed",
            "7",
        ],
    );
    let out = run_faultline(&args, RUN_TIMEOUT).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let json = results_json(results.path());
    assert_eq!(json["verdict"], "valid", "{json:#}");
    let run_dir = results.path().join("latest");
    for file in ["config.json", "history.jsonl", "results.json"] {
        assert!(run_dir.join(file).is_file(), "{file} missing");
    }
    let history = read_path(&run_dir.join("history.jsonl"), Format::Jsonl).expect("history reads");
    let ops = history.ops().expect("history pairs");
    let ok = ops
        .iter()
        .filter(|o| o.outcome == faultline_checker::history::Outcome::Ok)
        .count();
    assert!(ok > 50, "only {ok} ok ops in a 15 s run");
    assert!(
        history
            .events
            .iter()
            .any(|e| e.process == faultline_checker::history::Process::Nemesis),
        "nemesis events are in the history"
    );
    let node_logs = std::fs::read_dir(run_dir.join("nodes"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(node_logs, 3, "one log folder per node");
    let (containers, networks) = objects_of_run(&run_id_of(&run_dir));
    assert!(
        containers.is_empty() && networks.is_empty(),
        "{containers} {networks}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_read_bug_under_partitions_is_invalid() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = docker_and_raftkv().await else {
        return;
    };
    let json = first_detection(
        &raftkv,
        4,
        &[
            "--time-limit",
            "20s",
            "--nemesis",
            "partition",
            "--bug",
            "stale-read",
        ],
    )
    .await;
    assert_eq!(json["judgement"]["linearizable"]["verdict"], "invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_run_keeps_its_history_and_the_next_run_cleans_up() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = docker_and_raftkv().await else {
        return;
    };
    let results = tempfile::tempdir().expect("tempdir");
    let args = test_args(
        &raftkv,
        results.path(),
        &[
            "--time-limit",
            "120s",
            "--nemesis",
            "partition",
            "--name",
            "killed",
        ],
    );
    let mut child = tokio::process::Command::new(faultline_exe())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start faultline");
    // Wait until the run has recorded a good number of events (and a partition).
    let history_path = results
        .path()
        .join("killed")
        .join("latest")
        .join("history.jsonl");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&history_path).unwrap_or_default();
        if text.lines().count() > 200 && text.contains("nemesis") {
            break;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "the run never got going: {}",
            history_path.display()
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("faultline exited early with {status}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    let killed_id = run_id_of(&results.path().join("killed").join("latest"));
    let (containers, _) = objects_of_run(&killed_id);
    assert!(
        !containers.is_empty(),
        "the killed run left its containers behind"
    );

    // The killed run's history is readable up to the last complete line, and nothing is
    // judged that was not recorded.
    let history = read_path(&history_path, Format::Jsonl).unwrap_or_else(|e| {
        panic!("killed run's history does not read: {e}");
    });
    assert!(history.events.len() > 200);
    let check = run_faultline(
        &[
            "check".to_string(),
            history_path.display().to_string(),
            "--model".to_string(),
            "cas-register".to_string(),
        ],
        RUN_TIMEOUT,
    )
    .await;
    assert!(
        matches!(check.status.code(), Some(0..=2)),
        "the killed run's history checks: {}",
        describe(&check)
    );

    // The next run starts by removing the dead run's containers, networks and rules, and
    // tears down its own cluster at the end.
    let next = tempfile::tempdir().expect("tempdir");
    let args = test_args(
        &raftkv,
        next.path(),
        &["--time-limit", "3s", "--nemesis", "none"],
    );
    let out = run_faultline(&args, RUN_TIMEOUT).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = std::fs::read_to_string(next.path().join("latest").join("faultline.log"))
        .unwrap_or_default();
    assert!(log.contains("removed leftovers of dead runs"), "{log}");
    for id in [killed_id, run_id_of(&next.path().join("latest"))] {
        let (containers, networks) = objects_of_run(&id);
        assert!(
            containers.is_empty() && networks.is_empty(),
            "run {id} left containers [{containers}] networks [{networks}]"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_and_lock_workloads_on_correct_raftkv_are_valid() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = docker_and_raftkv().await else {
        return;
    };
    for workload in ["kv", "lock"] {
        let results = tempfile::tempdir().expect("tempdir");
        let args = test_args(
            &raftkv,
            results.path(),
            &[
                "--workload",
                workload,
                "--time-limit",
                "12s",
                "--nemesis",
                "partition,kill",
                "--seed",
                "3",
            ],
        );
        let out = run_faultline(&args, RUN_TIMEOUT).await;
        assert_eq!(out.status.code(), Some(0), "{workload}: {}", describe(&out));
        let json = results_json(results.path());
        assert_eq!(json["verdict"], "valid", "{workload}: {json:#}");
        if workload == "lock" {
            assert_eq!(json["judgement"]["fencing"]["valid"], true, "{json:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reuse_bug_is_a_fencing_violation() {
    let _serial = SERIAL.lock().await;
    let Some(raftkv) = docker_and_raftkv().await else {
        return;
    };
    let json = first_detection(
        &raftkv,
        3,
        &[
            "--workload",
            "lock",
            "--time-limit",
            "20s",
            "--nemesis",
            "partition",
            "--bug",
            "token-reuse",
        ],
    )
    .await;
    assert_eq!(json["judgement"]["fencing"]["valid"], false, "{json:#}");
}
