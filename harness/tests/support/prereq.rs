//! Prerequisites of the tests that need more than cargo: a Docker daemon (and root, for the
//! node image), etcd on the PATH, Chromium, libfaketime, the raftkv binary `cargo test
//! --workspace` builds, and Redis with Sentinel and ZooKeeper from Debian's packages. On a
//! user's machine a test whose prerequisite is missing skips and prints why. When `FAULTLINE_REQUIRE` (comma-separated, e.g. `docker,etcd`) names the
//! prerequisite, as CI sets it, the test fails instead: a skipped test is not evidence.
//! When `FAULTLINE_RAN_LOG` names a file, each test that found its prerequisite appends a
//! line there (`<prerequisite> <test binary> <test>`), so CI can print which suites ran.
//!
//! Standard library only: the workloads crate's etcd tests include this file too.

use std::fmt::Display;
use std::io::Write;

pub const DOCKER: &str = "docker";
pub const ETCD: &str = "etcd";
pub const CHROMIUM: &str = "chromium";
pub const FAKETIME: &str = "faketime";
pub const RAFTKV: &str = "raftkv";
pub const REDIS: &str = "redis";
pub const ZOOKEEPER: &str = "zookeeper";

/// Whether `FAULTLINE_REQUIRE` names `what`.
pub fn required(what: &str) -> bool {
    std::env::var("FAULTLINE_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .any(|p| p.trim() == what)
}

/// The prerequisite `what` is missing (`why`): fails the test when it is required, else
/// prints that the test skips and returns `None`.
pub fn missing<T>(what: &str, why: impl Display) -> Option<T> {
    assert!(
        !required(what),
        "FAULTLINE_REQUIRE names {what}, and it is missing: {why}"
    );
    eprintln!("skipping: {why} (FAULTLINE_REQUIRE={what} makes this a failure)");
    None
}

/// The prerequisite `what` is present: notes that this test runs with it.
pub fn present<T>(what: &str, value: T) -> Option<T> {
    if let Some(path) = std::env::var_os("FAULTLINE_RAN_LOG") {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        // libtest names each test's thread after the test.
        let test = std::thread::current().name().unwrap_or("?").to_string();
        // One short write per line to a file opened for appending: lines from tests in
        // parallel do not interleave.
        let line = format!("{what} {binary} {test}\n");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
    Some(value)
}

/// `found`'s value when the prerequisite `what` is there, else as [`missing`].
pub fn check<T, E: Display>(what: &str, found: Result<T, E>) -> Option<T> {
    match found {
        Ok(v) => present(what, v),
        Err(why) => missing(what, why),
    }
}
