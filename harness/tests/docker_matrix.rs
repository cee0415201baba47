//! The detection matrix, end to end in Docker (`matrix_common::run_matrix`).
//!
//! Prints "skipping: ..." and returns when Docker or the raftkv binary is out of reach.

mod matrix_common;

use std::path::PathBuf;

use faultline::docker::DockerApi;
use faultline::image::default_raftkv_binary;

async fn prerequisites() -> Option<PathBuf> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_is_found_and_correct_raftkv_is_valid_under_every_nemesis() {
    let Some(raftkv) = prerequisites().await else {
        return;
    };
    matrix_common::run_matrix("docker", &raftkv).await;
}
