//! The detection matrix on the local backend (`matrix_common::run_matrix`): raftkv nodes as
//! child processes on 127.0.0.x, faults through the in-process link proxies, signals and
//! libfaketime. Needs no Docker.
//!
//! Prints "skipping: ..." and returns when the raftkv binary is out of reach.

mod matrix_common;

use faultline::image::default_raftkv_binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bug_is_found_and_correct_raftkv_is_valid_on_the_local_backend() {
    let Some(raftkv) = default_raftkv_binary() else {
        eprintln!("skipping: no raftkv binary beside the test binary (cargo build -p raftkv)");
        return;
    };
    matrix_common::run_matrix("local", &raftkv).await;
}
