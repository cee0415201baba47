//! Each protocol-level planted bug (`Bug`) breaks a safety property in the simulator,
//! found by searching seeds (bounded), while the correct core passes the same seeds.

use raftkv::raft::{Bug, ReadMode};
use raftkv::sim::{default_threads, sweep, Sim, SimOptions};

/// Seeds searched per bug before giving up (`RAFTKV_BUG_SEEDS` overrides).
fn max_seeds() -> u64 {
    std::env::var("RAFTKV_BUG_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

fn with_bug(mut o: SimOptions, bug: Bug) -> SimOptions {
    o.raft.bugs.insert(bug);
    o
}

/// Search seeds for a run of `make` broken in one of `properties`; then check the
/// correct core (`correct`) passes every seed searched.
fn bug_is_caught(
    name: &str,
    properties: &[&str],
    make: &(dyn Fn(u64) -> SimOptions + Sync),
    correct: &(dyn Fn(u64) -> SimOptions + Sync),
) {
    let threads = default_threads();
    let max = max_seeds();
    let found = sweep(0, max, threads, make);
    let failure = found
        .failure
        .unwrap_or_else(|| panic!("{name}: no violation in {max} seeds"));
    eprintln!(
        "{name}: seed {} breaks {} after {} seeds ({:.2?}): {}",
        failure.seed,
        failure.violation.property(),
        found.seeds_run,
        found.elapsed,
        failure.violation
    );
    assert!(
        properties.contains(&failure.violation.property()),
        "{name}: expected one of {properties:?}, got {}",
        failure.violation
    );
    // Replay the seed with a trace: the last steps before the violation are the counterexample.
    let mut opts = make(failure.seed);
    opts.trace_lines = 30;
    let replay = Sim::new(opts, failure.seed)
        .run()
        .expect_err("a failing seed fails again");
    assert_eq!(
        replay.violation, failure.violation,
        "{name}: replay is deterministic"
    );
    for line in &replay.trace {
        eprintln!("  {line}");
    }
    let count = failure.seed + 1;
    let clean = sweep(0, count, threads, correct);
    if let Some(f) = clean.failure {
        panic!(
            "{name}: the correct core fails on the same seeds: {f}\n{}",
            replay_hint(name, f.seed)
        );
    }
    assert_eq!(clean.seeds_run, count);
}

fn stale_read_opts(seed: u64) -> SimOptions {
    SimOptions {
        nodes: 3 + 2 * (seed % 2) as usize,
        read_per_mille: 500,
        partition_per_mille: 40,
        crash_per_mille: 2,
        ..SimOptions::default()
    }
}

#[test]
fn stale_read_breaks_read_linearizability() {
    bug_is_caught(
        "stale-read",
        &["stale-read"],
        &|s| with_bug(stale_read_opts(s), Bug::StaleRead),
        &stale_read_opts,
    );
}

fn lost_ack_opts(seed: u64) -> SimOptions {
    SimOptions {
        nodes: 3 + 2 * (seed % 2) as usize,
        partition_per_mille: 40,
        ..SimOptions::default()
    }
}

#[test]
fn lost_ack_loses_acknowledged_writes() {
    bug_is_caught(
        "lost-ack",
        &["acked-write-lost", "state-machine-safety"],
        &|s| with_bug(lost_ack_opts(s), Bug::LostAck),
        &lost_ack_opts,
    );
}

fn lease_opts(seed: u64) -> SimOptions {
    let mut o = SimOptions {
        nodes: 3 + 2 * (seed % 2) as usize,
        read_per_mille: 800,
        propose_per_mille: 600,
        partition_per_mille: 60,
        crash_per_mille: 0,
        crash_mid_effects_per_mille: 0,
        drop_per_mille: 0,
        dup_per_mille: 0,
        max_delay_ticks: 1,
        clock_jump_per_mille: 50,
        max_clock_jump_ms: 3000,
        ..SimOptions::default()
    };
    o.raft.read_mode = ReadMode::Lease;
    o
}

#[test]
fn lease_clock_serves_stale_reads_when_the_clock_jumps() {
    bug_is_caught(
        "lease-clock",
        &["stale-read"],
        &|s| with_bug(lease_opts(s), Bug::LeaseClock),
        &lease_opts,
    );
}

fn figure8_opts(_seed: u64) -> SimOptions {
    let mut o = SimOptions {
        nodes: 5,
        chaos_ticks: 600,
        crash_per_mille: 60,
        crash_mid_effects_per_mille: 10,
        max_down_ticks: 30,
        partition_per_mille: 60,
        drop_per_mille: 150,
        propose_per_mille: 500,
        read_per_mille: 0,
        ..SimOptions::default()
    };
    // One entry per message makes "a majority holds the old entry but not the new no-op" common.
    o.raft.max_entries_per_msg = 1;
    o
}

#[test]
fn old_term_commit_breaks_committed_entries() {
    bug_is_caught(
        "old-term-commit",
        &[
            "commit-changed",
            "state-machine-safety",
            "leader-completeness",
            "acked-write-lost",
        ],
        &|s| with_bug(figure8_opts(s), Bug::OldTermCommit),
        &figure8_opts,
    );
}

fn no_fsync_opts(seed: u64) -> SimOptions {
    SimOptions {
        nodes: 3 + 2 * (seed % 2) as usize,
        crash_per_mille: 30,
        max_down_ticks: 20,
        ..SimOptions::default()
    }
}

/// `no-fsync` lives in the runtime's storage; the simulator models it as a page cache that
/// reaches the disk only every `fsync_every_ticks` and is lost on a crash.
#[test]
fn no_fsync_loses_acknowledged_state_on_crash() {
    bug_is_caught(
        "no-fsync",
        &[
            "acked-write-lost",
            "state-machine-safety",
            "commit-changed",
            "leader-completeness",
            "election-safety",
            "log-matching",
        ],
        &|s| with_bug(no_fsync_opts(s), Bug::NoFsync),
        &no_fsync_opts,
    );
}

/// How to replay one seed of a bug-hunting schedule on the correct core, with a trace.
fn replay_hint(schedule: &str, seed: u64) -> String {
    format!(
        "replay with: RAFTKV_SIM_SCHEDULE={schedule} RAFTKV_SIM_SEED={seed} \
         cargo test -p raftkv --release --test sim_bugs \
         correct_core_passes_the_bug_hunting_schedules -- --nocapture"
    )
}

/// The harsher schedules used to hunt bugs must not break the correct core either
/// (`RAFTKV_SIM_SEEDS` sets the seeds per schedule; `RAFTKV_SIM_SCHEDULE` and
/// `RAFTKV_SIM_SEED` replay one seed of one schedule with a trace).
#[test]
fn correct_core_passes_the_bug_hunting_schedules() {
    let count = std::env::var("RAFTKV_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let schedules: [(&str, &(dyn Fn(u64) -> SimOptions + Sync)); 5] = [
        ("no-fsync", &no_fsync_opts),
        ("stale-read", &stale_read_opts),
        ("lost-ack", &lost_ack_opts),
        ("lease-clock", &lease_opts),
        ("old-term-commit", &figure8_opts),
    ];
    let replay_seed = std::env::var("RAFTKV_SIM_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let only = std::env::var("RAFTKV_SIM_SCHEDULE").ok();
    for (name, make) in schedules {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        if let Some(seed) = replay_seed {
            let mut opts = make(seed);
            opts.trace_lines = 400;
            match Sim::new(opts, seed).run() {
                Ok(stats) => eprintln!("{name}: seed {seed} passed: {stats:?}"),
                Err(f) => {
                    for line in &f.trace {
                        eprintln!("{line}");
                    }
                    panic!("{name} schedule: {f}");
                }
            }
            continue;
        }
        let report = sweep(1_000_000, count, default_threads(), make);
        eprintln!(
            "{name}: {} seeds in {:.2?}",
            report.seeds_run, report.elapsed
        );
        if let Some(f) = report.failure {
            panic!("{name} schedule: {f}\n{}", replay_hint(name, f.seed));
        }
        assert_eq!(report.seeds_run, count);
    }
}
