//! The detection matrix, end to end in Docker (`support::matrix::run_matrix`).
//!
//! Skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when Docker or the raftkv binary
//! is out of reach.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_is_found_and_correct_raftkv_is_valid_under_every_nemesis() {
    let Some(raftkv) = support::cli::docker_and_raftkv().await else {
        return;
    };
    support::matrix::run_matrix("docker", &raftkv).await;
}
