//! Running the `faultline` binary within a time limit, reading what a run wrote, and
//! describing a run for assertion messages; Chromium for the report's browser tests.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use super::prereq;

/// Runs `faultline` with `args` to completion, killing it past `limit`.
pub async fn run_faultline(args: &[String], limit: Duration) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start faultline");
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("faultline exceeded its time limit")
        .expect("faultline output")
}

/// The `results.json` of the latest run under the results folder `results`.
pub fn results_json(results: &Path) -> serde_json::Value {
    let path = results.join("latest").join("results.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// A run's exit code, stdout and the last 40 lines of its stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    format!(
        "exit {:?}\nstdout:\n{}\nstderr (tail):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        lines[lines.len().saturating_sub(40)..].join("\n")
    )
}

/// The raftkv binary, when Docker is reachable too and the base image can be had (the node
/// image holds raftkv on top of it).
pub async fn docker_and_raftkv() -> Option<PathBuf> {
    super::docker::docker_with_base().await?;
    super::raftkv_binary()
}

/// The `chromium` on the PATH, when it starts.
pub fn chromium() -> Option<PathBuf> {
    let works = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let found = works
        .then(|| PathBuf::from("chromium"))
        .ok_or("chromium is not installed (apt-get install chromium)");
    prereq::check(prereq::CHROMIUM, found)
}
