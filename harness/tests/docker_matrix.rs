//! The detection matrix, end to end in Docker (`matrix_common::run_matrix`).
//!
//! Prints "skipping: ..." and returns when Docker or the raftkv binary is out of reach.

mod cli_common;
mod matrix_common;

use cli_common::docker_and_raftkv_or_skip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_is_found_and_correct_raftkv_is_valid_under_every_nemesis() {
    let Some(raftkv) = docker_and_raftkv_or_skip().await else {
        return;
    };
    matrix_common::run_matrix("docker", &raftkv).await;
}
