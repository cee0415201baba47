//! The detection matrix on the local backend (`support::matrix::run_matrix`): raftkv nodes
//! as child processes on 127.0.0.x, faults through the in-process link proxies, signals and
//! libfaketime. Needs no Docker.
//!
//! Skips, printing why (or fails, under `FAULTLINE_REQUIRE`), when the raftkv binary is out
//! of reach.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_is_found_and_correct_raftkv_is_valid_on_the_local_backend() {
    let Some(raftkv) = support::raftkv_binary() else {
        return;
    };
    support::matrix::run_matrix("local", &raftkv).await;
}
