//! Targets described by a file, run through `faultline test` on the local backend with
//! the `etcd` on the PATH:
//!
//! - `targets/etcd` (etcd as a target file with a Python adapter) gives the verdicts the
//!   built-in etcd target gives on the same seeds and flags;
//! - adapters that exit at start, die mid-run, print garbage or hang get true outcomes
//!   (`fail` where nothing was sent, `info` where it may have happened), a message in
//!   `faultline.log`, and the run goes on to a readable history and a verdict;
//! - an adapter that cannot serve the workload (an operation missing from its handshake, a
//!   bad handshake, none at all) stops the run before anything is recorded (exit 3);
//! - a malformed target file is refused before anything starts, naming its line.
//!
//! Each test skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when there is no
//! `etcd` on the PATH (Debian: `apt-get install etcd-server`). Tests run one at a time and
//! are bounded.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod support;
use support::local::Run;

/// Upper bound of one `faultline test` child.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The repository's `targets/` folder.
fn targets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../targets")
}

/// `faultline test --backend local` on 3 nodes with `target`, `extra` flags, results under
/// `results`.
async fn run(target: &str, results: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = [
        "test",
        "--backend",
        "local",
        "--nodes",
        "3",
        "--rate",
        "50",
        "--concurrency",
        "6",
        "--op-timeout",
        "1s",
        "--check-timeout",
        "60s",
        "--target",
        target,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--results-dir".into(), results.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"));
    command.args(&args);
    Run::wait(command, &results.join("latest"), RUN_TIMEOUT).await
}

/// A target folder like `targets/etcd`, whose adapter is the misbehaving test adapter in
/// `mode`.
fn misbehaving_target(mode: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = targets().join("etcd");
    let text = std::fs::read_to_string(etcd.join("target.toml")).expect("etcd target.toml");
    let adapter = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adapters/misbehave.py");
    let text = text
        .replace(
            r#"command = ["{python}", "adapter.py"]"#,
            &format!(
                r#"command = ["{{python}}", "{}", "{mode}"]"#,
                adapter.display()
            ),
        )
        .replace(
            r#"command = ["{python}", "leader.py", "{nodes}"]"#,
            &format!(
                r#"command = ["{{python}}", "{}", "{{nodes}}"]"#,
                etcd.join("leader.py").display()
            ),
        );
    assert!(
        text.contains("misbehave.py"),
        "the adapter command was replaced"
    );
    std::fs::write(dir.path().join("target.toml"), text).expect("write target.toml");
    dir
}

/// Every line of the run's history parses as JSON; the `error`s of its completions.
fn history_errors(run: &Run) -> Vec<String> {
    let dir = run.run_dir.as_ref().expect("run folder");
    let text = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("history line {}: {e}: {line}", n + 1));
        if let Some(e) = v["error"].as_str() {
            errors.push(format!("{} {e}", v["type"].as_str().unwrap_or("?")));
        }
    }
    errors
}

fn log_text(run: &Run) -> String {
    let dir = run.run_dir.as_ref().expect("run folder");
    std::fs::read_to_string(dir.join("faultline.log")).unwrap_or_default()
}

