//! Deterministic simulation of the correct Raft core over many seeds: partitions,
//! message loss/duplication/reordering, crashes (also half-way through a node's effects)
//! and restarts from disk, with safety checked after every step and liveness after healing.
//!
//! `RAFTKV_SIM_SEEDS=N` runs N seeds per test (default keeps `cargo test --release` fast);
//! `RAFTKV_SIM_SEED=S` replays one seed with a trace.

use raftkv::raft::ReadMode;
use raftkv::sim::{default_threads, sweep, Sim, SimOptions};

fn seeds(default: u64) -> u64 {
    std::env::var("RAFTKV_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Options for seed `s` of the default sweep: alternate 3 and 5 nodes.
fn default_opts(seed: u64) -> SimOptions {
    SimOptions {
        nodes: if seed.is_multiple_of(2) { 3 } else { 5 },
        ..SimOptions::default()
    }
}

fn lease_opts(seed: u64) -> SimOptions {
    let mut o = default_opts(seed);
    o.raft.read_mode = ReadMode::Lease;
    o.clock_jump_per_mille = 20;
    o.read_per_mille = 400;
    o
}

fn run_sweep(name: &str, default_count: u64, make: &(dyn Fn(u64) -> SimOptions + Sync)) {
    if let Some(seed) = std::env::var("RAFTKV_SIM_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let mut opts = make(seed);
        opts.trace_lines = 400;
        match Sim::new(opts, seed).run() {
            Ok(stats) => eprintln!("{name}: seed {seed} passed: {stats:?}"),
            Err(f) => {
                for line in &f.trace {
                    eprintln!("{line}");
                }
                panic!("{name}: {f}");
            }
        }
        return;
    }
    let count = seeds(default_count);
    let report = sweep(0, count, default_threads(), make);
    eprintln!(
        "{name}: {} seeds in {:.2?} ({:.0} seeds/s); totals {:?}",
        report.seeds_run,
        report.elapsed,
        report.seeds_per_second(),
        report.total
    );
    if let Some(f) = report.failure {
        panic!(
            "{name}: {f}\nreplay with: RAFTKV_SIM_SEED={} cargo test -p raftkv --release --test sim {name} -- --nocapture",
            f.seed
        );
    }
    assert_eq!(report.seeds_run, count);
    // The sweep must have exercised the protocol, not idled.
    assert!(
        report.total.acked_writes > count,
        "too few writes acknowledged: {:?}",
        report.total
    );
    assert!(
        report.total.elections >= count,
        "too few elections: {:?}",
        report.total
    );
}

#[test]
fn correct_core_is_safe_and_live_under_faults() {
    run_sweep(
        "correct_core_is_safe_and_live_under_faults",
        8000,
        &default_opts,
    );
}

#[test]
fn correct_core_lease_reads_ignore_clock_jumps() {
    run_sweep(
        "correct_core_lease_reads_ignore_clock_jumps",
        2000,
        &lease_opts,
    );
}

#[test]
fn same_seed_same_run() {
    let a = Sim::new(default_opts(42), 42)
        .run()
        .expect("seed 42 passes");
    let b = Sim::new(default_opts(42), 42)
        .run()
        .expect("seed 42 passes");
    assert_eq!(a, b);
    let c = Sim::new(default_opts(44), 44)
        .run()
        .expect("seed 44 passes");
    assert_ne!(a, c);
}
