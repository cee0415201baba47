//! Helpers shared by the tests that run the `faultline` binary against Docker
//! (`docker_e2e.rs`, `docker_etcd.rs`, `docker_matrix.rs`): skipping with a printed reason
//! when Docker or the raftkv binary is out of reach, running the binary within a time
//! limit, and reading what a run wrote.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use faultline::docker::DockerApi;
use faultline::image::default_raftkv_binary;

/// The raftkv binary (the node image holds it), or None after printing why the test is
/// skipped: Docker is unreachable, or raftkv was not built.
pub async fn docker_and_raftkv_or_skip() -> Option<PathBuf> {
    if let Err(e) = DockerApi::connect(10_000).await {
        eprintln!("skipping: Docker is unreachable: {e}");
        return None;
    }
    let binary = default_raftkv_binary();
    if binary.is_none() {
        eprintln!("skipping: no raftkv binary beside the test binary (cargo build -p raftkv)");
    }
    binary
}

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