/// The same seeds do not make the same runs of two clients (elections, and so
/// leader-aimed faults, differ), so a finding is asked of each target within the same
/// seeds, as the detection matrix asks of a bug within its tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etcd_target_file_gives_the_built_in_targets_verdicts() {
    let Some(_etcd) = support::local::etcd_binary() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let file_target = targets().join("etcd").display().to_string();
    let common = ["--nemesis-interval", "3s", "--time-limit", "12s"];
    let cases: [(&[&str], &str, &[&str]); 2] = [
        (&["--nemesis", "partition,kill,pause"], "valid", &["7"]),
        (
            &[
                "--serializable",
                "--nemesis",
                "partition",
                "--partition-shapes",
                "isolate-one,isolate-leader",
            ],
            "invalid",
            &["1", "2", "3"],
        ),
    ];
    for (flags, expected, seeds) in cases {
        for target in ["etcd", file_target.as_str()] {
            let mut verdicts = Vec::new();
            for seed in seeds {
                let results = tempfile::tempdir().expect("tempdir");
                let mut all: Vec<&str> = flags.to_vec();
                all.extend(common);
                all.extend(["--seed", seed]);
                let run = run(target, results.path(), &all).await;
                let r = run.results.as_ref().expect("results.json");
                let verdict = r["verdict"].as_str().unwrap_or("none").to_string();
                let x = &r["exercised"];
                let ok = x["counts"]["ok"].as_u64().unwrap_or(0);
                let faults: u64 = x["faults_started"]
                    .as_object()
                    .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
                    .unwrap_or(0);
                eprintln!(
                    "{target} {flags:?} seed {seed}: {verdict}, {ok} ok ops, {faults} faults"
                );
                assert!(ok >= 50, "{target}: only {ok} ok ops: {}", run.describe());
                assert!(faults >= 2, "{target}: {faults} faults: {}", run.describe());
                assert!(
                    verdict == "valid" || verdict == "invalid",
                    "{target}: {}",
                    run.describe()
                );
                verdicts.push(verdict);
                if expected == "invalid" && verdicts.last().is_some_and(|v| v == "invalid") {
                    break;
                }
            }
            match expected {
                "valid" => assert!(
                    verdicts.iter().all(|v| v == "valid"),
                    "{target} {flags:?}: {verdicts:?}"
                ),
                _ => assert!(
                    verdicts.iter().any(|v| v == "invalid"),
                    "{target} {flags:?}: not found on seeds {seeds:?}: {verdicts:?}"
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_adapters_get_true_outcomes_and_the_run_goes_on() {
    let Some(_etcd) = support::local::etcd_binary() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    // (mode, what the history's completions say, what faultline.log says)
    let cases = [
        ("die-mid-run", "info adapter-exited", "closed its stdout"),
        ("garbage", "info adapter-garbage", "hello world"),
        ("hang", "info adapter-timeout", "no answer to"),
        (
            "exit-at-start",
            "fail adapter-start",
            "closed its stdout before its handshake",
        ),
    ];
    for (mode, in_history, in_log) in cases {
        let target = misbehaving_target(mode);
        let results = tempfile::tempdir().expect("tempdir");
        let run = run(
            &target.path().display().to_string(),
            results.path(),
            &["--nemesis", "none", "--time-limit", "6s", "--seed", "3"],
        )
        .await;
        let r = run.results.as_ref().expect("results.json");
        // Every outcome recorded is true, so the verdict about etcd stands.
        assert_eq!(r["verdict"], "valid", "{mode}: {}", run.describe());
        assert_eq!(run.code, Some(0), "{mode}: {}", run.describe());
        let errors = history_errors(&run);
        let hits = errors.iter().filter(|e| e.starts_with(in_history)).count();
        let ok = r["exercised"]["counts"]["ok"].as_u64().unwrap_or(0);
        eprintln!("{mode}: {hits} completions '{in_history}', {ok} ok ops");
        assert!(hits >= 1, "{mode}: no '{in_history}' in {errors:?}");
        assert!(ok >= 20, "{mode}: the run went on: {ok} ok ops");
        let log = log_text(&run);
        assert!(
            log.contains(in_log),
            "{mode}: faultline.log lacks {in_log:?}:\n{log}"
        );
        // The adapters' stderr and the target file are kept with the run.
        let dir = run.run_dir.as_ref().expect("run folder");
        assert!(
            dir.join("adapters/p0.stderr.log").is_file(),
            "{mode}: no stderr kept"
        );
        let kept = std::fs::read_to_string(dir.join("target.toml")).unwrap_or_default();
        assert!(kept.contains(mode), "{mode}: target.toml not kept: {kept}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_cannot_serve_the_workload_stops_the_run_before_it_starts() {
    let Some(_etcd) = support::local::etcd_binary() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let cases = [
        ("no-cas", "does not support cas"),
        ("bad-handshake", "not a handshake"),
        (
            "exit-at-start-all",
            "closed its stdout before its handshake",
        ),
    ];
    for (mode, said) in cases {
        let target = misbehaving_target(mode);
        let results = tempfile::tempdir().expect("tempdir");
        let run = run(
            &target.path().display().to_string(),
            results.path(),
            &["--nemesis", "none", "--time-limit", "5s"],
        )
        .await;
        assert_eq!(run.code, Some(3), "{mode}: {}", run.describe());
        assert!(run.stderr.contains(said), "{mode}: {}", run.describe());
        // Nothing was recorded: the workload never started.
        let history = run.run_dir.as_ref().map(|d| d.join("history.jsonl"));
        let recorded = history
            .and_then(|h| std::fs::read_to_string(h).ok())
            .unwrap_or_default();
        assert!(recorded.is_empty(), "{mode}: history {recorded}");
    }
}

#[tokio::test]
async fn a_malformed_target_file_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(targets().join("etcd/target.toml")).expect("read");
    let broken = text.replace("client_port = 2379", "client_port = \"2379\"");
    let line = broken
        .lines()
        .position(|l| l.starts_with("client_port"))
        .expect("client_port line")
        + 1;
    std::fs::write(dir.path().join("target.toml"), broken).expect("write");
    let results = dir.path().join("results");
    let out = support::cli::run_faultline(
        &[
            "test".into(),
            "--backend".into(),
            "local".into(),
            "--target".into(),
            dir.path().display().to_string(),
            "--results-dir".into(),
            results.display().to_string(),
        ],
        Duration::from_secs(30),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("target.toml:{line}: ")) && stderr.contains("u16"),
        "names the file, the line and the field's type: {stderr}"
    );
    assert!(!results.exists(), "no run folder for a refused run");
}
