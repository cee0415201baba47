//! Support for the harness's integration tests, in one module: prerequisites ([`prereq`]: a
//! missing one skips a test with its reason, or fails it under `FAULTLINE_REQUIRE`), a time
//! bound per test, a target's node description as runs use it, clusters on either backend
//! ([`docker`], [`local`]), running the `faultline` binary and reading what it wrote
//! ([`cli`]), and the detection matrix end to end ([`matrix`]).

// Each test binary uses its own subset.
#![allow(dead_code)]

pub mod cli;
pub mod docker;
pub mod local;
pub mod matrix;
pub mod prereq;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use faultline::backend::NodeSpec;
use faultline::target::{driver, NodeParams, Target};
use faultline_nemeses::FaultKind;

/// Runs `test`, failing it past `limit`.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, test: F) {
    tokio::time::timeout(limit, test)
        .await
        .expect("test exceeded its time limit");
}

/// The raftkv binary `cargo test --workspace` builds beside the test binaries.
pub fn raftkv_binary() -> Option<PathBuf> {
    prereq::check(
        prereq::RAFTKV,
        faultline::backend::bundled::beside_executable("raftkv")
            .ok_or("no raftkv binary beside the test binary (cargo build --release --bin raftkv)"),
    )
}

/// `target`'s node description as a run with `nemesis` and `bugs` gets it.
pub fn spec(target: Target, nemesis: &[FaultKind], bugs: &[&str]) -> NodeSpec {
    let bugs: Vec<String> = bugs.iter().map(ToString::to_string).collect();
    driver(&target)
        .expect("driver")
        .node_spec(&NodeParams {
            nemesis,
            op_timeout_ms: 2_000,
            bugs: &bugs,
            bundled_binary: None,
        })
        .expect("node spec")
}
